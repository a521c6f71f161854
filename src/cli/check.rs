//! `kiln check`: validate kiln.toml and every layout without building, and
//! print every problem found, not only the first.

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
    let requested = stack.graph.targets(&stack.project, &args.targets)?;
    let mut problems = stack.problems.clone();
    if !args.targets.is_empty() {
        let dirs: Vec<_> = stack
            .graph
            .plan(&requested, true)
            .iter()
            .filter_map(|step| node_dir(&stack, &step.node))
            .collect();
        let root_files = [stack.project.kiln_toml()];
        problems.retain(|p| {
            root_files.contains(&p.file)
                || dirs.iter().any(|d| p.file.starts_with(d))
                || p.file.file_name().is_some_and(|n| n == "namespace.toml")
        });
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

fn node_dir(stack: &Stack, node: &Node) -> Option<std::path::PathBuf> {
    match node {
        Node::Image(id) => stack.project.images.get(id).map(|i| i.dir.clone()),
        Node::Builder(id) => stack.project.builders.get(id).map(|b| b.dir.clone()),
    }
}
