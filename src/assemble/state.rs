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
//!   states/<name>/state.json   {"digest": ..., "layers": [bottom first], "out": "out-<id>"}
//!   states/<name>/out-<id>/    what build-root.sh reported (package.installed…)
//!   layers/<id>/               one unpacked layer
//!
//! A new state is made beside the old one and takes its place in one
//! rename of state.json ([`Store::prepare`], [`Prepared::commit`]): its
//! layer and reports get names of their own, are flushed to disk first, and
//! the old state's files go only after the new one is durable and the build
//! has named its image ([`Prepared::finish`]); a failure before that puts
//! the old state.json back. A layer another state still stands on is never
//! removed.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::inputs::Inputs;
use super::plan;
use crate::cache::Cache;
use crate::durable::{self, sync_dir};
use crate::error::{IoError, WriteError};
use crate::layouts::BuildContainer;
use crate::printer::Printer;
use crate::tree::{self, Root, Staged};

pub use crate::tree::remove_tree;

/// What can go wrong keeping builder states.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Cache(#[from] crate::cache::Error),
    #[error(transparent)]
    Tree(#[from] tree::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("cannot unpack {} and {} into the base builder state", stage3.display(), snapshot.display())]
    Base {
        stage3: PathBuf,
        snapshot: PathBuf,
        #[source]
        source: tree::Error,
    },
    #[error("the base state vanished while it was written")]
    Vanished,
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot keep {} to go back to", path.display())]
    Keep {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// The fix of the errors it wraps (a busy cache, a full disk).
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Cache(e) => e.fix(),
            Error::Tree(e) => e.fix(),
            Error::Write(e) => e.fix(),
            _ => None,
        }
    }
}

/// One builder state.
#[derive(Debug, Clone)]
pub struct State {
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
    /// The reports' dir in the state dir ("out" before reports had ids).
    #[serde(default = "default_out")]
    out: String,
}

fn default_out() -> String {
    "out".into()
}

impl StateFile {
    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a state file serialises")
    }
}

pub struct Store {
    /// `states/` and `layers/` of the cache.
    states: PathBuf,
    layers: PathBuf,
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
    pub fn open(cache: &Cache) -> Result<Store, Error> {
        let lock = cache.lock_builds()?;
        Ok(Store {
            states: cache.states()?,
            layers: cache.state_layers()?,
            _lock: lock,
        })
    }

    /// Every state's name and the ids of the layers it stands on, by name.
    pub fn states(&self) -> Vec<(String, Vec<String>)> {
        Store::states_in(&self.states)
    }

