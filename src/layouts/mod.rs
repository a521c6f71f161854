//! The stack definition: `kiln.toml`, and the namespaces, images and builders
//! under `layouts/`, read and checked.
//!
//! A project is the directory holding `kiln.toml`; it is found by walking up
//! from the current directory (as git finds `.git`), or named by `--project`
//! / `KILN_PROJECT`. Loading never stops at the first problem: every file is
//! read, every value checked, and all [`Problem`]s come back together with
//! whatever could be read, so `kiln check` can list them all. The graph of
//! parents and builders is [`crate::graph`]'s job; per-image settings with
//! their precedence are in [`settings`].

pub mod atom;
pub mod files;
pub mod problem;
pub mod settings;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::error::hinted;
use crate::oci;
pub use files::{BuilderToml, Compression, ImageToml, KilnToml, NamespaceToml};
pub use problem::{Problem, Source};
pub use settings::{
    BuildContainer, ImageSettings, Overrides, ProjectSettings, Repository, Slim, isolation,
};

/// The file that marks a project's root.
pub const PROJECT_FILE: &str = "kiln.toml";

/// A loaded stack. Parts that failed to parse are left out (their names are
/// in `broken_images` and `broken_builders`), so the rest can still be checked.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub kiln: KilnToml,
    pub kiln_source: Source,
    pub namespaces: BTreeMap<String, Namespace>,
    /// By `ns/image`.
    pub images: BTreeMap<String, Image>,
    /// By `ns/builder`.
    pub builders: BTreeMap<String, Builder>,
    /// `ns/image` of images whose image.toml did not parse: references to
    /// them are not reported a second time as unknown.
    pub broken_images: BTreeSet<String>,
    /// Likewise for builders.
    pub broken_builders: BTreeSet<String>,
}

#[derive(Debug)]
pub struct Namespace {
    pub name: String,
    pub dir: PathBuf,
    pub source: Source,
    pub toml: NamespaceToml,
}

#[derive(Debug)]
pub struct Image {
    /// `ns/image`.
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub source: Source,
    pub toml: ImageToml,
}

#[derive(Debug)]
pub struct Builder {
    /// `ns/builder`.
    pub id: String,
    pub namespace: String,
    pub name: String,
    pub dir: PathBuf,
    pub source: Source,
    pub toml: BuilderToml,
}

/// A project and what is wrong with it.
#[derive(Debug)]
pub struct Loaded {
    pub project: Project,
    pub problems: Vec<Problem>,
}

impl Project {
    /// The project root: `explicit` (from `--project` or `KILN_PROJECT`) if
    /// given, else the nearest directory from the current one up that holds
    /// `kiln.toml`.
    pub fn find_root(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
        let cwd = std::env::current_dir()?;
        if let Some(dir) = explicit {
            let dir = cwd.join(dir);
            if dir.join(PROJECT_FILE).is_file() {
                return Ok(dir);
            }
            return Err(hinted(
                format!("no {PROJECT_FILE} in {}", dir.display()),
                format!(
                    "point --project (or KILN_PROJECT) at the directory holding {PROJECT_FILE}"
                ),
            ));
        }
        cwd.ancestors()
            .find(|d| d.join(PROJECT_FILE).is_file())
            .map(Path::to_path_buf)
            .ok_or_else(|| {
                hinted(
                    format!(
                        "no {PROJECT_FILE} in {} or any directory above it",
                        cwd.display()
                    ),
                    format!(
                        "run kiln inside a project (a directory with {PROJECT_FILE} and layouts/), \
                         or pass --project DIR; an empty {PROJECT_FILE} is a valid start"
                    ),
                )
            })
    }

