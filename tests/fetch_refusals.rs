//! kiln's refusals of bad fetch inputs: each spoils one thing on a mirror
//! (bytes, signature, key, latest.txt, the lock) and expects the exact error
//! line over HTTP and over file://, with the cache and the lock untouched.

use std::fs;

use crate::fetch::sha512;
use crate::util::fetch::*;
use crate::util::{run_err, run_ok, stderr, tempdir};

/// `spoil`; `kiln ARGS` with an empty cache, over HTTP and over file://,
/// must fail with `message` (a line of stderr, `URL` standing for the
/// mirror) and leave the cache and the lock as they were.
fn refused(
    keys: &[&str],
    args: &[&str],
    spoil: impl FnOnce(&Fixture),
    message: impl Fn(&Fixture) -> String,
) {
    let fx = Fixture::new();
    fx.config(&[&format!("file://{}", fx.mirror.display())], keys);
    run_ok(&mut fx.kiln(&["update"]));
    fs::remove_dir_all(&fx.cache).unwrap();
    let lock = fx.lock();
    spoil(&fx);
    let server = PythonServer::start(&fx.mirror);
    for url in [
        server.url.clone(),
        format!("file://{}", fx.mirror.display()),
    ] {
        fx.config(&[&url], keys);
        let out = run_err(&mut fx.kiln(args));
        let want = message(&fx).replace("URL", &url);
        assert!(
            stderr(&out).lines().any(|l| l == want),
            "expected the line\n{want}\nin\n{}",
            stderr(&out)
        );
        assert_eq!(
            fx.cached(),
            Vec::<String>::new(),
            "nothing may enter the cache"
        );
        assert_eq!(fx.lock(), lock, "the lock must not change");
    }
}

/// Change the published stage3's bytes, keeping `.asc`/`.DIGESTS`
/// from the first unless `resign` names a key to sign the new bytes with.
fn swap_stage3(fx: &Fixture, resign: Option<&str>) {
    // Same size, one byte changed: only the hash can tell.
    let target = fx.path(STAGE3_REL);
    let mut bytes = read(&target);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(&target, bytes).unwrap();
    if let Some(key) = resign {
        sign(
            key,
            "detach",
            &target,
            &fx.path(&format!("{STAGE3_REL}.asc")),
        );
    }
}

fn short(sha: &str) -> String {
    format!("{}…", &sha[..16])
}

#[test]
fn refuses_sha512_mismatch() {
    refused(
        &["release"],
        &["update"],
        |fx| swap_stage3(fx, Some("release")),
        |fx| {
            format!(
                "error: SHA512 mismatch for {STAGE3} from URL/{STAGE3_REL}: got {}, URL/{STAGE3_REL}.DIGESTS says {}",
                short(&sha512(&fx.path(STAGE3_REL))),
                short(&sha512(&fx.stage3))
            )
        },
    );
}

#[test]
fn refuses_a_bad_signature() {
    // New bytes and a matching .DIGESTS, but the old signature.
    refused(
        &["release"],
        &["update"],
        |fx| {
            swap_stage3(fx, None);
            let digests = fx.path(&format!("{STAGE3_REL}.DIGESTS"));
            let text = fs::read_to_string(&digests).unwrap();
            let text = text.replace(&sha512(&fx.stage3), &sha512(&fx.path(STAGE3_REL)));
            fs::write(&digests, text).unwrap();
        },
        |_| {
            format!(
                "error: BAD signature on {STAGE3} by key {} (Kiln Test Release Key <release@kiln.test>): the file is not what was signed",
                release_subkey()
            )
        },
    );
}

fn resign_stage3(key: &'static str) -> impl FnOnce(&Fixture) {
    move |fx| {
        let file = fx.path(STAGE3_REL);
        sign(key, "detach", &file, &fx.path(&format!("{STAGE3_REL}.asc")));
    }
}

#[test]
fn refuses_a_signature_by_an_untrusted_key() {
    refused(&["release"], &["fetch"], resign_stage3("untrusted"), |_| {
        format!(
            "error: {STAGE3} is signed by key {}, which is not one of the trusted keys ({})",
            fpr("untrusted"),
            fpr("release")
        )
    });
}

#[test]
fn refuses_a_signature_by_a_revoked_key() {
    refused(
        &["release", "revoked"],
        &["fetch"],
        resign_stage3("revoked"),
        |_| {
            format!(
                "error: {STAGE3} is signed by key {} (Kiln Test Revoked Key <revoked@kiln.test>), which has been revoked",
                fpr("revoked")
            )
        },
    );
}

#[test]
fn refuses_a_signature_by_an_expired_key() {
    refused(
        &["release", "expired"],
        &["fetch"],
        resign_stage3("expired"),
        |_| {
            format!(
                "error: {STAGE3} is signed by key {} (Kiln Test Expired Key <expired@kiln.test>), which expired on 2020-01-02",
                fpr("expired")
            )
        },
    );
}

