//! Writing an image into the OCI layout with the OCI writer (`oci::commit`):
//! its parent's layer descriptors, byte for byte, plus one layer made from
//! /emerge-root, the config from image.toml over the parent's, the input
//! digest and the standard annotations (annotate.rs) on the manifest, and
//! the image's SBOMs attached to it (sbom).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oci_spec::image::ImageManifest;

use super::annotate::Facts;
use super::plan::ANNOTATION;
use crate::layouts::ImageSettings;
use crate::oci::{self, CommitOptions, ImageFlags};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Oci(#[from] oci::Error),
    #[error("cannot open the OCI layout {}", dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: Box<oci::Error>,
    },
    /// A blob of the image is missing or corrupt: `owner` is the image
    /// that wrote it, to rebuild.
    #[error("the image {id} in {} is damaged", dir.display())]
    Damaged {
        id: String,
        dir: PathBuf,
        owner: String,
        #[source]
        source: Box<oci::Error>,
    },
    #[error("cannot write {reference} into {}", dir.display())]
    Write {
        reference: String,
        dir: PathBuf,
        #[source]
        source: Box<oci::Error>,
    },
    #[error("cannot name {reference} in {}", index.display())]
    Name {
        reference: String,
        index: PathBuf,
        #[source]
        source: Box<oci::Error>,
    },
}

/// The boxed sources keep the error small, and hide the `oci::Error` from
/// the chain: [`Error::fix`] asks it for its fix.
impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Oci(e) => e.fix(),
            Error::Damaged { owner, .. } => Some(format!(
                "rebuild the image that wrote it, then this one: kiln build {owner} --force"
            )),
            Error::Open { source, .. }
            | Error::Write { source, .. }
            | Error::Name { source, .. } => source.fix(),
        }
    }
}

pub struct Layout {
    pub dir: PathBuf,
    oci: oci::Layout,
}

/// An image's entry in the layout.
#[derive(Debug, Clone)]
pub struct Entry {
    pub digest: String,
    pub manifest: ImageManifest,
    /// The input digest it was built from.
    pub input: Option<String>,
}

/// An image's sizes for the build summary, compressed as stored.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub layers: usize,
    /// Its own (top) layer.
    pub top: u64,
    /// Every layer: what a pull of the image into an empty store fetches.
    pub image: u64,
}

impl Entry {
    pub fn sizes(&self) -> Sizes {
        let layers = self.manifest.layers();
        Sizes {
            layers: layers.len(),
            top: layers.last().map_or(0, |l| l.size()),
            image: layers.iter().map(|l| l.size()).sum(),
        }
    }
}

impl Layout {
    pub fn open(dir: &Path) -> Result<Layout, Error> {
        let oci = oci::Layout::open_or_create(dir).map_err(|source| Error::Open {
            dir: dir.to_path_buf(),
            source: Box::new(source),
        })?;
        Ok(Layout {
            dir: dir.to_path_buf(),
            oci,
        })
    }

    pub fn find(&self, reference: &str) -> Result<Option<Entry>, Error> {
        let Some(info) = self.oci.refs()?.into_iter().find(|r| r.name == reference) else {
            return Ok(None);
        };
        let digest = info.manifest.digest().to_string();
        let manifest = self.oci.read_manifest(&digest)?;
        Ok(Some(Entry {
            input: manifest
                .annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION))
                .cloned(),
            manifest,
            digest,
        }))
    }

    /// Checks every blob of the image `id` (its layout entry `entry`) before
    /// a build takes it as cached or builds a child on it. A bad blob names
    /// the image to rebuild: `id` for its manifest, config or top layer, its
    /// `parent` for a layer it has from the parent.
    pub fn verify(&self, entry: &Entry, id: &str, parent: Option<&str>) -> Result<(), Error> {
        let Err(err) = self.oci.verify_image(&entry.digest) else {
            return Ok(());
        };
        let Some(bad) = err.bad_blob().map(str::to_string) else {
            return Err(err.into());
        };
        let layers = entry.manifest.layers();
        let inherited = layers
            .iter()
            .rev()
            .skip(1)
            .any(|d| d.digest().as_ref() == bad);
        let owner = parent.filter(|_| inherited).unwrap_or(id);
        Err(Error::Damaged {
            id: id.to_string(),
            dir: self.dir.clone(),
            owner: owner.to_string(),
            source: Box::new(err),
        })
    }

    /// Writes `root` as a layer on top of the parent of `facts` (a ref of
    /// the layout) with the image's config: the blobs only; [`Layout::name`]
    /// then names it.
    pub fn write(
        &self,
        root: &Path,
        image: &ImageSettings,
        input: &str,
        facts: &Facts<'_>,
    ) -> Result<oci::CommitResult, Error> {
        let mut opts = CommitOptions::new(root, &self.dir, &image.reference);
        opts.parent = facts.parent.map(|(name, _)| name.to_string());
        opts.compression = image.compression;
        let c = &image.config;
        opts.flags = ImageFlags {
            cmd: c.cmd.clone(),
            entrypoint: c.entrypoint.clone(),
            env: c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            labels: facts
                .labels()
                .into_iter()
                .chain(c.labels.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect(),
            user: c.user.clone(),
            workdir: c.workdir.clone(),
            expose: c.ports.clone(),
            volumes: c.volumes.clone(),
        };
        opts.annotations = facts.annotations().into_iter().collect();
        opts.annotations
            .push((ANNOTATION.to_string(), input.to_string()));
        opts.created = Some(facts.created);
        opts.created_by = format!("kiln build {}: {}", image.id, image.packages.join(" "));
        oci::write_image(&opts).map_err(|source| Error::Write {
            reference: image.reference.clone(),
            dir: self.dir.clone(),
            source: Box::new(source),
        })
    }

    /// Points the image's reference at what [`Layout::write`] wrote, with
    /// the documents attached to it: the build's last step.
    pub fn name(
        &self,
        written: &oci::CommitResult,
        attachments: &[oci::Attachment],
    ) -> Result<(), Error> {
        oci::name_image(&self.dir, written, attachments).map_err(|source| Error::Name {
            reference: written.reference.clone(),
            index: self.dir.join("index.json"),
            source: Box::new(source),
        })
    }
}
