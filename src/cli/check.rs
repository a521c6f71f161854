//! `kiln check`: validate kiln.toml and every layout without building, and
//! print every problem found, not only the first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::graph::{Node, Stack};
use crate::printer::Printer;

use super::project::{ProjectArgs, plural, print_problems};

/// Validate kiln.toml and every layout without building; print all problems found.
///
/// Exits 0 when there is no error (warnings allowed), 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln check                  everything under layouts/
  kiln check acme             problems in namespace acme and what it needs
  kiln check acme/nginx       nginx, its parents and builders
  kiln check --project ~/stack")]
pub struct Args {
    /// Namespaces (`acme`) or images and builders (`acme/nginx`) to report on
    /// [default: all].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = Stack::load(&args.project.root()?);
    let mut problems = stack.problems.clone();
    if !args.targets.is_empty() {
        let scope = Scope::of(&stack, &args.targets)?;
        problems.retain(|p| scope.contains(&p.file));
    }
    print_problems(printer, &problems);
    let errors = problems.iter().filter(|p| p.is_error()).count();
    let warnings = problems.len() - errors;
    let project = &stack.project;
    let summary = format!(
        "{} namespace{}, {} image{}, {} builder{}: {errors} error{}, {warnings} warning{}",
        project.namespaces.len(),
        plural(project.namespaces.len()),
        project.images.len(),
        plural(project.images.len()),
        project.builders.len(),
        plural(project.builders.len()),
        plural(errors),
        plural(warnings),
    );
    printer.status("Checked", summary);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The files whose problems concern some targets: kiln.toml, the targets'
/// directories and those of what they need, and their namespaces' files.
struct Scope {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl Scope {
    fn of(stack: &Stack, targets: &[String]) -> anyhow::Result<Scope> {
        let project = &stack.project;
        // An image or builder whose file did not parse is no node of the
        // graph, yet its problems are what `check` must show.
        let (broken, targets): (Vec<&String>, Vec<&String>) = targets.iter().partition(|t| {
            project.broken_images.contains(*t) || project.broken_builders.contains(*t)
        });
        let targets: Vec<String> = targets.into_iter().cloned().collect();
        let mut scope = Scope {
            files: vec![project.kiln_toml()],
            dirs: Vec::new(),
        };
        let mut namespaces = Vec::new();
        for ns in targets
            .iter()
            .filter_map(|t| project.namespaces.get(t.as_str()))
        {
            // All of a namespace, its images that did not parse included.
            scope.dirs.push(ns.dir.clone());
        }
        for id in broken {
            let (ns, name) = id.split_once('/').unwrap_or_default();
            let kind = if project.broken_images.contains(id) {
                "images"
            } else {
                "builders"
            };
            scope
                .dirs
                .push(project.root.join("layouts").join(ns).join(kind).join(name));
            namespaces.push(ns.to_string());
        }
        if !targets.is_empty() {
            let requested = stack.graph.targets(project, &targets)?;
            for step in stack.graph.plan(&requested, true) {
                scope.dirs.extend(node_dir(stack, &step.node));
                namespaces.push(namespace_of(&step.node).to_string());
            }
        }
        for ns in namespaces
            .iter()
            .filter_map(|ns| project.namespaces.get(ns))
        {
            // A missing namespace.toml is reported on the namespace's directory.
            scope.files.push(ns.source.path.clone());
            scope.files.push(ns.dir.clone());
        }
        Ok(scope)
    }

    fn contains(&self, file: &Path) -> bool {
        self.files.iter().any(|f| f == file) || self.dirs.iter().any(|d| file.starts_with(d))
    }
}

fn namespace_of(node: &Node) -> &str {
    node.id().split('/').next().unwrap_or_default()
}

fn node_dir(stack: &Stack, node: &Node) -> Option<PathBuf> {
    match node {
        Node::Image(id) => stack.project.images.get(id).map(|i| i.dir.clone()),
        Node::Builder(id) => stack.project.builders.get(id).map(|b| b.dir.clone()),
    }
}
