//! OpenPGP verification of mirror files in pure Rust (rPGP): detached
//! signatures (`.asc`, `.gpgsig`) and clearsigned texts (`latest-*.txt`).
//!
//! rPGP checks the cryptography of one signature against one key and nothing
//! else: in a probe it accepted a signature by a revoked key. So this module
//! decides which key may sign: the issuer must be a trusted primary key or one
//! of its subkeys with a valid binding (and back-signature), flagged for
//! signing, neither revoked nor expired now, and the signature must not be
//! older than the key. Gentoo signs with a subkey of its release key.

use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pgp::composed::{CleartextSignedMessage, Deserializable, SignedPublicKey};
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Tag};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PgpError {
    #[error("{origin} is not an OpenPGP public key: {reason}")]
    BadKey { origin: String, reason: String },
    #[error(
        "{origin} holds no key with the fingerprint {pinned} that kiln.toml pins (it holds {found})"
    )]
    WrongFingerprint {
        origin: String,
        pinned: String,
        found: String,
    },
    #[error("no trusted OpenPGP keys: [sources] keys in kiln.toml is empty")]
    NoKeys,
    #[error("{file} has no OpenPGP signature: {reason}")]
    Unreadable { file: String, reason: String },
    #[error("{file} is signed by key {issuer}, which is not one of the trusted keys ({trusted})")]
    Untrusted {
        file: String,
        issuer: String,
        trusted: String,
    },
    #[error("BAD signature on {file} by key {key} ({uid}): the file is not what was signed")]
    Bad {
        file: String,
        key: String,
        uid: String,
    },
    #[error("{file} is signed by key {key} ({uid}), which has been revoked")]
    Revoked {
        file: String,
        key: String,
        uid: String,
    },
    #[error("{file} is signed by key {key} ({uid}), which expired on {date}")]
    Expired {
        file: String,
        key: String,
        uid: String,
        date: String,
    },
    #[error("{file} is signed by key {key} ({uid}), which is not valid: {reason}")]
    Invalid {
        file: String,
        key: String,
        uid: String,
        reason: String,
    },
}

/// A trusted public key (certificate) and where it came from.
#[derive(Debug, Clone)]
struct Cert {
    key: SignedPublicKey,
    uid: String,
}

/// The keys `[sources] keys` trusts.
#[derive(Debug, Clone)]
pub struct Keyring {
    certs: Vec<Cert>,
}

/// Who made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Fingerprint of the key that signed (the subkey, if one did).
    pub key: String,
    /// Fingerprint of the trusted primary key.
    pub primary: String,
    pub uid: String,
}

/// The bytes of a public key file (armored or binary, one key or more),
/// where they came from, and the fingerprint kiln.toml pins, if any.
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub origin: String,
    pub bytes: Vec<u8>,
    pub pin: Option<String>,
}

impl KeyFile {
    /// The keys it holds (only the pinned one when there is a pin).
    pub fn keys(&self) -> Result<Vec<SignedPublicKey>, PgpError> {
        let bad = |reason: String| PgpError::BadKey {
            origin: self.origin.clone(),
            reason,
        };
        let bytes = &self.bytes[..];
        let keys: Vec<SignedPublicKey> = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            SignedPublicKey::from_armor_many(bytes)
                .map_err(|e| bad(e.to_string()))?
                .0
                .collect::<Result<_, _>>()
        } else {
            SignedPublicKey::from_bytes_many(bytes)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<_, _>>()
        }
        .map_err(|e| bad(e.to_string()))?;
        if keys.is_empty() {
            return Err(bad("the file holds no public key".into()));
        }
        let Some(pin) = &self.pin else {
            return Ok(keys);
        };
        let found: Vec<String> = keys.iter().map(|k| fingerprint(&k.primary_key)).collect();
        let pinned: Vec<SignedPublicKey> = keys
            .into_iter()
            .filter(|k| fingerprint(&k.primary_key).eq_ignore_ascii_case(pin))
            .collect();
        if pinned.is_empty() {
            return Err(PgpError::WrongFingerprint {
                origin: self.origin.clone(),
                pinned: pin.clone(),
                found: found.join(", "),
            });
        }
        Ok(pinned)
    }
}

