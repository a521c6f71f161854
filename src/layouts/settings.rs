//! Settings resolved down the stack: kiln.toml < namespace.toml < image.toml
//! < command line, one flat struct per image and per builder.
//!
//! The build reads only these structs, never the files, so the precedence
//! rules live in this one place. Maps (labels, env) merge key by key, `keep`
//! adds up, every other key is taken from the most specific level that sets it.
//!
//! Ebuild repositories are declared once, in kiln.toml (`[repos.NAME]`: a
//! path is the project's, like `layout` and `cache`), and used by images and
//! builders: `repos` of image.toml or builder.toml, else of namespace.toml,
//! else every declared one. An image also uses its parent images'
//! repositories: it stands on their packages, and Portage resolving its
//! dependencies (`kiln fetch` emerges them without package.provided) needs
//! their ebuilds. So "the images that use a repository" are those that name
//! it, or inherit it, and their children.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use super::files::{Compression, Level};
use super::validate::parse_duration;
use super::{Image, PROJECT_FILE, Project};
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
    /// kiln.toml's `[repos]`, by name.
    pub repos: Vec<Repository>,
    /// How containers are isolated (isolation.rs).
    pub isolation: Choice,
}

/// An ebuild repository of kiln.toml, as the build containers' repos.conf
/// names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repository {
    pub name: String,
    /// The directory on the host (under the project root).
    pub path: PathBuf,
    pub priority: i32,
    pub masters: Vec<String>,
}

/// The priority of a repository that sets none: above ::gentoo's (Portage
/// gives it -1000) and above an overlay with none (0), so a package of the
/// project's own repository wins a version tie.
pub const REPO_PRIORITY: i32 = 50;

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
    /// The names of the repositories of kiln.toml the image uses, sorted.
    pub repos: Vec<String>,
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
    /// The names of the repositories of kiln.toml the builder uses, sorted.
    pub repos: Vec<String>,
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
            repos: self
                .kiln
                .repos
                .iter()
                .map(|(name, repo)| Repository {
                    name: name.clone(),
                    path: self.root.join(repo.path.get_ref()),
                    priority: repo.priority.unwrap_or(REPO_PRIORITY),
                    masters: repo
                        .masters
                        .clone()
                        .unwrap_or_else(|| vec!["gentoo".to_string()]),
                })
                .collect(),
            isolation: isolation(self.kiln.isolation, overrides),
        }
    }

    /// The declared repositories an image or builder of `ns` selects: its
    /// own `repos`, else its namespace's, else all of kiln.toml's. A name
    /// kiln.toml does not declare is `kiln check`'s error, left out here.
    fn selected_repos(
        &self,
        ns: &str,
        own: Option<&Vec<toml::Spanned<String>>>,
    ) -> BTreeSet<String> {
        let namespace = self.namespaces.get(ns).and_then(|n| n.toml.repos.as_ref());
        match own.or(namespace) {
            Some(names) => names
                .iter()
                .map(|n| n.get_ref().clone())
                .filter(|n| self.kiln.repos.contains_key(n))
                .collect(),
            None => self.kiln.repos.keys().cloned().collect(),
        }
    }

    /// The repositories `image` uses: its own selection and its parent
    /// images' (a cycle, the graph's error, ends the walk).
    fn image_repos(&self, image: &Image) -> Vec<String> {
        let mut repos = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut next = Some(image);
        while let Some(image) = next.filter(|i| seen.insert(i.id.as_str())) {
            repos.extend(self.selected_repos(&image.namespace, image.toml.repos.as_ref()));
            next = image
                .toml
                .parent
                .as_ref()
                .and_then(|p| self.images.get(p.get_ref()));
        }
        repos.into_iter().collect()
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
            repos: self.image_repos(image),
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
            repos: self
                .selected_repos(&builder.namespace, builder.toml.repos.as_ref())
                .into_iter()
                .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &std::path::Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }

    #[test]
    fn repositories_are_the_most_specific_selection_plus_the_parents() {
        let tmp = tempfile::tempdir().unwrap();
        write(
            tmp.path(),
            &[
                (
                    "kiln.toml",
                    "[repos.a]\npath = \"repos/a\"\n[repos.b]\npath = \"repos/b\"\npriority = 7\nmasters = []\n",
                ),
                ("layouts/all/namespace.toml", ""),
                ("layouts/all/images/base/image.toml", ""),
                ("layouts/only/namespace.toml", "repos = [\"b\"]\n"),
                ("layouts/only/images/x/image.toml", ""),
                ("layouts/only/images/none/image.toml", "repos = []\n"),
                (
                    "layouts/only/images/child/image.toml",
                    "parent = \"only/x\"\nrepos = [\"a\"]\n",
                ),
                ("layouts/only/builders/bob/builder.toml", ""),
            ],
        );
        let project = Project::load(tmp.path()).project;
        let repos = |id: &str| {
            project
                .image_settings(id, &Overrides::default())
                .unwrap()
                .repos
        };
        assert_eq!(repos("all/base"), ["a", "b"], "kiln.toml's default: all");
        assert_eq!(repos("only/x"), ["b"], "the namespace's");
        assert!(repos("only/none").is_empty(), "the image's own, empty");
        assert_eq!(repos("only/child"), ["a", "b"], "its own and its parent's");
        assert_eq!(project.builder_settings("only/bob").unwrap().repos, ["b"]);
        let settings = project.settings(&Overrides::default());
        assert_eq!(
            settings.repos[1],
            Repository {
                name: "b".into(),
                path: tmp.path().join("repos/b"),
                priority: 7,
                masters: Vec::new(),
            }
        );
        assert_eq!(settings.repos[0].priority, REPO_PRIORITY);
        assert_eq!(settings.repos[0].masters, ["gentoo"]);
    }
}
