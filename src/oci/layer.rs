//! A directory tree as a deterministic tar stream.
//!
//! kiln walks the tree itself: the `tar` crate's `append_dir_all` follows
//! symlinks and does not sort, and its deterministic mode wipes ownership.
//! Entries come out depth first, each directory's children sorted by name
//! bytes; only `tar::Header` is used, and PAX records carry what ustar
//! cannot hold (long names and link targets, big ids and sizes, xattrs).

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{Error, IdMap, IoContext, Result};

/// How a tree becomes a layer.
#[derive(Debug, Clone, Default)]
pub struct LayerOptions {
    /// The tree is an overlayfs upper directory: turn its whiteouts into
    /// OCI whiteouts and drop the overlay's own xattrs.
    pub overlay_upper: bool,
    /// Later mtimes are clamped to this (SOURCE_DATE_EPOCH or `--created`).
    pub mtime_clamp: Option<i64>,
    /// Host ids to record as the ids inside a user namespace.
    pub uid_map: Option<IdMap>,
    pub gid_map: Option<IdMap>,
}

/// What the walk saw.
#[derive(Debug, Clone, Default)]
pub struct LayerStats {
    pub entries: u64,
    /// The newest mtime written (after clamping): the default `created`.
    pub newest_mtime: i64,
    /// Things left out, such as sockets, one line each.
    pub warnings: Vec<String>,
}

const BLOCK: usize = 512;
const OCTAL7: u64 = 0o7777777;
const OCTAL11: u64 = 0o77777777777;

/// Write `root`'s contents (not `root` itself) as a tar stream to `out`.
pub fn write_tar(root: &Path, opts: &LayerOptions, out: &mut impl Write) -> Result<LayerStats> {
    let md = std::fs::metadata(root).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::RootfsMissing(root.to_path_buf()),
        _ => Error::Unreadable {
            path: root.to_path_buf(),
            source: e,
        },
    })?;
    if !md.is_dir() {
        return Err(Error::RootfsNotDir(root.to_path_buf()));
    }
    let mut w = TarWriter {
        out,
        opts,
        links: HashMap::new(),
        stats: LayerStats::default(),
        buf: vec![0; 256 * 1024],
    };
    w.walk_dir(root, b"")?;
    w.write(&[0; 2 * BLOCK], root)?;
    Ok(w.stats)
}

struct TarWriter<'a, W: Write> {
    out: &'a mut W,
    opts: &'a LayerOptions,
    /// (dev, ino) of multiply linked files -> the first path written.
    links: HashMap<(u64, u64), Vec<u8>>,
    stats: LayerStats,
    buf: Vec<u8>,
}

/// One entry as it will appear in the tar.
struct Item {
    name: Vec<u8>,
    path: PathBuf,
    md: Option<Metadata>,
    kind: Kind,
}

enum Kind {
    Node,
    Whiteout,
    Opaque,
}

