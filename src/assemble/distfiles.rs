//! The distfiles of a stack, for `kiln fetch`: build-root.sh runs once per
//! image and per builder with packages, with `KILN_FETCH_ONLY=1` (its
//! build.sh hooks, then `emerge --fetchonly` of its packages) in a throwaway container over
//! the builder state it would build in, so Portage itself picks the source
//! tarballs for the USE flags the image asks for and verifies them against
//! the Manifests, with the project's repositories the image uses mounted
//! as in its build (repos.rs), so their packages' distfiles come too. Like
//! a build, the container has no network: kiln's download service fetches
//! for it (download.rs). The files land in the
//! shared distfiles cache when the container succeeded, and `--to` copies
//! them into the mirror dir, so `kiln build --offline` on an air-gapped
//! machine finds them there.

use std::fs;
use std::path::{Path, PathBuf};

use super::Setup;
use super::caches;
use super::run::{self, Container, prepare, tail};
use super::state::{self, State, Store, build_state};
use crate::error::IoError;
use crate::graph::{Node, Stack, Step};
use crate::printer::Printer;
use crate::runtime::Runtime;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no {kind} {id}")]
    Unknown { kind: &'static str, id: String },
    #[error(transparent)]
    Cache(#[from] crate::cache::Error),
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
    #[error(transparent)]
    Run(#[from] run::Error),
    #[error(transparent)]
    Caches(#[from] caches::Error),
    #[error("fetching the distfiles of {kind} {id} failed (exit {code}):\n{tail}")]
    Failed {
        kind: &'static str,
        id: String,
        code: i32,
        /// The end of its log.
        tail: String,
        log: PathBuf,
        /// Portage's GENTOO_MIRRORS.
        mirrors: Vec<String>,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Cache(e) => e.fix(),
            Error::Tree(e) => e.fix(),
            Error::Run(e) => e.fix(),
            Error::Failed { log, mirrors, .. } => Some(format!(
                "the full log is {}; check the mirrors of [sources] (Portage's GENTOO_MIRRORS: {})",
                log.display(),
                if mirrors.is_empty() {
                    "none".to_string()
                } else {
                    mirrors.join(" ")
                }
            )),
            _ => None,
        }
    }
}

/// What one step's fetch container works with.
struct Fetch {
    /// The image's or builder's files.
    dir: std::path::PathBuf,
    packages: Vec<String>,
    builder_packages: Vec<String>,
    keep: Vec<String>,
    /// The builder state it would build in, if built yet.
    lower: Option<State>,
    /// The builder state it would make.
    name: String,
    /// The names of the project's repositories it uses.
    repos: Vec<String>,
}

/// Downloads the distfiles of every image in `steps` into the cache's
/// distfiles/ and returns that dir; `offline`, only checks they are there.
#[allow(clippy::too_many_arguments)]
pub fn fetch(
    stack: &Stack,
    steps: &[Step],
    setup: &Setup,
    (store, base): (&Store, &State),
    rt: &Runtime,
    offline: bool,
    live: bool,
    printer: &Printer,
) -> Result<PathBuf, Error> {
    let settings = &setup.settings;
    for step in steps {
        let id = step.node.id();
        let Fetch {
            dir,
            packages,
            builder_packages,
            keep,
            lower,
            name,
            repos,
        } = match &step.node {
            Node::Image(_) => {
                let image = stack
                    .project
                    .image_settings(id, &setup.overrides)
                    .ok_or_else(|| Error::Unknown {
                        kind: "image",
                        id: id.to_string(),
                    })?;
                Fetch {
                    // A builder state not built yet: the image's hooks still run, on the base.
                    lower: build_state(&image.build_container).and_then(|(n, _)| store.get(&n)),
                    dir: image.dir,
                    packages: image.packages,
                    builder_packages: Vec::new(),
                    keep: image.keep,
                    name: state::image_state(id),
                    repos: image.repos,
                }
            }
            Node::Builder(_) => {
                let builder = stack
                    .project
                    .builder_settings(id)
                    .ok_or_else(|| Error::Unknown {
                        kind: "builder",
                        id: id.to_string(),
                    })?;
                Fetch {
                    lower: builder
                        .parent
                        .and_then(|p| store.get(&state::builder_state(&p))),
                    dir: builder.dir,
                    packages: Vec::new(),
                    builder_packages: builder.packages,
                    keep: Vec::new(),
                    name: state::builder_state(id),
                    repos: builder.repos,
                }
            }
        };
        if packages.is_empty() && builder_packages.is_empty() {
            continue;
        }
        let lower = lower.unwrap_or_else(|| base.clone());
        let name = format!("fetch-{name}");
        let scratch = settings.cache.work(&name);
        state::remove_tree(&scratch)?;
        printer.status(
            "Fetching",
            format!("distfiles of {} {id}", step.node.kind()),
        );
        let result = (|| -> Result<(), Error> {
            let mounts = prepare(setup, &dir, &scratch, None, &repos)?;
            let log = settings.cache.log(&name)?;
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
                mirrors: &setup.mirrors,
            };
            let code = container.run(rt, printer)?;
            if code != 0 {
                return Err(Error::Failed {
                    kind: step.node.kind(),
                    id: id.to_string(),
                    code,
                    tail: tail(&log, 15),
                    log,
                    mirrors: setup.mirrors.clone(),
                });
            }
            mounts.keep_caches()?;
            Ok(())
        })();
        let cleanup = state::remove_tree(&scratch);
        result?;
        cleanup?;
    }
    Ok(settings.cache.distfiles())
}

/// Copies the distfiles into `mirror`/distfiles/ with a flat layout.conf,
/// the shape Portage reads from a mirror (and inputs.rs from a local one).
pub fn export(distfiles: &Path, mirror: &Path) -> Result<usize, Error> {
    let to = mirror.join("distfiles");
    fs::create_dir_all(&to).map_err(IoError::at("create", &to))?;
    let mut count = 0;
    for entry in fs::read_dir(distfiles).map_err(IoError::at("read", distfiles))? {
        let entry = entry.map_err(IoError::at("read", distfiles))?;
        let name = entry.file_name();
        // Portage's partial downloads and lock files are not distfiles.
        let partial = name.to_string_lossy().ends_with(".__download__")
            || name.to_string_lossy().starts_with('.');
        let is_file = entry
            .file_type()
            .map_err(IoError::at("read", &entry.path()))?
            .is_file();
        if !is_file || partial {
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
                .map_err(IoError::between("copy", &entry.path(), &dest))?;
        }
        count += 1;
    }
    let conf = to.join("layout.conf");
    fs::write(&conf, "[structure]\n0=flat\n").map_err(IoError::at("write", &conf))?;
    Ok(count)
}
