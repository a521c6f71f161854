//! The stage3 and snapshot a build starts from, verified by the fetch
//! module (`kiln.lock` pins, SHA512, OpenPGP), and the distfiles.
//!
//! Distfiles come two ways: remote mirrors are Portage's GENTOO_MIRRORS in
//! the build container; a local (`file://` or path) mirror's `distfiles/`,
//! as `kiln fetch --to` writes it for an air-gapped machine, is copied into
//! the shared distfiles cache here, so an `--offline` build needs no network.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fetch::{self, config::Sources};
use crate::printer::Printer;

/// The files a build starts from, and the pins that name them.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub stage3: PathBuf,
    pub snapshot: PathBuf,
    /// The kiln.lock pins (path, size, SHA512 of both): part of every input digest.
    pub pins: String,
    /// The same pins, for the images' provenance.
    pub lock: fetch::Lock,
}

pub fn resolve(
    root: &Path,
    sources: &Sources,
    cache: &Path,
    offline: bool,
    printer: &Printer,
) -> anyhow::Result<Inputs> {
    let options = fetch::Options {
        offline,
        cache_dir: Some(cache.join("downloads")),
    };
    let inputs = fetch::inputs(root, sources, &options, printer)?;
    let pins = [&inputs.lock.stage3, &inputs.lock.snapshot]
        .iter()
        .map(|p| format!("{} {} {}\n", p.path, p.size, p.sha512))
        .collect();
    for mirror in sources.mirrors.iter().filter_map(|m| local_mirror(root, m)) {
        seed_distfiles(&mirror.join("distfiles"), &cache.join("distfiles"))?;
    }
    Ok(Inputs {
        stage3: inputs.stage3,
        snapshot: inputs.snapshot,
        pins,
        lock: inputs.lock,
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