impl Keyring {
    /// A keyring of the keys in `material`; a pinned one contributes only
    /// its key with the pinned fingerprint.
    pub fn load(material: &[KeyFile]) -> Result<Keyring, PgpError> {
        if material.is_empty() {
            return Err(PgpError::NoKeys);
        }
        let mut certs = Vec::new();
        for file in material {
            for key in file.keys()? {
                let uid = key
                    .details
                    .users
                    .first()
                    .and_then(|u| u.id.as_str().map(str::to_string))
                    .unwrap_or_else(|| "no user id".into());
                certs.push(Cert { key, uid });
            }
        }
        Ok(Keyring { certs })
    }

    /// Check a detached signature (armored or binary) over `data`. `file`
    /// names the signed file in errors.
    pub fn verify_detached(
        &self,
        file: &str,
        signature: &[u8],
        data: impl Read,
    ) -> Result<Signer, PgpError> {
        let sigs = parse_signatures(file, signature)?;
        let mut data = Some(data);
        let mut last = None;
        for sig in &sigs {
            let (signing, signer) = match self.signing_key(file, sig) {
                Ok(found) => found,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            // The data can be read once: the first signature by a trusted,
            // valid key decides.
            let Some(reader) = data.take() else { break };
            return match signing.verify(sig, reader) {
                Ok(()) => Ok(signer),
                Err(_) => Err(PgpError::Bad {
                    file: file.into(),
                    key: signer.key,
                    uid: signer.uid,
                }),
            };
        }
        Err(last.unwrap_or_else(|| PgpError::Unreadable {
            file: file.into(),
            reason: "no signature packet".into(),
        }))
    }

    /// Check a clearsigned text; returns the signed text (dash-unescaped,
    /// as it was signed) and the signer. Text outside the signed part is
    /// never returned, so a line appended after the signature is ignored.
    pub fn verify_clearsigned(&self, file: &str, text: &str) -> Result<(String, Signer), PgpError> {
        let (msg, _) =
            CleartextSignedMessage::from_string(text).map_err(|e| PgpError::Unreadable {
                file: file.into(),
                reason: e.to_string(),
            })?;
        let signed = msg.signed_text();
        let mut last = None;
        for sig in msg.signatures() {
            match self.signing_key(file, sig) {
                Ok((signing, signer)) => {
                    return match signing.verify(sig, signed.as_bytes()) {
                        Ok(()) => Ok((signed.replace("\r\n", "\n"), signer)),
                        Err(_) => Err(PgpError::Bad {
                            file: file.into(),
                            key: signer.key,
                            uid: signer.uid,
                        }),
                    };
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| PgpError::Unreadable {
            file: file.into(),
            reason: "no signature packet".into(),
        }))
    }

    /// The trusted key that issued `sig`, after the checks rPGP leaves to us.
    fn signing_key<'k>(
        &'k self,
        file: &str,
        sig: &Signature,
    ) -> Result<(SigningKey<'k>, Signer), PgpError> {
        let now = SystemTime::now();
        for cert in &self.certs {
            let primary = &cert.key.primary_key;
            let signer = |key: &dyn KeyDetails| Signer {
                key: fingerprint(key),
                primary: fingerprint(primary),
                uid: cert.uid.clone(),
            };
            let invalid = |s: &Signer, reason: &str| PgpError::Invalid {
                file: file.into(),
                key: s.key.clone(),
                uid: s.uid.clone(),
                reason: reason.into(),
            };
            let primary_signer = signer(primary);
            let self_sigs = self_signatures(&cert.key);
            if cert
                .key
                .details
                .revocation_signatures
                .iter()
                .any(|r| issued_by(r, primary) && r.verify_key(primary).is_ok())
            {
                if issued_by(sig, primary)
                    || cert
                        .key
                        .public_subkeys
                        .iter()
                        .any(|s| issued_by(sig, &s.key))
                {
                    return Err(PgpError::Revoked {
                        file: file.into(),
                        key: primary_signer.key,
                        uid: primary_signer.uid,
                    });
                }
                continue;
            }
            let primary_expiry = latest(&self_sigs)
                .and_then(|s| expiry(primary.created_at().as_secs(), s.key_expiration_time()));

            if issued_by(sig, primary) {
                let latest_sig = latest(&self_sigs)
                    .ok_or_else(|| invalid(&primary_signer, "no valid self-signature"))?;
                check_time(file, sig, &primary_signer, primary_expiry, now)?;
                check_created(sig, primary.created_at().as_secs())
                    .map_err(|r| invalid(&primary_signer, r))?;
                if has_key_flags(latest_sig) && !latest_sig.key_flags().sign() {
                    return Err(invalid(&primary_signer, "the key is not for signing"));
                }
                return Ok((SigningKey::Primary(primary), primary_signer));
            }

            for sub in &cert.key.public_subkeys {
                if !issued_by(sig, &sub.key) {
                    continue;
                }
                let sub_signer = signer(&sub.key);
                let valid: Vec<&Signature> = sub
                    .signatures
                    .iter()
                    .filter(|s| issued_by(s, primary))
                    .filter(|s| s.verify_subkey_binding(primary, &sub.key).is_ok())
                    .collect();
                if valid
                    .iter()
                    .any(|s| s.typ() == Some(SignatureType::SubkeyRevocation))
                {
                    return Err(PgpError::Revoked {
                        file: file.into(),
                        key: sub_signer.key,
                        uid: sub_signer.uid,
                    });
                }
                let binding = latest(&valid)
                    .ok_or_else(|| invalid(&sub_signer, "the subkey has no valid binding"))?;
                if !binding.key_flags().sign() {
                    return Err(invalid(&sub_signer, "the subkey is not for signing"));
                }
                let back_signed = binding
                    .embedded_signature()
                    .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok());
                if !back_signed {
                    return Err(invalid(
                        &sub_signer,
                        "the signing subkey has no valid back-signature",
                    ));
                }
                let sub_expiry = expiry(
                    sub.key.created_at().as_secs(),
                    binding.key_expiration_time(),
                );
                check_time(file, sig, &primary_signer, primary_expiry, now)?;
                check_time(file, sig, &sub_signer, sub_expiry, now)?;
                check_created(sig, sub.key.created_at().as_secs())
                    .map_err(|r| invalid(&sub_signer, r))?;
                return Ok((SigningKey::Sub(&sub.key), sub_signer));
            }
        }
        Err(PgpError::Untrusted {
            file: file.into(),
            issuer: issuer(sig),
            trusted: self
                .certs
                .iter()
                .map(|c| fingerprint(&c.key.primary_key))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

enum SigningKey<'k> {
    Primary(&'k pgp::packet::PublicKey),
    Sub(&'k pgp::packet::PublicSubkey),
}

impl SigningKey<'_> {
    fn verify(&self, sig: &Signature, data: impl Read) -> pgp::errors::Result<()> {
        match self {
            SigningKey::Primary(k) => sig.verify(*k, data),
            SigningKey::Sub(k) => sig.verify(*k, data),
        }
    }
}

fn parse_signatures(file: &str, bytes: &[u8]) -> Result<Vec<Signature>, PgpError> {
    let unreadable = |e: pgp::errors::Error| PgpError::Unreadable {
        file: file.into(),
        reason: e.to_string(),
    };
    let sigs: Vec<_> = if bytes.starts_with(b"-----BEGIN") {
        pgp::composed::DetachedSignature::from_armor_many(bytes)
            .map_err(unreadable)?
            .0
            .collect::<Result<_, _>>()
    } else {
        pgp::composed::DetachedSignature::from_bytes_many(bytes)
            .map_err(unreadable)?
            .collect::<Result<_, _>>()
    }
    .map_err(unreadable)?;
    Ok(sigs.into_iter().map(|d| d.signature).collect())
}

/// The primary key's valid self-signatures: user-id certifications and
/// direct-key signatures it made. Third-party certifications (Gentoo's keys
/// carry many) are skipped, not treated as failures.
fn self_signatures(key: &SignedPublicKey) -> Vec<&Signature> {
    let primary = &key.primary_key;
    let mut sigs: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| {
            u.signatures.iter().filter(move |s| {
                issued_by(s, primary)
                    && s.typ() != Some(SignatureType::CertRevocation)
                    && s.verify_certification(primary, Tag::UserId, &u.id).is_ok()
            })
        })
        .collect();
    sigs.extend(
        key.details
            .direct_signatures
            .iter()
            .filter(|s| issued_by(s, primary) && s.verify_key(primary).is_ok()),
    );
    sigs
}

fn latest<'a>(sigs: &[&'a Signature]) -> Option<&'a Signature> {
    sigs.iter()
        .max_by_key(|s| s.created().map_or(0, |t| t.as_secs()))
        .copied()
}

