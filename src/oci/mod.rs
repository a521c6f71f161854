//! oci: turn a directory into an image layer and write it, with its config,
//! manifest and index entry, into an OCI image layout.
//!
//! kiln writes images itself (no umoci, no buildah) because it needs three
//! things the usual tools do not give together: byte-for-byte determinism
//! (sorted tar, clamped mtimes, thread-count-independent compression,
//! canonical JSON), streaming in bounded memory, and ids mapped back from a
//! user namespace. The data flows walk -> tar -> hash (diff_id) -> compress ->
//! hash (digest) -> blob file, then config, manifest and `index.json`, each
//! written atomically. [`fsck`] is the strict checker the tests and
//! `kiln ls --check` use on any layout.

mod blob;
mod commit;
mod compress;
mod fsck;
mod idmap;
mod image;
mod json;
mod layer;
mod layout;
mod time;

pub use blob::{Blob, BlobWriter};
pub use commit::{CommitOptions, CommitResult, commit, name_image, write_image};
pub use compress::{Compression, thread_count};
pub use fsck::{FsckReport, fsck};
pub use idmap::IdMap;
pub use image::ImageFlags;
pub use layer::{LayerOptions, LayerStats, write_tar};
pub use layout::{Layout, LayoutLock, RefInfo};
pub use time::{format_rfc3339, parse_created};

use std::path::PathBuf;

/// What can go wrong while reading or writing a layout. Each variant names
/// the path or value at fault; the CLI adds the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("root filesystem {0} does not exist")]
    RootfsMissing(PathBuf),
    #[error("root filesystem {0} is not a directory")]
    RootfsNotDir(PathBuf),
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("parent image {name:?} is not in layout {layout}; refs there: {}", refs_list(.refs))]
    UnknownRef {
        name: String,
        layout: PathBuf,
        refs: Vec<String>,
    },
    #[error("invalid image reference {0:?}: use letters, digits and . _ - : / @ +")]
    BadRef(String),
    #[error("cannot read {path}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {kind} {id} is not mapped by the user namespace's {kind}_map")]
    Unmappable {
        path: PathBuf,
        kind: &'static str,
        id: u32,
    },
    #[error("{path} changed while it was being read (size {expected} became {found})")]
    Changed {
        path: PathBuf,
        expected: u64,
        found: u64,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn refs_list(refs: &[String]) -> String {
    if refs.is_empty() {
        "none".to_string()
    } else {
        refs.join(", ")
    }
}

/// Attach a description to an I/O error.
pub(crate) trait IoContext<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

/// The media types kiln writes and reads.
pub mod media {
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
}

/// The index annotation that names an image in a layout.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
