//! fetch: the stage3 and portage snapshot, from mirrors to the cache, verified.
//!
//! The flow: `kiln.lock` pins a mirror-relative path, size and SHA512 for
//! each input (written by `kiln update` from the signed `latest-*.txt`, the
//! `.DIGESTS` and the downloaded snapshot). [`inputs`] turns the pins into
//! verified files in the content-addressed [`Cache`], downloading only what
//! is missing; a file enters the cache only after its size, SHA512 (against
//! the lock and the mirror's `.DIGESTS`) and OpenPGP signature are checked.

pub mod cache;
pub mod config;
pub mod digests;
mod keys;
pub mod lock;
pub mod mirror;
pub mod pgp;
pub mod unpack;

use std::cell::{Cell, RefCell};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use thiserror::Error;

pub use cache::Cache;
pub use config::Sources;
pub use lock::{Lock, Pinned};

use crate::error::{HintExt, WriteError};
use crate::printer::Printer;
use keys::{KeyError, Resolver};
pub use mirror::Mirror;
use mirror::{AllFailed, DownloadError, Mirrors};
use pgp::{Keyring, PgpError};

/// How [`inputs`] may get files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Never touch the network: only the cache and `file://`/directory mirrors.
    pub offline: bool,
    /// The download cache: the cache dir's `downloads/` (crate::cache).
    pub downloads: PathBuf,
}

/// The verified inputs of a build: read-only files in the cache.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub lock: Lock,
    pub stage3: PathBuf,
    pub snapshot: PathBuf,
}

#[derive(Debug, Error)]
pub enum FetchError {
    #[error("SHA512 mismatch for {name} from {location}: got {got}, {authority} says {want}")]
    Mismatch {
        name: String,
        location: String,
        got: String,
        want: String,
        authority: String,
    },
    #[error("kiln.lock pins {name} with SHA512 {pinned}, but {location} lists {listed}")]
    LockDisagrees {
        name: String,
        pinned: String,
        location: String,
        listed: String,
    },
    #[error("missing signature for {name}: {rel} is on no mirror")]
    MissingSignature { name: String, rel: String },
    #[error("{location}: {reason}")]
    BadLatest { location: String, reason: String },
    #[error("--offline: {name} is not in the cache ({cache}) and no file:// mirror has {what}")]
    OfflineMissing {
        name: String,
        cache: PathBuf,
        /// "it", or the sidecar that is missing.
        what: String,
    },
}

/// The pinned inputs of the project in `project_dir`, verified in the cache:
/// what `kiln build` calls. Without a kiln.lock, the latest stage3 and
/// snapshot are looked up and pinned first (not with `offline`).
pub fn inputs(
    project_dir: &Path,
    sources: &Sources,
    options: &Options,
    printer: &Printer,
) -> anyhow::Result<Inputs> {
    let fetcher = Fetcher::new(project_dir, sources, options, printer)?;
    let lock = match Lock::read(project_dir)? {
        Some(lock) => {
            matches_sources(&lock, sources)?;
            lock
        }
        None if options.offline => {
            return Err(anyhow::anyhow!(
                "--offline: there is no kiln.lock in {}",
                project_dir.display()
            ))
            .hint("run `kiln update` (with network, or with a file:// mirror) to pin the inputs");
        }
        None => {
            let lock = fetcher.update()?;
            lock.write(project_dir)?;
            printer.status("Pinned", "the stage3 and snapshot in kiln.lock");
            lock
        }
    };
    fetcher.ensure(&lock)
}

/// A lock pinned for another arch, flavour or snapshot than kiln.toml now
/// asks for is stale: building from it would ignore the user's change.
fn matches_sources(lock: &Lock, sources: &Sources) -> anyhow::Result<()> {
    let stage3 = format!("stage3-{}-{}-", sources.arch, sources.flavour);
    let arch_dir = format!("releases/{}/autobuilds/", sources.arch);
    let stale =
        if !lock.stage3.path.starts_with(&arch_dir) || !lock.stage3.name().starts_with(&stage3) {
            Some(format!(
                "{} (kiln.toml asks for {stage3}*)",
                lock.stage3.name()
            ))
        } else if lock.snapshot.name() != sources.snapshot {
            Some(format!(
                "{} (kiln.toml asks for {})",
                lock.snapshot.name(),
                sources.snapshot
            ))
        } else {
            None
        };
    match stale {
        Some(what) => Err(anyhow::anyhow!("kiln.lock pins {what}"))
            .hint("run `kiln update` to pin inputs that match kiln.toml's [sources]"),
        None => Ok(()),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Stage3,
    Snapshot,
}

impl Kind {
    fn signature_suffix(self) -> &'static str {
        match self {
            Kind::Stage3 => ".asc",
            Kind::Snapshot => ".gpgsig",
        }
    }
}

