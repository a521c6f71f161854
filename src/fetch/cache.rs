//! The download cache, shared by every build and project of a user: files are
//! stored by their SHA512 (`sha512/<hex>`), so a name reused by a mirror can
//! never bring other bytes in, and only files that passed every check enter.
//! Their signature and checksum files are kept beside them (`sidecars/<hex>/`)
//! so that `kiln fetch --to` can write a full mirror from the cache alone.
//! Downloads in progress live in `partial/` on the same file system, so that
//! entering the cache is one rename.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha512};

use crate::error::WriteError;

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Cache {
        Cache { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blob(&self, sha512: &str) -> PathBuf {
        self.root.join("sha512").join(sha512)
    }

    /// The cached file with this SHA512 and size, if it is there.
    pub fn get(&self, sha512: &str, size: u64) -> Option<PathBuf> {
        let path = self.blob(sha512);
        let meta = fs::metadata(&path).ok()?;
        (meta.is_file() && meta.len() == size).then_some(path)
    }

    /// The sidecar files (signature, `.DIGESTS`) kept with a cached file.
    pub fn sidecars(&self, sha512: &str) -> PathBuf {
        self.root.join("sidecars").join(sha512)
    }

    /// Where a download of `name` expected to have `key` (its pinned SHA512,
    /// or another stable tag) is kept between attempts, for resuming.
    pub fn partial(&self, name: &str, key: &str) -> Result<PathBuf, WriteError> {
        let dir = self.root.join("partial");
        fs::create_dir_all(&dir).map_err(|e| WriteError::new(&dir, e))?;
        let short = &key[..key.len().min(16)];
        Ok(dir.join(format!("{name}.{short}.part")))
    }

    /// Hold the cache for this process: two kiln runs never download into
    /// the same partial file. Released when the file is dropped.
    pub fn lock(&self) -> io::Result<File> {
        fs::create_dir_all(&self.root)?;
        let file = File::create(self.root.join(".lock"))?;
        file.lock()?;
        Ok(file)
    }

    /// Move a verified file (in `partial/`) into the cache, with its
    /// sidecars (name, bytes). Sidecars first: a blob present means its
    /// sidecars are too. On failure nothing of it stays in the cache but
    /// `verified`, which the caller owns.
    pub fn insert(
        &self,
        verified: &Path,
        sha512: &str,
        sidecars: &[(String, Vec<u8>)],
    ) -> Result<PathBuf, WriteError> {
        let dir = self.sidecars(sha512);
        let dest = self.blob(sha512);
        let parent = dest.parent().expect("blob path has a parent");
        let at = |path: &Path| {
            let path = path.to_path_buf();
            move |e| WriteError::new(path, e)
        };
        let inserted = (|| {
            fs::create_dir_all(&dir).map_err(at(&dir))?;
            for (name, bytes) in sidecars {
                crate::durable::replace(&dir.join(name), bytes)?;
            }
            fs::create_dir_all(parent).map_err(at(parent))?;
            let file = File::options()
                .write(true)
                .open(verified)
                .map_err(at(verified))?;
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .and_then(|()| file.sync_all())
                .map_err(at(verified))?;
            fs::rename(verified, &dest).map_err(at(&dest))?;
            crate::durable::sync_dir(parent)
        })();
        match inserted {
            Ok(()) => Ok(dest),
            Err(e) => {
                if !dest.exists() {
                    let _ = fs::remove_dir_all(&dir);
                }
                Err(e)
            }
        }
    }
}

/// Why [`copy_file`] failed: reading the source (whose fault that is, the
/// caller knows) or writing the copy (kiln's own disk).
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(WriteError),
}

/// Copy `src` to `dest` (created or truncated) and fsync it; returns the
/// size. Stops at the first error; the caller removes `dest`.
pub fn copy_file(src: &Path, dest: &Path) -> Result<u64, CopyError> {
    let mut from = File::open(src).map_err(CopyError::Read)?;
    let written = |e| CopyError::Write(WriteError::new(dest, e));
    let mut to = File::create(dest).map_err(written)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(written)?;
        size += n as u64;
    }
    to.sync_all().map_err(written)?;
    Ok(size)
}

/// SHA512 (lowercase hex) and size of a file.
pub fn sha512_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha512::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((crate::oci::hex(&hasher.finalize()), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_keys_by_hash_and_keeps_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let part = cache.partial("f.tar.xz", "abc").unwrap();
        fs::write(&part, b"hello").unwrap();
        let (sha, size) = sha512_file(&part).unwrap();
        assert_eq!(&sha[..16], "9b71d224bd62f378");
        let path = cache
            .insert(&part, &sha, &[("f.tar.xz.asc".into(), b"sig".to_vec())])
            .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"hello");
        assert!(!part.exists());
        assert_eq!(cache.get(&sha, size), Some(path));
        assert_eq!(cache.get(&sha, size + 1), None);
        assert_eq!(
            fs::read(cache.sidecars(&sha).join("f.tar.xz.asc")).unwrap(),
            b"sig"
        );
    }
}
