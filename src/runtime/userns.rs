//! The user namespace kiln enters before it mounts or runs anything.
//!
//! kiln works the way podman and buildah do rootless: the kiln process itself
//! enters a new user, mount and cgroup namespace first, becomes "root" there,
//! mounts overlays and drives libcontainer from inside: rootless, a user
//! namespace in the container's spec fails on cgroup v1 hosts unless root
//! prepared cgroup dirs once, while this way needs no root step at all.
//! Everything kiln does afterwards (unpacking layers, writing layers) sees
//! in-container ids, which is how ids get back out to the OCI writer.
//! The mapping is chosen from who runs kiln; [`UserNs::explain`] says why.

use std::fs;
use std::io::{Read, Write};
use std::process::Command;

use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Gid, Pid, Uid, fork, getegid, geteuid, pipe};

use super::probe::{self, ToolProblem, in_initial_userns, subid_entry, subid_fix, user_name};

/// Why kiln could not choose or enter its user namespace. A failed
/// unshare carries no hint of its own: the caller asks `preflight` why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("--no-userns needs real root")]
    NoUsernsNeedsRoot,
    #[error(transparent)]
    IdMapTool(ToolProblem),
    #[error(
        "kiln started {threads} threads before entering its user namespace (a bug in kiln: enter it first)"
    )]
    Threads { threads: String },
    #[error("cannot create kiln's user namespace: {0}")]
    Unshare(nix::Error),
    #[error("{what} in kiln's user namespace failed: {error}")]
    Setup {
        what: &'static str,
        error: nix::Error,
    },
    #[error("writing {path}: {error}")]
    WriteMap { path: String, error: std::io::Error },
    #[error("mapping ids into kiln's user namespace failed: {0}")]
    IdMap(String),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::NoUsernsNeedsRoot => {
                Some("drop --no-userns: kiln then maps container ids into a user namespace".into())
            }
            Error::IdMapTool(problem) => Some(problem.fix()),
            Error::IdMap(_) => Some("run `kiln doctor` to see what this machine lacks".into()),
            _ => None,
        }
    }
}

type Result<T, E = Error> = std::result::Result<T, E>;

/// One line of an id map: `inside` ids start at `outside` in the parent namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// How container ids relate to host ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A normal user with a subordinate range: root = the user, 1..=N = the range.
    Subuid,
    /// A normal user with no range: only root (= the user) exists inside.
    Single,
    /// Real root: container ids live in a subordinate range, root is not root.
    RootRange,
    /// kiln already runs as root of a user namespace someone else made (CI).
    Inherited,
    /// `--no-userns` as real root: container root is host root.
    Host,
}

/// The chosen user namespace, before and after [`UserNs::enter`].
#[derive(Debug, Clone)]
pub struct UserNs {
    pub mode: Mode,
    pub why: String,
    pub uid_map: Vec<IdRange>,
    pub gid_map: Vec<IdRange>,
    pub user: String,
}

/// The range real root uses when /etc/subuid has no `root` entry: far above
/// any range `useradd` hands out, so it meets no user's files.
const ROOT_DEFAULT_START: u32 = 1_000_000_000;
const RANGE: u32 = 65536;

