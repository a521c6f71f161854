//! build: drives each image of a plan through its build, in order.
//!
//! For each step: work out its input digest (plan), skip it when the layout
//! and the builder state already carry that digest, else run bob-core's
//! build-root.sh in a container over the builder state it builds in (run),
//! write the image into the layout (write) and keep the container's changes
//! as the next builder state (state). A failed build changes neither the
//! layout nor any builder state.

pub mod distfiles;
pub mod hook;
pub mod inputs;
pub mod plan;
pub mod run;
pub mod state;
pub mod write;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use crate::error::hinted;
use crate::graph::{Node, Reason, Stack, Step};
use crate::layouts::{BuildContainer, Overrides, ProjectSettings};
use crate::printer::Printer;
use crate::runtime::{Network, Runtime};
use run::Container;
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
    bob_core: PathBuf,
    bob_digest: String,
    options: &'a Options,
    printer: &'a Printer,
    rt: &'a Runtime,
    /// GENTOO_MIRRORS for the build containers.
    mirrors: String,
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
    let layout = Layout::open(&settings.layout)?;
    let ctx = Ctx {
        mirrors: gentoo_mirrors(&settings.sources),
        stack,
        overrides,
        store,
        layout,
        base,
        pins: inputs.pins,
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

/// How one step runs: what it is built from and what it leaves.
struct Job<'a> {
    node: &'a Node,
    dir: PathBuf,
    state_name: String,
    lower: State,
    parent_out: Option<PathBuf>,
    packages: Vec<String>,
    builder_packages: Vec<String>,
    slim: Option<crate::layouts::Slim>,
    keep: Vec<String>,
    digest: String,
}

