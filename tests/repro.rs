//! What the rootless demo stack build (build.rs) goes on to prove:
//! the same stack rebuilt as root from the same binary packages, with the
//! builder states removed in between and SOURCE_DATE_EPOCH set both times,
//! has the same image digests (kiln's layers record in-container ids, and
//! bob-core drops Portage's volatile database, docs/reproducible.md); then
//! `skopeo copy` pushes the stack to a docker-registry on 127.0.0.1, the
//! registry shares the parents' layer blobs, and podman pulls the top image
//! back and runs it; last, an image that keeps Portage's database builds
//! the same twice.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::oci::{Registry, podman};
use crate::util::{describe, kiln, run_ok, stderr};

pub const EPOCH: &str = "1700000000";

/// ref name -> manifest digest, from the layout's index.json.
pub(crate) fn digests(oci: &Path) -> BTreeMap<String, String> {
    let index: Value = serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Called by the rootless build test with its built project.
pub fn root_rebuild_then_registry_round_trip(tmp: &Path, project: &Path, stack: &[&str]) {
    let oci = project.join("oci");
    let rootless = digests(&oci);
    for dir in ["states", "layers", "work"] {
        fs::remove_dir_all(project.join(".cache").join(dir)).unwrap();
    }
    fs::remove_dir_all(&oci).unwrap();
    build_as_root(project, &["demo"], "4 built, 0 cached");
    assert_eq!(
        digests(&oci),
        rootless,
        "root and rootless builds from the same binary packages differ"
    );

    registry_round_trip(tmp, &oci, stack);
    kept_package_database_repeats(project);
}

/// An image that keeps Portage's database (`_keep_vdb=true`) is the same
/// when built again: bob-core drops the database's read cache (stamped with
/// nanosecond mtimes) and emerge's mtimedb, and the rest comes from the
/// binary packages.
fn kept_package_database_repeats(project: &Path) {
    let oci = project.join("oci");
    let greeting = "demo/greeting:latest";
    fs::write(
        project.join("layouts/demo/images/greeting/build.sh"),
        "_keep_vdb=true\n",
    )
    .unwrap();
    let build = |args: &[&str]| {
        build_as_root(project, args, "Built image demo/greeting");
        digests(&oci)[greeting].clone()
    };
    let first = build(&["demo/greeting"]);
    let paths = crate::build::top_layer_paths(&oci, greeting);
    assert!(
        paths
            .iter()
            .any(|p| p.starts_with("var/db/pkg/app-misc/greeting-") && p.ends_with("/COUNTER")),
        "{paths:?}"
    );
    assert!(
        !paths
            .iter()
            .any(|p| p.ends_with("/metadata") || p.ends_with("edb/mtimedb")),
        "{paths:?}"
    );
    assert_eq!(
        build(&["demo/greeting", "--force"]),
        first,
        "a kept package database differs"
    );
}

/// `kiln build ARGS` as root with SOURCE_DATE_EPOCH; its stderr says `expect`.
fn build_as_root(project: &Path, args: &[&str], expect: &str) {
    let out = run_ok(
        kiln()
            .arg("build")
            .args(args)
            .arg("--project")
            .arg(project)
            .env("SOURCE_DATE_EPOCH", EPOCH),
    );
    assert!(stderr(&out).contains(expect), "{}", describe(&out));
}

fn registry_round_trip(tmp: &Path, oci: &Path, stack: &[&str]) {
    let registry = Registry::start(tmp);
    for reference in stack {
        run_ok(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
            &format!("oci:{}:{reference}", oci.display()),
            &format!("docker://{}/{reference}", registry.addr),
        ]));
    }
    // The registry holds each child with its parent's layer digests first.
    let layers = |reference: &str| -> Vec<String> {
        let out = run_ok(Command::new("skopeo").args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{reference}", registry.addr),
        ]));
        let manifest: Value = serde_json::from_slice(&out.stdout).unwrap();
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    for pair in stack.windows(2) {
        let (parent, child) = (layers(pair[0]), layers(pair[1]));
        assert_eq!(&child[..parent.len()], parent.as_slice(), "{pair:?}");
    }
    let top = stack.last().unwrap();
    let remote = format!("{}/{top}", registry.addr);
    let pods = tmp.join("podman-registry");
    run_ok(
        podman(&pods)
            .args(["pull", "--quiet", "--tls-verify=false"])
            .arg(&remote),
    );
    let out = run_ok(
        podman(&pods)
            .args(["run", "--rm", "--network", "none"])
            .arg(&remote),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello, container!"),
        "{}",
        describe(&out)
    );
}
