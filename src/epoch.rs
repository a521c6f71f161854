//! The build's time, SOURCE_DATE_EPOCH, resolved once per command and passed
//! down: it clamps every mtime in a layer, is each image's `created`, goes
//! into the build containers and into every input digest.
//!
//! Reproducible by default: without the user's SOURCE_DATE_EPOCH, `kiln
//! build` takes the pinned snapshot's own timestamp (its
//! `metadata/timestamp.x` or `timestamp.chk`), which kiln.lock fixes through
//! the snapshot's SHA512. The same kiln.lock then gives the same digests on
//! any machine and any day. The user's value still wins, and a value that is
//! not Unix seconds is an error naming it: ignoring it would build with
//! another time than the user asked for (docs/reproducible.md).

use std::path::{Path, PathBuf};

pub const VAR: &str = "SOURCE_DATE_EPOCH";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{VAR}={value:?} is not a time: it must be whole seconds since 1970-01-01 UTC, like `{VAR}=$(git log -1 --format=%ct)`"
    )]
    BadValue { value: String },
    #[error(
        "the snapshot in {repos} has no metadata/timestamp.x or metadata/timestamp.chk to take the build's time from; set {VAR} to the time the images should carry"
    )]
    NoTimestamp { repos: PathBuf },
    #[error(
        "{path} holds {text:?}, not a timestamp (`SECONDS ...` or `Thu, 01 Jan 2026 00:00:00 +0000`); set {VAR} to the time the images should carry"
    )]
    BadTimestamp { path: PathBuf, text: String },
}

/// Where the time came from, for messages and docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    User,
    Snapshot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    pub secs: i64,
    pub source: Source,
}

/// The user's SOURCE_DATE_EPOCH, if set; an error when it is not seconds.
pub fn from_env() -> Result<Option<i64>, Error> {
    match std::env::var_os(VAR) {
        None => Ok(None),
        Some(raw) => {
            let value = raw.to_string_lossy().into_owned();
            value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|s| *s >= 0)
                .map(Some)
                .ok_or(Error::BadValue { value })
        }
    }
}

/// The build's time: the user's SOURCE_DATE_EPOCH (`user`, from
/// [`from_env`], read before any work so a bad value changes nothing),
/// else the timestamp of the snapshot unpacked in `repos` (a builder
/// state's `var/db/repos`).
pub fn resolve(user: Option<i64>, repos: &Path) -> Result<Epoch, Error> {
    if let Some(secs) = user {
        return Ok(Epoch {
            secs,
            source: Source::User,
        });
    }
    let secs = snapshot_time(repos)?;
    Ok(Epoch {
        secs,
        source: Source::Snapshot,
    })
}

/// The snapshot's timestamp. Gentoo's snapshots carry `timestamp.x`
/// (`1704153601 Tue 02 Jan 2024 ...`, what emerge-webrsync reads) and
/// `timestamp.chk` (`Tue, 02 Jan 2024 00:40:00 +0000`); the first found of
/// the repositories in `repos`, sorted by name, counts.
fn snapshot_time(repos: &Path) -> Result<i64, Error> {
    let no_timestamp = || Error::NoTimestamp {
        repos: repos.to_path_buf(),
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(repos)
        .map_err(|_| no_timestamp())?
        .flatten()
        .map(|e| e.path().join("metadata"))
        .collect();
    dirs.sort();
    for dir in dirs {
        for (name, parse) in [
            ("timestamp.x", parse_x as fn(&str) -> Option<i64>),
            ("timestamp.chk", parse_rfc2822),
        ] {
            let path = dir.join(name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                let text = text.trim().to_string();
                return parse(&text).ok_or(Error::BadTimestamp { path, text });
            }
        }
    }
    Err(no_timestamp())
}

fn parse_x(text: &str) -> Option<i64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `Thu, 01 Jan 2026 00:00:00 +0000` (RFC 2822, as Gentoo writes it).
fn parse_rfc2822(text: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let rest = text.split_once(", ").map_or(text, |(_, r)| r);
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return None;
    };
    let month = MONTHS.iter().position(|m| m == month)? + 1;
    let day: u32 = day.parse().ok()?;
    let rfc3339 = format!("{year}-{month:02}-{day:02}T{time}Z");
    let utc = crate::oci::parse_created(&rfc3339).ok()?;
    let (sign, hhmm) = match zone.split_at_checked(1)? {
        ("+", z) => (1, z),
        ("-", z) => (-1, z),
        _ => return None,
    };
    let offset: i64 = hhmm.parse().ok()?;
    Some(utc - sign * (offset / 100 * 3600 + offset % 100 * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_timestamps_parse() {
        assert_eq!(
            parse_rfc2822("Thu, 01 Jan 2026 00:00:00 +0000"),
            Some(1767225600)
        );
        assert_eq!(
            parse_rfc2822("Thu, 01 Jan 2026 02:00:00 +0200"),
            Some(1767225600)
        );
        assert_eq!(
            parse_x("1704153601 Tue 02 Jan 2024 00:00:01 AM UTC"),
            Some(1704153601)
        );
        assert_eq!(parse_rfc2822("yesterday"), None);
    }

    #[test]
    fn the_snapshot_gives_the_time_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("gentoo/metadata");
        std::fs::create_dir_all(&meta).unwrap();
        assert!(matches!(
            snapshot_time(dir.path()),
            Err(Error::NoTimestamp { .. })
        ));
        std::fs::write(
            meta.join("timestamp.chk"),
            "Thu, 01 Jan 2026 00:00:00 +0000\n",
        )
        .unwrap();
        assert_eq!(snapshot_time(dir.path()).unwrap(), 1767225600);
        std::fs::write(meta.join("timestamp.x"), "soon\n").unwrap();
        let err = snapshot_time(dir.path()).unwrap_err().to_string();
        assert!(err.contains("timestamp.x holds \"soon\""), "{err}");
    }
}
