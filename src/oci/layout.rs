//! An OCI image layout on disk: creating it atomically, locking it against
//! other writers, reading refs, and replacing `index.json` so a crash leaves
//! the old index or the new one, never half of one.
//!
//! Temporary files live in `.kiln-tmp/` at the layout's root, each locked by
//! the process writing it; a later writer removes those whose lock is free
//! (their writer died). The layout lock is a `flock` on `oci-layout`, which
//! is never replaced once the layout exists.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};

use super::blob::{Blob, BlobWriter};
use super::{Error, IoContext, REF_NAME, Result, json, media, parse_json};
use crate::durable::{self, sync_dir};

const LAYOUT_FILE: &str = "oci-layout";
const LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
const TMP_DIR: &str = ".kiln-tmp";

/// An open layout.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

/// Held while `index.json` is read, changed and replaced.
pub struct LayoutLock {
    _file: File,
}

/// One named image of a layout.
#[derive(Debug, Clone)]
pub struct RefInfo {
    pub name: String,
    pub manifest: Descriptor,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl Layout {
    /// Open an existing layout; anything else is [`Error::NotALayout`].
    pub fn open(root: &Path) -> Result<Layout> {
        let layout_file = root.join(LAYOUT_FILE);
        match std::fs::read(&layout_file) {
            Ok(content) => {
                let v: serde_json::Value =
                    serde_json::from_slice(&content).map_err(|e| Error::NotALayout {
                        path: root.to_path_buf(),
                        reason: format!("{LAYOUT_FILE} is not JSON: {e}"),
                    })?;
                if v.get("imageLayoutVersion")
                    .and_then(|v| v.as_str())
                    .is_none()
                {
                    return Err(Error::NotALayout {
                        path: root.to_path_buf(),
                        reason: format!("{LAYOUT_FILE} has no imageLayoutVersion"),
                    });
                }
                Ok(Layout {
                    root: root.to_path_buf(),
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound || e.kind() == ErrorKind::NotADirectory => {
                Err(Error::NotALayout {
                    path: root.to_path_buf(),
                    reason: format!("it has no {LAYOUT_FILE} file"),
                })
            }
            Err(e) => Err(Error::Io {
                what: format!("reading {}", layout_file.display()),
                source: e,
            }),
        }
    }

    /// Open a layout, creating it if `root` does not exist or is an empty
    /// directory. The new layout is assembled in a sibling directory and
    /// renamed into place, so nobody sees it half made.
    pub fn open_or_create(root: &Path) -> Result<Layout> {
        let empty = match std::fs::read_dir(root) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == ErrorKind::NotFound => true,
            Err(e) => {
                return Err(Error::Io {
                    what: format!("reading {}", root.display()),
                    source: e,
                });
            }
        };
        if !empty {
            return Layout::open(root);
        }
        let name = root.file_name().ok_or_else(|| Error::NotALayout {
            path: root.to_path_buf(),
            reason: "it has no directory name".into(),
        })?;
        let parent = match root.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .io_ctx(|| format!("creating directory {}", parent.display()))?;
        let staging = parent.join(format!(
            ".{}.kiln-new-{}",
            name.to_string_lossy(),
            unique_suffix()
        ));
        let staged = (|| -> Result<()> {
            std::fs::create_dir_all(staging.join("blobs/sha256")).write_ctx(&staging)?;
            let index = json::to_canonical(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": media::INDEX,
                "manifests": [],
            }));
            durable::write(&staging.join("index.json"), &index)?;
            durable::write(&staging.join(LAYOUT_FILE), LAYOUT_CONTENT)?;
            sync_dir(&staging.join("blobs/sha256"))?;
            sync_dir(&staging.join("blobs"))?;
            Ok(sync_dir(&staging)?)
        })();
        if let Err(e) = staged {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        match std::fs::rename(&staging, root) {
            Ok(()) => sync_dir(&parent)?,
            // Another writer created it first: use theirs.
            Err(_) if root.join(LAYOUT_FILE).exists() => {
                let _ = std::fs::remove_dir_all(&staging);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                return Err(Error::Io {
                    what: format!("creating layout {}", root.display()),
                    source: e,
                });
            }
        }
        Layout::open(root)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Wait for and take the layout's writer lock.
    pub fn lock(&self) -> Result<LayoutLock> {
        let path = self.root.join(LAYOUT_FILE);
        let file = File::open(&path).io_ctx(|| format!("opening {}", path.display()))?;
        file.lock()
            .io_ctx(|| format!("locking {}", path.display()))?;
        Ok(LayoutLock { _file: file })
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    /// The content of blob `digest`, checked against its name.
    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        super::verify::check(digest, &path, std::fs::read(&path))
    }

    pub fn read_index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).io_ctx(|| format!("reading {}", path.display()))?;
        parse_json(&path, "an OCI image index", &bytes)
    }

    pub fn read_manifest(&self, digest: &str) -> Result<ImageManifest> {
        let bytes = self.read_blob(digest)?;
        parse_json(&self.blob_path(digest), "an OCI image manifest", &bytes)
    }

    /// Every named image, sorted by name.
    pub fn refs(&self) -> Result<Vec<RefInfo>> {
        let mut refs: Vec<RefInfo> = self
            .read_index()?
            .manifests()
            .iter()
            .filter_map(|d| {
                let name = d.annotations().as_ref()?.get(REF_NAME)?.clone();
                Some(RefInfo {
                    name,
                    manifest: d.clone(),
                })
            })
            .collect();
        refs.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(refs)
    }

    /// The manifest descriptor of `name`, or an error listing the refs there are.
    pub fn resolve(&self, name: &str) -> Result<Descriptor> {
        let refs = self.refs()?;
        refs.iter()
            .find(|r| r.name == name)
            .map(|r| r.manifest.clone())
            .ok_or_else(|| Error::UnknownRef {
                name: name.to_string(),
                layout: self.root.clone(),
                refs: refs.into_iter().map(|r| r.name).collect(),
            })
    }

    /// A temporary file in the layout, locked so that cleanup leaves it alone.
    fn temp_file(&self) -> Result<(File, PathBuf)> {
        let dir = self.root.join(TMP_DIR);
        std::fs::create_dir_all(&dir).io_ctx(|| format!("creating {}", dir.display()))?;
        loop {
            let path = dir.join(unique_suffix());
            let file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .write_ctx(&path)?;
            file.lock()
                .io_ctx(|| format!("locking {}", path.display()))?;
            // A cleanup may have removed it between creation and lock.
            let ours = file.metadata().ok().map(|m| m.ino());
            if std::fs::metadata(&path).ok().map(|m| m.ino()) == ours {
                return Ok((file, path));
            }
        }
    }

    /// Remove temporary files left by writers that died.
    pub fn clean_stale(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join(TMP_DIR)) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Ok(file) = File::open(&path)
                && file.try_lock().is_ok()
            {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let (file, tmp) = self.temp_file()?;
        Ok(BlobWriter::new(file, tmp, self.root.clone()))
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<Blob> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes).io_ctx(|| "writing blob".into())?;
        w.finish()
    }

