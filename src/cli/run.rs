//! `kiln run`: run a command in an image of an OCI layout (or in a plain
//! rootfs dir), the way `podman run` would, in a rootless container.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::printer::Printer;
use crate::runtime::isolation::Choice;
use crate::runtime::{Bind, Network, RunOptions, Runtime, userns::Mode};
use crate::store::{Image, Store};

/// Run a command in an image of an OCI layout.
///
/// The image's layers are unpacked once into kiln's cache (by diff_id) and
/// overlaid read-only; the command's changes go to a scratch layer that is
/// dropped afterwards. The image's Entrypoint, Cmd, Env, User and WorkingDir
/// are honoured. kiln exits with the command's status (128+N if it was
/// killed by signal N).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  kiln run --layout oci acme/busybox:latest -- sh -c 'id; ls /'
  kiln run -e FOO=bar --volume $PWD:/src:ro -w /src acme/busybox -- cat README.md
  kiln run --network host -it acme/busybox
  kiln run --rootfs ./rootfs -- /bin/sh -c 'echo hi'
  kiln run --explain          (how containers would be run here, and why)")]
pub struct Args {
    /// The OCI image layout holding the image.
    #[arg(long, value_name = "DIR", default_value = "oci", env = "KILN_LAYOUT")]
    pub layout: PathBuf,
    /// Run in this directory (as the only, read-only layer) instead of an image.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Set an environment variable (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Bind-mount a host path (repeatable); `:ro` makes it read-only.
    /// (`-v` is kiln's --verbose, so there is no short form.)
    #[arg(long = "volume", value_name = "HOST:CTR[:ro]")]
    pub volume: Vec<Bind>,
    /// Working directory inside the container (default: the image's).
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// User as `uid[:gid]` or `name[:group]` (default: the image's).
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    /// `none`: own network namespace with only `lo`; `host`: the host's.
    #[arg(long, value_enum, default_value = "none")]
    pub network: Network,
    /// Keep stdin open and pass it to the command.
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Run the command on a terminal (needs kiln's stdin to be one).
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Keep the container's changes (the overlay's upper dir) in DIR instead
    /// of dropping them.
    #[arg(long, value_name = "DIR")]
    pub upper: Option<PathBuf>,
    /// Also write the command's output to this file.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// As root: run without a user namespace (container root = host root).
    #[arg(long)]
    pub no_userns: bool,
    /// How the container is isolated, over kiln.toml's `isolation` [default:
    /// auto, the strongest this place allows; `--explain` says which].
    #[arg(long, value_enum, value_name = "MODE")]
    pub isolation: Option<Choice>,
    /// Say which user-namespace mode, isolation and rootfs kind would be used and why; run nothing.
    #[arg(long)]
    pub explain: bool,
    /// The image: `NAME[:TAG]` as named in the layout's index.json.
    #[arg(value_name = "REF", required_unless_present_any = ["rootfs", "explain"])]
    pub reference: Option<String>,
    /// The command and its arguments (default: the image's Entrypoint + Cmd).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
    /// The project whose cache kiln run shares (kiln.toml's `cache`) [default:
    /// the nearest one up, if any].
    #[command(flatten)]
    pub project: super::project::ProjectArgs,
}

fn merge_env(base: &mut Vec<String>, extra: &[String]) {
    for kv in extra {
        let key = kv.split('=').next().unwrap_or_default();
        base.retain(|e| e.split('=').next() != Some(key));
        base.push(kv.clone());
    }
}

pub fn run(mut args: Args, printer: &Printer) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    if args.tty && !std::io::stdin().is_terminal() {
        return Err(crate::error::hinted(
            "-t needs kiln's stdin to be a terminal",
            "drop -t when piping into kiln",
        ));
    }
    let (cache, isolation) = args.project.runtime_settings(printer, args.isolation)?;
    let store = Store::new(&cache)?;
    let _running = cache.share_runs()?;
    let image = match (&args.rootfs, &args.reference) {
        (Some(_), Some(first)) => {
            // with --rootfs there is no REF: the first word is the command's
            args.command.insert(0, first.clone());
            None
        }
        (None, Some(r)) if !args.explain => Some(Image::open(&args.layout, r)?),
        _ => None,
    };
    let rootfs = match &args.rootfs {
        Some(dir) => {
            Some(std::fs::canonicalize(dir).with_context(|| format!("rootfs {}", dir.display()))?)
        }
        None => None,
    };
    if let Some(dir) = &args.upper {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        args.upper = Some(std::fs::canonicalize(dir)?);
    }
    if let Some(log) = &args.log {
        // made before entering, so it belongs to the caller, not to container root
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening log file {}", log.display()))?;
    }
    // Nothing may start a thread before this point (unshare needs one thread).
    let rt = Runtime::enter(args.no_userns, &cache.scratch(), isolation)?;
    if args.explain {
        printer.out(rt.ns.explain());
        printer.out(rt.isolation.to_string());
        let kind = rt.probe_overlay()?;
        printer.out(format!("rootfs: {}", kind.describe()));
        return Ok(ExitCode::SUCCESS);
    }
    printer.verbose(format!("{}\n{}", rt.ns.explain(), rt.isolation));
    if rt.ns.mode == Mode::Single {
        printer.warn(&rt.ns.why);
    }

    let mut opts = RunOptions {
        env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
        binds: args.volume.clone(),
        network: args.network,
        stdin: args.interactive || args.tty,
        tty: args.tty,
        log: args.log.clone(),
        upper: args.upper.clone(),
        ..Default::default()
    };
    let mut command = args.command.clone();
    if let Some(image) = &image {
        let key = rt.ns.cache_key();
        for layer in image.layers.iter().rev() {
            let (dir, fresh) = store.layer(layer, &key)?;
            if fresh {
                printer.status("Unpacked", &layer.diff_id);
            }
            opts.layers.push(dir);
        }
        if let Some(cfg) = image.config.config() {
            // as podman: the image's Env over a default PATH
            merge_env(&mut opts.env, cfg.env().as_deref().unwrap_or_default());
            opts.cwd = cfg.working_dir().clone().unwrap_or_default();
            opts.user = cfg.user().clone();
            let entry = cfg.entrypoint().clone().unwrap_or_default();
            if command.is_empty() {
                command = cfg.cmd().clone().unwrap_or_default();
            }
            command = entry.into_iter().chain(command).collect();
        }
    }
    if let Some(dir) = rootfs {
        opts.layers.push(dir);
    }
    if command.is_empty() {
        return Err(crate::error::hinted(
            "no command to run: the image has no Entrypoint or Cmd",
            "give one after the image: kiln run REF -- sh",
        ));
    }
    merge_env(&mut opts.env, &args.env);
    if args.tty && !opts.env.iter().any(|e| e.starts_with("TERM=")) {
        opts.env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    if let Some(w) = args.workdir {
        opts.cwd = w;
    }
    if args.user.is_some() {
        opts.user = args.user.clone();
    }
    opts.args = command;
    let exit = rt.run(&opts, printer)?;
    Ok(ExitCode::from(exit.code.clamp(0, 255) as u8))
}
