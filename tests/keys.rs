//! Keys kiln downloads itself, pinned by fingerprint, as it does for
//! Gentoo's release and snapshot keys: a loopback WKD server (the direct
//! method's `.well-known/openpgpkey/hu/...` paths) serves the right key, the
//! wrong key, no key, and keys whose signing subkey was rotated or whose
//! expiry was extended after kiln cached them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::fetch::*;
use crate::util::{run_err, run_ok, stderr, tempdir};

const WKD: &str = ".well-known/openpgpkey/hu/kilntestwkdhash";

/// A WKD server over `dir` and the URL of its key.
fn wkd(dir: &Path) -> (PythonServer, String) {
    fs::create_dir_all(dir.join(".well-known/openpgpkey/hu")).unwrap();
    let server = PythonServer::start(dir);
    let url = format!("{}/{WKD}?l=release", server.url);
    (server, url)
}

/// Serve `key` as the WKD answer. WKD serves binary keys (not armored,
/// as a keyserver does), so an armored file is served dearmored.
fn serve(dir: &Path, key: &Path) {
    let out = dir.join(WKD);
    let _ = fs::remove_file(&out);
    if fs::read(key).unwrap().starts_with(b"-----BEGIN") {
        run_ok(
            Command::new("gpg")
                .args(["--batch", "--dearmor", "--output"])
                .arg(&out)
                .arg(key),
        );
    } else {
        fs::copy(key, &out).unwrap();
    }
}

/// kiln.toml with the mirror and one key pinned to `fpr`, got from `urls`.
fn config(project: &Path, mirror: &str, fpr: &str, urls: &[&str]) {
    let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    fs::write(
        project.join("kiln.toml"),
        format!(
            "[sources]\nmirrors = [{mirror:?}]\nkeys = [{{ fingerprint = {fpr:?}, urls = [{}] }}]\n",
            urls.join(", ")
        ),
    )
    .unwrap();
}

/// A WKD server in the fixture serving `key` (None: nothing), and the
/// project's kiln.toml pinning `fpr` to it over the fixture's mirror.
fn pinned_on_wkd(fx: &Fixture, key: Option<&Path>, fpr: &str) -> (PythonServer, PathBuf, String) {
    let dir = fx.tmp.path().join("wkd");
    let (server, url) = wkd(&dir);
    if let Some(key) = key {
        serve(&dir, key);
    }
    let mirror = format!("file://{}", fx.mirror.display());
    config(&fx.project, &mirror, fpr, &[&url]);
    (server, dir, url)
}

fn cached_key(fx: &Fixture, fpr: &str) -> PathBuf {
    fx.cache.join("keys").join(format!("{fpr}.asc"))
}

#[test]
fn a_pinned_key_is_downloaded_checked_cached_and_carried() {
    let fx = Fixture::new();
    let release = fpr("release");
    let (mut server, _, url) = pinned_on_wkd(&fx, Some(&keys().join("release.asc")), &release);

    let out = run_ok(&mut fx.kiln(&["update"]));
    assert!(
        stderr(&out).contains(&format!("Key {release} from {url}")),
        "{}",
        stderr(&out)
    );
    assert!(cached_key(&fx, &release).is_file());

    // Cached: no server needed any more.
    server.stop();
    fs::remove_file(fx.project.join("kiln.lock")).unwrap();
    run_ok(&mut fx.kiln(&["update"]));

    // `kiln fetch --to` carries it; an offline project with an empty cache
    // finds it on that mirror.
    let carried = fx.tmp.path().join("carried");
    run_ok(&mut fx.kiln(&["fetch", "--to", carried.to_str().unwrap()]));
    assert!(carried.join(format!("kiln-keys/{release}.asc")).is_file());
    let other = fx.tmp.path().join("other");
    fs::create_dir_all(&other).unwrap();
    fs::copy(carried.join("kiln.lock"), other.join("kiln.lock")).unwrap();
    config(
        &other,
        &format!("file://{}", carried.display()),
        &release,
        &[&url],
    );
    let out = run_ok(
        crate::util::kiln()
            .current_dir(&other)
            .env("KILN_CACHE_DIR", fx.tmp.path().join("other-cache"))
            .args(["fetch", "--offline"]),
    );
    assert!(
        stderr(&out).contains(&format!("kiln-keys/{release}.asc")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_key_with_another_fingerprint_is_refused() {
    let fx = Fixture::new();
    let (release, untrusted) = (fpr("release"), fpr("untrusted"));
    let (_server, _, url) = pinned_on_wkd(&fx, Some(&keys().join("untrusted.asc")), &release);
    let out = run_err(&mut fx.kiln(&["update"]));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("could not get the key {release}:"))
            && err.contains(&format!(
                "  {url}: {url} holds no key with the fingerprint {release} that kiln.toml \
                 pins (it holds {untrusted})"
            )),
        "{err}"
    );
    assert!(!cached_key(&fx, &release).exists(), "nothing may be cached");
    assert!(
        !cached_key(&fx, &untrusted).exists(),
        "nothing may be cached"
    );
    assert_eq!(fx.lock(), None);
}

#[test]
fn a_missing_key_names_every_place_tried_and_the_offline_fix() {
    let fx = Fixture::new();
    let release = fpr("release");
    let (_server, _, url) = pinned_on_wkd(&fx, None, &release);
    let out = run_err(&mut fx.kiln(&["update"]));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("  {url}: not found")) && err.contains("kiln fetch --to DIR"),
        "{err}"
    );

    // Offline, with no copy anywhere: said as such, nothing downloaded.
    let out = run_err(&mut fx.kiln(&["update", "--offline"]));
    assert!(
        stderr(&out).contains(&format!(
            "could not get the key {release}: kiln is offline and has no copy"
        )),
        "{}",
        stderr(&out)
    );
}

