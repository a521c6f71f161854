//! The download service: the one part of a build with network.
//!
//! Build containers have their own network namespace with only `lo` (no
//! host network, no host loopback, no host abstract sockets). What a build
//! must download, Portage's distfiles and bob-core's `download_file`, it
//! asks kiln for: bob-core sets Portage's FETCHCOMMAND to
//! `bob-core/lib/fetch.py`, which sends the URI over a unix socket kiln
//! binds into the container at `/kiln/fetch/socket`. A process kiln forks
//! for the container's lifetime, with no capabilities and kiln's seccomp
//! filter, downloads it with kiln's own HTTP code (fetch::mirror) into a
//! file of its own and streams it back; fetch.py writes it where Portage
//! asked, and Portage checks it against the Manifest as always.
//!
//! What the service fetches (docs/security.md): `http(s)://` URIs under a
//! mirror of `[sources]` (the user chose those, wherever they are), and other
//! `http(s)://` URIs only from public addresses: a host name that resolves
//! to loopback, a private, link-local or other special range is refused,
//! and the check is made on the very addresses connected to (redirects
//! included), so a build cannot reach the host's own services or its LAN
//! through it. With `--offline` there is no service, and fetch.py says so.
//!
//! The protocol, one request per connection: the client sends the URI and a
//! newline; kiln answers `OK <size>\n` and the bytes, or `ERR <why>\n`.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};

use crate::error::IoError;
use crate::fetch::mirror::Mirrors;
use crate::printer::{Printer, Verbosity};

/// The socket's name in the dir mounted at `/kiln/fetch`.
const SOCKET: &str = "socket";
/// A request is one URI; no mirror or upstream URI is near this long.
const MAX_REQUEST: u64 = 8192;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong starting the service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot open {} to the build", path.display())]
    Share {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot fork the download service")]
    Fork(#[source] nix::Error),
}

/// The service of one build container; stopped on drop.
pub struct Downloader {
    server: Option<Pid>,
}

impl Downloader {
    /// Starts the service on `dir`/socket, serving files from `mirrors`
    /// (the `http(s)://` mirrors of `[sources]`) and public hosts; it notes
    /// what it fetched and refused in `log`. `offline`: no service, `dir`
    /// stays empty.
    pub fn start(
        dir: &Path,
        mirrors: &[String],
        offline: bool,
        log: &Path,
    ) -> Result<Downloader, Error> {
        fs::create_dir_all(dir).map_err(IoError::at("create", dir))?;
        if offline {
            return Ok(Downloader { server: None });
        }
        let work = dir.with_extension("downloads");
        fs::create_dir_all(&work).map_err(IoError::at("create", &work))?;
        let listener = bind(dir)?;
        let service = Service {
            mirrors: mirrors
                .iter()
                .map(|m| m.trim_end_matches('/').to_string())
                .collect(),
            work,
            log: log.to_path_buf(),
        };
        let parent = getpid();
        // SAFETY: the child runs only the service below and leaves with _exit.
        match unsafe { fork() }.map_err(Error::Fork)? {
            ForkResult::Child => {
                // SAFETY: plain prctl; then make sure kiln did not die first.
                unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
                let code = if getppid() != parent {
                    1
                } else {
                    match crate::runtime::confine::drop_all() {
                        Ok(()) => service.serve(&listener),
                        Err(e) => {
                            service.note(&format!("cannot drop its privileges: {e}"));
                            1
                        }
                    }
                };
                // SAFETY: leaving the forked child.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => Ok(Downloader {
                server: Some(child),
            }),
        }
    }
}

impl Drop for Downloader {
    fn drop(&mut self) {
        if let Some(pid) = self.server.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// The listening socket, reachable by every user of the container (Portage
/// fetches as its own user). Bound through /proc/self/fd: a cache path can
/// be longer than a socket address may be.
fn bind(dir: &Path) -> Result<UnixListener, Error> {
    let handle = fs::File::open(dir).map_err(IoError::at("open", dir))?;
    let path = dir.join(SOCKET);
    let _ = fs::remove_file(&path);
    let short = format!("/proc/self/fd/{}/{SOCKET}", handle.as_raw_fd());
    let listener = UnixListener::bind(&short).map_err(IoError::at("bind", &path))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).map_err(|source| {
        Error::Share {
            path: path.clone(),
            source,
        }
    })?;
    Ok(listener)
}

struct Service {
    /// Mirror URLs without a trailing slash.
    mirrors: Vec<String>,
    /// Where a download is made before it is streamed.
    work: PathBuf,
    log: PathBuf,
}

impl Service {
    /// Answers requests one at a time until kiln kills it.
    fn serve(&self, listener: &UnixListener) -> i32 {
        let printer = Printer::new(Verbosity::Quiet, Some(false), false);
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = match self.request(&mut stream) {
                Ok(uri) => self.fetch(&uri, &printer),
                Err(why) => Err(why),
            };
            if let Err(why) = answer.and_then(|(uri, file)| {
                let sent = send(&mut stream, &file);
                let _ = fs::remove_file(&file);
                sent.map(|size| self.note(&format!("downloaded {uri} ({size} bytes)")))
            }) {
                self.note(&format!("not fetched: {why}"));
                let _ = stream.write_all(format!("ERR {why}\n").as_bytes());
            }
        }
        0
    }

