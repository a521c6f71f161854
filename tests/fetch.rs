//! `kiln update` and `kiln fetch` against Gentoo-shaped mirrors made by the
//! test world's scripts, served by real HTTP servers on 127.0.0.1 or as
//! file:// directories: pinning, the cache, the air-gapped round trip, resume,
//! mirrors that fail, unpacking. Bad inputs are in fetch_refusals.rs.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::util::fetch::*;
use crate::util::{
    Tmpfs, describe, incompressible, kiln, require_env, run_err, run_ok, stderr, stdout, tempdir,
    tree,
};

pub(crate) fn sha512(path: &Path) -> String {
    let out = run_ok(Command::new("sha512sum").arg(path));
    stdout(&out).split_whitespace().next().unwrap().to_string()
}

/// `stage3 PATH` / `snapshot PATH` from `kiln fetch`'s stdout.
fn fetched(out: &std::process::Output) -> (String, String) {
    let text = stdout(out);
    let get = |what: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{what} ")))
            .unwrap_or_else(|| panic!("no {what} line in {text}"))
            .to_string()
    };
    (get("stage3"), get("snapshot"))
}

#[test]
fn update_fetch_pin_over_http_then_from_cache_with_server_stopped() {
    let fx = Fixture::new();
    let mut server = PythonServer::start(&fx.mirror);
    fx.config(&[&server.url], &["release"]);

    let out = run_ok(&mut fx.kiln(&["update"]));
    let lock = fx.lock().expect("kiln update writes kiln.lock");
    let stage3_sha = sha512(&fx.stage3);
    let snapshot_sha = sha512(&fx.snapshot);
    assert!(lock.contains(&format!("path = \"{STAGE3_REL}\"")), "{lock}");
    assert!(
        lock.contains(&format!("sha512 = \"{stage3_sha}\"")),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("path = \"{SNAPSHOT_REL}\"")),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("sha512 = \"{snapshot_sha}\"")),
        "{lock}"
    );
    assert!(
        stderr(&out).contains(&format!("Pinned stage3 {STAGE3}")),
        "{}",
        stderr(&out)
    );

    server.stop();
    let out = run_ok(&mut fx.kiln(&["fetch"]));
    let (stage3, snapshot) = fetched(&out);
    assert_eq!(
        stage3,
        fx.cache
            .join("sha512")
            .join(&stage3_sha)
            .display()
            .to_string()
    );
    assert_eq!(read(Path::new(&stage3)), read(&fx.stage3));
    assert_eq!(read(Path::new(&snapshot)), read(&fx.snapshot));
    assert_eq!(fx.lock().unwrap(), lock, "fetch must not rewrite the lock");
}

#[test]
fn fetch_without_lock_pins_via_file_url_and_subkey_signature() {
    let fx = Fixture::new();
    let out = run_ok(&mut fx.kiln(&["-v", "fetch"]));
    let (stage3, _) = fetched(&out);
    assert_eq!(read(Path::new(&stage3)), read(&fx.stage3));
    assert!(fx.lock().unwrap().contains(&sha512(&fx.stage3)));
    // Signed by the signing subkey, trusted through the primary key.
    let line = format!(
        "{STAGE3}: good signature by {} (Kiln Test Release Key <release@kiln.test>)",
        release_subkey()
    );
    assert!(stderr(&out).contains(&line), "{}", stderr(&out));
}

#[test]
fn air_gapped_round_trip() {
    let fx = Fixture::new();
    let server = PythonServer::start(&fx.mirror);
    fx.config(&[&server.url], &["release"]);
    let carried = fx.tmp.path().join("usb");
    run_ok(&mut fx.kiln(&["fetch", "--to", carried.to_str().unwrap()]));
    drop(server);

    // Another machine: the same project (kiln.toml + kiln.lock), an empty
    // cache, a mirror list whose network mirror must not be touched.
    let offline = Fixture::new();
    fs::copy(
        fx.project.join("kiln.lock"),
        offline.project.join("kiln.lock"),
    )
    .unwrap();
    assert_eq!(
        read(&carried.join("kiln.lock")),
        read(&fx.project.join("kiln.lock"))
    );
    offline.config(
        &[
            "http://127.0.0.1:9",
            &format!("file://{}", carried.display()),
        ],
        &["release"],
    );
    let out = run_ok(&mut offline.kiln(&["fetch", "--offline"]));
    let (stage3, snapshot) = fetched(&out);
    assert_eq!(read(Path::new(&stage3)), read(&fx.stage3));
    assert_eq!(read(Path::new(&snapshot)), read(&fx.snapshot));
    assert!(stage3.starts_with(&offline.cache.display().to_string()));
    for side in [".asc", ".DIGESTS"] {
        assert!(
            carried.join(format!("{STAGE3_REL}{side}")).is_file(),
            "{side}"
        );
    }
}

