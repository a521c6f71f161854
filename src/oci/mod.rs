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
//! `kiln ls --check` use on any layout; `verify` checks the blobs kiln
//! builds on or runs before it uses them. [`artifact`] attaches documents
//! (the SBOMs) to an image as OCI 1.1 artifacts.

mod artifact;
mod blob;
mod commit;
mod compress;
mod fsck;
mod idmap;
mod image;
mod json;
mod layer;
mod layout;
mod refname;
mod time;
mod verify;

pub use artifact::Attachment;
pub(crate) use blob::{HashingReader, hex};
pub use commit::{CommitOptions, CommitResult, commit, name_image, write_image};
pub use compress::{Compression, thread_count};
pub use fsck::fsck;
pub use idmap::IdMap;
pub use image::ImageFlags;
pub use layer::LayerOptions;
pub use layout::Layout;
pub use refname::{REF_RULE, RefNameError, check_ref_name};
pub use time::{format_rfc3339, parse_created};

use std::path::PathBuf;

use crate::error::WriteError;

/// What can go wrong while reading or writing a layout. Each variant names
/// the path or value at fault; [`Error::fix`] has the fix for those every
/// command can meet, the command adds the rest.
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
    #[error("invalid image reference {name:?}: {reason}")]
    BadRef { name: String, reason: RefNameError },
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
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{} is not valid JSON at {line}:{column}: {reason}", path.display())]
    BadJson {
        path: PathBuf,
        line: usize,
        column: usize,
        reason: String,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error("blob {digest} is missing: there is no {path}")]
    BlobMissing { digest: String, path: PathBuf },
    #[error("blob {digest} is corrupt: {why} ({path})")]
    BlobCorrupt {
        digest: String,
        path: PathBuf,
        why: String,
    },
}

impl Error {
    /// The digest of the blob at fault, when the error is a missing or
    /// corrupt blob.
    pub fn bad_blob(&self) -> Option<&str> {
        match self {
            Error::BlobMissing { digest, .. } | Error::BlobCorrupt { digest, .. } => Some(digest),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The fix for what any command reading or writing a layout can meet;
    /// the rest are for the command to hint.
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Write(write) => write.fix(),
            Error::BadRef { .. } => Some(format!("rename it: {REF_RULE}")),
            Error::BadJson { path, .. } => Some(format!(
                "kiln replaces layout files whole (write, fsync, rename), so something else \
                 damaged {}: restore it from a backup, or move the layout away and build its images again",
                path.display()
            )),
            _ => None,
        }
    }
}

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
    /// A failed write to `path`, or a [`WriteError`] that came through
    /// `Write` from deeper down.
    fn write_ctx(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io_ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| match WriteError::from_io(source) {
            Ok(write) => Error::Write(write),
            Err(source) => Error::Io {
                what: what(),
                source,
            },
        })
    }

    fn write_ctx(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|e| {
            WriteError::from_io(e)
                .unwrap_or_else(|e| WriteError::new(path, e))
                .into()
        })
    }
}

/// Parse a JSON document of the layout, naming `path` and the place where
/// it breaks; `what` is what it should be ("an image index").
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    path: &std::path::Path,
    what: &str,
    bytes: &[u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        let reason = e.to_string();
        let reason = reason
            .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
            .unwrap_or(&reason)
            .to_string();
        if e.is_data() {
            Error::Invalid {
                what: format!("{} is not {what}", path.display()),
                message: format!("{reason} at {}:{}", e.line(), e.column()),
            }
        } else {
            Error::BadJson {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                reason,
            }
        }
    })
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
