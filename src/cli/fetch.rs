//! `kiln fetch`: bring the pinned stage3 and snapshot into the cache,
//! verified, and optionally write them as a mirror for an air-gapped machine.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::fetch::{self, Fetcher, Lock, Options};
use crate::printer::Printer;

/// Download and verify everything a build needs, into the cache or a mirror directory.
///
/// Prints the cached paths of the stage3 and the snapshot on stdout. Without
/// a kiln.lock, the latest inputs are pinned first (as `kiln update` does).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  kiln fetch\n  kiln fetch --to /media/usb/mirror      \
     # then, offline: mirrors = [\"file:///media/usb/mirror\"]\n  kiln fetch --offline"
)]
pub struct Args {
    /// The project's kiln.toml (kiln.lock is read from its directory).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Also write the files, signatures and checksums as a Gentoo-shaped
    /// mirror in DIR, with a copy of kiln.lock, to carry to a machine
    /// without network.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Never touch the network: use the cache and file:// or directory mirrors.
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let (dir, sources) = fetch::config::load(args.config.as_deref())?;
    let options = Options {
        offline: args.offline,
        cache_dir: None,
    };
    let inputs = fetch::inputs(&dir, &sources, &options, printer)?;
    if let Some(to) = &args.to {
        let fetcher = Fetcher::new(&dir, &sources, &options, printer)?;
        fetcher.export(&inputs, to)?;
        Lock::write(&inputs.lock, to)?;
    }
    printer.out(format!("stage3 {}", inputs.stage3.display()));
    printer.out(format!("snapshot {}", inputs.snapshot.display()));
    Ok(ExitCode::SUCCESS)
}
