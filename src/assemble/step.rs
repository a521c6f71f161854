//! step: one step of a build: its input digest, whether it is cached, and
//! when not, its container run, test hook, image commit and builder state.
//! The image's blobs and the new builder state are written and flushed
//! first, then the state is named (state.json) and the image (index.json)
//! last; a failure anywhere before that end puts the old state.json back
//! and leaves index.json as it was (state.rs).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

use super::run::{self, Container, prepare, tail};
use super::state::{self, State, build_state};
use super::write::Sizes;
use super::{Ctx, Outcome, Status, accounts, annotate, hook, plan};
use crate::error::{HintExt, hinted};
use crate::graph::{Node, Reason, Step};
use crate::printer::human_size;
use crate::sbom;

/// How one step runs: what it is built from and what it leaves.
struct Job<'a> {
    node: &'a Node,
    dir: PathBuf,
    state_name: String,
    lower: State,
    parent_out: Option<PathBuf>,
    /// The parent image's manifest digest.
    parent_digest: Option<String>,
    packages: Vec<String>,
    builder_packages: Vec<String>,
    slim: Option<crate::layouts::Slim>,
    keep: Vec<String>,
    /// The names of the project's repositories it uses.
    repos: Vec<String>,
    digest: String,
}

/// Whether a step is a cache hit: its builder state was made from the
/// same inputs and, for an image (`layout` is `Some`), the layout holds the
/// image built from them (the input digest its manifest carries); and no
/// `--force` asks for it again. Either one alone is not enough: a state
/// without its image would leave the layout stale, an image without its
/// state would leave its children nothing to build in.
fn reusable(
    digest: &str,
    state: Option<&State>,
    layout: Option<Option<&str>>,
    forced: bool,
) -> bool {
    let kept = state.is_some_and(|s| s.digest == digest);
    let in_layout = layout.is_none_or(|input| input == Some(digest));
    kept && in_layout && !forced
}

