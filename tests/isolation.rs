//! Issue 12, findings 3, 4 and 6: a hostile build.sh, root and rootless,
//! tries what a build container shared with the host before: a 127.0.0.1
//! HTTP server (directly and through kiln's download service), a host
//! abstract unix socket, a host port, a raw socket, cgroup.kill, /sys and
//! /proc/sys, a nested user namespace, the shared binary package cache;
//! each fails and the host (a process, the files, the cache) stays as it
//! was. A build whose state or image cannot be saved fails and leaves
//! index.json and every builder state as they were. A build that needs
//! distfiles gets them through kiln with no network of its own, and a
//! killed root build's cgroups are gone at the next start.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::build::{as_user, build, require_root, root_demo_project, user_demo_project};
use crate::util::fetch::PythonServer;
use crate::util::runtime::{busybox_rootfs, owned_dir, tree_hash};
use crate::util::{describe, kiln, require_env, run_err, run_ok, stderr, stdout, tempdir};

/// What the host offers a build to reach, and what shows it was reached.
struct Host {
    _files: tempfile::TempDir,
    http: PythonServer,
    abstract_name: String,
    abstract_socket: UnixListener,
    port: TcpListener,
    /// A host process in kiln's cgroup, which cgroup.kill would end.
    victim: std::process::Child,
}

impl Host {
    fn new() -> Host {
        let files = tempdir();
        fs::write(files.path().join("secret"), "host secret\n").unwrap();
        let http = PythonServer::start(files.path());
        // Unique per Host, not per process: the root and rootless tests
        // run at once in the same test process.
        let abstract_name = format!(
            "kiln-test-{}",
            files.path().file_name().unwrap().to_string_lossy()
        );
        let abstract_socket =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(&abstract_name).unwrap())
                .unwrap();
        abstract_socket.set_nonblocking(true).unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap();
        port.set_nonblocking(true).unwrap();
        let victim = Command::new("sleep").arg("600").spawn().unwrap();
        Host {
            _files: files,
            http,
            abstract_name,
            abstract_socket,
            port,
            victim,
        }
    }

    /// A build.sh whose configure_rootfs_build hook tries each way out and
    /// prints `PROBE name: reached|refused`; then it writes the binary
    /// package cache, and fails the build when `fail`.
    fn build_sh(&self, fail: bool) -> String {
        let http = format!("{}/secret", self.http.url);
        let port = self.port.local_addr().unwrap().port();
        let name = &self.abstract_name;
        let exit = if fail { "exit 1" } else { "" };
        format!(
            r#"configure_rootfs_build() {{
  probe() {{
    if "${{@:2}}" >/tmp/probe.out 2>&1; then echo "PROBE $1: reached"; else echo "PROBE $1: refused"; fi
    sed 's/^/  /' /tmp/probe.out
  }}
  probe http python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read())' {http}
  probe download-service python3 /kiln/bob-core/lib/fetch.py {http} /tmp/secret
  probe abstract-socket python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); s.connect("\0{name}")'
  probe host-port python3 -c 'import socket; socket.create_connection(("127.0.0.1", {port}), 5)'
  probe raw-socket python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)'
  probe cgroup-kill sh -c 'for f in /sys/fs/cgroup/cgroup.kill /sys/fs/cgroup/*/cgroup.kill; do echo 1 >"$f" && exit 0; done; exit 1'
  probe cgroup-mount sh -c 'mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg'
  probe sys-write sh -c 'echo 1 >/sys/kernel/mm/ksm/run || echo 1 >/sys/kernel/uevent_helper'
  probe proc-sys sh -c 'echo "|/bin/false" >/proc/sys/kernel/core_pattern'
  probe user-namespace unshare --user true
  echo "NETNS $(readlink /proc/self/ns/net)"
  find /var/cache/binpkgs -type f -name '*.gpkg.tar' | while read -r f; do echo evil >"$f"; done
  rm -f /var/cache/binpkgs/Packages
  echo evil >/var/cache/binpkgs/evil.gpkg.tar
  {exit}
}}
"#
        )
    }

    /// Nothing of the host was reached: no connection, the process lives.
    fn check_untouched(&mut self, log: &str) {
        assert!(
            matches!(self.abstract_socket.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
            "the build connected to the host's abstract socket:\n{log}"
        );
        assert!(
            matches!(self.port.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
            "the build connected to the host's port:\n{log}"
        );
        assert!(
            self.victim.try_wait().unwrap().is_none(),
            "the host process died:\n{log}"
        );
        let host_netns = fs::read_link("/proc/self/ns/net").unwrap();
        assert!(
            log.contains("NETNS net:[")
                && !log.contains(&format!("NETNS {}", host_netns.display())),
            "the build ran in the host's network namespace:\n{log}"
        );
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.victim.kill();
        let _ = self.victim.wait();
    }
}

/// Every probe of [`Host::build_sh`] says `refused` in the build's log.
fn check_refused(log: &str) {
    for probe in [
        "http",
        "download-service",
        "abstract-socket",
        "host-port",
        "raw-socket",
        "cgroup-kill",
        "cgroup-mount",
        "sys-write",
        "proc-sys",
        "user-namespace",
    ] {
        assert!(
            log.contains(&format!("PROBE {probe}: refused")),
            "probe {probe} was not refused:\n{log}"
        );
    }
    // kiln's own download service said why it refused the host's server.
    assert!(
        log.contains("kiln download service: not fetched: http://127.0.0.1:")
            && log.contains("is not a public address, and not a mirror of [sources]"),
        "{log}"
    );
}

/// An image of the demo stack whose build.sh is `build_sh`.
fn add_hostile_image(project: &Path, build_sh: &str) {
    let dir = project.join("layouts/demo/images/hostile");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("image.toml"),
        "parent = \"demo/glibc\"\npackages = []\n",
    )
    .unwrap();
    fs::write(dir.join("build.sh"), build_sh).unwrap();
}

