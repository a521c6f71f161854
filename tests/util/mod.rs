//! What every integration test shares: the real binary, temp dirs, and the
//! environment `scripts/test-setup` prepares.

#![allow(dead_code)]

pub mod fetch;

use std::path::PathBuf;
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
pub mod layouts;
