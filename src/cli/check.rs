//! `kiln check`: Validate kiln.toml and every layout without building; print all problems found.

use std::process::ExitCode;

use crate::printer::Printer;

/// Validate kiln.toml and every layout without building; print all problems found.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln check is not built yet")
}
