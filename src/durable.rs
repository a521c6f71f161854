//! durable: the one owner of writes that must survive a crash, for every
//! file kiln keeps (layout files and blobs, builder states, the download
//! cache, kiln.lock and keys).
//!
//! A file is only durable once its bytes are flushed (`fsync` of the file)
//! and its name is (`fsync` of the directory that holds it); a rename is
//! only durable once its directory is flushed. Skipping either leaves a
//! file named but empty after a power cut, which a later run would take
//! for a complete one. Every failure is a [`WriteError`] naming the path,
//! so a full disk reads the same whichever of these met it.

use std::fs::{self, File};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::WriteError;

/// Write `bytes` to `path` (created, or truncated) and flush them; the
/// caller names the file durably ([`rename`] or [`sync_dir`]).
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(path)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|e| WriteError::new(path, e))
}

/// Replace `path` so that readers see the old content or the new, never a
/// part: a temporary file beside it, flushed, renamed over it, and the
/// directory flushed. A failure leaves no temporary file.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = parent(path);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.kiln-{}.tmp", std::process::id()));
    let written = write(&tmp, bytes).and_then(|()| rename(&tmp, path));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// Rename `from` to `to` and flush `to`'s directory.
pub fn rename(from: &Path, to: &Path) -> Result<(), WriteError> {
    fs::rename(from, to).map_err(|e| WriteError::new(to, e))?;
    sync_dir(parent(to))
}

/// Flush a directory, so that the names made or renamed in it survive.
pub fn sync_dir(dir: &Path) -> Result<(), WriteError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WriteError::new(dir, e))
}

/// Create `dir` (and its parents) if it is missing, durably.
pub fn create_dir(dir: &Path) -> Result<(), WriteError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))?;
    sync_dir(parent(dir))
}

/// Flush the whole file system that holds `path` (syncfs(2)): one call for
/// a tree of many files, such as a builder state's new layer.
pub fn sync_filesystem(path: &Path) -> Result<(), WriteError> {
    let dir = File::open(path).map_err(|e| WriteError::new(path, e))?;
    // SAFETY: syncfs on an open fd.
    if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
        return Err(WriteError::new(path, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// The directory a path's name is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_leaves_the_new_content_and_no_temporary_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("kiln.lock");
        replace(&path, b"old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_failure_names_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("missing/state.json");
        let err = write(&path, b"x").unwrap_err();
        assert_eq!(err.path, path);
        assert_eq!(
            err.to_string(),
            format!("no such file or directory writing {}", path.display())
        );
    }
}
