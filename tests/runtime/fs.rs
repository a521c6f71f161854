//! Filesystems: overlay upper dirs, fallbacks, binds, network, log files.

use super::*;

#[test]
fn overlay_writes_land_in_the_upper_dir_only() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let before = tree_hash(&rootfs);
    let upper = root.path().join("upper");
    let out = sh(
        As::Root,
        &root.path().join("cache"),
        &rootfs,
        &["--upper", upper.to_str().unwrap()],
        "echo new > /data/new; echo changed > /data/keep; rm /data/gone; cat /data/keep",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "changed\n");
    assert_eq!(tree_hash(&rootfs), before, "the lower dir changed");
    assert_eq!(
        std::fs::read_to_string(upper.join("data/new")).unwrap(),
        "new\n"
    );
    assert_eq!(
        std::fs::read_to_string(upper.join("data/keep")).unwrap(),
        "changed\n"
    );
    let gone = std::fs::symlink_metadata(upper.join("data/gone")).unwrap();
    assert_eq!(
        (gone.mode() & libc::S_IFMT, gone.rdev()),
        (libc::S_IFCHR, 0),
        "whiteout for the removed file"
    );
    assert!(
        !upper.join("bin").exists(),
        "only changes belong in the upper dir"
    );
}

#[test]
fn readonly_binds_and_no_network() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    std::fs::create_dir(root.path().join("ro")).unwrap();
    std::fs::create_dir(root.path().join("rw")).unwrap();
    let ro = format!("{}:/ro:ro", root.path().join("ro").display());
    let rw = format!("{}:/rw", root.path().join("rw").display());
    let cache = root.path().join("cache");
    let out = sh(
        As::Root,
        &cache,
        &rootfs,
        &["--volume", &ro, "--volume", &rw],
        "touch /rw/ok; touch /ro/no 2>/dev/null && echo ro-writable; ls /sys/class/net; ip -o link | cut -d: -f2",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "lo\n lo\n", "{}", describe(&out));
    assert!(root.path().join("rw/ok").exists());
    assert!(!root.path().join("ro/no").exists());
    let out = sh(
        As::Root,
        &cache,
        &rootfs,
        &["--network", "host"],
        "ls /sys/class/net | wc -l",
    );
    assert!(
        stdout(&out).trim().parse::<u32>().unwrap() >= 1,
        "{}",
        describe(&out)
    );
}

#[test]
fn overlay_fallbacks_say_which_one_ran() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let before = tree_hash(&rootfs);
    let cache = root.path().join("cache");
    let mut kinds = vec![("kernel", "rootfs: kernel overlayfs (userxattr)")];
    if require_tool("fuse-overlayfs") {
        kinds.push((
            "fuse",
            "rootfs: fuse-overlayfs (kernel overlayfs was refused)",
        ));
    }
    kinds.push((
        "copy",
        "rootfs: a copy of the layers (neither kernel overlayfs nor fuse-overlayfs worked)",
    ));
    for (kind, says) in kinds {
        let mut cmd = kiln_as(As::Root, &cache);
        cmd.env("KILN_OVERLAY", kind)
            .args(["-v", "run", "--rootfs"])
            .arg(&rootfs);
        let out = cmd
            .args([
                "--",
                "sh",
                "-c",
                "rm /data/gone; echo x > /data/keep; cat /data/*",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{kind}: {}", describe(&out));
        assert_eq!(stdout(&out), "x\n", "{kind}");
        assert!(stderr(&out).contains(says), "{kind}: {}", describe(&out));
        assert_eq!(tree_hash(&rootfs), before, "{kind}: the lower dir changed");
        assert!(run_dir_empty(&cache), "{kind}: state left");
        assert_eq!(
            processes_matching("fuse-overlayfs"),
            0,
            "{kind}: fuse-overlayfs left running"
        );
    }
}

#[test]
fn log_file_gets_both_streams_and_belongs_to_the_caller() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let log = root.path().join("run.log");
    let out = sh(
        As::Root,
        &root.path().join("cache"),
        &rootfs,
        &["--log", log.to_str().unwrap()],
        "echo out; sleep 0.1; echo err >&2",
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out), "out\n");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "out\nerr\n");
    assert_eq!(std::fs::metadata(&log).unwrap().uid(), 0);
}
