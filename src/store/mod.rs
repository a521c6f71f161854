//! kiln's store: image layers unpacked once, kept by diff_id under the cache
//! dir, and used read-only as overlay lower dirs by every container.
//!
//! Layers are unpacked inside kiln's user namespace, so their owners land
//! in the mapped range on the host (a lower dir owned by host root shows up
//! as 65534 in a user's namespace and cannot be written through overlay),
//! and they are kept per id mapping, since the same tar unpacked under
//! another map has other owners. The unpacking itself is kiln's safe
//! unpacker (`tree`); the dir is private to the cache's owner (`cache`).

mod image;
mod merged;
mod unpack;

use std::io;
use std::path::PathBuf;

use crate::cache::Cache;
use crate::{oci, tree};

pub use image::{Image, Layer};

/// What can go wrong finding an image in a layout and unpacking or reading
/// its layers. [`Error::fix`] has the fix where kiln knows one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cache(#[from] crate::cache::Error),
    #[error(transparent)]
    Oci(#[from] oci::Error),
    #[error(transparent)]
    Tree(#[from] tree::Error),
    /// The layout given is none.
    #[error(transparent)]
    NoLayout(oci::Error),
    /// A blob of the image is missing or not what its digest says.
    #[error(transparent)]
    Damaged(oci::Error),
    #[error("no image `{reference}` in {}", index.display())]
    NoImage {
        reference: String,
        index: PathBuf,
        /// The images the layout holds.
        names: Vec<String>,
    },
    #[error("`{reference}` in {} is a {media_type}, not an image manifest", layout.display())]
    NotManifest {
        reference: String,
        layout: PathBuf,
        media_type: String,
    },
    #[error("reading the manifest of `{reference}`")]
    Manifest {
        reference: String,
        #[source]
        source: oci::Error,
    },
    #[error("reading the config of `{reference}`")]
    Config {
        reference: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("`{reference}`: the manifest has {layers} layers but the config {diff_ids} diff_ids")]
    LayerCount {
        reference: String,
        layers: usize,
        diff_ids: usize,
    },
    #[error("diff_id `{0}` is not a sha256 digest")]
    BadDiffId(String),
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open layer blob {}", path.display())]
    OpenBlob {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot unpack layer {diff_id}")]
    Unpack {
        diff_id: String,
        #[source]
        source: tree::Error,
    },
    #[error("cannot unpack layer {diff_id}")]
    Content {
        diff_id: String,
        #[source]
        source: Content,
    },
    #[error("reading layer {diff_id}")]
    Read {
        diff_id: String,
        #[source]
        source: Content,
    },
}

/// What is wrong with the content of a layer blob.
#[derive(Debug, thiserror::Error)]
pub enum Content {
    #[error("layer {} has the media type {media_type}, which kiln cannot unpack", blob.display())]
    MediaType { blob: PathBuf, media_type: String },
    #[error("opening layer blob {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {} unpacks to {found}, but the image config says {diff_id}", blob.display())]
    DiffId {
        blob: PathBuf,
        found: String,
        diff_id: String,
    },
    #[error("a hard link without a target")]
    NoLinkTarget,
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Cache(e) => e.fix(),
            Error::Oci(e) => e.fix(),
            Error::Tree(e) => e.fix(),
            Error::NoLayout(_) => Some(
                "give the layout with --layout DIR (a directory holding index.json)".to_string(),
            ),
            Error::Damaged(_) | Error::OpenBlob { .. } => Some(
                "the layout is damaged: build or copy the image into it again (`kiln build NS/IMAGE --force` for an image kiln built)"
                    .to_string(),
            ),
            Error::NoImage { names, .. } if names.is_empty() => {
                Some("the layout holds no named image".to_string())
            }
            Error::NoImage { names, .. } => Some(format!("the layout holds: {}", names.join(", "))),
            _ => None,
        }
    }
}

/// The image layers unpacked in the cache, by id mapping and diff_id.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(cache: &Cache) -> Result<Store, Error> {
        Ok(Store {
            root: cache.unpacked()?,
        })
    }

    /// The unpacked dir of `layer` under the id mapping `key`, unpacking it
    /// first if this is its first use (in the namespace of that mapping:
    /// owners follow `tree::Owners`). Returns the dir and whether it was
    /// unpacked now.
    pub fn layer(&self, layer: &Layer, key: &str) -> Result<(PathBuf, bool), Error> {
        let hex = layer
            .diff_id
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::BadDiffId(layer.diff_id.clone()))?;
        let mapped = self.root.join(key);
        let dir = mapped.join(hex);
        if dir.is_dir() {
            return Ok((dir, false));
        }
        std::fs::create_dir_all(&mapped).map_err(|source| Error::Create {
            path: mapped.clone(),
            source,
        })?;
        unpack::unpack(layer, &dir)?;
        Ok((dir, true))
    }
}
