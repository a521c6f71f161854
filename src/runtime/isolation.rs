//! Which isolation kiln's containers get, found before the first one runs.
//!
//! Inside a CI container (GitLab's docker executor, a GitHub `container:`
//! job, a Kubernetes pod) kiln is itself confined: no CAP_SYS_ADMIN, the
//! engine's seccomp profile, a /proc and /sys with masked paths. The kernel
//! then refuses a user namespace a fresh `proc` or `sysfs` mount (it would
//! reveal what the masks hide), and podman's seccomp profile refuses
//! `sethostname`; libcontainer fails on either with "failed to prepare
//! rootfs" or "failed to set hostname". Binding the /proc and /sys kiln
//! already sees is allowed there, and everything else a build needs (user,
//! mount, pid, ipc, net and uts namespaces, overlay) is too. So:
//!
//! - [`Isolation::Container`]: today's containers, a fresh /proc and /sys
//!   and the hostname `kiln` (a VM, a machine, a privileged-enough place);
//! - [`Isolation::Bound`]: the same namespaces, with kiln's own /proc and
//!   /sys bind-mounted (read-only /sys, the usual masks on /proc) and the
//!   place's hostname, as buildah's chroot isolation binds them.
//!
//! [`probe`] tries each step once per kiln command, in a throwaway child of
//! the entered kiln (two forks, an unshare, five mounts in a mount namespace
//! that dies with the child: 1-3 ms on the 2-core test VM, measured as
//! `kiln run --explain` before and after, against a 54 s demo stack build), [`choose`] picks the strongest mode
//! the place allows, or checks the one the user forced. What neither mode
//! can do (no user namespace at all, Docker's default seccomp profile) and
//! what the user must add is in docs/ci.md.

use std::fmt;
use std::io::Read;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, pipe};

/// How kiln's containers are isolated; see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    Container,
    Bound,
}

impl Isolation {
    pub fn name(self) -> &'static str {
        match self {
            Isolation::Container => "container",
            Isolation::Bound => "bound",
        }
    }

    /// Whether the container gets a fresh /proc and /sys and its own hostname.
    pub fn fresh_kernel_fs(self) -> bool {
        self == Isolation::Container
    }
}

/// What the user asks for: `--isolation` or kiln.toml's `isolation`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Deserialize,
    serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Choice {
    /// The strongest mode this place allows.
    #[default]
    Auto,
    /// A fresh /proc and /sys and the hostname `kiln`; fails where refused.
    Container,
    /// kiln's own /proc and /sys bound in, no hostname (CI containers).
    Bound,
}

/// One probed step: `None` when it worked, else the errno it got.
type Step = Option<Errno>;

/// What this place allowed, each step tried once in a throwaway child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// unshare of the container's mount, uts, ipc, pid and net namespaces.
    pub namespaces: Step,
    /// sethostname in the new uts namespace.
    pub hostname: Step,
    /// A fresh `proc` mount in the new pid namespace.
    pub fresh_proc: Step,
    /// A fresh `sysfs` mount in the new net namespace.
    pub fresh_sysfs: Step,
    /// A recursive bind of /proc and of /sys.
    pub bind: Step,
}

/// Why kiln cannot give its containers the isolation asked for.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("probing what this place allows failed: {what}: {error}")]
    Probe { what: &'static str, error: Errno },
    #[error(
        "kiln cannot make its containers' namespaces here: unshare of mount, uts, ipc, pid and net namespaces failed: {0}"
    )]
    Namespaces(Errno),
    #[error("neither isolation works here: binding /proc and /sys was refused: {0}")]
    Bind(Errno),
    #[error(
        "the `container` isolation (--isolation or kiln.toml's `isolation`) cannot work here: {refused}"
    )]
    ContainerRefused { refused: String },
}

impl Error {
    pub fn fix(&self) -> String {
        match self {
            Error::Probe { .. } => "run `kiln doctor` to see what this place lacks".into(),
            Error::Namespaces(_) | Error::Bind(_) => {
                "the container kiln runs in refuses namespaces or mounts: run it with a seccomp profile that allows unshare (podman's default, or `--security-opt seccomp=unconfined`) and, under AppArmor, `--security-opt apparmor=unconfined` (docs/ci.md)".into()
            }
            Error::ContainerRefused { .. } => {
                "use `--isolation bound` (or `auto`), which binds kiln's own /proc and /sys and keeps the place's hostname; or give the container kiln runs in an unmasked /proc and /sys (podman `--security-opt unmask=ALL`) and a seccomp profile that allows sethostname".into()
            }
        }
    }
}

/// The mode to use and why, for `-v`, `kiln run --explain` and `kiln doctor`.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub isolation: Isolation,
    pub why: String,
}

impl fmt::Display for Chosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "isolation: {}\n  why: {}",
            self.isolation.name(),
            self.why
        )
    }
}

fn refused(step: Step, what: &str) -> Option<String> {
    step.map(|e| format!("{what} was refused ({e})"))
}

