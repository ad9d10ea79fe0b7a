//! Secrets encrypted at rest: target credentials are stored as AES-256-GCM ciphertexts.
//!
//! A [`SecretBox`] is built from the operator's secret (`SLUICE_SECRET_KEY` or the key
//! file) and seals a value into a self-describing text
//!
//! ```text
//! enc.v1.<key id>.<base64url(nonce || ciphertext || tag)>
//! ```
//!
//! - `v1`: AES-256-GCM with a random 96-bit nonce per value and a 128-bit tag, under the key
//!   `HMAC-SHA256(secret, "sluice-secrets-key-v1")` (unrelated to the audit key, which is
//!   derived with another label);
//! - `<key id>`: 8 lowercase hex digits, the first 4 bytes of
//!   `HMAC-SHA256(key, "sluice-secrets-key-id-v1")`: names the key without revealing it, so
//!   that a value sealed under another secret is reported as such rather than as tampered;
//! - the payload is unpadded base64url; the header `enc.v1.<key id>` is authenticated as
//!   associated data.
//!
//! Every character of a sealed text is unreserved in URLs (`A–Z a–z 0–9 - . _`), so it can
//! stand in place of a password in a URL's user info without percent-encoding:
//! [`seal_url`] and [`reveal_url`] do that for target cluster URLs. See `docs/secrets.md`.

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use url::{Position, Url};

/// The message whose HMAC-SHA256 under the operator's secret is the encryption key.
const KEY_DERIVATION_LABEL: &[u8] = b"sluice-secrets-key-v1";

/// The message whose HMAC-SHA256 under the encryption key starts with the key id.
const KEY_ID_LABEL: &[u8] = b"sluice-secrets-key-id-v1";

/// What every sealed text starts with.
const MARKER: &str = "enc";

/// The version of the encoding this code writes.
const VERSION: &str = "v1";

/// Bytes of an AES-GCM nonce.
const NONCE_LEN: usize = 12;

/// Bytes of an AES-GCM tag.
const TAG_LEN: usize = 16;

/// Hex digits of a key id.
const KEY_ID_LEN: usize = 8;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The secret to derive the encryption key from is empty.
    #[error("the secret to derive the encryption key from must not be empty")]
    EmptySecret,
    /// The text is not a sealed value at all.
    #[error("not a sealed value (expected `enc.v1.<key id>.<data>`)")]
    NotSealed,
    /// The value was sealed with an encoding this version of Sluice does not know.
    #[error("the value is sealed with encoding `{version}`, which this server cannot read")]
    UnsupportedVersion {
        /// The version found.
        version: String,
    },
    /// The text has the shape of a sealed value but is damaged.
    #[error("malformed sealed value: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The value was sealed under another secret key than this box's.
    #[error(
        "the value was sealed with another secret key (key id {found}, this server's is \
         {expected}): start with the SLUICE_SECRET_KEY it was sealed with, or apply the \
         credential again"
    )]
    WrongKey {
        /// The key id of this box.
        expected: String,
        /// The key id the value names.
        found: String,
    },
    /// Decryption failed: the ciphertext, its nonce or its header were altered.
    #[error("the sealed value failed authentication: it was altered or is corrupt")]
    Inauthentic,
    /// Encryption failed (the value is longer than AES-GCM allows).
    #[error("the value cannot be sealed: it is too long")]
    TooLong,
    /// A URL to seal or reveal does not parse.
    #[error("the URL cannot be parsed")]
    InvalidUrl(#[source] url::ParseError),
}

/// Seals and opens secrets with AES-256-GCM under a key derived from the operator's secret.
/// Cheap to clone (the key is shared); its `Debug` shows the key id only.
#[derive(Clone)]
pub struct SecretBox {
    inner: Arc<Inner>,
}

struct Inner {
    cipher: Aes256Gcm,
    key_id: String,
}

impl SecretBox {
    /// The box whose key is `HMAC-SHA256(secret, "sluice-secrets-key-v1")`; `secret` must
    /// not be empty. The same secret always gives the same key.
    pub fn from_secret(secret: &[u8]) -> Result<SecretBox, SecretError> {
        if secret.is_empty() {
            return Err(SecretError::EmptySecret);
        }
        let key = hmac_sha256(secret, KEY_DERIVATION_LABEL)?;
        let id = hmac_sha256(&key, KEY_ID_LABEL)?;
        let cipher = Aes256Gcm::new_from_slice(&key).map_err(|_| SecretError::EmptySecret)?;
        let key_id = hex::encode(&id[..KEY_ID_LEN / 2]);
        Ok(SecretBox {
            inner: Arc::new(Inner { cipher, key_id }),
        })
    }

