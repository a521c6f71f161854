//! The post-build test hook (issue 7): an image's test.sh runs in a
//! container of the image just built, before the layout is written; its
//! failure fails the build and leaves the layout as it was; with
//! `--keep-going` the rest of the stack still builds.

use std::fs;

use crate::build::{build, root_demo_project};
use crate::util::{describe, run_err, run_ok, stderr, stdout};

const BUILD_SH: &str = r#"finish_rootfs_build()
{
    # a shell for test.sh: the builder's dash runs on the image's glibc
    mkdir -p "${_EMERGE_ROOT}"/bin
    cp "$(readlink -f /bin/dash)" "${_EMERGE_ROOT}"/bin/sh
}
"#;

#[test]
fn an_images_test_sh_runs_in_the_image_and_its_failure_fails_the_build() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let dir = project.join("layouts/demo/images/shell");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("image.toml"),
        "parent = \"demo/hello\"\npackages = []\n",
    )
    .unwrap();
    fs::write(dir.join("build.sh"), BUILD_SH).unwrap();
    // No exec bit: kiln runs it by its #! line. It sees the parent's hello
    // and the image's own /bin/sh, and not the builder.
    fs::write(
        dir.join("test.sh"),
        "#!/bin/sh -e\ncase \"$(hello)\" in *'Hello, world!'*) ;; *) exit 1 ;; esac\n! test -e /usr/bin/emerge\necho tested-in-the-image\n",
    )
    .unwrap();

    let out = run_ok(&mut build(&project, &["demo/shell", "-v"]));
    assert!(
        stderr(&out).contains("Testing image demo/shell")
            && stdout(&out).contains("tested-in-the-image"),
        "{}",
        describe(&out)
    );
    let log = fs::read_to_string(project.join(".cache/logs/bob-demo-shell.test.log")).unwrap();
    assert!(log.contains("tested-in-the-image"), "{log}");

    // A failing test: the build fails, naming the image, the script and its
    // exit code, with its output; the layout keeps the image that passed.
    let index = fs::read(project.join("oci/index.json")).unwrap();
    fs::write(
        dir.join("test.sh"),
        "#!/bin/sh\necho checking the image\nexit 3\n",
    )
    .unwrap();
    let out = run_err(&mut build(&project, &["demo/shell"]));
    let err = stderr(&out);
    assert!(
        err.contains("error: the test of image demo/shell failed:")
            && err.contains("test.sh exited with 3")
            && err.contains("checking the image")
            && err.contains("the layout and the builder states are unchanged"),
        "{}",
        describe(&out)
    );
    assert_eq!(fs::read(project.join("oci/index.json")).unwrap(), index);

    // --keep-going: the failed image's child is skipped, the rest of the
    // stack builds, and kiln still exits non-zero with the count.
    let after = project.join("layouts/demo/images/after");
    fs::create_dir_all(&after).unwrap();
    fs::write(
        after.join("image.toml"),
        "parent = \"demo/shell\"\npackages = []\n",
    )
    .unwrap();
    let out = run_err(&mut build(&project, &["demo", "--keep-going"]));
    let err = stderr(&out);
    assert!(
        err.contains("error: the test of image demo/shell failed:")
            && err.contains("Skipped image demo/after")
            && err.contains("Built image demo/greeting in")
            && err.contains("1 failed, 1 skipped")
            && err.contains("error: 1 of 6 steps failed")
            && stdout(&out).contains("FAILED"),
        "{}",
        describe(&out)
    );
}
