//! `kiln completions`: Print shell completions for bash, zsh or fish.

use std::process::ExitCode;

use crate::printer::Printer;

/// Print shell completions for bash, zsh or fish.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln completions is not built yet")
}
