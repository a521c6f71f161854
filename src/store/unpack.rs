//! Unpacking one layer blob into a directory, safely and atomically: paths
//! may not leave the directory, the uncompressed stream must hash to the
//! diff_id, OCI whiteouts become overlay whiteouts (a 0/0 character device,
//! which the kernel lets a user namespace create) and opaque markers become
//! the `user.overlay.opaque` xattr (overlay mounted with `userxattr`).
//! The result appears under its final name only when complete.

use std::ffi::CString;
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use anyhow::{Context, bail};
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use oci_spec::image::MediaType;
use sha2::{Digest, Sha256};

use super::Layer;
use crate::runtime::overlay::remove_tree;

/// Hashes what passes through it: the diff_id of the uncompressed tar.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

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

pub(super) fn decompressed(layer: &Layer) -> anyhow::Result<Box<dyn Read>> {
    let file = io::BufReader::new(
        fs::File::open(&layer.blob)
            .with_context(|| format!("opening layer blob {}", layer.blob.display()))?,
    );
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
        bail!(
            "layer {} has the media type {mt}, which kiln cannot unpack",
            layer.blob.display()
        )
    })
}

/// Unpack `layer` into `dest` (which must not exist yet).
pub fn unpack(layer: &Layer, dest: &Path, chown: bool) -> anyhow::Result<()> {
    let parent = dest.parent().context("layer dir has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let tmp = parent.join(format!(
        ".{}.tmp-{}",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    remove_tree(&tmp)?;
    fs::create_dir(&tmp)?;
    let result = extract(layer, &tmp, chown);
    if let Err(e) = result {
        let _ = remove_tree(&tmp);
        return Err(e.context(format!("unpacking layer {}", layer.diff_id)));
    }
    if fs::rename(&tmp, dest).is_err() {
        // another kiln unpacked it meanwhile: keep theirs
        remove_tree(&tmp)?;
    }
    Ok(())
}

fn extract(layer: &Layer, dir: &Path, chown: bool) -> anyhow::Result<()> {
    let mut reader = Hashing {
        inner: decompressed(layer)?,
        hash: Sha256::new(),
    };
    {
        let mut archive = tar::Archive::new(Padded {
            inner: &mut reader,
            seen: 0,
            zeros: None,
        });
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(chown);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(false);
        archive.set_overwrite(true);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.into_owned();
            if path.components().any(|c| {
                matches!(
                    c,
                    Component::ParentDir | Component::RootDir | Component::Prefix(_)
                )
            }) {
                bail!("layer entry `{}` points outside the layer", path.display());
            }
            let name = path
                .file_name()
                .map(|n| n.as_bytes().to_vec())
                .unwrap_or_default();
            if let Some(hidden) = name.strip_prefix(b".wh.") {
                let parent = dir.join(path.parent().unwrap_or(Path::new("")));
                fs::create_dir_all(&parent)?;
                if hidden == b".wh..opq" {
                    set_opaque(&parent)?;
                } else {
                    let target = parent.join(std::ffi::OsStr::from_bytes(hidden));
                    let _ = remove_tree(&target);
                    let _ = fs::remove_file(&target);
                    mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                        .with_context(|| format!("creating the whiteout {}", target.display()))?;
                }
                continue;
            }
            let kind = entry.header().entry_type();
            if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
                // device nodes cannot be made in a user namespace; /dev is
                // the runtime's anyway
                continue;
            }
            entry
                .unpack_in(dir)
                .with_context(|| format!("unpacking `{}`", path.display()))?;
        }
    }
    io::copy(&mut reader, &mut io::sink())?;
    let got: String = reader
        .hash
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let got = format!("sha256:{got}");
    if got != layer.diff_id {
        bail!(
            "layer {} unpacks to {got}, but the image config says {}",
            layer.blob.display(),
            layer.diff_id
        );
    }
    Ok(())
}

fn set_opaque(dir: &Path) -> anyhow::Result<()> {
    let p = CString::new(dir.as_os_str().as_bytes())?;
    let n = CString::new("user.overlay.opaque")?;
    // SAFETY: valid C strings and a one-byte value.
    let rc = unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("marking {} opaque", dir.display()));
    }
    Ok(())
}