    fn request(&self, stream: &mut UnixStream) -> Result<String, String> {
        stream
            .set_read_timeout(Some(REQUEST_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        BufReader::new(stream.take(MAX_REQUEST))
            .read_line(&mut line)
            .map_err(|e| format!("reading the request: {e}"))?;
        let uri = line.strip_suffix('\n').ok_or("the request has no end")?;
        Ok(uri.to_string())
    }

    /// Downloads `uri` into a file of the work dir, if the policy allows it.
    fn fetch(&self, uri: &str, printer: &Printer) -> Result<(String, PathBuf), String> {
        let (base, rel, public) = allowed(uri, &self.mirrors)?;
        let file = self.work.join("download");
        let _ = fs::remove_file(&file);
        let mirrors = Mirrors::new(&[base], Path::new("/"), false, printer);
        let mirrors = if public {
            check_public(uri)?;
            mirrors.resolve_with(PublicOnly)
        } else {
            mirrors
        };
        match mirrors.download(&rel, &file, None) {
            Ok(_) => Ok((uri.to_string(), file)),
            Err(e) => {
                let _ = fs::remove_file(&file);
                Err(e.to_string().replace('\n', ";"))
            }
        }
    }

    /// A line in the build's log, beside the container's output.
    fn note(&self, what: &str) {
        if let Ok(mut log) = fs::OpenOptions::new().append(true).open(&self.log) {
            let _ = writeln!(log, "kiln download service: {what}");
        }
    }
}

fn send(stream: &mut UnixStream, file: &Path) -> Result<u64, String> {
    let mut data = fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let size = data.metadata().map_err(|e| e.to_string())?.len();
    stream
        .write_all(format!("OK {size}\n").as_bytes())
        .and_then(|()| std::io::copy(&mut data, stream))
        .map_err(|e| format!("sending it to the build: {e}"))?;
    Ok(size)
}

/// The base URL and path to fetch `uri` as, and whether it must come from a
/// public address; or why it is refused.
fn allowed(uri: &str, mirrors: &[String]) -> Result<(String, String, bool), String> {
    if uri.is_empty()
        || uri.len() as u64 >= MAX_REQUEST
        || uri.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!("{uri:?} is not a URI"));
    }
    let uri = uri.split('#').next().unwrap_or(uri);
    let rest = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .ok_or_else(|| format!("{uri}: only http:// and https:// are fetched"))?;
    for mirror in mirrors {
        if let Some(rel) = uri.strip_prefix(&format!("{mirror}/"))
            && !rel.is_empty()
        {
            return Ok((mirror.clone(), rel.to_string(), false));
        }
    }
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| format!("{uri}: no file in the URI"))?;
    if authority.is_empty() || authority.contains('@') || path.is_empty() {
        return Err(format!("{uri}: no host or no file in the URI"));
    }
    let base = &uri[..uri.len() - path.len() - 1];
    Ok((base.to_string(), path.to_string(), true))
}

/// Refuses a host that resolves only to addresses of the host machine or its
/// networks, with a message that says so (PublicOnly enforces it again on
/// the addresses the download connects to).
fn check_public(uri: &str) -> Result<(), String> {
    let parsed: ureq::http::Uri = uri.parse().map_err(|e| format!("{uri}: {e}"))?;
    let host = parsed.host().ok_or_else(|| format!("{uri}: no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = parsed.port_u16().unwrap_or(match parsed.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    let addrs: Vec<IpAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{uri}: cannot resolve {host}: {e}"))?
        .map(|a| a.ip())
        .collect();
    if addrs.iter().any(|ip| is_public(*ip)) {
        Ok(())
    } else {
        Err(format!(
            "{uri}: {host} is not a public address, and not a mirror of [sources]: a build reaches the host's own and private networks only through the mirrors kiln.toml names"
        ))
    }
}

/// A resolver that keeps only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl Resolver for PublicOnly {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let all = DefaultResolver::default().resolve(uri, config, timeout)?;
        let mut kept = self.empty();
        for addr in all.iter().filter(|a| is_public(a.ip())) {
            kept.push(*addr);
        }
        if kept.is_empty() {
            return Err(ureq::Error::Other(
                format!("{uri} resolves to no public address").into(),
            ));
        }
        Ok(kept)
    }
}

/// Whether an address is on the internet at large: not this machine, not a
/// private, shared, link-local, multicast, reserved or documentation range.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) leads to the IPv4 address in its low bits
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || s[0] & 0xfe00 == 0xfc00 // unique local
                || s[0] & 0xffc0 == 0xfe80 // link-local
                || s[..2] == [0x2001, 0xdb8]) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && o[1] & 0xc0 == 64) // shared (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && o[1] & 0xfe == 18) // benchmarking
        || o[0] >= 240) // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_any_address_others_public_only() {
        let mirrors = vec!["http://127.0.0.1:8080".to_string()];
        assert_eq!(
            allowed("http://127.0.0.1:8080/distfiles/a.tar.gz", &mirrors).unwrap(),
            (mirrors[0].clone(), "distfiles/a.tar.gz".into(), false)
        );
        assert_eq!(
            allowed("https://ftp.gnu.org/gnu/hello/hello-2.12.tar.gz", &mirrors).unwrap(),
            (
                "https://ftp.gnu.org".into(),
                "gnu/hello/hello-2.12.tar.gz".into(),
                true
            )
        );
        // The same host on another port is no mirror.
        assert!(allowed("http://127.0.0.1:8081/x", &mirrors).unwrap().2);
        for bad in [
            "ftp://ftp.gnu.org/x",
            "file:///etc/passwd",
            "http://user@host/x",
            "http://host",
            "http://host/a b",
            "",
        ] {
            assert!(allowed(bad, &mirrors).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "140.211.166.134", "2001:4860:4860::8888"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(check_public("http://127.0.0.1:9/x").is_err());
    }
}
