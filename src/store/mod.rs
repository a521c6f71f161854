//! kiln's store: image layers unpacked once, kept by diff_id under the cache
//! dir, and used read-only as overlay lower dirs by every container.
//!
//! Layers are unpacked inside kiln's user namespace, so their owners land
//! in the mapped range on the host (a lower dir owned by host root shows up
//! as 65534 in a user's namespace and cannot be written through overlay),
//! and they are kept per id mapping, since the same tar unpacked under
//! another map has other owners. The unpacking itself is kiln's safe
//! unpacker (`tree`); `layers/` is private to the cache's owner.

mod image;
mod merged;
mod unpack;

use std::path::{Path, PathBuf};

use anyhow::Context;

pub use image::{Image, Layer};
pub use merged::File;

/// The lock file `kiln run` holds shared and `kiln clean` exclusively.
pub const RUN_LOCK: &str = "run.lock";

/// The cache dir and what lives in it.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// `$KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
    pub fn open() -> anyhow::Result<Store> {
        let root = match (
            std::env::var_os("KILN_CACHE_DIR"),
            std::env::var_os("XDG_CACHE_HOME"),
        ) {
            (Some(dir), _) if !dir.is_empty() => PathBuf::from(dir),
            (_, Some(dir)) if !dir.is_empty() => PathBuf::from(dir).join("kiln"),
            _ => PathBuf::from(
                std::env::var_os("HOME").context("HOME is not set: set KILN_CACHE_DIR")?,
            )
            .join(".cache/kiln"),
        };
        std::fs::create_dir_all(&root)
            .with_context(|| format!("creating the cache dir {}", root.display()))?;
        let root = std::fs::canonicalize(&root)?;
        Ok(Store { root })
    }

    /// A store in `root` (a project's cache dir), created if missing.
    pub fn at(root: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating the cache dir {}", root.display()))?;
        Ok(Store {
            root: std::fs::canonicalize(root)?,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A shared lock on the store for as long as the file lives: `kiln
    /// clean` takes it exclusively, so it never removes the layers of a
    /// running container.
    pub fn run_lock(&self) -> anyhow::Result<std::fs::File> {
        let path = self.root.join(RUN_LOCK);
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        file.lock_shared()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(file)
    }

    /// Where containers keep their per-run state, upper and work dirs.
    pub fn scratch(&self) -> PathBuf {
        self.root.join("run")
    }

    /// The unpacked dir of `layer` under the id mapping `key`, unpacking it
    /// first if this is its first use (in the namespace of that mapping:
    /// owners follow `tree::Owners`). Returns the dir and whether it was
    /// unpacked now.
    pub fn layer(&self, layer: &Layer, key: &str) -> anyhow::Result<(PathBuf, bool)> {
        let hex = layer
            .diff_id
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .with_context(|| format!("diff_id `{}` is not a sha256 digest", layer.diff_id))?;
        let layers = self.root.join("layers");
        let dir = layers.join(key).join(hex);
        if dir.is_dir() {
            return Ok((dir, false));
        }
        crate::tree::private_dir(&layers)?;
        std::fs::create_dir_all(layers.join(key))
            .with_context(|| format!("creating {}", layers.join(key).display()))?;
        unpack::unpack(layer, &dir)?;
        Ok((dir, true))
    }
}

/// `path` created and locked exclusively for as long as the file lives, or
/// the error `busy` makes when another process holds it: kiln's cache locks
/// (build.lock, run.lock) never wait.
pub fn try_lock(
    path: &Path,
    busy: impl FnOnce() -> anyhow::Error,
) -> anyhow::Result<std::fs::File> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(busy()),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display())))
        }
    }
}
