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
    /// Trusted signing keys: a shipped key's name (`gentoo-release`,
    /// `gentoo-snapshot`) or a path to an armored public key, relative to
    /// the project root.
    pub keys: Vec<String>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            mirrors: vec!["https://distfiles.gentoo.org".into()],
            arch: "amd64".into(),
            flavour: "openrc".into(),
            snapshot: "gentoo-latest.tar.xz".into(),
            keys: vec!["gentoo-release".into(), "gentoo-snapshot".into()],
        }
    }
}
