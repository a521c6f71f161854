//! The names images have in a layout: the image-spec's grammar for the
//! `org.opencontainers.image.ref.name` annotation, in one place.
//!
//! ```text
//! ref       ::= component ("/" component)*
//! component ::= alphanum (separator alphanum)*
//! alphanum  ::= [A-Za-z0-9]+
//! separator ::= [-._:@+] | "--"
//! ```
//!
//! The spec says SHOULD; skopeo's and podman's `oci:` transport enforce it
//! (containers/image refuses `demo/a..b:latest` as "Invalid image"), so a ref
//! outside it is an image those tools cannot name. Everything that makes a
//! ref goes through [`check_ref_name`]: `kiln commit --ref`, the names,
//! registry prefixes and tags of the stack's images, and the strict checker.

/// The rule, for messages and hints.
pub const REF_RULE: &str = "a ref is parts joined by `/`, each letters and digits \
     with one of `-` `.` `_` `:` `@` `+` (or `--`) between them, as the OCI image-spec's \
     org.opencontainers.image.ref.name grammar says";

/// Why a text is not a ref name, naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefNameError {
    #[error("it is empty")]
    Empty,
    #[error("`{0}` is not allowed")]
    Char(char),
    #[error("`{part}` starts with `{sep}`, not a letter or digit")]
    Leading { part: String, sep: char },
    #[error("`{part}` ends with `{sep}`, not a letter or digit")]
    Trailing { part: String, sep: String },
    #[error("a `/` has nothing on one side")]
    EmptyPart,
    #[error("`{0}` puts separators together (only `--` may be doubled)")]
    Doubled(String),
}

/// Check `name` against the grammar above; the error says where it breaks.
pub fn check_ref_name(name: &str) -> Result<(), RefNameError> {
    if name.is_empty() {
        return Err(RefNameError::Empty);
    }
    for part in name.split('/') {
        check_part(part)?;
    }
    Ok(())
}

/// One `component` of the grammar: alphanumeric runs joined by separators.
fn check_part(part: &str) -> Result<(), RefNameError> {
    let mut run = String::new();
    for (i, c) in part.char_indices() {
        if c.is_ascii_alphanumeric() {
            if run.len() > 1 && run != "--" {
                return Err(RefNameError::Doubled(run));
            }
            run.clear();
        } else if "-._:@+".contains(c) {
            if i == 0 {
                return Err(RefNameError::Leading {
                    part: part.to_string(),
                    sep: c,
                });
            }
            run.push(c);
        } else {
            return Err(RefNameError::Char(c));
        }
    }
    if part.is_empty() {
        Err(RefNameError::EmptyPart)
    } else if !run.is_empty() {
        Err(RefNameError::Trailing {
            part: part.to_string(),
            sep: run,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_of_ref_names() {
        for good in [
            "a",
            "demo/hello:latest",
            "ghcr.io/acme/web:1.25-r1",
            "localhost:5000/x/y:z",
            "a--b",
            "A_b+c@d",
        ] {
            assert_eq!(check_ref_name(good), Ok(()), "{good}");
        }
        use RefNameError::*;
        let part = |p: &str| p.to_string();
        for (bad, why) in [
            ("", Empty),
            ("demo/a..b:latest", Doubled("..".into())),
            ("a---b", Doubled("---".into())),
            ("a._b", Doubled("._".into())),
            (
                "demo/-x",
                Leading {
                    part: part("-x"),
                    sep: '-',
                },
            ),
            ("x/", EmptyPart),
            ("a//b", EmptyPart),
            (
                "x:",
                Trailing {
                    part: part("x:"),
                    sep: ":".into(),
                },
            ),
            (
                "x-/y",
                Trailing {
                    part: part("x-"),
                    sep: "-".into(),
                },
            ),
            ("a b", Char(' ')),
            ("é", Char('é')),
        ] {
            assert_eq!(check_ref_name(bad), Err(why), "{bad}");
        }
        assert_eq!(
            check_ref_name("demo/a..b:latest").unwrap_err().to_string(),
            "`..` puts separators together (only `--` may be doubled)"
        );
    }
}
