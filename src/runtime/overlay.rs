//! The container's root filesystem: read-only layer dirs overlaid with a
//! fresh upper dir. Kernel overlayfs (with `userxattr`, as unprivileged
//! overlay in a user namespace needs, kernel >= 5.11) is tried first, then
//! fuse-overlayfs, then a plain copy; [`Kind`] says which one was used.
//! Mounts happen in kiln's private mount namespace, so they vanish with kiln.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, symlinkat, unlinkat};

/// Why the rootfs could not be assembled or taken down. [`Error::fix`]
/// has the fix where kiln knows one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Each way tried, with why it was refused.
    #[error("no way to assemble the rootfs: {}", tried.join("; "))]
    NoWay { tried: Vec<String> },
    #[error("copying layer {}", layer.display())]
    Copy {
        layer: PathBuf,
        #[source]
        source: CopyError,
    },
    #[error("unmounting {}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// Removing a copied rootfs.
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Tree(e)
            | Error::Copy {
                source: CopyError::Tree(e),
                ..
            } => e.fix(),
            _ => None,
        }
    }
}

/// What went wrong copying one layer (the fallback), under [`Error::Copy`].
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("opening {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Sys(#[from] nix::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Removing what a lower layer had where this one has something else.
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
}

/// Why one way of mounting was refused: one phrase of [`Error::NoWay`].
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("layer path is not UTF-8")]
    NotUtf8,
    #[error("layer path {0} contains ':' or ',', which overlayfs options cannot hold")]
    Separator(String),
    #[error("{0} layers make the overlay options longer than a page")]
    TooLong(usize),
    #[error(transparent)]
    Mount(#[from] nix::Error),
    #[error("running fuse-overlayfs (Debian package fuse-overlayfs): {0}")]
    Spawn(io::Error),
    #[error("{status}: {stderr}")]
    Fuse { status: ExitStatus, stderr: String },
}

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
) -> Result<Rootfs, Error> {
    let forced = std::env::var("KILN_OVERLAY").ok().filter(|v| !v.is_empty());
    for dir in [upper, work, merged] {
        fs::create_dir_all(dir).map_err(|source| Error::Create {
            path: dir.to_path_buf(),
            source,
        })?;
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
            Err(e) => errors.push(format!("kernel overlayfs: {e}")),
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
            Err(e) => errors.push(format!("fuse-overlayfs: {e}")),
        }
    }
    if want("copy") {
        for lower in lowers.iter().rev() {
            copy_layer(lower, merged).map_err(|source| Error::Copy {
                layer: lower.clone(),
                source,
            })?;
        }
        return Ok(Rootfs {
            kind: Kind::Copy,
            merged: merged.into(),
        });
    }
    Err(Error::NoWay { tried: errors })
}

