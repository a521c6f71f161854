//! Reading an image from an OCI layout: index.json, manifest, config, with
//! oci-spec's own types. A small reader kept here until the `oci` module
//! (which writes layouts) offers one.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};

use crate::error::hinted;

/// One layer: its blob and what it unpacks to.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: PathBuf,
    pub media_type: MediaType,
    /// `sha256:...` of the uncompressed tar.
    pub diff_id: String,
}

/// An image found in a layout, layers bottom first.
#[derive(Debug)]
pub struct Image {
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

fn blob_path(layout: &Path, d: &Descriptor) -> anyhow::Result<PathBuf> {
    let digest = d.digest();
    Ok(layout
        .join("blobs")
        .join(digest.algorithm().as_ref())
        .join(digest.digest()))
}

/// Every `org.opencontainers.image.ref.name` in the layout.
pub fn refs(layout: &Path) -> Vec<String> {
    ImageIndex::from_file(layout.join("index.json"))
        .map(|i| {
            i.manifests()
                .iter()
                .filter_map(|m| {
                    m.annotations()
                        .as_ref()?
                        .get("org.opencontainers.image.ref.name")
                        .cloned()
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Image {
    /// Find `reference` in the layout at `layout`: the ref name as written,
    /// then with `:latest`, then the tag alone (skopeo's `oci:DIR:TAG`).
    pub fn open(layout: &Path, reference: &str) -> anyhow::Result<Image> {
        let index_path = layout.join("index.json");
        let index = ImageIndex::from_file(&index_path)
            .with_context(|| format!("reading {}", index_path.display()))
            .map_err(|e| {
                hinted(
                    format!("{e:#}"),
                    "give the layout with --layout DIR (a directory holding index.json)",
                )
            })?;
        let name_of = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned())
        };
        let candidates = [
            reference.to_string(),
            format!("{reference}:latest"),
            reference
                .rsplit_once(':')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default(),
        ];
        let found = candidates.iter().filter(|c| !c.is_empty()).find_map(|c| {
            index
                .manifests()
                .iter()
                .find(|d| name_of(d).as_deref() == Some(c.as_str()))
        });
        let Some(desc) = found else {
            let names = refs(layout);
            return Err(hinted(
                format!("no image `{reference}` in {}", index_path.display()),
                if names.is_empty() {
                    "the layout holds no named image".to_string()
                } else {
                    format!("the layout holds: {}", names.join(", "))
                },
            ));
        };
        if *desc.media_type() != MediaType::ImageManifest {
            bail!(
                "`{reference}` in {} is a {}, not an image manifest",
                index_path.display(),
                desc.media_type()
            );
        }
        let manifest = ImageManifest::from_file(blob_path(layout, desc)?)
            .with_context(|| format!("reading the manifest of `{reference}`"))?;
        let config = ImageConfiguration::from_file(blob_path(layout, manifest.config())?)
            .with_context(|| format!("reading the config of `{reference}`"))?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            bail!(
                "`{reference}`: the manifest has {} layers but the config {} diff_ids",
                manifest.layers().len(),
                diff_ids.len()
            );
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(d, diff)| {
                Ok(Layer {
                    blob: blob_path(layout, d)?,
                    media_type: d.media_type().clone(),
                    diff_id: diff.clone(),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Image { config, layers })
    }
}