    /// A box under a fresh random key that nothing else knows: what it seals cannot be
    /// opened by another process or after a restart. For tests and for state built without
    /// the operator's secret.
    pub fn ephemeral() -> SecretBox {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        match SecretBox::from_secret(&secret) {
            Ok(secrets) => secrets,
            // `from_secret` fails only for an empty secret.
            Err(_) => unreachable!("a 32-byte secret is never empty"),
        }
    }

    /// The id of this box's key (8 hex digits), written into every sealed value.
    pub fn key_id(&self) -> &str {
        &self.inner.key_id
    }

    /// `plaintext` encrypted under a fresh random nonce, as `enc.v1.<key id>.<data>`: two
    /// seals of the same value differ.
    pub fn seal(&self, plaintext: &str) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let header = format!("{MARKER}.{VERSION}.{}", self.inner.key_id);
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: header.as_bytes(),
        };
        let ciphertext = self
            .inner
            .cipher
            .encrypt(&Nonce::from(nonce), payload)
            .map_err(|_| SecretError::TooLong)?;
        let mut data = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&ciphertext);
        Ok(format!("{header}.{}", URL_SAFE_NO_PAD.encode(data)))
    }

    /// The plaintext of a value [`seal`](Self::seal)ed under this box's key. Fails with a
    /// typed reason — never garbage — when it is not a sealed value, was sealed under
    /// another key, or was altered.
    pub fn open(&self, sealed: &str) -> Result<String, SecretError> {
        let parts = Parts::parse(sealed)?;
        if parts.version != VERSION {
            return Err(SecretError::UnsupportedVersion {
                version: parts.version.to_owned(),
            });
        }
        if parts.key_id != self.inner.key_id {
            return Err(SecretError::WrongKey {
                expected: self.inner.key_id.clone(),
                found: parts.key_id.to_owned(),
            });
        }
        let data = URL_SAFE_NO_PAD
            .decode(parts.data)
            .map_err(|_| SecretError::Malformed {
                reason: "the data is not base64url",
            })?;
        if data.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed {
                reason: "the data is too short",
            });
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SecretError::Malformed {
            reason: "the data is too short",
        })?;
        let payload = Payload {
            msg: ciphertext,
            aad: parts.header.as_bytes(),
        };
        let plaintext = self
            .inner
            .cipher
            .decrypt(&Nonce::from(nonce), payload)
            .map_err(|_| SecretError::Inauthentic)?;
        String::from_utf8(plaintext).map_err(|_| SecretError::Malformed {
            reason: "the plaintext is not UTF-8",
        })
    }
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox")
            .field("key_id", &self.inner.key_id)
            .finish_non_exhaustive()
    }
}

/// Whether `text` has the shape of a sealed value (`enc.<version>.<8 hex>.<base64url>`, any
/// version), so that it is never sealed twice and never taken for a password.
pub fn is_sealed(text: &str) -> bool {
    Parts::parse(text).is_ok_and(|p| p.data.len() >= 4 * (NONCE_LEN + TAG_LEN) / 3)
}

/// `url` with the password of its user info sealed (`postgres://admin:enc.v1.…@db/x`). The
/// password is sealed exactly as the URL writes it (percent-encoded), so [`reveal_url`]
/// gives back the URL as [`url::Url`] serialises it. A URL without a password, or whose
/// password is sealed already, is returned as given.
pub fn seal_url(secrets: &SecretBox, url: &str) -> Result<String, SecretError> {
    let parsed = Url::parse(url).map_err(SecretError::InvalidUrl)?;
    match parsed.password() {
        Some(password) if !is_sealed(password) => {
            Ok(with_password(&parsed, &secrets.seal(password)?))
        }
        _ => Ok(url.to_owned()),
    }
}

