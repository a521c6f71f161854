//! `kiln update`: look for the latest stage3 and snapshot, verify them, and
//! pin them in kiln.lock.

use std::process::ExitCode;

use crate::fetch::{self, Fetcher, Options};
use crate::layouts::Overrides;
use crate::printer::Printer;

use super::project::ProjectArgs;

/// Find the latest stage3 and portage snapshot on the mirrors, download and
/// verify them, and pin them in kiln.lock.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  kiln update\n  kiln update --project path/to/project")]
pub struct Args {
    /// Use only the cache and file:// or directory mirrors.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = args.project.load_sources(printer)?;
    let settings = stack.project.settings(&Overrides::default());
    let (dir, sources) = (settings.root, settings.sources);
    let options = Options {
        offline: args.offline,
        downloads: settings.cache.downloads(),
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
