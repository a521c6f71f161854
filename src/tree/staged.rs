//! Trees made under a temporary name beside their final one, so that a tree
//! appears complete or not at all. The temporary dir is locked (`flock` on
//! the directory itself) for as long as its maker lives: the next maker in
//! the same dir removes those whose lock is free, so a kiln killed halfway
//! leaves nothing that blocks or piles up, and two kilns never remove each
//! other's work.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::Error;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What names a temporary tree: `.NAME.tmp-PID-N`.
const MARK: &str = ".tmp-";

/// A tree being made for `dest`. Dropped without [`Staged::commit`], it is
/// removed.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    dest: PathBuf,
    _lock: File,
    done: bool,
}

impl Staged {
    /// A new empty dir beside `dest`, whose parent must exist. The
    /// temporary trees of dead makers in that parent go first.
    pub fn new(dest: &Path) -> Result<Staged, Error> {
        let parent = dest.parent().unwrap_or(Path::new("."));
        let name = dest.file_name().unwrap_or_default().to_string_lossy();
        clean_stale(parent);
        loop {
            let path = parent.join(format!(
                ".{name}{MARK}{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::create_dir(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(Error::write("creating", &path, e)),
            }
            let lock = File::open(&path).map_err(|e| Error::write("opening", &path, e))?;
            // Another maker's cleanup may take it between mkdir and lock.
            if lock.try_lock().is_err()
                || fs::symlink_metadata(&path).map(|m| m.ino()).ok()
                    != lock.metadata().map(|m| m.ino()).ok()
            {
                continue;
            }
            return Ok(Staged {
                path,
                dest: dest.to_path_buf(),
                _lock: lock,
                done: false,
            });
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Give the tree its final name. `false`: another process put one there
    /// first, which is kept (the same content, by the name's digest).
    pub fn commit(mut self) -> Result<bool, Error> {
        match fs::rename(&self.path, &self.dest) {
            Ok(()) => {
                self.done = true;
                Ok(true)
            }
            Err(_) if self.dest.is_dir() => Ok(false),
            Err(e) => Err(Error::write("renaming into place", &self.dest, e)),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = remove_tree(&self.path);
        }
    }
}

/// Remove the temporary trees in `dir` whose makers are gone.
fn clean_stale(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') || !name.contains(MARK) {
            continue;
        }
        let path = entry.path();
        if let Ok(lock) = File::open(&path)
            && lock.try_lock().is_ok()
        {
            let _ = remove_tree(&path);
        }
    }
}

/// `rm -rf` of a tree kiln made (symlinks in it are removed, never
/// followed), which also empties directories without write or search
/// permission (overlay's work dir, a read-only directory of an image).
pub fn remove_tree(path: &Path) -> Result<(), Error> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path).map_err(|e| Error::write("removing", path, e))
        }
    }
}

fn make_writable(path: &Path) {
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_dir()
    {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(rd) = fs::read_dir(path) {
            for e in rd.flatten() {
                make_writable(&e.path());
            }
        }
    }
}
