//! `oci::commit`: one directory becomes one layer on top of a parent image,
//! and the new image is named in the layout. This is the library call that
//! `kiln commit` and `kiln build` both use; `kiln build` makes the two steps
//! apart ([`write_image`], then [`name_image`]), so that it names the image
//! only once its builder state is saved too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::image::{Descriptor, MediaType};
use serde_json::json;

use super::compress::LayerSink;
use super::image::{ImageFlags, build_config};
use super::layer::{LayerOptions, write_tar};
use super::{Compression, Error, IoContext, Layout, Result, check_ref_name, json, media};

/// Everything one commit needs.
#[derive(Debug, Clone)]
pub struct CommitOptions {
    pub rootfs: PathBuf,
    pub layout: PathBuf,
    /// The name to give the image, e.g. `acme/nginx:1.25`.
    pub reference: String,
    /// An image of the same layout to build on.
    pub parent: Option<String>,
    pub compression: Compression,
    pub layer: LayerOptions,
    pub flags: ImageFlags,
    /// Manifest annotations.
    pub annotations: Vec<(String, String)>,
    /// Unix seconds for `created`; `None`: the newest mtime in the layer,
    /// so the same tree gives the same digests on any day.
    pub created: Option<i64>,
    /// The history entry's `created_by`.
    pub created_by: String,
    /// Compression threads (see [`super::thread_count`]).
    pub threads: usize,
}

impl CommitOptions {
    pub fn new(rootfs: impl Into<PathBuf>, layout: impl Into<PathBuf>, reference: &str) -> Self {
        CommitOptions {
            rootfs: rootfs.into(),
            layout: layout.into(),
            reference: reference.to_string(),
            parent: None,
            compression: Compression::Gzip,
            layer: LayerOptions::default(),
            flags: ImageFlags::default(),
            annotations: Vec::new(),
            created: None,
            created_by: "kiln commit".into(),
            threads: super::thread_count(),
        }
    }
}

/// What a commit wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitResult {
    pub reference: String,
    pub manifest_digest: String,
    pub manifest_size: u64,
    pub config_digest: String,
    pub config_size: u64,
    pub layer_digest: String,
    pub layer_size: u64,
    pub diff_id: String,
    pub uncompressed_size: u64,
    pub media_type: String,
    pub entries: u64,
    /// How many layers the image has: its parent's and the new one.
    pub layers: usize,
    /// The compressed size of all of them: what a pull into an empty store
    /// fetches.
    pub image_size: u64,
    /// Things left out, such as sockets.
    pub warnings: Vec<String>,
}

pub fn commit(opts: &CommitOptions) -> Result<CommitResult> {
    let written = write_image(opts)?;
    name_image(&opts.layout, &written, &[])?;
    Ok(written)
}

/// Names a written image in its layout, with the artifacts attached to it
/// (artifact.rs): the one change of index.json.
pub fn name_image(
    layout: &std::path::Path,
    written: &CommitResult,
    attachments: &[super::Attachment],
) -> Result<()> {
    let layout = Layout::open(layout)?;
    let manifest = Descriptor::new(
        MediaType::ImageManifest,
        written.manifest_size,
        digest(&written.manifest_digest)?,
    );
    let attached = super::artifact::attach(&layout, &manifest, attachments)?;
    let lock = layout.lock()?;
    layout.set_ref(&lock, &written.reference, &manifest, &attached)
}

