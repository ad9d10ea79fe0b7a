//! OIDC JWTs for people: the console signs people in with the organisation's identity
//! provider and sends its ID or access token as `Authorization: Bearer <JWT>`.
//!
//! A JWT is accepted when its signature verifies with a key of the configured JWKS (a file,
//! or an `http(s)` URL fetched at start), its algorithm is RS256 or ES256 (never `none` or
//! HMAC: the key set is public), its `iss` is the configured issuer, its `aud` includes the
//! configured audience and it is within `exp`/`nbf` (with a small leeway for clock skew).
//! Its claims then name the person, their team and their role. A JWKS URL is fetched again
//! when a token names an unknown key id (`kid`), at most once per refetch interval, so key
//! rotation at the provider needs no restart and random `kid`s cannot flood it; and when the
//! keys are older than the maximum key age, so withdrawn keys stop working. Tokens are never
//! logged.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, errors::ErrorKind};
use serde::Deserialize;
use serde_json::{Map, Value};
use sluice_schemas::names::is_dns_label;

use super::roles::{Principal, Role, Via};

/// The claim naming the caller's team unless configured otherwise.
pub const DEFAULT_TEAM_CLAIM: &str = "team";
/// The claim naming the caller's role unless configured otherwise.
pub const DEFAULT_ROLE_CLAIM: &str = "role";
/// The claim naming the caller unless configured otherwise; `sub` when it is absent.
pub const DEFAULT_NAME_CLAIM: &str = "email";
/// The least time between two fetches of a JWKS URL (the one at start included).
pub const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// How long keys fetched from a JWKS URL are trusted before the next token fetches them
/// again, so a key the provider withdrew stops working without a restart.
pub const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(15 * 60);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The signature algorithms accepted: asymmetric only, so the public JWKS cannot sign.
const ACCEPTED: [(&str, Algorithm); 2] = [("RS256", Algorithm::RS256), ("ES256", Algorithm::ES256)];
/// A JWKS larger than this is refused (real ones are a few kilobytes).
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Bearer tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the signing keys come from: `SLUICE_OIDC_JWKS`, a file path or an `http(s)` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document on disk, read once at start.
    File(PathBuf),
    /// A JWKS URL, fetched at start and again when a token names an unknown key.
    Url(String),
}

impl JwksSource {
    /// `http://…` and `https://…` are URLs; anything else is a file path.
    pub fn parse(text: &str) -> Self {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            JwksSource::Url(text.to_owned())
        } else {
            JwksSource::File(PathBuf::from(text))
        }
    }
}

impl fmt::Display for JwksSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Url(url) => f.write_str(url),
        }
    }
}

/// How JWTs are verified and mapped to a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The expected `iss` (`SLUICE_OIDC_ISSUER`).
    pub issuer: String,
    /// The audience `aud` must include (`SLUICE_OIDC_AUDIENCE`).
    pub audience: String,
    /// The signing keys (`SLUICE_OIDC_JWKS`).
    pub jwks: JwksSource,
    /// The claim holding the team (`SLUICE_OIDC_TEAM_CLAIM`, default `team`).
    pub team_claim: String,
    /// The claim holding the role (`SLUICE_OIDC_ROLE_CLAIM`, default `role`).
    pub role_claim: String,
    /// The claim naming the person (`SLUICE_OIDC_NAME_CLAIM`, default `email`; `sub` when
    /// the token lacks it).
    pub name_claim: String,
    /// The least time between two fetches of a JWKS URL.
    pub refetch_interval: Duration,
    /// How long keys from a JWKS URL are used before a token triggers a fetch.
    pub max_key_age: Duration,
    /// The provider's authorization endpoint the console signs people in at
    /// (`SLUICE_OIDC_AUTHORIZE_URL`); `None`: the console offers no OIDC sign-in button.
    pub authorization_endpoint: Option<String>,
    /// The provider's token endpoint the console exchanges codes at
    /// (`SLUICE_OIDC_TOKEN_URL`); set together with the authorization endpoint.
    pub token_endpoint: Option<String>,
    /// The console's OAuth client id at the provider (`SLUICE_OIDC_CLIENT_ID`).
    pub client_id: Option<String>,
}

