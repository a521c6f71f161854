//! `kiln ls`: List the images of an OCI layout with sizes and parents.

use std::process::ExitCode;

use crate::printer::Printer;

/// List the images of an OCI layout with sizes and parents.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln ls is not built yet")
}
