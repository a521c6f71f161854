//! The caches every build of a user shares, binary packages and distfiles,
//! written only by kiln: a build container sees each through an overlay
//! whose lower dir is the shared cache and whose upper dir is the build's
//! own, so nothing the build does (a hostile build.sh included) reaches the
//! files other builds and other projects use while it runs. When the build
//! has succeeded, [`Shared::keep`] moves the files it added into the shared
//! dir: new files only, never one that is there already (a package another
//! build made stays as it is), and the binary package index `Packages`,
//! which Portage rewrote over the shared one. A failed build's upper dir is
//! thrown away with its scratch dir, so the caches are as they were.
//! Whiteouts (deletions), symlinks and device nodes are not kept.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::error::io_phrase;
use crate::runtime::overlay::{self, Kind, Rootfs};

/// What can go wrong giving a build its view of a shared cache, or keeping
/// what it added. The cause is in the message: the build only warns about
/// a cache it could not add to, in one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {op} {}: {}", path.display(), io_phrase(cause))]
    Io {
        op: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    #[error("cannot move {} to {}: {}", from.display(), to.display(), io_phrase(cause))]
    Move {
        from: PathBuf,
        to: PathBuf,
        cause: io::Error,
    },
    #[error("cannot mount an overlay of {}", dir.display())]
    Mount {
        dir: PathBuf,
        #[source]
        source: overlay::Error,
    },
    #[error("cannot give the build its own view of {}: kernel overlayfs or fuse-overlayfs is needed", dir.display())]
    NoOverlay { dir: PathBuf },
}

fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |cause| Error::Io { op, path, cause }
}

/// One shared cache and the build's view of it.
#[derive(Debug)]
pub struct Shared {
    /// The shared dir (e.g. CACHE/binpkgs/amd64-openrc).
    pub dir: PathBuf,
    /// What the build sees: the overlay's mount point.
    pub view: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    /// Files of the top dir a build's copy replaces (indexes it rewrites).
    replaced: &'static [&'static str],
}

/// The overlay of a running build; unmounted on drop.
pub struct Mounted(Option<Rootfs>);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(r) = self.0.take() {
            let _ = r.unmount();
        }
    }
}

impl Shared {
    /// `dir` seen through `scratch`/`name`; `replaced`: see [`Shared`].
    pub fn new(
        dir: PathBuf,
        scratch: &Path,
        name: &str,
        replaced: &'static [&'static str],
    ) -> Shared {
        Shared {
            dir,
            view: scratch.join(name),
            upper: scratch.join(format!("{name}.upper")),
            work: scratch.join(format!("{name}.work")),
            replaced,
        }
    }

    /// Mounts the build's view: the shared dir under the build's upper dir.
    pub fn mount(&self) -> Result<Mounted, Error> {
        fs::create_dir_all(&self.dir).map_err(io_error("create", &self.dir))?;
        let rootfs = overlay::mount_rootfs(
            std::slice::from_ref(&self.dir),
            &self.upper,
            &self.work,
            &self.view,
            true,
        )
        .map_err(|source| Error::Mount {
            dir: self.dir.clone(),
            source,
        })?;
        if rootfs.kind == Kind::Copy {
            let _ = rootfs.unmount();
            return Err(Error::NoOverlay {
                dir: self.dir.clone(),
            });
        }
        Ok(Mounted(Some(rootfs)))
    }

    /// Adds what the build wrote (its upper dir) to the shared dir; returns
    /// how many files it added. Call after the build succeeded, with the
    /// overlay unmounted.
    pub fn keep(&self) -> Result<usize, Error> {
        if !self.upper.is_dir() {
            return Ok(0);
        }
        merge(&self.upper, &self.dir, self.replaced)
    }
}

/// Moves the regular files of `from` that `to` lacks (or that `replaced`
/// names) into `to`, making the dirs they are in.
fn merge(from: &Path, to: &Path, replaced: &[&str]) -> Result<usize, Error> {
    let mut count = 0;
    for entry in fs::read_dir(from).map_err(io_error("read", from))? {
        let entry = entry.map_err(io_error("read", from))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        // Portage's partial downloads, renamed bad ones and lock files.
        if text.starts_with('.')
            || text.ends_with(".__download__")
            || text.contains("._checksum_failure_.")
        {
            continue;
        }
        let (src, dest) = (entry.path(), to.join(&name));
        let meta = fs::symlink_metadata(&src).map_err(io_error("read", &src))?;
        let there = fs::symlink_metadata(&dest).ok();
        if meta.is_dir() {
            match there {
                Some(m) if !m.is_dir() => continue,
                Some(_) => {}
                None => {
                    use std::os::unix::fs::PermissionsExt;
                    fs::DirBuilder::new()
                        .mode(meta.permissions().mode() & 0o7777)
                        .create(&dest)
                        .map_err(io_error("create", &dest))?
                }
            }
            count += merge(&src, &dest, &[])?;
        } else if meta.is_file() && (there.is_none() || replaced.contains(&text.as_ref())) {
            fs::rename(&src, &dest).map_err(|cause| Error::Move {
                from: src.clone(),
                to: dest.clone(),
                cause,
            })?;
            count += 1;
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_new_files_and_the_index_never_replaces_a_package() {
        let tmp = tempfile::tempdir().unwrap();
        let (upper, shared) = (tmp.path().join("upper"), tmp.path().join("shared"));
        for d in [
            &upper.join("app-misc/hello"),
            &shared.join("app-misc/hello"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(shared.join("app-misc/hello/hello-1.0-1.gpkg.tar"), "good").unwrap();
        fs::write(shared.join("Packages"), "old index").unwrap();
        fs::write(upper.join("app-misc/hello/hello-1.0-1.gpkg.tar"), "evil").unwrap();
        fs::write(upper.join("app-misc/hello/hello-1.0-2.gpkg.tar"), "new").unwrap();
        fs::create_dir_all(upper.join("dev-libs/foo")).unwrap();
        fs::write(upper.join("dev-libs/foo/foo-1-1.gpkg.tar"), "foo").unwrap();
        fs::write(upper.join("Packages"), "new index").unwrap();
        fs::write(upper.join("x.tar.gz.__download__"), "partial").unwrap();
        std::os::unix::fs::symlink("/etc", upper.join("evil")).unwrap();

        assert_eq!(merge(&upper, &shared, &["Packages"]).unwrap(), 3);
        let read = |p: &str| fs::read_to_string(shared.join(p)).unwrap();
        assert_eq!(read("app-misc/hello/hello-1.0-1.gpkg.tar"), "good");
        assert_eq!(read("app-misc/hello/hello-1.0-2.gpkg.tar"), "new");
        assert_eq!(read("dev-libs/foo/foo-1-1.gpkg.tar"), "foo");
        assert_eq!(read("Packages"), "new index");
        assert!(!shared.join("evil").exists() && !shared.join("x.tar.gz.__download__").exists());
    }
}
