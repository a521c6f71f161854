//! Errors that tell the user what to do.
//!
//! Module errors are `thiserror` enums, one per module (`oci::Error`,
//! `store::Error`, `assemble::state::Error`...), with [`IoError`] for a
//! plain "cannot OP PATH". anyhow is the command edge's (`cli`, and the
//! build driver, `assemble`'s mod.rs and step.rs), and still fetch's,
//! graph's and layouts'; a module error that holds one of those holds it
//! transparently. `main` prints the chain as `error: ...`,
//! `Caused by: ...` and one `hint: ...` line per hint found. A hint comes
//! one of two ways:
//! - A module error that knows its fix says it with a `fix()` method, and
//!   [`hints`] finds it anywhere in the chain (its `known_fix` lists those
//!   enums). A variant that wraps another error transparently hides it from
//!   the chain, so its `fix()` asks the wrapped one ([`top_fix`] for an
//!   anyhow error).
//! - Where only the caller knows the fix (which command, which flag), the
//!   edge wraps the error in [`Hinted`] ([`hinted`], [`HintExt`]).
//!
//! A failed write to kiln's own files (cache, layout, lock) is a
//! [`WriteError`] in every module, so that a full disk reads the same
//! everywhere ("no space left on device writing PATH") and gets its fix from
//! [`hints`] whichever command met it, instead of being mistaken for a
//! network failure or a broken pipe between threads. `durable` makes those
//! writes.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error with the fix attached. It displays as the error it wraps and
/// forwards `source()`, so it adds a hint without adding a line to the chain.
#[derive(Debug)]
pub struct Hinted {
    inner: BoxError,
    hint: String,
}

impl Hinted {
    pub fn hint(&self) -> &str {
        &self.hint
    }
}

impl fmt::Display for Hinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl StdError for Hinted {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.source()
    }
}

/// An error made of a message and its fix.
pub fn hinted(message: impl fmt::Display, hint: impl fmt::Display) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        inner: message.to_string().into(),
        hint: hint.to_string(),
    })
}

