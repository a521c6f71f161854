//! `kiln update`: Look for a newer stage3 and snapshot and pin them in kiln.lock.

use std::process::ExitCode;

use crate::printer::Printer;

/// Look for a newer stage3 and snapshot and pin them in kiln.lock.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln update is not built yet")
}
