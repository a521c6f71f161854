//! The runtime: kiln's own rootless containers on youki's libcontainer.
//!
//! [`Runtime::enter`] puts the kiln process into its user, mount and cgroup
//! namespaces (before any thread starts); from then on kiln acts as root of
//! that namespace, so everything it does next, unpacking layers, mounting
//! overlays, writing layers from an upper dir, sees in-container ids.
//! [`Runtime::run`] runs one command over a stack of read-only layer dirs
//! and returns its exit status. `preflight` says what a machine lacks.

mod container;
pub mod overlay;
pub mod preflight;
mod reaper;
pub mod spec;
mod tty;
pub mod userns;
mod users;

use std::path::{Path, PathBuf};

pub use container::{Exit, RunOptions};
pub use spec::{Bind, Network};
pub use userns::UserNs;

/// kiln inside its namespaces, ready to run containers.
#[derive(Debug)]
pub struct Runtime {
    pub ns: UserNs,
    scratch: PathBuf,
}

impl Runtime {
    /// Choose the user-namespace mode and enter it, with `scratch` (a dir on
    /// the cache's filesystem) for per-run state, upper and work dirs.
    /// Call before any thread starts: unshare needs a single-threaded process.
    pub fn enter(no_userns: bool, scratch: &Path) -> anyhow::Result<Runtime> {
        let ns = UserNs::plan(no_userns)?;
        ns.enter()?;
        Ok(Runtime {
            ns,
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
        );
        let kind = result.and_then(|r| {
            r.unmount()?;
            Ok(r.kind)
        });
        overlay::remove_tree(&dir)?;
        kind
    }
}
