//! Accounts across layers, on the stack of tests/fixtures/layouts/users over
//! layouts/demo: demo/glibc (no parent) <- users/a (acct-user/nginx, built in
//! glibc's builder state) <- users/b (acct-user/redis, built in demo/bob,
//! which never saw users/a) <- users/c (hello, no user). The test world's
//! acct eclasses add users as Gentoo's do, with `useradd --prefix`. Each
//! image's passwd and group, read through the layout layer by layer as a
//! runtime applies them, must hold every user of its layers; no layer
//! carries shadow's backups or a file unchanged from its parent; `kiln run
//! --user` and `podman run --user` resolve the users. As root and rootless.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{as_user, build, manifest, require_root, root_demo_project, user_demo_project};
use crate::util::oci::podman;
use crate::util::runtime::{As, chown_r, kiln_as};
use crate::util::{describe, require_env, require_tool, run_ok, stderr, stdout};

const STACK: [&str; 4] = [
    "demo/glibc:latest",
    "users/a:latest",
    "users/b:latest",
    "users/c:latest",
];

fn blob_path(oci: &Path, digest: &str) -> PathBuf {
    oci.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The layer blobs of `reference`, bottom first.
fn layers(oci: &Path, reference: &str) -> Vec<PathBuf> {
    let manifest = manifest(oci, reference);
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob_path(oci, l["digest"].as_str().unwrap()))
        .collect()
}

/// One layer's entries: path (no `./`, no trailing `/`), whether it is a
/// regular file, its content, uid and gid.
type Entry = (String, bool, Vec<u8>, u64, u64);

fn entries(blob: &Path) -> Vec<Entry> {
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(blob).unwrap()));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8_lossy(&e.path_bytes())
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let (file, uid, gid) = {
                let h = e.header();
                (h.entry_type().is_file(), h.uid().unwrap(), h.gid().unwrap())
            };
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (path, file, bytes, uid, gid)
        })
        .collect()
}

/// The image's regular files as a runtime merges its layers: applied bottom
/// to top, a `.wh.NAME` removing NAME and all below it, a `.wh..wh..opq`
/// emptying its directory of what the layers below put there.
fn merged(oci: &Path, reference: &str) -> BTreeMap<String, Vec<u8>> {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for blob in layers(oci, reference) {
        let layer = entries(&blob);
        for (path, ..) in &layer {
            let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
            let Some(gone) = name.strip_prefix(".wh.") else {
                continue;
            };
            let prefix = if gone == ".wh..opq" {
                format!("{dir}/")
            } else if dir.is_empty() {
                gone.to_string()
            } else {
                format!("{dir}/{gone}")
            };
            files.retain(|p, _| {
                !(p == &prefix || p.starts_with(&format!("{}/", prefix.trim_end_matches('/'))))
            });
        }
        for (path, file, bytes, ..) in layer {
            if path.rsplit('/').next().unwrap().starts_with(".wh.") {
                continue;
            }
            if file {
                files.insert(path, bytes);
            } else {
                files.remove(&path);
            }
        }
    }
    files
}

