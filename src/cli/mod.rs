//! The command line: clap definitions and dispatch.
//!
//! Each command lives in its own file with its `Args` (whose doc comments are
//! the help text) and a `run` that returns the process exit code. Commands
//! write through the [`Printer`], never straight to the terminal.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::printer::{Printer, Verbosity};

pub mod build;
pub mod check;
pub mod clean;
pub mod commit;
pub mod completions;
pub mod doctor;
pub mod fetch;
pub mod graph;
pub mod ls;
pub mod new;
pub mod project;
pub mod run;
pub mod sbom;
pub mod update;

/// Build stacks of minimal container images from Gentoo packages, rootless,
/// straight into an OCI image layout.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Say more: each step, the container's output, the user-namespace mode.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Say only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// When to colour the output.
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        default_value = "auto",
        env = "KILN_COLOR"
    )]
    pub color: ColorChoice,
    /// Never draw progress bars (they are drawn only on a terminal anyway).
    #[arg(long, global = true, env = "KILN_NO_PROGRESS", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_progress: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Build(build::Args),
    Check(check::Args),
    Clean(clean::Args),
    Commit(commit::Args),
    Completions(completions::Args),
    Doctor(doctor::Args),
    Fetch(fetch::Args),
    Graph(graph::Args),
    Ls(ls::Args),
    New(new::Args),
    Run(Box<run::Args>),
    Sbom(sbom::Args),
    Update(update::Args),
}

impl GlobalArgs {
    pub fn printer(&self) -> Printer {
        let verbosity = if self.quiet {
            Verbosity::Quiet
        } else if self.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let color = match self.color {
            ColorChoice::Auto => None,
            ColorChoice::Always => Some(true),
            ColorChoice::Never => Some(false),
        };
        Printer::new(verbosity, color, !self.no_progress)
    }
}

pub fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(args, printer),
        Command::Check(args) => check::run(args, printer),
        Command::Clean(args) => clean::run(args, printer),
        Command::Commit(args) => commit::run(args, printer),
        Command::Completions(args) => completions::run(args, printer),
        Command::Doctor(args) => doctor::run(args, printer),
        Command::Fetch(args) => fetch::run(args, printer),
        Command::Graph(args) => graph::run(args, printer),
        Command::Ls(args) => ls::run(args, printer),
        Command::New(args) => new::run(args, printer),
        Command::Run(args) => run::run(*args, printer),
        Command::Sbom(args) => sbom::run(args, printer),
        Command::Update(args) => update::run(args, printer),
    }
}
