//! Preflight: what this machine must allow for rootless containers, each
//! problem with its exact fix. `kiln doctor` prints every check; `kiln run`
//! consults them when entering the user namespace fails, so the error names
//! the cause instead of a bare EPERM.

use std::fs;

use super::probe::{self, subid_fix};

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
        // it spares only CAP_SYS_ADMIN: root in a CI container lacks it too
        Some(1) if !probe::real_root_may_mount() => out.push(Check::bad(
            "AppArmor user namespace restriction",
            Status::Fail,
            "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor denies user namespaces to unconfined programs such as kiln",
            "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (on the host, when kiln runs in a container), or give kiln an AppArmor profile with `userns,` (see /etc/apparmor.d/ for examples)",
        )),
        v => out.push(Check::ok("AppArmor user namespace restriction", format!("not in the way ({})", v.map_or("sysctl absent".into(), |v| format!("= {v}"))))),
    }
    out
}

/// Subordinate ranges of the current user (root uses kiln's own range).
pub fn subids() -> Check {
    let uid = nix::unistd::geteuid().as_raw();
    let user = probe::user_name(uid);
    if uid == 0 {
        return Check::ok(
            "subordinate ids",
            "running as root: kiln maps containers to a subordinate range itself",
        );
    }
    match (
        probe::subid_entry("/etc/subuid", &user, uid),
        probe::subid_entry("/etc/subgid", &user, uid),
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
    if !probe::in_initial_userns() && nix::unistd::geteuid().as_raw() == 0 {
        return Check::ok(name, "already root in a user namespace: kiln uses it");
    }
    match probe::try_unshare_user() {
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
                    "run that container with `--security-opt seccomp=unconfined` (docker/podman) or a profile allowing unshare and clone with CLONE_NEWUSER (podman's default does), and on AppArmor hosts `--security-opt apparmor=unconfined`: docs/ci.md",
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
        let name = if tool == "newuidmap" {
            "newuidmap"
        } else {
            "newgidmap"
        };
        checks.push(match probe::idmap_tool(tool) {
            Ok(p) => Check::ok(name, format!("{} is usable", p.display())),
            Err(problem) => {
                // Only a user with a subordinate range needs the tools.
                let uid = nix::unistd::geteuid().as_raw();
                let needed = uid != 0
                    && probe::subid_entry("/etc/subuid", &probe::user_name(uid), uid).is_some();
                let status = if needed { Status::Fail } else { Status::Warn };
                Check::bad(name, status, problem.to_string(), problem.fix())
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
