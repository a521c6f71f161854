//! Builder states: the build containers images are built in, kept in
//! kiln's cache as stacks of unpacked layers that overlayfs mounts as-is.
//!
//! The base state is the stage3 with the portage snapshot, unpacked once.
//! Every build adds the container's upper dir as one more layer: the state
//! `bob-<ns>-<image>` after an image, `builder-<ns>-<name>` after a builder,
//! so children build where their parent's USE flags, keywords and build
//! dependencies are (gentoo-bb). Upper dirs keep overlayfs' whiteouts, so a
//! stack of them is again a valid set of lower dirs. A state records the
//! input digest of the build that made it; nothing else names it.
//!
//! Layout under the cache dir:
//!   states/<name>/state.json   {"digest": ..., "layers": [bottom first]}
//!   states/<name>/out/         what build-root.sh reported (package.installed…)
//!   layers/<id>/               one unpacked layer

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::inputs::Inputs;
use super::plan;
use crate::layouts::BuildContainer;
use crate::printer::Printer;
use crate::tree::{self, Root, Staged};

pub use crate::tree::remove_tree;

/// One builder state.
#[derive(Debug, Clone)]
pub struct State {
    pub name: String,
    pub digest: String,
    /// Layer dirs, bottom first.
    pub layers: Vec<PathBuf>,
    /// build-root.sh's reports of the build that made the state.
    pub out: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    digest: String,
    layers: Vec<String>,
}

pub struct Store {
    root: PathBuf,
    _lock: fs::File,
}

pub fn image_state(id: &str) -> String {
    format!("bob-{}", id.replace('/', "-"))
}

pub fn builder_state(id: &str) -> String {
    format!("builder-{}", id.replace('/', "-"))
}

impl Store {
    /// Opens the store and takes its lock for as long as the store lives:
    /// two builds sharing a cache would move each other's layers.
    pub fn open(cache: &Path) -> anyhow::Result<Store> {
        // Private: the trees in them keep their set-id files and owners.
        for dir in ["states", "layers"] {
            tree::private_dir(&cache.join(dir)).map_err(tree::Error::hinted)?;
        }
        let lock = crate::store::try_lock(&cache.join("build.lock"), || {
            crate::error::hinted(
                format!("another kiln build is using the cache {}", cache.display()),
                "wait for it to finish, or give this build its own cache (KILN_CACHE_DIR)",
            )
        })?;
        Ok(Store {
            root: cache.to_path_buf(),
            _lock: lock,
        })
    }

