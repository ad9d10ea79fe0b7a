//! Write-only credentials in target cluster URLs: redacted in every response, and a
//! redacted URL sent back keeps the stored password.

use serde_json::Value;

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

/// If `incoming` carries the redaction marker as password, put back the password of
/// `stored` (same user); otherwise `incoming` as given.
pub fn restore_password(incoming: &str, stored: Option<&str>) -> String {
    let (Ok(mut new), Some(Ok(old))) = (url::Url::parse(incoming), stored.map(url::Url::parse))
    else {
        return incoming.to_owned();
    };
    if new.password() == Some(REDACTED)
        && new.username() == old.username()
        && new.set_password(old.password()).is_ok()
    {
        return new.to_string();
    }
    incoming.to_owned()
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

    #[test]
    fn passwords_never_show_and_survive_a_round_trip() {
        let stored = "postgres://admin:s3cret@db:5432/postgres";
        let shown = redact_url(stored);
        assert_eq!(shown, "postgres://admin:redacted@db:5432/postgres");
        assert_eq!(restore_password(&shown, Some(stored)), stored);
        // A new password is taken as given; another user never inherits the old password.
        assert_eq!(
            restore_password("postgres://admin:new@db:5432/postgres", Some(stored)),
            "postgres://admin:new@db:5432/postgres"
        );
        assert_eq!(
            restore_password("postgres://other:redacted@db/postgres", Some(stored)),
            "postgres://other:redacted@db/postgres"
        );
        assert_eq!(redact_url("http://127.0.0.1:9200"), "http://127.0.0.1:9200");
        assert!(!redact_url("redis://u:p@ss@x").contains("p@ss"));
    }
}