#[test]
fn resume_with_range_after_a_cut_transfer() {
    let fx = Fixture::new();
    run_ok(&mut fx.kiln(&["update"]));
    fs::remove_dir_all(&fx.cache).unwrap();
    let server = RangeServer::start(&fx.mirror, Some((STAGE3, 20_000)));
    fx.config(&[&server.url], &["release"]);
    let out = run_ok(&mut fx.kiln(&["fetch"]));
    assert_eq!(read(Path::new(&fetched(&out).0)), read(&fx.stage3));
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains(&format!("GET /{STAGE3_REL} range=0 200")),
        "{log}"
    );
    assert!(
        log.contains(&format!("GET /{STAGE3_REL} range=20000 206")),
        "{log}"
    );
}

#[test]
fn restart_from_zero_when_the_server_ignores_range() {
    let fx = Fixture::new();
    run_ok(&mut fx.kiln(&["update"]));
    fs::remove_dir_all(&fx.cache).unwrap();
    // A partial download from an earlier run, with wrong bytes in it.
    let sha = sha512(&fx.stage3);
    let partial = fx.cache.join("partial");
    fs::create_dir_all(&partial).unwrap();
    fs::write(
        partial.join(format!("{STAGE3}.{}.part", &sha[..16])),
        vec![b'x'; 5000],
    )
    .unwrap();
    let server = PythonServer::start(&fx.mirror);
    fx.config(&[&server.url], &["release"]);
    let out = run_ok(&mut fx.kiln(&["fetch"]));
    assert_eq!(read(Path::new(&fetched(&out).0)), read(&fx.stage3));
}

#[test]
fn mirror_down_then_the_next_mirror() {
    let fx = Fixture::new();
    let server = PythonServer::start(&fx.mirror);
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}", down.local_addr().unwrap());
    drop(down);
    fx.config(&[&down_url, &server.url], &["release"]);
    let out = run_ok(&mut fx.kiln(&["fetch"]));
    assert_eq!(read(Path::new(&fetched(&out).0)), read(&fx.stage3));
    let warning = format!("warning: {down_url}/{STAGE3_REL}: mirror down: ");
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
}

#[test]
fn a_silent_mirror_times_out_then_the_next_mirror() {
    let fx = Fixture::new();
    let server = PythonServer::start(&fx.mirror);
    // Listening but never accepting: the connection opens, no answer comes.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    fx.config(&[&silent_url, &server.url], &["release"]);
    let out = run_ok(fx.kiln(&["fetch"]).env("KILN_HTTP_TIMEOUT", "1"));
    assert_eq!(read(Path::new(&fetched(&out).0)), read(&fx.stage3));
    let warning = format!("warning: {silent_url}/{STAGE3_REL}: mirror down: no answer: ");
    assert!(stderr(&out).contains(&warning), "{}", stderr(&out));
    // One wait in all: a mirror found down is not asked for the next files.
    // The kernel queues every connection the silent mirror never accepts.
    silent.set_nonblocking(true).unwrap();
    assert_eq!(std::iter::from_fn(|| silent.accept().ok()).count(), 1);
}

