//! Getting files from mirrors: `https://`, `http://`, `file://` or a plain
//! directory, tried in the order `kiln.toml` lists them. A mirror that is
//! down, answers 404 or keeps cutting the download off is skipped for the
//! next one; a download that breaks off resumes with `Range` (a server that
//! ignores it answers 200, and the file starts again from zero).
//!
//! This module only moves bytes; whether they are the right ones is decided
//! by the caller (size, SHA512, signature) before they enter the cache.
//!
//! A failure to write the download (a full cache) is no mirror's fault: it
//! stops the download at once, the partial file is removed to give the
//! space back, and the error names the file, not the mirror.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::Timeout;

use super::cache::{CopyError, copy_file};
use crate::error::WriteError;
use crate::printer::Printer;

/// Attempts per mirror for errors that may pass (timeouts, cut transfers, 5xx).
const ATTEMPTS: u32 = 3;
/// Sidecar files (signatures, checksums, latest-*.txt) are small; a mirror
/// sending more is broken or hostile.
const SMALL_LIMIT: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    Http(String),
    Local(PathBuf),
}

impl Mirror {
    /// A mirror as written in kiln.toml; a plain path is relative to `base`.
    pub fn parse(spec: &str, base: &Path) -> Mirror {
        let trimmed = spec.trim_end_matches('/');
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            Mirror::Http(trimmed.to_string())
        } else if let Some(path) = spec.strip_prefix("file://") {
            Mirror::Local(PathBuf::from(path))
        } else {
            Mirror::Local(base.join(spec))
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Mirror::Local(_))
    }

    /// Where `rel` is on this mirror, for messages.
    pub fn location(&self, rel: &str) -> String {
        match self {
            Mirror::Http(base) => format!("{base}/{rel}"),
            Mirror::Local(dir) => format!("file://{}", dir.join(rel).display()),
        }
    }
}

impl std::fmt::Display for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mirror::Http(base) => f.write_str(base),
            Mirror::Local(dir) => write!(f, "file://{}", dir.display()),
        }
    }
}

/// Why one mirror could not give a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    /// Connection refused, no such host: no point in retrying it.
    Down(String),
    /// Could pass with another try.
    Transient(String),
    Truncated {
        got: u64,
        expected: u64,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound => f.write_str("not found"),
            Failure::Down(why) => write!(f, "mirror down: {why}"),
            Failure::Transient(why) => f.write_str(why),
            Failure::Truncated { got, expected } => {
                write!(f, "truncated: got {got} bytes, expected {expected}")
            }
        }
    }
}

/// No mirror could give `rel`: each one's reason, in order.
#[derive(Debug)]
pub struct AllFailed {
    pub rel: String,
    pub tried: Vec<(String, Failure)>,
    pub offline: bool,
}

impl AllFailed {
    pub fn all_not_found(&self) -> bool {
        self.tried.iter().all(|(_, f)| *f == Failure::NotFound)
    }
}

