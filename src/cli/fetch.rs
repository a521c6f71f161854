//! `kiln fetch`: bring the pinned stage3 and snapshot into the cache,
//! verified, then the distfiles of the stack's images (Portage's own
//! `emerge --fetchonly` in the builder), and optionally write all of it as
//! a mirror for an air-gapped machine.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::assemble;
use crate::fetch::{self, Fetcher, Lock, Options};
use crate::layouts::Overrides;
use crate::printer::Printer;

use super::project::ProjectArgs;

const AFTER_HELP: &str = "\
Examples:
  kiln fetch
  kiln fetch --to /media/usb/mirror   # then, air-gapped: mirrors = [\"file:///media/usb/mirror\"]
                                      # and kiln build --offline
  kiln fetch demo/hello               # the distfiles of one image (and its parents)
  kiln fetch --offline                # check that everything is in the cache

Environment:
  KILN_CACHE_DIR      the cache (over kiln.toml's `cache`); downloads go to its downloads/
  KILN_HTTP_TIMEOUT   seconds a mirror may stay silent before the next is tried (default 30)";

/// Download and verify everything a build needs, into the cache or a mirror directory.
///
/// Prints the cached paths of the stage3 and the snapshot on stdout. Without
/// a kiln.lock, the latest inputs are pinned first (as `kiln update` does).
/// In a project with images, the source tarballs (distfiles) of those images
/// are fetched too, by Portage in the build container (rootless: needs a
/// subordinate id range, as `kiln build` does).
#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Images or namespaces whose distfiles to fetch [default: all].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Also write the files, signatures, checksums and distfiles as a
    /// Gentoo-shaped mirror in DIR, with a copy of kiln.lock, to carry to a
    /// machine without network.
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Never touch the network: use the cache and file:// or directory mirrors.
    #[arg(long)]
    pub offline: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = args.project.load_sources(printer)?;
    let settings = stack.project.settings(&Overrides::default());
    let (dir, sources) = (settings.root.clone(), settings.sources.clone());
    let options = Options {
        offline: args.offline,
        downloads: settings.cache.downloads(),
    };
    let steps = stack.plan(&args.targets, false)?;
    let (inputs, distfiles) = if steps.is_empty() {
        (fetch::inputs(&dir, &sources, &options, printer)?, None)
    } else {
        let setup = assemble::Setup::new(&stack, Overrides::default())?;
        // Nothing may start a thread before this: entering needs one thread.
        let rt = assemble::enter_runtime(&setup.settings)?;
        let (inputs, store, base) = setup.base(args.offline, printer)?;
        let distfiles = assemble::distfiles::fetch(
            &stack,
            &steps,
            &setup,
            (&store, &base),
            &rt,
            args.offline,
            printer.is_verbose(),
            printer,
        )?;
        (inputs.fetched, Some(distfiles))
    };
    if let Some(to) = &args.to {
        let fetcher = Fetcher::new(&dir, &sources, &options, printer)?;
        fetcher.export(&inputs, to)?;
        Lock::write(&inputs.lock, to)?;
        if let Some(distfiles) = &distfiles {
            let count = assemble::distfiles::export(distfiles, to)?;
            printer.status("Exported", format!("{count} distfiles to {}", to.display()));
        }
    }
    printer.out(format!("stage3 {}", inputs.stage3.display()));
    printer.out(format!("snapshot {}", inputs.snapshot.display()));
    if let Some(distfiles) = distfiles {
        printer.out(format!("distfiles {}", distfiles.display()));
    }
    Ok(ExitCode::SUCCESS)
}
