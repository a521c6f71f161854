//! The OCI writer (`kiln commit`, `kiln ls`) against the strict checker and
//! the real consumers: umoci, oci-image-tool, the image-spec JSON schemas,
//! skopeo (archives and a registry on 127.0.0.1), and podman.

use std::path::Path;
use std::process::Command;

use crate::util::oci::*;
use crate::util::{describe, kiln, require_tool, run_err, run_ok, stderr, stdout, tempdir};

#[test]
fn rich_tree_is_complete_and_umoci_unpacks_it_identically() {
    if !require_tool("umoci") || !require_tool("oci-image-tool") {
        return;
    }
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    let socket = rich_tree(&root);
    let out = run_ok(
        kiln()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", "rich:1", "--json"]),
    );
    assert!(
        stderr(&out).contains(&format!("{}: skipped a socket", socket.display())),
        "{}",
        describe(&out)
    );
    assert_valid(&layout);
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let entries = layer_entries(&layout, result["layer_digest"].as_str().unwrap());
    let find = |name: &str| {
        entries
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("{name} not in the layer: {entries:#?}"))
    };
    assert_eq!(find("etc/hello").1, tar::EntryType::Link);
    assert_eq!(find("etc/hello").2.as_deref(), Some("a-first-hard"));
    assert_eq!(find("usr/hello-hard").2.as_deref(), Some("a-first-hard"));
    assert_eq!(find("a-first-hard").1, tar::EntryType::Regular);
    assert_eq!(find("etc/abs-link").2.as_deref(), Some("/etc/hello"));
    assert_eq!(
        (find("etc/abs-link").3, find("etc/abs-link").4),
        (1234, 5678)
    );
    assert_eq!(
        find("deep/long-target").2.as_deref(),
        Some("t".repeat(300).as_str())
    );
    assert_eq!(
        (find("home/big-ids").3, find("home/big-ids").4),
        (3_000_000, 2_500_000)
    );
    assert_eq!(find("dev/null").1, tar::EntryType::Char);
    assert_eq!(find("dev/loop9").1, tar::EntryType::Block);
    assert_eq!(find("dev/fifo").1, tar::EntryType::Fifo);
    assert!(
        entries.iter().all(|e| e.0 != "run/sock"),
        "the socket was written"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.0.ends_with(&"f".repeat(200)) && e.0.len() > 255)
    );
    assert!(
        entries
            .iter()
            .any(|e| e.0 == "names/latin1-\u{fffd}\u{fffd}")
    );

    run_ok(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=rich:1"])
            .arg(&layout),
    );
    let unpacked = tmp.path().join("unpacked");
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:rich:1", layout.display()))
            .arg(&unpacked),
    );
    let mut want = snapshot(&root, false);
    let got = snapshot(&unpacked.join("rootfs"), true);
    want.remove(Path::new("run/sock"));
    // A rootless unpacker cannot make device nodes or set trusted.* xattrs,
    // nor set-id bits on files it does not own the ids of: compare those by
    // the tar listing above, everything else here.
    for path in want.keys().cloned().collect::<Vec<_>>() {
        let w = want.get_mut(&path).unwrap();
        let g = &got
            .get(&path)
            .unwrap_or_else(|| panic!("{} missing after unpack", path.display()));
        if w.rdev != 0 || path.ends_with("fifo") {
            continue;
        }
        w.xattrs.retain(|(n, _)| !n.starts_with("trusted."));
        assert_eq!(w.content, g.content, "{}", path.display());
        assert_eq!(w.link, g.link, "{}", path.display());
        // umoci keeps a rootless owner in a user.* xattr, which a symlink cannot carry.
        if w.link.is_none() {
            assert_eq!(w.owner, g.owner, "{}", path.display());
        }
        assert_eq!(w.mode & 0o170777, g.mode & 0o170777, "{}", path.display());
        let gx: Vec<_> = g
            .xattrs
            .iter()
            .filter(|(n, _)| !n.starts_with("trusted."))
            .cloned()
            .collect();
        assert_eq!(w.xattrs, gx, "{}", path.display());
    }
}

#[test]
fn json_validates_against_the_image_spec_schemas() {
    let schemas = Path::new("/usr/share/gocode/src/github.com/opencontainers/image-spec/schema");
    if !require_tool("python3") {
        return;
    }
    if !schemas.exists() {
        assert!(
            std::env::var_os("KILN_TEST_REQUIRE_ALL").is_none(),
            "{} is missing: install golang-github-opencontainers-image-spec-dev",
            schemas.display()
        );
        eprintln!("skipped: no image-spec schemas");
        return;
    }
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    busybox_root(&root);
    let base = commit(
        &root,
        &layout,
        "base",
        &[
            "--cmd", "echo hi", "--env", "A=1", "--expose", "80", "--volume", "/data",
        ],
    );
    let child = commit(
        &root,
        &layout,
        "child",
        &[
            "--parent",
            "base",
            "--label",
            "x=y",
            "--annotation",
            "k=v",
            "--compression",
            "zstd",
        ],
    );
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d.as_str().unwrap().trim_start_matches("sha256:"))
    };
    let script = r#"