impl std::fmt::Display for AllFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tried.is_empty() {
            return write!(
                f,
                "no mirror to get {} from{}",
                self.rel,
                if self.offline {
                    " (--offline uses only file:// and directory mirrors)"
                } else {
                    ""
                }
            );
        }
        write!(f, "could not get {} from any mirror", self.rel)?;
        for (location, why) in &self.tried {
            write!(f, "\n  {location}: {why}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AllFailed {}

/// Why [`Mirrors::download`] gave no file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Mirrors(#[from] AllFailed),
    /// Writing the download failed; every mirror would fail the same way.
    #[error(transparent)]
    Local(#[from] WriteError),
}

/// One try at one mirror: the mirror failed, or kiln's own disk did.
enum Attempt {
    Mirror(Failure),
    Local(WriteError),
}

impl From<Failure> for Attempt {
    fn from(failure: Failure) -> Attempt {
        Attempt::Mirror(failure)
    }
}

/// Whether another try at the same mirror may succeed.
trait MayPass {
    fn may_pass(&self) -> bool;
}

impl MayPass for Failure {
    fn may_pass(&self) -> bool {
        matches!(self, Failure::Transient(_))
    }
}

impl MayPass for Attempt {
    fn may_pass(&self) -> bool {
        matches!(self, Attempt::Mirror(f) if f.may_pass())
    }
}

pub struct Mirrors<'p> {
    list: Vec<Mirror>,
    /// Why a mirror was found down in this run, by index: it is not asked
    /// again for the next files, so a dead first mirror costs one timeout.
    down: RefCell<Vec<Option<Failure>>>,
    agent: ureq::Agent,
    offline: bool,
    printer: &'p Printer,
}

impl<'p> Mirrors<'p> {
    /// With `offline`, remote mirrors are dropped: nothing touches the network.
    /// `KILN_HTTP_TIMEOUT` (seconds, default 30) is how long a mirror may
    /// stay silent.
    pub fn new(specs: &[String], base: &Path, offline: bool, printer: &'p Printer) -> Self {
        let list: Vec<Mirror> = specs
            .iter()
            .map(|s| Mirror::parse(s, base))
            .filter(|m| !offline || m.is_local())
            .collect();
        let silence = Duration::from_secs(
            std::env::var("KILN_HTTP_TIMEOUT")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&s| s > 0)
                .unwrap_or(30),
        );
        // A mirror that does not answer is down (next mirror); one that
        // stalls in the middle of a body may recover (retry, resume). The
        // longer per-read limit lets the response timeout fire first.
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(silence))
            .timeout_recv_response(Some(silence))
            .timeout_per_read(Some(silence * 2))
            .http_status_as_error(false)
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Mirrors {
            down: RefCell::new(vec![None; list.len()]),
            list,
            agent,
            offline,
            printer,
        }
    }

    pub fn offline(&self) -> bool {
        self.offline
    }

    /// Connects only to the addresses `resolver` gives: a build's download
    /// service keeps the host's own and private networks out this way.
    pub fn resolve_with(mut self, resolver: impl ureq::unversioned::resolver::Resolver) -> Self {
        self.agent = ureq::Agent::with_parts(
            self.agent.config().clone(),
            ureq::unversioned::transport::DefaultConnector::default(),
            resolver,
        );
        self
    }

    /// A small file (signature, checksums, latest-*.txt), from the first
    /// mirror that has it.
    pub fn get_small(&self, rel: &str) -> Result<(Vec<u8>, &Mirror), AllFailed> {
        let mut tried = Vec::new();
        for (i, mirror) in self.list.iter().enumerate() {
            let got = self
                .skip_if_down(i)
                .and_then(|()| self.small_from(mirror, rel));
            match got {
                Ok(bytes) => return Ok((bytes, mirror)),
                Err(why) => tried.push((mirror.location(rel), self.note(i, why))),
            }
        }
        Err(self.all_failed(rel, tried))
    }

    fn small_from(&self, mirror: &Mirror, rel: &str) -> Result<Vec<u8>, Failure> {
        match mirror {
            Mirror::Local(dir) => read_local(&dir.join(rel), SMALL_LIMIT),
            Mirror::Http(base) => retry(|| {
                let url = format!("{base}/{rel}");
                let resp = self.agent.get(&url).call().map_err(classify)?;
                match resp.status().as_u16() {
                    200 => {}
                    404 | 410 => return Err(Failure::NotFound),
                    s => return Err(status_failure(s)),
                }
                let mut bytes = Vec::new();
                resp.into_body()
                    .into_with_config()
                    .limit(SMALL_LIMIT)
                    .reader()
                    .read_to_end(&mut bytes)
                    .map_err(|e| Failure::Transient(format!("reading: {e}")))?;
                Ok(bytes)
            }),
        }
    }

    /// Download `rel` into `dest` (a partial file that may hold the start
    /// of it from an earlier try), checking the size when it is known.
    /// Returns the mirror that gave it. A failure to write `dest` ends the
    /// download there and removes `dest`.
    pub fn download(
        &self,
        rel: &str,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<&Mirror, DownloadError> {
        let mut tried = Vec::new();
        let name = rel.rsplit('/').next().unwrap_or(rel);
        for (i, mirror) in self.list.iter().enumerate() {
            let got = self.skip_if_down(i).map_err(Attempt::Mirror);
            let got = got.and_then(|()| match mirror {
                Mirror::Local(dir) => copy_local(&dir.join(rel), dest),
                Mirror::Http(base) => {
                    retry(|| self.http_download(&format!("{base}/{rel}"), name, dest, size))
                }
            });
            let got = match got {
                Ok(got) => Ok(got),
                Err(Attempt::Local(e)) => {
                    let _ = fs::remove_file(dest);
                    return Err(e.into());
                }
                Err(Attempt::Mirror(why)) => Err(self.note(i, why)),
            };
            let got = got.and_then(|got| match size {
                Some(expected) if got != expected => Err(Failure::Truncated { got, expected }),
                _ => Ok(()),
            });
            if let Err(Failure::Truncated { .. }) = got {
                // A short or long file is no start to resume from.
                let _ = fs::remove_file(dest);
            }
            match got {
                Ok(()) => return Ok(mirror),
                Err(why) => {
                    if i + 1 < self.list.len() {
                        self.printer.warn(format!(
                            "{}: {why}; trying the next mirror",
                            mirror.location(rel)
                        ));
                    }
                    tried.push((mirror.location(rel), why));
                }
            }
        }
        Err(self.all_failed(rel, tried).into())
    }

    fn skip_if_down(&self, i: usize) -> Result<(), Failure> {
        match &self.down.borrow()[i] {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Remember a mirror that is down; pass the failure on.
    fn note(&self, i: usize, why: Failure) -> Failure {
        if let Failure::Down(_) = why {
            self.down.borrow_mut()[i] = Some(why.clone());
        }
        why
    }

    fn all_failed(&self, rel: &str, tried: Vec<(String, Failure)>) -> AllFailed {
        AllFailed {
            rel: rel.to_string(),
            tried,
            offline: self.offline,
        }
    }

    /// One HTTP attempt: resume from what `dest` holds; returns the size.
    fn http_download(
        &self,
        url: &str,
        name: &str,
        dest: &Path,
        size: Option<u64>,
    ) -> Result<u64, Attempt> {
        let io_err = |e: io::Error| Attempt::Local(WriteError::new(dest, e));
        let mut have = fs::metadata(dest).map_or(0, |m| m.len());
        if size.is_some_and(|s| have > s) {
            have = 0;
        }
        let mut req = self.agent.get(url);
        if have > 0 {
            req = req.header("Range", format!("bytes={have}-"));
        }
        let resp = req.call().map_err(classify)?;
        let status = resp.status().as_u16();
        let append = match status {
            206 => true,
            200 => false,
            // The partial file already holds everything the server has.
            416 if have > 0 => return Ok(have),
            404 | 410 => return Err(Failure::NotFound.into()),
            s => return Err(status_failure(s).into()),
        };
        if !append {
            have = 0;
        }
        let length = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let total = size.or(length.map(|l| l + have)).unwrap_or(0);
        let mut file = File::options()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(dest)
            .map_err(io_err)?;
        let bar = self.printer.bytes_bar(total, name.to_string());
        bar.set_position(have);
        let mut reader = resp.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = have;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    bar.abandon();
                    file.sync_all().map_err(io_err)?;
                    return Err(Failure::Transient(format!(
                        "transfer broke off after {written} bytes: {e}"
                    ))
                    .into());
                }
            };
            file.write_all(&buf[..n]).map_err(io_err)?;
            written += n as u64;
            bar.set_position(written);
        }
        bar.finish_and_clear();
        file.sync_all().map_err(io_err)?;
        match size {
            // The response ended normally, so the mirror's file is short.
            Some(expected) if written < expected => Err(Failure::Truncated {
                got: written,
                expected,
            }
            .into()),
            _ => Ok(written),
        }
    }
}

