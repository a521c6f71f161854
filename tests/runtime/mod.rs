//! The runtime (issue 4): real libcontainer containers over a busybox-static
//! rootfs, as root, as an unprivileged user with and without a subordinate
//! range, and inside `unshare --user --map-root-user --mount`.

mod fs;
mod images;
mod lifecycle;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::runtime::{As, busybox_rootfs, kiln_as, kiln_bin, owned_dir, tree_hash};
use crate::util::{describe, require_env, require_tool, run_ok, stderr, stdout};

/// Users to test: root, the subuid user, the no-subuid user, unshare'd root.
fn everyone() -> Option<Vec<(As<'static>, String)>> {
    let sub = require_env("KILN_TEST_USER_SUB")?;
    let nosub = require_env("KILN_TEST_USER_NOSUB")?;
    let sub: &'static str = Box::leak(sub.into_boxed_str());
    let nosub: &'static str = Box::leak(nosub.into_boxed_str());
    Some(vec![
        (As::Root, "root".into()),
        (As::User(sub), sub.into()),
        (As::User(nosub), nosub.into()),
        (As::Unshared, "unshared".into()),
    ])
}

fn owner(who: As<'_>) -> Option<&str> {
    match who {
        As::User(u) => Some(u),
        _ => None,
    }
}

fn sh(who: As, cache: &Path, rootfs: &Path, extra: &[&str], script: &str) -> std::process::Output {
    let mut cmd = kiln_as(who, cache);
    cmd.arg("run")
        .args(extra)
        .arg("--rootfs")
        .arg(rootfs)
        .args(["--", "sh", "-c", script]);
    cmd.output().unwrap()
}

fn run_dir_empty(cache: &Path) -> bool {
    std::fs::read_dir(cache.join("run")).map_or(true, |mut d| d.next().is_none())
}

fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn processes_matching(marker: &str) -> usize {
    let out = Command::new("pgrep")
        .args(["-f", &format!("^{marker}")])
        .output()
        .unwrap();
    stdout(&out).lines().count()
}

#[test]
fn exit_codes_streams_ids_and_ownership_in_every_mode() {
    let Some(users) = everyone() else { return };
    for (who, name) in users {
        let root = owned_dir(owner(who));
        busybox_rootfs(&root.path().join("rootfs"));
        std::fs::create_dir(root.path().join("out")).unwrap();
        let cache = root.path().join("cache");
        std::fs::create_dir(&cache).unwrap();
        if let Some(u) = owner(who) {
            crate::util::runtime::chown_r(u, root.path());
        }
        let rootfs = root.path().join("rootfs");
        for code in [0, 1, 42] {
            let out = sh(who, &cache, &rootfs, &[], &format!("exit {code}"));
            assert_eq!(out.status.code(), Some(code), "{name}: {}", describe(&out));
        }
        let out = sh(who, &cache, &rootfs, &[], "kill -9 $$");
        assert_eq!(
            out.status.code(),
            Some(137),
            "{name}: killed by SIGKILL: {}",
            describe(&out)
        );

        let out = sh(who, &cache, &rootfs, &[], "echo to-out; echo to-err >&2");
        assert_eq!(stdout(&out), "to-out\n", "{name}");
        assert!(
            stderr(&out).ends_with("to-err\n"),
            "{name}: {}",
            describe(&out)
        );

        let bind = format!("{}:/out", root.path().join("out").display());
        let out = sh(
            who,
            &cache,
            &rootfs,
            &["--volume", &bind],
            "id -u; cat /proc/self/uid_map; echo x > /out/f; chown 1000:1000 /out/f",
        );
        let text = stdout(&out);
        assert!(text.starts_with("0\n"), "{name}: {}", describe(&out));
        let map: Vec<Vec<u64>> = text
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
            .collect();
        let host_of = |id: u64| {
            map.iter()
                .find(|r| id >= r[0] && id < r[0] + r[2])
                .map(|r| r[1] + id - r[0])
        };
        let uid = std::fs::metadata(root.path().join("out/f")).unwrap().uid() as u64;
        match who {
            As::User(u) if u == "kiln-nosub" || map.len() == 1 => {
                assert!(!out.status.success(), "{name}: chown must fail with one id");
                assert!(
                    stderr(&out).contains("Invalid argument"),
                    "{name}: {}",
                    describe(&out)
                );
                assert!(
                    stderr(&out).contains("has no subordinate id range in /etc/subuid and /etc/subgid: single-id mapping"),
                    "{name}: {}",
                    describe(&out)
                );
            }
            As::Unshared => assert_eq!(map, vec![vec![0, 0, 1]], "{name}"),
            _ => {
                assert!(out.status.success(), "{name}: {}", describe(&out));
                assert_eq!(
                    Some(uid),
                    host_of(1000),
                    "{name}: file chowned to 1000 inside, map {map:?}"
                );
                assert!(
                    uid >= 100_000,
                    "{name}: 1000 inside must be a subordinate id, got {uid}"
                );
                // and it maps back to 1000 for whoever reads it inside kiln's namespace
                let out = sh(
                    who,
                    &cache,
                    &rootfs,
                    &["--volume", &bind],
                    "stat -c %u /out/f",
                );
                assert_eq!(stdout(&out), "1000\n", "{name}: {}", describe(&out));
            }
        }
        assert!(
            run_dir_empty(&cache),
            "{name}: state left in {}",
            cache.display()
        );
    }
}

