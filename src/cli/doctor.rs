//! `kiln doctor`: Check that this machine can run rootless build containers, and say how to fix what is missing.

use std::process::ExitCode;

use crate::printer::Printer;

/// Check that this machine can run rootless build containers, and say how to fix what is missing.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln doctor is not built yet")
}
