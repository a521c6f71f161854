//! The resolver: a tree's root opened once, and every directory below it
//! reached from that descriptor without following a symlink. With openat2
//! the kernel does it in one call (RESOLVE_BENEATH refuses anything that
//! climbs out, RESOLVE_NO_SYMLINKS any link on the way, the last component
//! included); where openat2 is missing (kernels before 5.6, or a seccomp
//! filter that refuses it) a walk of `openat(O_NOFOLLOW | O_DIRECTORY)`, one
//! component at a time, does the same. Entries are then made, changed and
//! removed relative to their parent's descriptor.
//!
//! Nothing else writes into the tree while kiln does (it is kiln's own
//! temporary dir), so the only adversary is the content itself: a path that
//! names `..`, or a link made by an earlier entry.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstatat, mkdirat};

use super::{Error, Owners};

/// Why an entry cannot be made; [`super::unpack`] names the entry.
#[derive(Debug)]
pub(super) enum Fault {
    /// The path leaves the tree or passes a symlink: the tree is refused.
    Refused(&'static str),
    /// The host said no: disk full, permissions, ...
    Io {
        op: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
}

impl Fault {
    pub(super) fn into_error(self, archive: &Path, entry: &str) -> Error {
        match self {
            Fault::Refused(why) => Error::Unsafe {
                archive: archive.to_path_buf(),
                entry: entry.to_string(),
                why,
            },
            Fault::Io { op, path, cause } => Error::Write { op, path, cause },
        }
    }
}

pub(super) type Result<T, E = Fault> = std::result::Result<T, E>;

pub(super) const THROUGH_LINK: &str = "would be written through a symlink in the archive";
const NOT_A_DIR: &str = "has a parent that is not a directory";

/// A tree kiln writes into, by its root's descriptor.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

/// A directory of the tree, opened, with its path for messages.
pub(super) struct Dir {
    pub fd: OwnedFd,
    pub path: PathBuf,
}

impl Root {
    /// Open the existing directory `path` as a tree's root. `path` itself is
    /// the caller's (it may pass links); only what lies below is resolved
    /// safely.
    pub fn open(path: &Path) -> Result<Root, Error> {
        let fd = openat(
            None,
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::write("opening", path, e.into()))?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// The directory `rel` below the root as a root of its own, made where
    /// missing: the snapshot's place in the stage3 (var/db/repos), which the
    /// stage3 must not have made a link.
    pub fn subdir(&self, rel: &Path) -> Result<Root, Error> {
        let shown = rel.display().to_string();
        let dir = self
            .dir(rel, true)
            .map_err(|f| f.into_error(&self.path, &shown))?;
        Ok(Root {
            fd: dir.fd,
            path: dir.path,
        })
    }

    /// The directory `rel` (relative, no `..`), made where missing when
    /// `create`. A directory made here has no entry of its own (yet): it
    /// gets 0755 whatever the umask, as tar gives it, so that the
    /// container's users can pass it.
    pub(super) fn dir(&self, rel: &Path, create: bool) -> Result<Dir> {
        let path = self.path.join(rel);
        if rel.as_os_str().is_empty() {
            let fd = self.fd.try_clone().map_err(|cause| Fault::Io {
                op: "opening",
                path: path.clone(),
                cause,
            })?;
            return Ok(Dir { fd, path });
        }
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        match openat2(self.fd.as_raw_fd(), rel, how) {
            // SAFETY: openat2 returned a new descriptor that nothing else owns.
            Ok(fd) => Ok(Dir {
                fd: unsafe { OwnedFd::from_raw_fd(fd) },
                path,
            }),
            // Missing parts to make, or a link or file on the way to name:
            // the walk does both, one component at a time. ENOSYS/EPERM:
            // no openat2 here.
            Err(
                Errno::ENOENT
                | Errno::ELOOP
                | Errno::EXDEV
                | Errno::ENOTDIR
                | Errno::ENOSYS
                | Errno::EPERM
                | Errno::EAGAIN
                | Errno::E2BIG,
            ) => self.walk(rel, create),
            Err(e) => Err(Fault::Io {
                op: "opening",
                path,
                cause: e.into(),
            }),
        }
    }

    /// The resolver without openat2: each component opened from the one
    /// before with `O_NOFOLLOW | O_DIRECTORY`.
    pub(super) fn walk(&self, rel: &Path, create: bool) -> Result<Dir> {
        let mut at = self.fd.try_clone().map_err(|cause| Fault::Io {
            op: "opening",
            path: self.path.clone(),
            cause,
        })?;
        let mut path = self.path.clone();
        for part in rel.components() {
            let Component::Normal(name) = part else {
                return Err(Fault::Refused("climbs out of the root with '..'"));
            };
            path.push(name);
            let io = |op, cause: io::Error| Fault::Io {
                op,
                path: path.clone(),
                cause,
            };
            at = match open_dir(&at, Path::new(name)) {
                Ok(fd) => fd,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    match mkdirat(Some(at.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(io("creating", e.into())),
                    }
                    let made = open_dir(&at, Path::new(name)).map_err(|e| io("opening", e))?;
                    nix::sys::stat::fchmod(made.as_raw_fd(), Mode::from_bits_truncate(0o755))
                        .map_err(|e| io("setting the mode of", e.into()))?;
                    made
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    return Err(match stat_at(&at, name) {
                        Some(st) if kind(&st) == SFlag::S_IFLNK => Fault::Refused(THROUGH_LINK),
                        _ => Fault::Refused(NOT_A_DIR),
                    });
                }
                Err(e) => return Err(io("opening", e)),
            };
        }
        Ok(Dir { fd: at, path })
    }
}

impl Dir {
    pub(super) fn io(&self, op: &'static str, name: &OsStr, cause: impl Into<io::Error>) -> Fault {
        Fault::Io {
            op,
            path: self.path.join(name),
            cause: cause.into(),
        }
    }

    /// What is at `name` now, links not followed.
    pub(super) fn stat(&self, name: &OsStr) -> Option<FileStat> {
        stat_at(&self.fd, name)
    }

    /// Make room for a new entry `name`: a file, link or empty directory of
    /// that name goes; a directory with content is an error (as tar has it).
    pub(super) fn clear(&self, name: &OsStr) -> Result<()> {
        let Some(st) = self.stat(name) else {
            return Ok(());
        };
        let flag = if kind(&st) == SFlag::S_IFDIR {
            nix::unistd::UnlinkatFlags::RemoveDir
        } else {
            nix::unistd::UnlinkatFlags::NoRemoveDir
        };
        nix::unistd::unlinkat(Some(self.fd.as_raw_fd()), name, flag)
            .map_err(|e| self.io("replacing", name, e))
    }

    /// The directory `name` of this one, opened without following a link.
    pub(super) fn child(&self, name: &OsStr) -> Result<Dir> {
        let path = self.path.join(name);
        match open_dir(&self.fd, Path::new(name)) {
            Ok(fd) => Ok(Dir { fd, path }),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                Err(Fault::Refused(NOT_A_DIR))
            }
            Err(cause) => Err(Fault::Io {
                op: "opening",
                path,
                cause,
            }),
        }
    }

    /// A new regular file `name`, open for writing; never through a link.
    pub(super) fn create_file(&self, name: &OsStr) -> Result<File> {
        let fd = openat(
            Some(self.fd.as_raw_fd()),
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| self.io("creating", name, e))?;
        // SAFETY: openat returned a new descriptor that nothing else owns.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// Set the owner of `name` (not following a link).
    pub(super) fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> Result<(), Errno> {
        nix::unistd::fchownat(
            Some(self.fd.as_raw_fd()),
            name,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::unistd::FchownatFlags::AT_SYMLINK_NOFOLLOW,
        )
    }

    /// Set the mode of `name`, which kiln just made and is not a link.
    pub(super) fn chmod(&self, name: &OsStr, mode: u32) -> Result<()> {
        nix::sys::stat::fchmodat(
            Some(self.fd.as_raw_fd()),
            name,
            Mode::from_bits_truncate(mode),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(|e| self.io("setting the mode of", name, e))
    }

    /// Set atime and mtime of `name`, a link itself if it is one.
    pub(super) fn set_mtime(&self, name: &OsStr, mtime: i64) {
        let t = nix::sys::time::TimeSpec::new(mtime, 0);
        let _ = nix::sys::stat::utimensat(
            Some(self.fd.as_raw_fd()),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
}

/// An entry's owner, mode and time as its source gives them.
#[derive(Debug, Clone, Copy)]
pub(super) struct Meta {
    pub uid: u64,
    pub gid: u64,
    pub mode: u32,
    pub mtime: i64,
}

impl Dir {
    /// Give `name` (`fd`: the entry itself, opened) the owner [`Owners`]
    /// allows for `meta`. Returns the mode it may have (set-id bits dropped
    /// where the owner is not the entry's own) and whether the owner changed.
    pub(super) fn own(
        &self,
        name: &OsStr,
        fd: Option<BorrowedFd>,
        owners: &Owners,
        meta: &Meta,
    ) -> (u32, bool) {
        let d = owners.decide(meta.uid, meta.gid, meta.mode);
        let set = match fd {
            Some(fd) => nix::unistd::fchown(
                fd.as_raw_fd(),
                Some(nix::unistd::Uid::from_raw(d.uid)),
                Some(nix::unistd::Gid::from_raw(d.gid)),
            ),
            None => self.chown(name, d.uid, d.gid),
        };
        match set {
            Ok(()) => (d.mode, d.changed),
            Err(_) => (d.mode & !(libc::S_ISUID | libc::S_ISGID), true),
        }
    }

    /// Owner, then mode (a chown clears set-id bits), then mtime, of the
    /// entry `name` kiln just made (`fd`: opened; `link`: a symlink, which
    /// has no mode). Returns whether the owner is not the entry's own.
    pub(super) fn settle(
        &self,
        name: &OsStr,
        fd: Option<BorrowedFd>,
        link: bool,
        owners: &Owners,
        meta: &Meta,
    ) -> Result<bool> {
        let (mode, changed) = self.own(name, fd, owners, meta);
        match fd {
            Some(fd) => set_mode_and_time(fd, mode, meta.mtime)
                .map_err(|e| self.io("setting the mode of", name, e))?,
            None => {
                if !link {
                    self.chmod(name, mode)?;
                }
                self.set_mtime(name, meta.mtime);
            }
        }
        Ok(changed)
    }
}

/// fchmod and futimens of an open entry.
pub(super) fn set_mode_and_time(fd: BorrowedFd, mode: u32, mtime: i64) -> io::Result<()> {
    nix::sys::stat::fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    // times are best effort, as tar has them
    let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &t, &t);
    Ok(())
}

/// Open the directory `path` of `at`, refusing a link.
fn open_dir(at: &OwnedFd, path: &Path) -> io::Result<OwnedFd> {
    let fd = openat(
        Some(at.as_raw_fd()),
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW,
        Mode::empty(),
    )?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn stat_at(at: &OwnedFd, name: &OsStr) -> Option<FileStat> {
    fstatat(Some(at.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok()
}

/// The file type bits of a stat.
pub(super) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT)
}
