//! Gentoo's `.DIGESTS` file next to a stage3: blocks headed `# BLAKE2B HASH`
//! / `# SHA512 HASH`, each followed by `<hex>  <name>` lines. kiln checks the
//! SHA512 only (sha2 is already a dependency; BLAKE2B would add a crate for
//! no extra trust). The snapshot's `.md5sum` is ignored for the same reason:
//! its detached signature and the SHA512 pinned in kiln.lock cover it.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DigestsError {
    #[error("{file} has no SHA512 line for {name}")]
    Missing { file: String, name: String },
    #[error("{file} line {line}: '{text}' is not '<hex>  <file name>'")]
    Malformed {
        file: String,
        line: usize,
        text: String,
    },
}

/// The SHA512 (lowercase hex) of `name` in a `.DIGESTS` text. `file` names
/// the text in errors. A clearsigned `.DIGESTS` (older releases) must be
/// verified and unwrapped by the caller first.
pub fn sha512_for(text: &str, name: &str, file: &str) -> Result<String, DigestsError> {
    let mut in_sha512 = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('#') {
            in_sha512 = header.trim().eq_ignore_ascii_case("SHA512 HASH");
            continue;
        }
        if !in_sha512 || line.is_empty() {
            continue;
        }
        let (hex, entry) = split_line(line).ok_or_else(|| DigestsError::Malformed {
            file: file.into(),
            line: i + 1,
            text: line.into(),
        })?;
        if hex.len() != 128 {
            return Err(DigestsError::Malformed {
                file: file.into(),
                line: i + 1,
                text: line.into(),
            });
        }
        if entry == name {
            return Ok(hex.to_ascii_lowercase());
        }
    }
    Err(DigestsError::Missing {
        file: file.into(),
        name: name.into(),
    })
}

/// `<hex>  <name>` (coreutils also writes `<hex> *<name>` for binary mode).
fn split_line(line: &str) -> Option<(&str, &str)> {
    let (hex, rest) = line.split_once(char::is_whitespace)?;
    let entry = rest.trim_start().trim_start_matches('*');
    let entry = entry.rsplit('/').next().unwrap_or(entry);
    (hex.bytes().all(|b| b.is_ascii_hexdigit()) && !entry.is_empty()).then_some((hex, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aa";

    fn digests() -> String {
        let b2 = "b".repeat(128);
        let s1 = "C".repeat(128);
        let s2 = "d".repeat(128);
        format!(
            "# BLAKE2B HASH\n{b2}  stage3.tar.xz\n# SHA512 HASH\n{s1}  stage3.tar.xz\n\
             # BLAKE2B HASH\n{b2}  stage3.tar.xz.CONTENTS.gz\n# SHA512 HASH\n{s2}  stage3.tar.xz.CONTENTS.gz\n"
        )
    }

    #[test]
    fn picks_the_sha512_line_of_the_named_file_not_the_blake2b_one() {
        let text = digests();
        assert_eq!(
            sha512_for(&text, "stage3.tar.xz", "x.DIGESTS").unwrap(),
            "c".repeat(128)
        );
        assert_eq!(
            sha512_for(&text, "stage3.tar.xz.CONTENTS.gz", "x.DIGESTS").unwrap(),
            "d".repeat(128)
        );
        assert_eq!(
            sha512_for(&text, "other.tar.xz", "x.DIGESTS")
                .unwrap_err()
                .to_string(),
            "x.DIGESTS has no SHA512 line for other.tar.xz"
        );
    }

    #[test]
    fn a_short_hash_is_malformed() {
        let text = format!("# SHA512 HASH\n{A}  stage3.tar.xz\n");
        assert_eq!(
            sha512_for(&text, "stage3.tar.xz", "x.DIGESTS")
                .unwrap_err()
                .to_string(),
            "x.DIGESTS line 2: 'aa  stage3.tar.xz' is not '<hex>  <file name>'"
        );
    }
}