#[test]
fn a_full_cache_names_the_file_stops_and_is_left_as_it_was() {
    let Some(disk) = Tmpfs::mount("2m") else {
        return;
    };
    let fx = Fixture::new();
    let ranged = RangeServer::start(&fx.mirror, None);
    let file_url = format!("file://{}", fx.mirror.display());
    let kiln = |args: &[&str]| {
        let mut cmd = fx.kiln(args);
        cmd.env("KILN_CACHE_DIR", disk.path());
        cmd
    };
    fx.config(&[&file_url], &["release"]);
    run_ok(&mut kiln(&["update"]));
    let (lock, before) = (fx.lock(), tree(disk.path()));

    // A newer stage3, bigger than the cache's disk.
    let big = fx.tmp.path().join("big.tar.xz");
    fs::write(&big, incompressible(3 << 20)).unwrap();
    let ts = "20260201T000000Z";
    publish_at(&fx.mirror, "release", ts, &big, None);
    let name = format!("stage3-amd64-openrc-{ts}.tar.xz");
    let partial = disk
        .path()
        .join("downloads/partial")
        .join(format!("{name}.{}.part", &sha512(&big)[..16]));
    let get_stage3 = format!("GET /releases/amd64/autobuilds/{ts}/{name} ");
    let stage3_gets = || {
        let log = ranged.log.lock().unwrap();
        log.iter().filter(|l| l.starts_with(&get_stage3)).count()
    };
    let (file_url, http_url) = (file_url.as_str(), ranged.url.as_str());
    for (mirrors, gets) in [(vec![file_url, http_url], 0), (vec![http_url], 1)] {
        fx.config(&mirrors, &["release"]);
        let out = run_err(&mut kiln(&["update"]));
        let err = stderr(&out);
        let want = format!(
            "error: no space left on device writing {}",
            partial.display()
        );
        assert!(
            err.lines().any(|l| l == want),
            "{mirrors:?}: {}",
            describe(&out)
        );
        let dir = partial.parent().unwrap().display();
        assert!(
            err.contains(&format!(
                "hint: free space on the file system that holds {dir} (`df -h {dir}`)"
            )),
            "{mirrors:?}: {}",
            describe(&out)
        );
        // Not the mirror's fault: no other mirror tried, no network hint,
        // no retry.
        assert!(!err.contains("mirror") && !err.contains("network"), "{err}");
        assert_eq!(stage3_gets(), gets, "{mirrors:?}");
        assert!(
            tree(disk.path()) == before,
            "{mirrors:?}: the cache changed"
        );
        assert_eq!(fx.lock(), lock);
    }
}

