//! tree: every write kiln makes into a tree it unpacks or copies: image
//! layers for `kiln run` and test.sh (store), the stage3 and the snapshot of
//! the base builder state, a build's config copy and its reports.
//!
//! Why one module: what lands in these trees comes from images and mirrors
//! kiln does not trust, and a tar can name any path, make a symlink and then
//! write "through" it. So nothing here joins an entry's path onto a host path
//! and hands it to `std::fs`. The tree's root is opened once, and every path
//! below it is reached from that descriptor with `openat2(RESOLVE_BENEATH |
//! RESOLVE_NO_SYMLINKS)` (or, where the kernel lacks it, a walk of
//! `O_NOFOLLOW` opens): a symlink on the way, or a path that would climb out,
//! refuses the entry and with it the whole tree. Entries are then created
//! relative to their parent's descriptor, never through a name that could
//! have changed into a link. Whiteouts act only beneath the target as well.
//!
//! On top of the resolver:
//! - [`unpack`]: a tar stream into a tree, with OCI whiteouts turned into
//!   overlay whiteouts for layers, owners and set-id bits decided by
//!   [`Owners`], and no device node ever made (the runtime gives /dev).
//! - [`copy`]: kiln's own `cp -a` for a build's config and reports.
//! - [`Staged`]: a tree made under a temporary name, locked while it is
//!   made, renamed into place when complete, and removed on failure or, if
//!   kiln was killed, by the next run.
//! - [`private_dir`]: the 0700 cache dirs that hold such trees, so no other
//!   host user reaches a set-id file or device in them.
//!
//! docs/security.md says what a hostile image or mirror can and cannot do.

mod copy;
mod dir;
mod owners;
mod staged;
mod unpack;

use std::io;
use std::path::{Path, PathBuf};

use crate::error::io_phrase;

pub use copy::copy;
pub use dir::Root;
pub use owners::Owners;
pub use staged::{Staged, remove_tree};
pub use unpack::{Options, Unpacked, unpack};

/// What can go wrong writing a tree. Each names the archive, entry or path
/// at fault; [`Error::fix`] has the fix where there is one, which
/// `error::hints` finds in any error chain that holds this error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {}", archive.display(), io_phrase(cause))]
    Read { archive: PathBuf, cause: io::Error },
    #[error("refusing {}: entry '{entry}' {why}", archive.display())]
    Unsafe {
        archive: PathBuf,
        entry: String,
        why: &'static str,
    },
    #[error("{} {op} {}", io_phrase(cause), path.display())]
    Write {
        op: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
}

impl Error {
    /// The fix, when kiln knows one: a full disk is the user's to free.
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Write { cause, .. } | Error::Read { cause, .. }
                if cause.raw_os_error() == Some(libc::ENOSPC) =>
            {
                Some(
                    "free space on that filesystem, or give kiln a cache elsewhere (KILN_CACHE_DIR); what was written so far is removed"
                        .to_string(),
                )
            }
            _ => None,
        }
    }

    fn write(op: &'static str, path: &Path, cause: io::Error) -> Error {
        Error::Write {
            op,
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// `path` as a directory only its owner can enter (created if missing):
/// the cache dirs that hold unpacked trees, whose set-id files and owners
/// are the container's business, not other host users'.
pub fn private_dir(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::write("creating", parent, e))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta =
                std::fs::symlink_metadata(path).map_err(|e| Error::write("reading", path, e))?;
            if !meta.is_dir() {
                return Err(Error::write(
                    "creating",
                    path,
                    io::Error::from_raw_os_error(libc::ENOTDIR),
                ));
            }
            if meta.permissions().mode() & 0o077 != 0 {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::write("making private", path, e))?;
            }
            Ok(())
        }
        Err(e) => Err(Error::write("creating", path, e)),
    }
}
