//! Helpers for the fetch tests: small Gentoo-shaped mirrors made with the
//! test world's own scripts (keys, publish, sign), a project directory with
//! its kiln.toml and private cache, and two real HTTP servers on 127.0.0.1:
//! `python3 -m http.server` (ignores Range) and a small one here that
//! honours Range and can cut a transfer short.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::{run_ok, tempdir};

pub const TS: &str = "20260101T000000Z";
pub const STAGE3: &str = "stage3-amd64-openrc-20260101T000000Z.tar.xz";
pub const STAGE3_REL: &str =
    "releases/amd64/autobuilds/20260101T000000Z/stage3-amd64-openrc-20260101T000000Z.tar.xz";
pub const LATEST_REL: &str = "releases/amd64/autobuilds/latest-stage3-amd64-openrc.txt";
pub const SNAPSHOT_REL: &str = "snapshots/gentoo-latest.tar.xz";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The world's four keys, made once per target dir (the script is idempotent).
pub fn keys() -> &'static Path {
    static KEYS: OnceLock<PathBuf> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fetch-keys");
        let _gpg = gpg_lock();
        run_ok(Command::new(repo().join("scripts/test-world/keys")).arg(&dir));
        dir
    })
}

/// The primary fingerprint of a world key.
pub fn fpr(name: &str) -> String {
    let text = std::fs::read_to_string(keys().join("fingerprints")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no key {name}"))
        .to_string()
}

/// The fingerprint of the signing subkey of the release key (Gentoo-like).
pub fn release_subkey() -> String {
    let out = run_ok(
        Command::new("gpg")
            .arg("--homedir")
            .arg(keys().join("gnupg"))
            .args(["--batch", "--with-colons", "--list-keys", &fpr("release")]),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().skip_while(|l| !l.starts_with("sub:"));
    lines
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("release key has a subkey")
}

/// The world's scripts stop the gpg agent of their key dir when they end,
/// which breaks a signature being made at the same time by another test
/// thread: every use of gpg here takes this lock.
static GPG: Mutex<()> = Mutex::new(());

fn gpg_lock() -> std::sync::MutexGuard<'static, ()> {
    GPG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sign `file` with a world key into `out` (detach or clear).
pub fn sign(name: &str, mode: &str, file: &Path, out: &Path) {
    let keys = keys();
    let _gpg = gpg_lock();
    run_ok(
        Command::new(repo().join("scripts/test-world/sign"))
            .arg(keys)
            .args([name, mode])
            .arg(file)
            .arg(out),
    );
}

/// A key made here (the world has none like it): a certify-only primary
/// with two signing subkeys, one expired on 2020-01-02 and one revoked, to
/// prove that kiln checks subkeys themselves and not only primary keys.
pub struct SubKeys {
    pub home: PathBuf,
    pub public: PathBuf,
    pub expired: String,
    pub revoked: String,
}

pub fn subkeys() -> &'static SubKeys {
    static SUBKEYS: OnceLock<SubKeys> = OnceLock::new();
    SUBKEYS.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fetch-subkeys");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let home = dir.join("gnupg");
        let script = r#"set -e
g() { gpg --homedir "$1" --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' "${@:2}"; }
h=$1; mkdir -m 700 "$h"
g "$h" --faked-system-time 20200101T000000! --quick-gen-key "Kiln Sub Key <sub@kiln.test>" ed25519 cert never
fpr=$(g "$h" --with-colons --list-keys | awk -F: '$1=="fpr"{print $10; exit}')
g "$h" --faked-system-time 20200101T000000! --quick-add-key "$fpr" ed25519 sign 1d
g "$h" --faked-system-time 20200101T000100! --quick-add-key "$fpr" ed25519 sign never
gpgconf --homedir "$h" --kill all
# Revoked in a copy only: gpg would refuse to sign with it in the original.
cp -a "$h" "$h-revoked"
printf 'key 2\nrevkey\ny\n0\n\ny\nsave\n' | gpg --homedir "$h-revoked" --batch --no-tty --pinentry-mode loopback --passphrase '' --command-fd 0 --edit-key "$fpr" >/dev/null 2>&1
g "$h-revoked" --with-colons --list-keys | grep -q '^sub:r:'
g "$h-revoked" --armor --export "$fpr" >"$2"
gpgconf --homedir "$h-revoked" --kill all
g "$h" --with-colons --list-keys | awk -F: '$1=="fpr"{print $10}' | tail -2"#;
        let public = dir.join("sub.asc");
        let _gpg = gpg_lock();
        let out = run_ok(
            Command::new("bash")
                .args(["-c", script, "subkeys"])
                .arg(&home)
                .arg(&public),
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let mut subs = text.lines().map(str::to_string);
        SubKeys {
            home,
            public,
            expired: subs.next().unwrap(),
            revoked: subs.next().unwrap(),
        }
    })
}

/// Sign `file` with one of [`subkeys`]' subkeys (the expired one inside its
/// validity, with a faked clock).
pub fn sign_with_subkey(sub: &str, file: &Path, out: &Path) {
    let keys = subkeys();
    let _gpg = gpg_lock();
    let mut cmd = Command::new("gpg");
    cmd.arg("--homedir")
        .arg(&keys.home)
        .args(["--batch", "--quiet", "--no-tty", "--yes"]);
    if sub == keys.expired {
        cmd.arg("--faked-system-time").arg("20200101T120000!");
    }
    run_ok(
        cmd.args([
            "--local-user",
            &format!("{sub}!"),
            "--armor",
            "--detach-sign",
            "-o",
        ])
        .arg(out)
        .arg(file),
    );
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(&keys.home)
        .args(["--kill", "all"])
        .status();
}

/// A tiny tar.xz holding `marker` in a file, made with the real tar and xz.
pub fn tarball(dir: &Path, name: &str, marker: &str) -> PathBuf {
    let src = dir.join(format!("{name}.src"));
    std::fs::create_dir_all(src.join("etc")).unwrap();
    std::fs::write(src.join("etc/marker"), marker).unwrap();
    // Some bulk so that a cut transfer and a resume are visible.
    let bulk: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    std::fs::write(src.join("etc/bulk"), bulk).unwrap();
    let out = dir.join(name);
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&src)
            .args(["-cJf"])
            .arg(&out)
            .arg("."),
    );
    out
}

