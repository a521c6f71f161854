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
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Context;

use crate::store::Image;

/// The files, by their path in an image.
const FILES: [&str; 4] = ["etc/passwd", "etc/group", "etc/shadow", "etc/gshadow"];

/// Writes the account files of image `reference` of the layout at `layout`
/// into `dir` (created; the files the image has, by their base name, with
/// their mode and owner).
pub fn write_parents(layout: &Path, reference: &str, dir: &Path) -> anyhow::Result<()> {
    let image = Image::open(layout, reference)?;
    let files = image
        .merged_files(&FILES)
        .with_context(|| format!("reading the account files of {reference}"))?;
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, file) in files {
        let dest = dir.join(path.trim_start_matches("etc/"));
        fs::write(&dest, &file.bytes)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(file.mode & 0o7777))?;
        let id = |n: u64| u32::try_from(n).ok();
        std::os::unix::fs::lchown(&dest, id(file.uid), id(file.gid))
            .with_context(|| format!("cannot give {} its owner", dest.display()))?;
    }
    Ok(())
}
