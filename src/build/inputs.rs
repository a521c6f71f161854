//! Adapter until the fetch module (issue 6) lands on this branch: finds the
//! stage3 and snapshot named by `[sources]` on a local (`file://` or path)
//! mirror, without the signature checks `kiln fetch` does, and copies the
//! mirror's distfiles into the shared distfiles cache (the test world's
//! fixture sources; `kiln fetch` of distfiles is issue 7's air-gap part).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::hinted;
use crate::fetch::config::Sources;

/// The files a build starts from, and the pins that name them.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub stage3: PathBuf,
    pub snapshot: PathBuf,
    /// Identifies both files (name, size, mtime): part of every input digest.
    pub pins: String,
}

pub fn resolve(root: &Path, sources: &Sources, distfiles: &Path) -> anyhow::Result<Inputs> {
    let mirrors: Vec<PathBuf> = sources
        .mirrors
        .iter()
        .filter_map(|m| local_mirror(root, m))
        .collect();
    let Some(mirror) = mirrors.first() else {
        return Err(hinted(
            format!(
                "no local mirror in kiln.toml's [sources] mirrors ({}): this kiln builds only from a file:// mirror",
                sources.mirrors.join(", ")
            ),
            "set `mirrors = [\"file:///path/to/mirror\"]` in kiln.toml's [sources]",
        ));
    };
    let autobuilds = mirror.join(format!("releases/{}/autobuilds", sources.arch));
    let latest = autobuilds.join(format!(
        "latest-stage3-{}-{}.txt",
        sources.arch, sources.flavour
    ));
    let text =
        fs::read_to_string(&latest).with_context(|| format!("cannot read {}", latest.display()))?;
    let rel = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('-'))
        .find_map(|l| {
            l.split_whitespace()
                .next()
                .filter(|w| w.contains("stage3-"))
        })
        .ok_or_else(|| anyhow::anyhow!("{}: names no stage3", latest.display()))?;
    let stage3 = autobuilds.join(rel);
    let snapshot = mirror.join("snapshots").join(&sources.snapshot);
    let mut pins = String::new();
    for file in [&stage3, &snapshot] {
        let meta = fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
        let mtime = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        pins.push_str(&format!("{} {} {mtime}\n", file.display(), meta.len()));
    }
    seed_distfiles(&mirror.join("distfiles"), distfiles)?;
    Ok(Inputs {
        stage3,
        snapshot,
        pins,
    })
}

fn local_mirror(root: &Path, spec: &str) -> Option<PathBuf> {
    if let Some(path) = spec.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    (!spec.contains("://")).then(|| root.join(spec))
}

fn seed_distfiles(from: &Path, to: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(to)?;
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_file() && entry.file_name() != "layout.conf" && !dest.exists() {
            fs::copy(entry.path(), &dest).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    dest.display()
                )
            })?;
        }
    }
    Ok(())
}
