//! `kiln new`: scaffold a namespace, an image or a builder, with files whose
//! comments explain each key.
//!
//! Like gentoo-bb's `add`, it asks for what the flags did not give when
//! stdin is a terminal, and takes the defaults otherwise, so scripts and
//! people use the same command. It never overwrites a file.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::error::hinted;
use crate::graph::Stack;
use crate::layouts::problem::{closest, display_path};
use crate::layouts::{NAME_RULE, atom, is_valid_name, name_problem, registry_problem};
use crate::printer::Printer;

use super::project::ProjectArgs;

/// Scaffold a namespace, an image or a builder.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln new namespace acme --owner 'Jane Doe' --email jane@acme.org
  kiln new image acme/nginx --parent acme/openssl --package www-servers/nginx
  kiln new builder acme/bob-musl
On a terminal, kiln asks for what the flags do not give.")]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// A namespace: layouts/NAME/namespace.toml and README.md.
    Namespace {
        name: String,
        /// Who maintains it (the authors label).
        #[arg(long)]
        owner: Option<String>,
        /// The maintainer's email.
        #[arg(long)]
        email: Option<String>,
        /// Prefix of its image refs, e.g. `ghcr.io/acme` [default: NAME].
        #[arg(long)]
        registry: Option<String>,
    },
    /// An image: layouts/NS/images/NAME/ with image.toml, build.sh, README.md.
    Image {
        /// `<namespace>/<image>`.
        #[arg(value_name = "NS/NAME")]
        id: String,
        /// The image it extends: `scratch` or `<ns>/<image>` [default: scratch].
        #[arg(long, value_name = "REF")]
        parent: Option<String>,
        /// The builder it builds in, `<ns>/<builder>` [default: the parent's].
        #[arg(long, value_name = "REF")]
        builder: Option<String>,
        /// A Portage atom to install; repeat for more.
        #[arg(long = "package", value_name = "ATOM")]
        packages: Vec<String>,
    },
    /// A builder: layouts/NS/builders/NAME/ with builder.toml and build.sh.
    Builder {
        #[arg(value_name = "NS/NAME")]
        id: String,
        /// What it starts from: `stage3` or `<ns>/<builder>` [default: stage3].
        #[arg(long, value_name = "REF")]
        parent: Option<String>,
    },
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let root = args.project.root()?;
    let stack = Stack::load(&root);
    let mut ask = Asker::new();
    let written = match args.what {
        What::Namespace {
            name,
            owner,
            email,
            registry,
        } => namespace(&root, &name, owner, email, registry, &mut ask)?,
        What::Image {
            id,
            parent,
            builder,
            packages,
        } => image(&stack, &id, parent, builder, packages, &mut ask)?,
        What::Builder { id, parent } => builder(&stack, &id, parent, &mut ask)?,
    };
    for path in &written {
        printer.status("Created", display_path(path));
    }
    Ok(ExitCode::SUCCESS)
}

