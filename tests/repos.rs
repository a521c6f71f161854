//! The project's own ebuild repositories (kiln.toml's `[repos.NAME]`), on
//! the stack of tests/fixtures/layouts/repos over layouts/demo: local/motd
//! emerges a package only the local repository has, local/plain opts out
//! with `repos = []`, local/kubler adds an overlay of its own directory with
//! build.sh's `add_overlay`, as kubler's images do. Real emerge reads the
//! repository where kiln mounts it; an edited ebuild rebuilds exactly the
//! images that use it; `kiln fetch --to` carries the distfiles of its
//! packages, and an offline build from that mirror emerges them; root and
//! rootless; `kiln check` names a repository that is not one.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{as_user, build, manifest, root_demo_project, rootless_demo_project};
use crate::layouts::check_fails_with;
use crate::util::fetch::PythonServer;
use crate::util::layouts::{stack, write};
use crate::util::runtime::chown_r;
use crate::util::{describe, kiln, run_ok, stderr};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts/repos")
        .join(rel)
}

/// The demo project plus the local namespace and repository; the demo
/// namespace uses no repository (every declared one is the default).
fn add_local(project: &Path) {
    for (from, to) in [("layouts/local", "layouts/"), ("repos", ".")] {
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(fixture(from))
                .arg(project.join(to)),
        );
    }
    let toml = project.join("kiln.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(
        &toml,
        format!("{text}\n[repos.local]\npath = \"repos/local\"\n"),
    )
    .unwrap();
    let ns = project.join("layouts/demo/namespace.toml");
    let text = fs::read_to_string(&ns).unwrap();
    fs::write(&ns, format!("repos = []\n{text}")).unwrap();
}

