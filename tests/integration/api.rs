//! The REST API in-process (the real router over a real SQLite store): apply, read back,
//! concurrency, secrets, compatibility, plans, OpenAPI and every error being problem+json.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_store::{ObjectKey, Store};
use tower::ServiceExt;

/// The admin token every test API is created with.
pub const ADMIN_TOKEN: &str = "slc_integration-test-admin-token";

/// A router over a fresh store in a temporary directory.
pub struct TestApi {
    pub router: axum::Router,
    pub store: Store,
    /// The URL of the store's database, for a second connection (another replica).
    pub database_url: String,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApi {
    pub async fn new() -> Self {
        Self::with_state(AppState::new).await
    }

    /// A test API that reads the services' Kafka, as `sluice serve` with
    /// `SLUICE_KAFKA_BOOTSTRAP` (plans with estimates, dataset samples).
    pub async fn with_kafka() -> Self {
        let bootstrap = sluice_tests::services().kafka_bootstrap.clone();
        Self::with_state(move |store| {
            AppState::new(store).with_kafka(std::sync::Arc::new(
                sluice_provisioners::kafka::KafkaProvisioner::new(&bootstrap, 1).unwrap(),
            ))
        })
        .await
    }

    /// A test API whose state is adjusted by `configure` (a policy, OIDC, ...).
    pub async fn with_state(configure: impl FnOnce(Store) -> AppState) -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-api-test-{:016x}", rand_u64()));
        std::fs::create_dir_all(&dir).unwrap();
        let database_url = format!("sqlite://{}/sluice.db?mode=rwc", dir.display());
        let store = Store::connect(&database_url, crate::store::test_audit_key())
            .await
            .unwrap();
        sluice_api::bootstrap_admin(&store, Some(&sluice_api::Secret::new(ADMIN_TOKEN)))
            .await
            .unwrap();
        TestApi {
            router: sluice_api::router(configure(store.clone())),
            store,
            database_url,
            _dir: TempDir(dir),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        self.send_as(Some(ADMIN_TOKEN), method, path, content_type, body)
            .await
    }

    /// A new API token with `role` for `team` (its text is predictable: tests only).
    pub async fn token(&self, role: sluice_api::auth::Role, team: &str) -> String {
        let token = format!("slc_test-{role}-{team}");
        self.store
            .create_token(
                sluice_store::NewToken {
                    name: format!("{role}-{team}"),
                    team: team.to_owned(),
                    role: role.as_str().to_owned(),
                    hash: sluice_api::auth::tokens::hash(&token),
                    expires_at: None,
                },
                &sluice_store::Audit::new("test", ""),
            )
            .await
            .unwrap();
        token
    }

    /// Sends a request with the given bearer token (or none).
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, ct);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        // Probes answer in their own format; everything else errs in problem+json, never 5xx.
        let probe = path == "/readyz";
        if !probe && (status.is_client_error() || status.is_server_error()) {
            assert_eq!(
                headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok()),
                Some("application/problem+json"),
                "{status} without problem+json: {body}"
            );
        }
        assert!(probe || !status.is_server_error(), "{status}: {body}");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// The status of a request with the given bearer token (or none), without reading the
    /// body: for live streams, whose body never ends.
    pub async fn status_as(&self, token: Option<&str>, method: Method, path: &str) -> StatusCode {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        self.router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
            .status()
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, None, Vec::new()).await
    }

    /// `GET path` with `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> Answer {
        self.send_as(Some(token), Method::GET, path, None, Vec::new())
            .await
    }

    pub async fn put_yaml(&self, path: &str, yaml: &str) -> Answer {
        self.send(
            Method::PUT,
            path,
            Some("application/yaml"),
            yaml.as_bytes().to_vec(),
        )
        .await
    }

    pub async fn put_json(&self, path: &str, value: &Value) -> Answer {
        self.send(
            Method::PUT,
            path,
            Some("application/json"),
            value.to_string().into_bytes(),
        )
        .await
    }

    /// Applies every document of the retail example, with dummy target URLs.
    pub async fn apply_retail(&self) {
        for doc in retail_documents() {
            let answer = self.put_json(&path_of(&doc), &doc).await;
            assert!(
                answer.status.is_success(),
                "{}: {}",
                path_of(&doc),
                answer.body
            );
        }
    }
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// The retail example's documents, in apply order, with `${VAR}` replaced.
pub fn retail_documents() -> Vec<Value> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/retail");
    let mut docs = Vec::new();
    for file in ["datasets.yaml", "targets.yaml", "products.yaml"] {
        let text = std::fs::read_to_string(dir.join(file))
            .unwrap()
            .replace(
                "${SLUICE_TEST_POSTGRES_URL}",
                "postgres://admin:s3cret-pw@127.0.0.1:1/postgres",
            )
            .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:2")
            .replace(
                "${SLUICE_TEST_REDIS_URL}",
                "redis://admin:s3cret-pw@127.0.0.1:3/0",
            );
        docs.extend(sluice_schemas::validate::parse_documents(text.as_bytes()).unwrap());
    }
    docs
}

