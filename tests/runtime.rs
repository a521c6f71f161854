//! The runtime (issue 4): real libcontainer containers over a busybox-static
//! rootfs, as root, as an unprivileged user with and without a subordinate
//! range, and inside `unshare --user --map-root-user --mount`.

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
fn image_run_prints_what_podman_prints() {
    if !require_tool("umoci") || !require_tool("podman") || require_env("CONTAINERS_CONF").is_none()
    {
        return;
    }
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    // podman names the image after the layout's path, which must be lowercase
    let layout = std::env::temp_dir().join(format!("kiln-rt-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&layout);
    let image = format!("{}:bb", layout.display());
    run_ok(
        Command::new("umoci")
            .args(["init", "--layout"])
            .arg(&layout),
    );
    run_ok(Command::new("umoci").args(["new", "--image", &image]));
    run_ok(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("bin"))
            .arg("/bin"),
    );
    run_ok(
        Command::new("umoci")
            .args(["insert", "--image", &image])
            .arg(rootfs.join("etc"))
            .arg("/etc"),
    );
    run_ok(Command::new("umoci").args([
        "config",
        "--image",
        &image,
        "--config.cmd=sh",
        "--config.cmd=-c",
        "--config.cmd=echo $GREETING from $(pwd) as $(id -u); cat passwd",
        "--config.env=GREETING=hello",
        "--config.workingdir=/etc",
    ]));
    let cache = root.path().join("cache");
    let kiln = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("bb"),
    );
    assert!(stderr(&kiln).contains("Unpacked"), "{}", describe(&kiln));
    let again = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("bb"),
    );
    assert!(
        !stderr(&again).contains("Unpacked"),
        "layers must not be unpacked twice: {}",
        describe(&again)
    );
    let podman = run_ok(Command::new("podman").args([
        "run",
        "--rm",
        "--network",
        "none",
        &format!("oci:{image}"),
    ]));
    assert_eq!(stdout(&kiln), stdout(&podman));
    assert_eq!(
        stdout(&kiln),
        "hello from /etc as 0\nroot:x:0:0:root:/root:/bin/sh\n"
    );
    let out = kiln_as(As::Root, &cache)
        .args(["run", "--layout"])
        .arg(&layout)
        .arg("nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("error: no image `nope` in"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("hint: the layout holds: bb"),
        "{}",
        describe(&out)
    );
    // an unprivileged user unpacks the same image into its own cache
    if let Some(sub) = require_env("KILN_TEST_USER_SUB") {
        run_ok(Command::new("chmod").args(["-R", "a+rX"]).arg(&layout));
        let dir = owned_dir(Some(&sub));
        let out = run_ok(
            kiln_as(As::User(&sub), dir.path())
                .args(["run", "--layout"])
                .arg(&layout)
                .arg("bb"),
        );
        assert_eq!(stdout(&out), stdout(&podman), "{}", describe(&out));
        let uid = crate::util::stdout(&run_ok(Command::new("id").args(["-u", &sub])));
        let owners = run_ok(
            Command::new("find")
                .arg(dir.path().join("layers"))
                .args(["-name", "busybox", "-printf", "%U\n"]),
        );
        assert_eq!(
            stdout(&owners),
            uid,
            "container root's files belong to the user on the host"
        );
    }
    let _ = Command::new("podman")
        .args(["rmi", "-f", &format!("localhost{}", layout.display())])
        .output();
    std::fs::remove_dir_all(&layout).unwrap();
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
fn images_written_by_kiln_commit_run_as_in_podman() {
    if !require_tool("podman") || require_env("CONTAINERS_CONF").is_none() {
        return;
    }
    let root = owned_dir(None);
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let child = root.path().join("child");
    std::fs::create_dir_all(child.join("data")).unwrap();
    std::fs::write(child.join("data/child"), "from the child layer\n").unwrap();
    let layout = std::env::temp_dir().join(format!("kiln-rt-commit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&layout);
    let commit = |dir: &Path, args: &[&str]| {
        run_ok(
            crate::util::kiln()
                .arg("commit")
                .arg(dir)
                .arg("--layout")
                .arg(&layout)
                .args(args),
        );
    };
    commit(
        &rootfs,
        &[
            "--ref",
            "acme/base:1",
            "--env",
            "WHO=base",
            "--cmd",
            "echo $WHO",
        ],
    );
    commit(
        &child,
        &[
            "--ref",
            "acme/child:1",
            "--parent",
            "acme/base:1",
            "--workdir",
            "/data",
            "--cmd",
            "echo $WHO in $(pwd); cat *",
        ],
    );
    let cache = root.path().join("cache");
    for image in ["acme/base:1", "acme/child:1"] {
        let kiln = run_ok(
            kiln_as(As::Root, &cache)
                .args(["run", "--layout"])
                .arg(&layout)
                .arg(image),
        );
        let podman = run_ok(Command::new("podman").args([
            "run",
            "--rm",
            "--network",
            "none",
            &format!("oci:{}:{image}", layout.display()),
        ]));
        assert_eq!(stdout(&kiln), stdout(&podman), "{image}");
    }
    let kiln = run_ok(
        kiln_as(As::Root, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .arg("acme/child:1"),
    );
    assert_eq!(
        stdout(&kiln),
        "base in /data\nfrom the child layer\nlower\nlower\n"
    );
    let _ = Command::new("podman")
        .args(["rmi", "-f", &format!("localhost{}", layout.display())])
        .output();
    std::fs::remove_dir_all(&layout).unwrap();
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
