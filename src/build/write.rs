//! Writing an image into the OCI layout: its parent's layer descriptors,
//! byte for byte, plus one layer made from /emerge-root, and a config from
//! image.toml on top of the parent's.
//!
//! Adapter until the OCI writer (issue 3) lands on this branch: a
//! deterministic layer (entries in name order, ids as found, mtimes clamped
//! to SOURCE_DATE_EPOCH when set, hard links kept), blobs named by their
//! sha256, and index.json replaced atomically.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::plan::{self, ANNOTATION};
use crate::layouts::{Compression, ImageSettings};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub struct Layout {
    pub dir: PathBuf,
}

/// An image's entry in index.json.
#[derive(Debug, Clone)]
pub struct Entry {
    pub digest: String,
    pub input: Option<String>,
}

impl Layout {
    pub fn open(dir: &Path) -> anyhow::Result<Layout> {
        fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("cannot create the OCI layout {}", dir.display()))?;
        if !dir.join("oci-layout").exists() {
            fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !dir.join("index.json").exists() {
            write_atomic(
                &dir.join("index.json"),
                &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}),
            )?;
        }
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    fn index(&self) -> anyhow::Result<Value> {
        let path = self.dir.join("index.json");
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
    }

    pub fn find(&self, reference: &str) -> anyhow::Result<Option<Entry>> {
        let index = self.index()?;
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|m| {
                (m["annotations"][REF_NAME].as_str() == Some(reference)).then(|| Entry {
                    digest: m["digest"].as_str().unwrap_or_default().to_string(),
                    input: m["annotations"][ANNOTATION].as_str().map(str::to_string),
                })
            }))
    }

    pub fn blob_json(&self, digest: &str) -> anyhow::Result<Value> {
        let path = self.blob_path(digest);
        let text =
            fs::read(&path).with_context(|| format!("cannot read blob {}", path.display()))?;
        Ok(serde_json::from_slice(&text)?)
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    fn put_json(&self, media_type: &str, value: &Value) -> anyhow::Result<Value> {
        let bytes = serde_json::to_vec(value)?;
        let hex = plan::sha256_hex(&bytes);
        let path = self.dir.join("blobs/sha256").join(&hex);
        if !path.exists() {
            let tmp = path.with_extension("tmp");
            fs::write(&tmp, &bytes)?;
            fs::rename(&tmp, &path)?;
        }
        Ok(json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": bytes.len()}))
    }

    /// Writes `root` as a layer on top of `parent` (a manifest digest) with
    /// the image's config, and points the image's ref at it. Returns the
    /// manifest's digest and the new layer's compressed size.
    pub fn commit(
        &self,
        parent: Option<&str>,
        root: &Path,
        image: &ImageSettings,
        input: &str,
    ) -> anyhow::Result<(String, u64)> {
        let (mut layers, mut config) = match parent {
            Some(digest) => {
                let manifest = self.blob_json(digest)?;
                let config =
                    self.blob_json(manifest["config"]["digest"].as_str().unwrap_or_default())?;
                (
                    manifest["layers"].as_array().cloned().unwrap_or_default(),
                    config,
                )
            }
            None => (
                Vec::new(),
                json!({"rootfs": {"type": "layers", "diff_ids": []}, "history": []}),
            ),
        };
        let (layer, diff_id) = self.write_layer(root, image.compression)?;
        let size = layer["size"].as_u64().unwrap_or_default();
        layers.push(layer);
        apply_config(&mut config, image, &diff_id);
        let config = self.put_json("application/vnd.oci.image.config.v1+json", &config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": layers,
            "annotations": {ANNOTATION: input},
        });
        let manifest = self.put_json(MANIFEST, &manifest)?;
        let mut index = self.index()?;
        let manifests = index["manifests"]
            .as_array_mut()
            .context("index.json has no manifests array")?;
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(&image.reference));
        let mut entry = manifest.clone();
        entry["annotations"] = json!({REF_NAME: image.reference, ANNOTATION: input});
        manifests.push(entry);
        write_atomic(&self.dir.join("index.json"), &index)?;
        Ok((
            manifest["digest"].as_str().unwrap_or_default().to_string(),
            size,
        ))
    }

    fn write_layer(
        &self,
        root: &Path,
        compression: Compression,
    ) -> anyhow::Result<(Value, String)> {
        let tmp = self
            .dir
            .join("blobs/sha256")
            .join(format!(".layer-{}.tmp", std::process::id()));
        let blob = Hashing::new(File::create(&tmp)?);
        let (media_type, diff, blob) = match compression {
            Compression::Gzip => {
                let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
                let (diff, gz) = tar_tree(root, Hashing::new(gz))?;
                (
                    "application/vnd.oci.image.layer.v1.tar+gzip",
                    diff,
                    gz.finish()?,
                )
            }
            Compression::Zstd => {
                let z = zstd::stream::write::Encoder::new(blob, 3)?;
                let (diff, z) = tar_tree(root, Hashing::new(z))?;
                (
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                    diff,
                    z.finish()?,
                )
            }
            Compression::None => {
                let (diff, blob) = tar_tree(root, Hashing::new(blob))?;
                ("application/vnd.oci.image.layer.v1.tar", diff, blob)
            }
        };
        let (file, digest, size) = blob.finish();
        file.sync_all()?;
        fs::rename(&tmp, self.blob_path(&digest))?;
        Ok((
            json!({"mediaType": media_type, "digest": digest, "size": size}),
            diff,
        ))
    }
}

