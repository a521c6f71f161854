//! `kiln build`: Build namespaces or images of the stack, parents and builders first.

use std::process::ExitCode;

use crate::printer::Printer;

/// Build namespaces or images of the stack, parents and builders first.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln build is not built yet")
}
