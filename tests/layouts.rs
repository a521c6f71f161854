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
