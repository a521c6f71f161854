//! One build container: bob-core's build-root.sh on an overlay of a builder
//! state, run by kiln's runtime (libcontainer, in kiln's user namespace),
//! with the mounts and environment of bob-core's contract
//! (bob-core/README.md). The container's changes stay in `upper`: the next
//! builder state's layer. The output goes to the image's log file, and to the
//! terminal with `-v`. The container has no network: what it downloads goes
//! through kiln's download service (download.rs), and it sees the shared
//! caches through overlays of its own (caches.rs).

use std::fs;
use std::path::{Path, PathBuf};

use super::Setup;
use super::caches::{self, Shared};
use super::download::{self, Downloader};
use super::repos;
use crate::error::IoError;
use crate::layouts::Slim;
use crate::printer::Printer;
use crate::runtime::{Bind, Network, RunOptions, Runtime};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Caches(#[from] caches::Error),
    #[error(transparent)]
    Download(#[from] download::Error),
    #[error(transparent)]
    Repos(#[from] repos::Error),
    #[error(transparent)]
    Tree(#[from] crate::tree::Error),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
    #[error("cannot copy {} to {}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: crate::tree::Error,
    },
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Repos(e) => e.fix(),
            Error::Tree(e) => e.fix(),
            Error::Runtime(e) => e.fix(),
            _ => None,
        }
    }
}

/// The host dirs bob-core's contract mounts, by their container path.
#[derive(Debug)]
pub struct Mounts {
    /// The image's or builder's files (build.sh, image.toml…), read-only.
    pub config: PathBuf,
    /// The empty root packages are emerged into: the image's new layer.
    pub root: PathBuf,
    /// build-root.sh's reports (package.installed, PACKAGES.md, failure.txt).
    pub out: PathBuf,
    pub bob_core: PathBuf,
    /// Shared by every build of the same CHOST.
    pub binpkgs: Shared,
    pub distfiles: Shared,
    /// Where the download service's socket is (`/kiln/fetch`).
    pub fetch: PathBuf,
    /// The parent image's reports (its package.installed becomes
    /// package.provided), read-only.
    pub parent_out: Option<PathBuf>,
    /// The parent image's account files as its layers merge them
    /// (accounts.rs), read-only; build-root.sh starts the root's from them.
    pub parent_accounts: Option<PathBuf>,
    /// The project's repositories the build uses and their repos.conf
    /// (repos.rs), read-only.
    pub repos: Vec<Bind>,
}

impl Mounts {
    /// After a build succeeded: what it added to the shared caches goes
    /// into them (caches.rs); returns how many files.
    pub fn keep_caches(&self) -> Result<usize, caches::Error> {
        Ok(self.binpkgs.keep()? + self.distfiles.keep()?)
    }
}

/// What build-root.sh is told through its environment.
#[derive(Debug)]
pub struct Job<'a> {
    pub image: &'a str,
    pub packages: &'a [String],
    /// A builder's own packages, emerged into the builder itself.
    pub builder_packages: &'a [String],
    /// What slimming removes (`None` for builders: nothing to slim).
    pub slim: Option<&'a Slim>,
    /// Absolute paths kept whatever slimming removes.
    pub keep: &'a [String],
    /// Parallel jobs inside the build (emerge --jobs).
    pub jobs: usize,
    /// Only download the distfiles the build would need (`kiln fetch`).
    pub fetch_only: bool,
    /// SOURCE_DATE_EPOCH for the build (epoch.rs); `None` when only fetching.
    pub epoch: Option<i64>,
}

pub struct Container<'a> {
    /// The builder state's layers, bottom first.
    pub lowers: &'a [PathBuf],
    pub upper: &'a Path,
    pub mounts: &'a Mounts,
    pub job: Job<'a>,
    pub log: &'a Path,
    pub live: bool,
    /// No download service: the build finds its distfiles in the cache.
    pub offline: bool,
    /// The `http(s)://` mirrors of `[sources]`: Portage's GENTOO_MIRRORS,
    /// and where the download service fetches from whatever the address.
    pub mirrors: &'a [String],
}

