//! `kiln.lock`: the exact stage3 and snapshot a project builds from, like
//! Cargo.lock. Users commit it, so a build a year later asks the mirrors for
//! the same paths and accepts only the same bytes (size and SHA512).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::WriteError;

pub const LOCK_FILE: &str = "kiln.lock";
const VERSION: u32 = 1;
const HEADER: &str = "# kiln.lock: the stage3 and portage snapshot this project builds from.\n\
# Written by `kiln update`; commit it. kiln accepts only these exact files.\n\n";

#[derive(Debug, Error)]
pub enum LockError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid kiln.lock: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} has version {found}; this kiln reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error(transparent)]
    Write(#[from] WriteError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    pub stage3: Pinned,
    pub snapshot: Pinned,
}

/// One pinned file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pinned {
    /// Path relative to a mirror's root, e.g.
    /// `releases/amd64/autobuilds/20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz`.
    pub path: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha512: String,
}

impl Pinned {
    /// The file's name, the last part of its path.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

impl Lock {
    pub fn new(stage3: Pinned, snapshot: Pinned) -> Lock {
        Lock {
            version: VERSION,
            stage3,
            snapshot,
        }
    }

    /// The lock in `dir`, or None when there is none yet.
    pub fn read(dir: &Path) -> Result<Option<Lock>, LockError> {
        let path = dir.join(LOCK_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(LockError::Read { path, source }),
        };
        let lock: Lock = toml::from_str(&text).map_err(|e| LockError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if lock.version != VERSION {
            return Err(LockError::Version {
                path,
                found: lock.version,
            });
        }
        for pin in [&lock.stage3, &lock.snapshot] {
            let bad_hash =
                pin.sha512.len() != 128 || !pin.sha512.bytes().all(|b| b.is_ascii_hexdigit());
            let bad_path = pin.path.starts_with('/') || pin.path.split('/').any(|c| c == "..");
            if bad_hash || bad_path {
                return Err(LockError::Parse {
                    path,
                    message: format!(
                        "'{}' needs a relative path without '..' and a 128-digit sha512",
                        pin.path
                    ),
                });
            }
        }
        Ok(Some(lock))
    }

    /// Write `dir/kiln.lock` atomically.
    pub fn write(&self, dir: &Path) -> Result<(), LockError> {
        let path = dir.join(LOCK_FILE);
        let body = toml::to_string(self).expect("a lock always serializes");
        Ok(crate::durable::replace(
            &path,
            format!("{HEADER}{body}").as_bytes(),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_escaping_paths() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Lock::read(dir.path()).unwrap(), None);
        let pin = |path: &str| Pinned {
            path: path.into(),
            size: 3,
            sha512: "a".repeat(128),
        };
        let lock = Lock::new(
            pin("releases/amd64/autobuilds/T/s.tar.xz"),
            pin("snapshots/g.tar.xz"),
        );
        lock.write(dir.path()).unwrap();
        assert_eq!(Lock::read(dir.path()).unwrap(), Some(lock.clone()));
        assert_eq!(lock.stage3.name(), "s.tar.xz");

        Lock::new(pin("../x"), pin("snapshots/g"))
            .write(dir.path())
            .unwrap();
        let err = Lock::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.ends_with("'../x' needs a relative path without '..' and a 128-digit sha512"),
            "{err}"
        );
    }
}