/// The bytes of `path` in the top layer of `reference`.
fn top_file(oci: &Path, reference: &str, path: &str) -> Option<Vec<u8>> {
    let manifest = manifest(oci, reference);
    let digest = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let blob = fs::File::open(oci.join("blobs/sha256").join(digest)).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(blob));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name.trim_start_matches("./") == path {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

fn motd(oci: &Path) -> String {
    let bytes = top_file(oci, "local/motd:latest", "usr/share/motd/motd")
        .expect("local/motd's layer has no /usr/share/motd/motd");
    String::from_utf8(bytes).unwrap()
}

#[test]
fn a_local_repository_is_emerged_from_and_an_edited_ebuild_rebuilds_exactly_its_images() {
    let Some((_tmp, project, _world)) = root_demo_project() else {
        return;
    };
    add_local(&project);
    let oci = project.join("oci");
    let out = run_ok(&mut build(&project, &["local"]));
    assert!(
        stderr(&out).contains("5 built, 0 cached"),
        "{}",
        describe(&out)
    );
    // emerge installed app-misc/motd, which only ::local has, with no copy
    // of the repository in the image's directory.
    assert_eq!(motd(&oci), "motd 1 from ::local\n");
    let packages =
        fs::read_to_string(project.join("layouts/local/images/motd/PACKAGES.md")).unwrap();
    assert!(packages.contains("| app-misc/motd | 1.0 |"), "{packages}");
    // add_overlay of a kubler-style build.sh still works.
    assert_eq!(
        top_file(&oci, "local/kubler:latest", "usr/share/kub/kub").as_deref(),
        Some(&b"kub from ::mine\n"[..]),
    );
    // The build saw the repository read-only (motd's build.sh checks it):
    // nothing was written into the project's copy.
    assert!(!project.join("repos/local/written").exists());

    // Nothing changed: everything is cached.
    let out = run_ok(&mut build(&project, &["local"]));
    assert!(
        stderr(&out).contains("0 built, 5 cached"),
        "{}",
        describe(&out)
    );

    // One ebuild edited, its version kept: only local/motd uses the
    // repository, so only it rebuilds, and from the edited ebuild, not
    // from the binary package of the same version.
    let ebuild = project.join("repos/local/app-misc/motd/motd-1.0.ebuild");
    let text = fs::read_to_string(&ebuild).unwrap();
    fs::write(&ebuild, text.replace("motd 1 from", "motd 2 from")).unwrap();
    let out = run_ok(&mut build(&project, &["local"]));
    let err = stderr(&out);
    assert!(
        err.contains("1 built, 4 cached") && err.contains("Built image local/motd"),
        "{}",
        describe(&out)
    );
    for cached in [
        "builder demo/bob",
        "image demo/glibc",
        "image local/plain",
        "image local/kubler",
    ] {
        assert!(err.contains(&format!("Cached {cached}")), "{cached}: {err}");
    }
    assert_eq!(motd(&oci), "motd 2 from ::local\n");
}

#[test]
fn a_local_repository_is_emerged_from_rootless() {
    let Some((_tmp, project, user)) = rootless_demo_project() else {
        return;
    };
    add_local(&project);
    chown_r(&user, &project);
    let out = run_ok(as_user(&user, "build", &project).arg("local/motd"));
    assert!(
        stderr(&out).contains("3 built, 0 cached"),
        "{}",
        describe(&out)
    );
    assert_eq!(motd(&project.join("oci")), "motd 1 from ::local\n");
}

/// A source tarball no Gentoo mirror has, and the Manifest naming it.
fn hi_src(project: &Path, distfiles: &Path) -> PathBuf {
    let src = project.join("hi-src-1.0");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("hi.txt"), "hi from a tarball of ::local\n").unwrap();
    let tarball = distfiles.join("hi-src-1.0.tar.gz");
    run_ok(
        Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(project)
            .arg("hi-src-1.0"),
    );
    fs::remove_dir_all(&src).unwrap();
    let sum = |tool: &str| {
        let out = run_ok(Command::new(tool).arg(&tarball));
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let size = fs::metadata(&tarball).unwrap().len();
    fs::write(
        project.join("repos/local/app-misc/hi-src/Manifest"),
        format!(
            "DIST hi-src-1.0.tar.gz {size} BLAKE2B {} SHA512 {}\n",
            sum("b2sum"),
            sum("sha512sum")
        ),
    )
    .unwrap();
    tarball
}

#[test]
fn fetch_to_carries_a_local_repositorys_distfiles_to_an_offline_build() {
    let Some((tmp, project, world)) = root_demo_project() else {
        return;
    };
    add_local(&project);
    // The world's mirror, served over HTTP, with one more distfile.
    let served = tmp.path().join("served");
    fs::create_dir_all(served.join("distfiles")).unwrap();
    let mirror = Path::new(&world).join("mirror");
    for dir in ["releases", "snapshots"] {
        std::os::unix::fs::symlink(mirror.join(dir), served.join(dir)).unwrap();
    }
    for entry in fs::read_dir(mirror.join("distfiles")).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(
            entry.path(),
            served.join("distfiles").join(entry.file_name()),
        )
        .unwrap();
    }
    let tarball = hi_src(&project, &served.join("distfiles"));
    write(
        &project,
        &[
            (
                "layouts/local/images/hi-src/image.toml",
                "parent = \"demo/glibc\"\npackages = [\"app-misc/hi-src\"]\n",
            ),
            ("layouts/local/images/hi-src/README.md", "# hi-src\n"),
        ],
    );
    let mut server = PythonServer::start(&served);
    let toml = project.join("kiln.toml");
    let mirror_is = |url: &str| {
        let text = fs::read_to_string(&toml).unwrap();
        let line = text.lines().find(|l| l.starts_with("mirrors = ")).unwrap();
        let text = text.replace(line, &format!("mirrors = [\"{url}\"]"));
        fs::write(&toml, text).unwrap();
    };
    mirror_is(&server.url);

    let usb = tmp.path().join("usb");
    let out = run_ok(
        kiln()
            .args(["fetch", "local/hi-src", "--to"])
            .arg(&usb)
            .arg("--project")
            .arg(&project),
    );
    assert!(
        stderr(&out).contains("Fetching distfiles of image local/hi-src"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        fs::read(usb.join("distfiles/hi-src-1.0.tar.gz")).ok(),
        Some(fs::read(&tarball).unwrap()),
        "the exported mirror lacks ::local's distfile: {}",
        describe(&out)
    );

    // Air-gapped: no server, an empty cache, the carried dir the only
    // mirror; the repository came with the project.
    server.stop();
    fs::remove_dir_all(project.join(".cache")).unwrap();
    mirror_is(&format!("file://{}", usb.display()));
    let out = run_ok(&mut build(&project, &["local/hi-src", "--offline"]));
    assert!(
        stderr(&out).contains("Built image local/hi-src in"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        top_file(
            &project.join("oci"),
            "local/hi-src:latest",
            "usr/share/hi-src/hi.txt"
        )
        .as_deref(),
        Some(&b"hi from a tarball of ::local\n"[..]),
    );
}

#[test]
fn check_names_a_repository_that_is_missing_not_a_dir_not_one_or_unreadable() {
    let dir = stack(&[
        ("layouts/a/namespace.toml", "repos = [\"misssing\"]\n"),
        ("repos/file", "not a directory\n"),
        ("repos/empty/app-misc/x/x-1.ebuild", "EAPI=8\n"),
        ("repos/other/profiles/repo_name", "different\n"),
        ("repos/good/profiles/repo_name", "good\n"),
        ("repos/closed/profiles/repo_name", "closed\n"),
        ("repos/closed/app-misc/x/x-1.ebuild", "EAPI=8\n"),
    ]);
    let root = dir.path().canonicalize().unwrap();
    let closed = root.join("repos/closed/app-misc/x/x-1.ebuild");
    fs::set_permissions(&closed, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    fs::write(
        root.join("kiln.toml"),
        "[repos.missing]\npath = \"repos/missing\"\n\
         [repos.file]\npath = \"repos/file\"\n\
         [repos.empty]\npath = \"repos/empty\"\n\
         [repos.other]\npath = \"repos/other\"\n\
         [repos.away]\npath = \"../away\"\n\
         [repos.good]\npath = \"repos/good\"\npriority = 10\nmasters = [\"gentoo\"]\n\
         [repos.closed]\npath = \"repos/closed\"\n",
    )
    .unwrap();
    let r = root.display();
    check_fails_with(
        &root,
        &format!(
            "error: kiln.toml:2:8: the repository `missing` is missing: no {r}/repos/missing\n\
             hint: create it there, or correct `path`: it is relative to the project root {r}\n\
             error: kiln.toml:4:8: the repository `file` at {r}/repos/file is not a directory\n\
             hint: `path` names the repository's directory (the one holding profiles/ and metadata/)\n\
             error: kiln.toml:6:8: the repository `empty` has no {r}/repos/empty/profiles/repo_name (no such file or directory): it is no ebuild repository\n\
             hint: write `empty` into {r}/repos/empty/profiles/repo_name, and `masters = gentoo` into {r}/repos/empty/metadata/layout.conf\n\
             error: kiln.toml:8:8: {r}/repos/other/profiles/repo_name names the repository `different`, but kiln.toml declares it as `other`\n\
             hint: declare it as [repos.different], or write `other` into profiles/repo_name: Portage knows a repository by that file\n\
             error: kiln.toml:10:8: the repository `away` (`../away`) is outside the project\n\
             hint: copy it into the project (a git submodule will do) and name its path relative to {r}: \
             the project is what a build reads and an air-gapped machine gets\n\
             error: layouts/a/namespace.toml:1:10: `misssing` is not a repository of kiln.toml\n\
             hint: did you mean `missing`?\n\
             warning: repos/closed/app-misc/x/x-1.ebuild: the repository `closed` has a file others cannot read (mode 0600): \
             Portage reads ebuilds, eclasses and patches as its own user, not as you\n\
             hint: make the repository readable: chmod -R a+rX {r}/repos/closed"
        ),
    );
}