/// Attach a fix to any error on its way up.
pub trait HintExt<T> {
    fn hint(self, hint: impl fmt::Display) -> anyhow::Result<T>;
    fn with_hint<H: fmt::Display>(self, hint: impl FnOnce() -> H) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> HintExt<T> for Result<T, E> {
    fn hint(self, hint: impl fmt::Display) -> anyhow::Result<T> {
        self.with_hint(|| hint)
    }

    fn with_hint<H: fmt::Display>(self, hint: impl FnOnce() -> H) -> anyhow::Result<T> {
        self.map_err(|e| {
            anyhow::Error::new(Hinted {
                inner: e.into().into(),
                hint: hint().to_string(),
            })
        })
    }
}

/// Every hint in an error's chain, outermost first, then the fix for a
/// cause any command can meet (a full disk, a damaged layout file) unless a
/// hint already says it.
pub fn hints(err: &anyhow::Error) -> Vec<String> {
    let mut hints: Vec<String> = err
        .chain()
        .filter_map(|e| e.downcast_ref::<Hinted>())
        .map(|h| h.hint().to_string())
        .collect();
    for fix in err.chain().filter_map(known_fix) {
        if !hints.contains(&fix) {
            hints.push(fix);
        }
    }
    hints
}

/// The fix of a module error that knows one (a module enum that wraps one
/// transparently hides it from the chain, and asks it itself).
fn known_fix(err: &(dyn StdError + 'static)) -> Option<String> {
    type Find = fn(&(dyn StdError + 'static)) -> Option<String>;
    const FIXES: &[Find] = &[
        |e| e.downcast_ref::<WriteError>()?.fix(),
        |e| match e.downcast_ref()? {
            crate::fetch::lock::LockError::Write(write) => write.fix(),
            _ => None,
        },
        |e| match e.downcast_ref()? {
            crate::sbom::Error::Write(write) => write.fix(),
            _ => None,
        },
        |e| e.downcast_ref::<crate::tree::Error>()?.fix(),
        |e| e.downcast_ref::<crate::cache::Error>()?.fix(),
        |e| e.downcast_ref::<crate::runtime::Error>()?.fix(),
        |e| e.downcast_ref::<crate::runtime::overlay::Error>()?.fix(),
        |e| e.downcast_ref::<crate::oci::Error>()?.fix(),
        |e| e.downcast_ref::<crate::store::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::state::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::inputs::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::repos::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::run::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::hook::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::accounts::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::write::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::distfiles::Error>()?.fix(),
        |e| e.downcast_ref::<crate::assemble::state::Error>()?.fix(),
    ];
    FIXES.iter().find_map(|find| find(err))
}

/// The fix for the top of `err` alone: what a module error that wraps an
/// anyhow error of a module not typed yet (fetch's) hides.
pub(crate) fn top_fix(err: &anyhow::Error) -> Option<String> {
    let top: &(dyn StdError + 'static) = err.as_ref();
    match top.downcast_ref::<Hinted>() {
        Some(hinted) => Some(hinted.hint().to_string()),
        None => known_fix(top),
    }
}

/// `op` on `path` failed: "cannot create PATH", "cannot copy PATH to TO",
/// with the I/O error as its cause. What a module error holds for the
/// files that are not kiln's own to write (those are [`WriteError`]s).
#[derive(Debug, thiserror::Error)]
#[error("cannot {op} {}{}", path.display(), to.as_ref().map(|t| format!(" to {}", t.display())).unwrap_or_default())]
pub struct IoError {
    pub op: &'static str,
    pub path: PathBuf,
    pub to: Option<PathBuf>,
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// For `map_err`: `op` ("create", "read"...) on `path` failed.
    pub fn at(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IoError {
        let path = path.to_path_buf();
        move |source| IoError {
            op,
            path,
            to: None,
            source,
        }
    }

    /// For `map_err`: `op` ("copy", "move") from `path` to `to` failed.
    pub fn between(op: &'static str, path: &Path, to: &Path) -> impl FnOnce(io::Error) -> IoError {
        let (path, to) = (path.to_path_buf(), Some(to.to_path_buf()));
        move |source| IoError {
            op,
            path,
            to,
            source,
        }
    }
}

/// Writing `path` failed. Displays as "no space left on device writing
/// PATH": the cause first, since it is what the user acts on.
#[derive(Debug, thiserror::Error)]
#[error("{} writing {}", io_phrase(.error), .path.display())]
pub struct WriteError {
    pub path: PathBuf,
    /// Not the error's `source`: the message says it already.
    pub error: io::Error,
}

impl WriteError {
    pub fn new(path: impl Into<PathBuf>, error: io::Error) -> WriteError {
        WriteError {
            path: path.into(),
            error,
        }
    }

    /// As an `io::Error` of the same kind, to pass through `Write` (a
    /// compressor's thread, say) and be taken out again with [`Self::from_io`].
    pub fn into_io(self) -> io::Error {
        io::Error::new(self.error.kind(), self)
    }

    /// The `WriteError` an `io::Error` carries, or the `io::Error` itself.
    pub fn from_io(err: io::Error) -> Result<WriteError, io::Error> {
        if !err.get_ref().is_some_and(|e| e.is::<WriteError>()) {
            return Err(err);
        }
        let inner = err.into_inner().expect("checked above");
        Ok(*inner.downcast::<WriteError>().expect("checked above"))
    }

    /// What to do about the causes that have one fix whatever was written.
    pub fn fix(&self) -> Option<String> {
        let dir = self.path.parent().unwrap_or(Path::new("/")).display();
        match self.error.kind() {
            io::ErrorKind::StorageFull => Some(format!(
                "free space on the file system that holds {dir} (`df -h {dir}`), \
                 or point kiln at another one; `kiln clean --dry-run` shows what kiln's cache can give back"
            )),
            io::ErrorKind::QuotaExceeded => Some(format!(
                "your disk quota on {dir} is used up: free some of it, or point kiln at another file system"
            )),
            io::ErrorKind::ReadOnlyFilesystem => Some(format!(
                "{dir} is on a read-only file system: point kiln at a writable directory"
            )),
            _ => None,
        }
    }
}

/// An I/O error as a phrase: "no space left on device", without the
/// "(os error 28)" that means nothing to the user.
pub(crate) fn io_phrase(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn hint_is_transparent_and_found_under_context() {
        let inner: Result<(), std::io::Error> = Err(std::io::Error::other("disk on fire"));
        let err = inner
            .hint("put the fire out")
            .context("writing blob")
            .unwrap_err();
        let lines: Vec<String> = err.chain().map(|e| e.to_string()).collect();
        assert_eq!(lines, ["writing blob", "disk on fire"]);
        assert_eq!(hints(&err), ["put the fire out"]);
    }

    #[test]
    fn a_module_error_gives_its_fix_and_that_of_what_it_wraps() {
        use crate::runtime::{Error as Runtime, probe::ToolProblem, userns};
        let missing = ToolProblem::Missing { tool: "newuidmap" };
        let runtime = Runtime::UserNs(userns::Error::IdMapTool(missing));
        let err = anyhow::Error::new(crate::assemble::run::Error::Runtime(runtime))
            .context("building t/x");
        let lines: Vec<String> = err.chain().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("newuidmap not found on PATH"));
        assert!(hints(&err)[0].starts_with("install it: sudo apt-get install uidmap"));

        let full = WriteError::new(
            "/c/states/x/state.json",
            io::Error::from_raw_os_error(libc::ENOSPC),
        );
        let err = anyhow::Error::new(crate::assemble::state::Error::Write(full));
        assert!(
            hints(&err)[0].contains("df -h /c/states/x"),
            "{:?}",
            hints(&err)
        );

        let err = anyhow::Error::new(crate::store::Error::NoImage {
            reference: "t/x".into(),
            index: "/l/index.json".into(),
            names: vec!["t/a".into(), "t/b".into()],
        });
        assert_eq!(err.to_string(), "no image `t/x` in /l/index.json");
        assert_eq!(hints(&err), ["the layout holds: t/a, t/b"]);
    }

    #[test]
    fn a_write_error_names_cause_and_path_and_survives_io() {
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        let err = WriteError::new("/cache/downloads/x.part", full);
        assert_eq!(
            err.to_string(),
            "no space left on device writing /cache/downloads/x.part"
        );
        let back = WriteError::from_io(err.into_io()).unwrap();
        assert_eq!(back.path, Path::new("/cache/downloads/x.part"));
        let err = anyhow::Error::new(back).context("fetching");
        assert_eq!(hints(&err).len(), 1);
        assert!(hints(&err)[0].contains("df -h /cache/downloads"));
        assert!(WriteError::from_io(io::Error::other("x")).is_err());
    }
}
