//! Settings resolved down the stack: kiln.toml < namespace.toml < image.toml
//! < command line, one flat struct per image and per builder.
//!
//! The build reads only these structs, never the files, so the precedence
//! rules live in this one place. Maps (labels, env) merge key by key, `keep`
//! adds up, every other key is taken from the most specific level that sets it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::files::{Compression, Level};
use super::validate::parse_duration;
use super::{PROJECT_FILE, Project};
use crate::cache::Cache;
use crate::fetch::config::Sources;
use crate::runtime::isolation::Choice;

/// What the command line sets; it wins over every file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub compression: Option<Compression>,
    pub layout: Option<PathBuf>,
    /// `--isolation`.
    pub isolation: Option<Choice>,
}

/// The isolation a command asks for: `--isolation`, else kiln.toml's
/// `isolation`, else `auto`. Commands with no project pass `None` as the file.
pub fn isolation(file: Option<Choice>, overrides: &Overrides) -> Choice {
    overrides.isolation.or(file).unwrap_or_default()
}

/// Project-wide settings from kiln.toml, the environment and the flags.
#[derive(Debug, Clone, Serialize)]
pub struct ProjectSettings {
    pub root: PathBuf,
    /// The OCI image layout images are written to.
    pub layout: PathBuf,
    /// Downloads, binary packages, builder states.
    pub cache: Cache,
    pub sources: Sources,
    /// How containers are isolated (isolation.rs).
    pub isolation: Choice,
}

/// Which container an image is built in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "ref", rename_all = "kebab-case")]
pub enum BuildContainer {
    /// The stage3 base with the snapshot and bob-core: no builder named and
    /// no parent image.
    Stage3,
    /// A builder of `layouts/<ns>/builders/`, named by `builder`.
    Builder(String),
    /// The builder state committed after the parent image's build, so USE
    /// flags, keywords and build deps carry down the stack (gentoo-bb).
    ParentState(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Slim {
    pub headers: bool,
    pub static_libs: bool,
    pub docs: bool,
    pub man: bool,
    pub locales: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    pub cmd: Vec<String>,
    pub interval_ns: Option<u64>,
    pub timeout_ns: Option<u64>,
    pub start_period_ns: Option<u64>,
    pub retries: Option<u32>,
}

/// The OCI image config of an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageConfig {
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
}

/// Everything the build needs to know about one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSettings {
    /// `ns/image`.
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub description: Option<String>,
    /// `ns/image`, or `None` for scratch.
    pub parent: Option<String>,
    pub build_container: BuildContainer,
    pub packages: Vec<String>,
    /// The ref in the layout: `<registry or ns>/<image>:<tag>`.
    pub reference: String,
    pub tag: String,
    pub compression: Compression,
    /// `None`: the stage3 profile's.
    pub chost: Option<String>,
    pub arch: Option<String>,
    pub config: ImageConfig,
    pub slim: Slim,
    pub keep: Vec<String>,
    /// The hooks, when the image has a build.sh.
    pub build_sh: Option<PathBuf>,
    pub test: Option<PathBuf>,
}

/// Everything the build needs to know about one builder.
#[derive(Debug, Clone, Serialize)]
pub struct BuilderSettings {
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub description: Option<String>,
    /// `ns/builder`, or `None` for the stage3 base.
    pub parent: Option<String>,
    pub packages: Vec<String>,
    pub build_sh: Option<PathBuf>,
    pub chost: Option<String>,
    pub arch: Option<String>,
}

impl Project {
    pub fn settings(&self, overrides: &Overrides) -> ProjectSettings {
        let layout = overrides
            .layout
            .clone()
            .or_else(|| self.kiln.layout.as_ref().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("oci"));
        ProjectSettings {
            root: self.root.clone(),
            layout: self.root.join(layout),
            cache: self.cache(),
            sources: self.kiln.sources.clone(),
            isolation: isolation(self.kiln.isolation, overrides),
        }
    }

    /// The cache [`Cache::locate`] finds with kiln.toml's `cache`, or
    /// `.kiln-cache` in the project when no variable names one.
    fn cache(&self) -> Cache {
        let configured = self.kiln.cache.as_ref().map(|c| self.root.join(c));
        Cache::locate(configured).unwrap_or_else(|| Cache::at(self.root.join(".kiln-cache")))
    }