fn has_key_flags(sig: &Signature) -> bool {
    let flags = sig.key_flags();
    flags.sign() || flags.certify() || flags.encrypt_comms() || flags.encrypt_storage()
}

/// When a key created at `created` (seconds) expires, if it does.
fn expiry(created: u32, validity: Option<pgp::types::Duration>) -> Option<SystemTime> {
    validity
        .map(|d| d.as_secs())
        .filter(|&d| d != 0)
        .map(|d| UNIX_EPOCH + Duration::from_secs(u64::from(created) + u64::from(d)))
}

/// A key that has expired is refused even for signatures made while it was
/// valid: Gentoo extends its keys before they expire, so an expired key in
/// kiln.toml means the user's copy is stale, and they must refresh it.
fn check_time(
    file: &str,
    sig: &Signature,
    signer: &Signer,
    expires: Option<SystemTime>,
    now: SystemTime,
) -> Result<(), PgpError> {
    let Some(expires) = expires else {
        return Ok(());
    };
    let made = sig
        .created()
        .map(|t| UNIX_EPOCH + Duration::from_secs(t.as_secs().into()));
    if now >= expires || made.is_some_and(|m| m >= expires) {
        return Err(PgpError::Expired {
            file: file.into(),
            key: signer.key.clone(),
            uid: signer.uid.clone(),
            date: utc_date(expires),
        });
    }
    Ok(())
}