/// The URL a document is applied at.
pub fn path_of(doc: &Value) -> String {
    let name = doc["metadata"]["name"].as_str().unwrap();
    match doc["kind"].as_str().unwrap() {
        "Dataset" => format!("/api/v1/datasets/{name}"),
        "TargetCluster" => format!("/api/v1/targetclusters/{name}"),
        _ => format!(
            "/api/v1/products/{}/{name}",
            doc["metadata"]["team"].as_str().unwrap()
        ),
    }
}

fn retail_product(name: &str) -> Value {
    retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap()
}

fn pointers(answer: &Answer) -> Vec<String> {
    answer.body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["pointer"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn retail_example_applies_and_reads_back() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let applied = retail_product("orders-enriched");
    let got = api
        .get("/api/v1/products/team-payments/orders-enriched")
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["spec"], applied["spec"]);
    assert_eq!(
        got.body["metadata"]["description"],
        applied["metadata"]["description"]
    );
    assert_eq!(got.body["metadata"]["generation"], json!(1));
    assert_eq!(got.body["status"]["phase"], json!("PendingApproval"));
    let etag = got
        .headers
        .get(header::ETAG)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            got.body["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );

    // Applying the same document again changes nothing.
    let again = api
        .put_json("/api/v1/products/team-payments/orders-enriched", &applied)
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.headers["x-sluice-outcome"], "unchanged");
    assert_eq!(
        again.body["metadata"]["resourceVersion"],
        got.body["metadata"]["resourceVersion"]
    );

    // What `get -o yaml` shows can be applied back as it is.
    let round_trip = api
        .put_json("/api/v1/products/team-payments/orders-enriched", &got.body)
        .await;
    assert_eq!(round_trip.status, StatusCode::OK, "{}", round_trip.body);
    assert_eq!(round_trip.headers["x-sluice-outcome"], "unchanged");
}

#[tokio::test]
async fn generation_counts_spec_changes_only() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let path = "/api/v1/products/team-payments/orders-enriched";
    let mut doc = retail_product("orders-enriched");
    doc["metadata"]["description"] = json!("new words");
    let answer = api.put_json(path, &doc).await;
    assert_eq!(answer.headers["x-sluice-outcome"], "updated");
    assert_eq!(answer.body["metadata"]["generation"], json!(1));

    doc["spec"]["fields"]["status"] = json!("o.status");
    let answer = api.put_json(path, &doc).await;
    assert_eq!(answer.body["metadata"]["generation"], json!(2));
    assert_eq!(answer.body["status"]["observedGeneration"], json!(2));
}

#[tokio::test]
async fn stale_writes_get_409() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let path = "/api/v1/products/team-payments/orders-enriched";
    let first = api.get(path).await.body;
    let mut a = first.clone();
    a["metadata"]["description"] = json!("writer a");
    assert_eq!(api.put_json(path, &a).await.status, StatusCode::OK);
    // Writer b read the same version as a, so its write is refused instead of lost.
    let mut b = first.clone();
    b["metadata"]["description"] = json!("writer b");
    let refused = api.put_json(path, &b).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["code"], json!("conflict"));
    assert_eq!(
        api.get(path).await.body["metadata"]["description"],
        json!("writer a")
    );

    // The same holds for If-Match.
    let request = Request::builder()
        .method(Method::DELETE)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .header(
            header::IF_MATCH,
            format!(
                "\"{}\"",
                first["metadata"]["resourceVersion"].as_str().unwrap()
            ),
        )
        .body(Body::empty())
        .unwrap();
    let response = api.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn target_passwords_are_write_only() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    for path in ["/api/v1/targetclusters/shared-pg", "/api/v1/targetclusters"] {
        let answer = api.get(path).await;
        assert!(
            !answer.body.to_string().contains("s3cret-pw"),
            "{path} leaks: {}",
            answer.body
        );
    }
    let shown = api.get("/api/v1/targetclusters/shared-pg").await.body;
    assert_eq!(
        shown["spec"]["url"],
        json!("postgres://admin:redacted@127.0.0.1:1/postgres")
    );
    // Re-applying what was shown keeps the real password.
    let answer = api
        .put_json("/api/v1/targetclusters/shared-pg", &shown)
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let stored = api
        .store
        .get(&ObjectKey::target_cluster("shared-pg"))
        .await
        .unwrap()
        .unwrap();
    // Stored sealed: the password is encrypted at rest (see secrets.rs for revealing it).
    let url = stored.spec["url"].as_str().unwrap();
    assert!(
        !url.contains("s3cret-pw") && url.starts_with("postgres://admin:enc.v1."),
        "stored in clear: {url}"
    );
}

