//! The `[sources]` table of `kiln.toml`: where the stage3 and the portage
//! snapshot come from and which OpenPGP keys may sign them.

use std::path::{Path, PathBuf};

use anyhow::Context;
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

/// Only the `[sources]` table of kiln.toml; the other tables belong to the
/// project loader (layouts), which will replace this stand-in.
#[derive(Debug, Default, Deserialize)]
struct ProjectSources {
    #[serde(default)]
    sources: Sources,
}

/// The project directory and its `[sources]`: from `config` (a kiln.toml
/// path) or `./kiln.toml`. A missing `./kiln.toml` means the defaults.
pub fn load(config: Option<&Path>) -> anyhow::Result<(PathBuf, Sources)> {
    let path = config.map_or_else(|| PathBuf::from("kiln.toml"), Path::to_path_buf);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && config.is_none() => {
            return Ok((dir, Sources::default()));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let parsed: ProjectSources =
        toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    Ok((dir, parsed.sources))
}