/// The real URL of a stored one: its sealed password opened (what provisioners connect
/// with). A URL without a password, or with one stored in clear (before encryption at rest),
/// is returned as given.
pub fn reveal_url(secrets: &SecretBox, sealed_url: &str) -> Result<String, SecretError> {
    let parsed = Url::parse(sealed_url).map_err(SecretError::InvalidUrl)?;
    match parsed.password() {
        Some(password) if is_sealed(password) => {
            Ok(with_password(&parsed, &secrets.open(password)?))
        }
        _ => Ok(sealed_url.to_owned()),
    }
}

/// `url` serialised with `password` (already percent-encoded as needed) in place of its
/// password, byte for byte.
fn with_password(url: &Url, password: &str) -> String {
    format!(
        "{}{password}{}",
        &url[..Position::BeforePassword],
        &url[Position::AfterPassword..]
    )
}

/// The fields of a sealed text.
struct Parts<'a> {
    /// `enc.<version>.<key id>`: authenticated as associated data.
    header: &'a str,
    version: &'a str,
    key_id: &'a str,
    data: &'a str,
}

impl<'a> Parts<'a> {
    fn parse(text: &'a str) -> Result<Parts<'a>, SecretError> {
        let mut fields = text.splitn(4, '.');
        if fields.next() != Some(MARKER) {
            return Err(SecretError::NotSealed);
        }
        let (Some(version), Some(key_id), Some(data)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(SecretError::NotSealed);
        };
        let well_formed = version.starts_with('v')
            && version.len() > 1
            && version[1..].bytes().all(|b| b.is_ascii_digit())
            && key_id.len() == KEY_ID_LEN
            && key_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            && !data.is_empty()
            && data
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(SecretError::NotSealed);
        }
        let header = &text[..text.len() - data.len() - 1];
        Ok(Parts {
            header,
            version,
            key_id,
            data,
        })
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Result<Vec<u8>, SecretError> {
    let mut mac =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(|_| SecretError::EmptySecret)?;
    mac.update(message);
    Ok(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SecretBox {
        SecretBox::from_secret(b"test secret").unwrap()
    }

    #[test]
    fn seals_and_opens() {
        let secrets = secrets();
        let sealed = secrets.seal("s3cret-pw").unwrap();
        assert!(sealed.starts_with(&format!("enc.v1.{}.", secrets.key_id())));
        assert!(!sealed.contains("s3cret"));
        assert!(is_sealed(&sealed));
        assert_eq!(secrets.open(&sealed).unwrap(), "s3cret-pw");
        // Unicode and the empty string survive too.
        for text in ["", "pä$$ wört/@:%41"] {
            assert_eq!(secrets.open(&secrets.seal(text).unwrap()).unwrap(), text);
        }
        // Only unreserved URL characters.
        assert!(
            sealed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        );
    }

    #[test]
    fn every_seal_takes_a_fresh_nonce() {
        let secrets = secrets();
        let a = secrets.seal("same").unwrap();
        let b = secrets.seal("same").unwrap();
        assert_ne!(a, b);
        let nonce = |s: &str| {
            URL_SAFE_NO_PAD
                .decode(s.rsplit('.').next().unwrap())
                .unwrap()[..12]
                .to_vec()
        };
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn the_key_follows_the_secret() {
        let sealed = secrets().seal("pw").unwrap();
        // The same secret, later: opens.
        assert_eq!(secrets().open(&sealed).unwrap(), "pw");
        // Another secret: a clear error, not garbage.
        let other = SecretBox::from_secret(b"another secret").unwrap();
        assert_ne!(other.key_id(), secrets().key_id());
        match other.open(&sealed) {
            Err(SecretError::WrongKey { expected, found }) => {
                assert_eq!(expected, other.key_id());
                assert_eq!(found, secrets().key_id());
            }
            wrong => panic!("{wrong:?}"),
        }
        // Even with the key id forged to match, the tag fails.
        let forged = sealed.replacen(secrets().key_id(), other.key_id(), 1);
        assert!(matches!(other.open(&forged), Err(SecretError::Inauthentic)));
        assert!(matches!(
            SecretBox::from_secret(b""),
            Err(SecretError::EmptySecret)
        ));
    }

    #[test]
    fn the_key_is_not_the_audit_key_nor_the_secret() {
        // The pinned derivation: AES-256-GCM under HMAC-SHA256(secret, label).
        let key = hmac_sha256(b"test secret", b"sluice-secrets-key-v1").unwrap();
        assert_ne!(
            key,
            hmac_sha256(b"test secret", b"sluice-audit-key-v1").unwrap()
        );
        let sealed = secrets().seal("pw").unwrap();
        let data = URL_SAFE_NO_PAD
            .decode(sealed.rsplit('.').next().unwrap())
            .unwrap();
        let (nonce, ciphertext) = data.split_at(12);
        let header = &sealed[..sealed.rfind('.').unwrap()];
        let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        let payload = Payload {
            msg: ciphertext,
            aad: header.as_bytes(),
        };
        assert_eq!(cipher.decrypt(&Nonce::from(nonce), payload).unwrap(), b"pw");
        let id = hmac_sha256(&key, b"sluice-secrets-key-id-v1").unwrap();
        assert_eq!(secrets().key_id(), hex::encode(&id[..4]));
    }

    #[test]
    fn tampering_fails_authentication() {
        let secrets = secrets();
        let sealed = secrets.seal("s3cret-pw").unwrap();
        let (head, data) = sealed.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(data).unwrap();
        for i in [0, 12, bytes.len() - 1] {
            // Nonce, ciphertext and tag are all covered.
            let mut altered = bytes.clone();
            altered[i] ^= 1;
            let text = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&altered));
            assert!(
                matches!(secrets.open(&text), Err(SecretError::Inauthentic)),
                "byte {i}"
            );
        }
        bytes.truncate(20);
        let short = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&bytes));
        assert!(matches!(
            secrets.open(&short),
            Err(SecretError::Malformed { .. })
        ));
        // The header is authenticated: another version is refused before decryption, and
        // the version cannot be swapped silently.
        let v2 = sealed.replacen("enc.v1.", "enc.v2.", 1);
        assert!(matches!(
            secrets.open(&v2),
            Err(SecretError::UnsupportedVersion { version }) if version == "v2"
        ));
        for text in [
            "s3cret-pw",
            "enc.v1.zz.abc",
            "enc.v1",
            "",
            "enc.v1.0123abcd.a+b",
        ] {
            assert!(
                matches!(secrets.open(text), Err(SecretError::NotSealed)),
                "{text}"
            );
            assert!(!is_sealed(text));
        }
    }