impl<W: Write> TarWriter<'_, W> {
    fn write(&mut self, bytes: &[u8], path: &Path) -> Result<()> {
        self.out
            .write_all(bytes)
            .io_ctx(|| format!("writing the layer of {}", path.display()))
    }

    fn walk_dir(&mut self, dir: &Path, prefix: &[u8]) -> Result<()> {
        let unreadable = |source| Error::Unreadable {
            path: dir.to_path_buf(),
            source,
        };
        let mut items = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(unreadable)? {
            let entry = entry.map_err(unreadable)?;
            let path = entry.path();
            let md = std::fs::symlink_metadata(&path).map_err(|source| Error::Unreadable {
                path: path.clone(),
                source,
            })?;
            let name = entry.file_name().as_bytes().to_vec();
            let whiteout =
                self.opts.overlay_upper && md.file_type().is_char_device() && md.rdev() == 0;
            if whiteout {
                items.push(Item {
                    name: [b".wh.".as_slice(), &name].concat(),
                    path,
                    md: None,
                    kind: Kind::Whiteout,
                });
            } else {
                items.push(Item {
                    name,
                    path,
                    md: Some(md),
                    kind: Kind::Node,
                });
            }
        }
        if self.opts.overlay_upper && is_opaque(dir) {
            items.push(Item {
                name: b".wh..wh..opq".to_vec(),
                path: dir.join(".wh..wh..opq"),
                md: None,
                kind: Kind::Opaque,
            });
        }
        items.sort_by(|a, b| a.name.cmp(&b.name));
        for item in items {
            let rel = [prefix, &item.name].concat();
            match (item.kind, item.md) {
                (Kind::Node, Some(md)) => {
                    if self.entry(&item.path, &rel, &md)? && md.is_dir() {
                        self.walk_dir(&item.path, &[rel.as_slice(), b"/"].concat())?;
                    }
                }
                _ => self.whiteout(&item.path, &rel)?,
            }
        }
        Ok(())
    }

    fn whiteout(&mut self, path: &Path, rel: &[u8]) -> Result<()> {
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        h.set_mtime(self.opts.mtime_clamp.unwrap_or(0).max(0) as u64);
        self.header(path, h, rel, None, 0, 0, 0, &[])
    }

    /// Write one entry; false when it was skipped.
    fn entry(&mut self, path: &Path, rel: &[u8], md: &Metadata) -> Result<bool> {
        let ft = md.file_type();
        let mut h = Header::new_ustar();
        let mut link = None;
        let mut size = 0;
        let mut name = rel.to_vec();
        if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            name.push(b'/');
        } else if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            let target = std::fs::read_link(path).map_err(|source| Error::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
            link = Some(target.as_os_str().as_bytes().to_vec());
        } else if ft.is_file() {
            let first = (md.nlink() > 1)
                .then(|| self.links.get(&(md.dev(), md.ino())).cloned())
                .flatten();
            if let Some(first) = first {
                h.set_entry_type(EntryType::Link);
                link = Some(first);
            } else {
                if md.nlink() > 1 {
                    self.links.insert((md.dev(), md.ino()), rel.to_vec());
                }
                h.set_entry_type(EntryType::Regular);
                size = md.len();
            }
        } else if ft.is_char_device() || ft.is_block_device() {
            h.set_entry_type(if ft.is_char_device() {
                EntryType::Char
            } else {
                EntryType::Block
            });
            let rdev = md.rdev();
            let (major, minor) = (libc::major(rdev), libc::minor(rdev));
            h.set_device_major(major)
                .io_ctx(|| format!("device {}", path.display()))?;
            h.set_device_minor(minor)
                .io_ctx(|| format!("device {}", path.display()))?;
        } else if ft.is_fifo() {
            h.set_entry_type(EntryType::Fifo);
        } else {
            self.stats.warnings.push(format!(
                "{}: skipped a socket (tar cannot hold one)",
                path.display()
            ));
            return Ok(false);
        }
        h.set_mode(md.mode() & 0o7777);
        let mtime = self
            .opts
            .mtime_clamp
            .map_or(md.mtime(), |c| md.mtime().min(c))
            .max(0);
        self.stats.newest_mtime = self.stats.newest_mtime.max(mtime);
        h.set_mtime(mtime as u64);
        let uid = map_id(self.opts.uid_map.as_ref(), md.uid(), path, "uid")?;
        let gid = map_id(self.opts.gid_map.as_ref(), md.gid(), path, "gid")?;
        let xattrs = read_xattrs(path, self.opts.overlay_upper)?;
        self.header(path, h, &name, link.as_deref(), size, uid, gid, &xattrs)?;
        if size > 0 || (ft.is_file() && link.is_none()) {
            self.data(path, size)?;
        }
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn header(
        &mut self,
        path: &Path,
        mut h: Header,
        name: &[u8],
        link: Option<&[u8]>,
        size: u64,
        uid: u32,
        gid: u32,
        xattrs: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<()> {
        let mut pax = Vec::new();
        let ustar = h.as_ustar_mut().expect("a ustar header");
        if name.len() > ustar.name.len() {
            pax_record(&mut pax, b"path", name);
        }
        let n = name.len().min(ustar.name.len());
        ustar.name[..n].copy_from_slice(&name[..n]);
        if let Some(link) = link {
            if link.len() > ustar.linkname.len() {
                pax_record(&mut pax, b"linkpath", link);
            }
            let n = link.len().min(ustar.linkname.len());
            ustar.linkname[..n].copy_from_slice(&link[..n]);
        }
        for (key, value, field) in [(b"uid".as_slice(), uid, 0), (b"gid", gid, 1)] {
            if u64::from(value) > OCTAL7 {
                pax_record(&mut pax, key, value.to_string().as_bytes());
            } else if field == 0 {
                h.set_uid(value.into());
            } else {
                h.set_gid(value.into());
            }
        }
        if size > OCTAL11 {
            pax_record(&mut pax, b"size", size.to_string().as_bytes());
            h.set_size(0);
        } else {
            h.set_size(size);
        }
        for (key, value) in xattrs {
            pax_record(
                &mut pax,
                &[b"SCHILY.xattr.".as_slice(), key].concat(),
                value,
            );
        }
        if !pax.is_empty() {
            let mut ph = Header::new_ustar();
            ph.set_entry_type(EntryType::XHeader);
            ph.set_mode(0o644);
            ph.set_mtime(0);
            ph.set_size(pax.len() as u64);
            let base = name
                .rsplit(|&b| b == b'/')
                .find(|s| !s.is_empty())
                .unwrap_or(b"");
            let pname = [b"PaxHeaders/".as_slice(), base].concat();
            let pu = ph.as_ustar_mut().expect("a ustar header");
            let n = pname.len().min(pu.name.len());
            pu.name[..n].copy_from_slice(&pname[..n]);
            ph.set_cksum();
            self.write(ph.as_bytes(), path)?;
            self.write(&pax, path)?;
            self.pad(pax.len() as u64, path)?;
        }
        h.set_cksum();
        self.write(h.as_bytes(), path)?;
        self.stats.entries += 1;
        Ok(())
    }

    fn data(&mut self, path: &Path, size: u64) -> Result<()> {
        let unreadable = |source| Error::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(unreadable)?;
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = file.read(&mut self.buf[..want]).map_err(unreadable)?;
            if n == 0 {
                return Err(Error::Changed {
                    path: path.to_path_buf(),
                    expected: size,
                    found: size - left,
                });
            }
            self.out
                .write_all(&self.buf[..n])
                .io_ctx(|| format!("writing the layer of {}", path.display()))?;
            left -= n as u64;
        }
        self.pad(size, path)
    }

    fn pad(&mut self, len: u64, path: &Path) -> Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.write(&[0; BLOCK][..BLOCK - rem], path)?;
        }
        Ok(())
    }
}