/// The names in a passwd or group file, in order.
fn names(file: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(file)
        .lines()
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

/// What every image of the stack must hold, read through the layout.
fn check_accounts(oci: &Path) {
    let expected = [
        (vec!["root", "nobody"], "demo/glibc"),
        (vec!["root", "nobody", "nginx"], "users/a"),
        (vec!["root", "nobody", "nginx", "redis"], "users/b"),
        (vec!["root", "nobody", "nginx", "redis"], "users/c"),
    ];
    for (reference, (users, what)) in STACK.iter().zip(expected) {
        let files = merged(oci, reference);
        for db in ["etc/passwd", "etc/group"] {
            let file = files
                .get(db)
                .unwrap_or_else(|| panic!("{what} has no {db}: {:?}", files.keys()));
            assert_eq!(names(file), users, "{db} of {what}");
        }
        assert!(files.contains_key("etc/shadow"), "{what} has no etc/shadow");
    }
    let b = merged(oci, "users/b:latest");
    let passwd = String::from_utf8_lossy(&b["etc/passwd"]).into_owned();
    assert!(
        passwd
            .contains("nginx:x:82:82:User of the nginx web server:/var/lib/nginx:/sbin/nologin\n")
            && passwd.contains("redis:x:75:75:User of the redis server:/dev/null:/sbin/nologin\n"),
        "{passwd}"
    );
    let group = String::from_utf8_lossy(&b["etc/group"]).into_owned();
    assert!(
        group.contains("nginx:x:82:\n") && group.contains("redis:x:75:\n"),
        "{group}"
    );

    // The layers themselves: no backups; a child that adds no user carries
    // no account file; nginx's home belongs to nginx.
    for reference in STACK {
        let top = entries(layers(oci, reference).last().unwrap());
        let etc: Vec<&str> = top
            .iter()
            .map(|(p, ..)| p.as_str())
            .filter(|p| p.starts_with("etc/"))
            .collect();
        assert!(
            !etc.iter().any(|p| p.ends_with('-')),
            "shadow's backups in {reference}'s layer: {etc:?}"
        );
        if reference == "users/c:latest" {
            assert!(
                !etc.iter()
                    .any(|p| ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"].contains(p)),
                "users/c added no user, but its layer has {etc:?}"
            );
        }
    }
    let a = entries(layers(oci, "users/a:latest").last().unwrap());
    let home = a
        .iter()
        .find(|(p, ..)| p == "var/lib/nginx")
        .expect("users/a's layer has no /var/lib/nginx");
    assert_eq!((home.3, home.4), (82, 82), "owner of /var/lib/nginx");
}

/// users/tools: busybox's `id` on top of users/c, to ask who a user is;
/// committed by `who`.
fn commit_tools(who: As, project: &Path) {
    let root = project.join("tools");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    symlink("busybox", root.join("bin/id")).unwrap();
    if let As::User(user) = who {
        chown_r(user, &root);
    }
    run_ok(
        kiln_as(who, &project.join(".cache"))
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(project.join("oci"))
            .args(["--ref", "users/tools:latest", "--parent", "users/c:latest"]),
    );
}

/// `kiln run --user` (as `who`) and `podman run --user` as the image's
/// users.
fn check_runs(who: As, tmp: &Path, project: &Path) {
    for (user, uid, gid) in [("root", 0, 0), ("nginx", 82, 82), ("redis", 75, 75)] {
        // busybox's id names the ids from the image's own passwd and group
        let expect = [format!("uid={uid}({user})"), format!("gid={gid}({user})")];
        let out = run_ok(
            kiln_as(who, &project.join(".cache"))
                .arg("run")
                .arg("--layout")
                .arg(project.join("oci"))
                .args(["--user", user, "users/tools:latest", "/bin/id"]),
        );
        assert!(
            expect.iter().all(|e| stdout(&out).contains(e)),
            "kiln run --user {user}: {}",
            describe(&out)
        );
        let out = run_ok(
            podman(&tmp.join("podman"))
                .args(["run", "--rm", "--network", "none", "--user", user])
                .arg("oci:oci:users/tools:latest")
                .arg("/bin/id")
                .current_dir(project),
        );
        assert!(
            expect.iter().all(|e| stdout(&out).contains(e)),
            "podman run --user {user}: {}",
            describe(&out)
        );
    }
}

fn add_users_namespace(project: &Path) {
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/layouts/users"))
            .arg(project.join("layouts/users")),
    );
}

#[test]
fn users_of_a_parent_and_a_child_resolve_in_every_image_as_root() {
    let Some((tmp, project, _world)) = root_demo_project() else {
        return;
    };
    if !require_tool("podman") {
        return;
    }
    add_users_namespace(&project);
    let out = run_ok(&mut build(&project, &["users"]));
    assert!(
        stderr(&out).contains("5 built, 0 cached"),
        "{}",
        describe(&out)
    );
    check_accounts(&project.join("oci"));
    commit_tools(As::Root, &project);
    check_runs(As::Root, tmp.path(), &project);
}

#[test]
fn users_of_a_parent_and_a_child_resolve_in_every_image_rootless() {
    let (Some(world), Some(user)) = (
        require_env("KILN_TEST_WORLD"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    if !require_root() || !require_tool("podman") {
        return;
    }
    let (tmp, project) = user_demo_project(&world, &user);
    add_users_namespace(&project);
    chown_r(&user, &project);
    let out = run_ok(as_user(&user, "build", &project).arg("users"));
    assert!(
        stderr(&out).contains("5 built, 0 cached"),
        "{}",
        describe(&out)
    );
    check_accounts(&project.join("oci"));
    commit_tools(As::User(&user), &project);
    check_runs(As::User(&user), tmp.path(), &project);
}
