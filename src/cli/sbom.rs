//! `kiln sbom`: print a document attached to an image of an OCI layout
//! (its SPDX or CycloneDX SBOM, or its provenance), as `kiln build`
//! attached it (docs/sbom.md). It reads
//! the layout only, so it works on a layout copied to another machine.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::{HintExt, hinted};
use crate::oci::Layout;
use crate::printer::Printer;
use crate::sbom;

/// Print an image's SBOM from the OCI layout.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln sbom demo/hello:latest --layout oci
  kiln sbom demo/hello:latest --layout oci | jq '.packages[].name'
  kiln sbom demo/hello:latest --layout oci --format cyclonedx
  kiln sbom demo/hello:latest --layout oci --format provenance")]
pub struct Args {
    /// The image's ref in the layout.
    #[arg(value_name = "REF")]
    pub reference: String,
    /// The OCI image layout holding the image.
    #[arg(long, value_name = "DIR", default_value = "oci")]
    pub layout: PathBuf,
    /// Which document.
    #[arg(long, value_enum, default_value = "spdx")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
    /// An in-toto statement with a SLSA v1 provenance predicate.
    Provenance,
}

impl Format {
    fn artifact_type(self) -> &'static str {
        match self {
            Format::Spdx => sbom::SPDX_MEDIA_TYPE,
            Format::Cyclonedx => sbom::CYCLONEDX_MEDIA_TYPE,
            Format::Provenance => sbom::PROVENANCE_MEDIA_TYPE,
        }
    }
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let layout = Layout::open(&args.layout).hint("give --layout the directory kiln build wrote")?;
    let kind = args.format.artifact_type();
    let mut found = layout.attached(&args.reference, kind)?;
    let Some(doc) = found.pop() else {
        return Err(hinted(
            format!(
                "{} in {} has no {kind} document attached",
                args.reference,
                args.layout.display()
            ),
            "kiln build attaches one to every image it builds: rebuild the image with kiln build NS/IMAGE --force",
        ));
    };
    let text = String::from_utf8_lossy(&doc);
    printer.out(text.trim_end());
    Ok(ExitCode::SUCCESS)
}