/// Downloads and checks inputs for one project.
pub struct Fetcher<'p> {
    project_dir: PathBuf,
    sources: Sources,
    cache: Cache,
    mirrors: Mirrors<'p>,
    keys: RefCell<Option<Keyring>>,
    /// Pinned keys are downloaded afresh at most once per run.
    refreshed: Cell<bool>,
    printer: &'p Printer,
}

impl<'p> Fetcher<'p> {
    pub fn new(
        project_dir: &Path,
        sources: &Sources,
        options: &Options,
        printer: &'p Printer,
    ) -> anyhow::Result<Self> {
        Ok(Fetcher {
            project_dir: project_dir.to_path_buf(),
            sources: sources.clone(),
            cache: Cache::new(options.downloads.clone()),
            mirrors: Mirrors::new(&sources.mirrors, project_dir, options.offline, printer),
            keys: RefCell::new(None),
            refreshed: Cell::new(false),
            printer,
        })
    }

    fn resolver(&self) -> Resolver<'_> {
        Resolver {
            specs: &self.sources.keys,
            project_dir: &self.project_dir,
            cache: &self.cache,
            mirrors: &self.mirrors,
            printer: self.printer,
        }
    }

    /// Run a signature `check` with the trusted keys. Keys are loaded only
    /// when something must be verified, so a build whose inputs are cached
    /// needs neither network nor key files. When a downloaded key's cached
    /// copy does not know the signing subkey or says it expired, Gentoo may
    /// have rotated or extended it: get a fresh copy once and check again.
    fn checked<T>(&self, check: impl Fn(&Keyring) -> Result<T, PgpError>) -> anyhow::Result<T> {
        let resolver = self.resolver();
        if self.keys.borrow().is_none() {
            let keys = resolver.load(false).map_err(key_hint)?;
            *self.keys.borrow_mut() = Some(keys);
        }
        let first = check(self.keys.borrow().as_ref().expect("loaded above"));
        let err = match first {
            Err(e @ (PgpError::Untrusted { .. } | PgpError::Expired { .. }))
                if resolver.has_pins() && !self.refreshed.get() =>
            {
                e
            }
            other => return other.map_err(signature_hint),
        };
        self.refreshed.set(true);
        self.printer.status(
            "Key",
            format!("{err}: getting fresh copies of the pinned keys"),
        );
        let fresh = match resolver.load(true) {
            Ok(fresh) => fresh,
            Err(why) => {
                self.printer
                    .warn(format!("no fresh copy: {:#}", anyhow::Error::from(why)));
                return Err(signature_hint(err));
            }
        };
        let again = check(&fresh);
        *self.keys.borrow_mut() = Some(fresh);
        again.map_err(signature_hint)
    }

    /// Find the latest stage3 (through the signed `latest-*.txt`) and the
    /// snapshot, download and verify both, and return their pins.
    pub fn update(&self) -> anyhow::Result<Lock> {
        // A missing key is the likelier mistake; say so before any download.
        self.checked(|_| Ok(()))?;
        let _guard = self.cache.lock().context("locking the cache")?;
        let s = &self.sources;
        let auto = format!("releases/{}/autobuilds", s.arch);
        let latest_rel = format!("{auto}/latest-stage3-{}-{}.txt", s.arch, s.flavour);
        let (bytes, mirror) = self.mirrors.get_small(&latest_rel).hint(MIRROR_HINT)?;
        let location = mirror.location(&latest_rel);
        let text = String::from_utf8_lossy(&bytes);
        let name = latest_rel.rsplit('/').next().unwrap_or(&latest_rel);
        let (signed, signer) = self
            .checked(|keys| keys.verify_clearsigned(name, &text))
            .with_context(|| format!("checking {location}"))?;
        self.printer
            .verbose(format!("{name}: good signature by {}", signer.key));
        let (path, size) = parse_latest(&signed).map_err(|reason| FetchError::BadLatest {
            location: location.clone(),
            reason,
        })?;
        let stage3 = self.fetch(Kind::Stage3, &format!("{auto}/{path}"), None, Some(size))?;
        let snapshot = self.fetch(
            Kind::Snapshot,
            &format!("snapshots/{}", s.snapshot),
            None,
            None,
        )?;
        Ok(Lock::new(stage3.0, snapshot.0))
    }

    /// The pinned files, from the cache or downloaded and verified into it.
    pub fn ensure(&self, lock: &Lock) -> anyhow::Result<Inputs> {
        let _guard = self.cache.lock().context("locking the cache")?;
        let stage3 = self.ensure_one(Kind::Stage3, &lock.stage3)?;
        let snapshot = self.ensure_one(Kind::Snapshot, &lock.snapshot)?;
        Ok(Inputs {
            lock: lock.clone(),
            stage3,
            snapshot,
        })
    }

    fn ensure_one(&self, kind: Kind, pin: &Pinned) -> anyhow::Result<PathBuf> {
        if let Some(path) = self.cache.get(&pin.sha512, pin.size) {
            self.printer
                .verbose(format!("{}: in the cache", pin.name()));
            return Ok(path);
        }
        let (_, path) = self.fetch(kind, &pin.path, Some(pin), Some(pin.size))?;
        Ok(path)
    }

    /// Download `rel` and its sidecars, check everything, enter the cache.
    fn fetch(
        &self,
        kind: Kind,
        rel: &str,
        pin: Option<&Pinned>,
        size: Option<u64>,
    ) -> anyhow::Result<(Pinned, PathBuf)> {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
        let offline_missing = |e: AllFailed| -> anyhow::Error {
            if self.mirrors.offline() && e.all_not_found() {
                let missing = e.rel.rsplit('/').next().unwrap_or(&e.rel);
                let what = if missing == name {
                    "it".to_string()
                } else {
                    format!("{missing}, needed to verify it")
                };
                let err = anyhow::Error::new(e).context(FetchError::OfflineMissing {
                    name: name.clone(),
                    what,
                    cache: self.cache.root().to_path_buf(),
                });
                Err::<(), _>(err)
                    .hint("run `kiln fetch --to DIR` on a machine with network, and list DIR as a file:// mirror")
                    .unwrap_err()
            } else {
                Err::<(), _>(e).hint(MIRROR_HINT).unwrap_err()
            }
        };
        let mut sidecars = Vec::new();
        let mut listed = None;
        if let Kind::Stage3 = kind {
            let rel_digests = format!("{rel}.DIGESTS");
            let (bytes, mirror) = self
                .mirrors
                .get_small(&rel_digests)
                .map_err(offline_missing)?;
            let location = mirror.location(&rel_digests);
            let text = self.digests_text(&name, &bytes, &location)?;
            let want = digests::sha512_for(&text, &name, &location)?;
            if let Some(pin) = pin.filter(|p| p.sha512 != want) {
                return Err(FetchError::LockDisagrees {
                    name,
                    pinned: short(&pin.sha512),
                    location,
                    listed: short(&want),
                })
                .hint(LOCK_HINT);
            }
            // The unsigned .DIGESTS may only select a cached file that was
            // verified under this very name, never another cached stage3.
            if let (Some(size), None) = (size, pin)
                && let Some(path) = self.cache.get(&want, size)
                && self
                    .cache
                    .sidecars(&want)
                    .join(format!("{name}.asc"))
                    .is_file()
            {
                let pinned = Pinned {
                    path: rel.to_string(),
                    size,
                    sha512: want,
                };
                return Ok((pinned, path));
            }
            sidecars.push((format!("{name}.DIGESTS"), bytes));
            listed = Some((want, location));
        }
        let rel_sig = format!("{rel}{}", kind.signature_suffix());
        let signature = match self.mirrors.get_small(&rel_sig) {
            Ok((bytes, _)) => bytes,
            Err(e) if e.all_not_found() && !self.mirrors.offline() => {
                return Err(anyhow::Error::new(e).context(FetchError::MissingSignature {
                    name,
                    rel: rel_sig,
                }))
                .hint("kiln never uses an unsigned stage3 or snapshot: use a mirror that has the signature");
            }
            Err(e) => return Err(offline_missing(e)),
        };
        sidecars.push((
            rel_sig.rsplit('/').next().unwrap_or(&rel_sig).to_string(),
            signature.clone(),
        ));

        let tag = pin
            .map(|p| p.sha512.clone())
            .or_else(|| listed.as_ref().map(|l| l.0.clone()))
            .unwrap_or_else(|| "unpinned".into());
        let partial = self.cache.partial(&name, &tag)?;
        if pin.is_none() && listed.is_none() {
            // An unpinned name (gentoo-latest) may have changed since a
            // partial download: never resume it.
            let _ = fs::remove_file(&partial);
        }
        self.printer.status("Fetching", &name);
        let mirror = match self.mirrors.download(rel, &partial, size) {
            Ok(mirror) => mirror,
            Err(DownloadError::Mirrors(e)) => return Err(offline_missing(e)),
            Err(DownloadError::Local(e)) => return Err(e.into()),
        };
        let location = mirror.location(rel);
        let checked = self.check(&name, &partial, &location, pin, listed, &signature);
        let (sha512, size) = match checked {
            Ok(found) => found,
            Err(e) => {
                let _ = fs::remove_file(&partial);
                return Err(e);
            }
        };
        let path = match self.cache.insert(&partial, &sha512, &sidecars) {
            Ok(path) => path,
            Err(e) => {
                // Verified, but kept nowhere: the space is worth more than
                // a download that can be done again.
                let _ = fs::remove_file(&partial);
                return Err(e).with_context(|| {
                    format!(
                        "adding {name} to the cache in {}",
                        self.cache.root().display()
                    )
                });
            }
        };
        self.printer
            .status("Verified", format!("{name} ({size} bytes)"));
        let pinned = Pinned {
            path: rel.to_string(),
            size,
            sha512,
        };
        Ok((pinned, path))
    }

    fn check(
        &self,
        name: &str,
        file: &Path,
        location: &str,
        pin: Option<&Pinned>,
        listed: Option<(String, String)>,
        signature: &[u8],
    ) -> anyhow::Result<(String, u64)> {
        let (got, size) = cache::sha512_file(file)
            .with_context(|| format!("reading the download {}", file.display()))?;
        let mismatch = |want: &str, authority: String| FetchError::Mismatch {
            name: name.into(),
            location: location.into(),
            got: short(&got),
            want: short(want),
            authority,
        };
        if let Some((want, digests)) = listed.filter(|(want, _)| *want != got) {
            return Err(mismatch(&want, digests)).hint(
                "the mirror's file is corrupt or was changed: try again later or another mirror",
            );
        }
        if let Some(pin) = pin.filter(|p| p.sha512 != got) {
            return Err(mismatch(&pin.sha512, "kiln.lock".into())).hint(LOCK_HINT);
        }
        let signer = self.checked(|keys| {
            // Opened per check: a second check (after a key refresh) reads
            // the file again from the start.
            let data = fs::File::open(file).map_err(|e| PgpError::Unreadable {
                file: name.into(),
                reason: e.to_string(),
            })?;
            keys.verify_detached(name, signature, std::io::BufReader::new(data))
        })?;
        self.printer.verbose(format!(
            "{name}: good signature by {} ({})",
            signer.key, signer.uid
        ));
        Ok((got, size))
    }

    /// A `.DIGESTS` text; older releases clearsign it, and then its
    /// signature must be good too.
    fn digests_text(&self, name: &str, bytes: &[u8], location: &str) -> anyhow::Result<String> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        if !text.starts_with("-----BEGIN PGP SIGNED MESSAGE-----") {
            return Ok(text);
        }
        let (signed, _) = self
            .checked(|keys| keys.verify_clearsigned(&format!("{name}.DIGESTS"), &text))
            .with_context(|| format!("checking {location}"))?;
        Ok(signed)
    }

    /// Write the pinned files and their sidecars as a mirror in `dir`, for a
    /// machine without network (`[sources] mirrors = ["file://DIR"]`).
    pub fn export(&self, inputs: &Inputs, dir: &Path) -> anyhow::Result<()> {
        for (pin, path) in [
            (&inputs.lock.stage3, &inputs.stage3),
            (&inputs.lock.snapshot, &inputs.snapshot),
        ] {
            let dest = dir.join(&pin.path);
            let parent = dest.parent().expect("a pinned path has a parent");
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
            copy_atomic(path, &dest)?;
            let sidecars = self.cache.sidecars(&pin.sha512);
            for entry in fs::read_dir(&sidecars)
                .with_context(|| format!("reading {}", sidecars.display()))?
            {
                let entry = entry?;
                copy_atomic(&entry.path(), &parent.join(entry.file_name()))?;
            }
            self.printer.status("Exported", dest.display());
        }
        let keys = self.resolver().export(dir).map_err(key_hint)?;
        if keys > 0 {
            self.printer.status(
                "Exported",
                format!("{keys} pinned key(s) to {}", dir.display()),
            );
        }
        Ok(())
    }
}

