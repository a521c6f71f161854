//! Rootless builds: kiln re-executes itself in a user namespace where it is
//! root over the user's whole subordinate id range, as buildah does, so the
//! store, the overlays and the layers see the ids the containers use.
//!
//! Adapter until the runtime module (issue 4) lands on this branch; it uses
//! util-linux's `unshare --map-auto`, which runs newuidmap/newgidmap.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Context;

use crate::error::hinted;

/// Set in the re-executed kiln; also tells the runner to mount overlays
/// with `userxattr`.
pub const INSIDE: &str = "KILN_USERNS";

pub fn inside() -> bool {
    std::env::var_os(INSIDE).is_some_and(|v| v == "1")
}

/// `None` when this process may build as it is (root, or already inside);
/// else runs kiln again inside a user namespace and returns its exit code.
pub fn reexec() -> anyhow::Result<Option<ExitCode>> {
    if nix::unistd::geteuid().is_root() || inside() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())?
        .map(|u| u.name)
        .unwrap_or_else(|| nix::unistd::getuid().to_string());
    let has_range = |file: &str| {
        std::fs::read_to_string(file).is_ok_and(|t| {
            t.lines()
                .any(|l| l.split(':').next() == Some(user.as_str()))
        })
    };
    if !has_range("/etc/subuid") || !has_range("/etc/subgid") {
        return Err(hinted(
            format!(
                "user {user} has no subordinate id range in /etc/subuid and /etc/subgid: a rootless build needs one (Portage chowns files to its own users)"
            ),
            format!(
                "as root: `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}`"
            ),
        ));
    }
    let exe = std::env::current_exe().context("cannot find kiln's own executable")?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let status = Command::new("unshare")
        .args([
            "--user",
            "--map-auto",
            "--map-root-user",
            "--mount",
            "--propagation",
            "private",
            "--",
        ])
        .arg(exe)
        .args(args)
        .env(INSIDE, "1")
        .status()
        .context("cannot run unshare (util-linux) to enter a user namespace")?;
    let code = status.code().unwrap_or(1);
    Ok(Some(ExitCode::from(u8::try_from(code).unwrap_or(1))))
}
