//! One build container: build-root.sh on an overlay of a builder state.
//!
//! Adapter until the runtime module (issue 4) lands on this branch: as root,
//! `unshare` gives the build a private mount and PID namespace, the overlay
//! and the bind mounts are made there and the command runs chrooted; nothing
//! stays mounted when it ends, however it ends. The rootless libcontainer
//! runner replaces this behind the same `Container`.
//! The output goes to the image's log file, and to stderr with `-v`.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, bail};

/// A bind mount into the container.
#[derive(Debug, Clone)]
pub struct Bind {
    pub src: PathBuf,
    pub dst: &'static str,
    pub writable: bool,
}

#[derive(Debug)]
pub struct Container {
    /// The builder state's layers, bottom first.
    pub lowers: Vec<PathBuf>,
    /// Scratch dir holding upper/, work/ and rootfs/.
    pub scratch: PathBuf,
    pub binds: Vec<Bind>,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
    pub log: PathBuf,
    pub live: bool,
}

const SETUP: &str = r#"
set -e
exec 2>&1
s=$1 lowers=$2 extra=$3 n=$4
shift 4
r=$s/rootfs
mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$s/upper,workdir=$s/work$extra" "$r"
mount -t proc proc "$r/proc"
mkdir -p "$r/dev" "$r/tmp" "$r/var/tmp"
mount -t tmpfs -o mode=755 dev "$r/dev"
for d in null zero full random urandom tty; do
  touch "$r/dev/$d"
  mount --bind "/dev/$d" "$r/dev/$d"
done
mkdir -p "$r/dev/shm" "$r/dev/pts"
mount -t tmpfs shm "$r/dev/shm"
ln -s /proc/self/fd "$r/dev/fd"
mount -t tmpfs -o mode=1777 tmp "$r/tmp"
mount -t tmpfs -o mode=1777 vartmp "$r/var/tmp"
while [ "$n" -gt 0 ]; do
  mkdir -p "$r$2"
  mount --bind "$1" "$r$2"
  [ "$3" = rw ] || mount -o remount,bind,ro "$r$2"
  shift 3
  n=$((n - 1))
done
[ "$1" = -- ] && shift
env_args=()
while [ "$1" != -- ]; do env_args+=("$1"); shift; done
shift
exec chroot "$r" /usr/bin/env -i "${env_args[@]}" "$@"
"#;

impl Container {
    /// Runs the container to its end; the output is in the log file.
    pub fn run(&self) -> anyhow::Result<ExitStatus> {
        for dir in ["upper", "work", "rootfs"] {
            fs::create_dir_all(self.scratch.join(dir))?;
        }
        let lowers: Vec<String> = self
            .lowers
            .iter()
            .rev()
            .map(|l| l.display().to_string())
            .collect();
        let lowers = lowers.join(":");
        if lowers.contains(',') {
            bail!("the cache path holds a comma, which overlayfs cannot take: {lowers}");
        }
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
        ])
        .args(["--", "/bin/bash", "-c", SETUP, "kiln-build"])
        .arg(&self.scratch)
        .arg(&lowers)
        .arg(if super::userns::inside() {
            ",userxattr"
        } else {
            ""
        })
        .arg(self.binds.len().to_string());
        for bind in &self.binds {
            cmd.arg(&bind.src)
                .arg(bind.dst)
                .arg(if bind.writable { "rw" } else { "ro" });
        }
        cmd.arg("--");
        cmd.args(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.arg("--").args(&self.args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .context("cannot run unshare (util-linux) for the build container")?;
        let mut log = File::create(&self.log)
            .with_context(|| format!("cannot create the log file {}", self.log.display()))?;
        let stdout = child.stdout.take().context("no output pipe")?;
        for line in BufReader::new(stdout).split(b'\n') {
            let mut line = line?;
            line.push(b'\n');
            log.write_all(&line)?;
            if self.live {
                std::io::stderr().write_all(&line)?;
            }
        }
        Ok(child.wait()?)
    }
}
