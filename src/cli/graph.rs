//! `kiln graph`: Show the stack: images by parent, builders marked.

use std::process::ExitCode;

use crate::printer::Printer;

/// Show the stack: images by parent, builders marked.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln graph is not built yet")
}
