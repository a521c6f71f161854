//! Unpacking a stage3 or snapshot tarball into a directory: this file
//! decompresses, kiln's safe unpacker (`tree`) writes. The tarball comes
//! from a mirror, and even a signed one must not write outside the root:
//! entries with absolute paths, `..` or a symlink on the way stop the
//! unpack; owners follow `tree::Owners`; device nodes are never made
//! (the runtime gives /dev) and are listed instead.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::tree::{self, Error, Root, Unpacked};

/// Unpack `archive` (tar, optionally xz, gzip, zstd or bzip2 compressed)
/// into `root`.
pub fn unpack(archive: &Path, root: &Root) -> Result<Unpacked, Error> {
    let read_err = |cause| Error::Read {
        archive: archive.to_path_buf(),
        cause,
    };
    let (reader, child) = decompressed(archive).map_err(read_err)?;
    let result = tree::unpack(archive, reader, root, &tree::Options::archive());
    if let Some(mut child) = child {
        if result.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(read_err)?;
        if result.is_ok() && !status.success() {
            return Err(read_err(io::Error::other(format!(
                "the decompressor failed ({status})"
            ))));
        }
    }
    result
}

/// A reader of the tar stream; xz and bzip2 go through the system tools
/// (multi-threaded xz is far faster than a pure-Rust decoder, and every
/// host that runs Portage has them). The tool is killed with kiln (a
/// parent-death signal), so a killed kiln leaves nothing running.
fn decompressed(archive: &Path) -> io::Result<(Box<dyn Read>, Option<Child>)> {
    let mut magic = [0u8; 6];
    let mut file = File::open(archive)?;
    let n = file.read(&mut magic)?;
    let file = File::open(archive)?;
    let tool = |args: &[&str]| -> io::Result<(Box<dyn Read>, Option<Child>)> {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..])
            .stdin(file.try_clone()?)
            .stdout(Stdio::piped());
        let kiln = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs
        // in the child. A kiln that died before prctl is seen as a new parent.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0
                    || libc::getppid() as u32 != kiln
                {
                    return Err(io::Error::other("kiln is gone"));
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("running {}: {e}", args[0])))?;
        let out = child.stdout.take().expect("piped stdout");
        Ok((Box::new(BufReader::new(out)), Some(child)))
    };
    match &magic[..n] {
        [0xfd, b'7', b'z', b'X', b'Z', 0] => tool(&["xz", "-dc", "-T2"]),
        [b'B', b'Z', b'h', ..] => tool(&["bzip2", "-dc"]),
        [0x1f, 0x8b, ..] => Ok((
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::new(file))),
            None,
        )),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok((Box::new(zstd::Decoder::new(file)?), None)),
        _ => Ok((Box::new(BufReader::new(file)), None)),
    }
}
