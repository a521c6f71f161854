//! The strict checker. Consumers are lenient (a layout podman runs can still
//! be wrong), so kiln checks its own output against every rule it promises:
//! blob names are their sha256 and sizes match descriptors, media types
//! match magic bytes, `diff_ids` are the sha256 of the uncompressed tars,
//! one history entry per layer, refs named in the index, canonical JSON,
//! and tar entries sorted, unique, relative and without `..`. Index entries
//! without a ref name must be artifacts (artifact.rs) of a named image.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::path::Path;

use serde_json::Value;

use super::blob::HashingReader;
use super::layer::display_name;
use super::{IoContext, Layout, REF_NAME, Result, artifact, check_ref_name, json, media};

/// What the checker looked at and what it found wrong (empty: all good).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FsckReport {
    pub refs: usize,
    pub blobs: usize,
    pub layers: usize,
    pub problems: Vec<String>,
    /// Blobs an image names that are corrupt or missing: no rule of kiln's
    /// was broken, the bytes on disk were lost.
    pub damaged: BTreeSet<String>,
}

impl FsckReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check the layout at `root`. Errors only when it cannot be read at all;
/// rule violations are listed in the report.
pub fn fsck(root: &Path) -> Result<FsckReport> {
    let layout = Layout::open(root)?;
    let mut c = Checker {
        layout: &layout,
        report: FsckReport::default(),
        sizes: HashMap::new(),
        corrupt: HashMap::new(),
        named: BTreeSet::new(),
        layers: HashMap::new(),
    };
    c.blobs()?;
    let index_bytes =
        std::fs::read(root.join("index.json")).io_ctx(|| "reading index.json".into())?;
    let Some(index) = c.json("index.json", &index_bytes) else {
        c.unreferenced_corrupt();
        return Ok(c.report);
    };
    c.expect(
        index["schemaVersion"] == 2,
        "index.json: schemaVersion is not 2",
    );
    c.expect(
        index["mediaType"] == media::INDEX,
        "index.json: wrong mediaType",
    );
    let mut names = BTreeSet::new();
    let mut checked = BTreeSet::new();
    let mut artifacts = Vec::new();
    for entry in index["manifests"].as_array().into_iter().flatten() {
        let Some(name) = entry["annotations"][REF_NAME].as_str() else {
            if entry["artifactType"].is_string() {
                artifacts.push(entry);
                continue;
            }
            c.problem(format!(
                "index.json: manifest {} has no {REF_NAME}",
                entry["digest"]
            ));
            continue;
        };
        c.report.refs += 1;
        if let Err(why) = check_ref_name(name) {
            c.problem(format!("index.json: bad ref name {name:?}: {why}"));
        }
        c.expect(
            names.insert(name.to_string()),
            &format!("index.json: ref {name} appears twice"),
        );
        c.expect(
            entry["mediaType"] == media::MANIFEST,
            &format!("{name}: manifest mediaType"),
        );
        if let Some(digest) = c.descriptor(name, entry)
            && checked.insert(digest.clone())
        {
            c.manifest(name, &digest)?;
        }
    }
    for entry in artifacts {
        c.artifact(entry, &checked)?;
    }
    c.unreferenced_corrupt();
    Ok(c.report)
}

struct Checker<'a> {
    layout: &'a Layout,
    report: FsckReport,
    /// digest -> size of every well-named blob.
    sizes: HashMap<String, u64>,
    /// digest -> the sha256 actually found, for blobs whose content changed.
    corrupt: HashMap<String, String>,
    /// The corrupt blobs a descriptor named (the rest are reported alone).
    named: BTreeSet<String>,
    /// layer digest -> its diff_id, once checked.
    layers: HashMap<String, String>,
}

