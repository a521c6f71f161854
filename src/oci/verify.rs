//! Checking blobs before kiln builds on them or runs them: a child's
//! manifest copies its parent's layer descriptors, and a cached image is
//! trusted as it is found, so a blob that went missing or changed since it
//! was written must stop the build rather than be passed on.
//!
//! Manifests and configs are small: [`Layout::read_blob`] hashes them every
//! time. A layer blob is hashed once; kiln then keeps a record of the file
//! it hashed in `.kiln-verified/<hex>` at the layout's root (its device,
//! inode, size, mtime and ctime). While the blob is that same file,
//! unchanged (a write, truncate, chmod, rename or copy changes its ctime,
//! which no tool can set back), the record stands for the hash, and a no-op
//! rebuild costs a stat per layer. The blob writer leaves the record of
//! what it wrote, since it hashed it on the way. A record kiln cannot write
//! (a layout it may only read) only costs the next check a hash.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::blob::{HashingReader, hex};
use super::{Error, IoContext, Layout, Result};

const RECORDS: &str = ".kiln-verified";

/// Blobs this small are hashed rather than recorded.
const SMALL: u64 = 64 * 1024;

impl Layout {
    /// The blob `digest` is in the layout with `size` bytes and its content
    /// hashes to its name.
    pub fn verify_blob(&self, digest: &str, size: u64) -> Result<()> {
        let name = sha256_hex(digest)?;
        let path = self.blob_path(digest);
        let meta = fs::metadata(&path).map_err(|e| missing(digest, &path, e))?;
        if meta.len() != size {
            return Err(Error::BlobCorrupt {
                digest: digest.to_string(),
                path,
                why: format!("it has {} bytes, its descriptor says {size}", meta.len()),
            });
        }
        let records = self.root().join(RECORDS);
        if fs::read_to_string(records.join(name)).ok() == Some(stamp(&meta)) {
            return Ok(());
        }
        let file = File::open(&path).map_err(|e| missing(digest, &path, e))?;
        let actual = HashingReader::new(io::BufReader::with_capacity(256 * 1024, file))
            .finish()
            .io_ctx(|| format!("reading blob {}", path.display()))?;
        let actual = actual.trim_start_matches("sha256:");
        if actual != name {
            return Err(corrupt(digest, &path, actual));
        }
        record(self.root(), name, &meta);
        Ok(())
    }

    /// Every blob of the image whose manifest is `manifest`: the manifest,
    /// its config and its layers.
    pub fn verify_image(&self, manifest: &str) -> Result<()> {
        let m = self.read_manifest(manifest)?;
        self.read_blob(m.config().digest().as_ref())?;
        for layer in m.layers() {
            self.verify_blob(layer.digest().as_ref(), layer.size())?;
        }
        Ok(())
    }
}

/// The bytes of blob `digest` read from `path`, checked against the name.
pub(super) fn check(digest: &str, path: &Path, bytes: io::Result<Vec<u8>>) -> Result<Vec<u8>> {
    let bytes = bytes.map_err(|e| missing(digest, path, e))?;
    let actual = hex(&Sha256::digest(&bytes));
    if actual != sha256_hex(digest)? {
        return Err(corrupt(digest, path, &actual));
    }
    Ok(bytes)
}

/// Remember that the blob `hex`, with `meta`, hashed to its name.
pub(super) fn record(root: &Path, hex: &str, meta: &fs::Metadata) {
    if meta.len() <= SMALL {
        return;
    }
    let dir = root.join(RECORDS);
    let tmp = dir.join(format!(".{hex}.{}", std::process::id()));
    let written = fs::create_dir_all(&dir)
        .and_then(|()| File::create(&tmp))
        .and_then(|mut f| f.write_all(stamp(meta).as_bytes()))
        .and_then(|()| fs::rename(&tmp, dir.join(hex)));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

/// What identifies one unchanged file.
fn stamp(meta: &fs::Metadata) -> String {
    format!(
        "{} {} {} {}.{:09} {}.{:09}\n",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

fn sha256_hex(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| Error::Invalid {
            what: format!("digest {digest}"),
            message: "kiln reads sha256 digests only".into(),
        })
}

fn missing(digest: &str, path: &Path, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::BlobMissing {
            digest: digest.to_string(),
            path: path.to_path_buf(),
        }
    } else {
        Error::Unreadable {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

fn corrupt(digest: &str, path: &Path, actual: &str) -> Error {
    Error::BlobCorrupt {
        digest: digest.to_string(),
        path: path.to_path_buf(),
        why: format!("its content has the sha256 {actual}"),
    }
}
