//! Errors that tell the user what to do.
//!
//! Module errors are `thiserror` enums; at the point where kiln knows the fix,
//! an error is wrapped in [`Hinted`], and `main` prints the chain as
//! `error: ...`, `Caused by: ...` and one `hint: ...` line per hint found.

use std::error::Error as StdError;
use std::fmt;

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

/// Every hint in an error's chain, outermost first.
pub fn hints(err: &anyhow::Error) -> Vec<&str> {
    err.chain()
        .filter_map(|e| e.downcast_ref::<Hinted>())
        .map(Hinted::hint)
        .collect()
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
}
