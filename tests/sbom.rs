//! What every image tells about itself (docs/sbom.md), checked on real
//! builds of the demo stack with no SOURCE_DATE_EPOCH: its SPDX and
//! CycloneDX SBOMs pass the SPDX project's and CycloneDX's own validators
//! (installed by scripts/test-setup), list each package in the layer that
//! holds it with its licence mapped and its distfile's Manifest digest; the
//! provenance names the layout's digests; the artifacts are attached to the
//! right manifest and skopeo, podman, umoci and the strict check accept the
//! layout with them; the standard annotations are there; and two builds at
//! different clock times, as root and rootless, give the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::build::{DEMO, as_user, build, manifest, root_demo_project, user_demo_project};
use crate::repro::digests;
use crate::util::oci::{lowercase_tempdir, podman, sha256_digest};
use crate::util::{describe, kiln, require_env, require_tool, run_err, run_ok, stderr, stdout};

const SPDX: &str = "application/spdx+json";
const CYCLONEDX: &str = "application/vnd.cyclonedx+json";
const PROVENANCE: &str = "application/vnd.in-toto+json";

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn blob(oci: &Path, digest: &str) -> Vec<u8> {
    fs::read(oci.join("blobs/sha256").join(&digest[7..])).unwrap()
}

/// artifactType -> the attached document, of the image `reference`, from
/// index.json alone (as any tool would find them).
fn attached(oci: &Path, reference: &str) -> BTreeMap<String, Vec<u8>> {
    let subject = &digests(oci)[reference];
    let index = read_json(&oci.join("index.json"));
    let mut found = BTreeMap::new();
    for entry in index["manifests"].as_array().unwrap() {
        let Some(kind) = entry["artifactType"].as_str() else {
            continue;
        };
        let m: Value =
            serde_json::from_slice(&blob(oci, entry["digest"].as_str().unwrap())).unwrap();
        assert_eq!(m["artifactType"], kind, "{m}");
        assert_eq!(
            m["config"]["mediaType"],
            "application/vnd.oci.empty.v1+json"
        );
        if m["subject"]["digest"] == subject.as_str() {
            assert_eq!(
                m["subject"]["size"].as_u64().unwrap(),
                blob(oci, subject).len() as u64
            );
            let doc = m["layers"][0]["digest"].as_str().unwrap();
            let old = found.insert(kind.to_string(), blob(oci, doc));
            assert!(old.is_none(), "two {kind} artifacts of {reference}");
        }
    }
    found
}

/// The SPDX and CycloneDX validators of scripts/test-setup's venv.
fn validate(venv: &str, spdx: &Path, cyclonedx: &Path) {
    run_ok(
        Command::new(format!("{venv}/bin/pyspdxtools"))
            .arg("-i")
            .arg(spdx),
    );
    let out = run_ok(
        Command::new(format!("{venv}/bin/python"))
            .arg("-c")
            .arg(
                "import sys\n\
         from cyclonedx.schema import SchemaVersion\n\
         from cyclonedx.validation.json import JsonStrictValidator\n\
         e = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())\n\
         print(e or 'valid')\n\
         sys.exit(1 if e else 0)",
            )
            .arg(cyclonedx),
    );
    assert_eq!(stdout(&out).trim(), "valid", "{}", describe(&out));
}