impl UserNs {
    /// Decide the mapping for the current user; nothing is changed yet.
    pub fn plan(no_userns: bool) -> Result<UserNs> {
        let (uid, gid) = (geteuid().as_raw(), getegid().as_raw());
        let user = user_name(uid);
        let in_initial = in_initial_userns();
        let one = |id| {
            vec![IdRange {
                inside: 0,
                outside: id,
                count: 1,
            }]
        };
        let mut ns = UserNs {
            mode: Mode::Host,
            why: String::new(),
            uid_map: one(uid),
            gid_map: one(gid),
            user: user.clone(),
        };
        if no_userns {
            if uid != 0 || !in_initial {
                return Err(Error::NoUsernsNeedsRoot);
            }
            ns.why = "real root builds (and `kiln run --no-userns` runs) with no user namespace: container root is the host's root".into();
            ns.uid_map = vec![IdRange {
                inside: 0,
                outside: 0,
                count: u32::MAX,
            }];
            ns.gid_map = ns.uid_map.clone();
            return Ok(ns);
        }
        if uid == 0 && !in_initial {
            ns.mode = Mode::Inherited;
            ns.uid_map = read_map("/proc/self/uid_map");
            ns.gid_map = read_map("/proc/self/gid_map");
            let ids: u64 = ns.uid_map.iter().map(|r| r.count as u64).sum();
            ns.why = format!(
                "kiln already runs as root of a user namespace ({ids} id(s) mapped): containers use it as it is{}",
                if ids < RANGE as u64 {
                    "; files can belong only to the mapped ids"
                } else {
                    ""
                }
            );
            return Ok(ns);
        }
        if uid == 0 {
            let (u, g, src) = match (
                subid_entry("/etc/subuid", "root", 0),
                subid_entry("/etc/subgid", "root", 0),
            ) {
                (Some(u), Some(g)) => (
                    u,
                    g,
                    "the `root` entries of /etc/subuid and /etc/subgid".to_string(),
                ),
                _ => (
                    (ROOT_DEFAULT_START, RANGE),
                    (ROOT_DEFAULT_START, RANGE),
                    "kiln's fixed range (no `root` entry in /etc/subuid; add `root:START:65536` to /etc/subuid and /etc/subgid to choose one)".to_string(),
                ),
            };
            ns.mode = Mode::RootRange;
            ns.uid_map = root_map(u);
            ns.gid_map = root_map(g);
            ns.why = format!(
                "running as root: container ids 0-{} are host ids {}-{} from {src}, so root in the container is not root on the host (--no-userns turns this off); host root shows as {} inside",
                u.1 - 1,
                u.0,
                u.0 + u.1 - 1,
                u.1
            );
            return Ok(ns);
        }
        let entries = (
            subid_entry("/etc/subuid", &user, uid),
            subid_entry("/etc/subgid", &user, uid),
        );
        match entries {
            (Some(u), Some(g)) if in_initial => {
                for tool in ["newuidmap", "newgidmap"] {
                    probe::idmap_tool(tool).map_err(Error::IdMapTool)?;
                }
                ns.mode = Mode::Subuid;
                ns.uid_map.push(IdRange {
                    inside: 1,
                    outside: u.0,
                    count: u.1,
                });
                ns.gid_map.push(IdRange {
                    inside: 1,
                    outside: g.0,
                    count: g.1,
                });
                ns.why = format!(
                    "{user} has the subordinate range {}-{} (/etc/subuid): container root is {user} (uid {uid}), container ids 1-{} are that range, mapped by newuidmap/newgidmap",
                    u.0,
                    u.0 + u.1 - 1,
                    u.1
                );
            }
            _ => {
                ns.mode = Mode::Single;
                ns.why = if in_initial {
                    format!(
                        "{user} has no subordinate id range in /etc/subuid and /etc/subgid: single-id mapping, container root is {user} (uid {uid}); files cannot belong to other users and chown to them fails (fix: {})",
                        subid_fix(&user)
                    )
                } else {
                    format!(
                        "kiln runs as uid {uid} inside a user namespace: single-id mapping, container root is uid {uid}; files cannot belong to other users"
                    )
                };
            }
        }
        Ok(ns)
    }

    /// The host uid a container uid lands on (from kiln's parent namespace).
    pub fn host_uid(&self, uid: u32) -> Option<u32> {
        map_id(&self.uid_map, uid)
    }

    pub fn host_gid(&self, gid: u32) -> Option<u32> {
        map_id(&self.gid_map, gid)
    }

    /// The mode, why it was chosen and the maps, for `--explain` and `-v`.
    pub fn explain(&self) -> String {
        let fmt = |m: &[IdRange]| {
            m.iter()
                .map(|r| format!("{} {} {}", r.inside, r.outside, r.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "user namespace: {}\n  why: {}\n  uid map (inside outside count): {}\n  gid map (inside outside count): {}",
            self.mode_name(),
            self.why,
            fmt(&self.uid_map),
            fmt(&self.gid_map)
        )
    }

    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Subuid => "subordinate range (newuidmap)",
            Mode::Single => "single id",
            Mode::RootRange => "root mapped to a subordinate range",
            Mode::Inherited => "inherited",
            Mode::Host => "none (host root)",
        }
    }

