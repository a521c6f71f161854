//! `kiln commit`: plumbing that turns a directory into an image layer on top
//! of a parent, in an OCI layout. A thin shell over [`oci::commit`], which
//! `kiln build` calls directly.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::hinted;
use crate::oci::{self, CommitOptions, Compression, IdMap, ImageFlags, LayerOptions};
use crate::printer::Printer;

/// Plumbing: turn a directory into an image layer on top of a parent, in an OCI layout.
///
/// The layer holds ROOTFS's contents, sorted, with owners, modes, xattrs and
/// links as they are. The image's layers are the parent's (the very same
/// blobs) plus this one; its config is the parent's with the flags applied.
/// The same tree gives the same digests on any machine and day.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln commit ./root --layout oci --ref demo/base:1
  kiln commit ./upper --layout oci --ref demo/app:1 --parent demo/base:1 \\
      --overlay-upper --cmd '[\"/bin/app\",\"--serve\"]' --env MODE=prod --expose 8080
  SOURCE_DATE_EPOCH=1700000000 kiln commit ./root --layout oci --ref x --json")]
pub struct Args {
    /// The directory whose contents become the layer.
    pub rootfs: PathBuf,
    /// The OCI image layout to write into; created if missing or empty.
    #[arg(long, value_name = "DIR")]
    pub layout: PathBuf,
    /// The name to give the image in the layout, e.g. `acme/nginx:1.25`.
    #[arg(long = "ref", value_name = "NAME[:TAG]")]
    pub reference: String,
    /// An image of the same layout to put the layer on top of.
    #[arg(long, value_name = "REF")]
    pub parent: Option<String>,
    /// Layer compression; gzip is what every consumer reads.
    #[arg(long, value_enum, default_value_t = Compression::Gzip)]
    pub compression: Compression,
    #[command(flatten)]
    pub config: Box<ConfigArgs>,
    /// ROOTFS is an overlayfs upper directory: its whiteouts (0:0 character
    /// devices, opaque-directory xattrs) become OCI whiteouts.
    #[arg(long)]
    pub overlay_upper: bool,
    /// Created time (Unix seconds or RFC 3339); also clamps file mtimes.
    /// Default: SOURCE_DATE_EPOCH, else the newest mtime in ROOTFS.
    #[arg(long, value_name = "TIME")]
    pub created: Option<String>,
    /// Record owners through a user namespace's uid_map (e.g. /proc/PID/uid_map):
    /// host ids become the ids inside; an id outside the map is an error.
    #[arg(long, value_name = "FILE")]
    pub uid_map: Option<PathBuf>,
    /// Like --uid-map for groups.
    #[arg(long, value_name = "FILE")]
    pub gid_map: Option<PathBuf>,
    /// Print the digests and sizes as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// The image config flags, boxed to keep the command enum small.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Default command: a JSON array (`'["nginx","-g","daemon off;"]'`) or a
    /// string run by `/bin/sh -c`.
    #[arg(long, value_name = "CMD")]
    pub cmd: Option<String>,
    /// Entrypoint, in the same forms as --cmd.
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// Set an environment variable (replaces the parent's value).
    #[arg(long, value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Set a config label.
    #[arg(long, value_name = "KEY=VALUE")]
    pub label: Vec<String>,
    /// Set a manifest annotation.
    #[arg(long, value_name = "KEY=VALUE")]
    pub annotation: Vec<String>,
    /// The user the container runs as (`name`, `uid`, `uid:gid`).
    #[arg(long)]
    pub user: Option<String>,
    /// The working directory of the container.
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Expose a port: `80`, `80/tcp`, `53/udp`.
    #[arg(long, value_name = "PORT")]
    pub expose: Vec<String>,
    /// Declare a volume.
    #[arg(long, value_name = "DIR")]
    pub volume: Vec<String>,
}

fn key_values(flag: &str, values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    hinted(
                        format!("--{flag} {kv:?} is not KEY=VALUE"),
                        format!("write it as --{flag} NAME=value"),
                    )
                })
        })
        .collect()
}

fn command(flag: &str, text: &str) -> anyhow::Result<Vec<String>> {
    if text.trim_start().starts_with('[') {
        serde_json::from_str(text).map_err(|e| {
            hinted(
                format!("--{flag} {text:?} is not a JSON array of strings: {e}"),
                format!("write it as --{flag} '[\"/bin/prog\",\"arg\"]'"),
            )
        })
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), text.into()])
    }
}

pub fn run(args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    let created = match &args.created {
        Some(text) => Some(oci::parse_created(text)?),
        None => crate::epoch::from_env()?,
    };
    let mut opts = CommitOptions::new(&args.rootfs, &args.layout, &args.reference);
    opts.parent = args.parent.clone();
    opts.compression = args.compression;
    opts.created = created;
    opts.annotations = key_values("annotation", &args.config.annotation)?;
    opts.layer = LayerOptions {
        overlay_upper: args.overlay_upper,
        mtime_clamp: created,
        uid_map: args.uid_map.as_deref().map(IdMap::from_file).transpose()?,
        gid_map: args.gid_map.as_deref().map(IdMap::from_file).transpose()?,
    };
    opts.flags = ImageFlags {
        cmd: args
            .config
            .cmd
            .as_deref()
            .map(|c| command("cmd", c))
            .transpose()?,
        entrypoint: args
            .config
            .entrypoint
            .as_deref()
            .map(|c| command("entrypoint", c))
            .transpose()?,
        env: key_values("env", &args.config.env)?,
        labels: key_values("label", &args.config.label)?,
        user: args.config.user.clone(),
        workdir: args.config.workdir.clone(),
        expose: args.config.expose.clone(),
        volumes: args.config.volume.clone(),
    };
    let spinner = printer.spinner("Committing");
    spinner.set_message(args.rootfs.display().to_string());
    let result = oci::commit(&opts).map_err(|e| with_hint(e, &args));
    spinner.finish_and_clear();
    let result = result?;
    for w in &result.warnings {
        printer.warn(w);
    }
    if args.json {
        printer.out(serde_json::to_string_pretty(&result)?);
    } else {
        printer.status(
            "Committed",
            format!(
                "{} {} ({} entries, layer {} bytes)",
                result.reference, result.manifest_digest, result.entries, result.layer_size
            ),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn with_hint(err: oci::Error, args: &Args) -> anyhow::Error {
    use crate::error::HintExt;
    let hint = match &err {
        oci::Error::RootfsMissing(_) | oci::Error::RootfsNotDir(_) => {
            "give the directory whose contents should become the layer".to_string()
        }
        oci::Error::UnknownRef { refs, .. } if refs.is_empty() => {
            "commit the parent image into this layout first".to_string()
        }
        oci::Error::UnknownRef { .. } => {
            "use one of the refs listed, or commit the parent first".to_string()
        }
        oci::Error::NotALayout { .. } => format!(
            "give --layout an empty or missing directory, or an existing OCI layout (not {})",
            args.layout.display()
        ),
        oci::Error::Unreadable { .. } => {
            "run kiln as a user who can read the whole tree".to_string()
        }
        oci::Error::Unmappable { .. } => {
            "chown the file to an id the namespace maps, or widen the map".to_string()
        }
        _ => return err.into(),
    };
    Err::<(), _>(err).hint(hint).unwrap_err()
}
