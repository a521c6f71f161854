//! Writing an image into the OCI layout with the OCI writer (`oci::commit`):
//! its parent's layer descriptors, byte for byte, plus one layer made from
//! /emerge-root, the config from image.toml over the parent's, the input
//! digest and the standard annotations (annotate.rs) on the manifest, and
//! the image's SBOMs attached to it (sbom).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use oci_spec::image::ImageManifest;

use super::annotate::Facts;
use super::plan::ANNOTATION;
use crate::error::HintExt;
use crate::layouts::ImageSettings;
use crate::oci::{self, CommitOptions, ImageFlags};

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
    pub fn open(dir: &Path) -> anyhow::Result<Layout> {
        let oci = oci::Layout::open_or_create(dir)
            .with_context(|| format!("cannot open the OCI layout {}", dir.display()))?;
        Ok(Layout {
            dir: dir.to_path_buf(),
            oci,
        })
    }

    pub fn find(&self, reference: &str) -> anyhow::Result<Option<Entry>> {
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
    pub fn verify(&self, entry: &Entry, id: &str, parent: Option<&str>) -> anyhow::Result<()> {
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
        Err(err)
            .with_hint(|| {
                format!(
                    "rebuild the image that wrote it, then this one: kiln build {owner} --force"
                )
            })
            .with_context(|| format!("the image {id} in {} is damaged", self.dir.display()))
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
    ) -> anyhow::Result<oci::CommitResult> {
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
        oci::write_image(&opts).with_context(|| {
            format!(
                "cannot write {} into {}",
                image.reference,
                self.dir.display()
            )
        })
    }

    /// Points the image's reference at what [`Layout::write`] wrote, with
    /// the documents attached to it: the build's last step.
    pub fn name(
        &self,
        written: &oci::CommitResult,
        attachments: &[oci::Attachment],
    ) -> anyhow::Result<()> {
        oci::name_image(&self.dir, written, attachments).with_context(|| {
            format!(
                "cannot name {} in {}",
                written.reference,
                self.dir.join("index.json").display()
            )
        })
    }
}
