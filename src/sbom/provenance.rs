//! How an image was made, as an in-toto statement (v1) whose subject is the
//! image's manifest and whose predicate is SLSA provenance v1: what a
//! verifier (slsa-verifier, cosign's attestation policies) reads. kiln's
//! build type puts in `externalParameters` what the user chose (the image,
//! its packages, the time) and in `resolvedDependencies` everything the
//! build read, each with its digest: the stage3 and snapshot pinned in
//! kiln.lock, the ebuild repositories they carry, bob-core, every file of
//! the image's directory and the parent image; `internalParameters` holds
//! the make.conf and package.* files Portage had in force. Nothing in it
//! depends on the machine or the hour, so the same build gives the same
//! bytes (no start or finish times, no host names).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Inventory, Subject};
use crate::fetch::Lock;

pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// Its file beside image.toml.
pub const PROVENANCE_FILE: &str = "provenance.intoto.json";
/// kiln's SLSA build type: what the parameters below mean (docs/sbom.md).
pub const BUILD_TYPE: &str = "https://kiln.invalid/slsa/image/v1";

/// What the build read, beyond the packages.
pub struct Build<'a> {
    pub lock: &'a Lock,
    /// bob-core's tree digest (`sha256:...`).
    pub bob_core: &'a str,
    /// The image's files: path relative to its directory, sha256 hex.
    pub files: &'a [(String, String)],
    /// The image's directory, relative to the project.
    pub dir: &'a str,
    /// The parent's ref and manifest digest.
    pub parent: Option<(&'a str, &'a str)>,
    pub image: &'a str,
    /// The atoms image.toml asks for.
    pub packages: &'a [String],
    /// The input digest the image is cached by.
    pub input_digest: &'a str,
}

fn sha256(digest: &str) -> Value {
    json!({"sha256": digest.trim_start_matches("sha256:")})
}

/// The statement, pretty-printed with sorted keys.
pub fn provenance(inventory: &Inventory, subject: &Subject<'_>, build: &Build<'_>) -> Vec<u8> {
    let mut deps = Vec::new();
    for (name, pin) in [
        ("stage3", &build.lock.stage3),
        ("snapshot", &build.lock.snapshot),
    ] {
        deps.push(json!({
            "name": name,
            "uri": format!("mirror://gentoo/{}", pin.path),
            "digest": {"sha512": pin.sha512},
            "annotations": {"size": pin.size},
        }));
    }
    let repositories: BTreeSet<&str> = inventory
        .packages()
        .map(|(_, _, p)| p.repository.as_str())
        .filter(|r| !r.is_empty())
        .collect();
    for repo in repositories {
        // The ebuild repositories are those of the snapshot (a repository
        // a builder adds itself is in its build.sh, below).
        deps.push(json!({
            "name": format!("repository {repo}"),
            "uri": format!("mirror://gentoo/{}", build.lock.snapshot.path),
            "digest": {"sha512": build.lock.snapshot.sha512},
        }));
    }
    deps.push(json!({"name": "bob-core", "digest": sha256(build.bob_core)}));
    for (path, hex) in build.files {
        deps.push(json!({
            "name": path,
            "uri": format!("file:{}/{path}", build.dir),
            "digest": {"sha256": hex},
        }));
    }
    if let Some((name, digest)) = build.parent {
        deps.push(
            json!({"name": "parent", "uri": format!("oci:{name}"), "digest": sha256(digest)}),
        );
    }
    let portage = inventory
        .layers
        .last()
        .map(|l| json!(l.portage))
        .unwrap_or_else(|| json!({}));
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject.reference, "digest": sha256(subject.manifest_digest)}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "image": build.image,
                    "reference": subject.reference,
                    "packages": build.packages,
                    "sourceDateEpoch": subject.created,
                },
                "internalParameters": {"portage": portage},
                "resolvedDependencies": deps,
            },
            "runDetails": {
                "builder": {
                    "id": format!("https://kiln.invalid/kiln@{}", env!("CARGO_PKG_VERSION")),
                    "version": {"kiln": env!("CARGO_PKG_VERSION")},
                },
                "metadata": {"invocationId": build.input_digest},
            },
        },
    });
    let mut bytes = serde_json::to_vec_pretty(&statement).expect("a statement serialises");
    bytes.push(b'\n');
    bytes
}
