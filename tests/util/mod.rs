//! What every integration test shares: the real binary, temp dirs, and the
//! environment `scripts/test-setup` prepares.

#![allow(dead_code)]

pub mod fetch;
pub mod layouts;
pub mod oci;
pub mod runtime;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `kiln` binary under test, with progress and colour off.
pub fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env("KILN_NO_PROGRESS", "1").env("NO_COLOR", "1");
    cmd
}

pub fn kiln_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// A fresh temporary directory, removed when dropped.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kiln-test-")
        .tempdir()
        .expect("create temp dir")
}

/// A setting from `scripts/test-setup` (e.g. `KILN_TEST_WORLD`). When it is
/// missing the test is skipped with a message, unless the suite runs with
/// `KILN_TEST_REQUIRE_ALL=1` (as `scripts/test` does), where a skip is a failure.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            let msg = format!("{var} is not set: run the suite through ./scripts/test");
            if std::env::var_os("KILN_TEST_REQUIRE_ALL").is_some() {
                panic!("{msg}");
            }
            eprintln!("skipped: {msg}");
            None
        }
    }
}

/// Tests that mount or chroot need root; `scripts/test` runs the suite as root.
pub fn require_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    let root = String::from_utf8_lossy(&out.stdout).trim() == "0";
    if !root {
        let msg = "not root: this test mounts or chroots (scripts/test runs as root)";
        if std::env::var_os("KILN_TEST_REQUIRE_ALL").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    root
}

/// A small tmpfs on a fresh directory: a disk that fills up. Unmounted
/// when dropped. `None` (the test skips) when not root.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `size` as mount takes it: `2m`.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        if !require_root() {
            return None;
        }
        let dir = tempdir();
        run_ok(
            Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={size},mode=0755"),
                    "tmpfs",
                ])
                .arg(dir.path()),
        );
        Some(Tmpfs { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Every file and directory under `root` with the bytes of the files, to
/// show that a failed command left a directory as it was.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                todo.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    out
}

/// `size` bytes that no compressor can shrink.
pub fn incompressible(size: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// Like [`require_env`] for a program on PATH.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let msg = format!("{tool} is not installed: run the suite through ./scripts/test");
        if std::env::var_os("KILN_TEST_REQUIRE_ALL").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    found
}

/// Run a command and return its output, panicking with both streams if it failed.
pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", describe(&out));
    out
}

/// Run a command that must fail, returning its output.
pub fn run_err(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        !out.status.success(),
        "{cmd:?} succeeded but should have failed: {}",
        describe(&out)
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        stdout(out),
        stderr(out)
    )
}
