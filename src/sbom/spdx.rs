//! The SPDX 2.3 JSON document of an image: the image as a package of
//! purpose CONTAINER, each layer a package it CONTAINS (checksum: the
//! layer's diff_id), each Gentoo package CONTAINED in its layer, and each
//! distfile a source package the Gentoo package is GENERATED_FROM, with the
//! Manifest's SHA512. Licences SPDX does not know are `LicenseRef-`s whose
//! extracted text names the licence file in the ebuild repository. Every
//! list is sorted and the time is the build's, so the same build gives the
//! same bytes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::license::{self, expression};
use super::{Inventory, Package, Subject, purl};

pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// Its file beside image.toml.
pub const SPDX_FILE: &str = "sbom.spdx.json";

/// An SPDXID: letters, digits, `.` and `-` only.
fn id(parts: &[&str]) -> String {
    let raw = parts.join("-");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{clean}")
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({"spdxElementId": from, "relationshipType": kind, "relatedSpdxElement": to})
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "NOASSERTION".into()
    } else {
        text.to_string()
    }
}

fn package(layer: usize, p: &Package, layer_digest: &str) -> Value {
    let mut v = json!({
        "SPDXID": id(&["Package", &layer.to_string(), &p.category, &p.pf]),
        "name": format!("{}/{}", p.category, p.pn),
        "versionInfo": p.pvr,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": or_none(&expression(&p.license)),
        "copyrightText": "NOASSERTION",
        "summary": p.description,
        "sourceInfo": format!("built by Portage from the ebuild {}/{}::{}", p.category, p.pf, p.repository),
        "comment": format!(
            "layer {layer_digest}; slot {}; USE {}; CHOST {}; CFLAGS {}",
            p.slot,
            p.use_flags(),
            p.chost,
            p.cflags
        ),
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl(p),
        }],
    });
    if let Some(home) = p.homepage.split_whitespace().next() {
        v["homepage"] = home.into();
    }
    v
}

/// The document, pretty-printed with sorted keys.
pub fn spdx(inventory: &Inventory, subject: &Subject<'_>) -> Vec<u8> {
    let image_id = "SPDXRef-Image";
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": subject.reference,
        "versionInfo": subject.manifest_digest,
        "primaryPackagePurpose": "CONTAINER",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": or_none(&inventory.licenses()),
        "copyrightText": "NOASSERTION",
        "externalRefs": [{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": oci_purl(subject),
        }],
    })];
    let mut relationships = vec![relationship("SPDXRef-DOCUMENT", "DESCRIBES", image_id)];
    let mut refs = BTreeSet::new();
    for (i, layer) in inventory.layers.iter().enumerate() {
        let layer_id = id(&["Layer", &i.to_string()]);
        packages.push(json!({
            "SPDXID": layer_id,
            "name": format!("layer {i} of {}: {}", subject.reference, layer.image),
            "versionInfo": layer.digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": layer.diff_id.trim_start_matches("sha256:")}],
            "comment": format!("the layer {} (diff_id {}) made by building {}", layer.digest, layer.diff_id, layer.image),
        }));
        relationships.push(relationship(image_id, "CONTAINS", &layer_id));
        for p in &layer.packages {
            let pkg = package(i, p, &layer.digest);
            let pkg_id = pkg["SPDXID"].as_str().unwrap_or_default().to_string();
            packages.push(pkg);
            relationships.push(relationship(&layer_id, "CONTAINS", &pkg_id));
            for name in license::names(&p.license) {
                if license::spdx_id(&name).is_none() {
                    refs.insert((name, p.repository.clone()));
                }
            }
            for d in &p.distfiles {
                let src_id = id(&["Source", &i.to_string(), &p.category, &p.pf, &d.name]);
                let mut src = json!({
                    "SPDXID": src_id,
                    "name": d.name,
                    "packageFileName": d.name,
                    "primaryPackagePurpose": "SOURCE",
                    "downloadLocation": "NOASSERTION",
                    "filesAnalyzed": false,
                    "licenseConcluded": "NOASSERTION",
                    "licenseDeclared": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                    "comment": format!("distfile of {}/{}, {} bytes as its Manifest says", p.category, p.pf, d.size),
                });
                if !d.sha512.is_empty() {
                    src["checksums"] = json!([{"algorithm": "SHA512", "checksumValue": d.sha512}]);
                }
                packages.push(src);
                relationships.push(relationship(&pkg_id, "GENERATED_FROM", &src_id));
            }
        }
    }
    let extracted: Vec<Value> = refs
        .iter()
        .map(|(name, repo)| {
            json!({
                "licenseId": license::license_ref(name),
                "name": name,
                "extractedText": format!("The licence Gentoo calls {name}: its text is the file licenses/{name} of the ebuild repository {repo}."),
            })
        })
        .collect();
    let hex = subject.manifest_digest.trim_start_matches("sha256:");
    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": subject.reference,
        "documentNamespace": format!("https://spdx.org/spdxdocs/kiln/{}-{hex}", subject.reference.replace([':', '/'], "-")),
        "creationInfo": {
            "created": crate::oci::format_rfc3339(subject.created),
            "creators": [format!("Tool: kiln-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = extracted.into();
    }
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("a document serialises");
    bytes.push(b'\n');
    bytes
}

/// The image's package URL: type `oci`, the repository's last path
/// component as the name, the manifest digest as the version.
pub(super) fn oci_purl(subject: &Subject<'_>) -> String {
    let repo = subject
        .reference
        .rsplit_once(':')
        .map_or(subject.reference, |(r, _)| r);
    let name = repo.rsplit('/').next().unwrap_or(repo);
    let tag = subject.reference.rsplit_once(':').map(|(_, t)| t);
    let digest = subject.manifest_digest.replace(':', "%3A");
    match tag {
        Some(tag) => format!("pkg:oci/{name}@{digest}?tag={tag}"),
        None => format!("pkg:oci/{name}@{digest}"),
    }
}