/// image.toml's settings over the parent's config, plus the new layer.
fn apply_config(config: &mut Value, image: &ImageSettings, diff_id: &str) {
    config["architecture"] = json!(match image.arch.as_deref() {
        Some("x86") => "386",
        Some(arch) => arch,
        None => "amd64",
    });
    config["os"] = json!("linux");
    let c = &mut config["config"];
    if !c.is_object() {
        *c = json!({});
    }
    let mut env: Vec<String> = c["Env"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    if env.is_empty() {
        env.push(DEFAULT_PATH.into());
    }
    for (k, v) in &image.config.env {
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(format!("{k}={v}"));
    }
    c["Env"] = json!(env);
    let mut labels: BTreeMap<String, Value> = c["Labels"]
        .as_object()
        .map(|m| m.clone().into_iter().collect())
        .unwrap_or_default();
    for (k, v) in &image.config.labels {
        labels.insert(k.clone(), json!(v));
    }
    if !labels.is_empty() {
        c["Labels"] = json!(labels);
    }
    let ic = &image.config;
    for (key, value) in [
        ("Cmd", ic.cmd.as_ref().map(|v| json!(v))),
        ("Entrypoint", ic.entrypoint.as_ref().map(|v| json!(v))),
        ("User", ic.user.as_ref().map(|v| json!(v))),
        ("WorkingDir", ic.workdir.as_ref().map(|v| json!(v))),
        ("StopSignal", ic.stop_signal.as_ref().map(|v| json!(v))),
    ] {
        if let Some(value) = value {
            c[key] = value;
        }
    }
    for (key, list) in [("ExposedPorts", &ic.ports), ("Volumes", &ic.volumes)] {
        if !list.is_empty() {
            let map: BTreeMap<&String, Value> = list.iter().map(|p| (p, json!({}))).collect();
            c[key] = json!(map);
        }
    }
    if let Some(ids) = config["rootfs"]["diff_ids"].as_array_mut() {
        ids.push(json!(diff_id));
    }
    let created = created();
    config["created"] = json!(created);
    if let Some(history) = config["history"].as_array_mut() {
        history.push(json!({
            "created": created,
            "created_by": format!("kiln build {}", image.id),
            "comment": image.packages.join(" "),
        }));
    }
}

/// SOURCE_DATE_EPOCH as RFC 3339, else the Unix epoch: never the clock, so
/// the same inputs give the same config digest.
fn created() -> String {
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        (
            self.inner,
            format!("sha256:{}", plan::hex(&self.hasher.finalize())),
            self.size,
        )
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The tree as a tar stream; returns its diff_id and the inner writer.
fn tar_tree<W: Write>(root: &Path, out: Hashing<W>) -> anyhow::Result<(String, W)> {
    let clamp = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let mut builder = tar::Builder::new(out);
    let mut links = HashMap::new();
    add_dir(&mut builder, root, root, clamp, &mut links)?;
    let (inner, diff_id, _) = builder.into_inner()?.finish();
    Ok((diff_id, inner))
}

fn add_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    dir: &Path,
    clamp: Option<u64>,
    links: &mut HashMap<(u64, u64), PathBuf>,
) -> anyhow::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let meta = fs::symlink_metadata(&path)?;
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o7777);
        header.set_uid(meta.uid().into());
        header.set_gid(meta.gid().into());
        let mtime = u64::try_from(meta.mtime()).unwrap_or(0);
        header.set_mtime(clamp.map_or(mtime, |c| mtime.min(c)));
        header.set_size(0);
        let kind = meta.file_type();
        if kind.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut header, &rel, io::empty())?;
            add_dir(builder, root, &path, clamp, links)?;
        } else if kind.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut header, &rel, fs::read_link(&path)?)?;
        } else if let Some(first) = (meta.nlink() > 1)
            .then(|| links.get(&(meta.dev(), meta.ino())))
            .flatten()
        {
            header.set_entry_type(tar::EntryType::Link);
            builder.append_link(&mut header, &rel, first)?;
        } else if kind.is_file() {
            if meta.nlink() > 1 {
                links.insert((meta.dev(), meta.ino()), rel.clone());
            }
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            builder.append_data(&mut header, &rel, file)?;
        } else {
            let rdev = meta.rdev();
            header.set_entry_type(if kind.is_char_device() {
                tar::EntryType::Char
            } else if kind.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            });
            header.set_device_major(libc::major(rdev))?;
            header.set_device_minor(libc::minor(rdev))?;
            builder.append_data(&mut header, &rel, io::empty())?;
        }
    }
    Ok(())
}

fn write_atomic(path: &Path, value: &Value) -> anyhow::Result<()> {
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, serde_json::to_vec_pretty(value)?)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn created_is_source_date_epoch_in_rfc3339() {
        // SAFETY: no other unit test reads or writes SOURCE_DATE_EPOCH.
        unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "1767225600") };
        assert_eq!(super::created(), "2026-01-01T00:00:00Z");
        unsafe { std::env::set_var("SOURCE_DATE_EPOCH", "951868800") };
        assert_eq!(super::created(), "2000-03-01T00:00:00Z");
        unsafe { std::env::remove_var("SOURCE_DATE_EPOCH") };
        assert_eq!(super::created(), "1970-01-01T00:00:00Z");
    }
}
