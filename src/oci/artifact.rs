//! OCI 1.1 artifacts attached to an image: an SBOM (or any document) as a
//! manifest with an `artifactType`, the empty config, the document as its
//! one layer and the image's manifest as its `subject`, listed in
//! index.json without a ref name. That is how ORAS, cosign and BuildKit
//! attach them, so registries' referrers API and tools that copy a layout
//! whole see them; tools that pick an image by its ref name (skopeo copy,
//! podman, umoci) never meet them. The index entry carries the
//! `artifactType` too, so a reader finds them without opening every blob.
//! An image that is renamed to another manifest drops the artifacts of the
//! old one when no ref names it any more (layout.rs), so they do not pile up.

use oci_spec::image::{Descriptor, MediaType};
use serde_json::{Value, json};

use super::{Layout, Result, json, media};

pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY: &[u8] = b"{}";

/// A document to attach.
#[derive(Debug, Clone)]
pub struct Attachment {
    /// The manifest's `artifactType` and the layer's media type.
    pub artifact_type: String,
    pub bytes: Vec<u8>,
    /// Unix seconds, for `org.opencontainers.image.created`.
    pub created: i64,
}

/// Writes the blobs of each attachment (the layout's refs do not change)
/// and returns the index entries that list them; `set_ref` adds them.
pub fn attach(
    layout: &Layout,
    subject: &Descriptor,
    attachments: &[Attachment],
) -> Result<Vec<Descriptor>> {
    let mut entries = Vec::new();
    if attachments.is_empty() {
        return Ok(entries);
    }
    let empty = layout.write_blob(EMPTY)?;
    for a in attachments {
        let doc = layout.write_blob(&a.bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::MANIFEST,
            "artifactType": a.artifact_type,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": empty.digest, "size": empty.size, "data": "e30="},
            "layers": [{"mediaType": a.artifact_type, "digest": doc.digest, "size": doc.size}],
            "subject": {"mediaType": media::MANIFEST, "digest": subject.digest().to_string(), "size": subject.size()},
            "annotations": {"org.opencontainers.image.created": super::format_rfc3339(a.created)},
        });
        let blob = layout.write_blob(&json::to_canonical(&manifest))?;
        let mut entry = Descriptor::new(MediaType::ImageManifest, blob.size, digest(&blob.digest)?);
        entry.set_artifact_type(Some(MediaType::from(a.artifact_type.as_str())));
        entries.push(entry);
    }
    Ok(entries)
}

fn digest(s: &str) -> Result<oci_spec::image::Digest> {
    s.parse()
        .map_err(|e: oci_spec::OciSpecError| super::Error::Invalid {
            what: format!("digest {s}"),
            message: e.to_string(),
        })
}

/// The subject digest of an artifact's index entry; `None` for anything
/// else or an artifact whose manifest cannot be read (fsck reports it).
pub(super) fn subject_of(layout: &Layout, entry: &Descriptor) -> Option<String> {
    entry.artifact_type().as_ref()?;
    let bytes = layout.read_blob(entry.digest().as_ref()).ok()?;
    let manifest: Value = serde_json::from_slice(&bytes).ok()?;
    manifest["subject"]["digest"].as_str().map(str::to_string)
}

impl Layout {
    /// The documents of type `artifact_type` attached to the image `name`,
    /// newest index entry last.
    pub fn attached(&self, name: &str, artifact_type: &str) -> Result<Vec<Vec<u8>>> {
        let subject = self.resolve(name)?;
        let mut found = Vec::new();
        for entry in self.read_index()?.manifests() {
            let matches = entry
                .artifact_type()
                .as_ref()
                .is_some_and(|t| t.to_string() == artifact_type);
            if !matches || subject_of(self, entry).as_deref() != Some(subject.digest().as_ref()) {
                continue;
            }
            let manifest = self.read_manifest(entry.digest().as_ref())?;
            if let Some(doc) = manifest.layers().first() {
                found.push(self.read_blob(doc.digest().as_ref())?);
            }
        }
        Ok(found)
    }
}
