//! `kiln clean` as the user who built: the cache's trees belong to that
//! user's subordinate ids after a rootless build, and kiln removes them from
//! inside its user namespace; the layout stays valid and builds again.

use std::fs;
use std::process::Command;

use crate::build::{as_user, root_demo_project, user_demo_project};
use crate::util::{describe, kiln, require_env, run_err, run_ok, stderr};

#[test]
fn clean_removes_a_rootless_builds_cache_but_not_the_layout() {
    let (Some(world), Some(user)) = (
        require_env("KILN_TEST_WORLD"),
        require_env("KILN_TEST_USER_SUB"),
    ) else {
        return;
    };
    let (_tmp, project) = user_demo_project(&world, &user);
    let cache = project.join(".cache");
    run_ok(as_user(&user, "build", &project).arg("demo/glibc"));
    // Files of the builder states belong to subordinate ids (Portage's users).
    let subuid_owned = Command::new("find")
        .arg(cache.join("layers"))
        .args(["-not", "-user", &user, "-print", "-quit"])
        .output()
        .unwrap();
    assert!(
        !subuid_owned.stdout.is_empty(),
        "no file of another owner in the builder states"
    );

    // A named state: only it, and the layers nothing else uses.
    let out = run_ok(as_user(&user, "clean", &project).arg("demo/glibc"));
    assert!(
        stderr(&out).contains("states/bob-demo-glibc")
            && !cache.join("states/bob-demo-glibc").exists()
            && cache.join("states/builder-demo-bob").exists(),
        "{}",
        describe(&out)
    );
    let out = run_err(as_user(&user, "clean", &project).arg("demo/nope"));
    assert!(
        stderr(&out).contains("error: no builder state `demo/nope`")
            && stderr(&out).contains("hint: the cache holds: base, builder-demo-bob"),
        "{}",
        describe(&out)
    );

    let out = run_ok(as_user(&user, "clean", &project).arg("--dry-run"));
    assert!(
        stderr(&out).contains("Would remove") && cache.join("states").exists(),
        "{}",
        describe(&out)
    );
    let out = run_ok(&mut as_user(&user, "clean", &project));
    assert!(stderr(&out).contains(", freed "), "{}", describe(&out));
    for gone in ["states", "layers", "work", "logs"] {
        let empty = fs::read_dir(cache.join(gone)).map_or(true, |mut d| d.next().is_none());
        assert!(empty, "{gone} is still there");
    }
    for kept in ["downloads", "binpkgs", "distfiles"] {
        assert!(
            cache.join(kept).exists(),
            "{kept} was removed without --all"
        );
    }
    run_ok(
        kiln()
            .args(["ls", "--check", "--layout"])
            .arg(project.join("oci")),
    );

    // The next build makes the states again from the binary packages.
    let out = run_ok(as_user(&user, "build", &project).arg("demo/glibc"));
    assert!(
        stderr(&out).contains("Built image demo/glibc"),
        "{}",
        describe(&out)
    );

    run_ok(as_user(&user, "clean", &project).arg("--all"));
    let left: Vec<_> = fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "build.lock" && n != "run.lock")
        .collect();
    assert!(left.is_empty(), "left in the cache: {left:?}");
    let out = run_ok(&mut as_user(&user, "clean", &project));
    assert!(
        stderr(&out).contains("0 paths, freed 0 B"),
        "{}",
        describe(&out)
    );
}

/// What must stop clean, or not: a kiln.toml it cannot read (the cache dir
/// would be a guess), a layout inside what it removes, a running `kiln run`;
/// a dangling symlink and a broken image elsewhere must not.
#[test]
fn clean_refuses_to_guess_and_removes_dangling_links() {
    let Some((_tmp, project, _world)) = root_demo_project() else {
        return;
    };
    let cache = project.join(".cache");
    fs::create_dir_all(cache.join("logs")).unwrap();
    fs::write(cache.join("logs/bob-demo-glibc.log"), "a log").unwrap();
    std::os::unix::fs::symlink("/nonexistent/kiln", cache.join("work")).unwrap();
    let toml = fs::read_to_string(project.join("kiln.toml")).unwrap();
    let clean = || {
        let mut cmd = kiln();
        cmd.arg("clean").arg("--project").arg(&project);
        cmd
    };
    // clean fails, saying each of `says`, and the log is still there.
    let refused = |says: &[&str]| {
        let out = run_err(&mut clean());
        assert!(
            says.iter().all(|s| stderr(&out).contains(s))
                && cache.join("logs/bob-demo-glibc.log").exists(),
            "{}",
            describe(&out)
        );
    };

    fs::write(
        project.join("kiln.toml"),
        toml.replace("cache =", "cache =="),
    )
    .unwrap();
    refused(&["kiln.toml:2:", "kiln.toml has 1 error"]);

    let layout_in_cache = toml.replace("layout = \"oci\"", "layout = \".cache/logs/oci\"");
    fs::write(project.join("kiln.toml"), layout_in_cache).unwrap();
    refused(&["is inside", "which kiln clean would remove"]);

    fs::write(project.join("kiln.toml"), &toml).unwrap();
    let run = fs::File::create(cache.join("run.lock")).unwrap();
    run.lock_shared().unwrap();
    refused(&["a kiln run is using the cache"]);
    drop(run);

    // An image with an error is no reason to keep the cache.
    fs::write(
        project.join("layouts/demo/images/glibc/image.toml"),
        "packages = 3\n",
    )
    .unwrap();
    let out = run_ok(&mut clean());
    assert!(
        !cache.join("logs").exists() && cache.join("work").symlink_metadata().is_err(),
        "{}",
        describe(&out)
    );
}