impl Ctx<'_> {
    fn step(&self, step: &Step) -> anyhow::Result<Outcome> {
        let start = Instant::now();
        let node = &step.node;
        let requested = step.reasons.contains(&Reason::Requested);
        let (job, image) = match node {
            Node::Builder(id) => (self.builder_job(node, id)?, None),
            Node::Image(id) => {
                let (job, image, parent) = self.image_job(node, id)?;
                (job, Some((image, parent)))
            }
        };
        let kept = self
            .store
            .get(&job.state_name)
            .filter(|s| s.digest == job.digest);
        let in_layout = match &image {
            Some((image, _)) => self
                .layout
                .find(&image.reference)?
                .is_some_and(|e| e.input.as_deref() == Some(&job.digest)),
            None => true,
        };
        let forced = self.options.force_all || (self.options.force && requested && image.is_some());
        if kept.is_some() && in_layout && !forced {
            self.printer
                .status("Cached", format!("{} {node}", node.kind()));
            let (layers, size) = match &image {
                Some((image, _)) => {
                    let (layers, size) = self.layers(&image.reference)?;
                    (Some(layers), size)
                }
                None => (None, None),
            };
            return Ok(Outcome {
                node: node.clone(),
                status: Status::Cached,
                secs: start.elapsed().as_secs_f64(),
                size,
                layers,
            });
        }
        self.printer
            .status("Building", format!("{} {node}", node.kind()));
        let scratch = self.settings.cache.join("work").join(&job.state_name);
        state::remove_tree(&scratch)?;
        let result = self.run_job(
            &job,
            image.as_ref().map(|(i, p)| (i, p.as_deref())),
            &scratch,
        );
        let cleanup = state::remove_tree(&scratch);
        let (size, layers) = result?;
        cleanup?;
        let secs = start.elapsed().as_secs_f64();
        let size_text = size
            .map(|s| format!(", layer {}", human_size(s)))
            .unwrap_or_default();
        self.printer.status(
            "Built",
            format!("{} {node} in {secs:.1}s{size_text}", node.kind()),
        );
        Ok(Outcome {
            node: node.clone(),
            status: Status::Built,
            secs,
            size,
            layers,
        })
    }

    /// How many layers the image in the layout has, and its top layer's size.
    fn layers(&self, reference: &str) -> anyhow::Result<(usize, Option<u64>)> {
        let entry = self
            .layout
            .find(reference)?
            .context("image vanished from the layout")?;
        let manifest = self.layout.blob_json(&entry.digest)?;
        let layers = manifest["layers"].as_array();
        let top = layers
            .and_then(|l| l.last())
            .and_then(|l| l["size"].as_u64());
        Ok((layers.map_or(0, Vec::len), top))
    }

    fn builder_job<'a>(&self, node: &'a Node, id: &str) -> anyhow::Result<Job<'a>> {
        let builder = self
            .stack
            .project
            .builder_settings(id)
            .with_context(|| format!("no builder {id}"))?;
        let lower = match &builder.parent {
            Some(parent) => {
                self.state(&state::builder_state(parent), &format!("builder {parent}"))?
            }
            None => self.base.clone(),
        };
        let mut d = plan::Inputs::new("builder", id);
        d.tree("dir", &builder.dir)?;
        d.part("lower", lower.digest.as_bytes());
        self.common_parts(&mut d);
        Ok(Job {
            node,
            dir: builder.dir,
            state_name: state::builder_state(id),
            lower,
            parent_out: None,
            packages: Vec::new(),
            builder_packages: builder.packages.clone(),
            slim: None,
            keep: Vec::new(),
            digest: d.finish(),
        })
    }

    fn image_job<'a>(
        &self,
        node: &'a Node,
        id: &str,
    ) -> anyhow::Result<(Job<'a>, crate::layouts::ImageSettings, Option<String>)> {
        let image = self
            .stack
            .project
            .image_settings(id, self.overrides)
            .with_context(|| format!("no image {id}"))?;
        let lower = match build_state(&image.build_container) {
            Some((name, what)) => self.state(&name, &what)?,
            None => self.base.clone(),
        };
        let (parent_manifest, parent_ref, parent_out) = match &image.parent {
            Some(p) => {
                let parent = self
                    .stack
                    .project
                    .image_settings(p, self.overrides)
                    .with_context(|| format!("no image {p}"))?;
                let entry = self.layout.find(&parent.reference)?.ok_or_else(|| {
                    hinted(
                        format!(
                            "{id}'s parent {} is not in {}",
                            parent.reference,
                            self.layout.dir.display()
                        ),
                        format!("build it first: `kiln build {p}`"),
                    )
                })?;
                let out = self
                    .state(&state::image_state(p), &format!("image {p}"))?
                    .out;
                (Some(entry.digest), Some(parent.reference), Some(out))
            }
            None => (None, None, None),
        };
        let mut d = plan::Inputs::new("image", id);
        d.tree("dir", &image.dir)?;
        d.part(
            "settings",
            &serde_json::to_vec(&(
                &image.packages,
                &image.config,
                &image.slim,
                &image.keep,
                &image.reference,
                image.compression.as_str(),
                &image.arch,
            ))?,
        );
        d.part(
            "parent",
            parent_manifest.as_deref().unwrap_or("scratch").as_bytes(),
        );
        d.part("lower", lower.digest.as_bytes());
        self.common_parts(&mut d);
        let job = Job {
            node,
            dir: image.dir.clone(),
            state_name: state::image_state(id),
            lower,
            parent_out,
            packages: image.packages.clone(),
            builder_packages: Vec::new(),
            slim: Some(image.slim.clone()),
            keep: image.keep.clone(),
            digest: d.finish(),
        };
        Ok((job, image, parent_ref))
    }

    fn common_parts(&self, d: &mut plan::Inputs) {
        d.part("pins", self.pins.as_bytes());
        d.part("bob-core", self.bob_digest.as_bytes());
        d.part(
            "SOURCE_DATE_EPOCH",
            std::env::var("SOURCE_DATE_EPOCH")
                .unwrap_or_default()
                .as_bytes(),
        );
    }

    fn state(&self, name: &str, what: &str) -> anyhow::Result<State> {
        self.store.get(name).ok_or_else(|| {
            hinted(
                format!(
                    "the builder state of {what} ({name}) is not in {}",
                    self.settings.cache.display()
                ),
                format!("build {what} first"),
            )
        })
    }

    /// Runs the container, then writes the image and the builder state.
    fn run_job(
        &self,
        job: &Job<'_>,
        image: Option<(&crate::layouts::ImageSettings, Option<&str>)>,
        scratch: &Path,
    ) -> anyhow::Result<(Option<u64>, Option<usize>)> {
        let mounts = prepare(
            &self.settings,
            &job.dir,
            scratch,
            &self.bob_core,
            job.parent_out.clone(),
        )?;
        let (root, out) = (mounts.root.clone(), mounts.out.clone());
        let log = log_file(&self.settings.cache, &job.state_name)?;
        let upper = scratch.join("upper");
        let container = Container {
            lowers: &job.lower.layers,
            upper: &upper,
            mounts: &mounts,
            job: run::Job {
                image: job.node.id(),
                packages: &job.packages,
                builder_packages: &job.builder_packages,
                slim: job.slim.as_ref(),
                keep: &job.keep,
                jobs: self.options.jobs,
                fetch_only: false,
            },
            log: &log,
            live: self.options.live,
            network: network(self.options.offline),
            mirrors: &self.mirrors,
        };
        let code = container.run(self.rt, self.printer)?;
        if code != 0 {
            let failure = fs::read_to_string(out.join("failure.txt")).unwrap_or_default();
            let detail = if failure.trim().is_empty() {
                tail(&log, 15)
            } else {
                failure.trim_end().to_string()
            };
            return Err(hinted(
                format!(
                    "building {} {} failed (exit {code}):\n{detail}",
                    job.node.kind(),
                    job.node
                ),
                format!(
                    "the full log is {}; the layout and the builder states are unchanged",
                    log.display()
                ),
            ));
        }
        let mut result = (None, None);
        if let Some((image, parent)) = image {
            hook::Test {
                image,
                root: &root,
                parent: parent.map(|p| (self.layout.dir.as_path(), p)),
                cache: &self.settings.cache,
                log: &log_file(&self.settings.cache, &format!("{}.test", job.state_name))?,
                live: self.options.live,
            }
            .run(self.rt, self.printer)?;
            self.layout.commit(parent, &root, image, &job.digest)?;
            let (layers, size) = self.layers(&image.reference)?;
            result = (size, Some(layers));
            if out.join("PACKAGES.md").is_file() {
                fs::copy(out.join("PACKAGES.md"), image.dir.join("PACKAGES.md")).with_context(
                    || format!("cannot write {}", image.dir.join("PACKAGES.md").display()),
                )?;
            }
        }
        self.store.commit(
            &job.state_name,
            &job.digest,
            &job.lower,
            &scratch.join("upper"),
            Some(&out),
        )?;
        Ok(result)
    }
}

