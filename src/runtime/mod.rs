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

use std::path::{Path, PathBuf};

pub use container::RunOptions;
pub use spec::{Bind, Network};
pub use userns::UserNs;

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
    ) -> anyhow::Result<Runtime> {
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
    pub fn probe_overlay(&self) -> anyhow::Result<overlay::Kind> {
        let dir = self.scratch.join(format!("probe-{}", std::process::id()));
        let lower = dir.join("lower");
        std::fs::create_dir_all(&lower)?;
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
        kind
    }
}

/// A failed unshare says little (EPERM, ENOSPC): the first failing
/// preflight check says why, and how to fix it.
fn explain(err: userns::Error) -> anyhow::Error {
    match (&err, preflight::first_failure()) {
        (userns::Error::Unshare(_), Some(check)) => {
            crate::error::hinted(format!("{err}: {}", check.problem), check.fix)
        }
        _ => err.into(),
    }
}
