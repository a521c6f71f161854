//! kiln inside CI containers (issue 15, docs/ci.md): podman containers with
//! default security settings, as GitLab's docker executor, a GitHub
//! `container:` job or a Kubernetes pod start them, run the real kiln binary
//! over the test world's debootstrap root. Root in such a container has no
//! CAP_SYS_ADMIN, a masked /proc and /sys and a seccomp filter that refuses
//! sethostname; kiln's doctor must predict the `bound` isolation, `kiln
//! build` must build the demo stack in it with the digests of a host build,
//! and a user with no subordinate range must get an error naming the fix.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::build::root_demo_project;
use crate::repro::{EPOCH, digests};
use crate::util::oci::podman;
use crate::util::{describe, kiln, kiln_path, require_tool, run_ok, stderr, stdout};

/// Docker's rule for namespaces (moby's default seccomp profile, for a
/// process without CAP_SYS_ADMIN): unshare and clone with CLONE_NEWUSER
/// (0x10000000) refused, clone3 "not implemented"; everything else as is.
const DOCKER_RULE: &str = r#"{
  "defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [
    {"names": ["unshare", "clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
     "args": [{"index": 0, "value": 268435456, "valueTwo": 268435456, "op": "SCMP_CMP_MASKED_EQ"}]},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
  ]
}"#;

/// The test world's debootstrap root (scripts/test-world/build keeps it
/// beside the world as `debootstrap-<hash>`): a Debian root with a shell,
/// standing in for a CI job's image.
fn debootstrap_root(world: &str) -> PathBuf {
    let cache = Path::new(world).parent().unwrap();
    fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("debootstrap-"))
                && p.join("usr/bin").is_dir()
        })
        .max_by_key(|p| fs::metadata(p).and_then(|m| m.modified()).ok())
        .unwrap_or_else(|| panic!("no debootstrap-* root beside {world}: run ./scripts/test"))
}

/// A CI job's container: `podman run --rm --network none` of the
/// debootstrap root (as an overlay, so the root stays as it is), the kiln
/// binary, the test world and `project` at /project; `extra` are podman
/// flags (`--read-only`, `--user`), `script` runs under sh.
fn in_container(pods: &Path, world: &str, project: &Path, extra: &[&str], script: &str) -> Output {
    let mut cmd = podman(pods);
    cmd.args(["run", "--rm", "--network", "none"])
        .args(["-e", &format!("SOURCE_DATE_EPOCH={EPOCH}")])
        .args(["-e", "KILN_NO_PROGRESS=1", "-e", "NO_COLOR=1"])
        .arg("-v")
        .arg(format!("{}:/usr/local/bin/kiln:ro", kiln_path().display()))
        .arg("-v")
        .arg(format!("{world}:{world}:ro"))
        .arg("-v")
        .arg(format!("{}:/project", project.display()))
        .args(extra)
        .arg("--rootfs")
        .arg(format!("{}:O", debootstrap_root(world).display()))
        .args(["sh", "-c", script]);
    cmd.output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"))
}

/// The project as a fresh CI checkout would find it after a restored
/// cache: the binary packages kept, the builder states and layout gone.
fn fresh_checkout(project: &Path) {
    for dir in ["states", "layers", "work"] {
        let _ = fs::remove_dir_all(project.join(".cache").join(dir));
    }
    let _ = fs::remove_dir_all(project.join("oci"));
}

/// Doctor, then a verbose build, then `kiln run` of the top image, in a
/// container; checks doctor's prediction, the mode the build used, the
/// strict check and the digests.
fn build_in_container(
    pods: &Path,
    world: &str,
    project: &Path,
    extra: &[&str],
    host: &std::collections::BTreeMap<String, String>,
) {
    fresh_checkout(project);
    let out = in_container(
        pods,
        world,
        project,
        extra,
        "kiln doctor --project /project && kiln -v build --project /project \
         && kiln run --project /project --layout /project/oci demo/greeting:latest",
    );
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "{extra:?}: {}", describe(&out));
    assert!(
        text.contains("ok   isolation: a build uses `bound`: mounting a fresh /proc was refused"),
        "doctor did not predict `bound`: {}",
        describe(&out)
    );
    assert!(
        err.contains("isolation: bound\n  why: mounting a fresh /proc was refused"),
        "-v did not say the mode: {}",
        describe(&out)
    );
    assert!(err.contains("4 built, 0 cached"), "{}", describe(&out));
    assert!(text.contains("Hello, container!"), "{}", describe(&out));
    run_ok(
        kiln()
            .args(["ls", "--check", "--layout"])
            .arg(project.join("oci")),
    );
    assert_eq!(
        &digests(&project.join("oci")),
        host,
        "{extra:?}: a build in the container differs from the host's"
    );
}