import json, sys, pathlib, jsonschema
base = pathlib.Path(sys.argv[1])
store = {}
for p in base.glob("*.json"):
    s = json.loads(p.read_text())
    store[s.get("id", p.name)] = s
    store[p.name] = s
resolver = jsonschema.RefResolver(base_uri=base.as_uri() + "/", referrer={}, store=store)
for kind, path in zip(sys.argv[2::2], sys.argv[3::2]):
    schema = json.loads((base / (kind + ".json")).read_text())
    jsonschema.validate(json.loads(pathlib.Path(path).read_text()), schema, resolver=resolver)
    print("valid", kind, path)
"#;
    let mut cmd = Command::new("python3");
    cmd.args(["-c", script]).arg(schemas);
    cmd.arg("image-index-schema").arg(layout.join("index.json"));
    cmd.arg("image-layout-schema")
        .arg(layout.join("oci-layout"));
    for r in [&base, &child] {
        cmd.arg("image-manifest-schema")
            .arg(blob(&r["manifest_digest"]));
        cmd.arg("config-schema").arg(blob(&r["config_digest"]));
    }
    let out = run_ok(&mut cmd);
    assert_eq!(
        stdout(&out).matches("valid").count(),
        6,
        "{}",
        describe(&out)
    );
}

#[test]
fn skopeo_copies_to_archives_and_through_a_registry() {
    if !require_tool("skopeo") || !Path::new("/usr/bin/docker-registry").exists() {
        return;
    }
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    busybox_root(&root);
    commit(&root, &layout, "demo/base:1", &[]);
    write(&tmp.path().join("child/etc/child"), "child\n");
    let child = commit(
        &tmp.path().join("child"),
        &layout,
        "demo/child:1",
        &["--parent", "demo/base:1"],
    );
    let src = format!("oci:{}:demo/child:1", layout.display());
    for dest in [
        format!(
            "oci-archive:{}/child.tar:demo/child:1",
            tmp.path().display()
        ),
        format!("dir:{}/child-dir", tmp.path().display()),
        format!(
            "docker-archive:{}/child-docker.tar:demo/child:1",
            tmp.path().display()
        ),
    ] {
        run_ok(Command::new("skopeo").args(["copy", "--quiet", &src, &dest]));
    }
    let manifest = std::fs::read(tmp.path().join("child-dir/manifest.json")).unwrap();
    assert_eq!(
        sha256_digest(&manifest),
        child["manifest_digest"].as_str().unwrap(),
        "dir: changed the manifest"
    );

    let registry = Registry::start(tmp.path());
    let remote = format!("docker://{}/demo/child:1", registry.addr);
    run_ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--preserve-digests",
        &src,
        &remote,
    ]));
    let back = format!("oci:{}/back:demo/child:1", tmp.path().display());
    run_ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        "--preserve-digests",
        &remote,
        &back,
    ]));
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("back/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["digest"], child["manifest_digest"],
        "the registry round trip changed the image"
    );
}