impl Ctx<'_> {
    pub(super) fn step(&self, step: &Step) -> anyhow::Result<Outcome> {
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
        let state = self.store.get(&job.state_name);
        let entry = match &image {
            Some((image, _)) => self.layout.find(&image.reference)?,
            None => None,
        };
        let layout = image
            .as_ref()
            .map(|_| entry.as_ref().and_then(|e| e.input.as_deref()));
        let forced = self.options.force_all || (self.options.force && requested && image.is_some());
        if reusable(&job.digest, state.as_ref(), layout, forced) {
            let mut sizes = None;
            if let (Some((image, _)), Some(entry)) = (&image, &entry) {
                self.layout
                    .verify(entry, &image.id, image.parent.as_deref())?;
                sizes = Some(entry.sizes());
            }
            self.printer
                .status("Cached", format!("{} {node}", node.kind()));
            return Ok(Outcome {
                node: node.clone(),
                status: Status::Cached,
                secs: start.elapsed().as_secs_f64(),
                sizes,
            });
        }
        self.printer
            .status("Building", format!("{} {node}", node.kind()));
        let scratch = self.setup.settings.cache.work(&job.state_name);
        state::remove_tree(&scratch)?;
        let result = self.run_job(
            &job,
            image.as_ref().map(|(i, p)| (i, p.as_deref())),
            &scratch,
        );
        let cleanup = state::remove_tree(&scratch);
        let sizes = result?;
        cleanup?;
        let secs = start.elapsed().as_secs_f64();
        let size_text = sizes
            .map(|s| format!(", layer {}", human_size(s.top)))
            .unwrap_or_default();
        self.printer.status(
            "Built",
            format!("{} {node} in {secs:.1}s{size_text}", node.kind()),
        );
        Ok(Outcome {
            node: node.clone(),
            status: Status::Built,
            secs,
            sizes,
        })
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
        let mut d = plan::InputDigest::new("builder", id);
        d.tree("dir", &builder.dir)?;
        d.part("lower", lower.digest.as_bytes());
        self.setup.repos.select(&builder.repos).digest(&mut d);
        self.common_parts(&mut d);
        Ok(Job {
            node,
            dir: builder.dir,
            state_name: state::builder_state(id),
            lower,
            parent_out: None,
            parent_digest: None,
            packages: Vec::new(),
            builder_packages: builder.packages.clone(),
            slim: None,
            keep: Vec::new(),
            repos: builder.repos,
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
            .image_settings(id, &self.setup.overrides)
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
                    .image_settings(p, &self.setup.overrides)
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
                self.layout.verify(&entry, p, parent.parent.as_deref())?;
                let out = self
                    .state(&state::image_state(p), &format!("image {p}"))?
                    .out;
                (Some(entry.digest), Some(parent.reference), Some(out))
            }
            None => (None, None, None),
        };
        let mut d = plan::InputDigest::new("image", id);
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
        self.setup.repos.select(&image.repos).digest(&mut d);
        self.common_parts(&mut d);
        let job = Job {
            node,
            dir: image.dir.clone(),
            state_name: state::image_state(id),
            lower,
            parent_out,
            parent_digest: parent_manifest.clone(),
            packages: image.packages.clone(),
            builder_packages: Vec::new(),
            slim: Some(image.slim.clone()),
            keep: image.keep.clone(),
            repos: image.repos.clone(),
            digest: d.finish(),
        };
        Ok((job, image, parent_ref))
    }

    fn common_parts(&self, d: &mut plan::InputDigest) {
        d.part("pins", self.pins.as_bytes());
        d.part("bob-core", self.setup.bob_digest.as_bytes());
        d.part(crate::epoch::VAR, self.epoch.to_string().as_bytes());
    }

    fn state(&self, name: &str, what: &str) -> anyhow::Result<State> {
        self.store.get(name).ok_or_else(|| {
            hinted(
                format!(
                    "the builder state of {what} ({name}) is not in {}",
                    self.setup.settings.cache.root().display()
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
    ) -> anyhow::Result<Option<Sizes>> {
        let mut mounts = prepare(
            self.setup,
            &job.dir,
            scratch,
            job.parent_out.clone(),
            &job.repos,
        )?;
        if let Some((_, Some(parent))) = image {
            let dir = scratch.join("parent-accounts");
            accounts::write_parents(&self.layout.dir, parent, &dir)?;
            mounts.parent_accounts = Some(dir);
        }
        let (root, out) = (mounts.root.clone(), mounts.out.clone());
        let log = self.setup.settings.cache.log(&job.state_name)?;
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
                epoch: Some(self.epoch),
            },
            log: &log,
            live: self.options.live,
            offline: self.options.offline,
            mirrors: &self.setup.mirrors,
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
        let mut written = None;
        let mut documents = Vec::new();
        if let Some((image, parent)) = image {
            hook::Test {
                image,
                root: &root,
                parent: parent.map(|p| (self.layout.dir.as_path(), p)),
                cache: &self.setup.settings.cache,
                log: &self
                    .setup
                    .settings
                    .cache
                    .log(&format!("{}.test", job.state_name))?,
                live: self.options.live,
            }
            .run(self.rt, self.printer)?;
            let (w, docs) = self.write_image(job, image, parent, &root, &out)?;
            written = Some(w);
            documents = docs;
        }
        let packages = fs::read(out.join("PACKAGES.md")).ok();
        let attachments: Vec<crate::oci::Attachment> =
            documents.iter().map(|(_, a)| a.clone()).collect();
        self.save(job, written.as_ref(), &attachments, &upper, &out)
            .with_hint(|| {
                format!(
                    "the build is not saved: the refs of {} and the builder states are as they were",
                    self.layout.dir.display()
                )
            })?;
        let sizes = written.as_ref().map(|w| Sizes {
            layers: w.layers,
            top: w.layer_size,
            image: w.image_size,
        });
        if let Some((image, _)) = image {
            // Where gentoo-bb users look: beside image.toml (plan.rs leaves
            // these out of the input digest).
            let beside = packages
                .map(|text| ("PACKAGES.md", text))
                .into_iter()
                .chain(documents.into_iter().map(|(name, a)| (name, a.bytes)));
            for (name, bytes) in beside {
                let dest = image.dir.join(name);
                if let Err(e) = fs::write(&dest, bytes) {
                    self.printer
                        .warn(format!("cannot write {}: {e}", dest.display()));
                }
            }
        }
        // Only a build that got this far adds to the shared caches.
        if let Err(e) = mounts.keep_caches() {
            self.printer.warn(format!(
                "the binary packages and distfiles of {} stay out of the shared cache: {e:#}",
                job.node
            ));
        }
        Ok(sizes)
    }

    /// Writes the image's blobs with its annotations, its package inventory
    /// into `out` (the next image's parent list) and its SBOMs: the
    /// documents to attach, each with its file name beside image.toml.
    fn write_image(
        &self,
        job: &Job<'_>,
        image: &crate::layouts::ImageSettings,
        parent: Option<&str>,
        root: &Path,
        out: &Path,
    ) -> anyhow::Result<(
        crate::oci::CommitResult,
        Vec<(&'static str, crate::oci::Attachment)>,
    )> {
        let mut inventory = sbom::Inventory::load(job.parent_out.as_deref(), out, &image.id)
            .with_hint(|| {
                format!(
                    "the builder state of {}'s parent predates kiln's package lists: kiln build {} --force",
                    image.id,
                    image.parent.as_deref().unwrap_or(&image.id)
                )
            })?;
        let licenses = inventory.licenses();
        let facts = annotate::Facts {
            image,
            parent: parent.zip(job.parent_digest.as_deref()),
            created: self.epoch,
            licenses: &licenses,
            git: self.setup.git.as_ref(),
        };
        let written = self.layout.write(root, image, &job.digest, &facts)?;
        inventory.set_top(&written.layer_digest, &written.diff_id);
        inventory.save(out)?;
        let subject = sbom::Subject {
            reference: &image.reference,
            manifest_digest: &written.manifest_digest,
            created: self.epoch,
        };
        let files = plan::InputDigest::files(&image.dir)
            .with_context(|| format!("cannot read {}", image.dir.display()))?;
        let dir = image
            .dir
            .strip_prefix(&self.setup.settings.root)
            .unwrap_or(&image.dir);
        let build = sbom::Build {
            lock: &self.lock,
            bob_core: &self.setup.bob_digest,
            files: &files,
            dir: &dir.to_string_lossy(),
            parent: facts.parent,
            image: &image.id,
            packages: &image.packages,
            input_digest: &job.digest,
        };
        let documents = [
            (
                sbom::SPDX_FILE,
                sbom::SPDX_MEDIA_TYPE,
                sbom::spdx(&inventory, &subject),
            ),
            (
                sbom::CYCLONEDX_FILE,
                sbom::CYCLONEDX_MEDIA_TYPE,
                sbom::cyclonedx(&inventory, &subject),
            ),
            (
                sbom::PROVENANCE_FILE,
                sbom::PROVENANCE_MEDIA_TYPE,
                sbom::provenance(&inventory, &subject, &build),
            ),
        ];
        let documents = documents
            .into_iter()
            .map(|(file, kind, bytes)| {
                let a = crate::oci::Attachment {
                    artifact_type: kind.to_string(),
                    bytes,
                    created: self.epoch,
                };
                (file, a)
            })
            .collect();
        Ok((written, documents))
    }

    /// The new builder state takes its name, then the image its reference:
    /// the state's files and the image's blobs are on disk already, and a
    /// failure puts the old state.json back (state.rs).
    fn save(
        &self,
        job: &Job<'_>,
        image: Option<&crate::oci::CommitResult>,
        attachments: &[crate::oci::Attachment],
        upper: &Path,
        out: &Path,
    ) -> anyhow::Result<()> {
        let mut state = self
            .store
            .prepare(&job.state_name, &job.digest, &job.lower, upper, out)?;
        state.commit()?;
        if let Some(image) = image {
            self.layout.name(image, attachments)?;
        }
        state.finish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(digest: &str) -> State {
        State {
            digest: digest.into(),
            layers: Vec::new(),
            out: PathBuf::new(),
        }
    }

    #[test]
    fn a_step_is_reused_only_when_state_and_image_carry_its_inputs() {
        let (d, other) = ("sha256:d", "sha256:o");
        // a builder: its state alone decides
        assert!(reusable(d, Some(&state(d)), None, false));
        assert!(!reusable(d, Some(&state(other)), None, false));
        assert!(!reusable(d, None, None, false));
        // an image: state and layout entry both
        assert!(reusable(d, Some(&state(d)), Some(Some(d)), false));
        assert!(!reusable(d, Some(&state(d)), Some(Some(other)), false));
        assert!(
            !reusable(d, Some(&state(d)), Some(None), false),
            "image not in the layout"
        );
        assert!(!reusable(d, None, Some(Some(d)), false), "state gone");
        // forced: never
        assert!(!reusable(d, Some(&state(d)), Some(Some(d)), true));
        assert!(!reusable(d, Some(&state(d)), None, true));
    }
}
