//! `kiln clean`: Drop builder states and caches.

use std::process::ExitCode;

use crate::printer::Printer;

/// Drop builder states and caches.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _printer: &Printer) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln clean is not built yet")
}
