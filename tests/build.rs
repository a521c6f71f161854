//! Tests for build: the test world every build test stands on
//! (`scripts/test-world/selftest`) and bob-core, the script kiln runs in
//! each build container (`bob-core/tests/`). Both are bash; these tests run
//! them so `cargo test` covers them.

use crate::util::{describe, require_env};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The chroot tests need root; `scripts/test` runs the suite as root.
fn require_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    let root = String::from_utf8_lossy(&out.stdout).trim() == "0";
    if !root {
        let msg = "not root: the test world's chroot tests need root (scripts/test runs as root)";
        if std::env::var_os("KILN_TEST_REQUIRE_ALL").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    root
}

/// Runs a script and checks it passed and printed its closing line.
fn run_script(script: &str, args: &[&str], last_line: &str) {
    let out = Command::new(repo_path(script))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {script}: {e}"));
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && all.contains(last_line),
        "{script} failed: {}",
        describe(&out)
    );
}

#[test]
fn test_world_stage3_runs_emerge_and_the_emerged_root_runs() {
    let Some(world) = require_env("KILN_TEST_WORLD") else {
        return;
    };
    if !require_root() {
        return;
    }
    run_script("scripts/test-world/selftest", &[&world], "passed for");
}

#[test]
fn bob_core_helpers_unit_tests() {
    run_script("bob-core/tests/helpers", &[], "helper tests passed");
}

#[test]
fn bob_core_builds_a_stack_in_the_stand_in_stage3() {
    let Some(world) = require_env("KILN_TEST_WORLD") else {
        return;
    };
    if !require_root() {
        return;
    }
    run_script("bob-core/tests/in-stage3", &[&world], "in-stage3 passed");
}