/// The strongest mode `place` allows, or the forced one if it can work.
pub fn choose(choice: Choice, place: &Place) -> Result<Chosen, Error> {
    if let Some(e) = place.namespaces {
        return Err(Error::Namespaces(e));
    }
    let refusals: Vec<String> = [
        refused(place.fresh_proc, "mounting a fresh /proc"),
        refused(place.fresh_sysfs, "mounting a fresh /sys"),
        refused(place.hostname, "setting the container's hostname"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (isolation, why) = match choice {
        Choice::Container | Choice::Auto if refusals.is_empty() => (
            Isolation::Container,
            format!(
                "{}: fresh /proc and /sys and the hostname `kiln` are allowed here",
                if choice == Choice::Auto {
                    "the strongest mode"
                } else {
                    "--isolation container"
                }
            ),
        ),
        Choice::Container => {
            return Err(Error::ContainerRefused {
                refused: refusals.join("; "),
            });
        }
        Choice::Auto | Choice::Bound => {
            if let Some(e) = place.bind {
                return Err(Error::Bind(e));
            }
            let reason = if choice == Choice::Bound {
                "--isolation bound".to_string()
            } else {
                format!(
                    "{} (kiln itself runs confined, as in a CI container)",
                    refusals.join("; ")
                )
            };
            (
                Isolation::Bound,
                format!(
                    "{reason}: containers get kiln's own /proc and /sys bound in and this place's hostname"
                ),
            )
        }
    };
    Ok(Chosen { isolation, why })
}

/// Try each step once in a throwaway child; kiln must already be in its
/// namespaces (as root there) and single-threaded.
pub fn probe() -> Result<Place, Error> {
    let failed = |what| move |error| Error::Probe { what, error };
    let (read, write) = pipe().map_err(failed("a pipe to the probe"))?;
    // SAFETY: kiln is single-threaded here; the child makes syscalls and _exits.
    match unsafe { fork() }.map_err(failed("fork of the probe"))? {
        ForkResult::Child => {
            drop(read);
            let steps = probe_in_child();
            let _ = nix::unistd::write(&write, &steps);
            // SAFETY: leaving the forked child without the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write);
            let mut steps = Vec::new();
            // a short read is caught below with the child's status
            let _ = std::fs::File::from(read).read_to_end(&mut steps);
            let status = waitpid(child, None).map_err(failed("waiting for the probe"))?;
            if status != WaitStatus::Exited(child, 0) || steps.len() != 5 {
                return Err(failed("the probe")(Errno::ECHILD));
            }
            let step = |i: usize| (steps[i] != 0).then(|| Errno::from_raw(steps[i] as i32));
            Ok(Place {
                namespaces: step(0),
                hostname: step(1),
                fresh_proc: step(2),
                fresh_sysfs: step(3),
                bind: step(4),
            })
        }
    }
}

/// In the forked child: the steps' errnos, 0 for success. A fresh proc
/// must be mounted by a process inside the new pid namespace: a grandchild.
fn probe_in_child() -> [u8; 5] {
    let code = |r: nix::Result<()>| r.err().map_or(0, |e| e as i32 as u8);
    let mut steps = [0u8; 5];
    let flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET;
    if let Err(e) = unshare(flags) {
        steps[0] = e as i32 as u8;
        return steps;
    }
    steps[1] = code(nix::unistd::sethostname("kiln"));
    let Ok((read, write)) = pipe() else {
        steps[2] = Errno::EPIPE as i32 as u8;
        return steps;
    };
    // SAFETY: the child is single-threaded; the grandchild makes syscalls and _exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(read);
            let none = None::<&str>;
            let bind = MsFlags::MS_BIND | MsFlags::MS_REC;
            let bound = mount(Some("/proc"), "/proc", none, bind, none)
                .and_then(|()| mount(Some("/sys"), "/sys", none, bind, none));
            let kernel_fs = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
            let mounts = [
                code(mount(Some("proc"), "/proc", Some("proc"), kernel_fs, none)),
                code(mount(
                    Some("sysfs"),
                    "/sys",
                    Some("sysfs"),
                    kernel_fs | MsFlags::MS_RDONLY,
                    none,
                )),
                code(bound),
            ];
            let _ = nix::unistd::write(&write, &mounts);
            // SAFETY: leaving the forked grandchild.
            unsafe { libc::_exit(0) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(write);
            let mut mounts = Vec::new();
            let _ = std::fs::File::from(read).read_to_end(&mut mounts);
            let _ = waitpid(child, None);
            if mounts.len() == 3 {
                steps[2..].copy_from_slice(&mounts);
            } else {
                steps[2] = Errno::ECHILD as i32 as u8;
            }
        }
        Err(e) => steps[2] = e as i32 as u8,
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: Place = Place {
        namespaces: None,
        hostname: None,
        fresh_proc: None,
        fresh_sysfs: None,
        bind: None,
    };

    #[test]
    fn a_masked_proc_and_seccomp_hostname_pick_bound_and_refuse_container() {
        let ci = Place {
            hostname: Some(Errno::EPERM),
            fresh_proc: Some(Errno::EPERM),
            fresh_sysfs: Some(Errno::EPERM),
            ..ALL
        };
        assert_eq!(
            choose(Choice::Auto, &ALL).unwrap().isolation,
            Isolation::Container
        );
        let chosen = choose(Choice::Auto, &ci).unwrap();
        assert_eq!(chosen.isolation, Isolation::Bound);
        assert!(
            chosen.why.starts_with("mounting a fresh /proc was refused (EPERM: Operation not permitted); mounting a fresh /sys was refused"),
            "{}",
            chosen.why
        );
        let err = choose(Choice::Container, &ci).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "the `container` isolation (--isolation or kiln.toml's `isolation`) cannot work here: mounting a fresh /proc was refused"
            ),
            "{err}"
        );
        assert!(err.fix().contains("--isolation bound"));
        assert_eq!(
            choose(Choice::Bound, &ALL).unwrap().isolation,
            Isolation::Bound
        );
        let nothing = Place {
            bind: Some(Errno::EPERM),
            ..ci
        };
        assert!(matches!(
            choose(Choice::Auto, &nothing),
            Err(Error::Bind(Errno::EPERM))
        ));
    }
}