    /// Point `name` at `manifest` in `index.json`, replacing any image of
    /// that name, and list the artifacts `attached` to it (artifact.rs) in
    /// place of those it had. Artifacts whose subject no ref names any more
    /// go. The caller holds the lock, so no other ref is lost.
    pub fn set_ref(
        &self,
        _lock: &LayoutLock,
        name: &str,
        manifest: &Descriptor,
        attached: &[Descriptor],
    ) -> Result<()> {
        let index = self.read_index()?;
        let mut by_name: BTreeMap<String, Descriptor> = BTreeMap::new();
        let mut unnamed = Vec::new();
        for d in index.manifests() {
            match d.annotations().as_ref().and_then(|a| a.get(REF_NAME)) {
                Some(n) => {
                    by_name.insert(n.clone(), d.clone());
                }
                None => unnamed.push(d.clone()),
            }
        }
        let mut entry = manifest.clone();
        entry.set_annotations(Some([(REF_NAME.to_string(), name.to_string())].into()));
        by_name.insert(name.to_string(), entry);
        let named: BTreeSet<String> = by_name.values().map(|d| d.digest().to_string()).collect();
        // An artifact stays while a ref names its subject, unless new ones
        // of the same subject replace it.
        let replaced =
            |subject: &str| !attached.is_empty() && subject == manifest.digest().as_ref();
        unnamed.retain(|d| match super::artifact::subject_of(self, d) {
            Some(subject) => named.contains(&subject) && !replaced(&subject),
            None => true,
        });
        unnamed.extend(attached.iter().cloned());
        let mut value = serde_json::to_value(&index).map_err(|e| Error::Invalid {
            what: "index.json".into(),
            message: e.to_string(),
        })?;
        let manifests: Vec<Descriptor> = unnamed.into_iter().chain(by_name.into_values()).collect();
        value["manifests"] = serde_json::to_value(manifests).expect("descriptors serialise");
        value["mediaType"] = media::INDEX.into();
        let (mut file, tmp) = self.temp_file()?;
        let dest = self.root.join("index.json");
        let written = file
            .write_all(&json::to_canonical(&value))
            .and_then(|()| file.sync_all())
            .write_ctx(&tmp)
            .and_then(|()| {
                std::fs::rename(&tmp, &dest).io_ctx(|| format!("replacing {}", dest.display()))
            });
        if written.is_err() {
            // The index is as it was; its temporary copy goes now, not at
            // the next writer's cleanup, so a full disk gets its space back.
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        Ok(sync_dir(&self.root)?)
    }
}
