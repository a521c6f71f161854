//! Every kind of problem `kiln check` finds, each with its exact message,
//! all of them reported at once.

use super::{README, check_fails_with, images};
use crate::util::layouts::{kiln_in, write};
use crate::util::{describe, stderr};

#[test]
fn a_cycle_is_named() {
    let dir = images(&[
        ("x", "parent = \"a/y\"\n"),
        ("y", "parent = \"a/z\"\n"),
        ("z", "parent = \"a/x\"\n"),
        ("ok", "parent = \"scratch\"\n"),
    ]);
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/x/image.toml:1:10: cycle of parents: a/x -> a/y -> a/z -> a/x\n\
         hint: an image cannot be its own ancestor: change one of these parents",
    );
    let out = kiln_in(dir.path(), &["graph"]);
    assert!(
        stderr(&out).ends_with(
            "error: the stack has 1 error (above)\nhint: fix them; `kiln check` lists them all\n"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn an_unknown_parent_or_builder_names_the_closest() {
    let dir = images(&[
        ("glibc", ""),
        ("app", "parent = \"a/glibcc\"\nbuilder = \"a/bobb\"\n"),
        ("far", "parent = \"zzz/qqq\"\n"),
    ]);
    write(dir.path(), &[("layouts/a/builders/bob/builder.toml", "")]);
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/app/image.toml:1:10: unknown parent image `a/glibcc`\n\
         hint: did you mean `a/glibc`?\n\
         error: layouts/a/images/app/image.toml:2:11: unknown builder `a/bobb`\n\
         hint: did you mean `a/bob`?\n\
         error: layouts/a/images/far/image.toml:1:10: unknown parent image `zzz/qqq`\n\
         hint: kiln graph lists the images",
    );
}

#[test]
fn bad_toml_is_placed_in_its_file() {
    let dir = images(&[(
        "x",
        "parent = \"scratch\"\npackages = [\"app-misc/hello\"\n",
    )]);
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/x/image.toml:2:29: `packages`: unclosed array, expected `]`",
    );
}

#[test]
fn an_unknown_key_suggests_the_right_one() {
    let dir = images(&[
        ("x", "parent = \"scratch\"\npakages = []\n"),
        ("y", "[slim]\ndoc = true\n"),
    ]);
    write(
        dir.path(),
        &[(
            "layouts/a/namespace.toml",
            "[owner]\nname = \"x\"\nmail = \"x@y\"\n",
        )],
    );
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/x/image.toml:2:1: unknown key `pakages`\n\
         hint: did you mean `packages`?\n\
         error: layouts/a/images/y/image.toml:2:1: unknown key `doc`\n\
         hint: did you mean `docs`?\n\
         error: layouts/a/namespace.toml:3:1: unknown key `mail`\n\
         hint: did you mean `email`?",
    );
}

#[test]
fn a_wrong_type_names_the_key_and_what_it_takes() {
    let dir = images(&[
        ("v", "cmd = 5\n"),
        ("w", "cmd = [5]\n"),
        ("x", "cmd = \"/bin/sh\"\n"),
        ("y", "compression = \"xz\"\n"),
        ("z", "packages = \"app-misc/hello\"\n"),
        ("zz", "[healthcheck]\ncmd = [\"true\"]\nretries = \"3\"\n"),
    ]);
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/v/image.toml:1:7: `cmd` takes an array of strings (exec form), not integer `5`\n\
         hint: see docs/config.md for the type of each key\n\
         error: layouts/a/images/w/image.toml:1:8: `cmd` takes an array of strings, not integer `5` in it\n\
         hint: see docs/config.md for the type of each key\n\
         error: layouts/a/images/x/image.toml:1:7: `cmd` takes an array of strings (exec form), not string \"/bin/sh\"\n\
         hint: see docs/config.md for the type of each key\n\
         error: layouts/a/images/y/image.toml:1:15: `compression`: unknown value `xz`\n\
         hint: one of: gzip, zstd, none\n\
         error: layouts/a/images/z/image.toml:1:12: `packages` takes an array, not string \"app-misc/hello\"\n\
         hint: see docs/config.md for the type of each key\n\
         error: layouts/a/images/zz/image.toml:3:11: `retries` takes a whole number, not string \"3\"\n\
         hint: see docs/config.md for the type of each key",
    );
}

#[test]
fn names_tags_and_registries_follow_the_oci_ref_grammar() {
    let dir = images(&[("a..b", ""), ("ok", "tag = \"1.0.\"\n")]);
    write(
        dir.path(),
        &[("layouts/a/namespace.toml", "registry = \"ghcr.io/x//y\"\n")],
    );
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/a..b: `a..b` is not a valid image name: `..` puts separators together (only `--` may be doubled)\n\
         hint: use lowercase letters and digits, joined by single `.`, `_` or `-` (or `--`): names become parts of OCI refs\n\
         error: layouts/a/images/ok/image.toml:1:7: `1.0.` is not a valid tag: `1.0.` ends with `.`, not a letter or digit\n\
         hint: a tag is up to 128 letters and digits, joined by single `_`, `.` or `-` (or `--`)\n\
         error: layouts/a/namespace.toml:1:12: `ghcr.io/x//y` is not a registry prefix: a `/` has nothing on one side\n\
         hint: write e.g. `ghcr.io/acme`: a ref is parts joined by `/`, each letters and digits with one of `-` `.` `_` `:` `@` `+` (or `--`) between them, as the OCI image-spec's org.opencontainers.image.ref.name grammar says",
    );
}

