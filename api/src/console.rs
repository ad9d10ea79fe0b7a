//! The web console: the files of `web/dist` (built by `make web`, i.e. `npm run build` in
//! `web/`), embedded in the binary and served at `/`.
//!
//! Files are served with their content type and caching rules: `assets/*` (content-hashed
//! by Vite) are immutable for a year, everything else (`index.html` first) is revalidated
//! on every use (`no-cache`, with an `ETag`). Any other `GET` path outside the API and the
//! probes gets `index.html`, so the console's own routes (`/products/team/name`) load it;
//! a missing `assets/*` file is a 404 rather than HTML a browser would run as a script.
//! Unknown `/api/…` paths keep their problem+json 404. Every console answer carries
//! security headers: `nosniff`, no referrer, no framing, and a Content-Security-Policy
//! that admits the app's own origin plus the OIDC token endpoint the browser posts to.
//!
//! Built without `web/dist`, the binary answers `/` with a page saying how to build the
//! console. (Debug builds read `web/dist` from disk when asked, so a console built after
//! the server shows up without a rebuild.)

use std::borrow::Cow;

use axum::body::Body;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::auth::jwt::OidcSettings;
use crate::error::{ApiError, ErrorCode};

/// The console's files, embedded at build time (release) or read from disk (debug).
#[derive(rust_embed::Embed)]
#[folder = "../web/dist"]
#[allow_missing = true]
struct Dist;

/// How long hashed assets may be cached: a year, never revalidated.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Everything else is revalidated on every use.
const REVALIDATE: &str = "no-cache";

/// What `/` shows when the binary was built without the console.
const NOT_BUILT: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Sluice</title></head><body>\n<h1>Sluice</h1>\n<p>The web console was not built into \
this binary. Build it with <code>make web</code> (or <code>cd web &amp;&amp; npm ci &amp;&amp; \
npm run build</code>), then build Sluice again.</p>\n<p>The API is at <a href=\"/api/docs\">\
/api/docs</a>.</p>\n</body></html>\n";

/// Paths that belong to the API or the operations endpoints, never to the console.
const RESERVED: [&str; 4] = ["/api", "/healthz", "/readyz", "/metrics"];

/// Serves the console's files; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Console {
    /// The Content-Security-Policy of console answers.
    csp: HeaderValue,
}

impl Console {
    /// The console of a server whose OIDC settings are `oidc` (the browser posts to its
    /// token endpoint, so the policy admits that origin).
    pub(crate) fn new(oidc: Option<&OidcSettings>) -> Self {
        let token_origin = oidc
            .and_then(|o| o.token_endpoint.as_deref())
            .and_then(|endpoint| url::Url::parse(endpoint).ok())
            .map(|url| url.origin().ascii_serialization())
            .filter(|origin| origin != "null");
        let csp = content_security_policy(token_origin.as_deref());
        Console {
            csp: HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'")),
        }
    }

    /// The answer to a request no route matched.
    pub(crate) fn serve(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Response {
        let path = uri.path();
        if is_reserved(path) || !(method == Method::GET || method == Method::HEAD) {
            return ApiError::new(ErrorCode::NotFound, "no such endpoint").into_response();
        }
        let file = path.trim_start_matches('/');
        let response = match lookup(file) {
            Some(found) => found.respond(headers),
            None if file.starts_with("assets/") => {
                ApiError::new(ErrorCode::NotFound, format!("no console file {path}"))
                    .into_response()
            }
            None => match Dist::get("index.html") {
                Some(index) => Found::of("index.html", index).respond(headers),
                None => html(NOT_BUILT),
            },
        };
        self.secure(response)
    }

    /// Adds the security headers of console answers.
    fn secure(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(CONTENT_SECURITY_POLICY, self.csp.clone());
        response
    }
}

/// The Content-Security-Policy for a Vite-built single-page app (module scripts and
/// stylesheets from its own origin, inline styles, `data:` images), which may also call
/// `token_origin` (the OIDC token endpoint's origin) and may not be framed.
fn content_security_policy(token_origin: Option<&str>) -> String {
    let connect = match token_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'self'; connect-src {connect}; img-src 'self' data:; \
         style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
    )
}

