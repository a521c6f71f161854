//! kiln's own `cp -a`, for the trees a build copies: the image's files into
//! its scratch dir, and build-root.sh's reports into the builder state. The
//! reports are written by the build container, so neither side is followed
//! through a link: the source is read with `O_NOFOLLOW` from its parent's
//! descriptor, symlinks are copied as symlinks, and the copy is made in a
//! new directory through the resolver. Directories, regular files and
//! symlinks are copied with their modes and mtimes, owners by [`Owners`];
//! anything else (a device, a fifo, a socket) is left out: neither the
//! config nor the reports have a use for one.

use std::ffi::OsStr;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat};

use super::dir::{Dir, Fault, Meta, kind};
use super::unpack::copy_data;
use super::{Error, Owners, Root};

/// Copy the directory `from` to `to`, which must not exist yet.
pub fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    let src = open(None, from, OFlag::O_DIRECTORY).map_err(|e| Error::Read {
        archive: from.to_path_buf(),
        cause: e.into(),
    })?;
    std::fs::create_dir(to).map_err(|e| Error::write("creating", to, e))?;
    let root = Root::open(to)?;
    let owners = Owners::current();
    let top = root
        .dir(Path::new(""), false)
        .map_err(|f| f.into_error(from, ""))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut copier = Copier {
        owners: &owners,
        buf: &mut buf,
        from,
    };
    copier.dir(&src, &top)?;
    let st = fstat(src.as_raw_fd()).map_err(|e| Error::Read {
        archive: from.to_path_buf(),
        cause: e.into(),
    })?;
    let (mode, _) = top.own(OsStr::new("."), Some(top.fd.as_fd()), &owners, &meta(&st));
    super::dir::set_mode_and_time(top.fd.as_fd(), mode, st.st_mtime)
        .map_err(|e| Error::write("setting the mode of", to, e))
}

struct Copier<'a> {
    owners: &'a Owners,
    buf: &'a mut [u8],
    from: &'a Path,
}

impl Copier<'_> {
    /// Copy what is in `src` into `dst`.
    fn dir(&mut self, src: &OwnedFd, dst: &Dir) -> Result<(), Error> {
        let read = |e: nix::Error| Error::Read {
            archive: self.from.to_path_buf(),
            cause: e.into(),
        };
        let list = nix::dir::Dir::from_fd(
            src.try_clone()
                .map(std::os::fd::IntoRawFd::into_raw_fd)
                .map_err(|e| read(nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?,
        )
        .map_err(read)?;
        let mut names = Vec::new();
        for entry in list {
            let entry = entry.map_err(read)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_owned());
            }
        }
        names.sort();
        for name in names {
            let Ok(st) = fstatat(
                Some(src.as_raw_fd()),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) else {
                continue;
            };
            let fault = |f: Fault| f.into_error(self.from, &name.to_string_lossy());
            let meta = meta(&st);
            match kind(&st) {
                SFlag::S_IFDIR => {
                    mkdirat(
                        Some(dst.fd.as_raw_fd()),
                        name.as_os_str(),
                        Mode::from_bits_truncate(0o700),
                    )
                    .map_err(|e| fault(dst.io("creating", &name, e)))?;
                    let inner =
                        open(Some(src), Path::new(&name), OFlag::O_DIRECTORY).map_err(read)?;
                    let child = dst.child(&name).map_err(fault)?;
                    self.dir(&inner, &child)?;
                    dst.settle(&name, Some(child.fd.as_fd()), false, self.owners, &meta)
                        .map_err(fault)?;
                }
                SFlag::S_IFREG => {
                    let fd = open(Some(src), Path::new(&name), OFlag::empty()).map_err(read)?;
                    let mut input = File::from(fd);
                    let mut out = dst.create_file(&name).map_err(fault)?;
                    copy_data(&mut input, &mut out, self.buf)
                        .map_err(|e| e.into_error(self.from, dst.path.join(&name)))?;
                    dst.settle(&name, Some(out.as_fd()), false, self.owners, &meta)
                        .map_err(fault)?;
                }
                SFlag::S_IFLNK => {
                    let target =
                        readlinkat(Some(src.as_raw_fd()), name.as_os_str()).map_err(read)?;
                    nix::unistd::symlinkat(
                        target.as_os_str(),
                        Some(dst.fd.as_raw_fd()),
                        name.as_os_str(),
                    )
                    .map_err(|e| fault(dst.io("creating", &name, e)))?;
                    dst.settle(&name, None, true, self.owners, &meta)
                        .map_err(fault)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Open `path` (of `at`) read-only, refusing a link below the top.
fn open(at: Option<&OwnedFd>, path: &Path, extra: OFlag) -> nix::Result<OwnedFd> {
    let nofollow = if at.is_some() {
        OFlag::O_NOFOLLOW
    } else {
        OFlag::empty()
    };
    let fd = openat(
        at.map(|f| f.as_raw_fd()),
        path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | nofollow | extra,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn meta(st: &FileStat) -> Meta {
    Meta {
        uid: u64::from(st.st_uid),
        gid: u64::from(st.st_gid),
        mode: st.st_mode & 0o7777,
        mtime: st.st_mtime,
    }
}
