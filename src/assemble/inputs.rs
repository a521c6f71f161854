//! The stage3 and snapshot a build starts from, verified by the fetch
//! module (`kiln.lock` pins, SHA512, OpenPGP), and the distfiles.
//!
//! Distfiles come two ways: remote mirrors are Portage's GENTOO_MIRRORS in
//! the build container; a local (`file://` or path) mirror's `distfiles/`,
//! as `kiln fetch --to` writes it for an air-gapped machine, is copied into
//! the shared distfiles cache here, so an `--offline` build needs no network.

use std::fs;
use std::path::Path;

use crate::error::IoError;
use crate::fetch::{self, Mirror};
use crate::layouts::ProjectSettings;
use crate::printer::Printer;

/// The files a build starts from, and the pins that name them.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The stage3 and snapshot in the download cache, and kiln.lock.
    pub fetched: fetch::Inputs,
    /// The kiln.lock pins (path, size, SHA512 of both): part of every input digest.
    pub pins: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// fetch's error, as it reports it.
    #[error(transparent)]
    Fetch(anyhow::Error),
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Fetch(e) => crate::error::top_fix(e),
            _ => None,
        }
    }
}

pub fn resolve(
    settings: &ProjectSettings,
    offline: bool,
    printer: &Printer,
) -> Result<Inputs, Error> {
    let options = fetch::Options {
        offline,
        downloads: settings.cache.downloads(),
    };
    let fetched = fetch::inputs(&settings.root, &settings.sources, &options, printer)
        .map_err(Error::Fetch)?;
    let pins = [&fetched.lock.stage3, &fetched.lock.snapshot]
        .iter()
        .map(|p| format!("{} {} {}\n", p.path, p.size, p.sha512))
        .collect();
    for mirror in &settings.sources.mirrors {
        if let Mirror::Local(dir) = Mirror::parse(mirror, &settings.root) {
            seed_distfiles(&dir.join("distfiles"), &settings.cache.distfiles())?;
        }
    }
    Ok(Inputs { fetched, pins })
}

fn seed_distfiles(from: &Path, to: &Path) -> Result<(), Error> {
    fs::create_dir_all(to).map_err(IoError::at("create", to))?;
    let Ok(entries) = fs::read_dir(from) else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry.map_err(IoError::at("read", from))?;
        let dest = to.join(entry.file_name());
        let is_file = entry
            .file_type()
            .map_err(IoError::at("read", &entry.path()))?
            .is_file();
        if is_file && entry.file_name() != "layout.conf" && !dest.exists() {
            fs::copy(entry.path(), &dest).map_err(IoError::between(
                "copy",
                &entry.path(),
                &dest,
            ))?;
        }
    }
    Ok(())
}