/// Whether `path` is an API or operations path (the console never answers those).
fn is_reserved(path: &str) -> bool {
    RESERVED.iter().any(|reserved| {
        path == *reserved
            || path
                .strip_prefix(reserved)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// An embedded file to answer with.
struct Found {
    data: Cow<'static, [u8]>,
    content_type: String,
    cache_control: &'static str,
    etag: String,
}

impl Found {
    fn of(path: &str, file: rust_embed::EmbeddedFile) -> Found {
        Found {
            content_type: content_type(file.metadata.mimetype()),
            cache_control: cache_control(path),
            etag: format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16])),
            data: file.data,
        }
    }

    fn respond(self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == self.etag));
        let (status, body) = if fresh {
            (StatusCode::NOT_MODIFIED, Body::empty())
        } else {
            (StatusCode::OK, Body::from(self.data))
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&self.content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(self.cache_control));
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(ETAG, value);
        }
        response
    }
}

/// The embedded file at `path` (relative, no `..`), if there is one.
fn lookup(path: &str) -> Option<Found> {
    if path.is_empty()
        || path.ends_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|segment| segment == ".." || segment == ".")
    {
        return None;
    }
    Dist::get(path).map(|file| Found::of(path, file))
}

/// Hashed `assets/*` are immutable; the rest is revalidated.
fn cache_control(path: &str) -> &'static str {
    if path.starts_with("assets/") {
        IMMUTABLE
    } else {
        REVALIDATE
    }
}

/// The content type of a file, text types in UTF-8.
fn content_type(mime: &str) -> String {
    let textual = mime.starts_with("text/")
        || matches!(
            mime,
            "application/javascript" | "application/json" | "image/svg+xml"
        );
    if textual && !mime.contains("charset") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    }
}

fn html(page: &'static str) -> Response {
    let mut response = (StatusCode::OK, page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_and_probe_paths_are_reserved_and_console_paths_are_not() {
        for path in ["/api", "/api/v1/nope", "/healthz", "/readyz/x", "/metrics"] {
            assert!(is_reserved(path), "{path}");
        }
        for path in [
            "/",
            "/products/a/b",
            "/apis",
            "/metrics-dashboard",
            "/assets/a.js",
        ] {
            assert!(!is_reserved(path), "{path}");
        }
    }

    #[test]
    fn hashed_assets_are_immutable_and_the_rest_revalidated() {
        assert_eq!(cache_control("assets/index-3f9a1c.js"), IMMUTABLE);
        assert_eq!(cache_control("index.html"), REVALIDATE);
        assert_eq!(cache_control("favicon.svg"), REVALIDATE);
    }

    #[test]
    fn text_types_are_utf8() {
        assert_eq!(content_type("text/html"), "text/html; charset=utf-8");
        assert_eq!(
            content_type("text/javascript"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("image/png"), "image/png");
    }

    #[test]
    fn paths_that_climb_out_are_never_looked_up() {
        for path in [
            "../Cargo.toml",
            "assets/../../x",
            "./index.html",
            "a\\b",
            "dir/",
        ] {
            assert!(lookup(path).is_none(), "{path}");
        }
    }

    #[test]
    fn the_policy_admits_the_token_endpoint_origin_only() {
        let mut oidc = OidcSettings::new(
            "https://idp.example.com/realms/acme",
            "sluice-console",
            crate::auth::jwt::JwksSource::File("/k.json".into()),
        );
        assert_eq!(
            Console::new(Some(&oidc)).csp,
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
             style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        );
        oidc.token_endpoint =
            Some("https://idp.example.com:8443/realms/acme/protocol/openid-connect/token".into());
        assert_eq!(
            Console::new(Some(&oidc)).csp,
            "default-src 'self'; connect-src 'self' https://idp.example.com:8443; \
             img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        );
    }
}
