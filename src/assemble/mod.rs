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
mod progress;
pub mod repos;
pub mod run;
pub mod state;
mod step;
pub mod write;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::hinted;
use crate::fetch::Mirror;
use crate::graph::{Node, Stack, Step};
use crate::layouts::{Overrides, ProjectSettings};
use crate::printer::Printer;
use crate::runtime::Runtime;
use inputs::Inputs;
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
    /// Images only.
    pub sizes: Option<write::Sizes>,
}

/// What every build and distfile fetch of one kiln command shares, worked
/// out once and passed down: the project's settings (with its cache),
/// bob-core and its digest, and Portage's mirrors.
pub struct Setup {
    pub overrides: Overrides,
    pub settings: ProjectSettings,
    pub bob_core: PathBuf,
    /// Part of every input digest: a new bob-core rebuilds everything.
    pub bob_digest: String,
    /// The `http(s)://` mirrors of `[sources]`: Portage's GENTOO_MIRRORS in
    /// the build containers (a Gentoo mirror serves distfiles/ beside
    /// releases/ and snapshots/); local mirrors' distfiles are copied into
    /// the cache instead (inputs.rs).
    pub mirrors: Vec<String>,
    /// kiln.toml's ebuild repositories, each hashed once.
    pub repos: repos::Repos,
    /// The user's SOURCE_DATE_EPOCH, read before any work so that a bad
    /// value changes nothing (epoch.rs).
    pub user_epoch: Option<i64>,
    /// The project's git checkout, for the manifests' annotations; read
    /// here, outside the runtime's user namespace, where git trusts the
    /// checkout's owner.
    pub git: Option<annotate::Git>,
}

impl Setup {
    /// Reads files only and starts no thread: it may run before the
    /// runtime is entered.
    pub fn new(stack: &Stack, overrides: Overrides) -> anyhow::Result<Setup> {
        let user_epoch = crate::epoch::from_env()?;
        let settings = stack.project.settings(&overrides);
        let bob_core = find_bob_core(&settings.root)?;
        let mut bob = plan::InputDigest::new("bob-core", "");
        bob.tree("bob-core", &bob_core)
            .with_context(|| format!("cannot read {}", bob_core.display()))?;
        let mirrors = settings
            .sources
            .mirrors
            .iter()
            .filter_map(|m| match Mirror::parse(m, &settings.root) {
                Mirror::Http(url) => Some(url),
                Mirror::Local(_) => None,
            })
            .collect();
        Ok(Setup {
            repos: repos::Repos::resolve(&settings.repos)?,
            overrides,
            bob_core,
            bob_digest: bob.finish(),
            mirrors,
            user_epoch,
            git: annotate::Git::read(&settings.root),
            settings,
        })
    }

    /// The stage3 and snapshot, fetched and verified if need be (threads:
    /// only once the runtime is entered), and the base builder state made
    /// of them.
    pub fn base(&self, offline: bool, printer: &Printer) -> anyhow::Result<(Inputs, Store, State)> {
        let inputs = inputs::resolve(&self.settings, offline, printer)?;
        let store = Store::open(&self.settings.cache)?;
        let base = store.base(&inputs, printer)?;
        Ok((inputs, store, base))
    }
}

struct Ctx<'a> {
    stack: &'a Stack,
    setup: &'a Setup,
    store: Store,
    layout: Layout,
    base: State,
    pins: String,
    /// The pins themselves, for the images' provenance.
    lock: crate::fetch::Lock,
    /// SOURCE_DATE_EPOCH of every step (epoch.rs).
    epoch: i64,
    options: &'a Options,
    printer: &'a Printer,
    rt: &'a Runtime,
}

/// Builds the steps in order; stops at the first failure.
pub fn build(
    stack: &Stack,
    steps: &[Step],
    setup: &Setup,
    options: &Options,
    rt: &Runtime,
    printer: &Printer,
) -> anyhow::Result<Vec<Outcome>> {
    let (inputs, store, base) = setup.base(options.offline, printer)?;
    let repos = base.layers.first().map(|l| l.join("var/db/repos"));
    let epoch = crate::epoch::resolve(setup.user_epoch, &repos.unwrap_or_default())?;
    printer.verbose(format!(
        "build time (SOURCE_DATE_EPOCH): {} from {}",
        epoch.secs,
        match epoch.source {
            crate::epoch::Source::User => "the environment",
            crate::epoch::Source::Snapshot => "the pinned snapshot's timestamp",
        }
    ));
    let layout = Layout::open(&setup.settings.layout)?;
    let ctx = Ctx {
        stack,
        setup,
        store,
        layout,
        base,
        pins: inputs.pins,
        lock: inputs.fetched.lock,
        epoch: epoch.secs,
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
            sizes: None,
        }
    }
}

/// The project's bob-core/, or `$KILN_BOB_CORE`.
fn find_bob_core(root: &Path) -> anyhow::Result<PathBuf> {
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

/// Enters kiln's user namespace for the build (the runtime's), before any
/// thread starts, with the isolation the settings ask for. Real root that
/// may mount maps container root to itself (root in a CI container, which
/// may not, maps a range); a user needs a subordinate id range, as Portage
/// chowns files to its own users.
pub fn enter_runtime(settings: &ProjectSettings) -> anyhow::Result<Runtime> {
    let cache = &settings.cache;
    // The scratch dirs kiln makes are read by Portage's own user in the
    // container, and their modes end up in the image: not the caller's umask
    // (077 on many hardened hosts), but the one every image builder uses.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let scratch = cache.scratch();
    fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let is_root = crate::runtime::probe::real_root_may_mount();
    let rt = Runtime::enter(is_root, &scratch, settings.isolation)?;
    if rt.ns.mode == crate::runtime::userns::Mode::Single {
        return Err(hinted(
            format!(
                "user {} has no subordinate id range in /etc/subuid and /etc/subgid: a rootless build needs one (Portage chowns files to its own users)",
                rt.ns.user
            ),
            format!(
                "{}; in a CI container, run the job as the container's root instead (docs/ci.md)",
                crate::runtime::probe::subid_fix(&rt.ns.user)
            ),
        ));
    }
    Ok(rt)
}
