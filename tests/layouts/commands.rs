//! Finding the project, `kiln new` with flags and on a terminal, and the
//! completion scripts.

use std::process::Command;

use crate::util::layouts::{fixture, kiln_in, stack};
use crate::util::{describe, kiln, require_tool, stderr, stdout};

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
    let out = new(&["image", "acme/a..b"]);
    assert_eq!(
        stderr(&out),
        "error: `a..b` is not a valid image name: `..` puts separators together (only `--` may be doubled)\n\
         hint: use lowercase letters and digits, joined by single `.`, `_` or `-` (or `--`): names become parts of OCI refs\n"
    );
    let out = new(&["namespace", "other", "--registry", "ghcr.io/a..b"]);
    assert_eq!(
        stderr(&out),
        "error: `ghcr.io/a..b` is not a registry prefix: `..` puts separators together (only `--` may be doubled); \
         write e.g. `ghcr.io/acme`: a ref is parts joined by `/`, each letters and digits with one of \
         `-` `.` `_` `:` `@` `+` (or `--`) between them, as the OCI image-spec's org.opencontainers.image.ref.name grammar says\n"
    );
    assert!(
        !root.join("layouts/acme/images/a..b").exists() && !root.join("layouts/other").exists()
    );

    // A file already there is kept: only the missing ones are written.
    crate::util::layouts::write(root, &[("layouts/acme/images/solo/README.md", "# mine\n")]);
    let out = new(&["image", "acme/solo"]);
    assert_eq!(
        stderr(&out),
        "     Created layouts/acme/images/solo/image.toml\n     Created layouts/acme/images/solo/build.sh\n"
    );
    let readme = std::fs::read_to_string(root.join("layouts/acme/images/solo/README.md")).unwrap();
    assert_eq!(readme, "# mine\n");
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