    /// Read every file of the project at `root`, collecting all problems.
    pub fn load(root: &Path) -> Loaded {
        let mut problems = Vec::new();
        let kiln_path = root.join(PROJECT_FILE);
        let (kiln_source, kiln) = match Source::read(&kiln_path) {
            Ok(source) => {
                let kiln = source.parse().unwrap_or_else(|p| {
                    problems.push(p);
                    KilnToml::default()
                });
                (source, kiln)
            }
            Err(p) => {
                problems.push(p);
                let empty = Source {
                    path: kiln_path,
                    text: String::new(),
                };
                (empty, KilnToml::default())
            }
        };
        let mut project = Project {
            root: root.to_path_buf(),
            kiln,
            kiln_source,
            namespaces: BTreeMap::new(),
            images: BTreeMap::new(),
            builders: BTreeMap::new(),
            broken_images: BTreeSet::new(),
            broken_builders: BTreeSet::new(),
        };
        let layouts = root.join("layouts");
        match subdirs(&layouts) {
            Ok(dirs) => {
                for (name, dir) in dirs {
                    project.load_namespace(name, dir, &mut problems);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(
                Problem::warning(&layouts, "no layouts directory: the stack is empty")
                    .with_hint("add a namespace with `kiln new namespace NAME`"),
            ),
            Err(e) => problems.push(Problem::error(
                &layouts,
                format!("cannot read the layouts directory: {e}"),
            )),
        }
        validate::project(&project, &mut problems);
        Loaded { project, problems }
    }

    fn load_namespace(&mut self, name: String, dir: PathBuf, problems: &mut Vec<Problem>) {
        check_name(&dir, &name, "namespace", problems);
        let create = format!("kiln new namespace {name}");
        // A namespace whose file is broken still holds images worth checking.
        let (source, toml) = read_toml::<NamespaceToml>(&dir, "namespace.toml", &create, problems)
            .unwrap_or_else(|| {
                let empty = Source {
                    path: dir.join("namespace.toml"),
                    text: String::new(),
                };
                (empty, NamespaceToml::default())
            });
        for (entry, path) in subdirs(&dir).unwrap_or_default() {
            match entry.as_str() {
                "images" => {
                    for (image, image_dir) in subdirs(&path).unwrap_or_default() {
                        self.load_image(&name, image, image_dir, problems);
                    }
                }
                "builders" => {
                    for (builder, builder_dir) in subdirs(&path).unwrap_or_default() {
                        self.load_builder(&name, builder, builder_dir, problems);
                    }
                }
                other => {
                    let problem = Problem::warning(
                        &path,
                        format!("unexpected directory `{other}` in namespace `{name}`"),
                    );
                    problems.push(match problem::closest(other, ["images", "builders"]) {
                        Some(best) => problem.with_hint(format!("did you mean `{best}`?")),
                        None => problem.with_hint("a namespace holds images/ and builders/"),
                    });
                }
            }
        }
        let namespace = Namespace {
            name: name.clone(),
            dir,
            source,
            toml,
        };
        self.namespaces.insert(name, namespace);
    }

    fn load_image(&mut self, ns: &str, name: String, dir: PathBuf, problems: &mut Vec<Problem>) {
        let id = format!("{ns}/{name}");
        check_name(&dir, &name, "image", problems);
        let create = format!("kiln new image {id}");
        match read_toml::<ImageToml>(&dir, "image.toml", &create, problems) {
            Some((source, toml)) => {
                let image = Image {
                    id: id.clone(),
                    namespace: ns.to_string(),
                    name,
                    dir,
                    source,
                    toml,
                };
                self.images.insert(id, image);
            }
            None => {
                self.broken_images.insert(id);
            }
        }
    }

    fn load_builder(&mut self, ns: &str, name: String, dir: PathBuf, problems: &mut Vec<Problem>) {
        let id = format!("{ns}/{name}");
        check_name(&dir, &name, "builder", problems);
        let create = format!("kiln new builder {id}");
        match read_toml::<BuilderToml>(&dir, "builder.toml", &create, problems) {
            Some((source, toml)) => {
                let builder = Builder {
                    id: id.clone(),
                    namespace: ns.to_string(),
                    name,
                    dir,
                    source,
                    toml,
                };
                self.builders.insert(id, builder);
            }
            None => {
                self.broken_builders.insert(id);
            }
        }
    }
}

/// Read and parse `dir/file`, recording why not if it cannot be: missing
/// (with the `kiln new` command that creates it), unreadable, or invalid.
fn read_toml<T: serde::de::DeserializeOwned>(
    dir: &Path,
    file: &str,
    create: &str,
    problems: &mut Vec<Problem>,
) -> Option<(Source, T)> {
    let path = dir.join(file);
    if !path.exists() {
        problems.push(
            Problem::error(dir, format!("missing {file}")).with_hint(format!(
                "add {file} to this directory, or create it with `{create}`"
            )),
        );
        return None;
    }
    let source = Source::read(&path).map_err(|p| problems.push(p)).ok()?;
    match source.parse() {
        Ok(toml) => Some((source, toml)),
        Err(p) => {
            problems.push(p);
            None
        }
    }
}

/// How names are spelled, for hints.
pub const NAME_RULE: &str = "use lowercase letters and digits, joined by single `.`, `_` or `-` \
     (or `--`): names become parts of OCI refs";

/// Why `name` cannot name a namespace, image or builder, if it cannot.
/// Names become parts of OCI refs (`<ns>/<image>:<tag>`), so they follow
/// the ref grammar ([`oci::check_ref_name`]), lowercase as registries want,
/// and without the `:`, `@` and `+` that mean more than a name in a ref.
pub fn name_problem(name: &str) -> Option<String> {
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    match name.chars().find(|&c| !allowed(c)) {
        Some(c) => Some(format!("`{c}` is not allowed in a name")),
        None => oci::check_ref_name(name).err().map(|e| e.to_string()),
    }
}

pub fn is_valid_name(name: &str) -> bool {
    name_problem(name).is_none()
}

/// Why `registry` cannot prefix the refs of a namespace's images, with the
/// fix, if it cannot.
pub fn registry_problem(registry: &str) -> Option<(String, String)> {
    let last = registry.rsplit('/').next().unwrap_or(registry);
    let tagged = registry.contains('/') && last.contains(':');
    if tagged || registry.contains('@') {
        Some((
            format!("`{registry}` is not a registry prefix: it names an image"),
            "write a ref without tag or digest, e.g. `ghcr.io/acme`".into(),
        ))
    } else if let Err(why) = oci::check_ref_name(registry) {
        Some((
            format!("`{registry}` is not a registry prefix: {why}"),
            format!("write e.g. `ghcr.io/acme`: {}", oci::REF_RULE),
        ))
    } else if registry.chars().any(|c| c.is_ascii_uppercase()) {
        Some((
            format!("`{registry}` has uppercase letters"),
            "image refs are lowercase".into(),
        ))
    } else {
        None
    }
}

fn check_name(dir: &Path, name: &str, what: &str, problems: &mut Vec<Problem>) {
    if let Some(why) = name_problem(name) {
        problems.push(
            Problem::error(dir, format!("`{name}` is not a valid {what} name: {why}"))
                .with_hint(NAME_RULE),
        );
    }
}

/// The visible subdirectories of `dir`, sorted by name.
fn subdirs(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            dirs.push((name, entry.path()));
        }
    }
    dirs.sort();
    Ok(dirs)
}
