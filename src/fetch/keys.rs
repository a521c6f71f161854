//! Where the trusted signing keys come from, so that a project pointed at
//! real Gentoo mirrors works on the first run.
//!
//! A key named in `[sources] keys` is a file in the project, or a key kiln
//! gets itself: one of Gentoo's two keys by name, or any key given by its
//! fingerprint and the URLs that serve it. kiln never ships key material
//! (a copy taken from an unverified place is worse than none); it pins the
//! full fingerprints Gentoo publishes on www.gentoo.org/downloads/signatures/
//! and accepts a downloaded key only when its primary key has that
//! fingerprint, so the transport does not have to be trusted.
//!
//! A pinned key is looked for in this order: the cache (`keys/<FPR>.asc`,
//! written only after the fingerprint check), the project's mirrors (where
//! `kiln fetch --to` puts it, as `kiln-keys/<FPR>.asc`, for air-gapped
//! machines), then its URLs. Gentoo rotates signing subkeys and extends
//! expiry dates on the same primary key: when a signature names a subkey the
//! cached copy lacks, or the copy says the key expired, the caller asks for
//! a fresh copy once ([`Resolver::load`] with `fresh`).

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::cache::Cache;
use super::config::{KeySpec, PinnedKey};
use super::mirror::Mirrors;
use super::pgp::{KeyFile, Keyring, PgpError};
use crate::error::WriteError;
use crate::printer::Printer;

/// Gentoo's keys, by the name kiln.toml uses: fingerprint and where Gentoo
/// serves them. The WKD addresses are the direct method's
/// `hu/<z-base-32 of SHA-1 of the local part>?l=<local part>` for
/// releng@gentoo.org and infrastructure@gentoo.org, the addresses in their
/// user ids; keys.gentoo.org is Gentoo's own keyserver.
const GENTOO: &[(&str, &str, &[&str])] = &[
    (
        "gentoo-release",
        "13EBBDBEDE7A12775DFDB1BABB572E0E2D182910",
        &[
            "https://gentoo.org/.well-known/openpgpkey/hu/wtktzo4gyuhzu8a4z5fdj3fgmr1u6tob?l=releng",
            "https://keys.gentoo.org/pks/lookup?op=get&options=mr&search=0x13EBBDBEDE7A12775DFDB1BABB572E0E2D182910",
        ],
    ),
    (
        "gentoo-snapshot",
        "DCD05B71EAB94199527F44ACDB6B8C1F96D8BF6D",
        &[
            "https://gentoo.org/.well-known/openpgpkey/hu/gzhmqtt9d5d1y1bw4ufs47npj5wn8pyx?l=infrastructure",
            "https://keys.gentoo.org/pks/lookup?op=get&options=mr&search=0xDCD05B71EAB94199527F44ACDB6B8C1F96D8BF6D",
        ],
    ),
];

/// Where `kiln fetch --to` writes pinned keys inside a mirror directory.
const MIRROR_DIR: &str = "kiln-keys";

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read OpenPGP key file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the fingerprint '{value}' in [sources] keys is not 40 hex digits")]
    BadFingerprint { value: String },
    #[error("could not get the key {key}:\n{tried}")]
    Unavailable { key: String, tried: String },
    #[error("could not get the key {key}: kiln is offline and has no copy")]
    Offline { key: String },
    #[error("saving the key {fingerprint}")]
    Save {
        fingerprint: String,
        source: WriteError,
    },
    #[error(transparent)]
    Pgp(#[from] PgpError),
}

/// A key kiln gets itself.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pin {
    /// The name in kiln.toml (`gentoo-release`), if it has one.
    name: Option<&'static str>,
    fingerprint: String,
    urls: Vec<String>,
}

impl Pin {
    /// How messages name it.
    fn label(&self) -> String {
        match self.name {
            Some(name) => format!("{name} ({})", self.fingerprint),
            None => self.fingerprint.clone(),
        }
    }
}

/// Loads `[sources] keys` with one cache and one set of mirrors.
pub struct Resolver<'a> {
    pub specs: &'a [KeySpec],
    pub project_dir: &'a Path,
    pub cache: &'a Cache,
    pub mirrors: &'a Mirrors<'a>,
    pub printer: &'a Printer,
}