    /// Every state's name and the ids of the layers it stands on, by name.
    pub fn states(&self) -> Vec<(String, Vec<String>)> {
        let Ok(entries) = fs::read_dir(self.root.join("states")) else {
            return Vec::new();
        };
        let mut states: Vec<(String, Vec<String>)> = entries
            .flatten()
            .filter_map(|e| {
                let text = fs::read_to_string(e.path().join("state.json")).ok()?;
                let file: StateFile = serde_json::from_str(&text).ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), file.layers))
            })
            .collect();
        states.sort();
        states
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn get(&self, name: &str) -> Option<State> {
        let dir = self.root.join("states").join(name);
        let text = fs::read_to_string(dir.join("state.json")).ok()?;
        let file: StateFile = serde_json::from_str(&text).ok()?;
        let layers: Vec<PathBuf> = file
            .layers
            .iter()
            .map(|l| self.root.join("layers").join(l))
            .collect();
        layers.iter().all(|l| l.is_dir()).then(|| State {
            name: name.to_string(),
            digest: file.digest,
            layers,
            out: dir.join("out"),
        })
    }

    /// The stage3 with the snapshot in /var/db/repos, unpacked on first use.
    pub fn base(&self, inputs: &Inputs, printer: &Printer) -> anyhow::Result<State> {
        let digest = format!("sha256:{}", plan::sha256_hex(inputs.pins.as_bytes()));
        if let Some(state) = self.get("base").filter(|s| s.digest == digest) {
            return Ok(state);
        }
        let id = format!("base-{}", &digest[7..23]);
        let layer = self.root.join("layers").join(&id);
        if !layer.is_dir() {
            printer.status(
                "Unpacking",
                format!("{} into the base builder state", inputs.stage3.display()),
            );
            // kiln's own unpacker, in this process: a killed kiln leaves no
            // tar behind, only a temporary dir the next build removes.
            let staged = Staged::new(&layer).map_err(tree::Error::hinted)?;
            let unpack = || -> Result<tree::Unpacked, tree::Error> {
                let root = Root::open(staged.path())?;
                let done = crate::fetch::unpack::unpack(&inputs.stage3, &root)?;
                let repos = root.subdir(Path::new("var/db/repos"))?;
                crate::fetch::unpack::unpack(&inputs.snapshot, &repos)?;
                Ok(done)
            };
            let done = unpack().map_err(tree::Error::hinted).with_context(|| {
                format!(
                    "cannot unpack {} and {} into the base builder state",
                    inputs.stage3.display(),
                    inputs.snapshot.display()
                )
            })?;
            staged.commit().map_err(tree::Error::hinted)?;
            printer.verbose(format!(
                "stage3: {} entries, {} owner(s) not the stage3's own, {} special file(s) left out (the runtime gives /dev): {}",
                done.entries,
                done.owners_changed,
                done.skipped.len(),
                done.skipped.iter().take(5).cloned().collect::<Vec<_>>().join(" ")
            ));
        }
        self.write("base", &digest, &[id], None)?;
        self.get("base")
            .context("the base state vanished while it was written")
    }

    /// `lower` plus `upper` (moved into the store) as state `name`; the
    /// state's reports are copied from `out` when given.
    pub fn commit(
        &self,
        name: &str,
        digest: &str,
        lower: &State,
        upper: &Path,
        out: Option<&Path>,
    ) -> anyhow::Result<State> {
        let id = digest.trim_start_matches("sha256:").to_string();
        let layer = self.root.join("layers").join(&id);
        // The layer this state had before is garbage now: states above it
        // have a stale lower digest and are rebuilt before they are used.
        if let Some(old) = self.get(name).and_then(|s| s.layers.last().cloned())
            && old != layer
            && !lower.layers.contains(&old)
        {
            remove_tree(&old)?;
        }
        remove_tree(&layer)?;
        fs::rename(upper, &layer)
            .with_context(|| format!("cannot move {} to {}", upper.display(), layer.display()))?;
        let mut ids: Vec<String> = lower
            .layers
            .iter()
            .map(|l| {
                l.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        ids.push(id);
        self.write(name, digest, &ids, out)?;
        self.get(name)
            .with_context(|| format!("builder state {name} vanished while it was written"))
    }

    fn write(
        &self,
        name: &str,
        digest: &str,
        layers: &[String],
        out: Option<&Path>,
    ) -> anyhow::Result<()> {
        let dir = self.root.join("states").join(name);
        fs::create_dir_all(&dir)?;
        if let Some(out) = out {
            let dest = dir.join("out");
            remove_tree(&dest)?;
            tree::copy(out, &dest).map_err(tree::Error::hinted)?;
        }
        let file = StateFile {
            digest: digest.to_string(),
            layers: layers.to_vec(),
        };
        let tmp = dir.join("state.json.tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
        fs::rename(&tmp, dir.join("state.json"))?;
        Ok(())
    }
}

/// Which builder state an image builds in, and how to name it in errors;
/// `None` for the stage3 base.
pub fn build_state(container: &BuildContainer) -> Option<(String, String)> {
    match container {
        BuildContainer::Stage3 => None,
        BuildContainer::Builder(b) => Some((builder_state(b), format!("builder {b}"))),
        BuildContainer::ParentState(p) => Some((image_state(p), format!("image {p}"))),
    }
}
