//! `kiln new`: Scaffold a namespace or an image.

use std::process::ExitCode;

use crate::printer::Printer;

/// Scaffold a namespace or an image.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln new is not built yet")
}