#[tokio::test]
async fn incompatible_schemas_are_refused_with_the_field() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let path = "/api/v1/datasets/shop.orders";
    let mut doc = api.get(path).await.body;
    doc.as_object_mut().unwrap().remove("status");
    // Adding a required field breaks BACKWARD: old records lack it.
    doc["spec"]["schema"]["properties"]["channel"] = json!({"type": "string"});
    doc["spec"]["schema"]["required"]
        .as_array_mut()
        .unwrap()
        .push(json!("channel"));
    let refused = api.put_json(path, &doc).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(refused.body["code"], json!("incompatible_schema"));
    assert!(
        refused.body.to_string().contains("channel"),
        "{}",
        refused.body
    );

    // The check endpoint says the same without storing anything.
    let check = api
        .send(
            Method::POST,
            "/api/v1/datasets/shop.orders/schemas/check",
            Some("application/json"),
            json!({"schema": doc["spec"]["schema"]})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(check.body["compatible"], json!(false));

    // An optional field is fine and becomes version 2.
    let required = doc["spec"]["schema"]["required"].as_array_mut().unwrap();
    required.retain(|r| r != "channel");
    let accepted = api.put_json(path, &doc).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let versions = api.get("/api/v1/datasets/shop.orders/schemas").await.body;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(versions[1]["version"], json!(2));
    let v1 = api.get("/api/v1/datasets/shop.orders/schemas/1").await;
    assert_eq!(v1.status, StatusCode::OK);
    assert!(v1.body["schema"]["properties"].get("channel").is_none());
}

