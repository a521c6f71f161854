//! Lifecycle: signals, cleanup, concurrency, terminals.

use super::*;

#[test]
fn cleanup_after_sigint_sigkill_of_init_and_failure() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let cache = root.path().join("cache");
    for (case, marker) in [("sigint", "sleep 301"), ("sigkill-init", "sleep 302")] {
        let child = kiln_as(As::Root, &cache)
            .args(["run", "--rootfs"])
            .arg(&rootfs)
            .args(["--", "sh", "-c", &format!("{marker}; echo after")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while processes_matching(marker) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let kiln = child.id();
        if case == "sigint" {
            run_ok(Command::new("kill").args(["-INT", &kiln.to_string()]));
        } else {
            let init = *children(kiln)
                .first()
                .expect("the container's init is kiln's child");
            run_ok(Command::new("kill").args(["-KILL", &init.to_string()]));
        }
        let out = child.wait_with_output().unwrap();
        let want = if case == "sigint" { 130 } else { 137 };
        assert_eq!(out.status.code(), Some(want), "{case}: {}", describe(&out));
        assert!(!stdout(&out).contains("after"), "{case}");
        assert_eq!(processes_matching(marker), 0, "{case}: processes left");
        assert!(run_dir_empty(&cache), "{case}: state left");
    }
    let out = sh(As::Root, &cache, &rootfs, &[], "no-such-command");
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert!(run_dir_empty(&cache), "state left after a failing command");
    let out = kiln_as(As::Root, &cache)
        .args(["run", "--rootfs"])
        .arg(&rootfs)
        .args(["--", "no-such-command"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("executable 'no-such-command' not found in $PATH"),
        "{}",
        describe(&out)
    );
    assert!(run_dir_empty(&cache), "state left after a failed start");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(cache.to_str().unwrap()),
        "mounts left: {mounts}"
    );
}

#[test]
fn two_containers_share_lower_layers_at_once() {
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let cache = root.path().join("cache");
    let spawn = |n: u32| {
        kiln_as(As::Root, &cache)
            .args(["run", "--rootfs"])
            .arg(&rootfs)
            .args([
                "--",
                "sh",
                "-c",
                &format!("echo {n} > /data/keep; sleep 1; cat /data/keep"),
            ])
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| spawn(1).unwrap());
        let b = s.spawn(|| spawn(2).unwrap());
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(stdout(&a), "1\n", "{}", describe(&a));
    assert_eq!(stdout(&b), "2\n", "{}", describe(&b));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("data/keep")).unwrap(),
        "lower\n"
    );
}

#[test]
fn tty_and_stdin() {
    if !require_tool("script") {
        return;
    }
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let cache = root.path().join("cache");
    let line = format!(
        "KILN_CACHE_DIR={} {} run --rootfs {} -it -- sh -c 'tty; exit 5'",
        cache.display(),
        kiln_bin().display(),
        rootfs.display()
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", describe(&out));
    assert!(stdout(&out).contains("/dev/pts/0"), "{}", describe(&out));

    let mut child = kiln_as(As::Root, &cache)
        .args(["run", "-i", "--rootfs"])
        .arg(&rootfs)
        .args(["--", "sh"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from-stdin; exit 3\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(stdout(&out), "from-stdin\n");
    assert!(run_dir_empty(&cache));
}
