//! Unpacking a stage3 or snapshot tarball into a directory, safely: the
//! tarball comes from a mirror, and even a signed one must not write outside
//! the root. Entries with absolute paths or `..` stop the unpack; symlinks
//! are created as they are (a root file system is full of absolute ones) but
//! never followed while writing, because every parent directory of an entry
//! is checked with lstat and files are opened with `O_NOFOLLOW`. Ownership
//! is kept where the user namespace allows it, and device nodes that cannot
//! be made are skipped and listed, as `tar xpf --numeric-owner` would do
//! rootless.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, mknod, utimensat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, fchownat, mkfifo};
use tar::EntryType;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum UnpackError {
    #[error("cannot read {archive}")]
    Read { archive: PathBuf, source: io::Error },
    #[error("refusing {archive}: entry '{entry}' {why}")]
    Unsafe {
        archive: PathBuf,
        entry: String,
        why: &'static str,
    },
    #[error("unpacking '{entry}' of {archive} into {dest}")]
    Write {
        archive: PathBuf,
        entry: String,
        dest: PathBuf,
        source: io::Error,
    },
}

/// What an unpack did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unpacked {
    pub entries: u64,
    /// Device nodes (and other special files) that could not be created,
    /// as paths inside the root.
    pub skipped: Vec<String>,
    /// Entries whose owner could not be set (rootless without a mapping).
    pub owners_dropped: u64,
}

/// Unpack `archive` (tar, optionally xz, gzip, zstd or bzip2 compressed) into
/// `dest`, which must exist.
pub fn unpack(archive: &Path, dest: &Path) -> Result<Unpacked, UnpackError> {
    let read_err = |source| UnpackError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let (reader, child) = decompressed(archive).map_err(read_err)?;
    let result = unpack_tar(archive, reader, dest);
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
/// host that runs Portage has them).
fn decompressed(archive: &Path) -> io::Result<(Box<dyn Read>, Option<Child>)> {
    let mut magic = [0u8; 6];
    let mut file = File::open(archive)?;
    let n = file.read(&mut magic)?;
    let file = File::open(archive)?;
    let tool = |args: &[&str]| -> io::Result<(Box<dyn Read>, Option<Child>)> {
        let mut child = Command::new(args[0])
            .args(&args[1..])
            .stdin(file.try_clone()?)
            .stdout(Stdio::piped())
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

fn unpack_tar(archive: &Path, reader: impl Read, dest: &Path) -> Result<Unpacked, UnpackError> {
    let read_err = |source| UnpackError::Read {
        archive: archive.to_path_buf(),
        source,
    };
    let mut tar = tar::Archive::new(reader);
    let mut done = Unpacked::default();
    // Directory modes and times are set last: a read-only directory must
    // still receive its entries, and writing into it changes its mtime.
    let mut dirs: Vec<(PathBuf, u32, u64)> = Vec::new();
    for entry in tar.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let unsafe_entry = |why| UnpackError::Unsafe {
            archive: archive.to_path_buf(),
            entry: shown.clone(),
            why,
        };
        let rel = safe_relative(&raw).map_err(unsafe_entry)?;
        let header = entry.header();
        let kind = header.entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let target = dest.join(&rel);
        let write_err = |source| UnpackError::Write {
            archive: archive.to_path_buf(),
            entry: shown.clone(),
            dest: dest.to_path_buf(),
            source,
        };
        if rel.as_os_str().is_empty() {
            // "./": the root itself.
            continue;
        }
        check_parents(dest, &rel).map_err(unsafe_entry)?;
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let uid = header.uid().map_err(read_err)?;
        let gid = header.gid().map_err(read_err)?;
        let mtime = header.mtime().unwrap_or(0);
        done.entries += 1;
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove(&target).map_err(write_err)?;
                        fs::create_dir(&target).map_err(write_err)?;
                    }
                    Err(_) => fs::create_dir(&target).map_err(write_err)?,
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(0o700))
                    .map_err(write_err)?;
                done.owners_dropped += u64::from(!chown(&target, uid, gid));
                dirs.push((target, mode, mtime));
                continue;
            }
            EntryType::Regular | EntryType::Continuous => {
                remove(&target).map_err(write_err)?;
                let mut file = File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(write_err)?;
                io::copy(&mut entry, &mut file).map_err(write_err)?;
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("is a symlink without a target"))?;
                remove(&target).map_err(write_err)?;
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), &target)
                    .map_err(write_err)?;
            }
            EntryType::Link => {
                let link = entry
                    .link_name_bytes()
                    .ok_or_else(|| unsafe_entry("is a hard link without a target"))?;
                let link_rel = safe_relative(&link)
                    .map_err(|_| unsafe_entry("is a hard link to a path outside the root"))?;
                check_parents(dest, &link_rel).map_err(unsafe_entry)?;
                remove(&target).map_err(write_err)?;
                fs::hard_link(dest.join(link_rel), &target).map_err(write_err)?;
                continue;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                remove(&target).map_err(write_err)?;
                let perm = Mode::from_bits_truncate(mode);
                let made = if kind == EntryType::Fifo {
                    mkfifo(&target, perm)
                } else {
                    let major = u64::from(header.device_major().ok().flatten().unwrap_or(0));
                    let minor = u64::from(header.device_minor().ok().flatten().unwrap_or(0));
                    let flag = if kind == EntryType::Char {
                        SFlag::S_IFCHR
                    } else {
                        SFlag::S_IFBLK
                    };
                    mknod(&target, flag, perm, nix::sys::stat::makedev(major, minor))
                };
                if made.is_err() {
                    done.skipped.push(rel.display().to_string());
                    continue;
                }
            }
            _ => {
                done.skipped.push(rel.display().to_string());
                continue;
            }
        }
        // Owner before mode: chown clears setuid bits.
        done.owners_dropped += u64::from(!chown(&target, uid, gid));
        if kind != EntryType::Symlink {
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(write_err)?;
        }
        set_xattrs(&mut entry, &target);
        set_mtime(&target, mtime);
    }
    // Read the zero padding after the end of the archive too, so that a
    // decompressor feeding a pipe ends normally.
    io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(read_err)?;
    for (dir, mode, mtime) in dirs.into_iter().rev() {
        fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).map_err(|source| {
            UnpackError::Write {
                archive: archive.to_path_buf(),
                entry: dir.display().to_string(),
                dest: dest.to_path_buf(),
                source,
            }
        })?;
        set_mtime(&dir, mtime);
    }
    Ok(done)
}