#[tokio::test]
async fn referenced_resources_cannot_be_deleted() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let answer = api
        .send(
            Method::DELETE,
            "/api/v1/datasets/crm.customers",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("team-payments/orders-enriched")
    );
    let answer = api
        .send(
            Method::DELETE,
            "/api/v1/targetclusters/shared-redis",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CONFLICT);

    for doc in retail_documents()
        .iter()
        .filter(|d| d["kind"] == "DataProduct")
    {
        let answer = api
            .send(Method::DELETE, &path_of(doc), None, Vec::new())
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    let answer = api
        .send(
            Method::DELETE,
            "/api/v1/datasets/crm.customers",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        api.get("/api/v1/datasets/crm.customers").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn two_products_cannot_share_a_target() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    // Another team, same Redis prefix on the same cluster.
    let mut doc = retail_product("open-orders-cache");
    doc["metadata"]["team"] = json!("team-other");
    let answer = api.put_json(&path_of(&doc), &doc).await;
    assert_eq!(answer.status, StatusCode::CONFLICT, "{}", answer.body);
    assert_eq!(pointers(&answer), ["#/spec/target/name"]);
    // On PostgreSQL each team has its own schema, so another team may use the same table name.
    let mut doc = retail_product("orders-enriched");
    doc["metadata"]["team"] = json!("team-other");
    assert_eq!(
        api.put_json(&path_of(&doc), &doc).await.status,
        StatusCode::CREATED
    );
    // But not the same team twice.
    doc["metadata"]["name"] = json!("orders-enriched-2");
    assert_eq!(
        api.put_json(&path_of(&doc), &doc).await.status,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn lists_page_and_filter() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let base = retail_product("open-orders-cache");
    for i in 0..7 {
        let mut doc = base.clone();
        doc["metadata"]["name"] = json!(format!("cache-{i}"));
        doc["spec"]["target"]["name"] = json!(format!("cache_{i}"));
        assert!(api.put_json(&path_of(&doc), &doc).await.status.is_success());
    }
    let mut seen = BTreeSet::new();
    let mut url = "/api/v1/products/team-shop?limit=3".to_owned();
    loop {
        let page = api.get(&url).await.body;
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["metadata"]["name"].as_str().unwrap().to_owned()));
        }
        match page["continue"].as_str() {
            Some(next) => url = format!("/api/v1/products/team-shop?limit=3&continue={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    let pending = api
        .get("/api/v1/products?phase=PendingApproval&limit=1000")
        .await
        .body;
    assert_eq!(pending["items"].as_array().unwrap().len(), 10);
    let none = api.get("/api/v1/products?phase=Live").await.body;
    assert_eq!(none["items"], json!([]));
    let bad = api.get("/api/v1/products?limit=many").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unknown = api.get("/api/v1/products?colour=blue").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn plans_show_target_objects_and_store_nothing() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let plan = api
        .get("/api/v1/products/team-payments/orders-enriched/plan")
        .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    let text = plan.body.to_string();
    assert!(text.contains("orders_enriched_v1"), "{text}");
    assert!(
        text.contains("sluice.team-payments.orders-enriched.v1"),
        "{text}"
    );
    assert_eq!(
        plan.body["outputSchema"]["properties"]["amount"]["type"],
        json!("number")
    );

    let mut draft = retail_product("order-search");
    draft["metadata"]["name"] = json!("draft-search");
    let dry = api
        .send(
            Method::POST,
            "/api/v1/products/team-support/draft-search/plan",
            Some("application/json"),
            draft.to_string().into_bytes(),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert!(
        dry.body.to_string().contains("order-search_v1"),
        "{}",
        dry.body
    );
    assert!(
        dry.body
            .to_string()
            .contains("sluice.team-support.draft-search.v1"),
        "{}",
        dry.body
    );
    assert!(
        dry.body["summary"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    );
    assert_eq!(
        api.get("/api/v1/products/team-support/draft-search")
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    draft["spec"]["filter"] = json!("o.nope == 1");
    let refused = api
        .send(
            Method::POST,
            "/api/v1/products/team-support/draft-search/plan",
            Some("application/json"),
            draft.to_string().into_bytes(),
        )
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pointers(&refused), ["#/spec/filter"]);
}

#[tokio::test]
async fn every_error_is_problem_json_with_paths() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let path = "/api/v1/products/team-payments/orders-enriched";

    let mut doc = retail_product("orders-enriched");
    doc["spec"]["sources"][0]["dataset"] = json!("shop.nope");
    doc["spec"]["bogus"] = json!(1);
    let answer = api.put_json(path, &doc).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        pointers(&answer),
        ["#/spec/bogus"],
        "structural problems come first"
    );

    doc["spec"].as_object_mut().unwrap().remove("bogus");
    let answer = api.put_json(path, &doc).await;
    assert_eq!(pointers(&answer), ["#/spec/sources/0/dataset"]);

    let answer = api
        .put_json(
            "/api/v1/products/team-payments/other-name",
            &retail_product("orders-enriched"),
        )
        .await;
    assert_eq!(pointers(&answer), ["#/metadata/name"]);

    let answer = api
        .send(Method::PUT, path, Some("text/html"), b"<p>".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let answer = api
        .send(
            Method::PUT,
            path,
            Some("application/yaml"),
            vec![b'a'; 2 * 1024 * 1024],
        )
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer = api
        .send(
            Method::PUT,
            path,
            Some("application/yaml"),
            b"kind: \xff".to_vec(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let answer = api.get("/api/v1/nothing-here").await;
    assert_eq!(
        (answer.status, answer.body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let answer = api.send(Method::PATCH, path, None, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    let answer = api.put_yaml(path, "a: 1\n---\nb: 2\n").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    // Nothing of it was stored.
    let stored = api.get(path).await.body;
    assert_eq!(
        stored["spec"]["sources"][0]["dataset"],
        json!("shop.orders")
    );
}

#[tokio::test]
async fn openapi_describes_every_route_and_every_ref_resolves() {
    let api = TestApi::new().await;
    let doc = api.get("/api/v1/openapi.json").await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for expected in [
        "/api/v1/datasets",
        "/api/v1/datasets/{name}",
        "/api/v1/datasets/{name}/schemas",
        "/api/v1/datasets/{name}/schemas/{version}",
        "/api/v1/datasets/{name}/schemas/check",
        "/api/v1/targetclusters",
        "/api/v1/targetclusters/{name}",
        "/api/v1/products",
        "/api/v1/products/{team}",
        "/api/v1/products/{team}/{name}",
        "/api/v1/products/{team}/{name}/status",
        "/api/v1/products/{team}/{name}/plan",
        "/api/v1/schemas",
        "/api/v1/schemas/{kind}",
    ] {
        assert!(paths.contains(expected), "{expected} missing from OpenAPI");
    }
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.iter().any(|r| r == "#/components/schemas/DataProduct"));
    for r in refs {
        let pointer = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    let docs = api.get("/api/docs/").await;
    assert_eq!(docs.status, StatusCode::OK);
    assert!(
        docs.body.as_str().unwrap().contains("swagger"),
        "no docs page"
    );
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn published_schemas_are_served() {
    let api = TestApi::new().await;
    let list = api.get("/api/v1/schemas").await.body;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let schema = api.get("/api/v1/schemas/dataproduct.schema.json").await;
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../schemas/json/dataproduct.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema.body, committed);
    assert_eq!(
        api.get("/api/v1/schemas/widget").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health_and_readiness_follow_the_store() {
    let api = TestApi::new().await;
    assert_eq!(api.get("/healthz").await.body, json!({"status": "ok"}));
    assert_eq!(api.get("/readyz").await.status, StatusCode::OK);
    api.store.close().await;
    let answer = api.send(Method::GET, "/readyz", None, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        api.get("/healthz").await.status,
        StatusCode::OK,
        "liveness does not depend on the store"
    );
}
