//! assemble: drives each image of a plan through its build, in order.
//! (Not named `build/`: global gitignores, indexers and coverage tools skip
//! a dir of that name as build output.)
//!
//! For each step (step): work out its input digest (plan), skip it when the layout
//! and the builder state already carry that digest, else run bob-core's
//! build-root.sh in a container over the builder state it builds in (run),
//! write the image into the layout (write) and keep the container's changes
//! as the next builder state (state). A failed build changes neither the
//! layout nor any builder state.

pub mod accounts;
mod annotate;
mod caches;
pub mod distfiles;
mod download;
pub mod hook;
pub mod inputs;
pub mod plan;
pub mod run;
pub mod state;
mod step;
pub mod write;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::hinted;
use crate::graph::{Node, Stack, Step};
use crate::layouts::{Overrides, ProjectSettings};
use crate::printer::Printer;
use crate::runtime::Runtime;
use state::{State, Store};
use write::Layout;

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub force: bool,
    pub force_all: bool,
    pub offline: bool,
    pub jobs: usize,
    pub live: bool,
    /// On a failure, go on with the steps that do not need the failed one.
    pub keep_going: bool,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Built,
    Cached,
    Failed,
    /// Not run: something it needs failed (`--keep-going`).
    Skipped,
}

/// What happened to one step, for the summary.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub node: Node,
    pub status: Status,
    pub secs: f64,
    /// The new layer's compressed size (images only).
    pub size: Option<u64>,
    pub layers: Option<usize>,
}

struct Ctx<'a> {
    stack: &'a Stack,
    overrides: &'a Overrides,
    settings: ProjectSettings,
    store: Store,
    layout: Layout,
    base: State,
    pins: String,
    lock: crate::fetch::Lock,
    /// SOURCE_DATE_EPOCH of every step (epoch.rs).
    epoch: i64,
    /// The project's git checkout, for the manifests' annotations.
    git: Option<annotate::Git>,
    bob_core: PathBuf,
    bob_digest: String,
    options: &'a Options,
    printer: &'a Printer,
    rt: &'a Runtime,
    /// The `http(s)://` mirrors: GENTOO_MIRRORS for the build containers.
    mirrors: Vec<String>,
}

/// Builds the steps in order; stops at the first failure.
pub fn build(
    stack: &Stack,
    steps: &[Step],
    overrides: &Overrides,
    options: &Options,
    rt: &Runtime,
    printer: &Printer,
) -> anyhow::Result<Vec<Outcome>> {
    let user_epoch = crate::epoch::from_env()?;
    let settings = stack.project.settings(overrides);
    let bob_core = find_bob_core(&settings.root)?;
    let mut bob = plan::Inputs::new("bob-core", "");
    bob.tree("bob-core", &bob_core)
        .with_context(|| format!("cannot read {}", bob_core.display()))?;
    let inputs = inputs::resolve(
        &settings.root,
        &settings.sources,
        &settings.cache,
        options.offline,
        printer,
    )?;
    let store = Store::open(&settings.cache)?;
    let base = store.base(&inputs, printer)?;
    let repos = base.layers.first().map(|l| l.join("var/db/repos"));
    let epoch = crate::epoch::resolve(user_epoch, &repos.unwrap_or_default())?;
    printer.verbose(format!(
        "build time (SOURCE_DATE_EPOCH): {} from {}",
        epoch.secs,
        match epoch.source {
            crate::epoch::Source::User => "the environment",
            crate::epoch::Source::Snapshot => "the pinned snapshot's timestamp",
        }
    ));
    let layout = Layout::open(&settings.layout)?;
    let ctx = Ctx {
        mirrors: gentoo_mirrors(&settings.sources),
        stack,
        overrides,
        store,
        layout,
        base,
        pins: inputs.pins,
        lock: inputs.lock,
        epoch: epoch.secs,
        git: annotate::Git::read(&settings.root),
        bob_core,
        bob_digest: bob.finish(),
        settings,
        options,
        printer,
        rt,
    };
    let mut outcomes: Vec<Outcome> = Vec::new();
    for step in steps {
        let blocked = stack.graph.deps(&step.node).iter().any(|(_, dep)| {
            outcomes
                .iter()
                .any(|o| &o.node == dep && matches!(o.status, Status::Failed | Status::Skipped))
        });
        if blocked {
            printer.status(
                "Skipped",
                format!(
                    "{} {} (something it needs failed)",
                    step.node.kind(),
                    step.node
                ),
            );
            outcomes.push(Outcome::not_built(&step.node, Status::Skipped));
            continue;
        }
        match ctx.step(step) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) if options.keep_going => {
                printer.error(&e);
                outcomes.push(Outcome::not_built(&step.node, Status::Failed));
            }
            Err(e) => return Err(e),
        }
    }
    Ok(outcomes)
}

impl Outcome {
    fn not_built(node: &Node, status: Status) -> Outcome {
        Outcome {
            node: node.clone(),
            status,
            secs: 0.0,
            size: None,
            layers: None,
        }
    }
}

/// The project's bob-core/, or `$KILN_BOB_CORE`.
pub fn find_bob_core(root: &Path) -> anyhow::Result<PathBuf> {
    let candidates = [
        std::env::var_os("KILN_BOB_CORE").map(PathBuf::from),
        Some(root.join("bob-core")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|d| d.join("build-root.sh").is_file())
        .ok_or_else(|| {
            hinted(
                format!("no bob-core/build-root.sh in {}", root.display()),
                "copy kiln's bob-core/ into the project, or set KILN_BOB_CORE to its path",
            )
        })
}

/// The `http(s)://` mirrors of `[sources]`, as Portage's GENTOO_MIRRORS
/// (a Gentoo mirror serves distfiles/ beside releases/ and snapshots/);
/// local mirrors' distfiles are copied into the cache instead (inputs.rs).
fn gentoo_mirrors(sources: &crate::fetch::Sources) -> Vec<String> {
    sources
        .mirrors
        .iter()
        .filter(|m| m.starts_with("http://") || m.starts_with("https://"))
        .map(|m| m.trim_end_matches('/').to_string())
        .collect()
}

/// Enters kiln's user namespace for the build (the runtime's), before any
/// thread starts. Real root maps container root to itself; a user needs a
/// subordinate id range, as Portage chowns files to its own users.
pub fn enter_runtime(cache: &Path) -> anyhow::Result<Runtime> {
    // The scratch dirs kiln makes are read by Portage's own user in the
    // container, and their modes end up in the image: not the caller's umask
    // (077 on many hardened hosts), but the one every image builder uses.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let scratch = cache.join("scratch");
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let is_root = nix::unistd::geteuid().is_root() && crate::runtime::userns::in_initial_userns();
    let rt = Runtime::enter(is_root, &scratch)?;
    if rt.ns.mode == crate::runtime::userns::Mode::Single {
        return Err(hinted(
            format!(
                "user {} has no subordinate id range in /etc/subuid and /etc/subgid: a rootless build needs one (Portage chowns files to its own users)",
                rt.ns.user
            ),
            crate::runtime::preflight::subid_fix(&rt.ns.user),
        ));
    }
    Ok(rt)
}
