//! kiln's store: image layers unpacked once, kept by diff_id under the cache
//! dir, and used read-only as overlay lower dirs by every container.
//!
//! Layers are unpacked inside kiln's user namespace, so their owners land
//! in the mapped range on the host (a lower dir owned by host root shows up
//! as 65534 in a user's namespace and cannot be written through overlay),
//! and they are kept per id mapping, since the same tar unpacked under
//! another map has other owners. The unpacking itself is kiln's safe
//! unpacker (`tree`); the dir is private to the cache's owner (`cache`).

mod image;
mod merged;
mod unpack;

use std::path::PathBuf;

use anyhow::Context;

use crate::cache::Cache;

pub use image::{Image, Layer};

/// The image layers unpacked in the cache, by id mapping and diff_id.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(cache: &Cache) -> anyhow::Result<Store> {
        Ok(Store {
            root: cache.unpacked()?,
        })
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
        let mapped = self.root.join(key);
        let dir = mapped.join(hex);
        if dir.is_dir() {
            return Ok((dir, false));
        }
        std::fs::create_dir_all(&mapped)
            .with_context(|| format!("creating {}", mapped.display()))?;
        unpack::unpack(layer, &dir)?;
        Ok((dir, true))
    }
}
