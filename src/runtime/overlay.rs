//! The container's root filesystem: read-only layer dirs overlaid with a
//! fresh upper dir. Kernel overlayfs (with `userxattr`, as unprivileged
//! overlay in a user namespace needs, kernel >= 5.11) is tried first, then
//! fuse-overlayfs, then a plain copy; [`Kind`] says which one was used.
//! Mounts happen in kiln's private mount namespace, so they vanish with kiln.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};

/// How the rootfs was assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Kernel,
    Fuse,
    Copy,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Kernel => "kernel overlayfs (userxattr)",
            Kind::Fuse => "fuse-overlayfs (kernel overlayfs was refused)",
            Kind::Copy => {
                "a copy of the layers (neither kernel overlayfs nor fuse-overlayfs worked)"
            }
        }
    }
}

/// An assembled rootfs at `merged`; [`Rootfs::unmount`] takes it down.
#[derive(Debug)]
pub struct Rootfs {
    pub kind: Kind,
    pub merged: PathBuf,
}

/// Overlay `lowers` (top layer first) with `upper`, using `work` as overlay's
/// scratch dir (same filesystem as `upper`), at `merged`.
/// `volatile`: the upper dir is thrown away afterwards, so overlay may skip
/// syncing it (unmounting a synced overlay waited tens of ms for the disk).
/// `KILN_OVERLAY=kernel|fuse|copy` forces one way (tests, odd hosts).
pub fn mount_rootfs(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    volatile: bool,
) -> anyhow::Result<Rootfs> {
    let forced = std::env::var("KILN_OVERLAY").ok().filter(|v| !v.is_empty());
    for dir in [upper, work, merged] {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let want = |k: &str| forced.as_deref().is_none_or(|f| f == k);
    let mut errors = Vec::new();
    if want("kernel") {
        match mount_kernel(lowers, upper, work, merged, volatile) {
            Ok(()) => {
                return Ok(Rootfs {
                    kind: Kind::Kernel,
                    merged: merged.into(),
                });
            }
            Err(e) => errors.push(format!("kernel overlayfs: {e:#}")),
        }
    }
    if want("fuse") {
        match mount_fuse(lowers, upper, work, merged) {
            Ok(()) => {
                return Ok(Rootfs {
                    kind: Kind::Fuse,
                    merged: merged.into(),
                });
            }
            Err(e) => errors.push(format!("fuse-overlayfs: {e:#}")),
        }
    }
    if want("copy") {
        for lower in lowers.iter().rev() {
            copy_layer(lower, merged)
                .with_context(|| format!("copying layer {}", lower.display()))?;
        }
        return Ok(Rootfs {
            kind: Kind::Copy,
            merged: merged.into(),
        });
    }
    bail!("no way to assemble the rootfs: {}", errors.join("; "))
}

fn lowerdir_option(lowers: &[PathBuf]) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for l in lowers {
        let s = l.to_str().context("layer path is not UTF-8")?;
        if s.contains([':', ',']) {
            bail!("layer path {s} contains ':' or ',', which overlayfs options cannot hold");
        }
        parts.push(s.to_string());
    }
    Ok(parts.join(":"))
}

fn mount_kernel(
    lowers: &[PathBuf],
    upper: &Path,
    work: &Path,
    merged: &Path,
    volatile: bool,
) -> anyhow::Result<()> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr{}",
        lowerdir_option(lowers)?,
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    );
    if opts.len() >= 4000 {
        bail!(
            "{} layers make the overlay options longer than a page",
            lowers.len()
        );
    }
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )?;
    Ok(())
}

fn mount_fuse(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> anyhow::Result<()> {
    let out = Command::new("fuse-overlayfs")
        .arg("-o")
        .arg(format!(
            "lowerdir={},upperdir={},workdir={}",
            lowerdir_option(lowers)?,
            upper.display(),
            work.display()
        ))
        .arg(merged)
        .output()
        .context("running fuse-overlayfs (Debian package fuse-overlayfs)")?;
    if !out.status.success() {
        bail!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Rootfs {
    /// Take the rootfs down: unmount an overlay, delete a copy.
    pub fn unmount(&self) -> anyhow::Result<()> {
        match self.kind {
            Kind::Kernel | Kind::Fuse => {
                umount2(&self.merged, MntFlags::MNT_DETACH)
                    .with_context(|| format!("unmounting {}", self.merged.display()))?;
                Ok(())
            }
            Kind::Copy => Ok(remove_tree(&self.merged)?),
        }
    }
}

/// `rm -rf` that also empties overlay's work dir (mode 000 dirs).
pub use crate::tree::remove_tree;

fn is_whiteout(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    let (Ok(p), Ok(n)) = (
        CString::new(dir.as_os_str().as_bytes()),
        CString::new("user.overlay.opaque"),
    ) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given length.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    len == 1 && buf[0] == b'y'
}

/// Copy one layer over `dst`, honouring its whiteouts and opaque dirs.
fn copy_layer(src: &Path, dst: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        if is_whiteout(&meta) {
            if let Ok(m) = fs::symlink_metadata(&to) {
                if m.is_dir() {
                    remove_tree(&to)?
                } else {
                    fs::remove_file(&to)?
                }
            }
            continue;
        }
        if meta.is_dir() {
            if fs::symlink_metadata(&to).is_ok_and(|m| !m.is_dir())
                || (is_opaque(&from) && to.exists())
            {
                let _ = fs::remove_file(&to);
                remove_tree(&to)?;
            }
            if !to.exists() {
                fs::create_dir(&to)?;
            }
            copy_layer(&from, &to)?;
        } else {
            if fs::symlink_metadata(&to).is_ok() {
                if fs::symlink_metadata(&to)?.is_dir() {
                    remove_tree(&to)?
                } else {
                    fs::remove_file(&to)?
                }
            }
            if meta.file_type().is_symlink() {
                symlink(fs::read_link(&from)?, &to)?;
            } else if meta.is_file() {
                fs::copy(&from, &to)?;
            } else {
                continue;
            }
        }
        let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
        if !meta.file_type().is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}