#[test]
fn preflight_failures_give_their_messages() {
    let (Some(sub), Some(nosub)) = (
        require_env("KILN_TEST_USER_SUB"),
        require_env("KILN_TEST_USER_NOSUB"),
    ) else {
        return;
    };
    let dir = owned_dir(Some(&sub));
    let out = Command::new("runuser")
        .args(["-u", &sub, "--", "env", "PATH=/nowhere"])
        .arg(kiln_bin())
        .args(["run", "--explain"])
        .env("KILN_CACHE_DIR", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("error: newuidmap not found on PATH: it maps the subordinate ids of /etc/subuid into kiln's user namespace"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("hint: install it: sudo apt-get install uidmap"),
        "{}",
        describe(&out)
    );

    let dir = owned_dir(Some(&nosub));
    let out = kiln_as(As::User(&nosub), dir.path())
        .arg("doctor")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!("warn subordinate ids: {nosub} has no subordinate id range in /etc/subuid and /etc/subgid")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fix: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {nosub}"
        )),
        "{text}"
    );
    assert!(text.contains("ok   overlay: kernel overlayfs"), "{text}");

    // a user the single-id map cannot give is refused before anything runs
    let dir = owned_dir(Some(&nosub));
    busybox_rootfs(&dir.path().join("rootfs"));
    crate::util::runtime::chown_r(&nosub, dir.path());
    let out = sh(
        As::User(&nosub),
        dir.path(),
        &dir.path().join("rootfs"),
        &["-u", "1000"],
        "id",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("error: the command would run as uid 1000 gid 0, which the user namespace (single id) does not map"),
        "{}",
        describe(&out)
    );

    let dir = owned_dir(Some(&sub));
    let out = kiln_as(As::User(&sub), dir.path())
        .args(["run", "--explain"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).starts_with("user namespace: subordinate range (newuidmap)\n"),
        "{}",
        describe(&out)
    );
}

#[test]
fn no_userns_is_for_root_only() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let cache = root.path().join("cache");
    let out = sh(
        As::Root,
        &cache,
        &rootfs,
        &["--no-userns"],
        "cat /proc/self/uid_map",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let map: Vec<String> = stdout(&out).split_whitespace().map(String::from).collect();
    assert_eq!(map, ["0", "0", "4294967295"]);
    let Some(sub) = require_env("KILN_TEST_USER_SUB") else {
        return;
    };
    let dir = owned_dir(Some(&sub));
    let out = kiln_as(As::User(&sub), dir.path())
        .args(["run", "--no-userns", "--explain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("error: --no-userns needs real root"),
        "{}",
        describe(&out)
    );
}
