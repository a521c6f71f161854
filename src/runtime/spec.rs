//! The OCI runtime spec kiln hands to libcontainer: a docker-like container
//! (capabilities, /proc, /dev, tmpfs /tmp and /run, devpts, shm), with no
//! user namespace in the spec (kiln is already root of its own, so the
//! container inherits it) and no cgroup resources (rootless cannot write
//! them). What libcontainer 0.7 does unasked, and this spec avoids: it
//! SIGKILLs every process of the container's cgroup on delete (so the cgroup
//! path is always unique and absolute, never "" or "/", which would take the
//! caller or the machine with it); as root its default cgroup path moves the
//! container out of the caller's memory cgroup; an empty `resources` makes it
//! write devices.allow (EPERM rootless); its default capabilities are too few
//! for emerge (CHOWN, DAC_OVERRIDE, FOWNER, SETUID... are needed: podman's
//! set); its default devpts mount has gid=5 (EINVAL rootless). Like
//! podman's, the container gets its own network namespace unless asked,
//! /proc's kernel knobs read-only or hidden, /sys read-only all the way
//! down, and a seccomp filter (confine.rs); docs/security.md says what that
//! leaves a hostile build.

use std::path::{Path, PathBuf};

use super::Error;
use super::isolation::Isolation;
use libcontainer::oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    Mount, MountBuilder, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

/// A bind mount from the host into the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub host: PathBuf,
    pub container: PathBuf,
    pub readonly: bool,
}

impl std::str::FromStr for Bind {
    type Err = String;

    /// `HOST:CTR[:ro|rw]`, as docker's `-v`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(':').collect();
        let (host, ctr, readonly) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            _ => return Err(format!("`{s}` is not HOST:CONTAINER[:ro|rw]")),
        };
        if !ctr.starts_with('/') {
            return Err(format!(
                "the container path `{ctr}` in `{s}` must be absolute"
            ));
        }
        let host =
            std::fs::canonicalize(host).map_err(|e| format!("host path `{host}` in `{s}`: {e}"))?;
        Ok(Bind {
            host,
            container: ctr.into(),
            readonly,
        })
    }
}

/// Network of the container: its own with only `lo` (default), or the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Network {
    #[default]
    None,
    Host,
}

/// The process to run: already resolved ids, env, cwd.
#[derive(Debug, Clone)]
pub struct Process {
    /// On a pty made by libcontainer (`kiln run -t`).
    pub terminal: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Podman's default set (containers.conf): enough for package managers
/// (chown, setuid helpers) without the admin capabilities; no NET_RAW (a
/// raw socket sees the network namespace's traffic), MKNOD or AUDIT_WRITE,
/// which docker still gives.
const CAPS: [Capability; 11] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
];

/// What podman hides (an empty file or dir over it): kernel memory, key
/// and timer lists, firmware tables, block device nodes' sysfs.
const MASKED: [&str; 12] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/interrupts",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];

