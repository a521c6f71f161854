//! The `[sources]` table of `kiln.toml`: where the stage3 and the portage
//! snapshot come from and which OpenPGP keys may sign them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct Sources {
    /// Mirrors, tried in order: `https://`, `http://`, `file://` or a plain path.
    pub mirrors: Vec<String>,
    /// Gentoo arch of the stage3 (`releases/<arch>/autobuilds/`).
    pub arch: String,
    /// stage3 flavour: `stage3-<arch>-<flavour>-<timestamp>.tar.xz`.
    pub flavour: String,
    /// Snapshot file name under `snapshots/`.
    pub snapshot: String,
    /// Trusted signing keys: the name of one of Gentoo's keys
    /// (`gentoo-release`, `gentoo-snapshot`), a path to a public key file
    /// relative to the project root, or a key to download and pin.
    pub keys: Vec<KeySpec>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            mirrors: vec!["https://distfiles.gentoo.org".into()],
            arch: "amd64".into(),
            flavour: "openrc".into(),
            snapshot: "gentoo-latest.tar.xz".into(),
            keys: vec![
                KeySpec::Named("gentoo-release".into()),
                KeySpec::Named("gentoo-snapshot".into()),
            ],
        }
    }
}

/// One entry of `[sources] keys`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "a key name (\"gentoo-release\", \"gentoo-snapshot\"), a path to a public key \
                 file, or { fingerprint = \"...\", urls = [\"https://...\"] }"
)]
pub enum KeySpec {
    /// One of Gentoo's keys by name, or a path to a public key file.
    Named(String),
    /// A key kiln downloads from `urls` and trusts only with this
    /// fingerprint.
    Pinned(PinnedKey),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedKey {
    /// The primary key's full fingerprint (40 hex digits, spaces allowed).
    pub fingerprint: String,
    /// Where to download it (WKD or a keyserver's `op=get`), tried in order.
    pub urls: Vec<String>,
}