fn namespace(
    root: &Path,
    name: &str,
    owner: Option<String>,
    email: Option<String>,
    registry: Option<String>,
    ask: &mut Asker,
) -> anyhow::Result<Vec<PathBuf>> {
    if !is_valid_name(name) {
        return Err(bad_name(name, "namespace"));
    }
    let dir = root.join("layouts").join(name);
    let file = dir.join("namespace.toml");
    refuse_existing(&file)?;
    ask.say("Who maintains the new namespace?");
    let owner = ask.value(owner, "Name", "", |_| Ok(()))?;
    let email = ask.value(email, "Email", "", |_| Ok(()))?;
    let registry = ask.value(
        registry,
        "Registry prefix (empty: the namespace name)",
        "",
        |r| match registry_problem(r) {
            Some((problem, hint)) if !r.is_empty() => Err(format!("{problem}; {hint}")),
            _ => Ok(()),
        },
    )?;
    let owner_lines = [("name", &owner), ("email", &email)]
        .iter()
        .map(|(k, v)| match v.is_empty() {
            true => format!("# {k} = \"\""),
            false => format!("{k} = {}", quote(v)),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let registry = match registry.is_empty() {
        true => "# registry = \"ghcr.io/acme\"".to_string(),
        false => format!("registry = {}", quote(&registry)),
    };
    let fill = |t: &str| {
        t.replace("@NAME@", name)
            .replace("@OWNER@", &owner_lines)
            .replace("@REGISTRY@", &registry)
    };
    write_all(&[
        (file, fill(include_str!("namespace.toml"))),
        (
            dir.join("README.md"),
            fill(include_str!("namespace-README.md")),
        ),
    ])
}

fn image(
    stack: &Stack,
    id: &str,
    parent: Option<String>,
    builder: Option<String>,
    packages: Vec<String>,
    ask: &mut Asker,
) -> anyhow::Result<Vec<PathBuf>> {
    let (ns, name) = split_id(stack, id, "image")?;
    let dir = stack
        .project
        .root
        .join("layouts")
        .join(ns)
        .join("images")
        .join(name);
    refuse_existing(&dir.join("image.toml"))?;
    let images: Vec<&str> = stack.project.images.keys().map(String::as_str).collect();
    let builders: Vec<&str> = stack.project.builders.keys().map(String::as_str).collect();
    ask.say("Do you want to extend an existing image? `scratch` or <ns>/<image>");
    let parent = ask.value(parent, "Parent image", "scratch", |p| {
        known(p, "scratch", &images, "image")
    })?;
    ask.say("Build in a builder of the stack? Empty: the parent's builder state");
    let builder = ask.value(builder, "Builder", "", |b| {
        known(b, "", &builders, "builder")
    })?;
    let packages = if packages.is_empty() {
        ask.say("Which Portage packages does it install? (space-separated atoms)");
        ask.value(None, "Packages", "", |list| {
            list.split_whitespace()
                .try_for_each(|a| atom::check(a).map_err(|e| format!("`{a}`: {e}")))
        })?
        .split_whitespace()
        .map(str::to_string)
        .collect()
    } else {
        for a in &packages {
            atom::check(a).map_err(|e| anyhow::anyhow!("`{a}` is not a Portage atom: {e}"))?;
        }
        packages
    };
    let builder_line = match builder.is_empty() {
        true => "# builder = \"<namespace>/<builder>\"".to_string(),
        false => format!("builder = {}", quote(&builder)),
    };
    let packages = packages
        .iter()
        .map(|p| quote(p))
        .collect::<Vec<_>>()
        .join(", ");
    let fill = |t: &str| {
        t.replace("@ID@", id)
            .replace("@PARENT@", &parent)
            .replace("@BUILDER@", &builder_line)
            .replace("@PACKAGES@", &packages)
    };
    write_all(&[
        (dir.join("image.toml"), fill(include_str!("image.toml"))),
        (dir.join("build.sh"), fill(include_str!("image-build.sh"))),
        (dir.join("README.md"), fill(include_str!("image-README.md"))),
    ])
}

fn builder(
    stack: &Stack,
    id: &str,
    parent: Option<String>,
    ask: &mut Asker,
) -> anyhow::Result<Vec<PathBuf>> {
    let (ns, name) = split_id(stack, id, "builder")?;
    let dir = stack
        .project
        .root
        .join("layouts")
        .join(ns)
        .join("builders")
        .join(name);
    refuse_existing(&dir.join("builder.toml"))?;
    let builders: Vec<&str> = stack.project.builders.keys().map(String::as_str).collect();
    ask.say("Extend another builder? `stage3` or <ns>/<builder>");
    let parent = ask.value(parent, "Parent", "stage3", |p| {
        known(p, "stage3", &builders, "builder")
    })?;
    let fill = |t: &str| t.replace("@ID@", id).replace("@PARENT@", &parent);
    write_all(&[
        (dir.join("builder.toml"), fill(include_str!("builder.toml"))),
        (dir.join("build.sh"), fill(include_str!("builder-build.sh"))),
    ])
}

/// `ns/name` with a valid name in a namespace that exists.
fn split_id<'a>(stack: &Stack, id: &'a str, what: &str) -> anyhow::Result<(&'a str, &'a str)> {
    let (ns, name) = id.split_once('/').ok_or_else(|| {
        hinted(
            format!("`{id}` is not <namespace>/<{what}>"),
            format!("e.g. `kiln new {what} acme/{id}`"),
        )
    })?;
    if !is_valid_name(name) {
        return Err(bad_name(name, what));
    }
    if !stack.project.namespaces.contains_key(ns) {
        return Err(hinted(
            format!("there is no namespace `{ns}`"),
            format!("create it first: `kiln new namespace {ns}`"),
        ));
    }
    Ok((ns, name))
}

/// Accept `none` (the keyword for "no such reference") or a known ref.
fn known(value: &str, none: &str, known: &[&str], what: &str) -> Result<(), String> {
    if value == none || known.contains(&value) {
        return Ok(());
    }
    let mut msg = format!("there is no {what} `{value}`");
    if let Some(best) = closest(value, known.iter().copied()) {
        msg.push_str(&format!(": did you mean `{best}`?"));
    }
    Err(msg)
}

fn bad_name(name: &str, what: &str) -> anyhow::Error {
    let why = name_problem(name).unwrap_or_default();
    hinted(
        format!("`{name}` is not a valid {what} name: {why}"),
        NAME_RULE,
    )
}

fn refuse_existing(file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        return Err(hinted(
            format!("{} already exists", display_path(file)),
            "kiln new never overwrites: edit the file, or remove it first",
        ));
    }
    Ok(())
}

/// Write the files that are not there yet; the ones already there (a
/// README.md written by hand) are kept as they are.
fn write_all(files: &[(PathBuf, String)]) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (path, text) in files {
        if path.exists() {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path.clone());
    }
    Ok(written)
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Questions on the terminal, or nothing when stdin is not one.
struct Asker {
    interactive: bool,
}

impl Asker {
    fn new() -> Self {
        Asker {
            interactive: std::io::stdin().is_terminal(),
        }
    }

    fn say(&self, text: &str) {
        if self.interactive {
            eprintln!("--> {text}");
        }
    }

    /// The flag's value if given, else the answer (asked again until `check`
    /// accepts it), else the default. A flag's bad value is an error.
    fn value(
        &mut self,
        flag: Option<String>,
        prompt: &str,
        default: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> anyhow::Result<String> {
        if let Some(value) = flag {
            check(&value).map_err(|e| anyhow::anyhow!(e))?;
            return Ok(value);
        }
        if !self.interactive {
            return Ok(default.to_string());
        }
        loop {
            if default.is_empty() {
                eprint!("{prompt}: ");
            } else {
                eprint!("{prompt} ({default}): ");
            }
            std::io::stderr().flush()?;
            let mut line = String::new();
            if std::io::stdin().lock().read_line(&mut line)? == 0 {
                anyhow::bail!("stdin closed before `{prompt}` was answered");
            }
            let answer = match line.trim() {
                "" => default.to_string(),
                a => a.to_string(),
            };
            match check(&answer) {
                Ok(()) => return Ok(answer),
                Err(e) => eprintln!("{e}"),
            }
        }
    }
}
