//! The cgroups kiln's containers leave behind.
//!
//! As real root libcontainer moves each container into a cgroup of its own,
//! `kiln/kiln-PID-N-NANOS` under the cgroup kiln started in (kiln's cgroup
//! namespace makes that the root of its /sys/fs/cgroup), and removes it when
//! the container is deleted. A kiln killed with SIGKILL never deletes: its
//! cgroups stay, empty (the containers die with kiln, PR_SET_PDEATHSIG).
//! So a kiln that starts removes those of kilns that are gone, killing what
//! may still run in them, and on its way out removes the `kiln` dir when no
//! other kiln uses it. Rootless, the cgroup tree is read-only and
//! libcontainer makes none.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The dir libcontainer makes the containers' cgroups in as real root
/// ([`path`]), as kiln's mount namespace sees it.
fn parent() -> PathBuf {
    PathBuf::from("/sys/fs/cgroup/kiln")
}

/// The cgroup path of container `id` (the spec's cgroupsPath). As real
/// root, under [`parent`]. In a user namespace the tree is not kiln's to
/// write: libcgroups tries to make the path anyway and allows EROFS and
/// EACCES, but it checks that each dir exists before making it, and a root
/// kiln making `kiln` in between (both see the same tree when started from
/// one cgroup) turns that into EEXIST, which it does not allow. So there the
/// path is under a dir no root kiln makes.
pub fn path(host_root: bool, id: &str) -> String {
    if host_root {
        format!("/kiln/{id}")
    } else {
        format!("/kiln-userns/{id}")
    }
}

/// Removes the cgroups of kiln processes that no longer run.
pub fn remove_stale() {
    let Ok(entries) = fs::read_dir(parent()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("kiln-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if !kiln_runs(pid) {
            remove(&entry.path());
        }
    }
}

/// Removes the `kiln` cgroup dir if no kiln has a container in it.
pub fn remove_parent() {
    let _ = fs::remove_dir(parent());
}

/// Whether `pid` is a running kiln (a pid reused by another program is not).
fn kiln_runs(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "kiln")
}

/// Kills what is left in a cgroup and removes it; a cgroup that will not go
/// stays for the next start.
fn remove(cgroup: &Path) {
    if fs::remove_dir(cgroup).is_ok() {
        return;
    }
    let _ = fs::write(cgroup.join("cgroup.kill"), "1");
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        if fs::remove_dir(cgroup).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
