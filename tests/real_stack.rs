//! The reference stack, layouts/gentoo, built unchanged from the test
//! world's real software: busybox, skalibs, execline, s6, entr, zlib, pcre2,
//! nginx and redis compiled by real emerge from their upstream release
//! tarballs, the way a user builds the stack from a Gentoo mirror. Then the
//! images must work as services: nginx serves a page on 127.0.0.1 with its
//! workers as the nginx user; s6-svscan supervises redis, which runs as the
//! redis user, answers PING, and is restarted when killed; in `kiln run` and
//! in `podman run`; as root, then rootless.
//!
//! Compiling the world takes minutes, so the binary packages of the first
//! build on a machine are kept beside the world (its hash names them) and
//! seed every later run's fresh cache: every image is still emerged, from
//! those packages, into a fresh layout. A new world (a changed ebuild)
//! compiles again.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{as_user, build, manifest, project_from, require_root, world_copy};
use crate::util::oci::{layer_entries, podman};
use crate::util::runtime::{As, chown_r, kiln_as};
use crate::util::{describe, require_env, require_tool, run_ok, stderr, stdout, tempdir};

const IMAGES: [&str; 6] = [
    "gentoo/busybox",
    "gentoo/glibc",
    "gentoo/s6",
    "gentoo/openssl",
    "gentoo/nginx",
    "gentoo/redis",
];

/// Where the world's compiled packages are kept: beside the world, named by
/// its hash.
fn kept_binpkgs(world: &str) -> PathBuf {
    PathBuf::from(format!("{}-binpkgs", world.trim_end_matches('/')))
}

/// A project of layouts/gentoo on the world's mirror and keys at `world`
/// (the world itself or a copy), its cache seeded with the kept packages of
/// the world named `kept_for` if any.
fn gentoo_project(dir: &Path, world: &Path, kept_for: &str) {
    project_from(
        dir,
        "gentoo",
        &world.join("mirror").display().to_string(),
        &world.join("keys").display().to_string(),
    );
    let kept = kept_binpkgs(kept_for);
    if kept.is_dir() {
        let binpkgs = dir.join(".cache/binpkgs");
        fs::create_dir_all(&binpkgs).unwrap();
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(&kept)
                .arg(binpkgs.join("amd64-openrc")),
        );
    }
}

/// Each package was built once: Portage numbers a second build of the same
/// version as a second instance (NAME-VER-2.gpkg.tar, binpkg-multi-instance),
/// which a library both nginx's DEPEND (for the builder) and its RDEPEND
/// (for the root) would get if bob-core let one emerge plan it twice. On a
/// cold run (the first on a world) this sees the compiling; later runs
/// start from the kept packages and build none.
fn check_compiled_once(binpkgs: &Path) {
    let out =
        run_ok(
            Command::new("find")
                .arg(binpkgs)
                .args(["-name", "*.gpkg.tar", "-printf", "%P\n"]),
        );
    let packages = stdout(&out);
    let again: Vec<&str> = packages
        .lines()
        .filter(|p| !p.ends_with("-1.gpkg.tar"))
        .collect();
    assert!(
        again.is_empty(),
        "built more than once: {again:?}; all: {packages}"
    );
}

/// Keeps the packages of a successful build for the next run (first one
/// wins; the copy is renamed into place whole).
fn keep_binpkgs(project: &Path, world: &str) {
    let kept = kept_binpkgs(world);
    if kept.exists() {
        return;
    }
    let part = PathBuf::from(format!("{}.part-{}", kept.display(), std::process::id()));
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(project.join(".cache/binpkgs/amd64-openrc"))
            .arg(&part),
    );
    if fs::rename(&part, &kept).is_err() {
        let _ = fs::remove_dir_all(&part);
    }
}

/// The regular files of each layer of `reference`, bottom first.
fn layer_files(oci: &Path, reference: &str) -> Vec<Vec<String>> {
    manifest(oci, reference)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            layer_entries(oci, l["digest"].as_str().unwrap())
                .into_iter()
                .filter(|e| e.1 == tar::EntryType::Regular)
                .map(|e| e.0.trim_start_matches("./").to_string())
                .collect()
        })
        .collect()
}

/// Files a layer may carry again: the accounts files (a child's are a
/// superset of its parent's) and what Portage's env-update writes into
/// every ROOT it merges to, regenerated from that root's own etc/env.d
/// (docs/real-stack.md).
const REWRITTEN: [&str; 7] = [
    "etc/passwd",
    "etc/group",
    "etc/shadow",
    "etc/gshadow",
    "etc/profile.env",
    "etc/csh.env",
    "etc/environment.d/10-gentoo-env.conf",
];

