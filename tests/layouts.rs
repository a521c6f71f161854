//! Stack definitions, their checks, the graph and the commands around them
//! (`check`, `graph`, `build --dry-run`, `new`, `completions`), driven through
//! the real binary on fixture stacks and on stacks written per test.

use std::process::{Command, Stdio};

use crate::util::layouts::{copy_fixture, fixture, kiln_in, stack, write};
use crate::util::{describe, kiln, require_tool, stderr, stdout};

const README: &str = "# an image\n";

/// A namespace `a` with the images given as `(name, image.toml)`, each with
/// a README.md.
fn images(list: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = stack(&[("layouts/a/namespace.toml", "")]);
    for (name, toml) in list {
        write(
            dir.path(),
            &[
                (&format!("layouts/a/images/{name}/image.toml"), toml),
                (&format!("layouts/a/images/{name}/README.md"), README),
            ],
        );
    }
    dir
}

/// `kiln check` must fail with exactly these problem lines (summary aside).
fn check_fails_with(dir: &std::path::Path, want: &str) {
    let out = kiln_in(dir, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    let (problems, summary) = err.trim_end().rsplit_once('\n').unwrap_or(("", &err));
    assert_eq!(problems, want.trim_end(), "{}", describe(&out));
    assert!(
        summary.trim_start().starts_with("Checked"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_valid_stack_of_three_namespaces_checks_clean() {
    let out = kiln_in(&fixture("multi"), &["check"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "     Checked 3 namespaces, 5 images, 2 builders: 0 errors, 0 warnings\n"
    );
}

#[test]
fn graph_tree_shows_parents_across_namespaces_and_marks_builders() {
    let out = kiln_in(&fixture("multi"), &["graph"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "\
stage3
└── base/bob [builder]
    └── tools/cross [builder]
scratch
└── base/libc (built in base/bob)
    ├── apps/cache
    ├── base/shell
    │   └── apps/web
    └── tools/compiler (built in tools/cross)
"
    );
}

#[test]
fn graph_dot_renders_with_graphviz() {
    if !require_tool("dot") {
        return;
    }
    let out = kiln_in(&fixture("multi"), &["graph", "--format", "dot"]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut dot = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    dot.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let svg = dot.wait_with_output().unwrap();
    assert!(svg.status.success(), "dot failed: {}", describe(&svg));
    let svg = stdout(&svg);
    // Graphviz titles each edge `tail->head`, escaped.
    for edge in [
        "stage3&#45;&gt;builder:base/bob",
        "builder:base/bob&#45;&gt;builder:tools/cross",
        "image:base/shell&#45;&gt;image:apps/web",
        "builder:tools/cross&#45;&gt;image:tools/compiler",
    ] {
        assert!(svg.contains(edge), "no edge {edge} in:\n{svg}");
    }
    assert!(svg.contains(">tools/compiler (built in tools/cross)<"));
}

#[test]
fn graph_json_gives_order_needs_and_resolved_settings() {
    let out = kiln_in(&fixture("multi"), &["graph", "--format", "json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes = json["nodes"].as_array().unwrap();
    let ids: Vec<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "base/bob",
            "tools/cross",
            "base/libc",
            "apps/cache",
            "base/shell",
            "apps/web",
            "tools/compiler"
        ]
    );
    let node = |id: &str| nodes.iter().find(|n| n["id"] == id).unwrap();
    assert_eq!(
        node("tools/compiler")["needs"],
        serde_json::json!([
            {"edge": "parent", "kind": "image", "id": "base/libc"},
            {"edge": "builder", "kind": "builder", "id": "tools/cross"},
        ])
    );
    let web = &node("apps/web")["settings"];
    assert_eq!(web["reference"], "registry.example.org/apps/web:1.0");
    assert_eq!(
        web["build_container"],
        serde_json::json!({"kind": "parent-state", "ref": "base/shell"})
    );
    assert_eq!(web["config"]["ports"], serde_json::json!(["80/tcp"]));
    let libc = &node("base/libc")["settings"];
    assert_eq!(
        libc["build_container"],
        serde_json::json!({"kind": "builder", "ref": "base/bob"})
    );
    assert_eq!(
        libc["config"]["labels"]["org.opencontainers.image.authors"],
        "Base Team <base@example.org>"
    );
    assert_eq!(node("tools/cross")["settings"]["parent"], "base/bob");
}

#[test]
fn targets_select_namespaces_images_several_and_no_deps() {
    let dir = fixture("multi");
    let tree = |args: &[&str]| {
        let mut all = vec!["graph"];
        all.extend(args);
        let out = kiln_in(&dir, &all);
        assert!(out.status.success(), "{}", describe(&out));
        stdout(&out)
    };
    assert_eq!(
        tree(&["apps/web"]),
        "stage3\n└── base/bob [builder]\nscratch\n└── base/libc (built in base/bob)\n    └── base/shell\n        └── apps/web\n"
    );
    assert_eq!(
        tree(&["apps", "--no-deps"]),
        "base/libc\n└── apps/cache\nbase/shell\n└── apps/web\n"
    );
    assert_eq!(
        tree(&["base/shell", "tools/cross", "--no-deps"]),
        "base/bob\n└── tools/cross [builder]\nbase/libc\n└── base/shell\n"
    );
    assert_eq!(
        tree(&["tools"]),
        "stage3\n└── base/bob [builder]\n    └── tools/cross [builder]\nscratch\n└── base/libc (built in base/bob)\n    └── tools/compiler (built in tools/cross)\n"
    );
}

#[test]
fn dry_run_prints_the_plan_in_order_with_why() {
    let out = kiln_in(
        &fixture("multi"),
        &["build", "--dry-run", "apps/web", "tools/compiler"],
    );
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stdout(&out),
        "\
Plan: 6 steps into oci (dry run, nothing is built)
  1. builder base/bob from stage3: parent of tools/cross; builder of base/libc; built once, then reused while its inputs are unchanged
  2. builder tools/cross from base/bob: builder of tools/compiler; built once, then reused while its inputs are unchanged
  3. image base/libc -> base/libc:1.0 (gzip) in builder base/bob: parent of base/shell; parent of tools/compiler; not in the layout
  4. image base/shell -> base/shell:1.0 (gzip) in base/libc's builder state: parent of apps/web; not in the layout
  5. image apps/web -> registry.example.org/apps/web:1.0 (gzip) in base/shell's builder state: requested; not in the layout
  6. image tools/compiler -> tools/compiler:1.0 (gzip) in builder tools/cross: requested; not in the layout
"
    );
    let out = kiln_in(
        &fixture("multi"),
        &["build", "--dry-run", "-n", "-f", "apps/web"],
    );
    assert_eq!(
        stdout(&out),
        "Plan: 1 step into oci (dry run, nothing is built)\n  1. image apps/web -> registry.example.org/apps/web:1.0 (gzip) in base/shell's builder state: requested; --force\n"
    );
}

#[test]
fn dry_run_knows_what_the_layout_already_has() {
    let dir = copy_fixture("multi");
    write(
        dir.path(),
        &[(
            "oci/index.json",
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":{"org.opencontainers.image.ref.name":"base/libc:1.0"}}]}"#,
        )],
    );
    let out = kiln_in(dir.path(), &["build", "--dry-run", "base/libc"]);
    assert!(
        stdout(&out).contains(
            "image base/libc -> base/libc:1.0 (gzip) in builder base/bob: requested; in the layout: rebuilt only if its inputs changed"
        ),
        "{}",
        describe(&out)
    );
}

#[test]
fn build_without_dry_run_says_it_is_not_available_yet() {
    let out = kiln_in(&fixture("multi"), &["build", "apps/web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: building is not available yet: this kiln can only plan builds\nhint: run `kiln build --dry-run` to see what would be built and why\n"
    );
}

#[test]
fn unknown_targets_name_the_closest() {
    let dir = fixture("multi");
    let out = kiln_in(&dir, &["graph", "apps/wbe"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: unknown target `apps/wbe`\nhint: did you mean `apps/web`?\n"
    );
    let out = kiln_in(&dir, &["build", "--dry-run", "app"]);
    assert_eq!(
        stderr(&out),
        "error: unknown namespace `app`\nhint: did you mean `apps`?\n"
    );
}

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
fn a_wrong_type_names_the_key() {
    let dir = images(&[
        ("x", "cmd = \"/bin/sh\"\n"),
        ("y", "compression = \"xz\"\n"),
    ]);
    check_fails_with(
        dir.path(),
        "error: layouts/a/images/x/image.toml:1:7: `cmd`: invalid type: string \"/bin/sh\", expected a sequence\n\
         hint: see docs/config.md for the type of each key\n\
         error: layouts/a/images/y/image.toml:1:15: `compression`: unknown value `xz`\n\
         hint: one of: gzip, zstd, none",
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
error: layouts/a/images/d/image.toml:1:7: `-bad` is not a valid tag
hint: a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`
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
fn precedence_kiln_then_namespace_then_image_then_command_line() {
    let dir = stack(&[
        (
            "kiln.toml",
            "tag = \"k\"\ncompression = \"zstd\"\nlayout = \"images\"\n\
             [labels]\nl1 = \"kiln\"\nl2 = \"kiln\"\nl3 = \"kiln\"\n[slim]\ndocs = false\n",
        ),
        (
            "layouts/a/namespace.toml",
            "tag = \"ns\"\ncompression = \"none\"\n[labels]\nl2 = \"ns\"\nl3 = \"ns\"\n[slim]\ndocs = true\n",
        ),
        (
            "layouts/a/images/one/image.toml",
            "tag = \"img\"\ncompression = \"gzip\"\n[labels]\nl3 = \"img\"\n[slim]\nheaders = false\n",
        ),
        ("layouts/a/images/two/image.toml", ""),
        ("layouts/b/namespace.toml", ""),
        ("layouts/b/images/three/image.toml", ""),
    ]);
    let plan = |extra: &[&str]| {
        let mut args = vec!["build", "--dry-run"];
        args.extend(extra);
        let out = kiln_in(dir.path(), &args);
        assert!(out.status.success(), "{}", describe(&out));
        stdout(&out)
            .lines()
            .map(|l| l.split(" in ").next().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        plan(&[]),
        [
            "Plan: 3 steps into images (dry run, nothing is built)",
            "  1. image a/one -> a/one:img (gzip)",
            "  2. image a/two -> a/two:ns (none)",
            "  3. image b/three -> b/three:k (zstd)",
        ]
    );
    assert_eq!(
        plan(&["--compression", "gzip", "--layout", "out"]),
        [
            "Plan: 3 steps into out (dry run, nothing is built)",
            "  1. image a/one -> a/one:img (gzip)",
            "  2. image a/two -> a/two:ns (gzip)",
            "  3. image b/three -> b/three:k (gzip)",
        ]
    );
    let out = kiln_in(dir.path(), &["graph", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let settings = |id: &str| {
        json["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()["settings"]
            .clone()
    };
    let labels = |id: &str| settings(id)["config"]["labels"].clone();
    assert_eq!(
        labels("a/one"),
        serde_json::json!({"l1": "kiln", "l2": "ns", "l3": "img"})
    );
    assert_eq!(
        labels("a/two"),
        serde_json::json!({"l1": "kiln", "l2": "ns", "l3": "ns"})
    );
    assert_eq!(
        labels("b/three"),
        serde_json::json!({"l1": "kiln", "l2": "kiln", "l3": "kiln"})
    );
    let slim = |id: &str| {
        (
            settings(id)["slim"]["docs"].clone(),
            settings(id)["slim"]["headers"].clone(),
        )
    };
    assert_eq!(slim("a/one"), (true.into(), false.into()));
    assert_eq!(slim("a/two"), (true.into(), true.into()));
    assert_eq!(slim("b/three"), (false.into(), true.into()));
}

#[test]
fn the_project_is_found_upwards_by_flag_and_by_env() {
    let root = fixture("multi");
    let summary = "     Checked 3 namespaces, 5 images, 2 builders: 0 errors, 0 warnings\n";
    let out = kiln_in(&root.join("layouts/apps/images"), &["check"]);
    assert_eq!(stderr(&out), summary, "{}", describe(&out));
    let elsewhere = crate::util::tempdir();
    let out = kiln_in(
        elsewhere.path(),
        &["check", "--project", root.to_str().unwrap()],
    );
    assert_eq!(stderr(&out), summary, "{}", describe(&out));
    let out = kiln()
        .current_dir(elsewhere.path())
        .env("KILN_PROJECT", &root)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(stderr(&out), summary, "{}", describe(&out));

    let out = kiln_in(elsewhere.path(), &["check"]);
    assert_eq!(out.status.code(), Some(1));
    let cwd = elsewhere.path().canonicalize().unwrap();
    assert_eq!(
        stderr(&out),
        format!(
            "error: no kiln.toml in {} or any directory above it\nhint: run kiln inside a project \
             (a directory with kiln.toml and layouts/), or pass --project DIR; an empty kiln.toml is a valid start\n",
            cwd.display()
        )
    );
    let out = kiln_in(&root, &["graph", "--project", cwd.to_str().unwrap()]);
    assert_eq!(
        stderr(&out),
        format!(
            "error: no kiln.toml in {}\nhint: point --project (or KILN_PROJECT) at the directory holding kiln.toml\n",
            cwd.display()
        )
    );
}

#[test]
fn new_with_flags_scaffolds_a_stack_that_checks_clean() {
    let dir = stack(&[]);
    let root = dir.path();
    let new = |args: &[&str]| {
        let mut all = vec!["new"];
        all.extend(args);
        kiln_in(root, &all)
    };
    let out = new(&[
        "namespace",
        "acme",
        "--owner",
        "Jane Doe",
        "--email",
        "jane@acme.org",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        stderr(&out),
        "     Created layouts/acme/namespace.toml\n     Created layouts/acme/README.md\n"
    );
    let out = new(&["image", "acme/web", "--package", "www-servers/nginx"]);
    assert_eq!(
        stderr(&out),
        "     Created layouts/acme/images/web/image.toml\n     Created layouts/acme/images/web/build.sh\n     Created layouts/acme/images/web/README.md\n",
        "{}",
        describe(&out)
    );
    assert!(new(&["builder", "acme/bob"]).status.success());
    let out = new(&[
        "image",
        "acme/app",
        "--parent",
        "acme/web",
        "--builder",
        "acme/bob",
    ]);
    assert!(out.status.success(), "{}", describe(&out));

    let out = kiln_in(root, &["check"]);
    assert_eq!(
        stderr(&out),
        "     Checked 1 namespace, 2 images, 1 builder: 0 errors, 0 warnings\n",
        "{}",
        describe(&out)
    );
    let out = kiln_in(root, &["graph"]);
    assert_eq!(
        stdout(&out),
        "stage3\n└── acme/bob [builder]\nscratch\n└── acme/web\n    └── acme/app (built in acme/bob)\n"
    );
    let image = std::fs::read_to_string(root.join("layouts/acme/images/app/image.toml")).unwrap();
    assert!(
        image.contains("\nparent = \"acme/web\"\n") && image.contains("\nbuilder = \"acme/bob\"\n")
    );
    let ns = std::fs::read_to_string(root.join("layouts/acme/namespace.toml")).unwrap();
    assert!(
        ns.contains("[owner]\nname = \"Jane Doe\"\nemail = \"jane@acme.org\"\n"),
        "{ns}"
    );

    let out = new(&["image", "acme/web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: layouts/acme/images/web/image.toml already exists\nhint: kiln new never overwrites: edit the file, or remove it first\n"
    );
    let out = new(&["image", "acme/x", "--parent", "acme/wbe"]);
    assert_eq!(
        stderr(&out),
        "error: there is no image `acme/wbe`: did you mean `acme/web`?\n"
    );
    let out = new(&["image", "zz/x"]);
    assert_eq!(
        stderr(&out),
        "error: there is no namespace `zz`\nhint: create it first: `kiln new namespace zz`\n"
    );
    let out = new(&["image", "acme/x", "--package", "nginx"]);
    assert_eq!(
        stderr(&out),
        "error: `nginx` is not a Portage atom: an atom is `category/name`, e.g. `app-misc/hello`\n"
    );
    assert!(!root.join("layouts/acme/images/x").exists());
}

/// `kiln new` on a pseudo-terminal, answering its questions, one answer wrong.
fn on_terminal(cwd: &std::path::Path, dialogue: &[&str], command: &[&str]) -> (bool, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/answer_on_pty.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(cwd)
        .args(dialogue)
        .arg("--")
        .arg(crate::util::kiln_path())
        .args(command)
        .env("NO_COLOR", "1")
        .env("KILN_NO_PROGRESS", "1")
        .env_remove("KILN_PROJECT")
        .output()
        .unwrap();
    (out.status.success(), stdout(&out).replace("\r\n", "\n"))
}

#[test]
fn new_asks_on_a_terminal() {
    if !require_tool("python3") {
        return;
    }
    let dir = stack(&[]);
    let root = dir.path();
    let (ok, transcript) = on_terminal(
        root,
        &[
            "Name: ",
            "Jane Doe",
            "Email: ",
            "jane@acme.org",
            "namespace name): ",
            "ghcr.io/acme",
        ],
        &["new", "namespace", "acme"],
    );
    assert!(ok, "{transcript}");
    assert_eq!(
        transcript,
        "--> Who maintains the new namespace?\nName: Jane Doe\nEmail: jane@acme.org\n\
         Registry prefix (empty: the namespace name): ghcr.io/acme\n     \
         Created layouts/acme/namespace.toml\n     Created layouts/acme/README.md\n"
    );
    let (ok, transcript) = on_terminal(
        root,
        &[
            "Parent image (scratch): ",
            "",
            "Builder: ",
            "",
            "Packages: ",
            "app-misc/hello",
        ],
        &["new", "image", "acme/base"],
    );
    assert!(ok, "{transcript}");
    let (ok, transcript) = on_terminal(
        root,
        &[
            "Parent image (scratch): ",
            "acme/bsae",
            "Parent image (scratch): ",
            "acme/base",
            "Builder: ",
            "",
            "Packages: ",
            "greeting",
            "Packages: ",
            "app-misc/greeting",
        ],
        &["new", "image", "acme/greeting"],
    );
    assert!(ok, "{transcript}");
    assert_eq!(
        transcript,
        "\
--> Do you want to extend an existing image? `scratch` or <ns>/<image>
Parent image (scratch): acme/bsae
there is no image `acme/bsae`: did you mean `acme/base`?
Parent image (scratch): acme/base
--> Build in a builder of the stack? Empty: the parent's builder state
Builder: 
--> Which Portage packages does it install? (space-separated atoms)
Packages: greeting
`greeting`: an atom is `category/name`, e.g. `app-misc/hello`
Packages: app-misc/greeting
     Created layouts/acme/images/greeting/image.toml
     Created layouts/acme/images/greeting/build.sh
     Created layouts/acme/images/greeting/README.md
"
    );
    let ns = std::fs::read_to_string(root.join("layouts/acme/namespace.toml")).unwrap();
    assert!(ns.contains("\nregistry = \"ghcr.io/acme\"\n"), "{ns}");
    let out = kiln_in(root, &["graph"]);
    assert_eq!(
        stdout(&out),
        "scratch\n└── acme/base\n    └── acme/greeting\n",
        "{}",
        describe(&out)
    );
    let image =
        std::fs::read_to_string(root.join("layouts/acme/images/greeting/image.toml")).unwrap();
    assert!(
        image.contains("\npackages = [\"app-misc/greeting\"]\n"),
        "{image}"
    );
}

#[test]
fn completions_load_in_bash_zsh_and_fish() {
    let dir = crate::util::tempdir();
    let script = |shell: &str| {
        let out = kiln_in(&fixture("multi"), &["completions", shell]);
        assert!(out.status.success(), "{}", describe(&out));
        let path = dir.path().join(format!("kiln.{shell}"));
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    if require_tool("bash") {
        let path = script("bash");
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=(kiln graph --format ''); COMP_CWORD=3; _kiln kiln '' --format; echo \"${{COMPREPLY[*]}}\"",
                path.display()
            ))
            .output()
            .unwrap();
        assert_eq!(stdout(&out), "tree dot json\n", "{}", describe(&out));
    }
    if require_tool("fish") {
        let path = script("fish");
        let out = Command::new("fish")
            .arg("-c")
            .arg(format!("source {}; complete -C 'kiln gra'", path.display()))
            .output()
            .unwrap();
        assert_eq!(
            stdout(&out),
            "graph\tShow the stack: images by parent, builders marked\n",
            "{}",
            describe(&out)
        );
    }
    if require_tool("zsh") {
        let path = script("zsh");
        let out = Command::new("zsh").arg("-n").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("#compdef kiln\n"));
        assert!(
            text.contains("'--no-deps[Only the named targets, not their parents and builders]'")
        );
    }
}

#[test]
fn the_reference_stacks_check_and_graph() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = kiln_in(repo, &["check"]);
    assert_eq!(
        stderr(&out),
        "     Checked 2 namespaces, 9 images, 2 builders: 0 errors, 0 warnings\n",
        "{}",
        describe(&out)
    );
    let out = kiln_in(repo, &["graph", "demo"]);
    assert_eq!(
        stdout(&out),
        "\
stage3
└── demo/bob [builder]
scratch
└── demo/glibc (built in demo/bob)
    └── demo/hello
        └── demo/greeting
"
    );
    let out = kiln_in(repo, &["graph", "gentoo/nginx", "gentoo/redis"]);
    assert_eq!(
        stdout(&out),
        "\
stage3
└── gentoo/bob [builder]
scratch
└── gentoo/busybox (built in gentoo/bob)
    └── gentoo/glibc
        └── gentoo/s6
            ├── gentoo/openssl
            │   └── gentoo/nginx
            └── gentoo/redis
"
    );
    let out = kiln_in(repo, &["graph", "--format", "json", "demo/greeting"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let greeting = &json["nodes"][3]["settings"];
    assert_eq!(
        greeting["packages"],
        serde_json::json!(["app-misc/greeting"])
    );
    assert_eq!(greeting["parent"], "demo/hello");
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
