//! The post-build test hook: an image may ship a `test.sh` beside its
//! image.toml, or another script named by its `test` key (kubler's
//! build-test.sh). After its build, before anything is
//! written to the layout, kiln runs it in a container of the new image
//! itself (its fresh root over its parent image's layers, the image's Env),
//! so what is tested is what ships. It runs by its `#!` line, so its
//! interpreter must be in the image. A non-zero exit fails the build and
//! leaves the layout and the builder states as they were.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::run;
use crate::layouts::ImageSettings;
use crate::printer::Printer;
use crate::runtime::{Network, RunOptions, Runtime};
use crate::store::{Image, Store};

/// The script run when image.toml names none with `test`.
const DEFAULT: &str = "test.sh";

/// Where the script is seen in the container.
const MOUNTED: &str = "/kiln/test.sh";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Runtime(#[from] crate::runtime::Error),
    #[error("the test of image {id} failed: {} exited with {code}:\n{tail}", script.display())]
    Failed {
        id: String,
        script: PathBuf,
        code: i32,
        /// The end of its output.
        tail: String,
        log: PathBuf,
        interpreter: String,
    },
    #[error("cannot read {}: {cause}", script.display())]
    Read { script: PathBuf, cause: io::Error },
    #[error("{} has no #! line", script.display())]
    NoShebang { script: PathBuf },
    #[error("{}: its #! line names no program", script.display())]
    NoProgram { script: PathBuf },
}

impl Error {
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::Store(e) => e.fix(),
            Error::Runtime(e) => e.fix(),
            Error::Failed {
                log, interpreter, ..
            } => Some(format!(
                "the full output is {}; test.sh runs inside the image with {interpreter} \
                 (it must be in the image); the layout and the builder states are unchanged",
                log.display()
            )),
            Error::Read { .. } => None,
            Error::NoShebang { .. } => {
                Some("start it with the interpreter it runs with, e.g. #!/bin/sh".to_string())
            }
            Error::NoProgram { .. } => Some("e.g. #!/bin/sh".to_string()),
        }
    }
}

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
    pub fn run(&self, rt: &Runtime, printer: &Printer) -> Result<bool, Error> {
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
            return Err(Error::Failed {
                id: self.image.id.clone(),
                script,
                code,
                tail: super::run::tail(self.log, 15),
                log: self.log.to_path_buf(),
                interpreter,
            });
        }
        Ok(true)
    }

    /// The parent image's layers, top first, unpacked in the cache.
    fn parent_layers(&self, rt: &Runtime, printer: &Printer) -> Result<Vec<PathBuf>, Error> {
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
fn interpreter(script: &Path) -> Result<Vec<String>, Error> {
    let text = fs::read(script).map_err(|cause| Error::Read {
        script: script.to_path_buf(),
        cause,
    })?;
    let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let Some(line) = first.strip_prefix(b"#!") else {
        return Err(Error::NoShebang {
            script: script.to_path_buf(),
        });
    };
    let line = String::from_utf8_lossy(line);
    // Linux passes everything after the program as one argument.
    let line = line.trim();
    let (program, arg) = line.split_once([' ', '\t']).unwrap_or((line, ""));
    if program.is_empty() {
        return Err(Error::NoProgram {
            script: script.to_path_buf(),
        });
    }
    let mut args = vec![program.to_string()];
    if !arg.trim().is_empty() {
        args.push(arg.trim().to_string());
    }
    Ok(args)
}