/// Try up to [`ATTEMPTS`] times while the failure may pass, waiting a little
/// longer each time.
fn retry<T, E: MayPass>(mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    let mut n = 1;
    loop {
        match attempt() {
            Err(e) if e.may_pass() && n < ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(200 * u64::from(n)));
                n += 1;
            }
            other => return other,
        }
    }
}

fn classify(err: ureq::Error) -> Failure {
    match &err {
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => Failure::Down(err.to_string()),
        ureq::Error::Timeout(
            Timeout::Resolve | Timeout::Connect | Timeout::SendRequest | Timeout::RecvResponse,
        ) => Failure::Down(format!("no answer: {err}")),
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            ) =>
        {
            Failure::Down(err.to_string())
        }
        _ => Failure::Transient(err.to_string()),
    }
}

fn status_failure(status: u16) -> Failure {
    let text = format!("HTTP status {status}");
    if status >= 500 || status == 429 || status == 408 {
        Failure::Transient(text)
    } else {
        Failure::Down(text)
    }
}

fn read_local(path: &Path, limit: u64) -> Result<Vec<u8>, Failure> {
    let file = File::open(path).map_err(local_failure)?;
    let mut bytes = Vec::new();
    file.take(limit)
        .read_to_end(&mut bytes)
        .map_err(local_failure)?;
    Ok(bytes)
}

fn copy_local(src: &Path, dest: &Path) -> Result<u64, Attempt> {
    if !src.is_file() {
        return Err(Failure::NotFound.into());
    }
    copy_file(src, dest).map_err(|e| match e {
        CopyError::Read(e) => Attempt::Mirror(local_failure(e)),
        CopyError::Write(e) => Attempt::Local(e),
    })
}

fn local_failure(e: io::Error) -> Failure {
    if e.kind() == io::ErrorKind::NotFound {
        Failure::NotFound
    } else {
        Failure::Down(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_mirrors() {
        let base = Path::new("/proj");
        assert_eq!(
            Mirror::parse("https://distfiles.gentoo.org/", base),
            Mirror::Http("https://distfiles.gentoo.org".into())
        );
        assert_eq!(
            Mirror::parse("file:///srv/m", base),
            Mirror::Local("/srv/m".into())
        );
        assert_eq!(
            Mirror::parse("mirror", base),
            Mirror::Local("/proj/mirror".into())
        );
        assert_eq!(
            Mirror::Local("/srv/m".into()).location("a/b"),
            "file:///srv/m/a/b"
        );
    }
}