fn map_id(map: Option<&IdMap>, id: u32, path: &Path, kind: &'static str) -> Result<u32> {
    match map {
        None => Ok(id),
        Some(map) => map.to_inside(id).ok_or_else(|| Error::Unmappable {
            path: path.to_path_buf(),
            kind,
            id,
        }),
    }
}

/// One PAX record: `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let rest = key.len() + value.len() + 3;
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Invalid {
        what: path.display().to_string(),
        message: "path contains a NUL byte".into(),
    })
}

/// Extended attributes of `path` (not followed), sorted, with
/// `security.capability` v3 rewritten as v2 and overlay xattrs dropped.
fn read_xattrs(path: &Path, overlay_upper: bool) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let c = cpath(path)?;
    let unreadable = |source| Error::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let names = xattr_call(|buf, len| unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) })
        .map_err(unreadable)?;
    let mut out = Vec::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if overlay_upper
            && (name.starts_with(b"trusted.overlay.") || name.starts_with(b"user.overlay."))
        {
            continue;
        }
        let cname = CString::new(name).expect("split at NULs");
        let value = match xattr_call(|buf, len| unsafe {
            libc::lgetxattr(c.as_ptr(), cname.as_ptr(), buf.cast(), len)
        }) {
            Ok(v) => v,
            // Removed between list and get.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(unreadable(e)),
        };
        let value = if name == b"security.capability" {
            capability_v2(value)
        } else {
            value
        };
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// Call a list/get xattr function with a buffer that grows until it fits.
fn xattr_call(mut f: impl FnMut(*mut u8, usize) -> isize) -> std::io::Result<Vec<u8>> {
    loop {
        let len = f(std::ptr::null_mut(), 0);
        if len < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(Vec::new()),
                _ => Err(err),
            };
        }
        let mut buf = vec![0u8; len as usize];
        let got = f(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::ERANGE) {
            return Err(std::io::Error::last_os_error());
        }
    }
}

