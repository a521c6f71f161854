//! Files of an image as its layers merge them, read straight from the layer
//! blobs, without unpacking: what a runtime would show at a path. The
//! topmost layer that says anything about the path decides: it has the file,
//! or it hides it (a `.wh.` whiteout of the file or of a directory above
//! it, an opaque `.wh..wh..opq` marker in a directory above it, or a
//! non-directory where a directory above it would be).
//!
//! kiln reads the parent image's account files (etc/passwd, group...) this
//! way: a child's build starts from them (bob-core/lib/accounts.sh).

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use super::{Content, Error, Image, Layer, unpack};

/// A regular file found in a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// What one layer says about a wanted path.
enum Says {
    File(File),
    /// A hard link to another path of the same layer.
    Link(String),
    /// Hidden, or something that is not a regular file.
    Absent,
}

impl Image {
    /// The regular files at `paths` (relative, like `etc/passwd`) in the
    /// merged image; a path no layer has, or one hidden, is left out.
    pub fn merged_files(&self, paths: &[&str]) -> Result<HashMap<String, File>, Error> {
        let mut found = HashMap::new();
        let mut open: Vec<&str> = paths.to_vec();
        for layer in self.layers.iter().rev() {
            if open.is_empty() {
                break;
            }
            let read = |source| Error::Read {
                diff_id: layer.diff_id.clone(),
                source,
            };
            for (path, what) in scan(layer, &open).map_err(read)? {
                open.retain(|p| *p != path);
                let file = match what {
                    Says::File(f) => Some(f),
                    Says::Link(target) => linked(layer, &target).map_err(read)?,
                    Says::Absent => None,
                };
                if let Some(file) = file {
                    found.insert(path, file);
                }
            }
        }
        Ok(found)
    }
}

/// The entry's path as the layer means it: no `./`, `/` or trailing `/`.
fn clean(path: &Path) -> String {
    let text = path.to_string_lossy();
    let text = text.trim_start_matches("./").trim_start_matches('/');
    text.trim_end_matches('/').to_string()
}

/// `dir` is a proper ancestor directory of `path`.
fn above(dir: &str, path: &str) -> bool {
    dir.is_empty() || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// What `layer` says about each of `wanted` it mentions.
fn scan(layer: &Layer, wanted: &[&str]) -> Result<Vec<(String, Says)>, Content> {
    let mut says: Vec<(String, Says)> = Vec::new();
    let mut hidden: Vec<String> = Vec::new();
    let mut archive = tar::Archive::new(unpack::decompressed(layer)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = clean(&entry.path()?);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
        if let Some(gone) = name.strip_prefix(".wh.") {
            for w in wanted {
                let opaque = gone == ".wh..opq" && above(dir, w);
                let target = if dir.is_empty() {
                    gone.to_string()
                } else {
                    format!("{dir}/{gone}")
                };
                if opaque || *w == target || above(&target, w) {
                    hidden.push(w.to_string());
                }
            }
            continue;
        }
        let kind = entry.header().entry_type();
        for w in wanted {
            if *w == path {
                let what = if kind.is_file() {
                    let header = entry.header();
                    let (mode, uid, gid) = (header.mode()?, header.uid()?, header.gid()?);
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes)?;
                    Says::File(File {
                        bytes,
                        mode,
                        uid,
                        gid,
                    })
                } else if kind.is_hard_link() {
                    let target = entry.link_name()?.ok_or(Content::NoLinkTarget)?;
                    Says::Link(clean(&target))
                } else {
                    Says::Absent
                };
                says.push((w.to_string(), what));
            } else if !kind.is_dir() && above(&path, w) {
                says.push((w.to_string(), Says::Absent));
            }
        }
    }
    // The layer's own file wins over an opaque marker of its own dir.
    for w in hidden {
        if !says.iter().any(|(p, _)| *p == w) {
            says.push((w, Says::Absent));
        }
    }
    Ok(says)
}

/// The file a hard link of `layer` points to.
fn linked(layer: &Layer, target: &str) -> Result<Option<File>, Content> {
    Ok(scan(layer, &[target])?
        .into_iter()
        .find_map(|(_, what)| match what {
            Says::File(f) => Some(f),
            _ => None,
        }))
}
