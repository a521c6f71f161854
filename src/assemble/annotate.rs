//! The standard `org.opencontainers.image.*` annotations on every manifest
//! kiln builds, and the config labels of the same name that `podman
//! inspect`, `docker inspect` and registries' web pages show (they read
//! labels, not manifest annotations).
//!
//! `created` is the build's time (epoch.rs), `base.name` and `base.digest`
//! the parent, `licenses` the SPDX expression of every package in the
//! image, `title` and `description` from image.toml, and `version`,
//! `revision` and `source` from git when the project is a checkout. The git
//! ones are not part of the input digest (a commit that changes no input
//! does not rebuild the stack), so they tell the checkout that built the
//! image, not the latest one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::layouts::ImageSettings;

const PREFIX: &str = "org.opencontainers.image.";

/// What git says about the project's checkout.
#[derive(Debug, Clone, Default)]
pub struct Git {
    pub revision: String,
    /// `git describe --tags --always`.
    pub version: String,
    /// The `origin` remote, when there is one.
    pub source: Option<String>,
}

impl Git {
    /// `None` when `root` is not in a git checkout or git is not installed.
    pub fn read(root: &Path) -> Option<Git> {
        let git = |args: &[&str]| -> Option<String> {
            let out = Command::new("git")
                .arg("-C")
                .arg(root)
                .args(args)
                .output()
                .ok()?;
            let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
            (out.status.success() && !text.is_empty()).then_some(text)
        };
        Some(Git {
            revision: git(&["rev-parse", "HEAD"])?,
            version: git(&["describe", "--tags", "--always"])?,
            source: git(&["config", "--get", "remote.origin.url"]),
        })
    }
}

/// What the annotations are made from.
pub struct Facts<'a> {
    pub image: &'a ImageSettings,
    /// The parent's ref and manifest digest.
    pub parent: Option<(&'a str, &'a str)>,
    pub created: i64,
    /// SPDX expression of the image's packages (sbom).
    pub licenses: &'a str,
    pub git: Option<&'a Git>,
}

impl Facts<'_> {
    /// The manifest's annotations, by their full key.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        let mut a = self.labels();
        a.insert(
            format!("{PREFIX}created"),
            crate::oci::format_rfc3339(self.created),
        );
        if let Some((name, digest)) = self.parent {
            a.insert(format!("{PREFIX}base.name"), name.to_string());
            a.insert(format!("{PREFIX}base.digest"), digest.to_string());
        }
        a
    }

    /// The labels users expect (title, description, licenses, and git's);
    /// image.toml's own `[labels]` win over them.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            if !value.is_empty() {
                l.insert(format!("{PREFIX}{key}"), value.to_string());
            }
        };
        put("title", &self.image.id);
        put(
            "description",
            self.image.description.as_deref().unwrap_or_default(),
        );
        put("licenses", self.licenses);
        if let Some(git) = self.git {
            put("revision", &git.revision);
            put("version", &git.version);
            put("source", git.source.as_deref().unwrap_or_default());
        }
        for (key, value) in &self.image.config.labels {
            if l.contains_key(key) {
                l.insert(key.clone(), value.clone());
            }
        }
        l
    }
}
