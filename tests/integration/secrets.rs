//! Target credentials encrypted at rest (`docs/secrets.md`): through the real API over a real
//! SQLite store, the password of a cluster URL is only ever stored sealed, never returned,
//! never audited, and revealed only with the server's secret key.

use axum::http::StatusCode;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_store::secrets::{is_sealed, reveal_url};
use sluice_store::{AuditQuery, ObjectKey, SecretBox, SecretError, Store};

use crate::api::{ADMIN_TOKEN, TempDir, TestApi, path_of, retail_documents};

/// The retail clusters' password (see `api::retail_documents`).
const PASSWORD: &str = "s3cret-pw";

/// A test API whose server seals with a known key, over a store whose file we can read.
struct SealingApi {
    api: TestApi,
    secrets: SecretBox,
    dir: TempDir,
}

impl SealingApi {
    async fn new() -> Self {
        let secrets = SecretBox::from_secret(b"sluice-test-secret-key").unwrap();
        let dir = std::env::temp_dir().join(format!(
            "sluice-secrets-test-{:016x}",
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
        let mut api = TestApi::new().await;
        api.router = sluice_api::router(AppState::new(store.clone()).with_secrets(secrets.clone()));
        api.store = store;
        SealingApi {
            api,
            secrets,
            dir: TempDir(dir),
        }
    }

    /// Every TargetCluster row of the `objects` table, read with SQL: (name, spec text).
    async fn cluster_rows(&self) -> Vec<(String, String)> {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}/sluice.db", self.dir.0.display()))
                .await
                .unwrap();
        let rows = sqlx::query_as(
            "SELECT name, spec FROM objects WHERE kind = 'TargetCluster' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        pool.close().await;
        rows
    }

    /// The stored URL of a cluster, as the store holds it.
    async fn stored_url(&self, name: &str) -> String {
        let object = self
            .api
            .store
            .get(&ObjectKey::target_cluster(name))
            .await
            .unwrap()
            .unwrap();
        object.spec["url"].as_str().unwrap().to_owned()
    }

    /// Every byte of the database files, for a search that no table or page can escape.
    fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(&self.dir.0).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        bytes
    }

    /// The audit log exported through the API.
    async fn audit_export(&self) -> String {
        let answer = self.api.get("/api/v1/audit/export").await;
        assert_eq!(answer.status, StatusCode::OK);
        match answer.body {
            Value::String(text) => text,
            // A one-line export parses as JSON.
            other => other.to_string(),
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The sealed password in a stored URL.
fn password_of(url: &str) -> String {
    url.split(['@', ':', '/'])
        .find(|part| part.starts_with("enc."))
        .unwrap_or_else(|| panic!("no sealed password in {url}"))
        .to_owned()
}

/// The retail documents' URL of `cluster`.
fn original_url(cluster: &str) -> String {
    retail_documents()
        .into_iter()
        .find(|d| d["kind"] == "TargetCluster" && d["metadata"]["name"] == cluster)
        .unwrap()["spec"]["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn passwords_are_stored_sealed_and_revealed_with_the_key() {
    let t = SealingApi::new().await;
    t.api.apply_retail().await;

    let rows = t.cluster_rows().await;
    assert_eq!(rows.len(), 3);
    for (name, spec) in &rows {
        assert!(!spec.contains(PASSWORD), "{name}: {spec}");
        let spec: Value = serde_json::from_str(spec).unwrap();
        let url = spec["url"].as_str().unwrap();
        // The real URL comes back with the key; URLs without a password stay as they were.
        assert_eq!(
            reveal_url(&t.secrets, url).unwrap(),
            original_url(name),
            "{name}"
        );
        if name == "shared-search" {
            assert_eq!(url, "http://127.0.0.1:2");
        } else {
            let sealed = password_of(url);
            assert!(
                sealed.starts_with(&format!("enc.v1.{}.", t.secrets.key_id())),
                "{url}"
            );
            assert!(is_sealed(&sealed));
            // Only the password is sealed: user, host, port and database stay readable.
            assert_eq!(url.replace(&sealed, PASSWORD), original_url(name));
        }
    }
    // Not in any table, index, page or journal of the database.
    let bytes = t.database_bytes();
    assert!(!bytes.is_empty());
    assert!(!contains(&bytes, PASSWORD));

    // The same password sealed twice (two clusters) gives two ciphertexts: fresh nonces.
    let pg = t.stored_url("shared-pg").await;
    let redis = t.stored_url("shared-redis").await;
    assert_ne!(password_of(&pg), password_of(&redis));
    assert_ne!(
        t.secrets.seal(PASSWORD).unwrap(),
        t.secrets.seal(PASSWORD).unwrap()
    );
}

#[tokio::test]
async fn passwords_are_never_returned_nor_audited() {
    let t = SealingApi::new().await;
    t.api.apply_retail().await;
    for path in [
        "/api/v1/targetclusters",
        "/api/v1/targetclusters/shared-pg",
        "/api/v1/targetclusters/shared-redis",
    ] {
        let text = t.api.get(path).await.body.to_string();
        assert!(!text.contains(PASSWORD), "{path}: {text}");
        // Nor its ciphertext: responses show the marker only.
        assert!(!text.contains("enc.v1."), "{path}: {text}");
    }
    let shown = t.api.get("/api/v1/targetclusters/shared-redis").await.body;
    assert_eq!(
        shown["spec"]["url"],
        json!("redis://admin:redacted@127.0.0.1:3/0")
    );

    // A change of the password is audited as a change of the URL, redacted on both sides.
    let mut doc = shown.clone();
    doc["spec"]["url"] = json!("redis://admin:n3w-s3cret@127.0.0.1:3/0");
    let answer = t
        .api
        .put_json("/api/v1/targetclusters/shared-redis", &doc)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(!answer.body.to_string().contains("n3w-s3cret"));

    let export = t.audit_export().await;
    assert!(export.lines().count() >= 4, "{export}");
    for secret in [PASSWORD, "n3w-s3cret", "enc.v1."] {
        assert!(
            !export.contains(secret),
            "{secret} in the audit log: {export}"
        );
    }
    let entries = t
        .api
        .store
        .audit_entries(&AuditQuery::for_object(&ObjectKey::target_cluster(
            "shared-redis",
        )))
        .await
        .unwrap();
    let update = entries.iter().find(|e| e.outcome == "updated").unwrap();
    let redacted = json!({"spec": {"url": "redis://admin:redacted@127.0.0.1:3/0"}});
    let diff: Value = match &update.diff {
        Value::String(text) => serde_json::from_str(text).unwrap(),
        other => other.clone(),
    };
    assert_eq!(diff, json!({"before": redacted, "after": redacted}));
    assert!(!contains(&t.database_bytes(), "n3w-s3cret"));
}

#[tokio::test]
async fn reapplying_keeps_and_changing_reseals() {
    let t = SealingApi::new().await;
    t.api.apply_retail().await;
    let path = "/api/v1/targetclusters/shared-pg";
    let stored = t.stored_url("shared-pg").await;

    // The redacted document sent back keeps the sealed password, byte for byte.
    let shown = t.api.get(path).await.body;
    let answer = t.api.put_json(path, &shown).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["x-sluice-outcome"], "unchanged");
    assert_eq!(t.stored_url("shared-pg").await, stored);
    // So does the original document with the password in clear: applying it is idempotent.
    let original = retail_documents()
        .into_iter()
        .find(|d| path_of(d) == path)
        .unwrap();
    let answer = t.api.put_json(path, &original).await;
    assert_eq!(answer.headers["x-sluice-outcome"], "unchanged");
    assert_eq!(t.stored_url("shared-pg").await, stored);
    // Another host with the redacted password keeps the password, sealed as before.
    let mut moved = t.api.get(path).await.body;
    moved["spec"]["url"] = json!("postgres://admin:redacted@127.0.0.1:9/postgres");
    let answer = t.api.put_json(path, &moved).await;
    assert_eq!(answer.headers["x-sluice-outcome"], "updated");
    let kept = t.stored_url("shared-pg").await;
    assert_eq!(password_of(&kept), password_of(&stored));
    assert_eq!(
        reveal_url(&t.secrets, &kept).unwrap(),
        format!("postgres://admin:{PASSWORD}@127.0.0.1:9/postgres")
    );

    // A new password is sealed afresh.
    let mut changed = t.api.get(path).await.body;
    changed["spec"]["url"] = json!("postgres://admin:an0ther-pw@127.0.0.1:9/postgres");
    let answer = t.api.put_json(path, &changed).await;
    assert_eq!(answer.headers["x-sluice-outcome"], "updated");
    let resealed = t.stored_url("shared-pg").await;
    assert_ne!(password_of(&resealed), password_of(&kept));
    assert!(is_sealed(&password_of(&resealed)));
    assert_eq!(
        reveal_url(&t.secrets, &resealed).unwrap(),
        "postgres://admin:an0ther-pw@127.0.0.1:9/postgres"
    );
    assert!(!contains(&t.database_bytes(), "an0ther-pw"));
}

#[tokio::test]
async fn another_key_or_an_altered_ciphertext_reveals_nothing() {
    let t = SealingApi::new().await;
    t.api.apply_retail().await;
    let stored = t.stored_url("shared-pg").await;

    // A server with another secret key cannot open it, and says so.
    let other = SecretBox::from_secret(b"another-secret-key").unwrap();
    let error = reveal_url(&other, &stored).unwrap_err();
    assert!(
        matches!(&error, SecretError::WrongKey { found, .. } if found == t.secrets.key_id()),
        "{error:?}"
    );
    assert!(error.to_string().contains("another secret key"), "{error}");

    // A ciphertext altered in the database fails authentication.
    let sealed = password_of(&stored);
    let (head, data) = sealed.rsplit_once('.').unwrap();
    let flipped = if data.starts_with('A') { "B" } else { "A" };
    let altered = stored.replace(&sealed, &format!("{head}.{flipped}{}", &data[1..]));
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/sluice.db", t.dir.0.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE objects SET spec = json_set(spec, '$.url', ?) WHERE kind = 'TargetCluster' AND name = 'shared-pg'")
        .bind(&altered)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let tampered = t.stored_url("shared-pg").await;
    assert_eq!(tampered, altered);
    assert!(matches!(
        reveal_url(&t.secrets, &tampered),
        Err(SecretError::Inauthentic)
    ));
}

#[tokio::test]
async fn what_would_be_stored_in_clear_is_refused() {
    let t = SealingApi::new().await;
    t.api.apply_retail().await;
    let stored = t.stored_url("shared-pg").await;
    let cluster = |name: &str, url: &str| {
        json!({
            "apiVersion": "sluice.dev/v1alpha1",
            "kind": "TargetCluster",
            "metadata": {"name": name},
            "spec": {"type": "postgres", "url": url, "isolation": "schema", "allowedTeams": ["*"]},
        })
    };
    for url in [
        // `redacted` with nothing stored to keep.
        "postgres://admin:redacted@127.0.0.1:1/postgres",
        // A sealed value is no password.
        stored.as_str(),
        // A password in the query would be stored in clear.
        "postgres://admin@127.0.0.1:1/postgres?password=s3cret-pw",
    ] {
        let answer = t
            .api
            .put_json("/api/v1/targetclusters/new-pg", &cluster("new-pg", url))
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{url}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["errors"][0]["pointer"], "#/spec/url",
            "{}",
            answer.body
        );
        assert!(
            !answer.body.to_string().contains(PASSWORD),
            "{}",
            answer.body
        );
    }
    assert!(
        t.api
            .store
            .get(&ObjectKey::target_cluster("new-pg"))
            .await
            .unwrap()
            .is_none()
    );
}
