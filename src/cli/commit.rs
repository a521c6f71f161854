//! `kiln commit`: Plumbing: turn a directory into an image layer on top of a parent, in an OCI layout.

use std::process::ExitCode;

use crate::printer::Printer;

/// Plumbing: turn a directory into an image layer on top of a parent, in an OCI layout.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln commit is not built yet")
}
