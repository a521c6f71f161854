//! Helpers of the layouts tests: fixture stacks, and stacks written on the
//! fly from a list of files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{kiln, tempdir};

/// A fixture stack of tests/fixtures/layouts/.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/layouts")
        .join(name)
}

/// A stack in a temp dir: kiln.toml (empty unless given) and `files`, each
/// `(path, text)` relative to the root.
pub fn stack(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempdir();
    std::fs::write(dir.path().join("kiln.toml"), "").unwrap();
    write(dir.path(), files);
    dir
}

pub fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A copy of a fixture stack, to change.
pub fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempdir();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture(name).display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// `kiln ARGS` run in `dir`, KILN_PROJECT cleared so the walk-up is tested.
pub fn kiln_in(dir: &Path, args: &[&str]) -> Output {
    kiln()
        .current_dir(dir)
        .env_remove("KILN_PROJECT")
        .args(args)
        .output()
        .unwrap()
}