/// Publish a stage3 and a snapshot with `scripts/test-world/publish`.
pub fn publish(mirror: &Path, signer: &str, stage3: &Path, snapshot: &Path) {
    publish_at(mirror, signer, TS, stage3, Some(snapshot));
}

/// Publish a stage3 (and a snapshot) as of timestamp `ts`: a later `ts`
/// becomes what latest-stage3-*.txt names.
pub fn publish_at(mirror: &Path, signer: &str, ts: &str, stage3: &Path, snapshot: Option<&Path>) {
    let keys = keys();
    let _gpg = gpg_lock();
    let mut cmd = Command::new(repo().join("scripts/test-world/publish"));
    cmd.arg("--keys")
        .arg(keys)
        .args([
            "--sign-with",
            signer,
            "--arch",
            "amd64",
            "--flavour",
            "openrc",
        ])
        .args(["--timestamp", ts, "--stage3"])
        .arg(stage3);
    if let Some(snapshot) = snapshot {
        cmd.arg("--snapshot").arg(snapshot);
    }
    run_ok(cmd.arg(mirror));
}

/// A published mirror with its source files and a project using it.
pub struct Fixture {
    pub tmp: tempfile::TempDir,
    pub mirror: PathBuf,
    pub stage3: PathBuf,
    pub snapshot: PathBuf,
    pub project: PathBuf,
    /// KILN_CACHE_DIR.
    pub cache_dir: PathBuf,
    /// Where fetch keeps what it downloads: the cache's downloads/.
    pub cache: PathBuf,
}

impl Fixture {
    /// A good mirror signed by the release key; the project trusts it.
    pub fn new() -> Fixture {
        let tmp = tempdir();
        let mirror = tmp.path().join("mirror");
        let stage3 = tarball(tmp.path(), "stage3.tar.xz", "stage3 one");
        let snapshot = tarball(tmp.path(), "gentoo-latest.tar.xz", "snapshot one");
        publish(&mirror, "release", &stage3, &snapshot);
        let project = tmp.path().join("project");
        std::fs::create_dir_all(&project).unwrap();
        let cache_dir = tmp.path().join("cache");
        let fx = Fixture {
            tmp,
            mirror,
            stage3,
            snapshot,
            project,
            cache: cache_dir.join("downloads"),
            cache_dir,
        };
        fx.config(&[&format!("file://{}", fx.mirror.display())], &["release"]);
        fx
    }

