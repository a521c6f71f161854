//! Writing blobs: content goes to a locked temporary file while it is hashed
//! and counted, then is fsynced and renamed to its digest. A reader never
//! sees a blob whose name is not its content's sha256.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use sha2::{Digest as _, Sha256};

use super::{IoContext, Result};
use crate::error::WriteError;

/// A blob being written. Dropping it without [`BlobWriter::finish`] leaves a
/// temporary file that the next writer to the layout removes.
pub struct BlobWriter {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    /// The layout's root.
    root: PathBuf,
    hasher: Sha256,
    size: u64,
}

/// A finished blob: `sha256:<hex>` and its size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
}

impl BlobWriter {
    pub(super) fn new(file: File, tmp: PathBuf, root: PathBuf) -> BlobWriter {
        BlobWriter {
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
            tmp,
            root,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// Make the content durable and give it its name.
    pub fn finish(mut self) -> Result<Blob> {
        let hex = hex(&self.hasher.clone().finalize());
        let tmp = self.tmp.clone();
        let file = self
            .file
            .take()
            .expect("finish runs once")
            .into_inner()
            .map_err(|e| e.into_error())
            .write_ctx(&tmp)?;
        file.sync_all().write_ctx(&tmp)?;
        let blobs = self.root.join("blobs/sha256");
        let dest = blobs.join(&hex);
        std::fs::rename(&tmp, &dest)
            .io_ctx(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
        crate::durable::sync_dir(&blobs)?;
        // hashed on the way in: the check before its next use is a stat
        if let Ok(meta) = std::fs::metadata(&dest) {
            super::verify::record(&self.root, &hex, &meta);
        }
        Ok(Blob {
            digest: format!("sha256:{hex}"),
            size: self.size,
        })
    }
}

impl Write for BlobWriter {
    /// A failure carries the blob's path as a [`WriteError`], so that it
    /// still names it after passing through a compressor.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .file
            .as_mut()
            .expect("not finished")
            .write(buf)
            .map_err(|e| WriteError::new(&self.tmp, e).into_io())?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file
            .as_mut()
            .expect("not finished")
            .flush()
            .map_err(|e| WriteError::new(&self.tmp, e).into_io())
    }
}

impl Drop for BlobWriter {
    /// An abandoned blob (an error on the way) leaves nothing behind; after
    /// `finish` the temporary name is gone and this does nothing.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// Hashes (sha256) and counts what is read through it: a blob's digest
/// while it is checked, a layer's diff_id while it is unpacked.
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    /// Bytes read so far.
    pub size: u64,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The `sha256:<hex>` digest of what was read so far.
    pub fn digest(&self) -> String {
        format!("sha256:{}", hex(&self.hasher.clone().finalize()))
    }

    /// Read to the end; then the digest of all that passed.
    pub fn finish(&mut self) -> io::Result<String> {
        io::copy(self, &mut io::sink())?;
        Ok(self.digest())
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
