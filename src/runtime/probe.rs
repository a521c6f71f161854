//! Probes of what this machine and process allow for user namespaces: a
//! leaf module, so that `userns` (which enters the namespace) and
//! `preflight` (which explains a failure, for `kiln doctor` and for the
//! error a failed enter shows) both use it and neither imports the other.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::{CloneFlags, unshare};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, Uid, fork};

/// Why newuidmap or newgidmap cannot map ids here.
#[derive(Debug, thiserror::Error)]
pub enum ToolProblem {
    #[error(
        "{tool} not found on PATH: it maps the subordinate ids of /etc/subuid into kiln's user namespace"
    )]
    Missing { tool: &'static str },
    #[error("{}: {error}", path.display())]
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is neither setuid root nor has file capabilities, so it cannot map other users' ids", path.display())]
    Unprivileged { path: PathBuf },
}

impl ToolProblem {
    pub fn fix(&self) -> String {
        match self {
            ToolProblem::Missing { .. } => "install it: sudo apt-get install uidmap (Debian/Ubuntu), sudo dnf install shadow-utils (Fedora)".into(),
            ToolProblem::Unreadable { .. } => "reinstall uidmap".into(),
            ToolProblem::Unprivileged { path } => {
                format!("sudo chown root {0} && sudo chmod u+s {0}", path.display())
            }
        }
    }
}

/// newuidmap / newgidmap: on PATH and setuid root (or with file capabilities).
pub fn idmap_tool(tool: &'static str) -> Result<PathBuf, ToolProblem> {
    let path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    let Some(path) = path else {
        return Err(ToolProblem::Missing { tool });
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        Err(error) => return Err(ToolProblem::Unreadable { path, error }),
    };
    let has_caps = xattr_present(&path, "security.capability");
    if (meta.mode() & 0o4000 != 0 && meta.uid() == 0) || has_caps {
        Ok(path)
    } else {
        Err(ToolProblem::Unprivileged { path })
    }
}

fn xattr_present(path: &std::path::Path, name: &str) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let (Ok(p), Ok(n)) = (
        std::ffi::CString::new(path.as_os_str().as_bytes()),
        std::ffi::CString::new(name),
    ) else {
        return false;
    };
    // SAFETY: valid C strings; a NULL buffer asks only for the size.
    unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), std::ptr::null_mut(), 0) > 0 }
}

/// The exact command that gives a user a subordinate range.
pub fn subid_fix(user: &str) -> String {
    format!("sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}")
}

/// Whether this process is in the machine's first user namespace.
pub fn in_initial_userns() -> bool {
    // The first namespace maps every id to itself: `0 0 4294967295`.
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let first: Vec<&str> = map
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    first == ["0", "0", "4294967295"]
}

/// Whether kiln may build without a user namespace: real root holding
/// CAP_SYS_ADMIN (bit 21 of CapEff). Root in a CI container is real root
/// without it, and could mount nothing there; it maps a range instead.
pub fn real_root_may_mount() -> bool {
    let cap_eff = fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    Uid::effective().is_root() && in_initial_userns() && cap_eff & (1 << 21) != 0
}

/// The first `user:start:count` line of a subid file for this user (by name or uid).
pub fn subid_entry(path: &str, user: &str, uid: u32) -> Option<(u32, u32)> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let mut f = line.trim().split(':');
        let (who, start, count) = (f.next()?, f.next()?, f.next()?);
        if who != user && who != uid.to_string() {
            return None;
        }
        let (start, count) = (start.parse().ok()?, count.parse().ok()?);
        (count > 0).then_some((start, count))
    })
}

/// The login name of a uid, or the number when it has none.
pub fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| uid.to_string())
}

/// Used by doctor: whether unshare(CLONE_NEWUSER) works, tried in a child.
pub fn try_unshare_user() -> Result<(), nix::Error> {
    // SAFETY: the child only calls unshare and _exit.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let code = match unshare(CloneFlags::CLONE_NEWUSER) {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            WaitStatus::Exited(_, code) => Err(nix::Error::from_raw(code)),
            _ => Err(nix::Error::EINTR),
        },
    }
}