impl OidcSettings {
    /// Settings with the default claim names and refetch interval.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, jwks: JwksSource) -> Self {
        OidcSettings {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks,
            team_claim: DEFAULT_TEAM_CLAIM.to_owned(),
            role_claim: DEFAULT_ROLE_CLAIM.to_owned(),
            name_claim: DEFAULT_NAME_CLAIM.to_owned(),
            refetch_interval: DEFAULT_REFETCH_INTERVAL,
            max_key_age: DEFAULT_MAX_KEY_AGE,
            authorization_endpoint: None,
            token_endpoint: None,
            client_id: None,
        }
    }
}

/// Why the signing keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The JWKS file could not be read.
    #[error("cannot read the JWKS file {}", path.display())]
    ReadFile {
        /// The file given.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client for the JWKS URL")]
    Client(#[source] reqwest::Error),
    /// The JWKS URL could not be fetched (unreachable, timeout, not http).
    #[error("cannot fetch the JWKS from {url}")]
    Fetch {
        /// The URL given.
        url: String,
        /// The client's reason.
        #[source]
        source: reqwest::Error,
    },
    /// The JWKS URL is `https` and the HTTP client of this build has no TLS.
    #[error(
        "cannot fetch the JWKS from {url}: this build has no TLS client; \
         point SLUICE_OIDC_JWKS at a file or an http URL (e.g. a local proxy or sidecar)"
    )]
    TlsUnsupported {
        /// The URL given.
        url: String,
    },
    /// The JWKS URL answered with an error status.
    #[error("the JWKS URL {url} answered HTTP {status}")]
    Status {
        /// The URL given.
        url: String,
        /// The status code.
        status: u16,
    },
    /// The document is larger than any real key set.
    #[error("the JWKS from {source_name} is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge {
        /// The file or URL.
        source_name: String,
    },
    /// The document is not a JWKS.
    #[error("{source_name} is not a JWKS (a JSON object with a `keys` array)")]
    Parse {
        /// The file or URL.
        source_name: String,
        /// The parser's reason.
        #[source]
        source: serde_json::Error,
    },
    /// The JWKS holds no key usable for RS256 or ES256 signatures.
    #[error("the JWKS from {source_name} has no RS256 or ES256 signing key")]
    NoUsableKey {
        /// The file or URL.
        source_name: String,
    },
}

/// Why a JWT was refused; the text is the 401's detail. It never quotes the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Not three base64url parts with a JSON header.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// An algorithm other than RS256 and ES256, `none` and HMAC included.
    #[error("JWT algorithm {0} is not accepted; expected RS256 or ES256")]
    Algorithm(String),
    /// The header's `kid` is in no key set, even after fetching the JWKS again.
    #[error("the JWT is signed with key {0}, which is not in the issuer's key set")]
    UnknownKey(String),
    /// The key named by `kid` is for another algorithm than the header's.
    #[error("the JWT's algorithm {alg} does not match its key {kid} ({key_alg})")]
    KeyAlgorithm {
        /// The header's algorithm.
        alg: String,
        /// The key id.
        kid: String,
        /// The key's algorithm.
        key_alg: String,
    },
    /// The signature does not verify with the key (or, without `kid`, with any key).
    #[error("the JWT's signature does not verify")]
    Signature,
    /// `exp` has passed.
    #[error("the JWT has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the JWT is not valid yet (nbf is in the future)")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the JWT's issuer (iss) is not {0}")]
    Issuer(String),
    /// `aud` does not include the configured audience.
    #[error("the JWT's audience (aud) does not include {0}")]
    Audience(String),
    /// A required claim is absent.
    #[error("the JWT has no `{0}` claim")]
    MissingClaim(String),
    /// A claim has the wrong form.
    #[error("the JWT's `{claim}` claim {reason}")]
    InvalidClaim {
        /// The claim.
        claim: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// A verification key from the JWKS.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Algorithm,
    key: DecodingKey,
}

/// The usable keys of one JWKS document.
#[derive(Clone)]
struct KeySet {
    keys: Vec<Key>,
    /// When the document was read or fetched.
    loaded_at: Instant,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| (k.kid.as_deref(), k.alg)))
            .finish()
    }
}

impl KeySet {
    fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    fn kids(&self) -> Vec<&str> {
        self.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }
}