    #[test]
    fn urls_keep_everything_but_the_password() {
        let secrets = secrets();
        for url in [
            "postgres://admin:s3cret-pw@127.0.0.1:5432/postgres?sslmode=disable",
            "redis://:s3cret-pw@cache:6379/0",
            "rediss://user:p%40ss%3Aw0rd@cache/1",
            "https://elastic:s3cret-pw@search:9200/",
        ] {
            let sealed = seal_url(&secrets, url).unwrap();
            assert!(
                !sealed.contains("s3cret") && !sealed.contains("p%40ss"),
                "{sealed}"
            );
            let parsed = Url::parse(&sealed).unwrap();
            assert!(is_sealed(parsed.password().unwrap()));
            assert_eq!(parsed.host_str(), Url::parse(url).unwrap().host_str());
            assert_eq!(reveal_url(&secrets, &sealed).unwrap(), url);
            // Sealing is not repeated.
            assert_eq!(seal_url(&secrets, &sealed).unwrap(), sealed);
        }
        // No password: as given, both ways; a password stored in clear reads as is.
        for url in [
            "http://127.0.0.1:9200",
            "postgres://admin@db/x",
            "redis://a:b@c/0",
        ] {
            assert_eq!(reveal_url(&secrets, url).unwrap(), url);
        }
        assert_eq!(seal_url(&secrets, "http://h:1").unwrap(), "http://h:1");
        let other = SecretBox::from_secret(b"other").unwrap();
        let sealed = seal_url(&secrets, "redis://a:b@c/0").unwrap();
        assert!(matches!(
            reveal_url(&other, &sealed),
            Err(SecretError::WrongKey { .. })
        ));
        assert!(matches!(
            seal_url(&secrets, "postgres://a:b@h:99999999/x"),
            Err(SecretError::InvalidUrl(_))
        ));
    }

    #[test]
    fn debug_shows_the_key_id_only() {
        let secrets = secrets();
        let shown = format!("{secrets:?}");
        assert!(shown.contains(secrets.key_id()), "{shown}");
        assert!(!shown.contains("cipher"), "{shown}");
        assert_ne!(
            SecretBox::ephemeral().key_id(),
            SecretBox::ephemeral().key_id()
        );
    }
}
