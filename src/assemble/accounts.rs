//! The parent image's account files for a child's build. Gentoo's acct-user
//! and acct-group packages add users with `useradd`/`groupadd --prefix
//! /emerge-root`, which edit etc/passwd, group, shadow and gshadow in place;
//! and a layer's copy of a file replaces its parent's in the merged image.
//! So a child's root starts with its parent's files as the parent's layers
//! merge them (whiteouts honoured), read from the parent image in the
//! layout, whatever builder state the child builds in; build-root.sh
//! copies them in before emerge and leaves out of the layer those still
//! identical afterwards (bob-core/lib/accounts.sh).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::IoError;
use crate::store::{self, Image};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("reading the account files of {reference}")]
    Read {
        reference: String,
        #[source]
        source: Box<store::Error>,
    },
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot give {} its owner", path.display())]
    Owner {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.fix(),
            // Boxed to keep the error small, which hides it from the chain.
            Error::Read { source, .. } => source.fix(),
            _ => None,
        }
    }
}

/// The files, by their path in an image.
const FILES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

/// Writes the account files of image `reference` of the layout at `layout`
/// into `dir` (created; the files the image has, by their base name, with
/// their mode and owner).
pub fn write_parents(layout: &Path, reference: &str, dir: &Path) -> Result<(), Error> {
    let image = Image::open(layout, reference)?;
    let files = image.merged_files(&FILES).map_err(|source| Error::Read {
        reference: reference.to_string(),
        source: Box::new(source),
    })?;
    fs::create_dir_all(dir).map_err(IoError::at("create", dir))?;
    for (path, file) in files {
        let dest = dir.join(path.trim_start_matches("etc/"));
        fs::write(&dest, &file.bytes).map_err(IoError::at("write", &dest))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(file.mode & 0o7777))
            .map_err(IoError::at("set the mode of", &dest))?;
        let id = |n: u64| u32::try_from(n).ok();
        std::os::unix::fs::lchown(&dest, id(file.uid), id(file.gid)).map_err(|source| {
            Error::Owner {
                path: dest.clone(),
                source,
            }
        })?;
    }
    Ok(())
}
