//! What the stack commands share: finding and loading the project, and
//! printing its problems.
//!
//! `--project` (with its `KILN_PROJECT` twin) is flattened into each command
//! that reads a stack rather than into kiln's global flags, so commands that
//! need no project do not offer it; it is global below those commands, so
//! `kiln new image X --project DIR` works too.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::error::hinted;
use crate::graph::Stack;
use crate::layouts::{Overrides, Problem, Project};
use crate::printer::Printer;
use crate::runtime::isolation::Choice;

#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArgs {
    /// The project root, the directory holding kiln.toml [default: the
    /// nearest one from the current directory up].
    #[arg(long, value_name = "DIR", env = "KILN_PROJECT", global = true)]
    pub project: Option<PathBuf>,
}

impl ProjectArgs {
    pub fn root(&self) -> anyhow::Result<PathBuf> {
        Project::find_root(self.project.as_deref())
    }

    /// Load the stack and print its problems; fail if any is an error.
    pub fn load_valid(&self, printer: &Printer) -> anyhow::Result<Stack> {
        let stack = Stack::load(&self.root()?);
        print_problems(printer, &stack.problems);
        valid(stack)
    }

    /// The stack for the commands that read only kiln.toml's `[sources]`
    /// when there is no layouts/ (fetch, update): such a project is fine
    /// for them, so only its errors are printed, not "the stack is empty".
    pub fn load_sources(&self, printer: &Printer) -> anyhow::Result<Stack> {
        let root = self.root()?;
        if root.join("layouts").is_dir() {
            return self.load_valid(printer);
        }
        errors_only(printer, Stack::load(&root), "the stack", |_| true)
    }

    /// The stack for commands that need only kiln.toml's settings (clean):
    /// its errors fail them, since a cache dir read wrong is the wrong dir,
    /// while a broken image elsewhere in the stack must not stop them.
    pub fn load_settings(&self, printer: &Printer) -> anyhow::Result<Stack> {
        settings_at(&self.root()?, printer)
    }

    /// The cache and isolation of the commands that work with or without a
    /// project (run, doctor): the project's when there is one, so that they
    /// use the dir, the locks and the `isolation` that builds and `kiln
    /// clean` use, else the user's cache; `isolation` is the command's flag.
    pub fn runtime_settings(
        &self,
        printer: &Printer,
        isolation: Option<Choice>,
    ) -> anyhow::Result<(Cache, Choice)> {
        let overrides = Overrides {
            isolation,
            ..Overrides::default()
        };
        match Project::find_root(self.project.as_deref()) {
            Ok(root) => {
                let settings = settings_at(&root, printer)?.project.settings(&overrides);
                Ok((settings.cache, settings.isolation))
            }
            Err(e) if self.project.is_some() => Err(e),
            Err(_) => Cache::locate(None)
                .map(|cache| (cache, crate::layouts::isolation(None, &overrides)))
                .ok_or_else(|| {
                    hinted(
                        "no cache dir: KILN_CACHE_DIR, XDG_CACHE_HOME and HOME are all unset",
                        "set KILN_CACHE_DIR to a directory kiln may write",
                    )
                }),
        }
    }
}

/// The stack at `root`, failing only on kiln.toml's errors.
fn settings_at(root: &Path, printer: &Printer) -> anyhow::Result<Stack> {
    let toml = root.join("kiln.toml");
    let what = toml.display().to_string();
    errors_only(printer, Stack::load(root), &what, |p| p.file == toml)
}

/// Prints the errors `counts` picks, and fails if there are any.
fn errors_only(
    printer: &Printer,
    stack: Stack,
    what: &str,
    counts: impl Fn(&Problem) -> bool,
) -> anyhow::Result<Stack> {
    let errors: Vec<Problem> = stack
        .problems
        .iter()
        .filter(|p| p.is_error() && counts(p))
        .cloned()
        .collect();
    print_problems(printer, &errors);
    match errors.len() {
        0 => Ok(stack),
        n => Err(failed(what, n)),
    }
}

fn valid(stack: Stack) -> anyhow::Result<Stack> {
    match stack.error_count() {
        0 => Ok(stack),
        n => Err(failed("the stack", n)),
    }
}

fn failed(what: &str, n: usize) -> anyhow::Error {
    hinted(
        format!("{what} has {n} error{} (above)", plural(n)),
        "fix them; `kiln check` lists them all",
    )
}

/// Each problem as `error: file:line:col: message` with its hint below.
pub fn print_problems(printer: &Printer, problems: &[Problem]) {
    for problem in problems {
        if problem.is_error() {
            let err = match &problem.hint {
                Some(hint) => hinted(problem, hint),
                None => anyhow::anyhow!("{problem}"),
            };
            printer.error(&err);
        } else {
            printer.warn(problem);
            if let Some(hint) = &problem.hint {
                printer.info(format!("{}: {hint}", printer.cyan("hint")));
            }
        }
    }
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