/// A mode kiln does not know is a kiln.toml error with its place and the
/// modes it knows.
#[test]
fn an_unknown_isolation_in_kiln_toml_is_refused_with_the_modes() {
    let tmp = crate::util::tempdir();
    fs::write(tmp.path().join("kiln.toml"), "isolation = \"sideways\"\n").unwrap();
    fs::create_dir_all(tmp.path().join("layouts")).unwrap();
    let out = kiln()
        .args(["check", "--project"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("kiln.toml:1:13: `isolation`: unknown value `sideways`\nhint: one of: auto, container, bound"),
        "{}",
        describe(&out)
    );
}

#[test]
fn the_demo_stack_builds_in_ci_containers_with_default_security() {
    if !require_tool("podman") {
        return;
    }
    let Some((tmp, project, world)) = root_demo_project() else {
        return;
    };
    let out = run_ok(
        kiln()
            .args(["build", "--project"])
            .arg(&project)
            .env("SOURCE_DATE_EPOCH", EPOCH),
    );
    assert!(
        stderr(&out).contains("4 built, 0 cached"),
        "{}",
        describe(&out)
    );
    let host = digests(&project.join("oci"));
    // on the VM itself, the strongest mode
    let out = run_ok(kiln().args(["doctor", "--project"]).arg(&project));
    assert!(
        stdout(&out).contains("ok   isolation: a build uses `container`: the strongest mode"),
        "{}",
        describe(&out)
    );
    let pods = tmp.path().join("podman");

    // root in the container, podman's default seccomp profile and capabilities
    build_in_container(&pods, &world, &project, &[], &host);
    // the same with a read-only root: only the work volume is written
    build_in_container(&pods, &world, &project, &["--read-only"], &host);

    // kiln.toml forcing the mode the container refuses: doctor and the build
    // name what was refused and the fix; --isolation on the command line wins
    let toml = project.join("kiln.toml");
    let settings = fs::read_to_string(&toml).unwrap();
    fs::write(&toml, format!("isolation = \"container\"\n{settings}")).unwrap();
    let out = in_container(
        &pods,
        &world,
        &project,
        &[],
        "kiln doctor --project /project; kiln doctor --project /project --isolation auto; \
         kiln build --project /project",
    );
    fs::write(&toml, settings).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (text, err) = (stdout(&out), stderr(&out));
    let refused = "the `container` isolation (--isolation or kiln.toml's `isolation`) cannot work here: mounting a fresh /proc was refused (EPERM";
    assert!(
        text.contains(&format!("FAIL isolation: {refused}"))
            && text.contains("fix: use `--isolation bound`")
            && text.contains("ok   isolation: a build uses `bound`"),
        "{}",
        describe(&out)
    );
    assert!(
        err.contains(&format!("error: {refused}")) && err.contains("hint: use `--isolation bound`"),
        "{}",
        describe(&out)
    );

    // Docker's default profile refuses CLONE_NEWUSER to a process without
    // CAP_SYS_ADMIN: kiln cannot isolate a build there, and says what to add
    let profile = tmp.path().join("docker-rule.json");
    fs::write(&profile, DOCKER_RULE).unwrap();
    let out = in_container(
        &pods,
        &world,
        &project,
        &[&format!("--security-opt=seccomp={}", profile.display())],
        "kiln doctor --project /project; kiln build --project /project",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (text, err) = (stdout(&out), stderr(&out));
    assert!(
        text.contains("FAIL creating a user namespace: unshare(CLONE_NEWUSER) fails (EPERM: Operation not permitted) and a seccomp filter is active"),
        "{}",
        describe(&out)
    );
    assert!(
        err.contains("error: cannot create kiln's user namespace: EPERM")
            && err.contains("hint: run that container with `--security-opt seccomp=unconfined`"),
        "{}",
        describe(&out)
    );

    // a user of the container: a user namespace, but no subordinate range
    // and no newuidmap in a CI image, so no build, and the fix is named
    let user_project = tmp.path().join("user-project");
    run_ok(
        Command::new("cp")
            .arg("-a")
            .arg(&project)
            .arg(&user_project),
    );
    fresh_checkout(&user_project);
    run_ok(
        Command::new("chown")
            .args(["-R", "1000:1000"])
            .arg(&user_project),
    );
    let out = in_container(
        &pods,
        &world,
        &user_project,
        &["--user", "1000:1000"],
        "kiln build --project /project",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert!(
        err.contains("error: user 1000 has no subordinate id range in /etc/subuid and /etc/subgid: a rootless build needs one")
            && err.contains("in a CI container, run the job as the container's root instead"),
        "{}",
        describe(&out)
    );
    assert!(
        !user_project.join("oci").exists(),
        "a refused build made a layout"
    );
}
