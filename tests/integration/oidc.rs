//! OIDC JWTs for people, with real keys: fresh RSA and P-256 key pairs sign the tokens, a
//! JWKS file or a JWKS URL (a local HTTP server) carries the public halves, and the real
//! router decides. Valid tokens act per their role and team; every way a token can be wrong
//! is a 401 with a clear detail; a JWKS URL picks up rotated keys, rate-limited.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine;
use http_body_util::BodyExt;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::auth::Role;
use sluice_api::auth::jwt::{JwksSource, OidcSettings, OidcVerifier, Rejection};
use sluice_store::Store;
use tower::ServiceExt;

use crate::api::{ADMIN_TOKEN, TempDir, path_of, retail_documents};

const ISSUER: &str = "https://idp.example.com/realms/acme";
const AUDIENCE: &str = "sluice-console";
const OWN_TEAM: &str = "team-payments";
const OTHER_TEAM: &str = "team-other";

/// A signing key of the test identity provider.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    /// The public half, as published in the JWKS.
    jwk: Jwk,
}

impl SigningKey {
    fn es256(kid: &str) -> Self {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let der = secret.to_pkcs8_der().unwrap();
        Self::from_encoding(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    fn rs256(kid: &str) -> Self {
        Self::from_encoding(kid, Algorithm::RS256, EncodingKey::from_rsa_der(&RSA_DER))
    }

    fn from_encoding(kid: &str, alg: Algorithm, encoding: EncodingKey) -> Self {
        let mut jwk = Jwk::from_encoding_key(&encoding, alg).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        SigningKey {
            kid: kid.to_owned(),
            alg,
            encoding,
            jwk,
        }
    }

    /// A JWT over `claims` with this key's `kid` and algorithm.
    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// One RSA key for the whole binary: generating 2048-bit keys is slow in debug builds.
static RSA_DER: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    key.to_pkcs1_der().unwrap().as_bytes().to_vec()
});

fn jwks(keys: &[&SigningKey]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.jwk.clone()).collect(),
    })
    .unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for a person with `role` in `team`.
