//! A tar stream into a tree, every entry through the resolver: absolute
//! paths, `..` and anything below a symlink refuse the tree; symlinks are
//! made as they are (a root file system is full of absolute ones) but never
//! followed. Owners and set-id bits follow [`Owners`]. Device nodes are
//! never made (the runtime gives a container its /dev; a device in a cache
//! dir is a door to the host's disks) and are listed instead. Directory
//! modes and times are set last: a read-only directory must still receive
//! its entries, and writing into it changes its mtime.
//!
//! For image layers, OCI whiteouts become what overlayfs reads in a lower
//! dir: `.wh.NAME` a 0/0 character device NAME (which a user namespace may
//! create), `.wh..wh..opq` the `user.overlay.opaque` xattr on its directory
//! (overlay is mounted with `userxattr`). A whiteout hides lower layers
//! only: a file of the same layer at its name stays (OCI image-spec,
//! "Whiteouts"), a directory becomes opaque instead.
//!
//! The first error stops the unpack and names the entry or host path; the
//! caller's [`super::Staged`] dir then goes.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, mknodat};
use tar::EntryType;

use super::dir::{Fault, Meta, kind as file_kind, set_mode_and_time};
use super::{Error, Owners, Root};

/// How to unpack.
#[derive(Debug, Clone)]
pub struct Options {
    /// OCI whiteouts become overlay whiteouts (image layers).
    pub whiteouts: bool,
    /// Extended attributes from pax headers (a stage3's file capabilities);
    /// overlay's own (`*.overlay.*`) are never taken from an archive.
    pub xattrs: bool,
    pub owners: Owners,
}

impl Options {
    /// An image layer, for an overlay lower dir, in this process's namespace.
    pub fn layer() -> Options {
        Options {
            whiteouts: true,
            xattrs: false,
            owners: Owners::current(),
        }
    }

    /// A stage3 or snapshot tarball, in this process's namespace.
    pub fn archive() -> Options {
        Options {
            whiteouts: false,
            xattrs: true,
            owners: Owners::current(),
        }
    }
}

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    /// Device nodes and other special files left out, as paths in the tree.
    pub skipped: Vec<String>,
    /// Entries that did not get their own owner (see [`Owners`]).
    pub owners_changed: u64,
}