/// Verifies OIDC JWTs against the configured issuer, audience and key set.
pub struct OidcVerifier {
    settings: OidcSettings,
    client: Option<reqwest::Client>,
    keys: RwLock<Arc<KeySet>>,
    /// When the JWKS URL was last fetched; held while fetching, so one fetch runs at a time.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.current();
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .field("audience", &self.settings.audience)
            .field("jwks", &self.settings.jwks.to_string())
            .field("kids", &keys.kids())
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Loads the key set (reads the file or fetches the URL) and returns a verifier; fails
    /// when the keys cannot be had or none is usable.
    pub async fn new(settings: OidcSettings) -> Result<Self, OidcError> {
        let (client, keys) = match &settings.jwks {
            JwksSource::File(path) => (None, read_file(path).await?),
            JwksSource::Url(url) => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .connect_timeout(FETCH_TIMEOUT)
                    .build()
                    .map_err(OidcError::Client)?;
                let keys = parse(&fetch(url, &client).await?, url)?;
                (Some(client), keys)
            }
        };
        tracing::info!(
            issuer = %settings.issuer,
            jwks = %settings.jwks,
            keys = keys.keys.len(),
            "OIDC sign-in enabled"
        );
        let fetched = client.is_some().then(Instant::now);
        Ok(OidcVerifier {
            settings,
            client,
            keys: RwLock::new(Arc::new(keys)),
            last_fetch: tokio::sync::Mutex::new(fetched),
        })
    }

    /// The settings this verifier was built with.
    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The principal a JWT proves, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(Rejection::Malformed);
        }
        let header = peek_header(token).ok_or(Rejection::Malformed)?;
        let alg = ACCEPTED
            .iter()
            .find(|(name, _)| *name == header.alg)
            .map(|(_, alg)| *alg)
            .ok_or_else(|| Rejection::Algorithm(quote(&header.alg)))?;

        let mut keys = self.current();
        if self.client.is_some() && keys.loaded_at.elapsed() >= self.settings.max_key_age {
            self.refetch(None).await;
            keys = self.current();
        }
        let candidates: Vec<Key> = match &header.kid {
            Some(kid) => {
                if !keys.has_kid(kid) && self.refetch(Some(kid)).await {
                    keys = self.current();
                }
                let key = keys
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .ok_or_else(|| Rejection::UnknownKey(quote(kid)))?;
                if key.alg != alg {
                    return Err(Rejection::KeyAlgorithm {
                        alg: header.alg.clone(),
                        kid: quote(kid),
                        key_alg: format!("{:?}", key.alg),
                    });
                }
                vec![key.clone()]
            }
            // Without `kid`, any key of the algorithm may have signed it.
            None => keys.keys.iter().filter(|k| k.alg == alg).cloned().collect(),
        };

        let validation = self.validation(alg);
        let mut last = Rejection::Signature;
        for key in &candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.principal(&data.claims),
                Err(error) => {
                    last = self.rejection(error.kind());
                    if last != Rejection::Signature {
                        return Err(last);
                    }
                }
            }
        }
        Err(last)
    }

    /// The key set in use now.
    fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => Arc::clone(&keys),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Fetches the JWKS URL again, unless it was fetched less than the refetch interval ago:
    /// because a token names `kid` (whether the key set now holds it), or, with `None`,
    /// because the keys are older than the maximum key age (then without waiting for a fetch
    /// already under way: the current keys do meanwhile).
    async fn refetch(&self, kid: Option<&str>) -> bool {
        let (JwksSource::Url(url), Some(client)) = (&self.settings.jwks, &self.client) else {
            return false;
        };
        let mut last_fetch = match kid {
            Some(_) => self.last_fetch.lock().await,
            None => match self.last_fetch.try_lock() {
                Ok(guard) => guard,
                Err(_) => return false,
            },
        };
        // Another request may have fetched them while this one waited.
        match kid {
            Some(kid) if self.current().has_kid(kid) => return true,
            None if self.current().loaded_at.elapsed() < self.settings.max_key_age => {
                return false;
            }
            _ => {}
        }
        if last_fetch.is_some_and(|at| at.elapsed() < self.settings.refetch_interval) {
            if let Some(kid) = kid {
                tracing::debug!(
                    kid = %quote(kid),
                    "unknown OIDC key id; the JWKS was fetched recently, not fetching again yet"
                );
            }
            return false;
        }
        *last_fetch = Some(Instant::now());
        match fetch(url, client)
            .await
            .and_then(|bytes| parse(&bytes, url))
        {
            Ok(keys) => {
                tracing::info!(jwks = %url, kids = ?keys.kids(), "fetched the OIDC signing keys again");
                let found = kid.is_some_and(|kid| keys.has_kid(kid));
                match self.keys.write() {
                    Ok(mut current) => *current = Arc::new(keys),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
                }
                found
            }
            Err(error) => {
                tracing::warn!(
                    jwks = %url,
                    error = %error_chain(&error),
                    "cannot fetch the OIDC signing keys again; keeping the previous ones"
                );
                false
            }
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = true;
        validation.leeway = LEEWAY_SECONDS;
        validation
    }

    fn rejection(&self, kind: &ErrorKind) -> Rejection {
        match kind {
            ErrorKind::ExpiredSignature => Rejection::Expired,
            ErrorKind::ImmatureSignature => Rejection::NotYetValid,
            ErrorKind::InvalidIssuer => Rejection::Issuer(self.settings.issuer.clone()),
            ErrorKind::InvalidAudience => Rejection::Audience(self.settings.audience.clone()),
            ErrorKind::MissingRequiredClaim(claim) => Rejection::MissingClaim(claim.clone()),
            ErrorKind::InvalidClaimFormat(claim) => Rejection::InvalidClaim {
                claim: claim.clone(),
                reason: "has the wrong type".to_owned(),
            },
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => Rejection::Malformed,
            // A signature that does not verify, a key that does not fit the algorithm.
            _ => Rejection::Signature,
        }
    }

    /// Maps verified claims to a principal.
    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, Rejection> {
        let settings = &self.settings;
        let role_text = string_claim(claims, &settings.role_claim)?;
        let role: Role = role_text.parse().map_err(|_| Rejection::InvalidClaim {
            claim: settings.role_claim.clone(),
            reason: format!(
                "is {}, not a role (viewer, requester, owner, approver, admin or auditor)",
                quote(role_text)
            ),
        })?;
        let team = string_claim(claims, &settings.team_claim)?;
        if !is_dns_label(team) {
            return Err(Rejection::InvalidClaim {
                claim: settings.team_claim.clone(),
                reason: format!(
                    "is {}, not a team name (a DNS-1123 label: lowercase letters, digits and '-', at most 63)",
                    quote(team)
                ),
            });
        }
        let name = match claims.get(&settings.name_claim) {
            Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
            _ => match claims.get("sub") {
                Some(Value::String(sub)) if !sub.trim().is_empty() => sub.clone(),
                _ => {
                    return Err(Rejection::MissingClaim(format!(
                        "{}` or `sub",
                        settings.name_claim
                    )));
                }
            },
        };
        Ok(Principal {
            name,
            team: team.to_owned(),
            role,
            via: Via::Oidc,
        })
    }
}

