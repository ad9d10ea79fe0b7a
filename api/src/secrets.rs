//! Write-only credentials in target cluster URLs: sealed (encrypted) before they are stored,
//! redacted in every response, and a redacted URL sent back keeps the stored password.
//! The encryption itself is `sluice_store::secrets`; see `docs/secrets.md`.

use serde_json::Value;
use sluice_schemas::validate::Problem;
use sluice_store::SecretBox;
use sluice_store::secrets::{is_sealed, reveal_url, seal_url};
use url::Url;

use crate::error::{ApiError, ApiResult, ErrorCode};

/// What a password is replaced with in responses.
pub const REDACTED: &str = "redacted";

/// The URL with its password (if any) replaced by [`REDACTED`].
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            if parsed.set_password(Some(REDACTED)).is_ok() {
                parsed.to_string()
            } else {
                String::from("<unparseable URL>")
            }
        }
        Ok(_) => url.to_owned(),
        // A URL we cannot parse may still hold a secret; show none of it.
        Err(_) => String::from("<unparseable URL>"),
    }
}

/// The URL to store when `incoming` is applied over the `stored` URL (if any), with its
/// password sealed by `secrets`:
///
/// - no password: `incoming` as given;
/// - the password [`REDACTED`], same user as stored: the stored sealed password is kept (one
///   stored in clear, from before encryption at rest, is sealed now); with no stored password
///   of that user to keep, the document is refused;
/// - a password in clear: the stored URL when it holds exactly this URL (re-applying the
///   original document changes nothing), else the URL with the password freshly sealed.
///
/// Refused (422 at `/spec/url`): a URL that does not parse (its password could not be found
/// to seal), a password that is itself a sealed value, and a password in the query string
/// (`?password=…`), which would be stored in clear.
pub(crate) fn url_to_store(
    secrets: &SecretBox,
    incoming: &str,
    stored: Option<&str>,
) -> ApiResult<String> {
    let mut url = Url::parse(incoming).map_err(|e| refuse(format!("is not a valid URL ({e})")))?;
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(name, _)| name.to_ascii_lowercase().contains("password"))
    {
        return Err(refuse(format!(
            "carries a credential in its query (`{name}`); put the password in the user \
             info (`scheme://user:password@host`), where it is encrypted at rest"
        )));
    }
    let Some(password) = url.password() else {
        return Ok(incoming.to_owned());
    };
    if is_sealed(password) {
        return Err(refuse(
            "has a sealed value as its password; send the password, or `redacted` to keep the \
             stored one",
        ));
    }
    let stored = stored.and_then(|s| Url::parse(s).ok());
    if password == REDACTED {
        let Some(old) = stored.filter(|old| {
            old.username() == url.username() && old.password().is_some_and(|p| p != REDACTED)
        }) else {
            return Err(refuse(format!(
                "has the password `{REDACTED}`, which keeps the stored password, but no \
                 password of user `{}` is stored; send the password",
                url.username()
            )));
        };
        let old = seal_url(secrets, old.as_str())
            .map_err(|e| ApiError::internal("cannot seal the stored password", &e))?;
        let old =
            Url::parse(&old).map_err(|e| ApiError::internal("a sealed URL does not parse", &e))?;
        // A sealed value has unreserved characters only: it is set as is, not re-encoded.
        if url.set_password(old.password()).is_err() {
            return Err(refuse("cannot carry a password"));
        }
        return Ok(url.to_string());
    }
    if let Some(old) = stored
        && old.password().is_some_and(is_sealed)
        && reveal_url(secrets, old.as_str())
            .is_ok_and(|real| Url::parse(&real).ok() == Some(url.clone()))
    {
        return Ok(old.to_string());
    }
    seal_url(secrets, incoming).map_err(|e| ApiError::internal("cannot seal the password", &e))
}

/// A 422 about `/spec/url`.
fn refuse(detail: impl Into<String>) -> ApiError {
    ApiError::invalid(
        ErrorCode::ValidationFailed,
        "the document is invalid",
        vec![Problem::new("/spec/url", detail.into())],
    )
}