/// The fix for a key that could not be loaded.
fn key_hint(err: KeyError) -> anyhow::Error {
    let hint = match &err {
        KeyError::Unavailable { .. } | KeyError::Offline { .. } => {
            "on a machine without network, run `kiln fetch --to DIR` where there is network \
             (it carries the keys) and list DIR in [sources] mirrors, or save the key file in \
             the project and list its path in [sources] keys"
        }
        KeyError::Read { .. } | KeyError::Pgp(_) => {
            "list the signing keys' public key files in kiln.toml's [sources] keys, relative \
             to kiln.toml's directory"
        }
        KeyError::BadFingerprint { .. } => {
            "write the primary key's full fingerprint, as `gpg --fingerprint` prints it"
        }
        KeyError::Save { .. } => return err.into(),
    };
    Err::<(), _>(err).hint(hint).unwrap_err()
}

/// The fix for a refused signature.
fn signature_hint(err: pgp::PgpError) -> anyhow::Error {
    use pgp::PgpError::*;
    let hint = match &err {
        Untrusted { .. } => {
            "if you trust that key, add its public key file to [sources] keys in kiln.toml"
        }
        Expired { .. } => {
            "Gentoo extends its keys before they expire: a key kiln downloads is fetched \
             afresh when this happens; for a key file in the project, get a fresh copy \
             (https://www.gentoo.org/downloads/signatures/) and replace the one kiln.toml lists"
        }
        Revoked { .. } | Bad { .. } | Invalid { .. } | Unreadable { .. } => {
            "do not use this file: the mirror may be compromised; try another mirror"
        }
        _ => return err.into(),
    };
    Err::<(), _>(err).hint(hint).unwrap_err()
}

