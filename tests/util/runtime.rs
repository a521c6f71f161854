//! Helpers for the runtime tests: a busybox-static rootfs, the kiln binary
//! where the unprivileged test users can run it, and commands run as them.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A copy of the kiln binary in a world-readable dir (the repo may not be
/// traversable by the test users).
pub fn kiln_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // one fixed dir, the binary replaced by rename: no copy piles up
        let dir = std::env::temp_dir().join("kiln-test-bin");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tmp = dir.join(format!("kiln.{}", std::process::id()));
        std::fs::copy(super::kiln_path(), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("kiln");
        std::fs::rename(&tmp, &bin).unwrap();
        bin
    })
    .clone()
}

/// A rootfs with /bin/busybox (Debian's busybox-static) and its applets.
pub fn busybox_rootfs(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static installed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
    }
    for d in ["etc", "tmp", "data"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(dir.join("data/keep"), "lower\n").unwrap();
    std::fs::write(dir.join("data/gone"), "lower\n").unwrap();
}

/// A temp dir that `user` owns (or root when `None`), world-traversable.
pub fn owned_dir(user: Option<&str>) -> tempfile::TempDir {
    let dir = super::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if let Some(user) = user {
        chown_r(user, dir.path());
    }
    dir
}

pub fn chown_r(user: &str, path: &Path) {
    super::run_ok(Command::new("chown").args(["-R", user]).arg(path));
}

/// Who runs kiln in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum As<'a> {
    Root,
    User(&'a str),
    /// root inside `unshare --user --map-root-user --mount`, as a CI job may be
    Unshared,
}

/// `kiln ARGS` as `who`, with its cache in `cache`.
pub fn kiln_as(who: As, cache: &Path) -> Command {
    let mut cmd = match who {
        As::Root => Command::new(kiln_bin()),
        As::User(u) => {
            let mut c = Command::new("runuser");
            c.args(["-u", u, "--"]).arg(kiln_bin());
            c
        }
        As::Unshared => {
            let mut c = Command::new("unshare");
            c.args(["--user", "--map-root-user", "--mount"])
                .arg(kiln_bin());
            c
        }
    };
    cmd.env("KILN_CACHE_DIR", cache)
        .env("KILN_NO_PROGRESS", "1")
        .env("NO_COLOR", "1");
    cmd
}

/// sha256 of every file under `dir` with its mode and owner: a tree hash.
pub fn tree_hash(dir: &Path) -> String {
    let out = super::run_ok(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -printf '%p %m %U %G %y %l\\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum",
        dir.display()
    )));
    String::from_utf8_lossy(&out.stdout).into_owned()
}
