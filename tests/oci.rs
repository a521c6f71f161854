//! The OCI writer (`kiln commit`, `kiln ls`) against the strict checker and
//! the real consumers: umoci, oci-image-tool, the image-spec JSON schemas,
//! skopeo (archives and a registry on 127.0.0.1), and podman. Determinism,
//! crashes and bad input are in oci_stress.rs.

use std::path::Path;
use std::process::Command;

use crate::util::oci::*;
use crate::util::{describe, kiln, require_tool, run_ok, stderr, stdout, tempdir};

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
    let layout_api = kiln::Layout::open(&layout).unwrap();
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

#[test]
fn ref_names_are_those_skopeo_accepts() {
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempdir();
    let (root, layout) = (tmp.path().join("root"), tmp.path().join("oci"));
    write(&root.join("etc/hello"), "hi\n");
    commit(&root, &layout, "first", &[]);
    for (reference, good) in [
        ("demo/a..b:latest", false),
        ("demo/-x:1", false),
        ("demo/x_:1", false),
        ("a//b", false),
        ("demo/x:1.0.", false),
        ("demo/a--b:1.0", true),
        ("ghcr.io/acme/web:1.25-r1", true),
        ("localhost:5000/x/y:z", true),
        ("demo/x:1_0", true),
    ] {
        let committed = kiln()
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", reference])
            .output()
            .unwrap();
        assert_eq!(committed.status.success(), good, "{}", describe(&committed));
        let inspected = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{reference}", layout.display()))
            .output()
            .unwrap();
        assert_eq!(
            inspected.status.success(),
            good,
            "skopeo and kiln disagree on {reference}: {}",
            describe(&inspected)
        );
    }
    assert_valid(&layout);
}
