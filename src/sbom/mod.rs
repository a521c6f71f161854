//! sbom: what is in an image and under which licences, and how it was
//! made, as the documents scanners, auditors and verifiers read (SPDX 2.3
//! and CycloneDX 1.6 JSON, an in-toto statement with SLSA provenance),
//! made from what Portage knows of each package.
//!
//! Why kiln makes them itself: a scanner that reads the image finds nothing
//! (bob-core removes Portage's database, whose volatile files would break
//! reproducibility), while the build knows more than any scanner could
//! guess: USE flags, slot, repository, the licence per package and the
//! distfiles with their Manifest SHA512. bob-core writes that per layer
//! (`out/packages.json`); kiln adds the layer's digest and the parent's
//! layers (`out/inventory.json`, one builder state per image, so a child
//! finds its parent's list beside the parent's package.installed) and
//! renders the documents, deterministic bytes for the same build. `oci`
//! attaches them to the image's manifest; docs/sbom.md says what is where.

mod cyclonedx;
mod license;
mod provenance;
mod spdx;

pub use cyclonedx::{CYCLONEDX_FILE, CYCLONEDX_MEDIA_TYPE, cyclonedx};
use license::expression;
pub use provenance::{Build, PROVENANCE_FILE, PROVENANCE_MEDIA_TYPE, provenance};
pub use spdx::{SPDX_FILE, SPDX_MEDIA_TYPE, spdx};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::WriteError;

/// bob-core's per-layer list.
pub const PACKAGES_FILE: &str = "packages.json";
/// Every layer's list, kiln's, beside it in the same `out` dir.
pub const INVENTORY_FILE: &str = "inventory.json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not the package list bob-core and kiln write: {reason}")]
    Parse { path: PathBuf, reason: String },
    /// inventory.json is in the cache: a failed write reads as every
    /// other write to kiln's own files (error.rs).
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// One installed package, as bob-core reads it from `/var/db/pkg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub category: String,
    pub pf: String,
    pub pn: String,
    pub pvr: String,
    pub slot: String,
    #[serde(rename = "use")]
    pub use_enabled: Vec<String>,
    pub use_disabled: Vec<String>,
    /// Gentoo's LICENSE, USE conditionals already resolved by Portage.
    pub license: String,
    pub homepage: String,
    pub description: String,
    pub repository: String,
    pub size: u64,
    #[serde(default)]
    pub chost: String,
    #[serde(default)]
    pub cflags: String,
    pub distfiles: Vec<Distfile>,
}

impl Package {
    /// `+on -off`, as PACKAGES.md and `emerge -v` show them.
    pub fn use_flags(&self) -> String {
        let on = self.use_enabled.iter().map(|f| format!("+{f}"));
        let off = self.use_disabled.iter().map(|f| format!("-{f}"));
        on.chain(off).collect::<Vec<_>>().join(" ")
    }
}

/// A source file of a package, with what the repository's Manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distfile {
    pub name: String,
    pub size: u64,
    /// Empty when the Manifest does not list it.
    pub sha512: String,
}

/// One layer of an image and the packages it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layer {
    /// The image (`ns/name`) whose build made the layer.
    pub image: String,
    /// The compressed blob's digest, as the manifest lists it.
    pub digest: String,
    pub diff_id: String,
    pub packages: Vec<Package>,
    /// The make.conf and package.* files the layer's build had in force,
    /// by their path under /etc/portage.
    #[serde(default)]
    pub portage: BTreeMap<String, String>,
}

/// Every layer of an image, bottom first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub layers: Vec<Layer>,
}

#[derive(Deserialize)]
struct PackagesFile {
    packages: Vec<Package>,
    #[serde(default)]
    portage: BTreeMap<String, String>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl Inventory {
    /// The parent's layers (its `out` dir; `None` for scratch) and the new
    /// layer of `image` from bob-core's list in `out`; the new layer's
    /// digests are set by [`Inventory::set_top`] once it is written.
    pub fn load(parent_out: Option<&Path>, out: &Path, image: &str) -> Result<Inventory, Error> {
        let mut inventory = match parent_out {
            Some(dir) => read_json(&dir.join(INVENTORY_FILE))?,
            None => Inventory::default(),
        };
        let own: PackagesFile = read_json(&out.join(PACKAGES_FILE))?;
        inventory.layers.push(Layer {
            image: image.to_string(),
            digest: String::new(),
            diff_id: String::new(),
            packages: own.packages,
            portage: own.portage,
        });
        Ok(inventory)
    }

    pub fn set_top(&mut self, digest: &str, diff_id: &str) {
        if let Some(top) = self.layers.last_mut() {
            top.digest = digest.to_string();
            top.diff_id = diff_id.to_string();
        }
    }

    /// Writes `out/inventory.json`, for the images built on this one.
    pub fn save(&self, out: &Path) -> Result<(), Error> {
        let path = out.join(INVENTORY_FILE);
        let mut bytes = serde_json::to_vec_pretty(self).expect("an inventory serialises");
        bytes.push(b'\n');
        std::fs::write(&path, bytes).map_err(|e| WriteError::new(&path, e).into())
    }

    pub fn packages(&self) -> impl Iterator<Item = (usize, &Layer, &Package)> {
        self.layers
            .iter()
            .enumerate()
            .flat_map(|(i, l)| l.packages.iter().map(move |p| (i, l, p)))
    }

    /// The SPDX expression of every package's licence, each licence once,
    /// sorted: the image's `org.opencontainers.image.licenses`.
    pub fn licenses(&self) -> String {
        let mut all: Vec<String> = self
            .packages()
            .map(|(_, _, p)| expression(&p.license))
            .filter(|e| !e.is_empty())
            .map(|e| if e.contains(' ') { format!("({e})") } else { e })
            .collect();
        all.sort();
        all.dedup();
        all.join(" AND ")
    }
}

/// What a document says about the image itself.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    /// The image's ref in the layout.
    pub reference: &'a str,
    pub manifest_digest: &'a str,
    pub created: i64,
}

/// The package URL of a Gentoo package: type `ebuild`, namespace the
/// category, as syft and grype name them (docs/sbom.md).
pub fn purl(p: &Package) -> String {
    let mut purl = format!("pkg:ebuild/{}/{}@{}", p.category, p.pn, p.pvr);
    if !p.repository.is_empty() && p.repository != "gentoo" {
        purl.push_str(&format!("?repository={}", p.repository));
    }
    purl
}