    fn states_in(states: &Path) -> Vec<(String, Vec<String>)> {
        let Ok(entries) = fs::read_dir(states) else {
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

    /// The dir of the state `name`.
    pub fn state_dir(&self, name: &str) -> PathBuf {
        self.states.join(name)
    }

    /// The dir of the layer `id`.
    pub fn layer_dir(&self, id: &str) -> PathBuf {
        self.layers.join(id)
    }

    pub fn get(&self, name: &str) -> Option<State> {
        let dir = self.state_dir(name);
        let text = fs::read_to_string(dir.join("state.json")).ok()?;
        let file: StateFile = serde_json::from_str(&text).ok()?;
        let layers: Vec<PathBuf> = file.layers.iter().map(|l| self.layer_dir(l)).collect();
        layers.iter().all(|l| l.is_dir()).then(|| State {
            digest: file.digest,
            layers,
            out: dir.join(&file.out),
        })
    }

    /// The stage3 with the snapshot in /var/db/repos, unpacked on first use.
    pub fn base(&self, inputs: &Inputs, printer: &Printer) -> Result<State, Error> {
        let digest = format!("sha256:{}", plan::sha256_hex(inputs.pins.as_bytes()));
        if let Some(state) = self.get("base").filter(|s| s.digest == digest) {
            return Ok(state);
        }
        let id = format!("base-{}", &digest[7..23]);
        let layer = self.layer_dir(&id);
        if !layer.is_dir() {
            printer.status(
                "Unpacking",
                format!(
                    "{} into the base builder state",
                    inputs.fetched.stage3.display()
                ),
            );
            // kiln's own unpacker, in this process: a killed kiln leaves no
            // tar behind, only a temporary dir the next build removes.
            let staged = Staged::new(&layer)?;
            let unpack = || -> Result<tree::Unpacked, tree::Error> {
                let root = Root::open(staged.path())?;
                let done = crate::fetch::unpack::unpack(&inputs.fetched.stage3, &root)?;
                let repos = root.subdir(Path::new("var/db/repos"))?;
                crate::fetch::unpack::unpack(&inputs.fetched.snapshot, &repos)?;
                Ok(done)
            };
            let done = unpack().map_err(|source| Error::Base {
                stage3: inputs.fetched.stage3.clone(),
                snapshot: inputs.fetched.snapshot.clone(),
                source,
            })?;
            staged.commit()?;
            printer.verbose(format!(
                "stage3: {} entries, {} owner(s) not the stage3's own, {} special file(s) left out (the runtime gives /dev): {}",
                done.entries,
                done.owners_changed,
                done.skipped.len(),
                done.skipped.iter().take(5).cloned().collect::<Vec<_>>().join(" ")
            ));
        }
        self.write("base", &digest, &[id])?;
        self.get("base").ok_or(Error::Vanished)
    }

    /// `lower` plus `upper` as state `name`, made ready beside the state of
    /// that name: `upper` and `out` (build-root.sh's reports) are moved into
    /// the store under new names, flushed to disk, and the new state.json is
    /// written next to the old one. Nothing names them until
    /// [`Prepared::commit`]; dropped before that, they are removed again.
    pub fn prepare(
        &self,
        name: &str,
        digest: &str,
        lower: &State,
        upper: &Path,
        out: &Path,
    ) -> Result<Prepared, Error> {
        let dir = self.state_dir(name);
        let id = self.fresh_layer_id(digest.trim_start_matches("sha256:"))?;
        let prepared = Prepared {
            dir: dir.clone(),
            layer: self.layer_dir(&id),
            out: dir.join(format!("out-{id}")),
            old: self.get(name),
            replaces: dir.join(STATE).exists(),
            states: self.states.clone(),
            committed: false,
            done: false,
        };
        durable::create_dir(&dir)?;
        for (from, to) in [(upper, &prepared.layer), (out, &prepared.out)] {
            fs::rename(from, to).map_err(IoError::between("move", from, to))?;
        }
        let mut ids: Vec<String> = lower.layers.iter().map(|l| file_name(l)).collect();
        ids.push(id.clone());
        let file = StateFile {
            digest: digest.to_string(),
            layers: ids,
            out: format!("out-{id}"),
        };
        // The layer and the reports are many files: one syncfs flushes them
        // all, before anything names them.
        durable::sync_filesystem(&self.layers)?;
        durable::write(&dir.join(NEW_STATE), &file.to_json())?;
        if prepared.replaces {
            let _ = fs::remove_file(dir.join(OLD_STATE));
            fs::hard_link(dir.join(STATE), dir.join(OLD_STATE)).map_err(|source| Error::Keep {
                path: dir.join(STATE),
                source,
            })?;
        }
        Ok(prepared)
    }

    /// A layer dir name for a state of input digest `hex`: the digest, or
    /// the digest and a number when a state still uses that dir (a forced
    /// rebuild). A dir of that name no state uses is a crashed build's, and
    /// goes.
    fn fresh_layer_id(&self, hex: &str) -> Result<String, Error> {
        let used: Vec<String> = self.states().into_iter().flat_map(|(_, l)| l).collect();
        let mut id = hex.to_string();
        let mut n = 1;
        while used.contains(&id) {
            n += 1;
            id = format!("{hex}-{n}");
        }
        remove_tree(&self.layer_dir(&id))?;
        Ok(id)
    }

    fn write(&self, name: &str, digest: &str, layers: &[String]) -> Result<(), Error> {
        let dir = self.state_dir(name);
        durable::create_dir(&dir)?;
        let file = StateFile {
            digest: digest.to_string(),
            layers: layers.to_vec(),
            out: default_out(),
        };
        let tmp = dir.join(NEW_STATE);
        durable::write(&tmp, &file.to_json())?;
        Ok(durable::rename(&tmp, &dir.join(STATE))?)
    }
}

const STATE: &str = "state.json";
/// The next state.json, until it replaces the current one.
const NEW_STATE: &str = "state.json.new";
/// The last state.json, until the build that replaced it is complete.
const OLD_STATE: &str = "state.json.old";

/// A state made ready by [`Store::prepare`].
pub struct Prepared {
    dir: PathBuf,
    /// The new layer and reports dir.
    layer: PathBuf,
    out: PathBuf,
    /// The state it replaces, and whether a state.json is there (a state
    /// whose layers are gone has one too).
    old: Option<State>,
    replaces: bool,
    /// The store's `states/`, to see which states still use a layer.
    states: PathBuf,
    committed: bool,
    done: bool,
}

impl Prepared {
    /// The state takes its name: state.json is replaced in one rename.
    pub fn commit(&mut self) -> Result<(), WriteError> {
        durable::rename(&self.dir.join(NEW_STATE), &self.dir.join(STATE))?;
        self.committed = true;
        Ok(())
    }

    /// The build is complete: the old state's reports go, and its own layer
    /// unless another state stands on it (a child built on the old state
    /// keeps its whole stack until it is rebuilt itself). Failures leave
    /// only garbage, which `kiln clean` removes.
    pub fn finish(mut self) {
        self.done = true;
        let _ = fs::remove_file(self.dir.join(OLD_STATE));
        let Some(old) = self.old.take() else { return };
        if old.out != self.out {
            let _ = remove_tree(&old.out);
        }
        let Some(top) = old.layers.last() else { return };
        let used = Store::states_in(&self.states)
            .into_iter()
            .any(|(_, layers)| layers.contains(&file_name(top)));
        if *top != self.layer && !used {
            let _ = remove_tree(top);
        }
    }
}

impl Drop for Prepared {
    /// Not finished: the old state.json is put back and the new state's
    /// files go, so the store is as it was.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.committed {
            let back = if self.replaces {
                fs::rename(self.dir.join(OLD_STATE), self.dir.join(STATE))
            } else {
                fs::remove_file(self.dir.join(STATE))
            };
            if back.is_err() {
                // Leave the new state named rather than point at nothing.
                return;
            }
            let _ = sync_dir(&self.dir);
        }
        let _ = fs::remove_file(self.dir.join(NEW_STATE));
        let _ = fs::remove_file(self.dir.join(OLD_STATE));
        let _ = remove_tree(&self.layer);
        let _ = remove_tree(&self.out);
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in a fresh cache, and an upper dir and reports dir as a
    /// build container leaves them, holding `file`.
    fn build_output(work: &Path, file: &str) -> (PathBuf, PathBuf) {
        let (upper, out) = (work.join("upper"), work.join("out"));
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&out).unwrap();
        fs::write(upper.join(file), file).unwrap();
        fs::write(out.join("PACKAGES.md"), file).unwrap();
        (upper, out)
    }

