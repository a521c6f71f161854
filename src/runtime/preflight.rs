//! Preflight: what this machine must allow for rootless containers, each
//! problem with its exact fix. `kiln doctor` prints every check; `kiln run`
//! consults them when entering the user namespace fails, so the error names
//! the cause instead of a bare EPERM.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::runtime::userns;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

/// One check's outcome: what was found and, when not Ok, how to fix it.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub problem: String,
    pub fix: String,
}

impl Check {
    fn ok(name: &'static str, found: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            problem: found.into(),
            fix: String::new(),
        }
    }
    fn bad(
        name: &'static str,
        status: Status,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status,
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

fn sysctl(path: &str) -> Option<i64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The user-namespace sysctls: Debian's switch, the global limit, and
/// Ubuntu 24.04's AppArmor restriction.
pub fn sysctls() -> Vec<Check> {
    let mut out = Vec::new();
    match sysctl("/proc/sys/kernel/unprivileged_userns_clone") {
        Some(0) => out.push(Check::bad(
            "unprivileged user namespaces",
            Status::Fail,
            "kernel.unprivileged_userns_clone is 0: unprivileged user namespaces are disabled",
            "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and put it in /etc/sysctl.d/99-kiln.conf)",
        )),
        _ => out.push(Check::ok("unprivileged user namespaces", "allowed (kernel.unprivileged_userns_clone is 1 or absent)")),
    }
    match sysctl("/proc/sys/user/max_user_namespaces") {
        Some(0) => out.push(Check::bad(
            "user namespace limit",
            Status::Fail,
            "user.max_user_namespaces is 0: no user namespace can be created",
            "sudo sysctl -w user.max_user_namespaces=15000 (and put it in /etc/sysctl.d/99-kiln.conf)",
        )),
        v => out.push(Check::ok("user namespace limit", format!("user.max_user_namespaces = {}", v.map_or("?".into(), |v| v.to_string())))),
    }
    match sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") {
        Some(1) if nix::unistd::geteuid().as_raw() != 0 => out.push(Check::bad(
            "AppArmor user namespace restriction",
            Status::Fail,
            "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor denies user namespaces to unconfined programs such as kiln",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give kiln an AppArmor profile with `userns,` (see /etc/apparmor.d/ for examples)",
        )),
        v => out.push(Check::ok("AppArmor user namespace restriction", format!("not in the way ({})", v.map_or("sysctl absent".into(), |v| format!("= {v}"))))),
    }
    out
}

/// newuidmap / newgidmap: on PATH and setuid root (or with file capabilities).
pub fn check_idmap_tool(tool: &'static str) -> Result<PathBuf, Check> {
    let name = if tool == "newuidmap" {
        "newuidmap"
    } else {
        "newgidmap"
    };
    let path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_default();
    let Some(path) = path else {
        return Err(Check::bad(
            name,
            Status::Fail,
            format!(
                "{tool} not found on PATH: it maps the subordinate ids of /etc/subuid into kiln's user namespace"
            ),
            "install it: sudo apt-get install uidmap (Debian/Ubuntu), sudo dnf install shadow-utils (Fedora)",
        ));
    };
    let meta = fs::metadata(&path).map_err(|e| {
        Check::bad(
            name,
            Status::Fail,
            format!("{}: {e}", path.display()),
            "reinstall uidmap",
        )
    })?;
    let has_caps = xattr_present(&path, "security.capability");
    if (meta.mode() & 0o4000 != 0 && meta.uid() == 0) || has_caps {
        Ok(path)
    } else {
        Err(Check::bad(
            name,
            Status::Fail,
            format!(
                "{} is neither setuid root nor has file capabilities, so it cannot map other users' ids",
                path.display()
            ),
            format!("sudo chown root {0} && sudo chmod u+s {0}", path.display()),
        ))
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

/// Subordinate ranges of the current user (root uses kiln's own range).
pub fn subids() -> Check {
    let uid = nix::unistd::geteuid().as_raw();
    let user = userns::user_name(uid);
    if uid == 0 {
        return Check::ok(
            "subordinate ids",
            "running as root: kiln maps containers to a subordinate range itself",
        );
    }
    match (
        userns::subid_entry("/etc/subuid", &user, uid),
        userns::subid_entry("/etc/subgid", &user, uid),
    ) {
        (Some(u), Some(g)) => Check::ok(
            "subordinate ids",
            format!("{user}: uids {}+{}, gids {}+{}", u.0, u.1, g.0, g.1),
        ),
        _ => Check::bad(
            "subordinate ids",
            Status::Warn,
            format!(
                "{user} has no subordinate id range in /etc/subuid and /etc/subgid: containers get a single-id mapping, where files cannot belong to other users"
            ),
            subid_fix(&user),
        ),
    }
}

/// Whether this process may create a user namespace at all; when not, say
/// whether a seccomp filter (a container's default profile) is the cause.
pub fn unshare() -> Check {
    let name = "creating a user namespace";
    if !userns::in_initial_userns() && nix::unistd::geteuid().as_raw() == 0 {
        return Check::ok(name, "already root in a user namespace: kiln uses it");
    }
    match userns::try_unshare_user() {
        Ok(()) => Check::ok(name, "unshare(CLONE_NEWUSER) works"),
        Err(e) => {
            let seccomp = fs::read_to_string("/proc/self/status")
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("Seccomp:") && l.trim_end().ends_with('2'));
            if seccomp {
                Check::bad(
                    name,
                    Status::Fail,
                    format!(
                        "unshare(CLONE_NEWUSER) fails ({e}) and a seccomp filter is active: kiln runs inside a container whose seccomp profile blocks unshare"
                    ),
                    "run that container with `--security-opt seccomp=unconfined` (docker/podman) or a profile allowing unshare and clone with CLONE_NEWUSER",
                )
            } else {
                Check::bad(
                    name,
                    Status::Fail,
                    format!("unshare(CLONE_NEWUSER) fails: {e}"),
                    "check the sysctls above and whether a security module (AppArmor, SELinux) denies user namespaces",
                )
            }
        }
    }
}

/// Every check but overlay (which needs the namespace; doctor adds it).
pub fn all() -> Vec<Check> {
    let mut checks = sysctls();
    checks.push(unshare());
    for tool in ["newuidmap", "newgidmap"] {
        checks.push(match check_idmap_tool(tool) {
            Ok(p) => Check::ok(
                if tool == "newuidmap" {
                    "newuidmap"
                } else {
                    "newgidmap"
                },
                format!("{} is usable", p.display()),
            ),
            Err(mut c) => {
                if nix::unistd::geteuid().as_raw() == 0
                    || userns::subid_entry(
                        "/etc/subuid",
                        &userns::user_name(nix::unistd::geteuid().as_raw()),
                        nix::unistd::geteuid().as_raw(),
                    )
                    .is_none()
                {
                    c.status = Status::Warn;
                }
                c
            }
        });
    }
    checks.push(subids());
    checks
}

/// The first failing check, used to explain a failed unshare.
pub fn first_failure() -> Option<Check> {
    let mut checks = sysctls();
    checks.push(unshare());
    checks.into_iter().find(|c| c.status == Status::Fail)
}