fn lowerdir_option(lowers: &[PathBuf]) -> Result<String, Refused> {
    let mut parts = Vec::new();
    for l in lowers {
        let s = l.to_str().ok_or(Refused::NotUtf8)?;
        if s.contains([':', ',']) {
            return Err(Refused::Separator(s.to_string()));
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
) -> Result<(), Refused> {
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},userxattr{}",
        lowerdir_option(lowers)?,
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    );
    if opts.len() >= 4000 {
        return Err(Refused::TooLong(lowers.len()));
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

fn mount_fuse(lowers: &[PathBuf], upper: &Path, work: &Path, merged: &Path) -> Result<(), Refused> {
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
        .map_err(Refused::Spawn)?;
    if !out.status.success() {
        return Err(Refused::Fuse {
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Rootfs {
    /// Take the rootfs down: unmount an overlay, delete a copy.
    pub fn unmount(&self) -> Result<(), Error> {
        match self.kind {
            Kind::Kernel | Kind::Fuse => {
                umount2(&self.merged, MntFlags::MNT_DETACH).map_err(|source| Error::Unmount {
                    path: self.merged.clone(),
                    source,
                })
            }
            Kind::Copy => Ok(remove_tree(&self.merged)?),
        }
    }
}

/// `rm -rf` that also empties overlay's work dir (mode 000 dirs).
pub use crate::tree::remove_tree;

/// Copy one layer over `dst`, honouring its whiteouts and opaque dirs.
///
/// The layer is a build's upper dir, filled by whatever ran in the build,
/// and a process the build left behind could still swap a dir in it for a
/// symlink while it is copied: a path would then lead out of the layer,
/// into host files that would land in the rootfs. So no path into the
/// layer is followed: each dir is opened from its parent's descriptor with
/// `O_NOFOLLOW | O_DIRECTORY`, then listed, checked for overlay's opaque
/// mark (fgetxattr) and descended through that one descriptor; a file is
/// opened with `O_NOFOLLOW`, a symlink copied as a symlink. In `dst`, what
/// the lower layers put there is looked at without following it and
/// replaced, and entries are made from their parent's descriptor (only
/// kiln writes `dst` while it is made, so a dir of it is removed by path).
fn copy_layer(src: &Path, dst: &Path) -> Result<(), CopyError> {
    let open = |path: &Path| {
        open_dir(None, path.as_os_str()).map_err(|source| CopyError::Open {
            path: path.to_path_buf(),
            source,
        })
    };
    copy_dir(&open(src)?, &open(dst)?, dst)
}

/// The dir `name` of `at` (or the path `name`), refusing a symlink.
fn open_dir(at: Option<&OwnedFd>, name: &OsStr) -> nix::Result<OwnedFd> {
    let fd = openat(
        at.map(AsRawFd::as_raw_fd),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The names in the dir `dir`, read through its descriptor.
fn names(dir: &OwnedFd) -> Result<Vec<OsString>, CopyError> {
    let list = nix::dir::Dir::from_fd(dir.try_clone()?.into_raw_fd())?;
    let mut names = Vec::new();
    for entry in list {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    Ok(names)
}

fn file_kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// Overlay's mark on a dir of an upper layer that hides the lower ones'.
fn is_opaque(dir: &OwnedFd) -> bool {
    let mut buf = [0u8; 4];
    // SAFETY: an open descriptor, a NUL-terminated name and a buffer of
    // the given length.
    let len = unsafe {
        libc::fgetxattr(
            dir.as_raw_fd(),
            c"user.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    len == 1 && buf[0] == b'y'
}

/// Copy what is in `src` into `dst`, which is `dst_path`.
fn copy_dir(src: &OwnedFd, dst: &OwnedFd, dst_path: &Path) -> Result<(), CopyError> {
    let (src_fd, dst_fd) = (Some(src.as_raw_fd()), Some(dst.as_raw_fd()));
    for name in names(src)? {
        let name = name.as_os_str();
        let st = fstatat(src_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        let there = fstatat(dst_fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .ok()
            .map(|t| file_kind(&t));
        let path = dst_path.join(name);
        let kind = file_kind(&st);
        if kind == SFlag::S_IFCHR && st.st_rdev == 0 {
            // a whiteout: the lower layers' entry goes
            if let Some(there) = there {
                remove(dst, name, &path, there)?;
            }
            continue;
        }
        if kind == SFlag::S_IFDIR {
            let inner = open_dir(Some(src), name)?;
            let keep = there == Some(SFlag::S_IFDIR) && !is_opaque(&inner);
            if !keep {
                if let Some(there) = there {
                    remove(dst, name, &path, there)?;
                }
                mkdirat(dst_fd, name, Mode::from_bits_truncate(0o700))?;
            }
            let child = open_dir(Some(dst), name)?;
            copy_dir(&inner, &child, &path)?;
            settle(dst, name, Some(child), &st)?;
            continue;
        }
        if let Some(there) = there {
            remove(dst, name, &path, there)?;
        }
        if kind == SFlag::S_IFLNK {
            let target = readlinkat(src_fd, name)?;
            symlinkat(target.as_os_str(), dst_fd, name)?;
            settle(dst, name, None, &st)?;
        } else if kind == SFlag::S_IFREG {
            let flags = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let input = openat(src_fd, name, OFlag::O_RDONLY | flags, Mode::empty())?;
            let output = openat(
                dst_fd,
                name,
                OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | flags,
                Mode::from_bits_truncate(0o600),
            )?;
            // SAFETY: openat returned new descriptors that nothing else owns.
            let (mut input, output) =
                unsafe { (fs::File::from_raw_fd(input), OwnedFd::from_raw_fd(output)) };
            std::io::copy(&mut input, &mut fs::File::from(output.try_clone()?))?;
            settle(dst, name, Some(output), &st)?;
        }
    }
    Ok(())
}

/// Give the new entry `name` of `dir` (open as `fd`, unless a symlink) the
/// owner and mode of the layer's.
fn settle(
    dir: &OwnedFd,
    name: &OsStr,
    fd: Option<OwnedFd>,
    st: &FileStat,
) -> Result<(), CopyError> {
    let name = CString::new(name.as_bytes()).map_err(io::Error::from)?;
    // SAFETY: an open descriptor and a NUL-terminated name. An owner the
    // namespace cannot map is left as it is, as `cp -a` does.
    unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.st_uid,
            st.st_gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if let Some(fd) = fd {
        fs::File::from(fd).set_permissions(fs::Permissions::from_mode(st.st_mode & 0o7777))?;
    }
    Ok(())
}

/// Remove what the lower layers have at `name` of `dir` (`path`), of kind
/// `kind`, without following it.
fn remove(dir: &OwnedFd, name: &OsStr, path: &Path, kind: SFlag) -> Result<(), CopyError> {
    if kind == SFlag::S_IFDIR {
        remove_tree(path)?;
    } else {
        unlinkat(Some(dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A hostile layer: symlinks where dirs are expected, over a lower
    /// layer with one too. Nothing outside is read or written.
    #[test]
    fn copy_layer_follows_no_symlink_of_the_layer_or_the_lower_layers() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("secret"), "host file").unwrap();
        let (lower, upper, merged) = (
            tmp.path().join("lower"),
            tmp.path().join("upper"),
            tmp.path().join("merged"),
        );
        for d in [&lower, &upper.join("etc"), &merged] {
            fs::create_dir_all(d).unwrap();
        }
        // The lower layer's etc is a link out; the upper layer's a dir.
        symlink(&outside, lower.join("etc")).unwrap();
        fs::write(upper.join("etc/passwd"), "root:x:0:0\n").unwrap();
        // The upper layer's lib is a link out where a dir would be.
        symlink(&outside, upper.join("lib")).unwrap();
        fs::create_dir_all(lower.join("lib")).unwrap();
        fs::write(lower.join("lib/libc.so"), "libc").unwrap();

        copy_layer(&lower, &merged).unwrap();
        copy_layer(&upper, &merged).unwrap();

        let etc = fs::symlink_metadata(merged.join("etc")).unwrap();
        assert!(etc.is_dir(), "etc stayed a link");
        assert_eq!(
            fs::read_to_string(merged.join("etc/passwd")).unwrap(),
            "root:x:0:0\n"
        );
        let lib = fs::symlink_metadata(merged.join("lib")).unwrap();
        assert!(lib.file_type().is_symlink(), "lib was not copied as a link");
        assert_eq!(fs::read_link(merged.join("lib")).unwrap(), outside);
        let names: Vec<_> = fs::read_dir(&outside)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["secret"], "something was written outside");

        // A layer whose top is a link is refused, not followed.
        let link = tmp.path().join("link");
        symlink(&outside, &link).unwrap();
        assert!(copy_layer(&link, &merged).is_err());
    }
}