/// A project pinned to the good mirror, then the mirror is spoiled by
#[test]
fn unpack_refuses_escaping_paths_and_keeps_symlinks_unfollowed() {
    let tmp = tempdir();
    let make = |name: &str, script: &str| {
        let path = tmp.path().join(name);
        let code = format!(
            "import tarfile, io\nt = tarfile.open({:?}, 'w:xz')\n\
             def add(name, data=b'x', **kw):\n    i = tarfile.TarInfo(name)\n    i.size = len(data)\n    \
             [setattr(i, k, v) for k, v in kw.items()]\n    t.addfile(i, io.BytesIO(data) if i.isfile() else None)\n\
             {script}\nt.close()\n",
            path.display().to_string()
        );
        run_ok(Command::new("python3").args(["-c", &code]));
        path
    };
    let dest = tmp.path().join("root");
    for (name, script, entry, why) in [
        (
            "dotdot.tar.xz",
            "add('./etc/ok')\nadd('../evil')",
            "../evil",
            "climbs out of the root with '..'",
        ),
        (
            "abs.tar.xz",
            "add('/etc/evil')",
            "/etc/evil",
            "has an absolute path",
        ),
        (
            "through-link.tar.xz",
            "add('./out', type=tarfile.SYMTYPE, linkname='/tmp', size=0)\nadd('./out/evil')",
            "./out/evil",
            "would be written through a symlink in the archive",
        ),
        (
            "hardlink.tar.xz",
            "add('./passwd', type=tarfile.LNKTYPE, linkname='../../etc/passwd', size=0)",
            "./passwd",
            "is a hard link to a path outside the root",
        ),
    ] {
        fs::create_dir_all(&dest).unwrap();
        let archive = make(name, script);
        let err = unpack(&archive, &dest).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("refusing {}: entry '{entry}' {why}", archive.display())
        );
        assert!(!tmp.path().join("evil").exists() && !Path::new("/tmp/evil").exists());
        fs::remove_dir_all(&dest).unwrap();
    }

    fs::create_dir_all(&dest).unwrap();
    // A file of the host that a symlink in the archive points at, then an
    // entry of the same name: the link is replaced, the host file untouched.
    let host = tmp.path().join("host-file");
    fs::write(&host, "host").unwrap();
    let archive = make(
        "good.tar.xz",
        &(format!(
            "add('./etc/victim', type=tarfile.SYMTYPE, linkname={:?}, size=0)\nadd('./etc/victim', b'archive')\n",
            host.display().to_string()
        ) + "add('./etc/', type=tarfile.DIRTYPE, mode=0o755, size=0)\nadd('./etc/hostname', b'kiln\\n', mode=0o644)\n\
         add('./etc/localtime', type=tarfile.SYMTYPE, linkname='/usr/share/zoneinfo/UTC', size=0)\n\
         add('./dev/', type=tarfile.DIRTYPE, mode=0o755, size=0)\n\
         add('./dev/null', type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666, size=0)"),
    );
    let done = unpack(&archive, &dest).unwrap();
    assert_eq!(fs::read(dest.join("etc/hostname")).unwrap(), b"kiln\n");
    assert_eq!(fs::read_to_string(&host).unwrap(), "host");
    assert_eq!(
        fs::read_to_string(dest.join("etc/victim")).unwrap(),
        "archive"
    );
    assert_eq!(
        fs::read_link(dest.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    // Never a device node, even as root: the runtime gives /dev.
    assert!(fs::symlink_metadata(dest.join("dev/null")).is_err());
    assert_eq!(done.skipped, ["dev/null"], "{done:?}");
}

/// kiln's stage3 unpacker into the directory `dest`.
fn unpack(archive: &Path, dest: &Path) -> Result<kiln::Unpacked, kiln::TreeError> {
    kiln::unpack_tarball(archive, &kiln::Root::open(dest)?)
}

#[test]
fn the_world_stage3_end_to_end() {
    let Some(world) = require_env("KILN_TEST_WORLD") else {
        return;
    };
    let world = Path::new(&world);
    let tmp = tempdir();
    let project = tmp.path();
    fs::write(
        project.join("kiln.toml"),
        format!(
            "[sources]\nmirrors = [\"file://{}\"]\nkeys = [\"{}\"]\n",
            world.join("mirror").display(),
            world.join("keys/release.asc").display()
        ),
    )
    .unwrap();
    let cache = project.join("cache");
    let run = |args: &[&str]| {
        run_ok(
            kiln()
                .current_dir(project)
                .env("KILN_CACHE_DIR", &cache)
                .args(args),
        )
    };
    run(&["update"]);
    let out = run(&["fetch"]);
    let (stage3, snapshot) = fetched(&out);
    let env = fs::read_to_string(world.join("world.env")).unwrap();
    let rel = |key: &str| {
        env.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_string()
    };
    assert_eq!(
        sha512(Path::new(&stage3)),
        sha512(&world.join(rel("KILN_WORLD_STAGE3")))
    );
    assert_eq!(
        sha512(Path::new(&snapshot)),
        sha512(&world.join(rel("KILN_WORLD_SNAPSHOT")))
    );

    // Unpacked by kiln, the stand-in stage3 plus snapshot runs real Portage
    // (with the host's /dev: kiln makes no device node, a runtime gives /dev).
    let root = tmp.path().join("root");
    fs::create_dir(&root).unwrap();
    unpack(Path::new(&stage3), &root).unwrap();
    let repos = root.join("var/db/repos");
    fs::create_dir_all(&repos).unwrap();
    unpack(Path::new(&snapshot), &repos).unwrap();
    assert!(repos.join("gentoo/profiles/repo_name").is_file());
    if !nix_is_root() {
        return;
    }
    let out = run_ok(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg("mount -t proc proc \"$1/proc\" && mount --rbind /dev \"$1/dev\" && chroot \"$1\" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin emerge --info && chroot \"$1\" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin emerge --pretend app-misc/hello")
            .arg("sh")
            .arg(&root),
    );
    let text = stdout(&out);
    assert!(text.contains("app-misc/hello-1.0"), "{text}");
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