/// Which builder state an image builds in, and how to name it in errors;
/// `None` for the stage3 base.
fn build_state(container: &BuildContainer) -> Option<(String, String)> {
    match container {
        BuildContainer::Stage3 => None,
        BuildContainer::Builder(b) => Some((state::builder_state(b), format!("builder {b}"))),
        BuildContainer::ParentState(p) => Some((state::image_state(p), format!("image {p}"))),
    }
}

/// A build's scratch dir: a copy of its files (with an empty build.sh if it
/// has none), the empty root and the report dir, and the shared caches.
fn prepare(
    settings: &ProjectSettings,
    dir: &Path,
    scratch: &Path,
    bob_core: &Path,
    parent_out: Option<PathBuf>,
) -> anyhow::Result<run::Mounts> {
    fs::create_dir_all(scratch)?;
    let config = scratch.join("config");
    copy_dir(dir, &config)?;
    if !config.join("build.sh").exists() {
        fs::write(
            config.join("build.sh"),
            "# no build.sh: the packages of image.toml only\n",
        )?;
    }
    let mounts = run::Mounts {
        config,
        root: scratch.join("root"),
        out: scratch.join("out"),
        bob_core: bob_core.to_path_buf(),
        // Binary packages are only good for the stage3 they were built on.
        binpkgs: settings.cache.join("binpkgs").join(format!(
            "{}-{}",
            settings.sources.arch, settings.sources.flavour
        )),
        distfiles: settings.cache.join("distfiles"),
        parent_out,
    };
    for dir in [
        &mounts.root,
        &mounts.out,
        &mounts.binpkgs,
        &mounts.distfiles,
    ] {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    Ok(mounts)
}

/// The log file of a build container, in the cache's logs/.
fn log_file(cache: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let logs = cache.join("logs");
    fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    Ok(logs.join(format!("{name}.log")))
}

/// The host's network, for Portage to download distfiles; only `lo` offline.
fn network(offline: bool) -> Network {
    if offline {
        Network::None
    } else {
        Network::Host
    }
}

/// The `http(s)://` mirrors of `[sources]`, as Portage's GENTOO_MIRRORS
/// (a Gentoo mirror serves distfiles/ beside releases/ and snapshots/);
/// local mirrors' distfiles are copied into the cache instead (inputs.rs).
fn gentoo_mirrors(sources: &crate::fetch::Sources) -> String {
    let remote: Vec<&str> = sources
        .mirrors
        .iter()
        .map(String::as_str)
        .filter(|m| m.starts_with("http://") || m.starts_with("https://"))
        .collect();
    remote.join(" ")
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .context("cannot run cp")?;
    anyhow::ensure!(
        status.success(),
        "cannot copy {} to {}",
        from.display(),
        to.display()
    );
    Ok(())
}

fn tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if size < 1024.0 || unit == "GiB" {
            return if unit == "B" {
                format!("{bytes} B")
            } else {
                format!("{size:.1} {unit}")
            };
        }
        size /= 1024.0;
    }
    unreachable!()
}

/// Enters kiln's user namespace for the build (the runtime's), before any
/// thread starts. Real root maps container root to itself; a user needs a
/// subordinate id range, as Portage chowns files to its own users.
pub fn enter_runtime(cache: &Path) -> anyhow::Result<Runtime> {
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