impl Resolver<'_> {
    /// Whether any key is one kiln downloads (so a fresh copy may help).
    pub fn has_pins(&self) -> bool {
        self.specs.iter().any(|s| pin_of(s).is_some())
    }

    /// The keyring; with `fresh`, pinned keys are downloaded again (from
    /// the mirrors and URLs, not the cache) and the cache updated.
    pub fn load(&self, fresh: bool) -> Result<Keyring, KeyError> {
        let mut files = Vec::new();
        for spec in self.specs {
            files.push(match pin_of(spec) {
                Some(pin) => self.pinned(&pin?, fresh),
                None => self.file(spec),
            }?);
        }
        Ok(Keyring::load(&files)?)
    }

    /// Every pinned key into `dir` as a mirror holds it, for `kiln fetch
    /// --to`; a key not cached yet is got first.
    pub fn export(&self, dir: &Path) -> Result<usize, KeyError> {
        let mut count = 0;
        for spec in self.specs {
            let Some(pin) = pin_of(spec) else { continue };
            let pin = pin?;
            let file = self.pinned(&pin, false)?;
            let dest = dir
                .join(MIRROR_DIR)
                .join(format!("{}.asc", pin.fingerprint));
            save(&dest, &file.bytes).map_err(|source| KeyError::Save {
                fingerprint: pin.fingerprint.clone(),
                source,
            })?;
            count += 1;
        }
        Ok(count)
    }

    fn file(&self, spec: &KeySpec) -> Result<KeyFile, KeyError> {
        let KeySpec::Named(rel) = spec else {
            unreachable!("pin_of takes every pinned entry")
        };
        let path = self.project_dir.join(rel);
        let bytes = fs::read(&path).map_err(|source| KeyError::Read {
            path: path.clone(),
            source,
        })?;
        Ok(KeyFile {
            origin: path.display().to_string(),
            bytes,
            pin: None,
        })
    }

    fn cache_path(&self, pin: &Pin) -> PathBuf {
        self.cache
            .root()
            .join("keys")
            .join(format!("{}.asc", pin.fingerprint))
    }

    fn pinned(&self, pin: &Pin, fresh: bool) -> Result<KeyFile, KeyError> {
        let cached = self.cache_path(pin);
        if !fresh && let Ok(bytes) = fs::read(&cached) {
            return Ok(KeyFile {
                origin: cached.display().to_string(),
                bytes,
                pin: Some(pin.fingerprint.clone()),
            });
        }
        let mut tried = Vec::new();
        let rel = format!("{MIRROR_DIR}/{}.asc", pin.fingerprint);
        let mut sources: Vec<(String, Result<Vec<u8>, String>)> = Vec::new();
        match self.mirrors.get_small(&rel) {
            Ok((bytes, mirror)) => sources.push((mirror.location(&rel), Ok(bytes))),
            Err(e) if e.all_not_found() => {}
            Err(e) => tried.push(format!("  {rel} on the mirrors: {e}")),
        }
        if !self.mirrors.offline() {
            for url in &pin.urls {
                sources.push((url.clone(), self.get_url(url)));
            }
        }
        for (origin, got) in sources {
            let bytes = match got {
                Ok(bytes) => bytes,
                Err(why) => {
                    tried.push(format!("  {origin}: {why}"));
                    continue;
                }
            };
            let file = KeyFile {
                origin: origin.clone(),
                bytes,
                pin: Some(pin.fingerprint.clone()),
            };
            // A copy with another fingerprint is a failed source, not the
            // end: the next one may serve the right key.
            if let Err(e) = file.keys() {
                tried.push(format!("  {origin}: {e}"));
                continue;
            }
            save(&cached, &file.bytes).map_err(|source| KeyError::Save {
                fingerprint: pin.fingerprint.clone(),
                source,
            })?;
            self.printer
                .status("Key", format!("{} from {origin}", pin.label()));
            return Ok(file);
        }
        if tried.is_empty() && self.mirrors.offline() {
            return Err(KeyError::Offline { key: pin.label() });
        }
        Err(KeyError::Unavailable {
            key: pin.label(),
            tried: tried.join("\n"),
        })
    }

    /// One URL's body, through the mirror code (timeouts, retries, offline).
    fn get_url(&self, url: &str) -> Result<Vec<u8>, String> {
        // The mirror code joins a base and a relative path: split the URL
        // at the last `/` before its query.
        let path_end = url.find('?').unwrap_or(url.len());
        let cut = url[..path_end].rfind('/').map_or(0, |i| i + 1);
        let (base, rel) = url.split_at(cut);
        let single = Mirrors::new(&[base.to_string()], Path::new("/"), false, self.printer);
        match single.get_small(rel) {
            Ok((bytes, _)) => Ok(bytes),
            Err(e) if e.all_not_found() => Err("not found".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Write a key file atomically, its directory created if missing.
fn save(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().expect("a key file has a directory");
    fs::create_dir_all(dir).map_err(|e| WriteError::new(dir, e))?;
    crate::durable::replace(path, bytes)
}

/// The pin of a key kiln downloads; `None` for a key file in the project.
fn pin_of(spec: &KeySpec) -> Option<Result<Pin, KeyError>> {
    match spec {
        KeySpec::Named(name) => {
            GENTOO
                .iter()
                .find(|(n, ..)| n == name)
                .map(|(name, fingerprint, urls)| {
                    Ok(Pin {
                        name: Some(name),
                        fingerprint: fingerprint.to_string(),
                        urls: urls.iter().map(|u| u.to_string()).collect(),
                    })
                })
        }
        KeySpec::Pinned(PinnedKey { fingerprint, urls }) => {
            let fpr: String = fingerprint
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_uppercase();
            Some(
                if fpr.len() == 40 && fpr.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(Pin {
                        name: None,
                        fingerprint: fpr,
                        urls: urls.clone(),
                    })
                } else {
                    Err(KeyError::BadFingerprint {
                        value: fingerprint.clone(),
                    })
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_normalised_and_checked() {
        let spec = |f: &str| {
            KeySpec::Pinned(PinnedKey {
                fingerprint: f.into(),
                urls: vec![],
            })
        };
        let pin = pin_of(&spec("13eb bdbe de7a 1277 5dfd  b1ba bb57 2e0e 2d18 2910"))
            .unwrap()
            .unwrap();
        assert_eq!(pin.fingerprint, "13EBBDBEDE7A12775DFDB1BABB572E0E2D182910");
        let err = pin_of(&spec("0xBB572E0E2D182910")).unwrap().unwrap_err();
        assert_eq!(
            err.to_string(),
            "the fingerprint '0xBB572E0E2D182910' in [sources] keys is not 40 hex digits"
        );
        assert!(pin_of(&KeySpec::Named("keys/mine.asc".into())).is_none());
        let gentoo = pin_of(&KeySpec::Named("gentoo-snapshot".into()))
            .unwrap()
            .unwrap();
        assert_eq!(
            gentoo.fingerprint,
            "DCD05B71EAB94199527F44ACDB6B8C1F96D8BF6D"
        );
    }
}
