//! Stack definitions, their checks, the graph and the commands around them
//! (`check`, `graph`, `build --dry-run`, `new`, `completions`), driven through
//! the real binary on fixture stacks (tests/fixtures/layouts/) and on stacks
//! written per test.

mod commands;
mod errors;
mod graph;

use crate::util::describe;
use crate::util::layouts::{kiln_in, stack, write};
use crate::util::stderr;

const README: &str = "# an image\n";

/// A namespace `a` with the images given as `(name, image.toml)`, each with
/// a README.md.
pub fn images(list: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = stack(&[("layouts/a/namespace.toml", "")]);
    for (name, toml) in list {
        write(
            dir.path(),
            &[
                (&format!("layouts/a/images/{name}/image.toml"), toml),
                (&format!("layouts/a/images/{name}/README.md"), README),
            ],
        );
    }
    dir
}

/// `kiln check` must fail with exactly these problem lines (summary aside).
pub fn check_fails_with(dir: &std::path::Path, want: &str) {
    let out = kiln_in(dir, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    let (problems, summary) = err.trim_end().rsplit_once('\n').unwrap_or(("", &err));
    assert_eq!(problems, want.trim_end(), "{}", describe(&out));
    assert!(
        summary.trim_start().starts_with("Checked"),
        "{}",
        describe(&out)
    );
}