/// A claim that must be a non-empty string.
fn string_claim<'c>(claims: &'c Map<String, Value>, claim: &str) -> Result<&'c str, Rejection> {
    match claims.get(claim) {
        None | Some(Value::Null) => Err(Rejection::MissingClaim(claim.to_owned())),
        Some(Value::String(text)) if !text.is_empty() => Ok(text),
        Some(_) => Err(Rejection::InvalidClaim {
            claim: claim.to_owned(),
            reason: "must be a non-empty string".to_owned(),
        }),
    }
}

/// The JOSE header fields that matter here. `jwk`, `jku` and `x5u` are ignored on
/// purpose: keys come from the configured JWKS only.
#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// The header of a compact JWS: three dot-separated parts, the first base64url JSON with an
/// `alg`. `None` when `token` does not have that shape.
fn peek_header(token: &str) -> Option<PeekedHeader> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Whether `token` has the shape of a JWT (so it is not an opaque API token).
pub fn looks_like_jwt(token: &str) -> bool {
    token.len() <= MAX_TOKEN_BYTES && peek_header(token).is_some()
}

/// A value from a token, quoted and cut short for an error message or log line.
fn quote(text: &str) -> String {
    let mut short: String = text.chars().take(64).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// An error with its causes, for a log line.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_file(path: &std::path::Path) -> Result<KeySet, OidcError> {
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|source| OidcError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
    let source_name = path.display().to_string();
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(OidcError::TooLarge { source_name });
    }
    parse(&bytes, &source_name)
}

async fn fetch(url: &str, client: &reqwest::Client) -> Result<Vec<u8>, OidcError> {
    let fetch_error = |source| OidcError::Fetch {
        url: url.to_owned(),
        source,
    };
    let mut response = client
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "application/json, application/jwk-set+json",
        )
        .send()
        .await
        .map_err(|source| {
            // Without a TLS feature the connector refuses https URLs before connecting.
            if url.to_ascii_lowercase().starts_with("https://")
                && error_chain(&source).contains("scheme is not http")
            {
                OidcError::TlsUnsupported {
                    url: url.to_owned(),
                }
            } else {
                fetch_error(source)
            }
        })?;
    if !response.status().is_success() {
        return Err(OidcError::Status {
            url: url.to_owned(),
            status: response.status().as_u16(),
        });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_JWKS_BYTES {
            return Err(OidcError::TooLarge {
                source_name: url.to_owned(),
            });
        }
    }
    Ok(body)
}