    /// A short name for the mapping: unpacked layers are kept per mapping,
    /// since the same layer unpacked under another map has other owners.
    pub fn cache_key(&self) -> String {
        use sha2::Digest;
        let text = format!("{:?}{:?}", self.uid_map, self.gid_map);
        let hash = sha2::Sha256::digest(text.as_bytes());
        hash[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Enter the namespaces. The process must still be single-threaded.
    pub fn enter(&self) -> Result<()> {
        let threads = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Threads:").map(|v| v.trim().to_string()))
            })
            .unwrap_or_default();
        if threads != "1" {
            return Err(Error::Threads { threads });
        }
        let mount_ns = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWCGROUP;
        match self.mode {
            Mode::Host | Mode::Inherited => unshare(mount_ns).map_err(Error::Unshare)?,
            Mode::Single => {
                unshare(CloneFlags::CLONE_NEWUSER | mount_ns).map_err(Error::Unshare)?;
                fs::write("/proc/self/setgroups", "deny").map_err(|error| Error::WriteMap {
                    path: "/proc/self/setgroups".into(),
                    error,
                })?;
                write_map("/proc/self/uid_map", &self.uid_map)?;
                write_map("/proc/self/gid_map", &self.gid_map)?;
            }
            Mode::Subuid | Mode::RootRange => {
                self.enter_with_helper(CloneFlags::CLONE_NEWUSER | mount_ns)?;
                let setup = |what| move |error| Error::Setup { what, error };
                nix::unistd::setresgid(Gid::from_raw(0), Gid::from_raw(0), Gid::from_raw(0))
                    .map_err(setup("setresgid(0)"))?;
                nix::unistd::setresuid(Uid::from_raw(0), Uid::from_raw(0), Uid::from_raw(0))
                    .map_err(setup("setresuid(0)"))?;
                nix::unistd::setgroups(&[]).map_err(setup("setgroups([])"))?;
            }
        }
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|error| Error::Setup {
            what: "making / private",
            error,
        })?;
        // Hide the host's cgroup v1 tree: libcgroups then uses its v2 manager,
        // which leaves the container in kiln's cgroup when it may not write.
        // Read-only in a user namespace: libcgroups then skips the cgroup
        // (EROFS counts as "rootless, not allowed"), which saves moving every
        // container into a new cgroup (16 ms here) when kiln sets no limits.
        let flags = if self.mode == Mode::Host {
            MsFlags::empty()
        } else {
            MsFlags::MS_RDONLY
        };
        let _ = mount(
            Some("none"),
            "/sys/fs/cgroup",
            Some("cgroup2"),
            flags,
            None::<&str>,
        );
        Ok(())
    }

    /// newuidmap must write the map of a process that already unshared, from
    /// outside: a forked helper waits for the signal, maps, and its exit
    /// status is checked (libcontainer, left to map ids itself, writes a
    /// one-line map directly, which fails unprivileged, and never checks
    /// newuidmap's exit status).
    fn enter_with_helper(&self, flags: CloneFlags) -> Result<()> {
        let pipes = |error| Error::Setup {
            what: "a pipe to the id-map helper",
            error,
        };
        let (go_r, go_w) = pipe().map_err(pipes)?;
        let (err_r, err_w) = pipe().map_err(pipes)?;
        let parent = nix::unistd::getpid();
        // SAFETY: kiln is single-threaded here (checked by the caller).
        match unsafe { fork() }.map_err(|error| Error::Setup {
            what: "fork of the id-map helper",
            error,
        })? {
            ForkResult::Child => {
                drop(go_w);
                drop(err_r);
                let mut byte = [0u8; 1];
                let code = match fs::File::from(go_r).read(&mut byte) {
                    Ok(1) => match self.write_maps(parent) {
                        Ok(()) => 0,
                        Err(msg) => {
                            let _ = fs::File::from(err_w).write_all(msg.as_bytes());
                            1
                        }
                    },
                    _ => 2,
                };
                // SAFETY: end the forked child without running the parent's destructors.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(go_r);
                drop(err_w);
                let unshared = unshare(flags);
                if unshared.is_ok() {
                    let _ = nix::unistd::write(&go_w, b"x");
                }
                drop(go_w);
                let status = waitpid(child, None);
                let mut msg = String::new();
                let _ = fs::File::from(err_r).read_to_string(&mut msg);
                unshared.map_err(Error::Unshare)?;
                match status {
                    Ok(WaitStatus::Exited(_, 0)) => Ok(()),
                    _ => Err(Error::IdMap(msg.trim().to_string())),
                }
            }
        }
    }

    fn write_maps(&self, pid: Pid) -> Result<(), String> {
        if self.mode == Mode::RootRange {
            for (file, map) in [("uid_map", &self.uid_map), ("gid_map", &self.gid_map)] {
                write_map(&format!("/proc/{pid}/{file}"), map).map_err(|e| e.to_string())?;
            }
            return Ok(());
        }
        for (tool, map) in [("newuidmap", &self.uid_map), ("newgidmap", &self.gid_map)] {
            let mut cmd = Command::new(tool);
            cmd.arg(pid.to_string());
            for r in map {
                cmd.args([r.inside, r.outside, r.count].map(|v| v.to_string()));
            }
            let out = cmd.output().map_err(|e| format!("{tool}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{} exited with {}: {}",
                    describe_cmd(&cmd),
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

fn describe_cmd(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn root_map((start, count): (u32, u32)) -> Vec<IdRange> {
    // Host root stays reachable (as id `count`) so kiln can still use its
    // own files, e.g. the cache under /root.
    vec![
        IdRange {
            inside: 0,
            outside: start,
            count,
        },
        IdRange {
            inside: count,
            outside: 0,
            count: 1,
        },
    ]
}

pub(crate) fn map_id(map: &[IdRange], id: u32) -> Option<u32> {
    map.iter()
        .find(|r| id >= r.inside && (id - r.inside) < r.count)
        .map(|r| r.outside + (id - r.inside))
}

fn write_map(path: &str, map: &[IdRange]) -> Result<()> {
    let text: String = map
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.count))
        .collect();
    fs::write(path, text).map_err(|error| Error::WriteMap {
        path: path.into(),
        error,
    })
}

pub(crate) fn read_map(path: &str) -> Vec<IdRange> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: Vec<u32> = l
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            (v.len() == 3).then(|| IdRange {
                inside: v[0],
                outside: v[1],
                count: v[2],
            })
        })
        .collect()
}