/// Unpack the tar stream `reader` (of `archive`, for messages) into `root`.
pub fn unpack(
    archive: &Path,
    reader: impl Read,
    root: &Root,
    opts: &Options,
) -> Result<Unpacked, Error> {
    let read_err = |cause| Error::Read {
        archive: archive.to_path_buf(),
        cause,
    };
    let mut tar = tar::Archive::new(reader);
    let mut done = Unpacked::default();
    let mut dirs: Vec<(PathBuf, u32, i64)> = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let fault = |f: Fault| f.into_error(archive, &shown);
        let rel = safe_relative(&raw).map_err(|why| fault(Fault::Refused(why)))?;
        done.entries += 1;
        let header = entry.header();
        let meta = Meta {
            uid: header.uid().map_err(read_err)?,
            gid: header.gid().map_err(read_err)?,
            mode: header.mode().map_err(read_err)? & 0o7777,
            mtime: header.mtime().map_or(0, |t| i64::try_from(t).unwrap_or(0)),
        };
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            // "./": the root itself
            let dir = root.dir(Path::new(""), false).map_err(fault)?;
            let (mode, changed) =
                dir.own(OsStr::new("."), Some(dir.fd.as_fd()), &opts.owners, &meta);
            done.owners_changed += u64::from(changed);
            dirs.push((rel, mode, meta.mtime));
            continue;
        };
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = root.dir(parent_rel, true).map_err(fault)?;
        if opts.whiteouts
            && let Some(hidden) = name.as_bytes().strip_prefix(b".wh.")
        {
            if hidden == b".wh..opq" {
                set_opaque(parent.fd.as_fd())
                    .map_err(|e| fault(parent.io("marking opaque", OsStr::new(""), e)))?;
                continue;
            }
            let hidden = OsStr::from_bytes(hidden);
            if !matches!(Path::new(hidden).components().next(), Some(Component::Normal(n)) if n == hidden)
            {
                return Err(fault(Fault::Refused("is a whiteout of no file")));
            }
            match parent.stat(hidden) {
                // the layer's own entry wins; a directory hides what is below
                Some(st) if file_kind(&st) == SFlag::S_IFDIR => {
                    let dir = parent.child(hidden).map_err(fault)?;
                    set_opaque(dir.fd.as_fd())
                        .map_err(|e| fault(dir.io("marking opaque", OsStr::new(""), e)))?;
                }
                Some(_) => {}
                None => mknodat(
                    Some(parent.fd.as_raw_fd()),
                    hidden,
                    SFlag::S_IFCHR,
                    Mode::empty(),
                    0,
                )
                .map_err(|e| fault(parent.io("making the whiteout", hidden, e)))?,
            }
            continue;
        }
        match kind {
            EntryType::Directory => {
                match parent.stat(&name) {
                    Some(st) if file_kind(&st) == SFlag::S_IFDIR => {}
                    found => {
                        if found.is_some() {
                            parent.clear(&name).map_err(fault)?;
                        }
                        nix::sys::stat::mkdirat(
                            Some(parent.fd.as_raw_fd()),
                            name.as_os_str(),
                            Mode::from_bits_truncate(0o700),
                        )
                        .map_err(|e| fault(parent.io("creating", &name, e)))?;
                    }
                }
                let dir = parent.child(&name).map_err(fault)?;
                let (mode, changed) = parent.own(&name, Some(dir.fd.as_fd()), &opts.owners, &meta);
                done.owners_changed += u64::from(changed);
                if opts.xattrs {
                    set_xattrs(&mut entry, dir.fd.as_fd());
                }
                dirs.push((rel, mode, meta.mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                parent.clear(&name).map_err(fault)?;
                let mut file = parent.create_file(&name).map_err(fault)?;
                copy_data(&mut entry, &mut file, &mut buf)
                    .map_err(|e| e.into_error(archive, parent.path.join(&name)))?;
                if opts.xattrs {
                    set_xattrs(&mut entry, file.as_fd());
                }
                let changed = parent
                    .settle(&name, Some(file.as_fd()), false, &opts.owners, &meta)
                    .map_err(fault)?;
                done.owners_changed += u64::from(changed);
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| fault(Fault::Refused("is a symlink without a target")))?;
                parent.clear(&name).map_err(fault)?;
                nix::unistd::symlinkat(
                    OsStr::from_bytes(&link),
                    Some(parent.fd.as_raw_fd()),
                    name.as_os_str(),
                )
                .map_err(|e| fault(parent.io("creating", &name, e)))?;
                let changed = parent
                    .settle(&name, None, true, &opts.owners, &meta)
                    .map_err(fault)?;
                done.owners_changed += u64::from(changed);
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| fault(Fault::Refused("is a hard link without a target")))?;
                let target = safe_relative(&link)
                    .ok()
                    .filter(|t| t.file_name().is_some())
                    .ok_or_else(|| {
                        fault(Fault::Refused("is a hard link to a path outside the root"))
                    })?;
                let from = root
                    .dir(target.parent().unwrap_or(Path::new("")), false)
                    .map_err(fault)?;
                let target_name = target.file_name().unwrap_or_default();
                parent.clear(&name).map_err(fault)?;
                nix::unistd::linkat(
                    Some(from.fd.as_raw_fd()),
                    target_name,
                    Some(parent.fd.as_raw_fd()),
                    name.as_os_str(),
                    nix::fcntl::AtFlags::empty(),
                )
                .map_err(|e| fault(parent.io("linking", &name, e)))?;
            }
            EntryType::Fifo => {
                parent.clear(&name).map_err(fault)?;
                mknodat(
                    Some(parent.fd.as_raw_fd()),
                    name.as_os_str(),
                    SFlag::S_IFIFO,
                    Mode::from_bits_truncate(0o600),
                    0,
                )
                .map_err(|e| fault(parent.io("creating", &name, e)))?;
                let changed = parent
                    .settle(&name, None, false, &opts.owners, &meta)
                    .map_err(fault)?;
                done.owners_changed += u64::from(changed);
            }
            _ => done.skipped.push(rel.display().to_string()),
        }
    }
    // Read the zero padding after the end of the archive too, so that a
    // decompressor feeding a pipe ends normally.
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(read_err)?;
    for (rel, mode, mtime) in dirs.into_iter().rev() {
        // A later entry may have put a link or file there: then it is not
        // this directory's to change.
        let Ok(dir) = root.dir(&rel, false) else {
            continue;
        };
        set_mode_and_time(dir.fd.as_fd(), mode, mtime)
            .map_err(|cause| Error::write("setting the mode of", &dir.path, cause))?;
    }
    Ok(done)
}

