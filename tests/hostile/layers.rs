//! Hostile layers under `kiln run`, as root (in kiln's user namespace and
//! with --no-userns) and as a user with a subordinate range: writes through
//! symlinks are refused with the host untouched, no setuid-root file or
//! device node reaches the host, and real whiteouts work.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use tar::EntryType;

use super::{Entry, base_layout, devices, leftovers, push_layer, setid_root, snapshot, tar_of};
use crate::util::runtime::{As, chown_r, kiln_as, owned_dir};
use crate::util::{describe, require_env, require_tool, run_ok, stderr, stdout};

/// Who runs the images, with what extra flags: root in its user namespace,
/// root without one, the user with a subordinate range.
fn runners(sub: &'static str) -> [(As<'static>, &'static [&'static str]); 3] {
    [
        (As::Root, &[]),
        (As::Root, &["--no-userns"]),
        (As::User(sub), &[]),
    ]
}

fn test_user() -> Option<&'static str> {
    require_env("KILN_TEST_USER_SUB").map(|s| &*Box::leak(s.into_boxed_str()))
}

fn owner(who: As<'_>) -> Option<&str> {
    match who {
        As::User(u) => Some(u),
        _ => None,
    }
}

fn run(who: As, extra: &[&str], cache: &Path, layout: &Path, image: &str, script: &str) -> Output {
    kiln_as(who, cache)
        .arg("run")
        .args(extra)
        .arg("--layout")
        .arg(layout)
        .arg(image)
        .args(["--", "sh", "-c", script])
        .output()
        .unwrap()
}