/// The shared binary package cache: a hash of every file with its bytes.
fn binpkgs(project: &Path) -> String {
    tree_hash(&project.join(".cache/binpkgs"))
}

/// Builds demo/glibc (which fills the binary package cache), then the
/// hostile image failing and succeeding, with `kiln` run by `build`.
fn hostile_build(project: &Path, build: &dyn Fn(&[&str]) -> Command) {
    let mut host = Host::new();
    run_ok(&mut build(&["demo/glibc"]));
    let cache = binpkgs(project);
    assert!(cache.contains(".gpkg.tar"), "no binary packages: {cache}");
    let log = project.join(".cache/logs/bob-demo-hostile.log");

    // A failed build: not one file of the cache changed.
    add_hostile_image(project, &host.build_sh(true));
    let out = run_err(&mut build(&["demo/hostile"]));
    let text = fs::read_to_string(&log).unwrap();
    check_refused(&text);
    host.check_untouched(&text);
    assert_eq!(binpkgs(project), cache, "{}", describe(&out));

    // A build that succeeds: the packages other builds made are as they
    // were, the index too; only a file the build added may join them.
    add_hostile_image(project, &host.build_sh(false));
    let out = run_ok(&mut build(&["demo/hostile"]));
    let text = fs::read_to_string(&log).unwrap();
    check_refused(&text);
    host.check_untouched(&text);
    let after = binpkgs(project);
    for line in cache
        .lines()
        .filter(|l| l.contains(".gpkg.tar") || l.ends_with("Packages"))
    {
        assert!(
            after.contains(line),
            "{line} changed in the shared cache: {}",
            describe(&out)
        );
    }
}

#[test]
fn a_hostile_build_sh_reaches_nothing_of_the_host_as_root() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    hostile_build(&project, &|args| build(&project, args));
}