/// Writes the layer, config and manifest blobs of an image; the layout's
/// refs stay as they were (unreferenced blobs are harmless).
pub fn write_image(opts: &CommitOptions) -> Result<CommitResult> {
    check_ref_name(&opts.reference).map_err(|reason| Error::BadRef {
        name: opts.reference.clone(),
        reason,
    })?;
    if !opts.rootfs.exists() {
        return Err(Error::RootfsMissing(opts.rootfs.clone()));
    }
    if !opts.rootfs.is_dir() {
        return Err(Error::RootfsNotDir(opts.rootfs.clone()));
    }
    // A parent must already be there: never create a layout only to fail.
    let layout = if opts.parent.is_some() {
        Layout::open(&opts.layout).map_err(|e| match e {
            Error::NotALayout { .. } if !opts.layout.exists() => Error::UnknownRef {
                name: opts.parent.clone().unwrap_or_default(),
                layout: opts.layout.clone(),
                refs: Vec::new(),
            },
            e => e,
        })?
    } else {
        Layout::open_or_create(&opts.layout)?
    };
    layout.clean_stale();
    // A damaged index.json fails the commit before any blob is written.
    layout.read_index()?;

    // The parent's blobs are checked, not only named: the new manifest
    // copies its layer descriptors, and must not point at a bad blob.
    let parent = match &opts.parent {
        Some(name) => {
            let desc = layout.resolve(name)?;
            layout.verify_image(desc.digest().as_ref())?;
            let manifest = layout.read_manifest(desc.digest().as_ref())?;
            let config_bytes = layout.read_blob(manifest.config().digest().as_ref())?;
            let config: serde_json::Value =
                serde_json::from_slice(&config_bytes).map_err(|e| Error::Invalid {
                    what: format!("config of parent image {name}"),
                    message: e.to_string(),
                })?;
            Some((manifest, config))
        }
        None => None,
    };

    let mut layer_opts = opts.layer.clone();
    if layer_opts.mtime_clamp.is_none() {
        layer_opts.mtime_clamp = opts.created;
    }
    let blob = layout.blob_writer()?;
    let mut sink = LayerSink::new(blob, opts.compression, opts.threads)
        .io_ctx(|| "starting the compressor".into())?;
    let stats = write_tar(&opts.rootfs, &layer_opts, &mut sink)?;
    let (blob, diff_id, uncompressed_size) = sink
        .finish()
        .io_ctx(|| format!("compressing the layer of {}", opts.rootfs.display()))?;
    let layer = blob.finish()?;
    let created = opts.created.unwrap_or(stats.newest_mtime);

    let config = build_config(
        parent.as_ref().map(|(_, c)| c.clone()),
        &opts.flags,
        &diff_id,
        created,
        &opts.created_by,
    );
    let config_blob = layout.write_blob(&json::to_canonical(&config))?;

    let mut layers: Vec<Descriptor> = parent
        .as_ref()
        .map(|(m, _)| m.layers().clone())
        .unwrap_or_default();
    layers.push(Descriptor::new(
        MediaType::from(opts.compression.media_type()),
        layer.size,
        digest(&layer.digest)?,
    ));
    let layer_count = layers.len();
    let image_size = layers.iter().map(|l| l.size()).sum();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::MANIFEST,
        "config": {"mediaType": media::CONFIG, "digest": config_blob.digest, "size": config_blob.size},
        "layers": layers,
    });
    if !opts.annotations.is_empty() {
        let a: BTreeMap<&str, &str> = opts
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        manifest["annotations"] = json!(a);
    }
    let manifest_blob = layout.write_blob(&json::to_canonical(&manifest))?;

    Ok(CommitResult {
        reference: opts.reference.clone(),
        manifest_digest: manifest_blob.digest,
        manifest_size: manifest_blob.size,
        config_digest: config_blob.digest,
        config_size: config_blob.size,
        layer_digest: layer.digest,
        layer_size: layer.size,
        diff_id,
        uncompressed_size,
        media_type: opts.compression.media_type().to_string(),
        entries: stats.entries,
        layers: layer_count,
        image_size,
        warnings: stats.warnings,
    })
}

fn digest(s: &str) -> Result<oci_spec::image::Digest> {
    s.parse()
        .map_err(|e: oci_spec::OciSpecError| Error::Invalid {
            what: format!("digest {s}"),
            message: e.to_string(),
        })
}