/// Redacts the URL inside a target cluster document, in place.
pub fn redact_target_cluster(document: &mut Value) {
    if let Some(url) = document.pointer_mut("/spec/url")
        && let Some(text) = url.as_str()
    {
        *url = Value::String(redact_url(text));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> SecretBox {
        SecretBox::from_secret(b"api test secret").unwrap()
    }

    fn password(url: &str) -> String {
        Url::parse(url).unwrap().password().unwrap().to_owned()
    }

    #[test]
    fn passwords_are_sealed_and_never_show() {
        let secrets = secrets();
        let original = "postgres://admin:s3cret@db:5432/postgres";
        let stored = url_to_store(&secrets, original, None).unwrap();
        assert!(!stored.contains("s3cret"), "{stored}");
        assert!(is_sealed(&password(&stored)));
        assert_eq!(reveal_url(&secrets, &stored).unwrap(), original);
        let shown = redact_url(&stored);
        assert_eq!(shown, "postgres://admin:redacted@db:5432/postgres");

        // Sending back what was shown, or the original, keeps the stored value exactly.
        assert_eq!(
            url_to_store(&secrets, &shown, Some(&stored)).unwrap(),
            stored
        );
        assert_eq!(
            url_to_store(&secrets, original, Some(&stored)).unwrap(),
            stored
        );
        // Elsewhere in the URL a change shows; the sealed password is kept.
        let moved = url_to_store(
            &secrets,
            "postgres://admin:redacted@db2:5432/postgres",
            Some(&stored),
        )
        .unwrap();
        assert_eq!(password(&moved), password(&stored));
        assert_eq!(
            reveal_url(&secrets, &moved).unwrap(),
            "postgres://admin:s3cret@db2:5432/postgres"
        );

        // A new password is sealed afresh.
        let changed = url_to_store(
            &secrets,
            "postgres://admin:new@db:5432/postgres",
            Some(&stored),
        )
        .unwrap();
        assert_ne!(password(&changed), password(&stored));
        assert_eq!(
            reveal_url(&secrets, &changed).unwrap(),
            "postgres://admin:new@db:5432/postgres"
        );

        assert_eq!(redact_url("http://127.0.0.1:9200"), "http://127.0.0.1:9200");
        assert!(!redact_url("redis://u:p@ss@x").contains("p@ss"));
    }

    #[test]
    fn passwords_stored_in_clear_are_sealed_when_kept() {
        let secrets = secrets();
        let clear = "redis://admin:p%40ss@cache:6379/0";
        let kept =
            url_to_store(&secrets, "redis://admin:redacted@cache:6379/0", Some(clear)).unwrap();
        assert!(is_sealed(&password(&kept)));
        assert_eq!(reveal_url(&secrets, &kept).unwrap(), clear);
        // The same URL in clear is sealed too, not kept in clear.
        let sealed = url_to_store(&secrets, clear, Some(clear)).unwrap();
        assert!(is_sealed(&password(&sealed)));
    }

    #[test]
    fn what_cannot_be_sealed_is_refused() {
        let secrets = secrets();
        let stored = url_to_store(&secrets, "postgres://admin:pw@db/x", None).unwrap();
        for (incoming, stored) in [
            // Another user never inherits the stored password; nothing to keep when new.
            ("postgres://other:redacted@db/x", Some(stored.as_str())),
            ("postgres://admin:redacted@db/x", None),
            // A sealed value is not accepted as a password.
            (stored.as_str(), None),
            ("postgres://admin@db/x?password=pw", None),
            ("postgres://admin:pw@db:99999999/x", None),
        ] {
            let refused = url_to_store(&secrets, incoming, stored).unwrap_err();
            assert_eq!(refused.code(), ErrorCode::ValidationFailed, "{incoming}");
            let body = serde_json::to_string(&refused.details()).unwrap();
            assert!(!body.contains("pw@") && !body.contains("=pw"), "{body}");
        }
        // Without a password there is nothing to seal.
        assert_eq!(
            url_to_store(&secrets, "http://127.0.0.1:9200", None).unwrap(),
            "http://127.0.0.1:9200"
        );
    }
}
