//! The distfiles of a stack, for `kiln fetch`: build-root.sh runs once per
//! image and per builder with packages, with `KILN_FETCH_ONLY=1` (its
//! build.sh hooks, then `emerge --fetchonly` of its packages) in a throwaway container over
//! the builder state it would build in, so Portage itself picks the source
//! tarballs for the USE flags the image asks for and verifies them against
//! the Manifests. Like a build, the container has no network: kiln's
//! download service fetches for it (download.rs). The files land in the
//! shared distfiles cache when the container succeeded, and `--to` copies
//! them into the mirror dir, so `kiln build --offline` on an air-gapped
//! machine finds them there.

use std::fs;
use std::path::Path;

use anyhow::Context;

use super::run::{self, Container, log_file, prepare, tail};
use super::state::{self, build_state};
use super::{find_bob_core, gentoo_mirrors, inputs};
use crate::error::hinted;
use crate::graph::{Node, Stack, Step};
use crate::layouts::Overrides;
use crate::printer::Printer;
use crate::runtime::Runtime;

/// Downloads the distfiles of every image in `steps` into the cache's
/// distfiles/ and returns that dir; `offline`, only checks they are there.
pub fn fetch(
    stack: &Stack,
    steps: &[Step],
    overrides: &Overrides,
    rt: &Runtime,
    offline: bool,
    live: bool,
    printer: &Printer,
) -> anyhow::Result<std::path::PathBuf> {
    let settings = stack.project.settings(overrides);
    let bob_core = find_bob_core(&settings.root)?;
    let inputs = inputs::resolve(
        &settings.root,
        &settings.sources,
        &settings.cache,
        offline,
        printer,
    )?;
    let store = state::Store::open(&settings.cache)?;
    let base = store.base(&inputs, printer)?;
    let mirrors = gentoo_mirrors(&settings.sources);
    for step in steps {
        let id = step.node.id();
        // (files, image packages, builder packages, keep, state built in, state name)
        let (dir, packages, builder_packages, keep, lower, name) = match &step.node {
            Node::Image(_) => {
                let image = stack
                    .project
                    .image_settings(id, overrides)
                    .with_context(|| format!("no image {id}"))?;
                // A builder state not built yet: the image's hooks still run, on the base.
                let lower = build_state(&image.build_container).and_then(|(n, _)| store.get(&n));
                (
                    image.dir,
                    image.packages,
                    Vec::new(),
                    image.keep,
                    lower,
                    state::image_state(id),
                )
            }
            Node::Builder(_) => {
                let builder = stack
                    .project
                    .builder_settings(id)
                    .with_context(|| format!("no builder {id}"))?;
                let lower = builder
                    .parent
                    .and_then(|p| store.get(&state::builder_state(&p)));
                let name = state::builder_state(id);
                (
                    builder.dir,
                    Vec::new(),
                    builder.packages,
                    Vec::new(),
                    lower,
                    name,
                )
            }
        };
        if packages.is_empty() && builder_packages.is_empty() {
            continue;
        }
        let lower = lower.unwrap_or_else(|| base.clone());
        let name = format!("fetch-{name}");
        let scratch = settings.cache.join("work").join(&name);
        state::remove_tree(&scratch)?;
        printer.status(
            "Fetching",
            format!("distfiles of {} {id}", step.node.kind()),
        );
        let result = (|| {
            let mounts = prepare(&settings, &dir, &scratch, &bob_core, None)?;
            let log = log_file(&settings.cache, &name)?;
            let container = Container {
                lowers: &lower.layers,
                upper: &scratch.join("upper"),
                mounts: &mounts,
                job: run::Job {
                    image: id,
                    packages: &packages,
                    builder_packages: &builder_packages,
                    slim: None,
                    keep: &keep,
                    jobs: 1,
                    fetch_only: true,
                    epoch: None,
                },
                log: &log,
                live,
                offline,
                mirrors: &mirrors,
            };
            let code = container.run(rt, printer)?;
            if code != 0 {
                return Err(hinted(
                    format!(
                        "fetching the distfiles of {} {id} failed (exit {code}):\n{}",
                        step.node.kind(),
                        tail(&log, 15)
                    ),
                    format!(
                        "the full log is {}; check the mirrors of [sources] (Portage's GENTOO_MIRRORS: {})",
                        log.display(),
                        if mirrors.is_empty() {
                            "none".to_string()
                        } else {
                            mirrors.join(" ")
                        }
                    ),
                ));
            }
            mounts.keep_caches()?;
            Ok(())
        })();
        let cleanup = state::remove_tree(&scratch);
        result?;
        cleanup?;
    }
    Ok(settings.cache.join("distfiles"))
}

/// Copies the distfiles into `mirror`/distfiles/ with a flat layout.conf,
/// the shape Portage reads from a mirror (and inputs.rs from a local one).
pub fn export(distfiles: &Path, mirror: &Path) -> anyhow::Result<usize> {
    let to = mirror.join("distfiles");
    fs::create_dir_all(&to).with_context(|| format!("cannot create {}", to.display()))?;
    let mut count = 0;
    for entry in
        fs::read_dir(distfiles).with_context(|| format!("cannot read {}", distfiles.display()))?
    {
        let entry = entry?;
        let name = entry.file_name();
        // Portage's partial downloads and lock files are not distfiles.
        let partial = name.to_string_lossy().ends_with(".__download__")
            || name.to_string_lossy().starts_with('.');
        if !entry.file_type()?.is_file() || partial {
            continue;
        }
        let dest = to.join(&name);
        let same = dest
            .metadata()
            .is_ok_and(|m| m.len() == entry.metadata().map(|e| e.len()).unwrap_or(0));
        if !same {
            let tmp = to.join(format!(".{}.kiln-new", name.to_string_lossy()));
            fs::copy(entry.path(), &tmp)
                .and_then(|_| fs::rename(&tmp, &dest))
                .with_context(|| {
                    format!(
                        "cannot copy {} to {}",
                        entry.path().display(),
                        dest.display()
                    )
                })?;
        }
        count += 1;
    }
    fs::write(to.join("layout.conf"), "[structure]\n0=flat\n")
        .with_context(|| format!("cannot write {}", to.join("layout.conf").display()))?;
    Ok(count)
}