/// The SHA512 the test world's Manifest gives the distfile `name` of `pkg`.
fn manifest_sha512(world: &str, pkg: &str, name: &str) -> String {
    let text = fs::read_to_string(format!("{world}/repo/{pkg}/Manifest")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("DIST {name} ")))
        .unwrap_or_else(|| panic!("{name} not in {text}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields.iter().position(|f| *f == "SHA512").unwrap();
    fields[at + 1].to_string()
}

/// name of each SPDX package -> the layer package that CONTAINS it.
fn spdx_layers(doc: &Value) -> BTreeMap<String, String> {
    let packages = doc["packages"].as_array().unwrap();
    let by_id = |id: &str| packages.iter().find(|p| p["SPDXID"] == id).unwrap();
    let mut layers = BTreeMap::new();
    for r in doc["relationships"].as_array().unwrap() {
        let from = r["spdxElementId"].as_str().unwrap();
        if r["relationshipType"] == "CONTAINS" && from.starts_with("SPDXRef-Layer-") {
            let pkg = by_id(r["relatedSpdxElement"].as_str().unwrap());
            let layer = by_id(from);
            layers.insert(
                pkg["name"].as_str().unwrap().to_string(),
                layer["versionInfo"].as_str().unwrap().to_string(),
            );
        }
    }
    layers
}

fn check_documents(world: &str, venv: &str, project: &Path) {
    let oci = project.join("oci");
    for reference in DEMO {
        let docs = attached(&oci, reference);
        assert_eq!(
            docs.keys().collect::<Vec<_>>(),
            [SPDX, CYCLONEDX, PROVENANCE],
            "{reference}"
        );
        // The same bytes beside image.toml and from `kiln sbom`.
        let dir = project.join("layouts/demo/images").join(
            reference
                .trim_start_matches("demo/")
                .trim_end_matches(":latest"),
        );
        for (format, file, kind) in [
            ("spdx", "sbom.spdx.json", SPDX),
            ("cyclonedx", "sbom.cdx.json", CYCLONEDX),
            ("provenance", "provenance.intoto.json", PROVENANCE),
        ] {
            assert_eq!(fs::read(dir.join(file)).unwrap(), docs[kind], "{file}");
            let out = run_ok(
                kiln()
                    .args(["sbom", reference, "--format", format, "--layout"])
                    .arg(&oci),
            );
            assert_eq!(out.stdout, docs[kind], "kiln sbom --format {format}");
        }
        validate(
            venv,
            &dir.join("sbom.spdx.json"),
            &dir.join("sbom.cdx.json"),
        );
    }

    // Every package of every layer, in the layer that holds it.
    let top = "demo/greeting:latest";
    let docs = attached(&oci, top);
    let layers: Vec<String> = manifest(&oci, top)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    let spdx: Value = serde_json::from_slice(&docs[SPDX]).unwrap();
    let held = spdx_layers(&spdx);
    for (pkg, layer) in [
        ("sys-libs/glibc", 0),
        ("app-misc/hello", 1),
        ("app-misc/greeting", 2),
    ] {
        assert_eq!(held.get(pkg), Some(&layers[layer]), "{pkg} in {held:?}");
    }
    let cdx: Value = serde_json::from_slice(&docs[CYCLONEDX]).unwrap();
    let component = |name: &str| {
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {cdx}"))
            .clone()
    };
    let property = |c: &Value, name: &str| {
        c["properties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        property(&component("glibc"), "kiln:layer").as_ref(),
        Some(&layers[0])
    );
    assert_eq!(
        property(&component("greeting"), "kiln:layer").as_ref(),
        Some(&layers[2])
    );

    // Licences mapped to SPDX ids (Gentoo's LGPL-2.1+), purls of type ebuild.
    let package = |name: &str| {
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let glibc = package("sys-libs/glibc");
    assert_eq!(glibc["licenseDeclared"], "LGPL-2.1-or-later", "{glibc}");
    assert_eq!(
        component("glibc")["licenses"][0]["expression"],
        "LGPL-2.1-or-later"
    );
    assert_eq!(
        package("app-misc/hello")["externalRefs"][0]["referenceLocator"],
        "pkg:ebuild/app-misc/hello@1.0"
    );

    // The distfile's digest is the Manifest's, in both SBOMs.
    let sha512 = manifest_sha512(world, "app-misc/hello", "hello-1.0.tar.gz");
    let source = package("hello-1.0.tar.gz");
    assert_eq!(source["checksums"][0]["algorithm"], "SHA512");
    assert_eq!(source["checksums"][0]["checksumValue"], sha512.as_str());
    let refs = component("hello")["externalReferences"].clone();
    let dist = refs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "source-distribution")
        .unwrap_or_else(|| panic!("{refs}"));
    assert_eq!(dist["hashes"][0]["content"], sha512.as_str());

    // The provenance names the layout's and the project's digests.
    let p: Value = serde_json::from_slice(&docs[PROVENANCE]).unwrap();
    let all = digests(&oci);
    assert_eq!(p["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(p["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(p["subject"][0]["digest"]["sha256"], all[top][7..]);
    let deps = p["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let dep = |name: &str| {
        deps.iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {deps:?}"))
    };
    assert_eq!(
        dep("parent")["digest"]["sha256"],
        all["demo/hello:latest"][7..]
    );
    let toml = fs::read(project.join("layouts/demo/images/greeting/image.toml")).unwrap();
    assert_eq!(
        format!(
            "sha256:{}",
            dep("image.toml")["digest"]["sha256"].as_str().unwrap()
        ),
        sha256_digest(&toml)
    );
    let lock = fs::read_to_string(project.join("kiln.lock")).unwrap();
    for pin in ["stage3", "snapshot"] {
        let sha = dep(pin)["digest"]["sha512"].as_str().unwrap();
        assert!(
            lock.contains(&format!("sha512 = \"{sha}\"")),
            "{pin}: {lock}"
        );
    }
    assert!(
        p["predicate"]["buildDefinition"]["internalParameters"]["portage"]["make.conf"]
            .as_str()
            .unwrap()
            .contains("CFLAGS"),
        "{p}"
    );
}

/// The standard annotations and labels of the top image; `created` is the
/// snapshot's timestamp (the test world's timestamp.chk).
fn check_annotations(world: &str, oci: &Path) {
    let stamp = fs::read_to_string(format!("{world}/repo/metadata/timestamp.chk")).unwrap();
    assert_eq!(stamp.trim(), "Thu, 01 Jan 2026 00:00:00 +0000");
    let all = digests(oci);
    let m = manifest(oci, "demo/greeting:latest");
    let a = &m["annotations"];
    let key = |k: &str| a[format!("org.opencontainers.image.{k}")].clone();
    assert_eq!(key("created"), "2026-01-01T00:00:00Z", "{a}");
    assert_eq!(key("base.name"), "demo/hello:latest");
    assert_eq!(key("base.digest"), all["demo/hello:latest"].as_str());
    assert_eq!(key("licenses"), "LGPL-2.1-or-later AND MIT");
    assert_eq!(key("title"), "greeting");
    assert_eq!(key("description"), "greeting, which runs hello");
    let config: Value =
        serde_json::from_slice(&blob(oci, m["config"]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(config["created"], "2026-01-01T00:00:00Z");
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.opencontainers.image.licenses"], key("licenses"));
    assert_eq!(
        labels["org.opencontainers.image.description"],
        key("description")
    );
}

/// skopeo copies the image out of a layout holding its artifacts, podman
/// runs the copy, umoci unpacks it, and the strict check accepts it.
fn consumers_accept_the_layout(tmp: &Path, oci: &Path) {
    run_ok(kiln().args(["ls", "--check", "--layout"]).arg(oci));
    let reference = "demo/greeting:latest";
    // podman names an oci: image after its path, which must be lowercase.
    let lower = lowercase_tempdir();
    let copy = lower.path().join("copy");
    run_ok(Command::new("skopeo").args([
        "copy",
        "--quiet",
        &format!("oci:{}:{reference}", oci.display()),
        &format!("oci:{}:{reference}", copy.display()),
    ]));
    run_ok(
        Command::new("umoci")
            .args(["unpack", "--rootless", "--image"])
            .arg(format!("{}:{reference}", oci.display()))
            .arg(tmp.join("unpacked")),
    );
    let pods = tmp.join("podman-sbom");
    run_ok(
        podman(&pods)
            .args(["pull", "--quiet"])
            .arg(format!("oci:{}:{reference}", copy.display())),
    );
    let images = run_ok(podman(&pods).args(["images", "--format", "{{.ID}}"]));
    let id = stdout(&images).lines().next().unwrap().to_string();
    let out = run_ok(podman(&pods).args(["run", "--rm", "--network", "none", &id]));
    assert!(
        stdout(&out).contains("Hello, container!"),
        "{}",
        describe(&out)
    );
}

#[test]
fn every_image_carries_valid_sboms_and_provenance_and_repeats_without_an_epoch() {
    let (Some(venv), Some(user)) = (
        require_env("KILN_TEST_SBOM_VENV"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    if !require_tool("skopeo") || !require_tool("umoci") || !require_tool("podman") {
        return;
    }
    let Some((tmp, project, world)) = root_demo_project() else {
        return;
    };
    let out = run_ok(build(&project, &["demo"]).env_remove("SOURCE_DATE_EPOCH"));
    assert!(
        stderr(&out).contains("4 built, 0 cached"),
        "{}",
        describe(&out)
    );
    let oci = project.join("oci");
    check_documents(&world, &venv, &project);
    check_annotations(&world, &oci);
    consumers_accept_the_layout(tmp.path(), &oci);

    // Rebuilt seconds later from the same binary packages: the same bytes.
    let index = fs::read(oci.join("index.json")).unwrap();
    let spdx = fs::read(project.join("layouts/demo/images/greeting/sbom.spdx.json")).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let out = run_ok(build(&project, &["demo", "--force-all"]).env_remove("SOURCE_DATE_EPOCH"));
    assert!(
        stderr(&out).contains("4 built, 0 cached"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        String::from_utf8_lossy(&fs::read(oci.join("index.json")).unwrap()),
        String::from_utf8_lossy(&index),
        "a rebuild at another time changed the layout"
    );
    assert_eq!(
        fs::read(project.join("layouts/demo/images/greeting/sbom.spdx.json")).unwrap(),
        spdx
    );

    // Rootless, by another user in another directory: the same digests.
    let (_user_tmp, user_project) = user_demo_project(&world, &user);
    let out = run_ok(as_user(&user, "build", &user_project).env_remove("SOURCE_DATE_EPOCH"));
    assert!(
        stderr(&out).contains("4 built, 0 cached"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        digests(&user_project.join("oci")),
        digests(&oci),
        "root and rootless builds without SOURCE_DATE_EPOCH differ"
    );
}

/// A SOURCE_DATE_EPOCH that is not seconds is an error naming it, before
/// anything is written, not a silent fall back to another time.
#[test]
fn a_bad_source_date_epoch_is_named_and_changes_nothing() {
    let tmp = crate::util::tempdir();
    let root = tmp.path().join("root");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "x").unwrap();
    let layout = tmp.path().join("oci");
    let out = run_err(
        kiln()
            .env("SOURCE_DATE_EPOCH", "yesterday")
            .arg("commit")
            .arg(&root)
            .arg("--layout")
            .arg(&layout)
            .args(["--ref", "x:1"]),
    );
    assert!(
        stderr(&out).contains("SOURCE_DATE_EPOCH=\"yesterday\" is not a time"),
        "{}",
        describe(&out)
    );
    assert!(!layout.exists(), "a layout was made");

    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let out = run_err(build(&project, &["demo"]).env("SOURCE_DATE_EPOCH", "-5"));
    assert!(
        stderr(&out).contains("SOURCE_DATE_EPOCH=\"-5\" is not a time"),
        "{}",
        describe(&out)
    );
    for made in ["oci", "kiln.lock", ".cache/downloads"] {
        assert!(!project.join(made).exists(), "{made} was made");
    }
}

/// The layout's side of it, without a build: an artifact written as any
/// OCI 1.1 tool writes one (the empty config, the document, `subject` the
/// image) is found by its image's ref and not listed as an image, and the
/// strict check accepts it, but refuses it once its subject is no image a
/// ref names (the ref renamed to a new commit of the tree).
#[test]
fn artifacts_follow_their_image_and_the_strict_check_knows_them() {
    let tmp = crate::util::tempdir();
    let (root, oci) = (tmp.path().join("root"), tmp.path().join("oci"));
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("f"), "one").unwrap();
    let commit = || {
        let out = run_ok(
            kiln()
                .env("SOURCE_DATE_EPOCH", "1700000000")
                .arg("commit")
                .arg(&root)
                .arg("--layout")
                .arg(&oci)
                .args(["--ref", "x:1", "--json"]),
        );
        let written: Value = serde_json::from_slice(&out.stdout).unwrap();
        written
    };
    let first = commit();
    let put = |bytes: &[u8]| {
        let digest = sha256_digest(bytes);
        fs::write(oci.join("blobs/sha256").join(&digest[7..]), bytes).unwrap();
        serde_json::json!({"digest": digest, "size": bytes.len()})
    };
    let doc = b"{\"spdxVersion\":\"SPDX-2.3\"}\n";
    let (empty, layer) = (put(b"{}"), put(doc));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SPDX,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty["digest"], "size": 2},
        "layers": [{"mediaType": SPDX, "digest": layer["digest"], "size": layer["size"]}],
        "subject": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": first["manifest_digest"],
            "size": first["manifest_size"],
        },
    });
    // serde_json sorts keys and writes no spaces: kiln's canonical form.
    let artifact = put(&serde_json::to_vec(&manifest).unwrap());
    let mut entry = artifact.clone();
    entry["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    entry["artifactType"] = SPDX.into();
    let index_path = oci.join("index.json");
    let mut index = read_json(&index_path);
    index["manifests"].as_array_mut().unwrap().insert(0, entry);
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();

    assert!(kiln::fsck(&oci).unwrap().is_ok());
    let out = run_ok(kiln().args(["sbom", "x:1", "--layout"]).arg(&oci));
    assert_eq!(out.stdout, doc);
    let out = run_ok(kiln().args(["ls", "--json", "--layout"]).arg(&oci));
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let out = run_err(
        kiln()
            .args(["sbom", "x:1", "--format", "cyclonedx", "--layout"])
            .arg(&oci),
    );
    assert!(
        stderr(&out).contains("has no application/vnd.cyclonedx+json document attached"),
        "{}",
        describe(&out)
    );

    // x:1 names a new image: its old artifact leaves the index with it.
    fs::write(root.join("f"), "two").unwrap();
    commit();
    let index = read_json(&index_path);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 1, "{index}");

    // Put back by hand, it points at an image no ref names: refused.
    let mut index = index;
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .insert(0, artifact);
    index["manifests"][0]["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    index["manifests"][0]["artifactType"] = SPDX.into();
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let report = kiln::fsck(&oci).unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("is no image a ref of index.json names")),
        "{:?}",
        report.problems
    );
}
