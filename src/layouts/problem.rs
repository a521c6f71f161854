//! Problems found in a stack, each pinned to a file, a line and a column.
//!
//! `kiln check` must report every problem, not only the first, so loading
//! collects [`Problem`]s instead of failing. The toml crate's errors know the
//! byte span but not the file; [`Source`] adds the file and turns spans into
//! `file:line:col`, and serde's "unknown field" and "unknown variant"
//! messages are rewritten with a "did you mean" hint.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One thing wrong with the stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line and column, when the problem has a place in the file.
    pub pos: Option<(usize, usize)>,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn error(file: &Path, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Error,
            file: file.to_path_buf(),
            pos: None,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warning(file: &Path, message: impl Into<String>) -> Self {
        Problem {
            severity: Severity::Warning,
            ..Problem::error(file, message)
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", display_path(&self.file))?;
        if let Some((line, col)) = self.pos {
            write!(f, ":{line}:{col}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// A path as the user should read it: relative to the current directory when
/// it lies below it, so messages match what the user typed.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

/// A TOML file's text, kept to place spans of values checked after parsing.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn read(path: &Path) -> Result<Source, Problem> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Source {
                path: path.to_path_buf(),
                text,
            }),
            Err(e) => Err(Problem::error(path, format!("cannot read: {e}"))),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = before.matches('\n').count() + 1;
        (line, before[line_start..].chars().count() + 1)
    }

    /// An error at a span of this file.
    pub fn error_at(&self, span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem {
            pos: Some(self.position(span.start)),
            ..Problem::error(&self.path, message)
        }
    }

    /// Parse the file, turning the toml crate's error into a placed problem.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, Problem> {
        toml::from_str(&self.text).map_err(|e| self.toml_problem(&e))
    }

    fn toml_problem(&self, err: &toml::de::Error) -> Problem {
        let span = err.span().unwrap_or(0..0);
        let message = err.message().trim_end().to_string();
        if let Some((field, expected)) = serde_list(&message, "unknown field `") {
            let problem = self.error_at(span, format!("unknown key `{field}`"));
            return match closest(&field, expected.iter().map(String::as_str)) {
                Some(best) => problem.with_hint(format!("did you mean `{best}`?")),
                None => problem.with_hint(format!("the keys here are: {}", expected.join(", "))),
            };
        }
        if let Some((variant, expected)) = serde_list(&message, "unknown variant `") {
            let key = self.key_before(span.start);
            let problem = self.error_at(span, format!("{key}unknown value `{variant}`"));
            let hint = match closest(&variant, expected.iter().map(String::as_str)) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("one of: {}", expected.join(", ")),
            };
            return problem.with_hint(hint);
        }
        if let Some(wrong) = self.wrong_type(&message, span.start) {
            return self
                .error_at(span, wrong)
                .with_hint("see docs/config.md for the type of each key");
        }
        let key = self.key_before(span.start);
        self.error_at(span, format!("{key}{message}"))
    }

    /// serde's "invalid type: integer `5`, expected a sequence" in the
    /// file's own words: "`cmd` takes an array of strings (exec form), not
    /// integer `5`". A wrong element of an array (`packages = [5]`) is
    /// told as the array's type, which is what the key takes.
    fn wrong_type(&self, message: &str, offset: usize) -> Option<String> {
        let (found, expected) = message
            .strip_prefix("invalid type: ")?
            .split_once(", expected ")?;
        let expected = match expected {
            "a sequence" => "an array",
            "a map" => "a table",
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => "a whole number",
            other => other,
        };
        let (key, in_array) = self.key_of(offset);
        let (expected, found) = match in_array {
            true => {
                let one = expected.trim_start_matches("a ").trim_start_matches("an ");
                (format!("an array of {one}s"), format!("{found} in it"))
            }
            false => (expected.to_string(), found.to_string()),
        };
        Some(match key {
            Some(key) => format!("`{key}` takes {expected}, not {found}"),
            None => format!("expected {expected}, found {found}"),
        })
    }

    /// The key of a `key = value` line a value is on, and whether the
    /// value is inside an array there.
    fn key_of(&self, offset: usize) -> (Option<String>, bool) {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let Some((key, value)) = self.text[line_start..offset].split_once('=') else {
            return (None, false);
        };
        let key = key.trim().trim_matches('"');
        if key.is_empty() || key.contains(char::is_whitespace) {
            (None, false)
        } else {
            (Some(key.to_string()), value.contains('['))
        }
    }

    /// "`key`: " when the offset is a value on a `key = value` line, so an
    /// error says which key it is about.
    fn key_before(&self, offset: usize) -> String {
        match self.key_of(offset).0 {
            Some(key) => format!("`{key}`: "),
            None => String::new(),
        }
    }
}

/// Pick apart serde's "unknown field `x`, expected one of `a`, `b`" (or
/// "expected `a`", or "there are no fields").
fn serde_list(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (name, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some((name.to_string(), expected))
}

/// The candidate nearest to `word`, if it is near enough to be a typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance, case-insensitive, over characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_finds_typos_and_refuses_strangers() {
        let keys = ["packages", "parent", "builder"];
        assert_eq!(closest("pakages", keys), Some("packages"));
        assert_eq!(closest("Parnet", keys), Some("parent"));
        assert_eq!(closest("volumes", keys), None);
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let src = Source {
            path: "x.toml".into(),
            text: "a = 1\nbé = \"x\"\n".into(),
        };
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        assert_eq!(src.position(src.text.find('"').unwrap()), (2, 6));
    }

    #[test]
    fn serde_lists_are_split() {
        let (f, e) = serde_list(
            "unknown field `pakages`, expected one of `parent`, `packages`",
            "unknown field `",
        )
        .unwrap();
        assert_eq!(f, "pakages");
        assert_eq!(e, ["parent", "packages"]);
    }
}
