//! The CycloneDX 1.6 JSON document of an image: the image as the
//! metadata's `container` component, each Gentoo package a component with
//! its licence expression, purl, homepage, its distfiles as
//! `source-distribution` references with the Manifest's SHA-512, and
//! Portage's facts (slot, USE, repository, CHOST, CFLAGS) and its layer as
//! properties, since CycloneDX has no field for them. The serial number is
//! derived from the manifest digest and the time is the build's, so the
//! same build gives the same bytes.

use serde_json::{Value, json};

use super::license::expression;
use super::{Inventory, Package, Subject, purl};

pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// Its file beside image.toml.
pub const CYCLONEDX_FILE: &str = "sbom.cdx.json";

fn property(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

fn component(layer: usize, digest: &str, image: &str, p: &Package) -> Value {
    let kind = if p.category.starts_with("app-") {
        "application"
    } else {
        "library"
    };
    let mut c = json!({
        "type": kind,
        "bom-ref": bom_ref(layer, p),
        "group": p.category,
        "name": p.pn,
        "version": p.pvr,
        "description": p.description,
        "purl": purl(p),
        "properties": [
            property("gentoo:slot", &p.slot),
            property("gentoo:use", &p.use_flags()),
            property("gentoo:repository", &p.repository),
            property("gentoo:chost", &p.chost),
            property("gentoo:cflags", &p.cflags),
            property("kiln:layer", digest),
            property("kiln:layer:index", &layer.to_string()),
            property("kiln:layer:image", image),
        ],
    });
    let license = expression(&p.license);
    if !license.is_empty() {
        c["licenses"] = json!([{"expression": license}]);
    }
    let mut refs: Vec<Value> = p
        .homepage
        .split_whitespace()
        .take(1)
        .map(|url| json!({"type": "website", "url": url}))
        .collect();
    for d in &p.distfiles {
        let mut r = json!({
            "type": "source-distribution",
            "url": d.name,
            "comment": format!("distfile of {}/{}, {} bytes as its Manifest says", p.category, p.pf, d.size),
        });
        if !d.sha512.is_empty() {
            r["hashes"] = json!([{"alg": "SHA-512", "content": d.sha512}]);
        }
        refs.push(r);
    }
    if !refs.is_empty() {
        c["externalReferences"] = refs.into();
    }
    c
}

fn bom_ref(layer: usize, p: &Package) -> String {
    format!("layer-{layer}:{}/{}", p.category, p.pf)
}

/// A version-5-shaped UUID from the manifest digest: one per image.
fn serial(manifest_digest: &str) -> String {
    let hex: Vec<char> = manifest_digest
        .trim_start_matches("sha256:")
        .chars()
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    let mut h: String = hex.into_iter().collect();
    h.replace_range(12..13, "5");
    let variant = u8::from_str_radix(&h[16..17], 16).unwrap_or(0) & 0x3 | 0x8;
    h.replace_range(16..17, &format!("{variant:x}"));
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The document, pretty-printed with sorted keys.
pub fn cyclonedx(inventory: &Inventory, subject: &Subject<'_>) -> Vec<u8> {
    let mut components = Vec::new();
    for (i, layer) in inventory.layers.iter().enumerate() {
        for p in &layer.packages {
            components.push(component(i, &layer.digest, &layer.image, p));
        }
    }
    let refs: Vec<Value> = components.iter().map(|c| c["bom-ref"].clone()).collect();
    let mut image = json!({
        "type": "container",
        "bom-ref": "image",
        "name": subject.reference,
        "version": subject.manifest_digest,
        "purl": super::spdx::oci_purl(subject),
    });
    let licenses = inventory.licenses();
    if !licenses.is_empty() {
        image["licenses"] = json!([{"expression": licenses}]);
    }
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial(subject.manifest_digest),
        "version": 1,
        "metadata": {
            "timestamp": crate::oci::format_rfc3339(subject.created),
            "tools": {"components": [{"type": "application", "name": "kiln", "version": env!("CARGO_PKG_VERSION")}]},
            "component": image,
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": refs}],
    });
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("a document serialises");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_serial_number_is_a_uuid() {
        let s = super::serial(
            "sha256:aa17f717fcc135ee7b37efceea83c25e18f9cafd285093ef3b029b974c753d5f",
        );
        assert_eq!(s, "urn:uuid:aa17f717-fcc1-55ee-bb37-efceea83c25e");
    }
}