    /// The levels that apply to an image of `ns`, least specific first.
    fn levels<'a>(&'a self, ns: &str) -> Vec<Level<'a>> {
        let mut levels = vec![self.kiln.level()];
        if let Some(ns) = self.namespaces.get(ns) {
            levels.push(ns.toml.level());
        }
        levels
    }

    /// The resolved settings of an image (`ns/image`), or `None` if there is
    /// no such image.
    pub fn image_settings(&self, id: &str, overrides: &Overrides) -> Option<ImageSettings> {
        let image = self.images.get(id)?;
        let toml = &image.toml;
        let ns = self.namespaces.get(&image.namespace);
        let mut levels = self.levels(&image.namespace);
        levels.push(toml.level());
        let last = |pick: &dyn Fn(&Level<'_>) -> Option<String>| levels.iter().rev().find_map(pick);

        let tag = last(&|l| l.tag.map(|t| t.get_ref().clone())).unwrap_or_else(|| "latest".into());
        let compression = overrides
            .compression
            .or_else(|| levels.iter().rev().find_map(|l| l.compression))
            .unwrap_or_default();
        let parent = toml
            .parent
            .as_ref()
            .map(|p| p.get_ref().clone())
            .filter(|p| p != "scratch");
        let build_container = self.build_container(image);
        let prefix = ns
            .and_then(|ns| ns.toml.registry.as_ref())
            .map_or(image.namespace.as_str(), |r| r.get_ref().as_str());

        let mut labels = BTreeMap::new();
        if let Some(owner) = ns.and_then(|ns| ns.toml.owner.as_ref()) {
            let author = match (&owner.name, &owner.email) {
                (Some(n), Some(e)) => Some(format!("{n} <{e}>")),
                (Some(n), None) => Some(n.clone()),
                (None, Some(e)) => Some(e.clone()),
                (None, None) => None,
            };
            if let Some(author) = author {
                labels.insert("org.opencontainers.image.authors".to_string(), author);
            }
        }
        if let Some(description) = &toml.description {
            labels.insert(
                "org.opencontainers.image.description".to_string(),
                description.clone(),
            );
        }
        let mut env = BTreeMap::new();
        let mut keep: Vec<String> = Vec::new();
        for level in &levels {
            labels.extend(level.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
            env.extend(level.env.iter().map(|(k, v)| (k.clone(), v.clone())));
            for path in level.keep {
                if !keep.contains(path.get_ref()) {
                    keep.push(path.get_ref().clone());
                }
            }
        }
        let flag = |pick: fn(&super::files::Slim) -> Option<bool>, default| {
            levels
                .iter()
                .rev()
                .find_map(|l| pick(l.slim))
                .unwrap_or(default)
        };
        let slim = Slim {
            headers: flag(|s| s.headers, true),
            static_libs: flag(|s| s.static_libs, true),
            docs: flag(|s| s.docs, true),
            man: flag(|s| s.man, true),
            locales: flag(|s| s.locales, false),
        };
        let healthcheck = toml.healthcheck.as_ref().map(|hc| {
            let ns = |d: &Option<toml::Spanned<String>>| {
                d.as_ref().and_then(|d| parse_duration(d.get_ref()))
            };
            Healthcheck {
                cmd: hc.cmd.clone(),
                interval_ns: ns(&hc.interval),
                timeout_ns: ns(&hc.timeout),
                start_period_ns: ns(&hc.start_period),
                retries: hc.retries,
            }
        });
        let strings = |v: &[toml::Spanned<String>]| v.iter().map(|s| s.get_ref().clone()).collect();
        Some(ImageSettings {
            id: image.id.clone(),
            namespace: image.namespace.clone(),
            name: image.name.clone(),
            dir: image.dir.clone(),
            description: toml.description.clone(),
            parent,
            build_container,
            packages: strings(&toml.packages),
            reference: format!("{prefix}/{}:{tag}", image.name),
            tag,
            compression,
            chost: last(&|l| l.chost.cloned()),
            arch: last(&|l| l.arch.cloned()),
            config: ImageConfig {
                cmd: toml.cmd.clone(),
                entrypoint: toml.entrypoint.clone(),
                env,
                labels,
                user: toml.user.clone(),
                workdir: toml.workdir.as_ref().map(|w| w.get_ref().clone()),
                ports: strings(&toml.ports),
                volumes: strings(&toml.volumes),
                stop_signal: toml.stop_signal.as_ref().map(|s| s.get_ref().clone()),
                healthcheck,
            },
            slim,
            keep,
            build_sh: existing(image.dir.join("build.sh")),
            test: toml.test.as_ref().map(|t| image.dir.join(t.get_ref())),
        })
    }

    /// Which container `image` builds in: its own `builder`, else its
    /// parent's committed builder state, else the default `builder` of its
    /// namespace or of kiln.toml, else the stage3 base.
    pub fn build_container(&self, image: &super::Image) -> BuildContainer {
        let parent = image
            .toml
            .parent
            .as_ref()
            .map(|p| p.get_ref())
            .filter(|p| *p != "scratch");
        match (&image.toml.builder, parent) {
            (Some(b), _) => BuildContainer::Builder(b.get_ref().clone()),
            (None, Some(p)) => BuildContainer::ParentState(p.clone()),
            (None, None) => self
                .levels(&image.namespace)
                .iter()
                .rev()
                .find_map(|l| l.builder)
                .map_or(BuildContainer::Stage3, |b| {
                    BuildContainer::Builder(b.get_ref().clone())
                }),
        }
    }

    /// The resolved settings of a builder (`ns/builder`).
    pub fn builder_settings(&self, id: &str) -> Option<BuilderSettings> {
        let builder = self.builders.get(id)?;
        let levels = self.levels(&builder.namespace);
        let last = |pick: &dyn Fn(&Level<'_>) -> Option<String>| levels.iter().rev().find_map(pick);
        Some(BuilderSettings {
            id: builder.id.clone(),
            namespace: builder.namespace.clone(),
            name: builder.name.clone(),
            dir: builder.dir.clone(),
            description: builder.toml.description.clone(),
            parent: builder
                .toml
                .parent
                .as_ref()
                .map(|p| p.get_ref().clone())
                .filter(|p| p != "stage3"),
            packages: builder
                .toml
                .packages
                .iter()
                .map(|p| p.get_ref().clone())
                .collect(),
            build_sh: existing(builder.dir.join("build.sh")),
            chost: last(&|l| l.chost.cloned()),
            arch: last(&|l| l.arch.cloned()),
        })
    }

    /// The path of kiln.toml, for messages.
    pub fn kiln_toml(&self) -> PathBuf {
        self.root.join(PROJECT_FILE)
    }
}

fn existing(path: PathBuf) -> Option<PathBuf> {
    path.is_file().then_some(path)
}