pub const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Container<'_> {
    /// Runs build-root.sh to its end and returns its exit code.
    pub fn run(&self, rt: &Runtime, printer: &Printer) -> Result<i32, Error> {
        let m = self.mounts;
        let _binpkgs = m.binpkgs.mount()?;
        let _distfiles = m.distfiles.mount()?;
        let _ = std::fs::remove_file(self.log);
        let _downloads = Downloader::start(&m.fetch, self.mirrors, self.offline, self.log)?;
        let mut binds = vec![
            bind(&m.config, "/config", false),
            bind(&m.root, "/emerge-root", true),
            bind(&m.out, "/kiln/out", true),
            bind(&m.bob_core, "/kiln/bob-core", false),
            bind(&m.binpkgs.view, "/var/cache/binpkgs", true),
            bind(&m.distfiles.view, "/var/cache/distfiles", true),
            bind(&m.fetch, "/kiln/fetch", false),
        ];
        if let Some(parent_out) = &m.parent_out {
            binds.push(bind(parent_out, "/kiln/parent", false));
        }
        if let Some(accounts) = &m.parent_accounts {
            binds.push(bind(accounts, "/kiln/parent-accounts", false));
        }
        binds.extend(m.repos.iter().cloned());
        let job = &self.job;
        let mut env = vec![
            "HOME=/root".to_string(),
            "TERM=dumb".into(),
            "LC_ALL=C.UTF-8".into(),
            PATH.into(),
            format!("KILN_IMAGE={}", job.image),
            format!("KILN_PACKAGES={}", job.packages.join(" ")),
            format!("KILN_KEEP={}", job.slim.map(kept).unwrap_or_default()),
            format!("KILN_KEEP_PATHS={}", job.keep.join("\n")),
            format!("KILN_BUILDER_PACKAGES={}", job.builder_packages.join(" ")),
            format!("KILN_JOBS={}", job.jobs.max(1)),
        ];
        if job.fetch_only {
            env.push("KILN_FETCH_ONLY=1".into());
        }
        if !self.mirrors.is_empty() {
            env.push(format!("GENTOO_MIRRORS={}", self.mirrors.join(" ")));
        }
        if let Some(epoch) = job.epoch {
            env.push(format!("{}={epoch}", crate::epoch::VAR));
        }
        let _live = super::progress::Live::follow(printer, job.image, self.log);
        let opts = RunOptions {
            layers: self.lowers.iter().rev().cloned().collect(),
            upper: Some(self.upper.to_path_buf()),
            args: vec!["/bin/bash".into(), "/kiln/bob-core/build-root.sh".into()],
            env,
            cwd: "/".into(),
            binds,
            network: Network::None,
            log: Some(self.log.to_path_buf()),
            silent: !self.live,
            ..Default::default()
        };
        Ok(rt.run(&opts, printer)?.code)
    }
}

/// bob-core's KILN_KEEP: what the image's `slim` flags say not to remove.
fn kept(slim: &Slim) -> String {
    let flags = [
        (slim.headers, "headers"),
        (slim.static_libs, "static-libs"),
        (slim.docs, "docs"),
        (slim.docs, "info"),
        (slim.man, "man"),
        (slim.locales, "locales"),
    ];
    let kept: Vec<&str> = flags
        .iter()
        .filter(|(remove, _)| !remove)
        .map(|(_, name)| *name)
        .collect();
    kept.join(",")
}

pub fn bind(host: &Path, container: &str, writable: bool) -> Bind {
    Bind {
        host: host.to_path_buf(),
        container: PathBuf::from(container),
        readonly: !writable,
    }
}

/// A build's scratch dir: a copy of its files (with an empty build.sh if it
/// has none), the empty root and the report dir, the shared caches, and the
/// repos.conf of the repositories it uses (by name).
pub(super) fn prepare(
    setup: &Setup,
    dir: &Path,
    scratch: &Path,
    parent_out: Option<PathBuf>,
    repos: &[String],
) -> Result<Mounts, Error> {
    let (settings, cache) = (&setup.settings, &setup.settings.cache);
    // work/ is private: the build's root holds set-id files and owners the
    // container gave it (tree::private_dir).
    if let Some(work) = scratch.parent() {
        crate::tree::private_dir(work)?;
    }
    fs::create_dir_all(scratch).map_err(IoError::at("create", scratch))?;
    let config = scratch.join("config");
    crate::tree::copy(dir, &config).map_err(|source| Error::Copy {
        from: dir.to_path_buf(),
        to: config.clone(),
        source,
    })?;
    let build_sh = config.join("build.sh");
    if !build_sh.exists() {
        fs::write(
            &build_sh,
            "# no build.sh: the packages of image.toml only\n",
        )
        .map_err(IoError::at("write", &build_sh))?;
    }
    // Binary packages are only good for the stage3 they were built on.
    let binpkgs = cache.binpkgs(&settings.sources.arch, &settings.sources.flavour);
    let mounts = Mounts {
        config,
        root: scratch.join("root"),
        out: scratch.join("out"),
        bob_core: setup.bob_core.clone(),
        binpkgs: Shared::new(binpkgs, scratch, "binpkgs", &["Packages", "Packages.gz"]),
        distfiles: Shared::new(cache.distfiles(), scratch, "distfiles", &[]),
        fetch: scratch.join("fetch"),
        parent_out,
        parent_accounts: None,
        repos: setup.repos.select(repos).binds(scratch)?,
    };
    for dir in [&mounts.root, &mounts.out] {
        fs::create_dir_all(dir).map_err(IoError::at("create", dir))?;
    }
    Ok(mounts)
}

/// The last `lines` lines of a container's log, for an error.
pub(super) fn tail(log: &Path, lines: usize) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
