//! `kiln update`: look for the latest stage3 and snapshot, verify them, and
//! pin them in kiln.lock.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::fetch::{self, Fetcher, Options};
use crate::printer::Printer;

/// Find the latest stage3 and portage snapshot on the mirrors, download and
/// verify them, and pin them in kiln.lock.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  kiln update\n  kiln update --config path/to/kiln.toml")]
pub struct Args {
    /// The project's kiln.toml (its directory gets kiln.lock).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Use only the cache and file:// or directory mirrors.
    #[arg(long)]
    pub offline: bool,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let (dir, sources) = fetch::config::load(args.config.as_deref())?;
    let options = Options {
        offline: args.offline,
        cache_dir: None,
    };
    let fetcher = Fetcher::new(&dir, &sources, &options, printer)?;
    let lock = fetcher.update()?;
    let old = fetch::Lock::read(&dir)?;
    lock.write(&dir)?;
    for (what, pin) in [("stage3", &lock.stage3), ("snapshot", &lock.snapshot)] {
        let was = old.as_ref().map(|o| {
            if what == "stage3" {
                &o.stage3
            } else {
                &o.snapshot
            }
        });
        let verb = if was == Some(pin) {
            "Unchanged"
        } else {
            "Pinned"
        };
        printer.status(verb, format!("{what} {} ({} bytes)", pin.name(), pin.size));
    }
    Ok(ExitCode::SUCCESS)
}
