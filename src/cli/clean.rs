//! `kiln clean`: remove what kiln keeps in the project's cache dir.
//!
//! By default what is cheap to make again (builder states, unpacked layers,
//! scratch dirs, logs); `--all` also what costs downloads or compiles
//! (the fetched stage3 and snapshot, distfiles, binary packages). Named
//! builder states go alone, with the layers no other state uses. The OCI
//! layout is never touched. After a rootless build the trees belong to the
//! user's subordinate ids, so kiln removes them from inside its user
//! namespace, and it holds the build lock so no build runs meanwhile.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::assemble::state;
use crate::cache::{CHEAP, COSTLY};
use crate::error::hinted;
use crate::layouts::Overrides;
use crate::printer::Printer;
use crate::printer::human_size;
use crate::runtime::Runtime;

use super::project::ProjectArgs;

/// Remove builder states, unpacked layers and scratch files from the cache.
///
/// The OCI layout is never touched. The next `kiln build` makes the builder
/// states again, from the cached binary packages; with `--all` it downloads
/// and compiles everything again.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln clean --dry-run           what would go, and its size
  kiln clean                     builder states, unpacked layers, logs
  kiln clean demo/hello          only that image's builder state
  kiln clean --all               the whole cache, downloads and binpkgs too")]
pub struct Args {
    /// Builder states to remove alone: an image or builder (`demo/hello`) or
    /// a state's name (`bob-demo-hello`) [default: everything cheap].
    #[arg(value_name = "STATE")]
    pub states: Vec<String>,
    /// Also the downloads (stage3, snapshot), distfiles and binary packages.
    #[arg(long, conflicts_with = "states")]
    pub all: bool,
    /// Say what would be removed, and its size; remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let stack = args.project.load_settings(printer)?;
    let settings = stack.project.settings(&Overrides::default());
    let cache = &settings.cache;
    if !cache.root().is_dir() {
        printer.info(format!(
            "nothing to clean: {} does not exist",
            cache.root().display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    // Before any thread: entering the namespace needs a single thread.
    let real_root = crate::runtime::probe::real_root_may_mount();
    let _rt = Runtime::enter(real_root, &cache.scratch(), settings.isolation)?;
    let store = state::Store::open(cache)?;
    let _no_runs = cache.lock_out_runs()?;
    let paths = if args.states.is_empty() {
        let names = CHEAP
            .iter()
            .chain(if args.all { COSTLY.iter() } else { [].iter() });
        names
            .map(|n| cache.root().join(n))
            // a dangling symlink goes too
            .filter(|p| p.symlink_metadata().is_ok())
            .collect()
    } else {
        named(&store, &args.states)?
    };
    if let Some(holder) = paths.iter().find(|p| settings.layout.starts_with(p)) {
        return Err(hinted(
            format!(
                "the OCI layout {} is inside {}, which kiln clean would remove",
                settings.layout.display(),
                holder.display()
            ),
            "move the layout (kiln.toml's `layout`) or the cache (`cache`) so neither holds the other",
        ));
    }
    let (mut freed, mut count) = (0, 0);
    for path in &paths {
        let size = tree_size(path);
        // Empty dirs go quietly (opening the store makes states/ and layers/).
        let empty = fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
        if empty {
            if !args.dry_run {
                state::remove_tree(path)?;
            }
            continue;
        }
        freed += size;
        count += 1;
        if args.dry_run {
            printer.status(
                "Would remove",
                format!("{} ({})", path.display(), human_size(size)),
            );
        } else {
            state::remove_tree(path)?;
            printer.status(
                "Removed",
                format!("{} ({})", path.display(), human_size(size)),
            );
        }
    }
    let verb = if args.dry_run { "would free" } else { "freed" };
    printer.info(format!(
        "{} path{}, {verb} {}",
        count,
        if count == 1 { "" } else { "s" },
        human_size(freed)
    ));
    Ok(ExitCode::SUCCESS)
}

/// The dirs of the named states, and the layers only they use.
fn named(store: &state::Store, wanted: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let states = store.states();
    let mut gone = BTreeSet::new();
    for want in wanted {
        let candidates = [
            want.clone(),
            state::image_state(want),
            state::builder_state(want),
        ];
        let Some(name) = candidates
            .iter()
            .find(|c| states.iter().any(|(n, _)| n == *c))
        else {
            let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
            return Err(hinted(
                format!("no builder state `{want}` in the cache"),
                if names.is_empty() {
                    "the cache holds no builder state".to_string()
                } else {
                    format!("the cache holds: {}", names.join(", "))
                },
            ));
        };
        gone.insert(name.clone());
    }
    let kept: BTreeSet<&String> = states
        .iter()
        .filter(|(n, _)| !gone.contains(n))
        .flat_map(|(_, layers)| layers)
        .collect();
    let mut paths: Vec<PathBuf> = gone.iter().map(|n| store.state_dir(n)).collect();
    let orphans: BTreeSet<&String> = states
        .iter()
        .filter(|(n, _)| gone.contains(n))
        .flat_map(|(_, layers)| layers)
        .filter(|l| !kept.contains(l))
        .collect();
    paths.extend(orphans.iter().map(|l| store.layer_dir(l)));
    Ok(paths)
}

/// Bytes of the files under `path`, symlinks not followed.
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|entries| entries.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}