const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;
const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;

/// A v3 file capability names the namespace root it belongs to; in an
/// image that id means nothing, so it is stored as v2 (the same bits).
fn capability_v2(value: Vec<u8>) -> Vec<u8> {
    if value.len() == 24 {
        let magic = u32::from_le_bytes(value[..4].try_into().expect("4 bytes"));
        if magic & VFS_CAP_REVISION_MASK == VFS_CAP_REVISION_3 {
            let magic = (magic & !VFS_CAP_REVISION_MASK) | VFS_CAP_REVISION_2;
            let mut v2 = magic.to_le_bytes().to_vec();
            v2.extend_from_slice(&value[4..20]);
            return v2;
        }
    }
    value
}

fn is_opaque(dir: &Path) -> bool {
    let Ok(c) = cpath(dir) else { return false };
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| {
            let cname = CString::new(*name).expect("no NUL");
            let mut v = [0u8; 1];
            let n =
                unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), v.as_mut_ptr().cast(), 1) };
            n == 1 && v[0] == b'y'
        })
}

/// A path as tar bytes, for messages and tests.
pub fn display_name(name: &[u8]) -> String {
    OsStr::from_bytes(name).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", &[b'a'; 95]);
        let text = String::from_utf8(out.clone()).unwrap();
        let (len, _) = text.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), out.len());
        assert_eq!(len, "105");
    }

    #[test]
    fn huge_file_size_goes_into_pax() {
        let size = 9 * 1024 * 1024 * 1024u64;
        let mut tar = Vec::new();
        let opts = LayerOptions::default();
        let mut w = TarWriter {
            out: &mut tar,
            opts: &opts,
            links: HashMap::new(),
            stats: LayerStats::default(),
            buf: Vec::new(),
        };
        let mut h = Header::new_ustar();
        h.set_entry_type(EntryType::Regular);
        h.set_mode(0o644);
        w.header(Path::new("big"), h, b"big", None, size, 3_000_000, 7, &[])
            .unwrap();
        let text = String::from_utf8_lossy(&tar[BLOCK..2 * BLOCK]).into_owned();
        assert!(text.contains("size=9663676416\n"), "{text}");
        assert!(text.contains("uid=3000000\n"), "{text}");
        let mut archive = tar::Archive::new(&tar[..]);
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.size(), size);
        assert_eq!(entry.header().uid().unwrap(), 3_000_000);
        assert_eq!(entry.path_bytes().as_ref(), b"big");
    }

    #[test]
    fn capability_v3_becomes_v2() {
        let mut v3 = 0x0300_0001u32.to_le_bytes().to_vec();
        v3.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]);
        v3.extend_from_slice(&1000u32.to_le_bytes());
        let v2 = capability_v2(v3.clone());
        assert_eq!(v2.len(), 20);
        assert_eq!(&v2[..4], &0x0200_0001u32.to_le_bytes());
        assert_eq!(&v2[4..], &v3[4..20]);
    }
}