#[test]
fn a_test_script_outside_the_image_is_refused() {
    let dir = images(&[
        ("abs", "test = \"/etc/passwd\"\n"),
        ("up", "test = \"../../../../kiln.toml\"\n"),
        ("link", "test = \"t.sh\"\n"),
    ]);
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("layouts/a/images/link/t.sh"))
        .unwrap();
    let outside = "hint: name a file beside image.toml, e.g. `test = \"smoke.sh\"`, \
                   and copy the script there if it lives elsewhere";
    check_fails_with(
        dir.path(),
        &format!(
            "error: layouts/a/images/abs/image.toml:1:8: the test script `/etc/passwd` is outside the image's directory\n\
             {outside}\n\
             error: layouts/a/images/link/image.toml:1:8: the test script `t.sh` is a link out of the project\n\
             hint: copy the script itself beside image.toml\n\
             error: layouts/a/images/up/image.toml:1:8: the test script `../../../../kiln.toml` is outside the image's directory\n\
             {outside}"
        ),
    );
}

#[test]
fn missing_files_are_named_with_the_fix() {
    let dir = images(&[("t", "test = \"test.sh\"\n")]);
    write(
        dir.path(),
        &[
            ("layouts/a/images/empty/README.md", README),
            ("layouts/b/images/x/image.toml", ""),
            ("layouts/b/images/x/README.md", README),
        ],
    );
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/empty: missing image.toml\n\
         hint: add image.toml to this directory, or create it with `kiln new image a/empty`\n\
         error: layouts/a/images/t/image.toml:1:8: the test script `test.sh` is missing\n\
         hint: add it beside image.toml, or remove `test`\n\
         error: layouts/b: missing namespace.toml\n\
         hint: add namespace.toml to this directory, or create it with `kiln new namespace b`",
    );
}

#[test]
fn check_reports_every_problem_and_fails() {
    let dir = images(&[
        ("a", "parent = \"a/nope\"\n"),
        (
            "b",
            "packages = [\"glibc\", \"sys-libs/glibc-2.38\"]\nports = [\"99999\"]\n",
        ),
        (
            "c",
            "workdir = \"srv\"\nstop_signal = \"TERM\"\n[healthcheck]\ncmd = [\"true\"]\ninterval = \"5\"\n",
        ),
        ("d", "tag = \"-bad\"\n"),
    ]);
    std::fs::remove_file(dir.path().join("layouts/a/images/d/README.md")).unwrap();
    let out = kiln_in(dir.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "\
error: layouts/a/images/a/image.toml:1:10: unknown parent image `a/nope`
hint: kiln graph lists the images
error: layouts/a/images/b/image.toml:1:13: `glibc` is not a Portage atom: an atom is `category/name`, e.g. `app-misc/hello`
error: layouts/a/images/b/image.toml:1:22: `sys-libs/glibc-2.38` is not a Portage atom: a version (`2.38`) needs an operator, e.g. `=sys-libs/glibc-2.38`
error: layouts/a/images/b/image.toml:2:10: `99999` is not a port
hint: write `80`, `80/tcp` or `53/udp`
error: layouts/a/images/c/image.toml:1:11: the workdir `srv` is not absolute
hint: write `/srv`
error: layouts/a/images/c/image.toml:2:15: `TERM` is not a signal
hint: write a name such as `SIGTERM` or `SIGQUIT`, or a number
error: layouts/a/images/c/image.toml:5:12: `5` is not a duration
hint: write a number and a unit: `500ms`, `30s`, `5m`, `1h`
warning: layouts/a/images/d: missing README.md
hint: say what the image is for and how to run it
error: layouts/a/images/d/image.toml:1:7: `-bad` is not a valid tag: `-bad` starts with `-`, not a letter or digit
hint: a tag is up to 128 letters and digits, joined by single `_`, `.` or `-` (or `--`)
     Checked 1 namespace, 4 images, 0 builders: 8 errors, 1 warning
"
    );
}

#[test]
fn warnings_alone_pass() {
    let dir = images(&[("a", "")]);
    std::fs::remove_file(dir.path().join("layouts/a/images/a/README.md")).unwrap();
    let out = kiln_in(dir.path(), &["check"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(stderr(&out).starts_with("warning: layouts/a/images/a: missing README.md\n"));
}

#[test]
fn check_with_targets_reports_only_their_problems() {
    let dir = images(&[
        ("base", "packages = [\"libc\"]\n"),
        ("app", "parent = \"a/base\"\n"),
        ("other", "ports = [\"0\"]\n"),
        ("broken", "parent = \n"),
    ]);
    let out = kiln_in(dir.path(), &["check", "a/app"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: layouts/a/images/base/image.toml:1:13: `libc` is not a Portage atom: an atom is `category/name`, e.g. `app-misc/hello`\n     \
         Checked 1 namespace, 3 images, 0 builders: 1 error, 0 warnings\n"
    );
    let out = kiln_in(dir.path(), &["check", "a/broken"]);
    assert!(
        stderr(&out).starts_with("error: layouts/a/images/broken/image.toml:1:10: `parent`: "),
        "{}",
        describe(&out)
    );
    let out = kiln_in(dir.path(), &["check", "a"]);
    assert!(
        stderr(&out).ends_with("Checked 1 namespace, 3 images, 0 builders: 3 errors, 0 warnings\n")
    );
}
