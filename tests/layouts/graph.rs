//! The graph of a valid stack in its three formats, targets, the build
//! plan, and the precedence of settings.

use std::process::{Command, Stdio};

use crate::util::layouts::{copy_fixture, fixture, kiln_in, stack, write};
use crate::util::{describe, require_tool, stderr, stdout};

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
        &[
            ("oci/oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#),
            (
                "oci/index.json",
                r#"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"annotations":{"org.opencontainers.image.ref.name":"base/libc:1.0"}}]}"#,
            ),
        ],
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
fn build_without_bob_core_says_where_to_put_it() {
    let dir = fixture("multi");
    let out = kiln_in(&dir, &["build", "apps/web"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: no bob-core/build-root.sh in {}\nhint: copy kiln's bob-core/ into the project, or set KILN_BOB_CORE to its path\n",
            dir.display()
        )
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
fn cache_and_layout_dirs_resolve_from_env_file_and_default() {
    let dir = stack(&[("kiln.toml", "cache = \"my-cache\"\nlayout = \"out/oci\"\n")]);
    let project = |envs: &[(&str, &str)]| {
        let mut cmd = crate::util::kiln();
        cmd.current_dir(dir.path())
            .env_remove("KILN_PROJECT")
            .env_remove("KILN_CACHE_DIR")
            .args(["graph", "--format", "json"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        json["project"].clone()
    };
    let root = dir.path().canonicalize().unwrap();
    let settings = project(&[]);
    assert_eq!(settings["cache"], root.join("my-cache").to_str().unwrap());
    assert_eq!(settings["layout"], root.join("out/oci").to_str().unwrap());
    assert_eq!(
        settings["sources"]["mirrors"],
        serde_json::json!(["https://distfiles.gentoo.org"])
    );
    assert_eq!(
        project(&[("KILN_CACHE_DIR", "/elsewhere")])["cache"],
        "/elsewhere"
    );

    write(dir.path(), &[("kiln.toml", "")]);
    assert_eq!(project(&[("XDG_CACHE_HOME", "/xdg")])["cache"], "/xdg/kiln");
    assert_eq!(
        project(&[("XDG_CACHE_HOME", ""), ("HOME", "/home/u")])["cache"],
        "/home/u/.cache/kiln"
    );
    assert_eq!(project(&[])["layout"], root.join("oci").to_str().unwrap());
}
