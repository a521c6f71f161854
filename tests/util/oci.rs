//! Helpers for the OCI writer's tests: trees with every kind of entry, a
//! file-by-file comparison, podman and registry set-ups, and kiln commit.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::{kiln, run_ok};

/// The epoch every test commits with, so mtimes of fresh files are clamped.
pub const EPOCH: &str = "1700000000";

pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(bytes);
    format!(
        "sha256:{}",
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// `kiln commit` with SOURCE_DATE_EPOCH set; returns its `--json` output.
pub fn commit(rootfs: &Path, layout: &Path, reference: &str, extra: &[&str]) -> serde_json::Value {
    let out = run_ok(
        kiln()
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .arg("commit")
            .arg(rootfs)
            .arg("--layout")
            .arg(layout)
            .args(["--ref", reference, "--json"])
            .args(extra),
    );
    serde_json::from_slice(&out.stdout).expect("commit --json prints JSON")
}

/// The strict checker over a layout kiln wrote, both as a library call and
/// through `kiln ls --check`.
pub fn assert_valid(layout: &Path) {
    let report = kiln::fsck(layout).expect("fsck reads the layout");
    assert!(
        report.is_ok(),
        "{}: {:#?}",
        layout.display(),
        report.problems
    );
    run_ok(kiln().args(["ls", "--check", "--layout"]).arg(layout));
}

pub fn write(path: &Path, content: impl AsRef<[u8]>) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let (p, n) = (cstr(path), CString::new(name).unwrap());
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "setxattr {name} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

pub fn xattrs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let p = cstr(path);
    let mut names = vec![0u8; 4096];
    let n = unsafe { libc::llistxattr(p.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(n >= 0, "listxattr {}", path.display());
    let mut out = Vec::new();
    for name in names[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cname = CString::new(name).unwrap();
        let mut value = vec![0u8; 4096];
        let len = unsafe {
            libc::lgetxattr(
                p.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert!(len >= 0);
        value.truncate(len as usize);
        out.push((String::from_utf8_lossy(name).into_owned(), value));
    }
    out.sort();
    out
}

pub fn mknod(path: &Path, mode: u32, major: u32, minor: u32) {
    let rc = unsafe { libc::mknod(cstr(path).as_ptr(), mode, libc::makedev(major, minor)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

pub fn lchown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

/// A tree with every kind of entry the layer must keep. Returns the path
/// of a socket in it, which the layer must leave out.
pub fn rich_tree(root: &Path) -> PathBuf {
    write(&root.join("etc/hello"), "hello\n");
    write(&root.join("etc/empty"), "");
    write(&root.join("usr/bin/tool"), vec![0x7fu8; 70_000]);
    chmod(&root.join("usr/bin/tool"), 0o4755);
    std::fs::create_dir_all(root.join("srv/group")).unwrap();
    chmod(&root.join("srv/group"), 0o2775);
    std::fs::create_dir_all(root.join("tmp")).unwrap();
    chmod(&root.join("tmp"), 0o1777);
    symlink("hello", root.join("etc/rel-link")).unwrap();
    symlink("/etc/hello", root.join("etc/abs-link")).unwrap();
    symlink("../nowhere/at/all", root.join("etc/dangling")).unwrap();
    std::fs::hard_link(root.join("etc/hello"), root.join("usr/hello-hard")).unwrap();
    std::fs::hard_link(root.join("etc/hello"), root.join("a-first-hard")).unwrap();
    let long_dir = root
        .join("deep")
        .join("d".repeat(120))
        .join("e".repeat(150));
    write(&long_dir.join("f".repeat(200)), "long\n");
    symlink("t".repeat(300), root.join("deep/long-target")).unwrap();
    write(&root.join("names/caf\u{e9} \u{1f980}.txt"), "unicode\n");
    let raw = std::ffi::OsStr::from_bytes(b"latin1-\xe9\xff");
    write(&root.join("names").join(raw), "not utf-8\n");
    set_xattr(&root.join("etc/hello"), "user.comment", b"kept");
    set_xattr(&root.join("etc/rel-link"), "trusted.link", b"on a symlink");
    // v2 file capability: cap_net_bind_service, effective.
    let mut cap = 0x0200_0001u32.to_le_bytes().to_vec();
    cap.extend_from_slice(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    set_xattr(&root.join("usr/bin/tool"), "security.capability", &cap);
    write(&root.join("home/big-ids"), "owned far away\n");
    lchown(&root.join("home/big-ids"), 3_000_000, 2_500_000);
    lchown(&root.join("etc/abs-link"), 1234, 5678);
    std::fs::create_dir_all(root.join("dev")).unwrap();
    mknod(&root.join("dev/null"), libc::S_IFCHR | 0o666, 1, 3);
    mknod(&root.join("dev/loop9"), libc::S_IFBLK | 0o660, 7, 9);
    mknod(&root.join("dev/fifo"), libc::S_IFIFO | 0o600, 0, 0);
    let socket = root.join("run/sock");
    std::fs::create_dir_all(socket.parent().unwrap()).unwrap();
    std::mem::forget(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    socket
}

/// What a file looks like, for comparing trees.
#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    pub mode: u32,
    pub owner: (u32, u32),
    pub content: Option<Vec<u8>>,
    pub link: Option<PathBuf>,
    pub xattrs: Vec<(String, Vec<u8>)>,
    pub rdev: u64,
}

/// Every path under `root` with what it is. `rootless`: the tree was
/// unpacked by `umoci --rootless`, which keeps owners in the
/// `user.rootlesscontainers` xattr instead of chowning.
pub fn snapshot(root: &Path, rootless: bool) -> std::collections::BTreeMap<PathBuf, Node> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let md = std::fs::symlink_metadata(&path).unwrap();
            if md.file_type().is_dir() {
                stack.push(path.clone());
            }
            let mut xattrs = xattrs(&path);
            let mut owner = (md.uid(), md.gid());
            if rootless {
                owner = (0, 0);
                if let Some(i) = xattrs
                    .iter()
                    .position(|(n, _)| n == "user.rootlesscontainers")
                {
                    owner = decode_rootless(&xattrs.remove(i).1);
                }
            }
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                Node {
                    mode: md.mode(),
                    owner,
                    content: md.is_file().then(|| std::fs::read(&path).unwrap()),
                    link: md.is_symlink().then(|| std::fs::read_link(&path).unwrap()),
                    xattrs,
                    rdev: md.rdev(),
                },
            );
        }
    }
    out
}

/// The protobuf umoci writes: field 1 uid, field 2 gid, both varints.
fn decode_rootless(mut bytes: &[u8]) -> (u32, u32) {
    let mut ids = (0, 0);
    while let [tag, rest @ ..] = bytes {
        let (mut value, mut shift, mut used) = (0u64, 0, 0);
        for b in rest {
            used += 1;
            value |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        match tag >> 3 {
            1 => ids.0 = value as u32,
            2 => ids.1 = value as u32,
            _ => {}
        }
        bytes = &rest[used..];
    }
    ids
}

/// A temp dir whose path is all lower case: podman derives an image name
/// from an `oci:` path and refuses upper case in it.
pub fn lowercase_tempdir() -> tempfile::TempDir {
    loop {
        let dir = super::tempdir();
        let path = dir.path().to_string_lossy().into_owned();
        if path == path.to_lowercase() {
            return dir;
        }
    }
}

/// A podman of the test's own: its storage and the containers.conf that
/// works on this kind of host (as scripts/lib.sh writes it) under `dir`.
pub fn podman(dir: &Path) -> Command {
    let conf = dir.join("containers.conf");
    if !conf.exists() {
        write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\
             [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
        );
    }
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", &conf)
        .arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"));
    cmd
}

/// A docker-registry on a free port of 127.0.0.1, killed when dropped.
pub struct Registry {
    child: Child,
    pub addr: String,
}

impl Registry {
    pub fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n",
                dir.join("registry-data").display()
            ),
        );
        let mut child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start docker-registry");
        for _ in 0..100 {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Registry { child, addr };
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("docker-registry did not listen on {addr}");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A busybox-static root: /bin/busybox and the applets the tests use.
pub fn busybox_root(root: &Path) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in ["sh", "cat", "ls", "echo", "test"] {
        symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    write(&root.join("etc/hello"), "hello from the parent\n");
    write(&root.join("etc/old/gone"), "hidden by an opaque dir\n");
}

/// The entries of a gzip layer: path, type, link target, uid, gid.
pub fn layer_entries(
    layout: &Path,
    digest: &str,
) -> Vec<(String, tar::EntryType, Option<String>, u64, u64)> {
    let blob = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let file = std::fs::File::open(blob).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                h.entry_type(),
                e.link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned()),
                h.uid().unwrap(),
                h.gid().unwrap(),
            )
        })
        .collect()
}

/// parent: busybox with /etc/hello and /etc/old/gone; child (an overlay
/// upper dir): adds /etc/child, whites out /etc/hello, makes /etc/old opaque.
pub fn parent_and_child(tmp: &Path, layout: &Path, compression: &str) {
    let root = tmp.join(format!("root-{compression}"));
    busybox_root(&root);
    commit(
        &root,
        layout,
        &format!("base:{compression}"),
        &["--compression", compression, "--cmd", "echo parent"],
    );
    let upper = tmp.join(format!("upper-{compression}"));
    write(&upper.join("etc/child"), "added by the child\n");
    mknod(&upper.join("etc/hello"), libc::S_IFCHR, 0, 0);
    write(&upper.join("etc/old/new"), "new in an opaque dir\n");
    // Both forms overlayfs writes: trusted.* as root, user.* when rootless.
    let opaque = if compression == "gzip" {
        "trusted"
    } else {
        "user"
    };
    set_xattr(
        &upper.join("etc/old"),
        &format!("{opaque}.overlay.opaque"),
        b"y",
    );
    commit(
        &upper,
        layout,
        &format!("child:{compression}"),
        &[
            "--parent",
            &format!("base:{compression}"),
            "--overlay-upper",
            "--compression",
            compression,
        ],
    );
}
