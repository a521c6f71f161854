//! Finding an image to run in an OCI layout: the ref as a user types it,
//! its layers (bottom first, with their digests and diff_ids) and its
//! config, read through `oci::Layout`, which checks the manifest's and the
//! config's digests; a layer's blob is checked as it is unpacked.

use std::path::{Path, PathBuf};

use oci_spec::image::{ImageConfiguration, MediaType};

use super::Error;
use crate::oci::Layout;

/// One layer: its blob and what it unpacks to.
#[derive(Debug, Clone)]
pub struct Layer {
    pub blob: PathBuf,
    pub media_type: MediaType,
    /// `sha256:...` of the blob, and its size, as the manifest says.
    pub digest: String,
    pub size: u64,
    /// `sha256:...` of the uncompressed tar.
    pub diff_id: String,
}

/// An image found in a layout, layers bottom first.
#[derive(Debug)]
pub struct Image {
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

impl Image {
    /// Find `reference` in the layout at `layout`: the ref name as written,
    /// then with `:latest`, then the tag alone (skopeo's `oci:DIR:TAG`).
    pub fn open(layout_dir: &Path, reference: &str) -> Result<Image, Error> {
        let layout = Layout::open(layout_dir).map_err(Error::NoLayout)?;
        let refs = layout.refs()?;
        let candidates = [
            reference.to_string(),
            format!("{reference}:latest"),
            reference
                .rsplit_once(':')
                .map(|(_, t)| t.to_string())
                .unwrap_or_default(),
        ];
        let found = candidates
            .iter()
            .filter(|c| !c.is_empty())
            .find_map(|c| refs.iter().find(|r| &r.name == c));
        let Some(found) = found else {
            return Err(Error::NoImage {
                reference: reference.to_string(),
                index: layout_dir.join("index.json"),
                names: refs.iter().map(|r| r.name.clone()).collect(),
            });
        };
        let desc = &found.manifest;
        if *desc.media_type() != MediaType::ImageManifest {
            return Err(Error::NotManifest {
                reference: reference.to_string(),
                layout: layout_dir.to_path_buf(),
                media_type: desc.media_type().to_string(),
            });
        }
        let manifest = layout
            .read_manifest(desc.digest().as_ref())
            .map_err(|source| Error::Manifest {
                reference: reference.to_string(),
                source,
            })?;
        let config_bytes = layout.read_blob(manifest.config().digest().as_ref())?;
        let config =
            ImageConfiguration::from_reader(&config_bytes[..]).map_err(|source| Error::Config {
                reference: reference.to_string(),
                source,
            })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::LayerCount {
                reference: reference.to_string(),
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(d, diff)| Layer {
                blob: layout.blob_path(d.digest().as_ref()),
                media_type: d.media_type().clone(),
                digest: d.digest().to_string(),
                size: d.size(),
                diff_id: diff.clone(),
            })
            .collect();
        Ok(Image { config, layers })
    }
}
