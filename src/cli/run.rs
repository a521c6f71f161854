//! `kiln run`: Run a command in an image of an OCI layout.

use std::process::ExitCode;

use crate::printer::Printer;

/// Run a command in an image of an OCI layout.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln run is not built yet")
}
