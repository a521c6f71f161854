//! Unpacking one layer blob into the store, checked and atomic: the blob
//! must hash to its digest (and have its descriptor's size), the
//! uncompressed stream to the config's diff_id, and the tree is written by
//! kiln's safe unpacker (`tree`), which turns OCI whiteouts into overlay
//! whiteouts. The result appears under its final name only when complete
//! and checked; any failure removes what was written.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use oci_spec::image::MediaType;

use super::{Content, Error, Layer};
use crate::oci::HashingReader;
use crate::tree::{self, Root, Staged};

/// Ends the stream with the zero padding and end-of-archive blocks a tar
/// should have: some writers (umoci insert) stop right after the last
/// entry's data, which GNU tar and podman accept.
struct Padded<R> {
    inner: R,
    seen: u64,
    zeros: Option<u64>,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.zeros.is_none() {
            let n = self.inner.read(buf)?;
            self.seen += n as u64;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.zeros = Some((512 - self.seen % 512) % 512 + 1024);
        }
        let left = self.zeros.as_mut().expect("set above");
        let n = (*left).min(buf.len() as u64) as usize;
        buf[..n].fill(0);
        *left -= n as u64;
        Ok(n)
    }
}

/// The uncompressed tar of a layer blob read from `file`.
pub(super) fn decoder<'a>(
    layer: &Layer,
    file: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>, Content> {
    let file = io::BufReader::new(file);
    let mt = layer.media_type.to_string();
    Ok(if mt.ends_with("gzip") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else if mt.ends_with("zstd") {
        Box::new(zstd::Decoder::with_buffer(file)?)
    } else if mt.ends_with(".tar")
        || mt.ends_with("tar")
        || layer.media_type == MediaType::ImageLayer
    {
        Box::new(file)
    } else {
        return Err(Content::MediaType {
            blob: layer.blob.clone(),
            media_type: mt,
        });
    })
}

/// The uncompressed tar of `layer`'s blob.
pub(super) fn decompressed(layer: &Layer) -> Result<Box<dyn Read>, Content> {
    let file = fs::File::open(&layer.blob).map_err(|source| Content::Open {
        path: layer.blob.clone(),
        source,
    })?;
    decoder(layer, file)
}

/// Unpack `layer` into `dest` (which must not exist yet; its parent must).
pub fn unpack(layer: &Layer, dest: &Path) -> Result<(), Error> {
    let staged = Staged::new(dest)?;
    let file = fs::File::open(&layer.blob).map_err(|e| missing(layer, e))?;
    let mut blob = HashingReader::new(file);
    let unpacked = extract(layer, &mut blob, staged.path());
    // A blob that is not what its digest says explains any other failure
    // (a broken gzip stream, say); a refused entry or a full disk does not
    // need the rest of the blob read.
    let check_blob = !matches!(
        unpacked,
        Err(Failure::Tree(
            tree::Error::Unsafe { .. } | tree::Error::Write { .. }
        ))
    );
    if check_blob {
        let digest = blob.finish().unwrap_or_default();
        let why = if blob.size != layer.size {
            format!(
                "it has {} bytes, its descriptor says {}",
                blob.size, layer.size
            )
        } else if digest != layer.digest {
            format!(
                "its content has the sha256 {}",
                digest.trim_start_matches("sha256:")
            )
        } else {
            String::new()
        };
        if !why.is_empty() {
            return Err(Error::Damaged(crate::oci::Error::BlobCorrupt {
                digest: layer.digest.clone(),
                path: layer.blob.clone(),
                why,
            }));
        }
    }
    let diff_id = layer.diff_id.clone();
    unpacked.map_err(|f| match f {
        Failure::Tree(source) => Error::Unpack { diff_id, source },
        Failure::Content(source) => Error::Content { diff_id, source },
    })?;
    staged.commit()?;
    Ok(())
}

fn missing(layer: &Layer, e: io::Error) -> Error {
    if e.kind() == io::ErrorKind::NotFound {
        Error::Damaged(crate::oci::Error::BlobMissing {
            digest: layer.digest.clone(),
            path: layer.blob.clone(),
        })
    } else {
        Error::OpenBlob {
            path: layer.blob.clone(),
            source: e,
        }
    }
}

/// Why an extract failed: the unpacker's own errors are told apart.
enum Failure {
    Tree(tree::Error),
    Content(Content),
}

/// The tar of `blob` into `dir`, checked against the diff_id.
fn extract(layer: &Layer, blob: &mut impl Read, dir: &Path) -> Result<(), Failure> {
    let mut tar = HashingReader::new(decoder(layer, blob).map_err(Failure::Content)?);
    let root = Root::open(dir).map_err(Failure::Tree)?;
    tree::unpack(
        &layer.blob,
        Padded {
            inner: &mut tar,
            seen: 0,
            zeros: None,
        },
        &root,
        &tree::Options::layer(),
    )
    .map_err(Failure::Tree)?;
    let got = tar.finish().map_err(|cause| {
        Failure::Tree(tree::Error::Read {
            archive: layer.blob.clone(),
            cause,
        })
    })?;
    if got != layer.diff_id {
        return Err(Failure::Content(Content::DiffId {
            blob: layer.blob.clone(),
            found: got,
            diff_id: layer.diff_id.clone(),
        }));
    }
    Ok(())
}