/// A key of its own for one test: a certify-only primary and signing
/// subkeys, in `dir/gnupg`, listed as `rot` in `dir/fingerprints` so that
/// the world's publish script signs with it.
struct OwnKey {
    dir: PathBuf,
    fpr: String,
}

impl OwnKey {
    /// Run `script` (bash, `g` is gpg on the key's home, `$fpr` its
    /// fingerprint once made) in the key's directory.
    fn gpg(&self, script: &str) {
        let full = format!(
            "set -e\ng() {{ gpg --homedir gnupg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '' \"$@\"; }}\n\
             fpr=$(awk '{{print $2}}' fingerprints 2>/dev/null || true)\n{script}\ngpgconf --homedir gnupg --kill all"
        );
        run_ok(
            Command::new("bash")
                .args(["-c", &full])
                .current_dir(&self.dir),
        );
    }

    /// `first_subkey` is gpg's arguments after the fingerprint for the
    /// first signing subkey (algorithm, usage, expiry).
    fn new(dir: &Path, first_subkey: &str, faked_time: &str) -> OwnKey {
        fs::create_dir_all(dir.join("gnupg")).unwrap();
        let mut key = OwnKey {
            dir: dir.to_path_buf(),
            fpr: String::new(),
        };
        key.gpg(&format!(
            "chmod 700 gnupg\n\
             g {faked_time} --quick-gen-key 'Kiln Rotating Key <rot@kiln.test>' ed25519 cert never\n\
             fpr=$(g --with-colons --list-keys | awk -F: '$1==\"fpr\"{{print $10; exit}}')\n\
             echo \"rot $fpr\" >fingerprints\n\
             g {faked_time} --quick-add-key \"$fpr\" {first_subkey}"
        ));
        key.fpr = fs::read_to_string(dir.join("fingerprints")).unwrap()[4..]
            .trim()
            .to_string();
        key
    }

    fn export(&self, name: &str) -> PathBuf {
        self.gpg(&format!("g --export \"$fpr\" >{name}"));
        self.dir.join(name)
    }

    /// Publish the fixture's stage3 and snapshot, signed by this key's
    /// newest signing subkey.
    fn publish(&self, fx: &Fixture) {
        run_ok(
            Command::new(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/test-world/publish"),
            )
            .arg("--keys")
            .arg(&self.dir)
            .args([
                "--sign-with",
                "rot",
                "--arch",
                "amd64",
                "--flavour",
                "openrc",
            ])
            .args(["--timestamp", TS, "--stage3"])
            .arg(&fx.stage3)
            .arg("--snapshot")
            .arg(&fx.snapshot)
            .arg(&fx.mirror),
        );
    }
}

#[test]
fn a_rotated_signing_subkey_is_followed() {
    let fx = Fixture::new();
    let tmp = tempdir();
    // The first subkey is made in the past: gpg signs with the newest
    // subkey, and two made in the same second would tie, so the rotation
    // below could silently sign with the old one.
    let key = OwnKey::new(
        &tmp.path().join("key"),
        "ed25519 sign never",
        "--faked-system-time 20250101T000000!",
    );
    let old = key.export("old.pgp");
    key.publish(&fx);
    let (_server, dir, _) = pinned_on_wkd(&fx, Some(&old), &key.fpr);
    run_ok(&mut fx.kiln(&["update"]));

    // A new signing subkey signs the next release; the WKD still serves
    // the old copy: refused, after one try for a fresh copy.
    key.gpg("g --quick-add-key \"$fpr\" ed25519 sign never");
    key.publish(&fx);
    let out = run_err(&mut fx.kiln(&["update"]));
    assert!(
        stderr(&out).contains("getting fresh copies of the pinned keys")
            && stderr(&out).contains("which is not one of the trusted keys"),
        "{}",
        stderr(&out)
    );

    // The WKD serves the new copy: kiln follows the rotation.
    serve(&dir, &key.export("new.pgp"));
    let out = run_ok(&mut fx.kiln(&["update"]));
    assert!(
        stderr(&out).contains("getting fresh copies of the pinned keys"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        fs::read(cached_key(&fx, &key.fpr)).unwrap(),
        fs::read(dir.join(WKD)).unwrap(),
        "the fresh copy replaces the cached one"
    );
}

#[test]
fn an_extended_expiry_is_followed() {
    let fx = Fixture::new();
    let tmp = tempdir();
    // The signing subkey expired on 2020-01-02 in the copy kiln caches
    // first; its owner then extends it, as Gentoo does every year.
    let key = OwnKey::new(
        &tmp.path().join("key"),
        "ed25519 sign 1d",
        "--faked-system-time 20200101T000000!",
    );
    let old = key.export("old.pgp");
    key.gpg(
        "sub=$(g --with-colons --list-keys | awk -F: '$1==\"fpr\"{print $10}' | tail -1)\n\
         g --quick-set-expire \"$fpr\" never \"$sub\"",
    );
    let new = key.export("new.pgp");
    key.publish(&fx);
    let (_server, dir, _) = pinned_on_wkd(&fx, Some(&old), &key.fpr);
    let out = run_err(&mut fx.kiln(&["update"]));
    assert!(
        stderr(&out).contains("which expired on 2020-01-02"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.lock(), None);

    serve(&dir, &new);
    run_ok(&mut fx.kiln(&["update"]));
    assert!(fx.lock().is_some());
}
