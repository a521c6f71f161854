//! A full disk under the cache: the unpack stops at the first error, names
//! the path and the cause, and leaves no temporary tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{Entry, base_layout, leftovers, push_layer, tar_of};
use crate::util::runtime::{As, chown_r, kiln_as, owned_dir};
use crate::util::{describe, require_env, run_ok, stderr};

/// A tmpfs of `size` at `dir`, owned by `user`, unmounted when dropped.
pub(super) struct Tmpfs(PathBuf);

impl Tmpfs {
    pub(super) fn mount(dir: &Path, size: &str, user: Option<&str>) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let mut opts = format!("size={size},mode=0755");
        if let Some(u) = user {
            let id = |flag| {
                crate::util::stdout(&run_ok(Command::new("id").args([flag, u])))
                    .trim()
                    .to_string()
            };
            opts += &format!(",uid={},gid={}", id("-u"), id("-g"));
        }
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &opts, "tmpfs"])
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Bytes no compressor shrinks, from a fixed seed.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// `out` is one error, naming a path that starts with `path` and a full
/// disk, with the fix.
pub(super) fn assert_disk_full(out: &Output, path: &str) {
    let err = stderr(out);
    assert!(
        err.contains(&format!("no space left on device writing {path}")),
        "{}",
        describe(out)
    );
    assert!(
        err.contains("hint: free space on that filesystem, or give kiln a cache elsewhere"),
        "{}",
        describe(out)
    );
    assert_eq!(err.matches("no space left").count(), 1, "{err}");
}

#[test]
fn a_full_cache_names_the_path_and_leaves_no_temporary_tree() {
    let Some(sub) = require_env("KILN_TEST_USER_SUB") else {
        return;
    };
    let big = noise(4 << 20);
    let layer = tar_of(&[
        Entry::Dir("fill"),
        Entry::File("fill/big", &big, 0o644, 0, 0),
    ]);
    for who in [As::Root, As::User(&sub)] {
        let user = match who {
            As::User(u) => Some(u),
            _ => None,
        };
        let tmp = owned_dir(user);
        let layout = base_layout(tmp.path());
        push_layer(&layout, "hostile/base:1", "hostile/big:1", &layer);
        if let Some(u) = user {
            chown_r(u, tmp.path());
        }
        let cache = tmp.path().join("cache");
        let _disk = Tmpfs::mount(&cache, "2m", user);
        let out = kiln_as(who, &cache)
            .args(["run", "--layout"])
            .arg(&layout)
            .args(["hostile/big:1", "--", "true"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{who:?}: {}", describe(&out));
        assert_disk_full(&out, &format!("{}/", cache.join("unpacked").display()));
        assert!(stderr(&out).contains("/fill/big"), "{}", describe(&out));
        assert_eq!(leftovers(&cache), Vec::<String>::new(), "{who:?}");
    }
}