const MIRROR_HINT: &str = "check the network and [sources] mirrors in kiln.toml; \
     without network, use --offline with a file:// mirror written by `kiln fetch --to`";

const LOCK_HINT: &str = "the mirror's file differs from the one kiln.lock pins: run `kiln update` \
     to pin what the mirror has now, or list a mirror that still has the pinned file";

/// Copy a cached file to `dest` through a temporary name, which a failure
/// removes.
fn copy_atomic(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let tmp = dest.with_extension("kiln-tmp");
    let copied = match cache::copy_file(src, &tmp) {
        Ok(_) => fs::rename(&tmp, dest).map_err(|e| WriteError::new(dest, e).into()),
        Err(cache::CopyError::Write(e)) => Err(e.into()),
        Err(cache::CopyError::Read(e)) => {
            Err(anyhow::Error::new(e).context(format!("reading {}", src.display())))
        }
    };
    if copied.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    copied
}

/// The last line of `latest-stage3-*.txt` that is not a comment:
/// `<dir>/<stage3 file name> <size>`.
fn parse_latest(signed: &str) -> Result<(String, u64), String> {
    let line = signed
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or("no '<dir>/<stage3 file> <size>' line in the signed text")?;
    let mut parts = line.split_whitespace();
    let (Some(path), Some(size), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("'{line}' is not '<dir>/<stage3 file> <size>'"));
    };
    let size = size
        .parse::<u64>()
        .map_err(|_| format!("'{size}' in '{line}' is not a size in bytes"))?;
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.starts_with('/')
        || path.split('/').any(|c| c == ".." || c.is_empty())
        || !name.starts_with("stage3-")
    {
        return Err(format!("'{path}' is not a stage3 path under autobuilds/"));
    }
    Ok((path.to_string(), size))
}

/// A hash as shown in messages: enough digits to tell two apart.
fn short(sha512: &str) -> String {
    format!("{}…", &sha512[..sha512.len().min(16)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_line() {
        let text = "# Latest as of x\n# ts=1\n20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz 263232916\n";
        assert_eq!(
            parse_latest(text).unwrap(),
            (
                "20231126T163200Z/stage3-amd64-openrc-20231126T163200Z.tar.xz".into(),
                263232916
            )
        );
        assert_eq!(
            parse_latest("../../etc/stage3-x 1\n").unwrap_err(),
            "'../../etc/stage3-x' is not a stage3 path under autobuilds/"
        );
        assert_eq!(
            parse_latest("T/stage3-x big\n").unwrap_err(),
            "'big' in 'T/stage3-x big' is not a size in bytes"
        );
    }
}