#[test]
fn podman_runs_parent_and_child_with_whiteouts_gzip_and_zstd() {
    if !require_tool("podman") || !require_tool("skopeo") {
        return;
    }
    let tmp = lowercase_tempdir();
    let layout = tmp.path().join("oci");
    for compression in ["gzip", "zstd"] {
        parent_and_child(tmp.path(), &layout, compression);
    }
    assert_valid(&layout);
    let ls = run_ok(kiln().args(["ls", "--json", "--layout"]).arg(&layout));
    let rows: serde_json::Value = serde_json::from_slice(&ls.stdout).unwrap();
    let child = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ref"] == "child:zstd")
        .unwrap();
    assert_eq!(child["extends"], "base:zstd");
    assert_eq!(child["layers"], 2);
    // The child reuses the parent's layer: the very same descriptor and blob.
    let layout_api = kiln::oci::Layout::open(&layout).unwrap();
    let manifest = |name: &str| {
        let desc = layout_api.resolve(name).unwrap();
        layout_api.read_manifest(desc.digest().as_ref()).unwrap()
    };
    for compression in ["gzip", "zstd"] {
        let (base, child) = (
            manifest(&format!("base:{compression}")),
            manifest(&format!("child:{compression}")),
        );
        assert_eq!(child.layers()[0], base.layers()[0]);
        assert_eq!(child.layers().len(), 2);
    }
    let blobs = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .count();
    // Four layers and four manifests; gzip and zstd images share their
    // configs, which name the same uncompressed diff_ids.
    assert_eq!(blobs, 4 + 4 + 2, "a blob was copied or duplicated");

    let script = "cat /etc/child; test -e /etc/hello && echo hello-visible; ls /etc/old";
    for compression in ["gzip", "zstd"] {
        let image = format!("oci:{}:child:{compression}", layout.display());
        let out = run_ok(podman(tmp.path()).args([
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "/bin/sh",
            "-c",
            script,
        ]));
        assert_eq!(
            stdout(&out),
            "added by the child\nnew\n",
            "{compression}: {}",
            describe(&out)
        );
        let image = format!("oci:{}:base:{compression}", layout.display());
        let out = run_ok(podman(tmp.path()).args(["run", "--rm", "--network", "none", &image]));
        assert_eq!(stdout(&out), "parent\n");
    }

    let archive = tmp.path().join("child.tar");
    run_ok(
        Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci:{}:child:gzip", layout.display()))
            .arg(format!("oci-archive:{}:kiln/child:gzip", archive.display())),
    );
    let out = run_ok(podman(tmp.path()).args(["load", "-q", "-i"]).arg(&archive));
    assert!(stdout(&out).contains("child"), "{}", describe(&out));
    let out = run_ok(podman(tmp.path()).args([
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/kiln/child:gzip",
        "cat",
        "/etc/child",
    ]));
    assert_eq!(stdout(&out), "added by the child\n");
}

