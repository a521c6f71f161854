//! Input digests: what decides whether an image must be rebuilt.
//!
//! An image's input digest covers everything its build reads: the files of
//! its directory (but not the PACKAGES.md and SBOMs the build writes there), its
//! resolved settings, its parent's manifest digest, the digest of the
//! builder state it builds in, the stage3 and snapshot pins and bob-core's
//! content. The digest is kept as an annotation on the image in the layout
//! and on the builder state the build leaves, so an unchanged image is
//! recognised from index.json alone, with no container started.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::sbom;

/// The annotation on the manifest (and its index entry) holding the digest.
pub const ANNOTATION: &str = "dev.kiln.input-digest";

/// Files the build itself writes into an image's directory.
const GENERATED: &[&str] = &[
    "PACKAGES.md",
    sbom::SPDX_FILE,
    sbom::CYCLONEDX_FILE,
    sbom::PROVENANCE_FILE,
];

/// Feeds named parts into one digest; every part is length-prefixed so no two
/// different inputs hash alike.
pub struct InputDigest(Sha256);

impl InputDigest {
    pub fn new(kind: &str, id: &str) -> InputDigest {
        let mut inputs = InputDigest(Sha256::new());
        inputs.part("kiln-build-v1", kind.as_bytes());
        inputs.part("id", id.as_bytes());
        inputs
    }

    pub fn part(&mut self, name: &str, value: &[u8]) -> &mut Self {
        for bytes in [name.as_bytes(), value] {
            self.0.update((bytes.len() as u64).to_le_bytes());
            self.0.update(bytes);
        }
        self
    }

    /// Every file under `dir` (paths, modes, contents, link targets), in
    /// name order; not the files the build writes there.
    pub fn tree(&mut self, name: &str, dir: &Path) -> std::io::Result<&mut Self> {
        self.part("tree", name.as_bytes());
        self.walk(dir, dir, &|rel, top| top && GENERATED.contains(&rel))?;
        Ok(self)
    }

    /// Every file of an ebuild repository, as [`Inputs::tree`], but for
    /// the `.git` dirs: Portage never reads them, and a `git fetch` must
    /// not rebuild the images.
    pub fn repository(&mut self, name: &str, dir: &Path) -> std::io::Result<&mut Self> {
        self.part("repository", name.as_bytes());
        self.walk(dir, dir, &|rel, _| {
            Path::new(rel).file_name().is_some_and(|n| n == ".git")
        })?;
        Ok(self)
    }

    /// `skip`: whether to leave out a path (relative to `base`), told
    /// whether it is in `base` itself.
    fn walk(
        &mut self,
        base: &Path,
        dir: &Path,
        skip: &dyn Fn(&str, bool) -> bool,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if skip(&rel, dir == base) {
                continue;
            }
            let meta = fs::symlink_metadata(&path)?;
            let mode = meta.permissions().mode().to_string();
            if meta.is_dir() {
                self.part("dir", rel.as_bytes())
                    .part("mode", mode.as_bytes());
                self.walk(base, &path, skip)?;
            } else if meta.file_type().is_symlink() {
                let target = fs::read_link(&path)?;
                self.part("symlink", rel.as_bytes())
                    .part("target", target.to_string_lossy().as_bytes());
            } else {
                let mut content = Vec::new();
                fs::File::open(&path)?.read_to_end(&mut content)?;
                self.part("file", rel.as_bytes())
                    .part("mode", mode.as_bytes())
                    .part("content", &content);
            }
        }
        Ok(())
    }

    /// Every regular file under `dir` but the generated ones, with its
    /// sha256 hex, in name order: the image's files in its provenance.
    pub fn files(dir: &Path) -> std::io::Result<Vec<(String, String)>> {
        let mut found = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for entry in fs::read_dir(&d)? {
                let path = entry?.path();
                let rel = path.strip_prefix(dir).unwrap_or(&path);
                let rel = rel.to_string_lossy().into_owned();
                let meta = fs::symlink_metadata(&path)?;
                if meta.is_dir() {
                    todo.push(path);
                } else if meta.is_file() && !GENERATED.contains(&rel.as_str()) {
                    found.push((rel, sha256_hex(&fs::read(&path)?)));
                }
            }
        }
        found.sort();
        Ok(found)
    }

    pub fn finish(self) -> String {
        format!("sha256:{}", crate::oci::hex(&self.0.finalize()))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::oci::hex(&Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest_of(dir: &Path) -> String {
        let mut inputs = InputDigest::new("image", "t/x");
        inputs.tree("dir", dir).unwrap();
        inputs.finish()
    }

    #[test]
    fn a_changed_file_changes_the_digest_and_packages_md_does_not() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("image.toml"), "packages = []\n").unwrap();
        let first = digest_of(dir.path());
        assert_eq!(first, digest_of(dir.path()));
        fs::write(dir.path().join("PACKAGES.md"), "generated\n").unwrap();
        assert_eq!(
            first,
            digest_of(dir.path()),
            "PACKAGES.md is the build's output"
        );
        fs::write(dir.path().join("build.sh"), "true\n").unwrap();
        assert_ne!(first, digest_of(dir.path()));
    }

    #[test]
    fn parts_cannot_run_into_each_other() {
        let mut a = InputDigest::new("image", "t/x");
        a.part("p", b"ab").part("q", b"c");
        let mut b = InputDigest::new("image", "t/x");
        b.part("p", b"a").part("q", b"bc");
        assert_ne!(a.finish(), b.finish());
    }
}