/// The signature's own times: made after the key, not expired itself.
fn check_created(sig: &Signature, key_created: u32) -> Result<(), &'static str> {
    let Some(made) = sig.created().map(|t| t.as_secs()) else {
        return Err("the signature has no creation time");
    };
    if made < key_created {
        return Err("the signature is older than the key");
    }
    let valid_for = sig.signature_expiration_time().map_or(0, |d| d.as_secs());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if valid_for != 0 && u64::from(made) + u64::from(valid_for) <= now {
        return Err("the signature itself has expired");
    }
    Ok(())
}

fn issued_by(sig: &Signature, key: &impl KeyDetails) -> bool {
    let fpr = key.fingerprint();
    let id = key.legacy_key_id();
    sig.issuer_fingerprint().iter().any(|f| **f == fpr)
        || sig.issuer_key_id().iter().any(|k| **k == id)
}

fn issuer(sig: &Signature) -> String {
    if let Some(f) = sig.issuer_fingerprint().first() {
        return format!("{f:X}");
    }
    sig.issuer_key_id()
        .first()
        .map(|k| format!("0x{}", hex_upper(k.as_ref())))
        .unwrap_or_else(|| "(no issuer)".into())
}

fn fingerprint(key: &(impl KeyDetails + ?Sized)) -> String {
    format!("{:X}", key.fingerprint())
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02X}");
        s
    })
}

/// `YYYY-MM-DD` in UTC.
fn utc_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let mut stamp = crate::oci::format_rfc3339(secs);
    stamp.truncate("YYYY-MM-DD".len());
    stamp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01");
        let t = UNIX_EPOCH + Duration::from_secs(1_577_923_200);
        assert_eq!(utc_date(t), "2020-01-02");
    }
}