    /// Write kiln.toml with these mirrors and keys (world key names or paths).
    pub fn config(&self, mirrors: &[&str], names: &[&str]) {
        let quote = |v: Vec<String>| {
            v.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let keys = names
            .iter()
            .map(|k| match k.contains('/') {
                true => k.to_string(),
                false => keys().join(format!("{k}.asc")).display().to_string(),
            })
            .collect();
        let text = format!(
            "[sources]\nmirrors = [{}]\nkeys = [{}]\n",
            quote(mirrors.iter().map(|m| m.to_string()).collect()),
            quote(keys)
        );
        std::fs::write(self.project.join("kiln.toml"), text).unwrap();
    }

    /// `kiln ARGS` in the project with its own cache.
    pub fn kiln(&self, args: &[&str]) -> Command {
        let mut cmd = super::kiln();
        cmd.current_dir(&self.project)
            .env("KILN_CACHE_DIR", &self.cache_dir)
            .args(args);
        cmd
    }

    pub fn lock(&self) -> Option<String> {
        std::fs::read_to_string(self.project.join("kiln.lock")).ok()
    }

    /// Files that entered the cache.
    pub fn cached(&self) -> Vec<String> {
        std::fs::read_dir(self.cache.join("sha512"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mirror.join(rel)
    }
}

/// `python3 -m http.server` serving `dir` on 127.0.0.1; killed on drop.
pub struct PythonServer {
    child: Child,
    pub url: String,
}

impl PythonServer {
    pub fn start(dir: &Path) -> PythonServer {
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "--bind", "127.0.0.1", "0"])
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .unwrap_or_else(|| panic!("no port in {line:?}"))
            .to_string();
        PythonServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP/1.1 server that honours `Range: bytes=N-` and, once, cuts the
/// transfer of a file whose path ends with `cut.0` after `cut.1` bytes.
pub struct RangeServer {
    pub url: String,
    pub log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl RangeServer {
    pub fn start(root: &Path, cut: Option<(&str, u64)>) -> RangeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(Mutex::new(cut.map(|(s, n)| (s.to_string(), n))));
        let (root, log2, stop2) = (root.to_path_buf(), log.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, log, cut) = (root.clone(), log2.clone(), cut.clone());
                std::thread::spawn(move || {
                    let _ = serve_one(stream, &root, &log, &cut);
                });
            }
        });
        RangeServer {
            url: format!("http://127.0.0.1:{port}"),
            log,
            stop,
            port,
        }
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

type Cut = Arc<Mutex<Option<(String, u64)>>>;

fn serve_one(
    stream: TcpStream,
    root: &Path,
    log: &Mutex<Vec<String>>,
    cut: &Cut,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.trim_end_matches('-').parse::<u64>().ok());
        }
    }
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut out = stream;
    let file = root.join(path.trim_start_matches('/'));
    let Ok(data) = std::fs::read(&file) else {
        log.lock().unwrap().push(format!("GET {path} 404"));
        return out.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    let len = data.len() as u64;
    let start = range.unwrap_or(0);
    if start >= len && range.is_some() {
        log.lock()
            .unwrap()
            .push(format!("GET {path} range={start} 416"));
        return out.write_all(
            b"HTTP/1.1 416 Range Not Satisfiable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    }
    let status = if range.is_some() { 206 } else { 200 };
    log.lock()
        .unwrap()
        .push(format!("GET {path} range={start} {status}"));
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        if status == 206 {
            "Partial Content"
        } else {
            "OK"
        },
        len - start
    );
    if status == 206 {
        head += &format!("Content-Range: bytes {start}-{}/{len}\r\n", len - 1);
    }
    head += "\r\n";
    out.write_all(head.as_bytes())?;
    let body = &data[start as usize..];
    let mut cut = cut.lock().unwrap();
    if let Some((suffix, after)) = cut.clone()
        && path.ends_with(&suffix)
    {
        *cut = None;
        out.write_all(&body[..after as usize])?;
        out.flush()?;
        // Drop the connection mid-body: the client sees a short read.
        return out.shutdown(std::net::Shutdown::Both);
    }
    drop(cut);
    out.write_all(body)
}

/// The bytes of a file, for comparing a fetched file with its source.
pub fn read(path: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .read_to_end(&mut v)
        .unwrap();
    v
}
