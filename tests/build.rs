//! Tests for build: the test world every build test stands on
//! (`scripts/test-world/selftest`), bob-core, the script kiln runs in each
//! build container (`bob-core/tests/`), and `kiln build` end to end on
//! layouts/demo with the real test world (its air-gapped variant: offline.rs).

use crate::util::{describe, kiln, require_env, require_tool, run_err, run_ok, stderr, tempdir};
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub(crate) use crate::util::require_root;

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

/// A project holding a copy of layouts/demo and bob-core, building from the
/// test world's signed mirror into `oci/`, with its cache inside.
/// As root, with the test world: a temp dir holding `project/`, a copy of
/// layouts/demo and bob-core on the world's mirror; `None` when skipped.
pub(crate) fn root_demo_project() -> Option<(tempfile::TempDir, PathBuf, String)> {
    let world = require_env("KILN_TEST_WORLD")?;
    if !require_root() {
        return None;
    }
    let tmp = tempdir();
    let project = tmp.path().join("project");
    demo_project(&project, &world);
    Some((tmp, project, world))
}

fn demo_project(dir: &Path, world: &str) {
    demo_project_from(
        dir,
        world,
        &format!("{world}/mirror"),
        &format!("{world}/keys"),
    );
}

fn demo_project_from(dir: &Path, _world: &str, mirror: &str, keys: &str) {
    project_from(dir, "demo", mirror, keys);
}

/// A project of layouts/STACK and bob-core building from the world's
/// mirror and keys at `mirror` and `keys`, its cache in `.cache`.
pub(crate) fn project_from(dir: &Path, stack: &str, mirror: &str, keys: &str) {
    fs::create_dir_all(dir.join("layouts")).unwrap();
    for (from, to) in [
        (format!("layouts/{stack}"), "layouts/"),
        ("bob-core".into(), "."),
    ] {
        run_ok(
            Command::new("cp")
                .arg("-a")
                .arg(repo_path(&from))
                .arg(dir.join(to)),
        );
    }
    fs::write(
        dir.join("kiln.toml"),
        format!(
            "layout = \"oci\"\ncache = \".cache\"\n[sources]\nmirrors = [\"file://{mirror}\"]\nkeys = [\"{keys}/release.asc\"]\n"
        ),
    )
    .unwrap();
}

pub(crate) fn build(project: &Path, args: &[&str]) -> Command {
    let mut cmd = kiln();
    cmd.arg("build").args(args).arg("--project").arg(project);
    cmd
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
    )
    .unwrap()
}