/// The usable keys of a JWKS document. Keys for encryption, for other algorithms or of
/// unknown types are skipped (with a warning when unparseable); none usable is an error.
fn parse(bytes: &[u8], source_name: &str) -> Result<KeySet, OidcError> {
    #[derive(Deserialize)]
    struct RawSet {
        keys: Vec<Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|source| OidcError::Parse {
        source_name: source_name.to_owned(),
        source,
    })?;
    let mut set = KeySet {
        keys: Vec::new(),
        loaded_at: Instant::now(),
    };
    for value in raw.keys {
        let jwk: Jwk = match serde_json::from_value(value) {
            Ok(jwk) => jwk,
            Err(error) => {
                tracing::warn!(jwks = %source_name, %error, "skipping a key the JWKS parser does not understand");
                continue;
            }
        };
        if let Some(key) = usable_key(&jwk) {
            set.keys.push(key);
        }
    }
    if set.keys.is_empty() {
        return Err(OidcError::NoUsableKey {
            source_name: source_name.to_owned(),
        });
    }
    Ok(set)
}

/// The key of `jwk` when it verifies RS256 or ES256 signatures.
fn usable_key(jwk: &Jwk) -> Option<Key> {
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwks_sources_are_urls_or_paths() {
        assert_eq!(
            JwksSource::parse("https://idp.example/keys"),
            JwksSource::Url("https://idp.example/keys".into())
        );
        assert_eq!(
            JwksSource::parse("HTTP://127.0.0.1:1/jwks"),
            JwksSource::Url("HTTP://127.0.0.1:1/jwks".into())
        );
        assert_eq!(
            JwksSource::parse("/etc/sluice/jwks.json"),
            JwksSource::File("/etc/sluice/jwks.json".into())
        );
    }

    #[test]
    fn only_jws_shaped_tokens_look_like_jwts() {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert!(looks_like_jwt(&format!("{header}.e30.")));
        assert!(!looks_like_jwt("slc_abc"));
        assert!(!looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt(&format!("{header}.e30")));
        assert!(!looks_like_jwt(&format!("{header}.e30.x.y")));
    }

    #[test]
    fn only_signature_keys_for_rs256_and_es256_are_used() {
        let ec = serde_json::json!({
            "kty": "EC", "crv": "P-256", "kid": "ec",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
        });
        let set = parse(
            serde_json::json!({"keys": [
                ec,
                {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
                {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
                 "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                 "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
                {"kty": "weird"}
            ]})
            .to_string()
            .as_bytes(),
            "test",
        )
        .unwrap();
        assert_eq!(set.kids(), vec!["ec"]);
        assert_eq!(set.keys[0].alg, Algorithm::ES256);

        let err = parse(
            br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#,
            "hmac.json",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the JWKS from hmac.json has no RS256 or ES256 signing key"
        );
        let err = parse(b"[]", "list.json").unwrap_err();
        assert!(
            err.to_string().starts_with("list.json is not a JWKS"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreadable_and_unreachable_key_sets_fail_clearly() {
        let missing = std::env::temp_dir().join("sluice-no-such-jwks.json");
        let err = OidcVerifier::new(OidcSettings::new(
            "https://idp",
            "sluice",
            JwksSource::File(missing.clone()),
        ))
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot read the JWKS file {}", missing.display())
        );

        // Port 1 on loopback: nothing listens, the connection is refused at once.
        let err = OidcVerifier::new(OidcSettings::new(
            "https://idp",
            "sluice",
            JwksSource::Url("http://127.0.0.1:1/jwks".into()),
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, OidcError::Fetch { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cannot fetch the JWKS from http://127.0.0.1:1/jwks"
        );

        let err = OidcVerifier::new(OidcSettings::new(
            "https://idp",
            "sluice",
            JwksSource::Url("https://127.0.0.1:1/jwks".into()),
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, OidcError::TlsUnsupported { .. }), "{err:?}");
    }

    #[test]
    fn quoted_values_are_short_and_escaped() {
        assert_eq!(quote("a\"b"), r#""a\"b""#);
        assert_eq!(quote(&"x".repeat(100)).chars().count(), 64 + 3);
    }
}