impl Checker<'_> {
    fn problem(&mut self, msg: String) {
        self.report.problems.push(msg);
    }

    fn expect(&mut self, ok: bool, msg: &str) {
        if !ok {
            self.problem(msg.to_string());
        }
    }

    /// Every file under blobs/sha256 is named by its content's sha256.
    fn blobs(&mut self) -> Result<()> {
        let dir = self.layout.root().join("blobs/sha256");
        for entry in std::fs::read_dir(&dir).io_ctx(|| format!("reading {}", dir.display()))? {
            let entry = entry.io_ctx(|| format!("reading {}", dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let mut file =
                std::fs::File::open(&path).io_ctx(|| format!("opening {}", path.display()))?;
            let mut hasher = HashingReader::new(&mut file);
            let digest = hasher
                .finish()
                .io_ctx(|| format!("reading {}", path.display()))?;
            let (actual, size) = (digest["sha256:".len()..].to_string(), hasher.size);
            self.report.blobs += 1;
            if actual == name {
                self.sizes.insert(format!("sha256:{name}"), size);
            } else {
                self.corrupt.insert(format!("sha256:{name}"), actual);
            }
        }
        Ok(())
    }

    /// Corrupt blobs no image names are still damage in the layout.
    fn unreferenced_corrupt(&mut self) {
        let mut rest: Vec<(String, String)> = self
            .corrupt
            .iter()
            .filter(|(digest, _)| !self.named.contains(*digest))
            .map(|(d, a)| (d.clone(), a.clone()))
            .collect();
        rest.sort();
        for (digest, actual) in rest {
            let path = self.layout.blob_path(&digest);
            self.problem(format!(
                "blob {digest} is corrupt: {} has sha256:{actual}",
                path.display()
            ));
        }
    }

    /// A descriptor's blob exists with its size; returns its digest.
    fn descriptor(&mut self, what: &str, d: &Value) -> Option<String> {
        let digest = d["digest"].as_str().unwrap_or_default().to_string();
        if let Some(actual) = self.corrupt.get(&digest) {
            let path = self.layout.blob_path(&digest);
            self.problem(format!(
                "{what}: blob {digest} is corrupt: {} has sha256:{actual}",
                path.display()
            ));
            self.named.insert(digest.clone());
            self.report.damaged.insert(digest);
            return None;
        }
        match self.sizes.get(&digest) {
            None => {
                let path = self.layout.blob_path(&digest);
                self.problem(format!(
                    "{what}: blob {digest} is missing: there is no {}",
                    path.display()
                ));
                self.report.damaged.insert(digest);
                None
            }
            Some(&size) if d["size"].as_u64() != Some(size) => {
                self.problem(format!(
                    "{what}: {digest} has size {size}, descriptor says {}",
                    d["size"]
                ));
                None
            }
            Some(_) => Some(digest),
        }
    }

    /// Parse a JSON document that kiln wrote, which must be canonical.
    fn json(&mut self, what: &str, bytes: &[u8]) -> Option<Value> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => {
                self.expect(
                    json::to_canonical(&v) == bytes,
                    &format!("{what}: JSON is not canonical"),
                );
                Some(v)
            }
            Err(e) => {
                self.problem(format!("{what}: not JSON: {e}"));
                None
            }
        }
    }

    fn manifest(&mut self, name: &str, digest: &str) -> Result<()> {
        let bytes = self.layout.read_blob(digest)?;
        let Some(m) = self.json(&format!("{name}: manifest"), &bytes) else {
            return Ok(());
        };
        self.expect(
            m["schemaVersion"] == 2,
            &format!("{name}: manifest schemaVersion"),
        );
        self.expect(
            m["mediaType"] == media::MANIFEST,
            &format!("{name}: manifest mediaType"),
        );
        self.expect(
            m["config"]["mediaType"] == media::CONFIG,
            &format!("{name}: config mediaType"),
        );
        let Some(config_digest) = self.descriptor(&format!("{name}: config"), &m["config"]) else {
            return Ok(());
        };
        let bytes = self.layout.read_blob(&config_digest)?;
        let Some(config) = self.json(&format!("{name}: config"), &bytes) else {
            return Ok(());
        };
        for key in ["architecture", "os"] {
            self.expect(
                config[key].is_string(),
                &format!("{name}: config has no {key}"),
            );
        }
        self.expect(
            config["rootfs"]["type"] == "layers",
            &format!("{name}: rootfs.type"),
        );
        let diff_ids: Vec<&str> = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let layers = m["layers"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != layers.len() {
            self.problem(format!(
                "{name}: {} layers but {} diff_ids",
                layers.len(),
                diff_ids.len()
            ));
        }
        let history = config["history"].as_array().into_iter().flatten();
        let non_empty = history.filter(|h| h["empty_layer"] != true).count();
        if non_empty != layers.len() {
            self.problem(format!(
                "{name}: {} layers but {non_empty} history entries",
                layers.len()
            ));
        }
        for (i, layer) in layers.iter().enumerate() {
            let what = format!("{name}: layer {i}");
            let Some(digest) = self.descriptor(&what, layer) else {
                continue;
            };
            let media_type = layer["mediaType"].as_str().unwrap_or_default().to_string();
            let diff_id = match self.layers.get(&digest) {
                Some(d) => Some(d.clone()),
                None => self.layer(&what, &digest, &media_type)?,
            };
            if let (Some(actual), Some(expected)) = (diff_id, diff_ids.get(i))
                && actual != *expected
            {
                self.problem(format!(
                    "{what}: diff_id is {actual}, config says {expected}"
                ));
            }
        }
        Ok(())
    }

    /// An artifact listed in the index (artifact.rs): its manifest is
    /// canonical with the entry's artifactType, the empty config, its
    /// document blobs whole, and its subject an image a ref names.
    fn artifact(&mut self, entry: &Value, images: &BTreeSet<String>) -> Result<()> {
        let what = format!("artifact {}", entry["digest"].as_str().unwrap_or("?"));
        self.expect(
            entry["mediaType"] == media::MANIFEST,
            &format!("{what}: mediaType"),
        );
        let Some(digest) = self.descriptor(&what, entry) else {
            return Ok(());
        };
        let bytes = self.layout.read_blob(&digest)?;
        let Some(m) = self.json(&what, &bytes) else {
            return Ok(());
        };
        self.expect(
            m["artifactType"] == entry["artifactType"],
            &format!("{what}: artifactType differs from its index entry's"),
        );
        self.expect(
            m["config"]["mediaType"] == artifact::EMPTY_MEDIA_TYPE,
            &format!("{what}: config is not the empty descriptor"),
        );
        if let Some(config) = self.descriptor(&format!("{what}: config"), &m["config"]) {
            let bytes = self.layout.read_blob(&config)?;
            self.expect(
                bytes == artifact::EMPTY,
                &format!("{what}: config is not {{}}"),
            );
        }
        let layers = m["layers"].as_array().cloned().unwrap_or_default();
        self.expect(!layers.is_empty(), &format!("{what}: no document"));
        for (i, layer) in layers.iter().enumerate() {
            self.descriptor(&format!("{what}: layer {i}"), layer);
        }
        let subject = m["subject"]["digest"].as_str().unwrap_or_default();
        self.expect(
            images.contains(subject),
            &format!("{what}: subject {subject:?} is no image a ref of index.json names"),
        );
        Ok(())
    }

    /// Check one layer blob; returns its diff_id when it could be read.
    fn layer(&mut self, what: &str, digest: &str, media_type: &str) -> Result<Option<String>> {
        self.report.layers += 1;
        let path = self.layout.blob_path(digest);
        let mut file =
            std::fs::File::open(&path).io_ctx(|| format!("opening {}", path.display()))?;
        let mut magic = [0u8; 4];
        let n = file
            .read(&mut magic)
            .io_ctx(|| format!("reading {}", path.display()))?;
        let magic = &magic[..n];
        let file = std::fs::File::open(&path).io_ctx(|| format!("opening {}", path.display()))?;
        let reader: Box<dyn Read> = match media_type {
            media::LAYER_GZIP if magic.starts_with(&[0x1f, 0x8b]) => {
                Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
            }
            media::LAYER_ZSTD if magic == [0x28, 0xb5, 0x2f, 0xfd] => Box::new(
                zstd::stream::read::Decoder::new(file)
                    .io_ctx(|| format!("reading {}", path.display()))?,
            ),
            media::LAYER_TAR => Box::new(io::BufReader::new(file)),
            _ => {
                self.problem(format!(
                    "{what}: content does not match media type {media_type}"
                ));
                return Ok(None);
            }
        };
        let mut hashing = HashingReader::new(reader);
        let problems = tar_problems(&mut hashing);
        let rest = io::copy(&mut hashing, &mut io::sink());
        match (problems, rest) {
            (Ok(list), Ok(_)) => {
                for p in list {
                    self.problem(format!("{what}: {p}"));
                }
                let diff_id = hashing.digest();
                self.layers.insert(digest.to_string(), diff_id.clone());
                Ok(Some(diff_id))
            }
            (Err(e), _) | (_, Err(e)) => {
                self.problem(format!("{what}: unreadable tar: {e}"));
                Ok(None)
            }
        }
    }
}

/// Rules on the entries of one tar stream.
fn tar_problems(reader: &mut impl Read) -> io::Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut archive = tar::Archive::new(reader);
    let mut previous: Option<Vec<u8>> = None;
    let mut seen = BTreeSet::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let raw = entry.path_bytes().into_owned();
        let name = display_name(&raw);
        let path: Vec<u8> = raw.strip_suffix(b"/").unwrap_or(&raw).to_vec();
        if path.starts_with(b"/") {
            problems.push(format!("absolute path {name}"));
        }
        if path.split(|&b| b == b'/').any(|c| c == b"..") {
            problems.push(format!("path with .. {name}"));
        }
        if let Some(prev) = &previous {
            let order = components(prev).cmp(components(&path));
            if order.is_eq() {
                problems.push(format!("duplicate path {name}"));
            } else if order.is_gt() {
                problems.push(format!("{name} comes after {}", display_name(prev)));
            }
        }
        if entry.header().entry_type().is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            if !seen.contains(&target) {
                problems.push(format!(
                    "hardlink {name} points to {} not written before it",
                    display_name(&target)
                ));
            }
        }
        seen.insert(path.clone());
        previous = Some(path);
    }
    Ok(problems)
}

fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|&b| b == b'/')
}