/// The manifest of `reference` in the layout at `oci`.
pub fn manifest(oci: &Path, reference: &str) -> Value {
    let index = read_json(&oci.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .unwrap_or_else(|| panic!("{reference} is not in {index}"));
    blob(oci, &entry["digest"])
}

fn blob(oci: &Path, digest: &Value) -> Value {
    let hex = digest.as_str().unwrap().trim_start_matches("sha256:");
    read_json(&oci.join("blobs/sha256").join(hex))
}

/// `tar -tv` of the last layer of `reference`.
fn top_layer_listing(oci: &Path, reference: &str) -> String {
    let manifest = manifest(oci, reference);
    let hex = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()[7..]
        .to_string();
    let out = run_ok(
        Command::new("tar")
            .arg("-tvzf")
            .arg(oci.join("blobs/sha256").join(hex)),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The paths in the last layer of `reference`.
pub(crate) fn top_layer_paths(oci: &Path, reference: &str) -> Vec<String> {
    let manifest = manifest(oci, reference);
    let hex = manifest["layers"].as_array().unwrap().last().unwrap()["digest"]
        .as_str()
        .unwrap()[7..]
        .to_string();
    let out = run_ok(
        Command::new("tar")
            .arg("-tzf")
            .arg(oci.join("blobs/sha256").join(hex)),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

/// What a built demo stack must be: valid for kiln's strict checker and for
/// umoci (every blob's digest, size and diff_id), each child's manifest
/// starting with its parent's exact layer descriptors, the leaf layer holding
/// only its own package (package.provided worked), and PACKAGES.md listing it.
fn check_built_stack(tmp: &Path, project: &Path) {
    let oci = project.join("oci");
    // kiln's strict checker, then umoci, which checks every blob's digest,
    // size and diff_id.
    run_ok(kiln().args(["ls", "--check", "--layout"]).arg(&oci));
    for reference in DEMO {
        let dest = tmp.join(format!("unpack-{}", reference.replace(['/', ':'], "-")));
        run_ok(
            Command::new("umoci")
                .args(["unpack", "--rootless", "--image"])
                .arg(format!("{}:{reference}", oci.display()))
                .arg(&dest),
        );
    }

    // Each child's manifest starts with its parent's exact layer descriptors.
    for pair in DEMO.windows(2) {
        let parent = manifest(&oci, pair[0]);
        let child = manifest(&oci, pair[1]);
        let parent_layers = parent["layers"].as_array().unwrap();
        let child_layers = child["layers"].as_array().unwrap();
        assert_eq!(
            child_layers.len(),
            parent_layers.len() + 1,
            "{} on {}",
            pair[1],
            pair[0]
        );
        assert_eq!(
            &child_layers[..parent_layers.len()],
            parent_layers.as_slice(),
            "{} does not start with {}'s layers",
            pair[1],
            pair[0]
        );
        let config = blob(&oci, &child["config"]["digest"]);
        assert_eq!(
            config["rootfs"]["diff_ids"].as_array().unwrap().len(),
            child_layers.len()
        );
    }

    // The leaf layer holds greeting only: hello and glibc come from its parents.
    let leaf = top_layer_paths(&oci, "demo/greeting:latest");
    assert!(leaf.contains(&"usr/bin/greeting".to_string()), "{leaf:?}");
    for foreign in ["usr/bin/hello", "lib64/ld-linux-x86-64.so.2"] {
        assert!(
            !leaf.contains(&foreign.to_string()),
            "the leaf layer holds its parent's {foreign}: {leaf:?}"
        );
    }
    let packages =
        fs::read_to_string(project.join("layouts/demo/images/greeting/PACKAGES.md")).unwrap();
    assert!(
        packages.contains("| app-misc/greeting | 1.0 |"),
        "{packages}"
    );
    assert!(!packages.contains("app-misc/hello |"), "{packages}");
}

pub(crate) const DEMO: [&str; 3] = [
    "demo/glibc:latest",
    "demo/hello:latest",
    "demo/greeting:latest",
];

#[test]
fn build_demo_stack_end_to_end_then_cache_rebuild_one_leaf_and_fail_cleanly() {
    let Some(world) = require_env("KILN_TEST_WORLD") else {
        return;
    };
    if !require_root() || !require_tool("podman") || !require_tool("umoci") {
        return;
    }
    let tmp = tempdir();
    let project = tmp.path().join("project");
    demo_project(&project, &world);
    let oci = project.join("oci");

    // Cold build of the whole stack.
    let out = run_ok(&mut build(&project, &["demo"]));
    let err = stderr(&out);
    for image in [
        "builder demo/bob",
        "image demo/glibc",
        "image demo/hello",
        "image demo/greeting",
    ] {
        assert!(
            err.contains(&format!("Built {image} in")),
            "no end line for {image}: {}",
            describe(&out)
        );
    }

    check_built_stack(tmp.path(), &project);

    // podman runs the top image, which runs its parent's program.
    let podman = tmp.path().join("podman");
    let out = run_ok(
        Command::new("podman")
            .arg("--root")
            .arg(podman.join("root"))
            .arg("--runroot")
            .arg(podman.join("runroot"))
            .args(["run", "--rm", "--network", "none"])
            // relative: podman wants a lower-case layout path
            .arg("oci:oci:demo/greeting:latest")
            .current_dir(&project),
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        printed.contains("greeting 1.0 asks hello to greet you:")
            && printed.contains("Hello, container!"),
        "{}",
        describe(&out)
    );

    // Nothing changed: no container, every image cached, index unchanged.
    let index = fs::read(oci.join("index.json")).unwrap();
    let out = run_ok(&mut build(&project, &["demo"]));
    let err = stderr(&out);
    assert!(
        !err.contains("Building"),
        "a no-op rebuild built something: {}",
        describe(&out)
    );
    assert!(err.contains("0 built, 4 cached"), "{}", describe(&out));
    assert_eq!(
        fs::read(oci.join("index.json")).unwrap(),
        index,
        "a no-op rebuild changed index.json"
    );

    // One leaf's build.sh changed: only that leaf rebuilds.
    let hello = manifest(&oci, "demo/hello:latest");
    fs::write(
        project.join("layouts/demo/images/greeting/build.sh"),
        "# changed\n",
    )
    .unwrap();
    let out = run_ok(&mut build(&project, &["demo"]));
    let err = stderr(&out);
    assert!(
        err.contains("Building image demo/greeting"),
        "{}",
        describe(&out)
    );
    assert!(err.contains("1 built, 3 cached"), "{}", describe(&out));
    assert_eq!(
        manifest(&oci, "demo/hello:latest"),
        hello,
        "the leaf's change rebuilt its parent"
    );

    // --force rebuilds the named image only, from its binary package.
    let out = run_ok(&mut build(&project, &["--force", "demo/greeting"]));
    assert!(
        stderr(&out).contains("1 built, 3 cached"),
        "{}",
        describe(&out)
    );
    let log = fs::read_to_string(project.join(".cache/logs/bob-demo-greeting.log")).unwrap();
    assert!(
        log.contains("[binary") && log.contains("app-misc/greeting-1.0"),
        "not from its binary package:\n{log}"
    );

    // A package whose build fails: a clear error, the layout unchanged.
    let broken = project.join("layouts/demo/images/broken");
    fs::create_dir_all(&broken).unwrap();
    fs::write(
        broken.join("image.toml"),
        "parent = \"demo/glibc\"\npackages = [\"app-misc/broken\"]\n",
    )
    .unwrap();
    let index = fs::read(oci.join("index.json")).unwrap();
    let out = run_err(&mut build(&project, &["demo/broken"]));
    let err = stderr(&out);
    assert!(
        err.contains("error: building image demo/broken failed"),
        "{}",
        describe(&out)
    );
    assert!(
        err.contains("emerge failed: app-misc/broken-1.0 failed in its compile phase"),
        "{}",
        describe(&out)
    );
    assert!(err.contains("hint: the full log is "), "{}", describe(&out));
    assert_eq!(
        fs::read(oci.join("index.json")).unwrap(),
        index,
        "a failed build changed index.json"
    );
}

/// As root, with the test world and the test user with a subuid range: a
/// temp dir holding the demo `project/` owned by that user, as
/// [`user_demo_project`] makes it, and the user's name; `None` when skipped.
pub(crate) fn rootless_demo_project() -> Option<(tempfile::TempDir, PathBuf, String)> {
    let world = require_env("KILN_TEST_WORLD")?;
    let user = require_env("KILN_TEST_USER_SUB")?;
    if !require_root() {
        return None;
    }
    let (tmp, project) = user_demo_project(&world, &user);
    Some((tmp, project, user))
}

/// The world's mirror and keys copied to `dir/world`, for a user who cannot
/// read root's home, where the world lives.
pub(crate) fn world_copy(dir: &Path, world: &str) -> PathBuf {
    let copy = dir.join("world");
    fs::create_dir_all(&copy).unwrap();
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(format!("{world}/mirror"))
            .arg(format!("{world}/keys"))
            .arg(&copy),
    );
    copy
}

/// A temp dir owned by `user` holding `project/` (layouts/demo, bob-core)
/// on the user's own copy of the world's mirror and keys (the world lives in
/// root's home).
pub(crate) fn user_demo_project(world: &str, user: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let world_copy = world_copy(tmp.path(), world);
    let project = tmp.path().join("project");
    demo_project_from(
        &project,
        world,
        &world_copy.join("mirror").display().to_string(),
        &world_copy.join("keys").display().to_string(),
    );
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:"))
            .arg(tmp.path()),
    );
    (tmp, project)
}

/// `kiln COMMAND --project PROJECT` run by `user`, under umask 077 as on a
/// hardened host: what kiln makes for the build container's own users must
/// not depend on the caller's umask.
pub(crate) fn as_user(user: &str, command: &str, project: &Path) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args([
        "-u",
        user,
        "--",
        "sh",
        "-c",
        r#"umask 077 && exec "$0" "$@""#,
    ])
    .arg(crate::util::kiln_path())
    .arg(command)
    .arg("--project")
    .arg(project)
    .env("KILN_NO_PROGRESS", "1")
    .env("NO_COLOR", "1");
    cmd
}

/// Goes on in repro.rs: the same stack as root, then through a registry.
#[test]
fn build_demo_stack_rootless_as_a_user_with_a_subuid_range() {
    let (Some(world), Some(user)) = (
        require_env("KILN_TEST_WORLD"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    if !require_root()
        || !require_tool("podman")
        || !require_tool("skopeo")
        || !require_tool("umoci")
        || !require_tool("docker-registry")
    {
        return;
    }
    let (tmp, project) = user_demo_project(&world, &user);
    let as_user = |args: &[&str]| {
        let mut cmd = as_user(&user, "build", &project);
        cmd.args(args).env("SOURCE_DATE_EPOCH", crate::repro::EPOCH);
        cmd
    };
    let out = run_ok(&mut as_user(&["demo"]));
    assert!(
        stderr(&out).contains("4 built, 0 cached"),
        "{}",
        describe(&out)
    );

    check_built_stack(tmp.path(), &project);

    // Layers record the ids inside the build, not the user's subuids.
    let tar = top_layer_listing(&project.join("oci"), "demo/glibc:latest");
    assert!(
        tar.lines()
            .all(|l| l.split_whitespace().nth(1) == Some("0/0")),
        "{tar}"
    );
    let podman = tmp.path().join("podman");
    let out = run_ok(
        Command::new("podman")
            .arg("--root")
            .arg(podman.join("root"))
            .arg("--runroot")
            .arg(podman.join("runroot"))
            .args([
                "run",
                "--rm",
                "--network",
                "none",
                "oci:oci:demo/greeting:latest",
            ])
            .current_dir(&project),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Hello, container!"),
        "{}",
        describe(&out)
    );

    let out = run_ok(&mut as_user(&["demo"]));
    assert!(
        stderr(&out).contains("0 built, 4 cached"),
        "{}",
        describe(&out)
    );
    crate::repro::root_rebuild_then_registry_round_trip(tmp.path(), &project, &DEMO);
}

#[test]
fn build_without_a_subuid_range_says_how_to_get_one() {
    let Some(user) = require_env("KILN_TEST_USER_NOSUB") else {
        return;
    };
    if !require_root() {
        return;
    }
    let tmp = tempdir();
    let project = tmp.path().join("project");
    demo_project_from(&project, "", "/nonexistent", "/nonexistent");
    run_ok(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{user}:"))
            .arg(tmp.path()),
    );
    let out = run_err(
        Command::new("runuser")
            .args(["-u", &user, "--"])
            .arg(crate::util::kiln_path())
            .args(["build", "demo", "--project"])
            .arg(&project)
            .env("NO_COLOR", "1"),
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "error: user {user} has no subordinate id range in /etc/subuid and /etc/subgid"
        )) && err.contains(&format!(
            "hint: sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {user}"
        )),
        "{}",
        describe(&out)
    );
}

#[test]
fn bob_core_builds_rootless_with_a_subuid_range() {
    let Some(world) = require_env("KILN_TEST_WORLD") else {
        return;
    };
    let Some(user) = require_env("KILN_TEST_USER_SUB") else {
        return;
    };
    if !require_root() {
        return;
    }
    let out = Command::new(repo_path("bob-core/tests/rootless"))
        .arg(&world)
        .env("KILN_TEST_USER_SUB", &user)
        .output()
        .expect("spawn bob-core/tests/rootless");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("rootless passed"),
        "bob-core/tests/rootless failed: {}",
        describe(&out)
    );
}
