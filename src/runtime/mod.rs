//! The runtime: kiln's own rootless containers on youki's libcontainer.
//!
//! [`Runtime::enter`] puts the kiln process into its user, mount and cgroup
//! namespaces (before any thread starts); from then on kiln acts as root of
//! that namespace, so everything it does next, unpacking layers, mounting
//! overlays, writing layers from an upper dir, sees in-container ids.
//! [`Runtime::enter`] also probes which isolation the place allows
//! (isolation.rs). [`Runtime::run`] runs one command over a stack of read-only layer dirs
//! and returns its exit status. `preflight` says what a machine lacks.
//!
//! For `kiln build` the shape is:
//!
//! ```text
//! let store = Store::new(&cache)?;                  // before entering: plain user files
//! let rt = Runtime::enter(false, &cache.scratch())?; // first, before any thread
//! let (dir, _) = store.layer(&layer, &rt.ns.cache_key())?;
//! let exit = rt.run(&RunOptions { layers: vec![dir], upper: Some(keep), binds, env, cwd,
//!                                 log: Some(file), silent: !verbose, .. }, printer)?;
//! oci::write_layer(keep, ...)                         // same process: sees container ids
//! ```
//!
//! `upper: Some(dir)` keeps the container's changes as an overlay upper dir
//! (0:0 character-device whiteouts, `user.overlay.opaque` xattrs), the input
//! of `kiln commit --overlay-upper`. Anything that must see in-container ids
//! (the layer writer, removing a tree owned by subordinate ids) runs in the
//! same process after `enter`; `UserNs::host_uid` gives the mapping when a
//! caller outside needs it.

mod cgroups;
pub(crate) mod confine;
mod container;
pub mod isolation;
pub mod overlay;
pub mod preflight;
pub mod probe;
mod reaper;
pub mod spec;
mod tty;
pub mod userns;
mod users;

use std::io;
use std::path::{Path, PathBuf};

use libcontainer::error::LibcontainerError;
use libcontainer::oci_spec::OciSpecError;

use crate::error::IoError;

pub use container::RunOptions;
pub use spec::{Bind, Network};
pub use userns::UserNs;

/// What can go wrong entering kiln's namespaces or running a container.
/// The command's own failure is no error: it is an exit code.
/// [`Error::fix`] has the fix where kiln knows one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    UserNs(#[from] userns::Error),
    /// A failed unshare says little (EPERM, ENOSPC): the first failing
    /// preflight check says why, and how to fix it.
    #[error("{error}: {problem}")]
    Unshare {
        error: userns::Error,
        problem: String,
        fix: String,
    },
    #[error(transparent)]
    Isolation(#[from] isolation::Error),
    #[error(transparent)]
    Overlay(#[from] overlay::Error),
    /// The scratch dir, or removing a probe's dirs.
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("creating {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("opening log file {}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no layers to run in")]
    NoLayers,
    #[error(
        "the copy fallback cannot keep the container's changes apart: kernel overlayfs or fuse-overlayfs is needed here"
    )]
    CopyKeepsNoChanges,
    #[error("user `{name}` is not in the image's /etc/passwd")]
    NoUser { name: String },
    #[error("group `{group}` is not in the image's /etc/group")]
    NoGroup { group: String },
    /// An id in the image's /etc/passwd or /etc/group that is no number.
    #[error(transparent)]
    BadId(#[from] std::num::ParseIntError),
    #[error(
        "the command would run as uid {uid} gid {gid}, which the user namespace ({mode}) does not map"
    )]
    Unmapped {
        uid: u32,
        gid: u32,
        mode: &'static str,
        /// Who runs kiln: the fix names them.
        user: String,
    },
    #[error("making the container's network namespace with lo up")]
    Netns(#[source] container::NetnsError),
    #[error("{} is not UTF-8", path.display())]
    NotUtf8 { path: PathBuf },
    #[error(transparent)]
    Spec(#[from] OciSpecError),
    /// libcontainer's `build()` says only "failed to prepare rootfs": the
    /// cause is what the container's init wrote to its stderr.
    #[error("creating the container failed{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Container {
        detail: String,
        #[source]
        source: Box<LibcontainerError>,
    },
    /// Boxed, as in `Container`: libcontainer's error is several times
    /// the size of the others, and would grow every `Result` of kiln's.
    #[error(transparent)]
    Libcontainer(Box<LibcontainerError>),
    #[error("libcontainer gave no pid for the container's init")]
    NoPid,
    #[error(transparent)]
    Tty(#[from] tty::Error),
    /// Handing kiln's stdin to the container.
    #[error(transparent)]
    Stdin(io::Error),
    /// Pipes, signal handlers, poll.
    #[error(transparent)]
    Sys(#[from] nix::Error),
}

impl From<LibcontainerError> for Error {
    fn from(error: LibcontainerError) -> Error {
        Error::Libcontainer(Box::new(error))
    }
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::UserNs(e) => e.fix(),
            Error::Unshare { fix, .. } => Some(fix.clone()),
            Error::Isolation(e) => Some(e.fix()),
            Error::Overlay(e) => e.fix(),
            Error::Tree(e) => e.fix(),
            Error::Unmapped { user, .. } => Some(probe::subid_fix(user)),
            _ => None,
        }
    }
}

/// kiln inside its namespaces, ready to run containers.
#[derive(Debug)]
pub struct Runtime {
    pub ns: UserNs,
    /// How its containers are isolated here, and why.
    pub isolation: isolation::Chosen,
    scratch: PathBuf,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if self.ns.mode == userns::Mode::Host {
            cgroups::remove_parent();
        }
    }
}

impl Runtime {
    /// Choose the user-namespace mode and enter it, with `scratch` (a dir on
    /// the cache's filesystem) for per-run state, upper and work dirs, then
    /// find what this place allows and pick the isolation `choice` asks for.
    /// Call before any thread starts: unshare needs a single-threaded process.
    pub fn enter(
        no_userns: bool,
        scratch: &Path,
        choice: isolation::Choice,
    ) -> Result<Runtime, Error> {
        // Private: containers' roots are mounted in it, set-id files and all.
        crate::tree::private_dir(scratch)?;
        let ns = UserNs::plan(no_userns)?;
        ns.enter().map_err(explain)?;
        if ns.mode == userns::Mode::Host {
            cgroups::remove_stale();
        }
        let isolation = isolation::choose(choice, &isolation::probe()?)?;
        Ok(Runtime {
            ns,
            isolation,
            scratch: scratch.to_path_buf(),
        })
    }

    /// Which way the rootfs would be assembled here, tried on empty dirs.
    pub fn probe_overlay(&self) -> Result<overlay::Kind, Error> {
        let dir = self.scratch.join(format!("probe-{}", std::process::id()));
        let lower = dir.join("lower");
        std::fs::create_dir_all(&lower).map_err(IoError::at("create", &lower))?;
        let result = overlay::mount_rootfs(
            &[lower],
            &dir.join("upper"),
            &dir.join("work"),
            &dir.join("merged"),
            true,
        );
        let kind = result.and_then(|r| {
            r.unmount()?;
            Ok(r.kind)
        });
        overlay::remove_tree(&dir)?;
        kind.map_err(Error::from)
    }
}

/// A failed unshare, explained by the first failing preflight check.
fn explain(err: userns::Error) -> Error {
    match (&err, preflight::first_failure()) {
        (userns::Error::Unshare(_), Some(check)) => Error::Unshare {
            error: err,
            problem: check.problem,
            fix: check.fix,
        },
        _ => err.into(),
    }
}