/// Each image holds only its own packages: no other file is in two layers
/// of an image, and the shared libraries sit in the layer of the image that
/// asked for them.
fn check_layers(oci: &Path) {
    for image in IMAGES {
        let layers = layer_files(oci, &format!("{image}:latest"));
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, files) in layers.iter().enumerate() {
            for f in files {
                if let Some(first) = seen.insert(f, i)
                    && !REWRITTEN.contains(&f.as_str())
                {
                    panic!("{image}: {f} is in layer {first} and again in layer {i}");
                }
            }
        }
    }
    let has = |reference: &str, layer: usize, needle: &str| {
        layer_files(oci, reference)[layer]
            .iter()
            .any(|f| f.contains(needle))
    };
    // nginx (layer 4) brings zlib and pcre2; s6 (layer 2) brings skalibs
    for needle in ["usr/bin/nginx", "libz.so", "libpcre2-8.so"] {
        assert!(
            has("gentoo/nginx:latest", 4, needle),
            "{needle} not in nginx's layer"
        );
    }
    assert!(has("gentoo/nginx:latest", 2, "libskarnet.so"));
    assert!(!has("gentoo/nginx:latest", 4, "libskarnet.so"));
    assert!(
        !has("gentoo/redis:latest", 3, "libz.so"),
        "redis needs no zlib"
    );
    assert!(has("gentoo/redis:latest", 3, "usr/bin/redis-server"));
}

/// nginx serves a page, its workers as nginx.
const NGINX: &str = "echo served-by-kiln > /var/www/localhost/htdocs/index.html && nginx && \
     wget -qO- http://127.0.0.1/ && ps -o user,args";

/// s6-svscan starts redis from /service; redis answers, as the redis user;
/// killed, it is started again.
const REDIS: &str = "s6-svscan /service & \
     ping() { i=0; until redis-cli ping 2>/dev/null; do i=$((i+1)); [ $i -gt 100 ] && exit 9; sleep 0.1; done; }; \
     ping && first=$(pidof redis-server) && ps -o user,args && \
     kill $first && sleep 0.2 && ping && again=$(pidof redis-server) && \
     [ \"$again\" != \"$first\" ] && echo restarted-by-s6";

fn check_services(out: &std::process::Output, what: &str) {
    let text = stdout(out);
    let expect: &[&str] = if what.contains("nginx") {
        &["served-by-kiln", "nginx    nginx: worker process"]
    } else {
        &["PONG", "redis    redis-server", "restarted-by-s6"]
    };
    for e in expect {
        assert!(text.contains(e), "{what}: no '{e}' in {}", describe(out));
    }
}

/// The services in `kiln run` (as `who`) and in `podman run`.
fn check_runs(who: As, tmp: &Path, project: &Path) {
    for (image, script) in [("gentoo/nginx", NGINX), ("gentoo/redis", REDIS)] {
        let out = run_ok(
            kiln_as(who, &project.join(".cache"))
                .arg("run")
                .arg("--layout")
                .arg(project.join("oci"))
                .args([&format!("{image}:latest"), "--", "sh", "-c", script]),
        );
        check_services(&out, &format!("kiln run {image}"));
        let out = run_ok(
            podman(&tmp.join("podman"))
                .args(["run", "--rm", "--network", "none"])
                .arg(format!("oci:oci:{image}:latest"))
                .args(["sh", "-c", script])
                .current_dir(project),
        );
        check_services(&out, &format!("podman run {image}"));
    }
}

/// The build's summary (on stdout, its count on stderr) gives each image's
/// size, its layer's size and its layer count, and each image's PACKAGES.md
/// its packages' sizes.
fn check_summary(out: &std::process::Output, project: &Path) {
    assert!(
        stderr(out).contains("7 built, 0 cached"),
        "{}",
        describe(out)
    );
    let text = stdout(out);
    for (image, layers) in [("gentoo/nginx", 5), ("gentoo/redis", 4)] {
        let line = text
            .lines()
            .find(|l| l.starts_with(image))
            .unwrap_or_else(|| panic!("no summary line for {image}: {text}"));
        // IMAGE SIZE LAYER LAYERS: "gentoo/nginx 6.1 MiB 1.0 MiB 5 ..."
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert!(
            cols[2].ends_with("iB") && cols[4].ends_with("iB") && cols[5] == layers.to_string(),
            "{line}"
        );
    }
    let packages =
        fs::read_to_string(project.join("layouts/gentoo/images/nginx/PACKAGES.md")).unwrap();
    assert!(
        packages.contains("| www-servers/nginx | 1.22.1-r1 | mainline | +http2 +pcre -ssl |"),
        "{packages}"
    );
}

#[test]
fn reference_stack_from_real_sources_serves_as_root_and_rootless() {
    let (Some(world), Some(user)) = (
        require_env("KILN_TEST_WORLD"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    if !require_root() || !require_tool("podman") {
        return;
    }
    let world_dir = Path::new(&world);

    // root, on the world itself
    let tmp = tempdir();
    let project = tmp.path().join("project");
    gentoo_project(&project, world_dir, &world);
    let out = run_ok(&mut build(&project, &["gentoo"]));
    check_compiled_once(&project.join(".cache/binpkgs/amd64-openrc"));
    keep_binpkgs(&project, &world);
    check_summary(&out, &project);
    check_layers(&project.join("oci"));
    check_runs(As::Root, tmp.path(), &project);

    // rootless, on the user's own copy of the world (root's home is closed)
    let tmp = tempdir();
    let copy = world_copy(tmp.path(), &world);
    let project = tmp.path().join("project");
    gentoo_project(&project, &copy, &world);
    chown_r(&user, tmp.path());
    let out = run_ok(as_user(&user, "build", &project).arg("gentoo"));
    check_summary(&out, &project);
    check_layers(&project.join("oci"));
    check_runs(As::User(&user), tmp.path(), &project);
}
