//! `kiln fetch`: Download and verify everything a build needs, into the cache or a mirror directory.

use std::process::ExitCode;

use crate::printer::Printer;

/// Download and verify everything a build needs, into the cache or a mirror directory.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln fetch is not built yet")
}
