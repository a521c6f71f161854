//! `kiln build`: build namespaces or images of the stack, parents and
//! builders first, into the OCI layout; `--dry-run` prints the plan in order
//! with why each step would run. The build itself is `crate::assemble`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::assemble::{self, Outcome, Status};
use crate::graph::{Node, Reason, Stack, Step};
use crate::layouts::problem::display_path;
use crate::layouts::{BuildContainer, Compression, Overrides};
use crate::printer::{Printer, human_size};
use crate::runtime::isolation::Choice;

use super::project::{ProjectArgs, plural};

/// Build namespaces or images of the stack, parents and builders first.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln build --dry-run                 the plan for the whole stack
  kiln build --dry-run acme/nginx      nginx and what it needs
  kiln build --dry-run -n acme/{a,b}   only a and b, not their parents")]
pub struct Args {
    /// Namespaces (`acme`) or images and builders (`acme/nginx`) [default: all].
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Print the plan, in order, with why each step would run; build nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Rebuild the named images even if their inputs did not change.
    #[arg(short, long)]
    pub force: bool,
    /// Rebuild everything in the plan, builders included.
    #[arg(short = 'F', long)]
    pub force_all: bool,
    /// Only the named targets, not their parents and builders.
    #[arg(short, long)]
    pub no_deps: bool,
    /// Use only what is in the cache; fail instead of downloading.
    #[arg(long)]
    pub offline: bool,
    /// Parallel jobs inside each build (emerge --jobs); images build one at a time.
    #[arg(short, long, value_name = "N", default_value_t = 1)]
    pub jobs: usize,
    /// On a failure, go on with the images that do not need the failed one;
    /// exit non-zero at the end.
    #[arg(short, long)]
    pub keep_going: bool,
    /// The OCI image layout to write to [default: kiln.toml's `layout`, else ./oci].
    #[arg(long, value_name = "DIR")]
    pub layout: Option<PathBuf>,
    /// Layer compression, over every file's `compression`.
    #[arg(long, value_enum)]
    pub compression: Option<Compression>,
    /// How build containers are isolated, over kiln.toml's `isolation`
    /// [default: auto, the strongest this place allows; `kiln doctor` says which].
    #[arg(long, value_enum, value_name = "MODE")]
    pub isolation: Option<Choice>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

impl Args {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            compression: self.compression,
            layout: self.layout.clone(),
            isolation: self.isolation,
        }
    }
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = args.project.load_valid(printer)?;
    let steps = stack.plan(&args.targets, args.no_deps)?;
    let overrides = args.overrides();
    if !args.dry_run {
        let setup = assemble::Setup::new(&stack, overrides)?;
        let rt = assemble::enter_runtime(&setup.settings)?;
        printer.verbose(format!("{}\n{}", rt.ns.explain(), rt.isolation));
        let options = assemble::Options {
            force: args.force,
            force_all: args.force_all,
            offline: args.offline,
            jobs: args.jobs,
            live: printer.is_verbose(),
            keep_going: args.keep_going,
        };
        let outcomes = assemble::build(&stack, &steps, &setup, &options, &rt, printer)?;
        summary(printer, &outcomes);
        let failed = outcomes
            .iter()
            .filter(|o| o.status == Status::Failed)
            .count();
        if failed > 0 {
            return Err(crate::error::hinted(
                format!("{failed} of {} steps failed (above)", outcomes.len()),
                "the logs are in the cache's logs/; the layout holds the images that built",
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let settings = stack.project.settings(&overrides);
    let in_layout = refs_in_layout(&settings.layout)?;
    printer.out(format!(
        "Plan: {} step{} into {} (dry run, nothing is built)",
        steps.len(),
        plural(steps.len()),
        display_path(&settings.layout),
    ));
    for (i, step) in steps.iter().enumerate() {
        let line = describe(&stack, step, &args, &overrides, &in_layout);
        printer.out(format!("{:>3}. {line}", i + 1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `image demo/hello -> demo/hello:latest (gzip) in demo/glibc's builder: parent of ...; not in the layout`
fn describe(
    stack: &Stack,
    step: &Step,
    args: &Args,
    overrides: &Overrides,
    in_layout: &BTreeSet<String>,
) -> String {
    let mut why: Vec<String> = step.reasons.iter().map(ToString::to_string).collect();
    match &step.node {
        Node::Builder(id) => {
            let from = stack
                .project
                .builder_settings(id)
                .and_then(|b| b.parent)
                .unwrap_or_else(|| "stage3".into());
            if args.force_all {
                why.push("--force-all".into());
            } else {
                why.push("built once, then reused while its inputs are unchanged".into());
            }
            format!("builder {id} from {from}: {}", why.join("; "))
        }
        Node::Image(id) => {
            let Some(image) = stack.project.image_settings(id, overrides) else {
                return format!("image {id}");
            };
            let container = match &image.build_container {
                BuildContainer::Stage3 => "the stage3 base".to_string(),
                BuildContainer::Builder(b) => format!("builder {b}"),
                BuildContainer::ParentState(p) => format!("{p}'s builder state"),
            };
            let requested = step.reasons.contains(&Reason::Requested);
            let state = if args.force_all {
                "--force-all"
            } else if args.force && requested {
                "--force"
            } else if in_layout.contains(&image.reference) {
                "in the layout: rebuilt only if its inputs changed"
            } else {
                "not in the layout"
            };
            why.push(state.into());
            format!(
                "image {id} -> {} ({}) in {container}: {}",
                image.reference,
                image.compression.as_str(),
                why.join("; ")
            )
        }
    }
}

/// The ref names in the layout; empty when there is no layout.
/// The refs a layout holds; a layout not made yet holds none. A directory
/// that is not a layout is an error here as it would be in the build.
fn refs_in_layout(layout: &Path) -> anyhow::Result<BTreeSet<String>> {
    let unmade = std::fs::read_dir(layout).map_or(true, |mut d| d.next().is_none());
    if unmade {
        return Ok(BTreeSet::new());
    }
    let refs = crate::oci::Layout::open(layout).and_then(|l| l.refs())?;
    Ok(refs.into_iter().map(|r| r.name).collect())
}

/// One row per step: image, its size (every layer, compressed: what a pull
/// into an empty store fetches), its own layer's size, layers, time, cached
/// or built.
fn summary(printer: &Printer, outcomes: &[Outcome]) {
    printer.out(format!(
        "{:<32} {:>10} {:>10} {:>6} {:>8}  {}",
        "IMAGE", "SIZE", "LAYER", "LAYERS", "TIME", "STATUS"
    ));
    for o in outcomes {
        let name = if o.node.is_builder() {
            format!("{} (builder)", o.node)
        } else {
            o.node.to_string()
        };
        let show =
            |f: fn(&assemble::write::Sizes) -> String| o.sizes.as_ref().map_or("-".into(), f);
        let size = show(|s| human_size(s.image));
        let layer = show(|s| human_size(s.top));
        let layers = show(|s| s.layers.to_string());
        let status = match o.status {
            Status::Built => "built",
            Status::Cached => "cached",
            Status::Failed => "FAILED",
            Status::Skipped => "skipped",
        };
        printer.out(format!(
            "{name:<32} {size:>10} {layer:>10} {layers:>6} {:>7.1}s  {status}",
            o.secs
        ));
    }
    let count = |r: Status| outcomes.iter().filter(|o| o.status == r).count();
    let mut line = format!(
        "{} built, {} cached",
        count(Status::Built),
        count(Status::Cached)
    );
    for (r, name) in [(Status::Failed, "failed"), (Status::Skipped, "skipped")] {
        if count(r) > 0 {
            line.push_str(&format!(", {} {name}", count(r)));
        }
    }
    printer.info(line);
}