fn claims(role: &str, team: &str) -> Value {
    json!({
        "iss": ISSUER,
        "aud": [AUDIENCE, "another-client"],
        "sub": "7f1c2e9a-0000-4000-8000-000000000001",
        "email": "alice@example.com",
        "iat": now() - 5,
        "nbf": now() - 5,
        "exp": now() + 600,
        "team": team,
        "role": role,
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A router over a fresh SQLite store, with the admin API token and `oidc` (if any).
struct OidcApi {
    router: axum::Router,
    _dir: TempDir,
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl OidcApi {
    async fn new(oidc: Option<Arc<OidcVerifier>>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "sluice-oidc-test-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::connect(
            &format!("sqlite://{}/sluice.db?mode=rwc", dir.display()),
            crate::store::test_audit_key(),
        )
        .await
        .unwrap();
        sluice_api::bootstrap_admin(&store, Some(&sluice_api::Secret::new(ADMIN_TOKEN)))
            .await
            .unwrap();
        let mut state = AppState::new(store);
        if let Some(oidc) = oidc {
            state = state.with_oidc(oidc);
        }
        OidcApi {
            router: sluice_api::router(state),
            _dir: TempDir(dir),
        }
    }

    async fn send(&self, token: &str, method: Method, path: &str, body: &Value) -> Answer {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        assert!(!status.is_server_error(), "{status}: {body}");
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, token: &str, path: &str) -> Answer {
        self.send(token, Method::GET, path, &Value::Null).await
    }

    /// Asserts a 401 in problem+json whose detail contains `expected` and not the token.
    async fn assert_refused(&self, case: &str, token: &str, expected: &str) {
        let answer = self.get(token, "/api/v1/products").await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{case}: {}",
            answer.body
        );
        assert_eq!(
            answer.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{case}"
        );
        assert!(
            answer.headers.contains_key(header::WWW_AUTHENTICATE),
            "{case}"
        );
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(expected),
            "{case}: detail {detail:?} lacks {expected:?}"
        );
        assert!(!detail.contains(token), "{case}: the token leaked");
    }
}

/// Settings over a JWKS file written into `dir`.
fn file_settings(dir: &std::path::Path, keys: &[&SigningKey]) -> OidcSettings {
    let path = dir.join(format!("jwks-{:x}.json", rand::random::<u64>()));
    std::fs::write(&path, jwks(keys)).unwrap();
    OidcSettings::new(ISSUER, AUDIENCE, JwksSource::File(path))
}

async fn file_verifier(keys: &[&SigningKey]) -> (Arc<OidcVerifier>, TempDir) {
    let dir = std::env::temp_dir().join(format!("sluice-jwks-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let verifier = OidcVerifier::new(file_settings(&dir, keys)).await.unwrap();
    (Arc::new(verifier), TempDir(dir))
}

#[tokio::test]
async fn valid_jwts_act_per_their_role_and_team() {
    let ec = SigningKey::es256("ec-1");
    let rsa = SigningKey::rs256("rsa-1");
    let (verifier, _keys) = file_verifier(&[&ec, &rsa]).await;
    let api = OidcApi::new(Some(verifier)).await;

    // An admin person sets up the catalog (RS256); API tokens keep working beside JWTs.
    let admin = rsa.sign(&claims("admin", "platform"));
    let docs = retail_documents();
    for doc in docs.iter().filter(|d| d["kind"] != "DataProduct") {
        let answer = api.send(&admin, Method::PUT, &path_of(doc), doc).await;
        assert!(
            answer.status.is_success(),
            "{}: {}",
            path_of(doc),
            answer.body
        );
    }
    assert_eq!(
        api.get(ADMIN_TOKEN, "/api/v1/tokens").await.status,
        StatusCode::OK
    );

    // A requester (ES256) applies its team's product, and not another team's.
    let product = docs
        .iter()
        .find(|d| d["kind"] == "DataProduct" && d["metadata"]["team"] == OWN_TEAM)
        .unwrap()
        .clone();
    let requester = ec.sign(&claims("requester", OWN_TEAM));
    let answer = api
        .send(&requester, Method::PUT, &path_of(&product), &product)
        .await;
    assert!(answer.status.is_success(), "{}", answer.body);
    let mut elsewhere = product.clone();
    elsewhere["metadata"]["team"] = json!(OTHER_TEAM);
    let answer = api
        .send(&requester, Method::PUT, &path_of(&elsewhere), &elsewhere)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("alice@example.com (requester@team-payments) may not PUT"),
        "{}",
        answer.body
    );

    // A viewer reads but does not write; an auditor sees who did what, by name.
    let viewer = rsa.sign(&claims("viewer", OTHER_TEAM));
    assert_eq!(
        api.get(&viewer, "/api/v1/products").await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.send(&viewer, Method::PUT, &path_of(&product), &product)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let auditor = ec.sign(&claims("auditor", "platform"));
    let audit = api.get(&auditor, "/api/v1/audit").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    let text = audit.body.to_string();
    assert!(
        text.contains("alice@example.com (requester@team-payments)"),
        "{text}"
    );
    assert!(
        text.contains("alice@example.com (admin@platform)"),
        "{text}"
    );
}

#[tokio::test]
async fn claims_map_to_the_principal_with_configured_names() {
    let ec = SigningKey::es256("ec-1");
    let dir = std::env::temp_dir().join(format!("sluice-jwks-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());

    let default = OidcVerifier::new(file_settings(&dir, &[&ec]))
        .await
        .unwrap();
    let principal = default
        .verify(&ec.sign(&claims("owner", OWN_TEAM)))
        .await
        .unwrap();
    assert_eq!(principal.name, "alice@example.com");
    assert_eq!(principal.team, OWN_TEAM);
    assert_eq!(principal.role, Role::Owner);
    // Without the name claim, the subject names the person.
    let principal = default
        .verify(&ec.sign(&without(claims("owner", OWN_TEAM), "email")))
        .await
        .unwrap();
    assert_eq!(principal.name, "7f1c2e9a-0000-4000-8000-000000000001");
    // A single audience string is as good as a list; a little clock skew is tolerated.
    let skewed = with(
        with(claims("viewer", OWN_TEAM), "aud", json!(AUDIENCE)),
        "exp",
        json!(now() - 10),
    );
    assert!(default.verify(&ec.sign(&skewed)).await.is_ok());

    let mut settings = file_settings(&dir, &[&ec]);
    settings.team_claim = "https://sluice.example.com/team".into();
    settings.role_claim = "sluice_role".into();
    settings.name_claim = "preferred_username".into();
    let custom = OidcVerifier::new(settings).await.unwrap();
    let token = ec.sign(&json!({
        "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 60, "sub": "u-1",
        "preferred_username": "bob",
        "https://sluice.example.com/team": "team-data",
        "sluice_role": "approver",
        "team": "ignored", "role": "admin",
    }));
    let principal = custom.verify(&token).await.unwrap();
    assert_eq!(
        (
            principal.name.as_str(),
            principal.team.as_str(),
            principal.role
        ),
        ("bob", "team-data", Role::Approver)
    );
}

#[tokio::test]
async fn every_wrong_token_is_a_401_with_a_clear_detail() {
    let ec = SigningKey::es256("ec-1");
    let rsa = SigningKey::rs256("rsa-1");
    let stranger = SigningKey::es256("ec-1"); // the same kid, another key
    let unknown = SigningKey::es256("ec-unknown");
    let (verifier, _keys) = file_verifier(&[&ec, &rsa]).await;
    let api = OidcApi::new(Some(verifier)).await;
    let good = || claims("requester", OWN_TEAM);

    let header = b64(br#"{"alg":"none","typ":"JWT","kid":"ec-1"}"#);
    let alg_none = format!("{header}.{}.", b64(good().to_string().as_bytes()));
    // HS256 keyed with the public JWKS, which anyone can read.
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("rsa-1".into());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &good(),
        &EncodingKey::from_secret(jwks(&[&rsa]).as_bytes()),
    )
    .unwrap();
    // ES256 claimed for the RSA key's kid.
    let mut mixed = Header::new(Algorithm::ES256);
    mixed.kid = Some("rsa-1".into());
    let mixed = jsonwebtoken::encode(&mixed, &good(), &ec.encoding).unwrap();
    // A valid signature over altered claims.
    let original = ec.sign(&good());
    let parts: Vec<&str> = original.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims("admin", OWN_TEAM).to_string().as_bytes()),
        parts[2]
    );

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            ec.sign(&with(good(), "exp", json!(now() - 300))),
            "the JWT has expired",
        ),
        (
            "not yet valid",
            ec.sign(&with(good(), "nbf", json!(now() + 300))),
            "the JWT is not valid yet",
        ),
        (
            "no expiry",
            ec.sign(&without(good(), "exp")),
            "the JWT has no `exp` claim",
        ),
        (
            "wrong issuer",
            ec.sign(&with(good(), "iss", json!("https://evil.example.com"))),
            "the JWT's issuer (iss) is not https://idp.example.com/realms/acme",
        ),
        (
            "no issuer",
            ec.sign(&without(good(), "iss")),
            "the JWT has no `iss` claim",
        ),
        (
            "wrong audience",
            rsa.sign(&with(good(), "aud", json!("another-client"))),
            "the JWT's audience (aud) does not include sluice-console",
        ),
        (
            "no audience",
            rsa.sign(&without(good(), "aud")),
            "the JWT has no `aud` claim",
        ),
        (
            "signed by another key",
            stranger.sign(&good()),
            "the JWT's signature does not verify",
        ),
        (
            "altered claims",
            forged,
            "the JWT's signature does not verify",
        ),
        (
            "unknown kid",
            unknown.sign(&good()),
            "signed with key \"ec-unknown\", which is not in the issuer's key set",
        ),
        (
            "alg none",
            alg_none,
            "JWT algorithm \"none\" is not accepted; expected RS256 or ES256",
        ),
        (
            "HS256 keyed with the public key",
            hs256,
            "JWT algorithm \"HS256\" is not accepted",
        ),
        (
            "algorithm not the key's",
            mixed,
            "the JWT's algorithm ES256 does not match its key \"rsa-1\" (RS256)",
        ),
        (
            "no role",
            ec.sign(&without(good(), "role")),
            "the JWT has no `role` claim",
        ),
        (
            "not a role",
            ec.sign(&with(good(), "role", json!("superuser"))),
            "the JWT's `role` claim is \"superuser\", not a role (viewer, requester",
        ),
        (
            "role not a string",
            ec.sign(&with(good(), "role", json!(["admin"]))),
            "the JWT's `role` claim must be a non-empty string",
        ),
        (
            "no team",
            ec.sign(&without(good(), "team")),
            "the JWT has no `team` claim",
        ),
        (
            "team not a DNS label",
            ec.sign(&with(good(), "team", json!("Team_Payments"))),
            "the JWT's `team` claim is \"Team_Payments\", not a team name (a DNS-1123 label",
        ),
        (
            "no name and no subject",
            ec.sign(&without(without(good(), "email"), "sub")),
            "the JWT has no `email` or `sub` claim",
        ),
        (
            "three parts without a JOSE header: an opaque token",
            "a.b.c".into(),
            "the token is unknown, expired or revoked",
        ),
    ];
    for (case, token, expected) in &cases {
        api.assert_refused(case, token, expected).await;
    }
}

#[tokio::test]
async fn without_oidc_jwts_are_refused_like_unknown_tokens() {
    let ec = SigningKey::es256("ec-1");
    let api = OidcApi::new(None).await;
    api.assert_refused(
        "OIDC off",
        &ec.sign(&claims("admin", "platform")),
        "the token is unknown, expired or revoked",
    )
    .await;
    assert_eq!(
        api.get(ADMIN_TOKEN, "/api/v1/products").await.status,
        StatusCode::OK
    );
}

/// A JWKS served over HTTP on loopback, replaceable, counting its fetches.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    async fn start(initial: String) -> Self {
        let body = Arc::new(Mutex::new(initial));
        let fetches = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get({
                let body = Arc::clone(&body);
                let fetches = Arc::clone(&fetches);
                move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let text = body.lock().unwrap().clone();
                    ([(header::CONTENT_TYPE, "application/json")], text)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        JwksServer {
            url: format!("http://{addr}/.well-known/jwks.json"),
            body,
            fetches,
            task,
        }
    }

    fn publish(&self, text: String) {
        *self.body.lock().unwrap() = text;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_jwks_url_is_fetched_again_for_rotated_keys_at_most_once_per_interval() {
    let old = SigningKey::es256("key-2024");
    let new = SigningKey::rs256("key-2025");
    let newest = SigningKey::es256("key-2026");
    let server = JwksServer::start(jwks(&[&old])).await;
    let settings = |interval: Duration| {
        let mut settings = OidcSettings::new(ISSUER, AUDIENCE, JwksSource::Url(server.url.clone()));
        settings.refetch_interval = interval;
        settings
    };
    // One verifier fetching again whenever needed, one that just fetched and must wait.
    let eager = Arc::new(OidcVerifier::new(settings(Duration::ZERO)).await.unwrap());
    let patient = OidcVerifier::new(settings(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(server.fetches(), 2, "each fetches once at start");
    // And one whose keys are always too old to be used without fetching them again.
    let mut aging = settings(Duration::ZERO);
    aging.max_key_age = Duration::ZERO;
    let aging = OidcVerifier::new(aging).await.unwrap();
    assert!(
        aging
            .verify(&old.sign(&claims("viewer", OWN_TEAM)))
            .await
            .is_ok()
    );
    assert_eq!(server.fetches(), 4, "stale keys are fetched again");
    let api = OidcApi::new(Some(Arc::clone(&eager))).await;

    let person = claims("viewer", OWN_TEAM);
    assert_eq!(
        api.get(&old.sign(&person), "/api/v1/products").await.status,
        StatusCode::OK
    );
    assert_eq!(server.fetches(), 4, "known keys need no fetch");

    // The provider rotates: the new key is published, the old one withdrawn.
    server.publish(jwks(&[&new]));
    assert_eq!(
        api.get(&new.sign(&person), "/api/v1/products").await.status,
        StatusCode::OK
    );
    assert_eq!(
        server.fetches(),
        5,
        "the unknown kid fetched the JWKS again"
    );
    api.assert_refused(
        "withdrawn key",
        &old.sign(&person),
        "signed with key \"key-2024\", which is not in the issuer's key set",
    )
    .await;

    // Within its interval the patient verifier does not fetch: the new kid is unknown to it,
    // the old key it has still works, and random kids cannot make it hammer the provider.
    let fetched = server.fetches();
    for kid in ["key-2025", "random-1", "random-2"] {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.into());
        let token = jsonwebtoken::encode(&header, &person, &new.encoding).unwrap();
        assert_eq!(
            patient.verify(&token).await.unwrap_err(),
            Rejection::UnknownKey(format!("{kid:?}"))
        );
    }
    assert!(patient.verify(&old.sign(&person)).await.is_ok());
    assert_eq!(server.fetches(), fetched, "rate-limited: no fetch");
    // Keys past their age are fetched again even when the token's kid is known, so the
    // withdrawn key no longer works there either.
    assert_eq!(
        aging.verify(&old.sign(&person)).await.unwrap_err(),
        Rejection::UnknownKey("\"key-2024\"".into())
    );
    assert_eq!(
        server.fetches(),
        fetched + 2,
        "one for the age, one for the kid (its refetch interval is zero)"
    );

    // A failed fetch keeps the keys it has.
    server.publish("not json".into());
    assert!(eager.verify(&newest.sign(&person)).await.is_err());
    assert!(eager.verify(&new.sign(&person)).await.is_ok());
    server.publish(jwks(&[&new, &newest]));
    assert!(eager.verify(&newest.sign(&person)).await.is_ok());
}

#[tokio::test]
async fn serve_refuses_to_start_with_unusable_oidc_keys() {
    let dir = std::env::temp_dir().join(format!("sluice-oidc-serve-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let hmac_only = dir.join("hmac.json");
    std::fs::write(&hmac_only, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let cases = [
        (
            dir.join("missing.json").display().to_string(),
            format!(
                "cannot read the JWKS file {}",
                dir.join("missing.json").display()
            ),
        ),
        (
            hmac_only.display().to_string(),
            "has no RS256 or ES256 signing key".to_owned(),
        ),
        (
            "http://127.0.0.1:1/jwks".to_owned(),
            "cannot fetch the JWKS from http://127.0.0.1:1/jwks".to_owned(),
        ),
    ];
    for (jwks, expected) in cases {
        let env: std::collections::HashMap<String, String> = [
            ("SLUICE_DATA_DIR", dir.display().to_string()),
            ("SLUICE_LISTEN", "127.0.0.1:0".to_owned()),
            ("SLUICE_SECRET_KEY", "test-secret".to_owned()),
            ("SLUICE_OIDC_ISSUER", ISSUER.to_owned()),
            ("SLUICE_OIDC_AUDIENCE", AUDIENCE.to_owned()),
            ("SLUICE_OIDC_JWKS", jwks),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = sluice_api::Config::from_sources(None, &env).unwrap();
        let err = sluice_api::serve(&config, |_| panic!("must not listen"), async {})
            .await
            .unwrap_err();
        let text = format!("{}: {}", err, std::error::Error::source(&err).unwrap());
        assert!(
            text.starts_with("cannot load the OIDC signing keys from SLUICE_OIDC_JWKS: "),
            "{text}"
        );
        assert!(text.contains(&expected), "{text} lacks {expected}");
    }
}

#[tokio::test]
async fn me_names_the_person_and_auth_config_tells_the_console_how_to_sign_in() {
    let ec = SigningKey::es256("ec-1");
    let dir = std::env::temp_dir().join(format!("sluice-jwks-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = TempDir(dir.clone());
    let mut settings = file_settings(&dir, &[&ec]);
    settings.authorization_endpoint = Some(format!("{ISSUER}/protocol/openid-connect/auth"));
    settings.token_endpoint = Some(format!("{ISSUER}/protocol/openid-connect/token"));
    settings.client_id = Some("sluice-console".to_owned());
    let verifier = Arc::new(OidcVerifier::new(settings).await.unwrap());
    let api = OidcApi::new(Some(verifier)).await;

    let me = api
        .get(&ec.sign(&claims("requester", OWN_TEAM)), "/api/v1/me")
        .await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(
        me.body,
        json!({"name": "alice@example.com", "team": OWN_TEAM, "role": "requester", "via": "oidc"})
    );
    assert_eq!(
        api.get(ADMIN_TOKEN, "/api/v1/me").await.body["via"],
        "token"
    );

    // Public: no token needed (an expired one is not even looked at).
    let expired = ec.sign(&with(claims("viewer", OWN_TEAM), "exp", json!(now() - 600)));
    for token in ["", expired.as_str()] {
        let mut request = Request::get("/api/v1/auth/config");
        if !token.is_empty() {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let response = api
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"oidc": {
                "issuer": ISSUER,
                "audience": AUDIENCE,
                "authorizationEndpoint": format!("{ISSUER}/protocol/openid-connect/auth"),
                "tokenEndpoint": format!("{ISSUER}/protocol/openid-connect/token"),
                "clientId": "sluice-console",
            }})
        );
    }
    // The console may post to the token endpoint: its origin is in the policy.
    let response = api
        .router
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("connect-src 'self' https://idp.example.com;"),
        "{csp}"
    );
}