fn make_tree(root: &Path, reverse: bool) {
    let mut names: Vec<String> = (0..40).map(|i| format!("d{}/f{i:02}", i % 4)).collect();
    if reverse {
        names.reverse();
    }
    for name in &names {
        write(&root.join(name), format!("content of {name}\n").repeat(500));
    }
    write(
        &root.join("big"),
        (0..3_000_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
}

#[test]
fn same_content_gives_same_digests_in_any_order_path_and_thread_count() {
    let tmp = tempdir();
    make_tree(&tmp.path().join("one/root"), false);
    make_tree(&tmp.path().join("elsewhere/two"), true);
    for compression in ["gzip", "zstd"] {
        let args = ["--compression", compression];
        let a = commit(
            &tmp.path().join("one/root"),
            &tmp.path().join("oci-a"),
            "x",
            &args,
        );
        let b = commit(
            &tmp.path().join("elsewhere/two"),
            &tmp.path().join("oci-b"),
            "x",
            &args,
        );
        assert_eq!(a["manifest_digest"], b["manifest_digest"], "{compression}");
        let mut digests = Vec::new();
        for threads in ["1", "8"] {
            let out = run_ok(
                kiln()
                    .env("SOURCE_DATE_EPOCH", EPOCH)
                    .env("KILN_THREADS", threads)
                    .arg("commit")
                    .arg(tmp.path().join("one/root"))
                    .arg("--layout")
                    .arg(tmp.path().join(format!("oci-t{threads}")))
                    .args(["--ref", "x", "--json", "--compression", compression]),
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            digests.push(v["layer_digest"].clone());
        }
        assert_eq!(
            digests[0], digests[1],
            "{compression}: 1 thread and 8 threads differ"
        );
        assert_eq!(digests[0], a["layer_digest"]);
    }
    assert_valid(&tmp.path().join("oci-a"));
}

#[test]
fn killed_commits_leave_a_valid_layout_and_the_next_commit_succeeds() {
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    for i in 0..24 {
        let data: Vec<u8> = (0..2_000_000u32)
            .map(|j| (j.wrapping_mul(2654435761) >> (i % 24)) as u8)
            .collect();
        write(&root.join(format!("big/{i:02}")), data);
    }
    for i in 0..2000 {
        write(
            &root.join(format!("small/{}/{i}", i % 20)),
            format!("{i}\n"),
        );
    }
    commit(&root, &layout, "first", &["--compression", "none"]);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut interrupted = 0;
    for round in 0..8u32 {
        let delay = (seed.wrapping_mul(round + 1).wrapping_mul(2654435761) >> 8) % 600;
        let mut child = kiln()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", &format!("killed-{round}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(u64::from(delay)));
        let _ = child.kill();
        let status = child.wait().unwrap();
        if std::os::unix::process::ExitStatusExt::signal(&status) == Some(libc::SIGKILL) {
            interrupted += 1;
        }
        let report = kiln::oci::fsck(&layout).unwrap();
        assert!(
            report.is_ok(),
            "after a kill at {delay} ms: {:#?}",
            report.problems
        );
    }
    assert!(interrupted > 0, "no commit was killed while it ran");
    commit(&root, &layout, "after", &[]);
    assert_valid(&layout);
    let leftovers: Vec<_> = std::fs::read_dir(layout.join(".kiln-tmp"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files of killed writers were not removed: {leftovers:?}"
    );
}

#[test]
fn four_concurrent_writers_lose_no_ref() {
    let tmp = tempdir();
    for i in 0..4 {
        write(
            &tmp.path().join(format!("root{i}/file{i}")),
            format!("writer {i}\n").repeat(10_000),
        );
    }
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (root, layout) = (tmp.path().join(format!("root{i}")), tmp.path().join("oci"));
            std::thread::spawn(move || {
                kiln()
                    .arg("commit")
                    .arg(&root)
                    .arg("--layout")
                    .arg(&layout)
                    .args(["--ref", &format!("writer-{i}")])
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    let layout = tmp.path().join("oci");
    assert_valid(&layout);
    let refs: Vec<_> = kiln::oci::Layout::open(&layout)
        .unwrap()
        .refs()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(refs, ["writer-0", "writer-1", "writer-2", "writer-3"]);
}

#[test]
fn errors_name_the_problem_and_the_fix() {
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    write(&root.join("etc/hello"), "hi\n");
    let fail = |args: &[&str], root: &Path, layout: &Path| {
        stderr(&run_err(
            kiln()
                .arg("commit")
                .arg(root)
                .arg("--layout")
                .arg(layout)
                .args(args),
        ))
    };

    let missing = tmp.path().join("no-such-root");
    let err = fail(&["--ref", "a"], &missing, &layout);
    assert!(
        err.contains(&format!(
            "error: root filesystem {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(!layout.exists(), "a failed commit created the layout");

    commit(&root, &layout, "base:1", &[]);
    commit(&root, &layout, "other:2", &[]);
    let err = fail(&["--ref", "a", "--parent", "nope"], &root, &layout);
    assert!(
        err.contains(&format!(
            "error: parent image \"nope\" is not in layout {}; refs there: base:1, other:2",
            layout.display()
        )),
        "{err}"
    );

    let fresh = tmp.path().join("fresh");
    let err = fail(&["--ref", "a", "--parent", "base:1"], &root, &fresh);
    assert!(err.contains("refs there: none"), "{err}");
    assert!(!fresh.exists(), "a failed commit created the layout");

    let not_layout = tmp.path().join("not-a-layout");
    write(&not_layout.join("something"), "x");
    let err = fail(&["--ref", "a"], &root, &not_layout);
    assert!(
        err.contains(&format!(
            "error: {} is not an OCI image layout: it has no oci-layout file",
            not_layout.display()
        )),
        "{err}"
    );
    let err = stderr(&run_err(kiln().args(["ls", "--layout"]).arg(&not_layout)));
    assert!(err.contains("is not an OCI image layout"), "{err}");

    let map = tmp.path().join("uid_map");
    write(&map, "0 300000 65536\n");
    let err = fail(
        &["--ref", "a", "--uid-map", map.to_str().unwrap()],
        &root,
        &layout,
    );
    assert!(
        err.contains(&format!(
            "error: {}: uid 0 is not mapped by the user namespace's uid_map",
            root.join("etc").display()
        )),
        "{err}"
    );
    lchown(&root.join("etc"), 300000, 0);
    lchown(&root.join("etc/hello"), 300007, 0);
    let ok = commit(
        &root,
        &layout,
        "mapped",
        &["--uid-map", map.to_str().unwrap()],
    );
    let entries = layer_entries(&layout, ok["layer_digest"].as_str().unwrap());
    assert_eq!(entries.iter().find(|e| e.0 == "etc/hello").unwrap().3, 7);

    // Unreadable: root reads everything, so run kiln as nobody.
    if require_tool("setpriv") {
        let shared = tmp.path().join("shared");
        std::fs::create_dir_all(shared.join("root")).unwrap();
        chmod(tmp.path(), 0o755);
        chmod(&shared, 0o777);
        // A copy nobody can run even when the checkout is under /root.
        let kiln_copy = shared.join("kiln");
        std::fs::copy(crate::util::kiln_path(), &kiln_copy).unwrap();
        write(&shared.join("root/secret"), "no\n");
        chmod(&shared.join("root/secret"), 0o000);
        let out = run_err(
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(&kiln_copy)
                .arg("commit")
                .arg(shared.join("root"))
                .arg("--layout")
                .arg(shared.join("oci"))
                .args(["--ref", "a"])
                .env("KILN_NO_PROGRESS", "1"),
        );
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "error: cannot read {}",
                shared.join("root/secret").display()
            )),
            "{err}"
        );
        assert!(err.contains("Permission denied"), "{err}");
        assert_valid(&shared.join("oci"));
    }
    assert_valid(&layout);
}