/// What podman makes read-only: the kernel's settings (/proc/sys holds
/// core_pattern, which the host runs as root) and /proc/sysrq-trigger. A
/// root build runs as the host's root, so these matter there above all.
const READONLY: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn mount(dst: &str, typ: &str, src: &str, opts: &[&str]) -> Result<Mount, Error> {
    Ok(MountBuilder::default()
        .destination(dst)
        .typ(typ)
        .source(src)
        .options(opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()?)
}

/// A path as the spec holds it.
fn utf8(path: &Path) -> Result<&str, Error> {
    path.to_str().ok_or_else(|| Error::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// Build the spec for one container.
/// `netns`: join this (pinned) network namespace; `None` shares the host's.
/// `isolation`: [`Isolation::Bound`] binds kiln's /proc and /sys instead of
/// mounting them fresh and leaves the hostname alone (isolation.rs).
pub fn build(
    rootfs: &Path,
    process: &Process,
    binds: &[Bind],
    netns: Option<&Path>,
    cgroup: &str,
    isolation: Isolation,
) -> Result<Spec, Error> {
    let caps: std::collections::HashSet<Capability> = CAPS.into_iter().collect();
    // CAP_SYS_ADMIN is permitted but not effective: the container's init
    // raises it only to install kiln's seccomp filter, then drops it from
    // every set before the command runs (confine.rs).
    let mut held = caps.clone();
    held.insert(Capability::SysAdmin);
    let capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(held.clone())
        .effective(caps)
        .permitted(held)
        .inheritable(std::collections::HashSet::new())
        .ambient(std::collections::HashSet::new())
        .build()?;
    let user = UserBuilder::default()
        .uid(process.uid)
        .gid(process.gid)
        .additional_gids(process.groups.clone())
        .build()?;
    let mut proc = ProcessBuilder::default()
        .args(process.args.clone())
        .env(process.env.clone())
        .cwd(process.cwd.clone())
        .user(user)
        .capabilities(capabilities)
        .no_new_privileges(false)
        .terminal(process.terminal)
        .build()?;
    proc.set_rlimits(None);

    let kernel_fs = ["nosuid", "noexec", "nodev"];
    let mut mounts = vec![
        if isolation.fresh_kernel_fs() {
            mount("/proc", "proc", "proc", &kernel_fs)?
        } else {
            // kiln's own, with what masks it (the masked and read-only paths
            // below are laid over it all the same)
            mount(
                "/proc",
                "none",
                "/proc",
                &["rbind", "nosuid", "noexec", "nodev"],
            )?
        },
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        // no gid=5: libcontainer's default devpts option gives EINVAL rootless
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount("/tmp", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=1777"])?,
        mount("/run", "tmpfs", "tmpfs", &["nosuid", "nodev", "mode=755"])?,
    ];
    // sysfs shows the network namespace it was mounted in: a fresh one when
    // the container has its own (no submounts, so no cgroup tree), the
    // host's otherwise (and kiln's own, with the namespace kiln sees, where
    // a fresh one is refused), bound with everything mounted under it (kiln's
    // cgroup2 at /sys/fs/cgroup among them) read-only throughout: `ro` on
    // a recursive bind covers only its top mount, `rro` every one below.
    mounts.push(match netns.filter(|_| isolation.fresh_kernel_fs()) {
        Some(_) => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        None => mount(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro", "rro"],
        )?,
    });
    if netns.is_none() {
        for file in ["/etc/resolv.conf", "/etc/hosts"] {
            if Path::new(file).exists() {
                mounts.push(mount(
                    file,
                    "none",
                    file,
                    &["rbind", "ro", "nosuid", "nodev", "noexec"],
                )?);
            }
        }
    }
    for b in binds {
        let (host, dst) = (utf8(&b.host)?, utf8(&b.container)?);
        let mode: &[&str] = if b.readonly {
            &["rbind", "ro", "rro"]
        } else {
            &["rbind", "rw"]
        };
        mounts.push(mount(dst, "none", host, mode)?);
    }

    let kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    let mut namespaces = kinds
        .into_iter()
        .map(|t| LinuxNamespaceBuilder::default().typ(t).build())
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = netns {
        namespaces.push(
            LinuxNamespaceBuilder::default()
                .typ(LinuxNamespaceType::Network)
                .path(path)
                .build()?,
        );
    }
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(cgroup))
        .masked_paths(MASKED.map(String::from).to_vec())
        .readonly_paths(READONLY.map(String::from).to_vec())
        .build()?;
    // The builder's default Some(empty) makes libcontainer write
    // devices.allow, which fails rootless.
    linux.set_resources(None);

    let mut spec = SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(false)
                .build()?,
        )
        .process(proc)
        .mounts(mounts)
        .linux(linux)
        .build()?;
    // libcontainer sets a hostname given with a new uts namespace; where
    // sethostname is refused the container keeps the place's.
    spec.set_hostname(isolation.fresh_kernel_fs().then(|| "kiln".to_string()));
    Ok(spec)
}