/// Where a copy of data failed: reading the source or writing the tree.
pub(super) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

impl CopyError {
    pub(super) fn into_error(self, source: &Path, written: PathBuf) -> Error {
        match self {
            CopyError::Read(cause) => Error::Read {
                archive: source.to_path_buf(),
                cause,
            },
            CopyError::Write(cause) => Error::Write {
                op: "writing",
                path: written,
                cause,
            },
        }
    }
}

/// Copy `from` into `to` through `buf`, telling a read error from a write
/// error (a full disk is the tree's, a truncated archive the source's).
pub(super) fn copy_data(
    from: &mut impl Read,
    to: &mut File,
    buf: &mut [u8],
) -> Result<(), CopyError> {
    loop {
        let n = match from.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
    }
}

/// The entry's path inside the root: `.` parts dropped; absolute paths and
/// `..` refused (a tarball that needs them is not a root file system).
pub(super) fn safe_relative(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let path = Path::new(OsStr::from_bytes(raw));
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("climbs out of the root with '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    Ok(rel)
}

/// Mark a directory opaque for overlayfs (mounted with `userxattr`).
fn set_opaque(fd: BorrowedFd) -> io::Result<()> {
    // SAFETY: a valid descriptor, a NUL-terminated name and a one-byte value.
    let rc = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            c"user.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Extended attributes from pax headers (`SCHILY.xattr.*`): stage3s carry
/// file capabilities this way. Best effort: rootless, `security.*` may be
/// refused, and the build still works without them. Overlay's own
/// attributes would steer the overlay (opaque dirs, redirects): never.
fn set_xattrs<R: Read>(entry: &mut tar::Entry<R>, fd: BorrowedFd) {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    for ext in exts.flatten() {
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay.") {
            continue;
        }
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let value = ext.value_bytes();
        // SAFETY: a valid descriptor, a NUL-terminated name, and value
        // points to value.len() readable bytes.
        unsafe {
            libc::fsetxattr(
                fd.as_raw_fd(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::dir::THROUGH_LINK;
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative(b"./usr/bin/").unwrap(), Path::new("usr/bin"));
        assert_eq!(safe_relative(b"./").unwrap(), Path::new(""));
        assert_eq!(
            safe_relative(b"usr/../../etc/passwd").unwrap_err(),
            "climbs out of the root with '..'"
        );
        assert_eq!(
            safe_relative(b"/etc/passwd").unwrap_err(),
            "has an absolute path"
        );
    }

    #[test]
    fn the_walk_refuses_what_openat2_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let tree = tmp.path().join("tree");
        std::fs::create_dir_all(tree.join("a")).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("a/evil")).unwrap();
        std::os::unix::fs::symlink("../..", tree.join("a/up")).unwrap();
        std::fs::write(tree.join("a/file"), "").unwrap();
        let root = Root::open(&tree).unwrap();
        for rel in ["a/evil/x", "a/up/outside/x"] {
            for how in ["openat2", "walk"] {
                let got = match how {
                    "openat2" => root.dir(Path::new(rel), true),
                    _ => root.walk(Path::new(rel), true),
                };
                assert!(
                    matches!(got, Err(Fault::Refused(THROUGH_LINK))),
                    "{how} {rel}: {:?}",
                    got.map(|d| d.path)
                );
            }
        }
        assert!(matches!(
            root.walk(Path::new("a/file/x"), true),
            Err(Fault::Refused("has a parent that is not a directory"))
        ));
        // missing parts are made, below the root only
        let dir = root.walk(Path::new("a/new/deeper"), true).unwrap();
        assert_eq!(dir.path, tree.join("a/new/deeper"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tree.join("a/new/deeper"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