#[test]
fn layers_that_write_through_a_symlink_are_refused_and_the_host_is_untouched() {
    let Some(sub) = test_user() else { return };
    for (who, extra) in runners(sub) {
        let tmp = owned_dir(owner(who));
        // What a user or root could lose: a private dir with a tree in it.
        let victim = tmp.path().join("victim");
        std::fs::create_dir_all(victim.join("precious/deeper")).unwrap();
        std::fs::write(victim.join("precious/deeper/data"), "keep me\n").unwrap();
        std::fs::write(victim.join("file"), "mine\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o700)).unwrap();
        let layout = base_layout(tmp.path());
        let host = victim.to_str().unwrap();
        let up = format!("up{host}/file");
        let cases: Vec<(&str, Vec<Entry>, &str)> = vec![
            (
                "hostile/whiteout:1",
                vec![
                    Entry::Symlink("evil", host),
                    Entry::File("evil/.wh.precious", b"", 0o644, 0, 0),
                ],
                "evil/.wh.precious",
            ),
            (
                "hostile/opaque:1",
                vec![
                    Entry::Symlink("evil", host),
                    Entry::File("evil/.wh..wh..opq", b"", 0o644, 0, 0),
                ],
                "evil/.wh..wh..opq",
            ),
            (
                "hostile/opaque-below:1",
                vec![
                    Entry::Symlink("evil", host),
                    Entry::File("evil/made/.wh..wh..opq", b"", 0o644, 0, 0),
                ],
                "evil/made/.wh..wh..opq",
            ),
            (
                "hostile/write:1",
                vec![
                    Entry::Symlink("evil", host),
                    Entry::File("evil/file", b"pwned\n", 0o644, 0, 0),
                ],
                "evil/file",
            ),
            (
                "hostile/dir:1",
                vec![Entry::Symlink("evil", host), Entry::Dir("evil/made")],
                "evil/made",
            ),
            (
                "hostile/relative:1",
                vec![
                    Entry::Symlink("up", "../../../../../../../../../../../../.."),
                    Entry::File(&up, b"pwned\n", 0o644, 0, 0),
                ],
                &up,
            ),
        ];
        for (image, entries, _) in &cases {
            push_layer(&layout, "hostile/base:1", image, &tar_of(entries));
        }
        if let Some(u) = owner(who) {
            chown_r(u, tmp.path());
        }
        let cache = tmp.path().join("cache");
        let before = snapshot(&victim);
        for (image, _, entry) in &cases {
            let out = run(who, extra, &cache, &layout, image, "true");
            let what = format!("{who:?} {extra:?} {image}");
            assert_eq!(out.status.code(), Some(1), "{what}: {}", describe(&out));
            assert!(
                stderr(&out).contains(&format!(
                    "entry '{entry}' would be written through a symlink in the archive"
                )),
                "{what}: {}",
                describe(&out)
            );
            assert_eq!(
                snapshot(&victim),
                before,
                "{what} changed {}",
                victim.display()
            );
            assert_eq!(leftovers(&cache), Vec::<String>::new(), "{what}");
        }
        assert_eq!(
            std::fs::read_to_string(victim.join("precious/deeper/data")).unwrap(),
            "keep me\n"
        );
    }
}

#[test]
fn no_setuid_root_file_and_no_device_node_reaches_the_host() {
    let Some(sub) = test_user() else { return };
    let layer = tar_of(&[
        Entry::Dir("bin2"),
        // host root in root's namespace map, setuid and setgid
        Entry::File("bin2/mapped-root", b"#!/bin/sh\nid\n", 0o6755, 65536, 65536),
        Entry::File("bin2/root", b"#!/bin/sh\nid\n", 0o4755, 0, 0),
        Entry::File(
            "bin2/unmapped",
            b"#!/bin/sh\nid\n",
            0o4755,
            4_000_000_000,
            0,
        ),
        Entry::Node("dev2/sda", EntryType::Block, 8, 0),
        Entry::Node("x/null", EntryType::Char, 1, 3),
        Entry::Node("x/fifo", EntryType::Fifo, 0, 0),
    ]);
    for (who, extra) in runners(sub) {
        let tmp = owned_dir(owner(who));
        let layout = base_layout(tmp.path());
        push_layer(&layout, "hostile/base:1", "hostile/setid:1", &layer);
        if let Some(u) = owner(who) {
            chown_r(u, tmp.path());
        }
        let cache = tmp.path().join("cache");
        let what = format!("{who:?} {extra:?}");
        let out = run(
            who,
            extra,
            &cache,
            &layout,
            "hostile/setid:1",
            "cd /bin2 && stat -c '%n %a %u %g' *; ls /x /dev2",
        );
        assert!(out.status.success(), "{what}: {}", describe(&out));
        // Inside, ids are the container's: root's map makes 65536 host
        // root, so that file is container root's now and has no set-id bit.
        // --no-userns: the host's ids, all of them.
        let expected = match (who, extra.is_empty()) {
            (As::Root, true) => "mapped-root 755 0 0\nroot 4755 0 0\nunmapped 755 0 0\n",
            (As::Root, false) => {
                "mapped-root 6755 65536 65536\nroot 4755 0 0\nunmapped 4755 4000000000 0\n"
            }
            _ => "mapped-root 6755 65536 65536\nroot 4755 0 0\nunmapped 755 0 0\n",
        };
        assert!(
            stdout(&out).starts_with(expected),
            "{what}: {}",
            describe(&out)
        );
        assert!(
            stdout(&out).ends_with("/dev2:\n\n/x:\nfifo\n"),
            "{what}: {}",
            describe(&out)
        );
        assert_eq!(devices(&cache), Vec::<String>::new(), "{what}");
        let layers = cache.join("unpacked");
        let mode = std::fs::metadata(&layers).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{what}: {}", layers.display());
        if extra.is_empty() {
            assert_eq!(setid_root(&cache), Vec::<String>::new(), "{what}");
        } else {
            // --no-userns: container root is host root by choice, its
            // setuid-root file is real, and only root can reach it.
            let found = setid_root(&cache);
            assert_eq!(found.len(), 1, "{what}: {found:?}");
            let reach = Command::new("runuser")
                .args(["-u", sub, "--", "test", "-e", &found[0]])
                .status()
                .unwrap();
            assert!(!reach.success(), "{sub} reaches {}", found[0]);
        }
    }
}

#[test]
fn whiteouts_and_opaque_dirs_hide_the_lower_layers() {
    let Some(sub) = test_user() else { return };
    if !require_tool("podman") || require_env("CONTAINERS_CONF").is_none() {
        return;
    }
    let layer = tar_of(&[
        Entry::Dir("data"),
        Entry::File("data/.wh..wh..opq", b"", 0o644, 0, 0),
        Entry::File("data/new", b"new\n", 0o644, 0, 0),
        Entry::Dir("etc"),
        Entry::File("etc/.wh.group", b"", 0o644, 0, 0),
    ]);
    let script = "ls /data; cat /data/*; test -e /etc/group || echo no group; cat /etc/passwd";
    let expected = "new\nnew\nno group\nroot:x:0:0:root:/root:/bin/sh\n";
    for who in [As::Root, As::User(sub)] {
        let tmp = owned_dir(owner(who));
        let layout = base_layout(tmp.path());
        push_layer(&layout, "hostile/base:1", "hostile/whiteouts:1", &layer);
        if let Some(u) = owner(who) {
            chown_r(u, tmp.path());
        }
        let out = run(
            who,
            &[],
            &tmp.path().join("cache"),
            &layout,
            "hostile/whiteouts:1",
            script,
        );
        assert_eq!(stdout(&out), expected, "{who:?}: {}", describe(&out));
    }
    // podman sees the same image
    let dir = crate::util::oci::lowercase_tempdir();
    let layout = base_layout(dir.path());
    push_layer(&layout, "hostile/base:1", "hostile/whiteouts:1", &layer);
    let podman = run_ok(Command::new("podman").args([
        "run",
        "--rm",
        "--network",
        "none",
        &format!("oci:{}:hostile/whiteouts:1", layout.display()),
        "sh",
        "-c",
        script,
    ]));
    let _ = Command::new("podman")
        .args(["rmi", "-f", &format!("localhost{}", layout.display())])
        .output();
    assert_eq!(stdout(&podman), expected, "{}", describe(&podman));
}