fn subkey_case(pick: fn(&SubKeys) -> &String, why: &str) {
    let keys = subkeys();
    let public = keys.public.display().to_string();
    let sub = pick(keys).clone();
    refused(
        &["release", &public],
        &["fetch"],
        |fx| {
            let file = fx.path(STAGE3_REL);
            sign_with_subkey(&sub, &file, &fx.path(&format!("{STAGE3_REL}.asc")));
        },
        |_| format!("error: {STAGE3} is signed by key {sub} (Kiln Sub Key <sub@kiln.test>), {why}"),
    );
}

#[test]
fn refuses_a_signature_by_an_expired_subkey() {
    subkey_case(|k| &k.expired, "which expired on 2020-01-02");
}

#[test]
fn refuses_a_signature_by_a_revoked_subkey() {
    subkey_case(|k| &k.revoked, "which has been revoked");
}

#[test]
fn refuses_a_missing_signature() {
    refused(
        &["release"],
        &["fetch"],
        |fx| fs::remove_file(fx.path(&format!("{STAGE3_REL}.asc"))).unwrap(),
        |_| format!("error: missing signature for {STAGE3}: {STAGE3_REL}.asc is on no mirror"),
    );
}

#[test]
fn refuses_a_truncated_download() {
    refused(
        &["release"],
        &["fetch"],
        |fx| {
            let bytes = read(&fx.stage3);
            fs::write(fx.path(STAGE3_REL), &bytes[..bytes.len() / 2]).unwrap();
        },
        |fx| {
            let size = read(&fx.stage3).len();
            format!(
                "  URL/{STAGE3_REL}: truncated: got {} bytes, expected {size}",
                size / 2
            )
        },
    );
}

#[test]
fn refuses_a_404() {
    refused(
        &["release"],
        &["fetch"],
        |fx| fs::remove_file(fx.path(STAGE3_REL)).unwrap(),
        |_| format!("  URL/{STAGE3_REL}: not found"),
    );
}

#[test]
fn refuses_a_tampered_latest_txt() {
    refused(
        &["release"],
        &["update"],
        |fx| {
            let latest = fx.path(LATEST_REL);
            let text = fs::read_to_string(&latest).unwrap();
            let size = read(&fx.stage3).len();
            fs::write(&latest, text.replace(&format!(" {size}\n"), " 1234\n")).unwrap();
        },
        |_| {
            format!(
                "  Caused by: BAD signature on latest-stage3-amd64-openrc.txt by key {} (Kiln Test Release Key <release@kiln.test>): the file is not what was signed",
                release_subkey()
            )
        },
    );
}

#[test]
fn refuses_a_lock_that_disagrees_with_the_mirror() {
    refused(
        &["release"],
        &["fetch"],
        |fx| {
            let other = tarball(fx.tmp.path(), "other.tar.xz", "stage3 two");
            publish(&fx.mirror, "release", &other, &fx.snapshot);
        },
        |fx| {
            format!(
                "error: kiln.lock pins {STAGE3} with SHA512 {}, but URL/{STAGE3_REL}.DIGESTS lists {}",
                short(&sha512(&fx.stage3)),
                short(&sha512(&fx.path(STAGE3_REL)))
            )
        },
    );
}

#[test]
fn offline_names_the_missing_file() {
    let fx = Fixture::new();
    run_ok(&mut fx.kiln(&["update"]));
    fs::remove_dir_all(&fx.cache).unwrap();
    let empty = tempdir();
    let cases = [
        (
            empty.path().to_path_buf(),
            format!("{STAGE3}.DIGESTS, needed to verify it"),
        ),
        (fx.mirror.clone(), "it".to_string()),
    ];
    fs::remove_file(fx.path(STAGE3_REL)).unwrap();
    for (dir, what) in cases {
        fx.config(
            &["https://127.0.0.1:9", &format!("file://{}", dir.display())],
            &["release"],
        );
        let out = run_err(&mut fx.kiln(&["fetch", "--offline"]));
        let want = format!(
            "error: --offline: {STAGE3} is not in the cache ({}) and no file:// mirror has {what}",
            fx.cache.display()
        );
        assert!(
            stderr(&out).lines().any(|l| l == want),
            "{want}\n{}",
            stderr(&out)
        );
        assert_eq!(fx.cached(), Vec::<String>::new());
    }
}

#[test]
fn refuses_a_lock_for_another_flavour() {
    let fx = Fixture::new();
    run_ok(&mut fx.kiln(&["update"]));
    let toml = fx.project.join("kiln.toml");
    let text = fs::read_to_string(&toml).unwrap();
    fs::write(&toml, format!("{text}flavour = \"systemd\"\n")).unwrap();
    let out = run_err(&mut fx.kiln(&["fetch"]));
    assert_eq!(
        stderr(&out),
        format!(
            "error: kiln.lock pins {STAGE3} (kiln.toml asks for stage3-amd64-systemd-*)\n\
             hint: run `kiln update` to pin inputs that match kiln.toml's [sources]\n"
        )
    );
}
