//! The cache dir: the one owner of where it is, of every path in it and of
//! its two locks.
//!
//! Every command gets its cache from [`Cache::locate`] with the project's
//! `cache` setting (when there is a project), so `kiln build`, `run`,
//! `doctor`, `fetch` and `clean` always agree on the dir and on the lock
//! that keeps them from removing each other's files. Nothing else joins a
//! name onto the cache root.
//!
//! ```text
//! downloads/         stage3s, snapshots, keys by SHA512 (fetch::cache)
//! distfiles/         Portage's distfiles, shared by every build
//! binpkgs/ARCH-FLAV/ binary packages, per stage3
//! states/NAME/       builder states (assemble::state) ...
//! layers/ID/         ... and the layers they stack
//! unpacked/MAP/HEX/  image layers unpacked for kiln run and test.sh (store)
//! work/NAME/         one build's files, removed after it
//! scratch/           containers' state, upper and work dirs
//! logs/NAME.log      build container logs
//! build.lock         held by a build for its whole run
//! run.lock           shared by kiln run, exclusive for kiln clean
//! ```

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} is using the cache {}", path.display())]
    Busy { what: &'static str, path: PathBuf },
    #[error("cannot lock {}", path.display())]
    Lock { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Write(#[from] crate::error::WriteError),
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
}

impl Error {
    pub(crate) fn fix(&self) -> Option<String> {
        match self {
            Error::Busy { what: BUILD, .. } => Some(
                "wait for it to finish, or give this build its own cache (KILN_CACHE_DIR)".into(),
            ),
            Error::Busy { .. } => Some("wait for it to finish, then clean".into()),
            Error::Lock { .. } => None,
            Error::Write(write) => write.fix(),
            Error::Tree(tree) => tree.fix(),
        }
    }
}

const BUILD: &str = "another kiln build";

/// The dirs `kiln clean` removes by default: all made again on the next
/// build or run.
pub const CHEAP: [&str; 6] = ["states", "layers", "unpacked", "work", "logs", "scratch"];
/// Downloads and compiles: `kiln clean --all` only.
pub const COSTLY: [&str; 3] = ["downloads", "distfiles", "binpkgs"];

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$KILN_CACHE_DIR`, else `configured` (kiln.toml's `cache`, made
    /// absolute by the caller), else `$XDG_CACHE_HOME/kiln`, else
    /// `~/.cache/kiln`; `None` when none of them is set.
    pub fn locate(configured: Option<PathBuf>) -> Option<Cache> {
        let env = |var| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        env("KILN_CACHE_DIR")
            .or(configured)
            .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("kiln")))
            .or_else(|| env("HOME").map(|h| h.join(".cache/kiln")))
            .map(|root| Cache { root })
    }

    pub fn at(root: PathBuf) -> Cache {
        Cache { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The download cache (stage3s, snapshots, keys).
    pub fn downloads(&self) -> PathBuf {
        self.root.join("downloads")
    }

    pub fn distfiles(&self) -> PathBuf {
        self.root.join("distfiles")
    }

    /// Binary packages are only good for the stage3 they were built on.
    pub fn binpkgs(&self, arch: &str, flavour: &str) -> PathBuf {
        self.root.join("binpkgs").join(format!("{arch}-{flavour}"))
    }

    /// Builder states, each a dir of its own; private, as the trees they
    /// stack keep their set-id files and owners.
    pub fn states(&self) -> Result<PathBuf, Error> {
        self.private("states")
    }

    /// The layers builder states stack, by id; private like the states.
    pub fn state_layers(&self) -> Result<PathBuf, Error> {
        self.private("layers")
    }

    /// Image layers unpacked for kiln run and test.sh, per id mapping.
    pub fn unpacked(&self) -> Result<PathBuf, Error> {
        self.private("unpacked")
    }

    /// The dir one build or fetch of `name` works in; the caller removes it.
    pub fn work(&self, name: &str) -> PathBuf {
        self.root.join("work").join(name)
    }

    /// Containers' per-run state, upper and work dirs.
    pub fn scratch(&self) -> PathBuf {
        self.root.join("scratch")
    }

    /// The log file of the container `name`, its dir made.
    pub fn log(&self, name: &str) -> Result<PathBuf, Error> {
        let logs = self.root.join("logs");
        fs::create_dir_all(&logs).map_err(|e| crate::error::WriteError::new(&logs, e))?;
        Ok(logs.join(format!("{name}.log")))
    }

    /// The build lock, held for as long as the file lives: two builds
    /// sharing a cache would move each other's layers. Never waits.
    pub fn lock_builds(&self) -> Result<File, Error> {
        self.try_lock("build.lock", BUILD)
    }

    /// The run lock, exclusively: `kiln clean` never removes the layers of
    /// a running container. Never waits.
    pub fn lock_out_runs(&self) -> Result<File, Error> {
        self.try_lock("run.lock", "a kiln run")
    }

    /// The run lock, shared, for as long as the file lives: held by every
    /// `kiln run` so that clean waits for none of them but removes nothing
    /// under them.
    pub fn share_runs(&self) -> Result<File, Error> {
        let file = self.lock_file("run.lock")?;
        let path = self.root.join("run.lock");
        file.lock_shared()
            .map_err(|source| Error::Lock { path, source })?;
        Ok(file)
    }

    fn try_lock(&self, name: &str, what: &'static str) -> Result<File, Error> {
        let file = self.lock_file(name)?;
        let path = self.root.join(name);
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Busy {
                what,
                path: self.root.clone(),
            }),
            Err(fs::TryLockError::Error(source)) => Err(Error::Lock { path, source }),
        }
    }

    fn lock_file(&self, name: &str) -> Result<File, Error> {
        let write = |e| crate::error::WriteError::new(&self.root, e);
        fs::create_dir_all(&self.root).map_err(write)?;
        let path = self.root.join(name);
        File::create(&path).map_err(|e| Error::from(crate::error::WriteError::new(&path, e)))
    }

    fn private(&self, name: &str) -> Result<PathBuf, Error> {
        let dir = self.root.join(name);
        crate::tree::private_dir(&dir)?;
        Ok(dir)
    }
}