    fn base(store: &Store) -> State {
        store.write("base", "sha256:base", &[]).unwrap();
        store.get("base").unwrap()
    }

    fn build(store: &Store, work: &Path, name: &str, digest: &str, lower: &State) -> Prepared {
        let _ = remove_tree(work);
        let (upper, out) = build_output(work, digest);
        store.prepare(name, digest, lower, &upper, &out).unwrap()
    }

    fn setup() -> (tempfile::TempDir, Store) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&Cache::at(tmp.path().join("cache"))).unwrap();
        (tmp, store)
    }

    #[test]
    fn a_finished_build_replaces_the_state_and_drops_the_old_layer() {
        let (tmp, store) = setup();
        let base = base(&store);
        let work = tmp.path().join("work");
        let mut first = build(&store, &work, "bob-t-x", "sha256:aaaa", &base);
        first.commit().unwrap();
        first.finish();
        let old = store.get("bob-t-x").unwrap();
        assert_eq!(old.digest, "sha256:aaaa");
        assert!(old.layers[0].join("sha256:aaaa").is_file());

        let mut second = build(&store, &work, "bob-t-x", "sha256:bbbb", &base);
        second.commit().unwrap();
        second.finish();
        let new = store.get("bob-t-x").unwrap();
        assert_eq!(new.digest, "sha256:bbbb");
        assert!(new.layers[0].join("sha256:bbbb").is_file());
        assert!(fs::read_to_string(new.out.join("PACKAGES.md")).unwrap() == "sha256:bbbb");
        assert!(!old.layers[0].exists(), "the old state's own layer stays");
        assert!(!old.out.exists(), "the old state's reports stay");
    }

    #[test]
    fn a_layer_another_state_stands_on_is_kept() {
        let (tmp, store) = setup();
        let base = base(&store);
        let work = tmp.path().join("work");
        let mut parent = build(&store, &work, "bob-t-parent", "sha256:p1", &base);
        parent.commit().unwrap();
        parent.finish();
        let parent = store.get("bob-t-parent").unwrap();
        let mut child = build(&store, &work, "bob-t-child", "sha256:c1", &parent);
        child.commit().unwrap();
        child.finish();
        assert_eq!(store.get("bob-t-child").unwrap().layers.len(), 2);

        let mut rebuilt = build(&store, &work, "bob-t-parent", "sha256:p2", &base);
        rebuilt.commit().unwrap();
        rebuilt.finish();
        let child = store
            .get("bob-t-child")
            .expect("the child keeps its whole stack");
        assert!(child.layers.iter().all(|l| l.is_dir()));
    }

    #[test]
    fn an_unfinished_build_leaves_the_store_as_it_was() {
        let (tmp, store) = setup();
        let base = base(&store);
        let work = tmp.path().join("work");
        let mut first = build(&store, &work, "bob-t-x", "sha256:aaaa", &base);
        first.commit().unwrap();
        first.finish();
        let before = store.states();

        // Dropped before its commit, then after its commit (the layout's
        // index could not be written): both times the old state is back.
        drop(build(&store, &work, "bob-t-x", "sha256:bbbb", &base));
        let mut committed = build(&store, &work, "bob-t-x", "sha256:cccc", &base);
        committed.commit().unwrap();
        drop(committed);

        assert_eq!(store.states(), before);
        let state = store.get("bob-t-x").unwrap();
        assert_eq!(state.digest, "sha256:aaaa");
        let layers: Vec<_> = fs::read_dir(&store.layers).unwrap().flatten().collect();
        assert_eq!(layers.len(), 1, "new layers were left: {layers:?}");
        assert!(!store.state_dir("bob-t-x").join(NEW_STATE).exists());
        assert!(!store.state_dir("bob-t-x").join(OLD_STATE).exists());
    }

    #[test]
    fn a_forced_rebuild_of_the_same_inputs_gets_a_layer_of_its_own() {
        let (tmp, store) = setup();
        let base = base(&store);
        let work = tmp.path().join("work");
        let mut first = build(&store, &work, "bob-t-x", "sha256:aaaa", &base);
        first.commit().unwrap();
        first.finish();
        let mut again = build(&store, &work, "bob-t-x", "sha256:aaaa", &base);
        again.commit().unwrap();
        again.finish();
        let state = store.get("bob-t-x").unwrap();
        assert_eq!(file_name(&state.layers[0]), "aaaa-2");
        assert!(!store.layer_dir("aaaa").exists());
    }

    #[test]
    fn a_second_build_on_the_same_cache_is_refused() {
        let (tmp, _store) = setup();
        let err = Store::open(&Cache::at(tmp.path().join("cache")))
            .err()
            .expect("the build lock is held");
        assert!(
            err.to_string()
                .starts_with("another kiln build is using the cache"),
            "{err}"
        );
    }
}
