//! The post-build test hook: an image may ship a `test.sh` beside its
//! image.toml, or another script named by its `test` key (kubler's
//! build-test.sh). After its build, before anything is
//! written to the layout, kiln runs it in a container of the new image
//! itself (its fresh root over its parent image's layers, the image's Env),
//! so what is tested is what ships. It runs by its `#!` line, so its
//! interpreter must be in the image. A non-zero exit fails the build and
//! leaves the layout and the builder states as they were.

use std::fs;
use std::path::{Path, PathBuf};

use super::run;
use crate::error::hinted;
use crate::layouts::ImageSettings;
use crate::printer::Printer;
use crate::runtime::{Network, RunOptions, Runtime};
use crate::store::{Image, Store};

/// The script run when image.toml names none with `test`.
const DEFAULT: &str = "test.sh";

/// Where the script is seen in the container.
const MOUNTED: &str = "/kiln/test.sh";

pub struct Test<'a> {
    pub image: &'a ImageSettings,
    /// The image's new layer, as emerged and slimmed.
    pub root: &'a Path,
    /// The layout and reference of the parent image, if any.
    pub parent: Option<(&'a Path, &'a str)>,
    pub cache: &'a crate::cache::Cache,
    pub log: &'a Path,
    pub live: bool,
}

impl Test<'_> {
    /// Runs test.sh if the image has one; `Ok(false)` when it has none.
    pub fn run(&self, rt: &Runtime, printer: &Printer) -> anyhow::Result<bool> {
        let script = match &self.image.test {
            Some(named) => named.clone(),
            None => self.image.dir.join(DEFAULT),
        };
        if !script.is_file() {
            return Ok(false);
        }
        let mut args = interpreter(&script)?;
        let interpreter = args[0].clone();
        // Run by its interpreter, so it needs no exec bit.
        args.push(MOUNTED.into());
        printer.status("Testing", format!("image {}", self.image.id));
        let mut layers = vec![self.root.to_path_buf()];
        layers.extend(self.parent_layers(rt, printer)?);
        let mut env = vec![run::PATH.to_string()];
        env.extend(
            self.image
                .config
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}")),
        );
        let _ = fs::remove_file(self.log);
        let opts = RunOptions {
            layers,
            args,
            env,
            cwd: "/".into(),
            binds: vec![run::bind(&script, MOUNTED, false)],
            network: Network::None,
            log: Some(self.log.to_path_buf()),
            silent: !self.live,
            ..Default::default()
        };
        let code = rt.run(&opts, printer)?.code;
        if code != 0 {
            return Err(hinted(
                format!(
                    "the test of image {} failed: {} exited with {code}:\n{}",
                    self.image.id,
                    script.display(),
                    super::run::tail(self.log, 15)
                ),
                format!(
                    "the full output is {}; test.sh runs inside the image with {interpreter} \
                     (it must be in the image); the layout and the builder states are unchanged",
                    self.log.display()
                ),
            ));
        }
        Ok(true)
    }

    /// The parent image's layers, top first, unpacked in the cache.
    fn parent_layers(&self, rt: &Runtime, printer: &Printer) -> anyhow::Result<Vec<PathBuf>> {
        let Some((layout, reference)) = self.parent else {
            return Ok(Vec::new());
        };
        let image = Image::open(layout, reference)?;
        let store = Store::new(self.cache)?;
        let key = rt.ns.cache_key();
        let mut dirs = Vec::new();
        for layer in image.layers.iter().rev() {
            let (dir, fresh) = store.layer(layer, &key)?;
            if fresh {
                printer.verbose(format!("unpacked {} for the test", layer.diff_id));
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }
}

/// The program of the script's `#!` line and its argument, if any.
fn interpreter(script: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        fs::read(script).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", script.display()))?;
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let Some(line) = first.strip_prefix(b"#!") else {
        return Err(hinted(
            format!("{} has no #! line", script.display()),
            "start it with the interpreter it runs with, e.g. #!/bin/sh",
        ));
    };
    let line = String::from_utf8_lossy(line);
    // Linux passes everything after the program as one argument.
    let line = line.trim();
    let (program, arg) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    if program.is_empty() {
        return Err(hinted(
            format!("{}: its #! line names no program", script.display()),
            "e.g. #!/bin/sh",
        ));
    }
    let mut args = vec![program.to_string()];
    if !arg.trim().is_empty() {
        args.push(arg.trim().to_string());
    }
    Ok(args)
}
