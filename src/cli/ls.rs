//! `kiln ls`: the images of an OCI layout, their sizes, and which image each
//! one extends (its parent's layers are a prefix of its own), and with
//! `--check` the strict checker over the whole layout.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::HintExt;
use crate::oci::{self, Layout};
use crate::printer::Printer;

/// List the images of an OCI layout with sizes and parents.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln ls --layout oci
  kiln ls --layout oci --json | jq '.[].ref'
  kiln ls --layout oci --check     # verify every blob, layer and rule; exit 1 on a problem")]
pub struct Args {
    /// The OCI image layout to list.
    #[arg(long, value_name = "DIR", default_value = "oci")]
    pub layout: PathBuf,
    /// Print a JSON array on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also verify the layout strictly: every blob's digest and size, media
    /// types, diff_ids, history, canonical JSON, and sorted, unique, relative
    /// tar entries. Exit status 1 when a problem is found.
    #[arg(long)]
    pub check: bool,
}

#[derive(serde::Serialize)]
struct Row {
    #[serde(rename = "ref")]
    name: String,
    manifest: String,
    layers: usize,
    size: u64,
    extends: Option<String>,
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let layout =
        Layout::open(&args.layout).hint("give --layout the directory kiln commit wrote")?;
    let mut images = Vec::new();
    for r in layout.refs()? {
        let manifest = layout.read_manifest(r.manifest.digest().as_ref())?;
        let layers: Vec<String> = manifest
            .layers()
            .iter()
            .map(|l| l.digest().to_string())
            .collect();
        let size = manifest.layers().iter().map(|l| l.size()).sum();
        images.push((r, layers, size));
    }
    let rows: Vec<Row> = images
        .iter()
        .map(|(r, layers, size)| {
            let extends = images
                .iter()
                .filter(|(_, other, _)| other.len() < layers.len() && layers.starts_with(other))
                .max_by_key(|(_, other, _)| other.len())
                .map(|(p, _, _)| p.name.clone());
            Row {
                name: r.name.clone(),
                manifest: r.manifest.digest().to_string(),
                layers: layers.len(),
                size: *size,
                extends,
            }
        })
        .collect();
    if args.json {
        printer.out(serde_json::to_string_pretty(&rows)?);
    } else {
        let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(3).max(3);
        printer.out(format!(
            "{:width$}  {:<19}  {:>6}  {:>10}  EXTENDS",
            "REF", "MANIFEST", "LAYERS", "SIZE"
        ));
        for r in &rows {
            let short = r.manifest.strip_prefix("sha256:").unwrap_or(&r.manifest);
            printer.out(format!(
                "{:width$}  sha256:{:<12}  {:>6}  {:>10}  {}",
                r.name,
                &short[..12.min(short.len())],
                r.layers,
                r.size,
                r.extends.as_deref().unwrap_or("-")
            ));
        }
    }
    if args.check {
        let report = oci::fsck(&args.layout)?;
        for p in &report.problems {
            printer.error_line(p);
        }
        if !report.damaged.is_empty() {
            printer.hint(
                "a corrupt or missing blob is not repaired in place: build the images that \
                 use it again (`kiln build --force NS/IMAGE` writes their blobs anew), \
                 or restore the layout from a backup",
            );
        }
        if !report.is_ok() {
            printer.info(format!(
                "{} problem{} found in {}",
                report.problems.len(),
                super::project::plural(report.problems.len()),
                args.layout.display()
            ));
            return Ok(ExitCode::FAILURE);
        }
        printer.status(
            "Checked",
            format!(
                "{} refs, {} blobs, {} layers: no problems",
                report.refs, report.blobs, report.layers
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}