/// The entry's path inside the root: `.` parts dropped; absolute paths and
/// `..` refused (a tarball that needs them is not a root file system).
fn safe_relative(raw: &[u8]) -> Result<PathBuf, &'static str> {
    let path = Path::new(std::ffi::OsStr::from_bytes(raw));
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("climbs out of the root with '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    Ok(rel)
}

/// Every parent of `rel` under `root` must be a real directory (or not yet
/// exist): a symlink there would make the write land elsewhere.
fn check_parents(root: &Path, rel: &Path) -> Result<(), &'static str> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        at.push(part);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err("would be written through a symlink in the archive");
            }
            Ok(m) if !m.is_dir() => return Err("has a parent that is not a directory"),
            Ok(_) => {}
            Err(_) => {
                fs::create_dir(&at).map_err(|_| "has a parent directory kiln cannot create")?;
            }
        }
    }
    Ok(())
}

/// Make room for an entry: an earlier entry of the same name (never a
/// directory with content, which tar would not replace either).
fn remove(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Set the owner without following a symlink; false when not allowed.
fn chown(path: &Path, uid: u64, gid: u64) -> bool {
    let (Ok(uid), Ok(gid)) = (u32::try_from(uid), u32::try_from(gid)) else {
        return false;
    };
    fchownat(
        None,
        path,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .is_ok()
}

fn set_mtime(path: &Path, mtime: u64) {
    let t = TimeSpec::new(i64::try_from(mtime).unwrap_or(0), 0);
    let _ = utimensat(None, path, &t, &t, UtimensatFlags::NoFollowSymlink);
}

/// Extended attributes from pax headers (`SCHILY.xattr.*`): stage3s carry
/// file capabilities this way. Best effort: rootless, `security.*` may be
/// refused, and the build still works without them.
fn set_xattrs<R: Read>(entry: &mut tar::Entry<R>, path: &Path) {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return;
    };
    for ext in exts.flatten() {
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        let (Ok(cpath), Ok(cname)) = (
            std::ffi::CString::new(path.as_os_str().as_bytes()),
            std::ffi::CString::new(name),
        ) else {
            continue;
        };
        let value = ext.value_bytes();
        // SAFETY: both strings are NUL-terminated and live across the call;
        // value points to value.len() readable bytes.
        unsafe {
            libc::lsetxattr(
                cpath.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(safe_relative(b"./usr/bin/").unwrap(), Path::new("usr/bin"));
        assert_eq!(safe_relative(b"./").unwrap(), Path::new(""));
        assert_eq!(
            safe_relative(b"usr/../../etc/passwd").unwrap_err(),
            "climbs out of the root with '..'"
        );
        assert_eq!(
            safe_relative(b"/etc/passwd").unwrap_err(),
            "has an absolute path"
        );
    }
}
