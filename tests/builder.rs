//! Builders with packages (issue 7): a builder.toml's `packages` are
//! emerged into the builder itself, so the images built in it have those
//! tools, and no image layer carries them.

use std::fs;

use crate::build::{build, root_demo_project, top_layer_paths};
use crate::util::{describe, run_ok, stderr};

#[test]
fn a_builders_packages_are_in_its_state_and_not_in_the_images_built_in_it() {
    let Some((_tmp, project, _)) = root_demo_project() else {
        return;
    };
    let tools = project.join("layouts/demo/builders/tools");
    fs::create_dir_all(&tools).unwrap();
    fs::write(
        tools.join("builder.toml"),
        "parent = \"stage3\"\npackages = [\"dev-libs/libfoo:1\"]\n",
    )
    .unwrap();
    let image = project.join("layouts/demo/images/tooled");
    fs::create_dir_all(&image).unwrap();
    fs::write(
        image.join("image.toml"),
        "parent = \"demo/glibc\"\nbuilder = \"demo/tools\"\npackages = [\"app-misc/hello\"]\n",
    )
    .unwrap();
    // The image's hook proves libfoo is in the builder it runs in.
    fs::write(
        image.join("build.sh"),
        "configure_rootfs_build()\n{\n    ls /usr/lib*/libfoo.so.1* >/dev/null\n    echo builder-has-libfoo\n}\n",
    )
    .unwrap();

    let out = run_ok(&mut build(&project, &["demo/tooled"]));
    assert!(
        stderr(&out).contains("Built builder demo/tools in"),
        "{}",
        describe(&out)
    );
    let log = fs::read_to_string(project.join(".cache/logs/bob-demo-tooled.log")).unwrap();
    assert!(log.contains("builder-has-libfoo"), "{log}");
    let builder_log =
        fs::read_to_string(project.join(".cache/logs/builder-demo-tools.log")).unwrap();
    assert!(
        builder_log.contains("emerge dev-libs/libfoo:1 into the builder"),
        "{builder_log}"
    );
    let paths = top_layer_paths(&project.join("oci"), "demo/tooled:latest");
    assert!(paths.iter().any(|p| p == "usr/bin/hello"), "{paths:?}");
    assert!(
        !paths.iter().any(|p| p.contains("libfoo")),
        "the builder's package leaked into the image: {paths:?}"
    );
}
