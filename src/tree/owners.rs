//! Who may own what kiln writes into a tree, and which set-id bits it keeps.
//!
//! kiln unpacks inside its user namespace, so an entry's uid and gid are
//! container ids and land on the host through the namespace's map. Real root
//! running kiln maps container ids to a subordinate range, and host root
//! stays reachable as one more container id (runtime/userns.rs `root_map`,
//! so kiln can still use its own root-owned files). An image's entry owned
//! by that id would be a host-root file, with its setuid bit a setuid-root
//! program on the host. So, unless kiln runs without a user namespace
//! (`--no-userns`, where container root is host root by the user's choice):
//! - an owner the map does not give, or that would be host root, becomes
//!   container root (or the group container root's group), and the entry
//!   loses its setuid (setgid) bit: a set-id program must not run as
//!   someone its image did not name;
//! - a set-id bit is also dropped when container root itself is host root
//!   (kiln inside `unshare --map-root-user` run by root);
//! - when the owner cannot be set (no subordinate range), the bits go too.
//!
//! Set-id programs of the image that keep their owners (setuid root inside
//! = the invoking user or a subordinate id on the host) stay: they are the
//! container's to run, and the 0700 cache dirs ([`super::private_dir`]) keep
//! other host users from reaching them. docs/security.md has the cases.

use crate::runtime::probe::in_initial_userns;
use crate::runtime::userns::{IdRange, map_id, read_map};

/// The ownership policy of the process's user namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owners {
    uids: Vec<IdRange>,
    gids: Vec<IdRange>,
    /// The machine's first namespace: ids are host ids, root may own files.
    host: bool,
}

/// What an entry gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decided {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    /// The owner was not the entry's own.
    pub changed: bool,
}

impl Owners {
    /// The policy for the namespace this process is in (read from
    /// /proc/self/uid_map and gid_map).
    pub fn current() -> Owners {
        Owners {
            uids: read_map("/proc/self/uid_map"),
            gids: read_map("/proc/self/gid_map"),
            host: in_initial_userns(),
        }
    }

    /// The owner and mode an entry owned by `uid`:`gid` with `mode` gets.
    pub(super) fn decide(&self, uid: u64, gid: u64, mode: u32) -> Decided {
        let (uid, uid_changed, keep_suid) = self.pick(&self.uids, uid);
        let (gid, gid_changed, keep_sgid) = self.pick(&self.gids, gid);
        let mut mode = mode;
        if !keep_suid {
            mode &= !libc::S_ISUID;
        }
        if !keep_sgid {
            mode &= !libc::S_ISGID;
        }
        Decided {
            uid,
            gid,
            mode,
            changed: uid_changed || gid_changed,
        }
    }

    /// An id kept, or container root in its place; and whether a set-id
    /// bit for it may stay.
    fn pick(&self, map: &[IdRange], id: u64) -> (u32, bool, bool) {
        let ok = |id: u32| match map_id(map, id) {
            Some(0) => self.host,
            Some(_) => true,
            None => false,
        };
        match u32::try_from(id) {
            Ok(id) if ok(id) => (id, false, true),
            _ => (0, true, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(map: &[(u32, u32, u32)], host: bool) -> Owners {
        let ranges: Vec<IdRange> = map
            .iter()
            .map(|&(inside, outside, count)| IdRange {
                inside,
                outside,
                count,
            })
            .collect();
        Owners {
            uids: ranges.clone(),
            gids: ranges,
            host,
        }
    }

    #[test]
    fn host_root_is_never_handed_out_in_a_namespace() {
        // real root's map: ids 0-65535 are a range, host root is 65536
        let root = owners(&[(0, 1_000_000_000, 65536), (65536, 0, 1)], false);
        let d = root.decide(65536, 65536, 0o6755);
        assert_eq!((d.uid, d.gid, d.mode, d.changed), (0, 0, 0o755, true));
        // an owner of the image keeps its file and bits
        let d = root.decide(0, 0, 0o4755);
        assert_eq!((d.uid, d.gid, d.mode, d.changed), (0, 0, 0o4755, false));
        let d = root.decide(1000, 50, 0o2755);
        assert_eq!((d.uid, d.gid, d.mode, d.changed), (1000, 50, 0o2755, false));
        // beyond the map, or beyond u32
        let d = root.decide(70000, 1 << 40, 0o6711);
        assert_eq!((d.uid, d.gid, d.mode, d.changed), (0, 0, 0o711, true));
    }

    #[test]
    fn container_root_that_is_host_root_keeps_no_set_id_bit() {
        // `unshare --map-root-user` run by root
        let unshared = owners(&[(0, 0, 1)], false);
        let d = unshared.decide(0, 0, 0o6755);
        assert_eq!((d.uid, d.gid, d.mode), (0, 0, 0o755));
        // --no-userns: the host's own ids, root included
        let host = owners(&[(0, 0, u32::MAX)], true);
        let d = host.decide(0, 0, 0o6755);
        assert_eq!((d.uid, d.gid, d.mode, d.changed), (0, 0, 0o6755, false));
    }

    #[test]
    fn a_single_id_map_keeps_bits_only_for_root() {
        let single = owners(&[(0, 1000, 1)], false);
        let d = single.decide(0, 0, 0o4755);
        assert_eq!((d.uid, d.mode, d.changed), (0, 0o4755, false));
        let d = single.decide(33, 0, 0o4755);
        assert_eq!((d.uid, d.mode, d.changed), (0, 0o755, true));
    }
}
