//! Hostile images, damaged layouts and a hostile disk (issue 12, findings 1,
//! 2, 5, 6, 7): hand-made layers that try to write through symlinks, hand
//! out setuid root or make device nodes, run with `kiln run` as root and as
//! a user with a subordinate range; blobs flipped or deleted under a built
//! stack; kill -9 during the stage3's unpack; a full cache. Each shows what
//! is outside kiln's dirs is unchanged and the error names what is wrong.

mod build;
mod disk;
mod layers;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tar::{EntryType, Header};

use crate::util::oci::{commit, sha256_digest};
use crate::util::run_ok;
use crate::util::runtime::busybox_rootfs;

/// One entry of a hand-made layer.
enum Entry<'a> {
    Dir(&'a str),
    /// path, content, mode, uid, gid
    File(&'a str, &'a [u8], u32, u64, u64),
    Symlink(&'a str, &'a str),
    /// path, type (block, char or fifo), major, minor
    Node(&'a str, EntryType, u32, u32),
}

/// The tar of `entries`, in that order, exactly as given.
fn tar_of(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut h = Header::new_gnu();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(0);
        let (path, data): (&str, &[u8]) = match entry {
            Entry::Dir(p) => {
                h.set_entry_type(EntryType::Directory);
                h.set_mode(0o755);
                (p, b"")
            }
            Entry::File(p, data, mode, uid, gid) => {
                h.set_entry_type(EntryType::Regular);
                h.set_mode(*mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_size(data.len() as u64);
                (p, data)
            }
            Entry::Symlink(p, target) => {
                h.set_entry_type(EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (p, b"")
            }
            Entry::Node(p, kind, major, minor) => {
                h.set_entry_type(*kind);
                h.set_mode(0o666);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (p, b"")
            }
        };
        h.set_path(path).unwrap();
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap()
}

/// A layout at `dir` holding `hostile/base:1`, a busybox root with
/// /data/keep and /data/gone, committed by kiln.
fn base_layout(dir: &Path) -> PathBuf {
    let rootfs = dir.join("base-rootfs");
    busybox_rootfs(&rootfs);
    let layout = dir.join("oci");
    commit(
        &rootfs,
        &layout,
        "hostile/base:1",
        &["--cmd", "[\"/bin/sh\"]"],
    );
    layout
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256_digest(bytes);
    std::fs::write(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
        bytes,
    )
    .unwrap();
    (digest, bytes.len() as u64)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `reference`: the image `parent` of `layout` plus the layer `tar`
/// (gzipped), written by hand as any tool could, with no check of kiln's.
fn push_layer(layout: &Path, parent: &str, reference: &str, tar: &[u8]) {
    let blob = |d: &Value| layout.join("blobs/sha256").join(&d.as_str().unwrap()[7..]);
    let index_path = layout.join("index.json");
    let mut index = read_json(&index_path);
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == parent)
        .unwrap_or_else(|| panic!("{parent} not in {index}"))
        .clone();
    let mut manifest = read_json(&blob(&entry["digest"]));
    let mut config = read_json(&blob(&manifest["config"]["digest"]));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).unwrap();
    let (digest, size) = write_blob(layout, &gz.finish().unwrap());
    config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(sha256_digest(tar)));
    config["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"created_by": "a hostile test layer"}));
    let (config_digest, config_size) = write_blob(layout, &serde_json::to_vec(&config).unwrap());
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_size);
    manifest["layers"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
        "digest": digest,
        "size": size,
    }));
    let (manifest_digest, manifest_size) =
        write_blob(layout, &serde_json::to_vec(&manifest).unwrap());
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest,
        "size": manifest_size,
        "annotations": {"org.opencontainers.image.ref.name": reference},
    }));
    std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Every path under `dir` with its type, mode, owner, size and link, and
/// its `user.overlay.opaque` xattr: what must not change.
fn snapshot(dir: &Path) -> String {
    let out = run_ok(Command::new("sh").arg("-c").arg(format!(
        "cd '{}' && find . -printf '%p %y %m %U %G %s %l\\n' | sort && getfattr -R -d -m '' --absolute-names . 2>/dev/null | sort",
        dir.display()
    )));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Device nodes under `dir` other than overlay's 0/0 whiteouts.
fn devices(dir: &Path) -> Vec<String> {
    lines(&format!(
        "find '{}' \\( -type b -o -type c \\) -exec stat -c '%n %F %t,%T' {{}} +",
        dir.display()
    ))
    .into_iter()
    .filter(|l| !l.ends_with("character special file 0,0"))
    .collect()
}

/// Files under `dir` that are setuid host root or setgid host root's group.
fn setid_root(dir: &Path) -> Vec<String> {
    lines(&format!(
        "find '{}' \\( -perm -4000 -uid 0 \\) -o \\( -perm -2000 -gid 0 \\)",
        dir.display()
    ))
}

fn lines(script: &str) -> Vec<String> {
    let out = run_ok(Command::new("sh").arg("-c").arg(script));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The temporary trees left in a cache's `layers/` (builder states) or
/// `unpacked/` (image layers of kiln run): none may be.
fn leftovers(cache: &Path) -> Vec<String> {
    lines(&format!(
        "find '{0}/layers' '{0}/unpacked' -maxdepth 3 -name '.*.tmp-*' 2>/dev/null; true",
        cache.display()
    ))
}