#[test]
fn a_hostile_build_sh_reaches_nothing_of_the_host_rootless() {
    let (Some(world), Some(user)) = (
        require_env("KILN_TEST_WORLD"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    if !require_root() {
        return;
    }
    let (_tmp, project) = user_demo_project(&world, &user);
    hostile_build(&project, &|args| {
        let mut cmd = as_user(&user, "build", &project);
        cmd.args(args);
        cmd
    });
}

/// Root's `kiln run --no-userns --network host` binds the host's /sys, with
/// kiln's writable cgroup2 mount under it: read-only all the way down.
#[test]
fn the_hosts_sys_is_read_only_throughout_in_a_root_container() {
    if !require_root() {
        return;
    }
    let tmp = owned_dir(None);
    let root = tmp.path().join("root");
    busybox_rootfs(&root);
    let layout = tmp.path().join("oci");
    run_ok(
        kiln()
            .args(["commit"])
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", "t/bb:1"]),
    );
    let mut victim = Command::new("sleep").arg("600").spawn().unwrap();
    let out = Command::new(crate::util::kiln_path())
        .env("KILN_CACHE_DIR", tmp.path().join("cache"))
        .args(["run", "--no-userns", "--network", "host", "--layout"])
        .arg(&layout)
        .args([
            "t/bb:1",
            "sh",
            "-c",
            "grep -q cgroup2 /proc/mounts || echo NO-CGROUP; for f in /sys/fs/cgroup/cgroup.kill /sys/fs/cgroup/kiln/cgroup.kill; do echo 1 >$f && echo WROTE $f; done; echo 1 >/sys/kernel/uevent_helper && echo WROTE-SYS; true",
        ])
        .output()
        .unwrap();
    let alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = victim.wait();
    assert!(
        out.status.success() && !stdout(&out).contains("NO-CGROUP"),
        "{}",
        describe(&out)
    );
    assert!(
        !stdout(&out).contains("WROTE") && stderr(&out).contains("Read-only file system"),
        "{}",
        describe(&out)
    );
    assert!(alive, "cgroup.kill reached the host: {}", describe(&out));
}

/// Builds demo/hello, after making its input digest new, with `chattr +i`
/// on `frozen`: the build fails, and index.json, every state.json and
/// every layer they name are as they were.
fn failing_save(project: &Path, frozen: &Path) {
    let index = fs::read(project.join("oci/index.json")).unwrap();
    let states = state_files(project);
    fs::write(
        project.join("layouts/demo/images/hello/build.sh"),
        "# a change: a new input digest\n",
    )
    .unwrap();
    run_ok(Command::new("chattr").arg("+i").arg(frozen));
    let out = build(project, &["demo/hello"]).output().unwrap();
    run_ok(Command::new("chattr").arg("-i").arg(frozen));
    assert!(
        !out.status.success()
            && stderr(&out).contains("Operation not permitted")
            && stderr(&out).contains("and the builder states are as they were"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        fs::read(project.join("oci/index.json")).unwrap(),
        index,
        "{}",
        describe(&out)
    );
    assert_eq!(state_files(project), states, "{}", describe(&out));
    for (name, text) in &states {
        let state: serde_json::Value = serde_json::from_str(text).unwrap();
        for layer in state["layers"].as_array().unwrap() {
            let dir = project.join(".cache/layers").join(layer.as_str().unwrap());
            assert!(dir.is_dir(), "state {name} lost {}", dir.display());
        }
    }
    fs::remove_file(project.join("layouts/demo/images/hello/build.sh")).unwrap();
}

/// Every state's name and state.json.
fn state_files(project: &Path) -> Vec<(String, String)> {
    let mut states: Vec<(String, String)> = fs::read_dir(project.join(".cache/states"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let text = fs::read_to_string(p.join("state.json")).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect();
    states.sort();
    states
}

#[test]
fn a_failed_state_or_image_save_changes_neither_the_layout_nor_any_state() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let out = run_ok(&mut build(&project, &["demo/hello"]));
    assert!(stderr(&out).contains("3 built"), "{}", describe(&out));

    // The state cannot be saved: its dir is immutable.
    failing_save(&project, &project.join(".cache/states/bob-demo-hello"));
    // The state is saved, then the image cannot be named (the layout dir is
    // immutable): the old state.json is put back.
    failing_save(&project, &project.join("oci"));

    // Nothing was lost: the stack is as it was built, every step cached.
    let out = run_ok(&mut build(&project, &["demo/hello"]));
    assert!(
        stderr(&out).contains("0 built, 3 cached"),
        "{}",
        describe(&out)
    );
    run_ok(
        kiln()
            .args(["ls", "--check", "--layout"])
            .arg(project.join("oci")),
    );
}

#[test]
fn distfiles_come_through_kiln_to_a_build_with_no_network() {
    let Some((_tmp, project, world)) = root_demo_project() else {
        return;
    };
    // Only an HTTP mirror on the host's loopback: Portage in the container
    // cannot reach it, kiln's download service can.
    let server = PythonServer::start(&PathBuf::from(&world).join("mirror"));
    fs::write(
        project.join("kiln.toml"),
        format!(
            "layout = \"oci\"\ncache = \".cache\"\n[sources]\nmirrors = [\"{}\"]\nkeys = [\"{world}/keys/release.asc\"]\n",
            server.url
        ),
    )
    .unwrap();
    let out = run_ok(&mut build(&project, &["demo/hello"]));
    let log = fs::read_to_string(project.join(".cache/logs/bob-demo-hello.log")).unwrap();
    assert!(
        log.contains(&format!(
            "kiln download service: downloaded {}/distfiles/hello-1.0.tar.gz",
            server.url
        )),
        "{}\n{log}",
        describe(&out)
    );
    assert!(project.join(".cache/distfiles/hello-1.0.tar.gz").is_file());
    let out = run_ok(
        kiln()
            .env("KILN_CACHE_DIR", project.join(".cache"))
            .args(["run", "--layout"])
            .arg(project.join("oci"))
            .arg("demo/hello"),
    );
    assert!(stdout(&out).contains("Hello, world!"), "{}", describe(&out));
}

/// Where the host sees kiln's cgroups: `kiln/` under this process's cgroup
/// in the cgroup2 hierarchy (kiln's cgroup namespace starts there).
fn kiln_cgroups() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo.lines().find_map(|l| {
        let (left, right) = l.split_once(" - ")?;
        right
            .starts_with("cgroup2 ")
            .then(|| left.split_whitespace().nth(4).unwrap().to_string())
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    Some(
        Path::new(&mount)
            .join(path.trim_start_matches('/'))
            .join("kiln"),
    )
}

#[test]
fn a_killed_root_builds_cgroups_are_gone_at_the_next_start() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let Some(cgroups) = kiln_cgroups() else {
        panic!("no cgroup2 hierarchy on this host");
    };
    add_hostile_image(&project, "configure_rootfs_build() { sleep 600; }\n");
    let mut child = build(&project, &["demo/hostile"]).spawn().unwrap();
    let pid = child.id();
    let until = Instant::now() + Duration::from_secs(300);
    let mine = |dir: &Path| {
        fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(&format!("kiln-{pid}-")))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // The hostile image's container runs once glibc's build is done.
    while !(mine(&cgroups).len() == 1 && project.join(".cache/logs/bob-demo-hostile.log").exists())
    {
        assert!(Instant::now() < until, "the build never started");
        assert!(child.try_wait().unwrap().is_none(), "the build ended");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(1));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let stale = mine(&cgroups);
    assert_eq!(stale.len(), 1, "{stale:?}");

    // The next kiln that enters its runtime as root removes it.
    let out = run_ok(&mut build(&project, &["demo/glibc"]));
    assert!(
        mine(&cgroups).is_empty(),
        "{:?} is still there: {}",
        stale,
        describe(&out)
    );
}
