//! What the web console needs from the API, against the real services: who the caller is
//! and how people sign in, a dataset's lineage, sample records from a real Kafka topic with
//! personal data masked per role, a product's live status stream read over real HTTP, the
//! reader credentials of products provisioned into the real PostgreSQL and OpenSearch, and
//! the console's own files with their headers.

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use sluice_api::auth::Role;
use sluice_tests::TestNamespace;
use sqlx::{Connection, PgConnection};

use crate::api::{ADMIN_TOKEN, TestApi};
use crate::controller::{Cluster, World};

/// The mask samples show in place of personal data.
const MASK: &str = "•••";

#[tokio::test]
async fn me_describes_the_caller_and_auth_config_is_public() {
    let api = TestApi::new().await;
    let viewer = api.token(Role::Viewer, "team-x").await;
    let me = api.get_as(&viewer, "/api/v1/me").await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    assert_eq!(
        me.body,
        json!({"name": "viewer-team-x", "team": "team-x", "role": "viewer", "via": "token"})
    );
    let admin = api.get("/api/v1/me").await;
    assert_eq!(admin.body["role"], "admin");
    assert_eq!(admin.body["team"], "platform");
    let anonymous = api
        .send_as(None, Method::GET, "/api/v1/me", None, Vec::new())
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Without OIDC, sign-in is by token only; the answer needs no token.
    let config = api
        .send_as(None, Method::GET, "/api/v1/auth/config", None, Vec::new())
        .await;
    assert_eq!(config.status, StatusCode::OK);
    assert_eq!(config.body, json!({"oidc": null}));
    // Both are described in the OpenAPI document, the public one without security.
    let openapi = api.get("/api/v1/openapi.json").await.body;
    assert!(openapi["paths"]["/api/v1/me"]["get"].is_object());
    assert_eq!(
        openapi["paths"]["/api/v1/auth/config"]["get"]["security"],
        json!([{}])
    );
    for schema in [
        "Me",
        "AuthConfig",
        "Samples",
        "DatasetProducts",
        "ProductCredentials",
    ] {
        assert!(
            openapi["components"]["schemas"][schema].is_object(),
            "{schema} is not in the OpenAPI document"
        );
    }
    assert!(
        openapi["paths"]["/api/v1/products/{team}/{name}/events"]["get"]["responses"]["200"]
            ["content"]["text/event-stream"]
            .is_object()
    );
}

#[tokio::test]
async fn dataset_lineage_lists_the_products_reading_it_with_their_sources() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let viewer = api.token(Role::Viewer, "team-other").await;
    let lineage = |dataset: &'static str| {
        let api = &api;
        let viewer = viewer.clone();
        async move {
            api.get_as(&viewer, &format!("/api/v1/datasets/{dataset}/products"))
                .await
        }
    };
    let orders = lineage("shop.orders").await;
    assert_eq!(orders.status, StatusCode::OK, "{}", orders.body);
    assert_eq!(
        orders.body,
        json!({"items": [
            {"team": "team-payments", "name": "orders-enriched", "phase": "PendingApproval", "sources": ["o"]},
            {"team": "team-shop", "name": "open-orders-cache", "phase": "PendingApproval", "sources": ["o"]},
            {"team": "team-support", "name": "order-search", "phase": "PendingApproval", "sources": ["o"]},
        ]})
    );
    let payments = lineage("pay.payments").await;
    assert_eq!(
        payments.body,
        json!({"items": [
            {"team": "team-payments", "name": "orders-enriched", "phase": "PendingApproval", "sources": ["p"]},
        ]})
    );
    let customers = lineage("crm.customers").await;
    let names: Vec<&str> = customers.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders-enriched", "order-search"]);
    assert_eq!(
        lineage("no.such").await.status,
        StatusCode::NOT_FOUND,
        "an unknown dataset has no lineage"
    );
}

/// The sample of `dataset` as `token` sees it, with `query`.
async fn samples(api: &TestApi, token: &str, dataset: &str, query: &str) -> crate::api::Answer {
    api.get_as(token, &format!("/api/v1/datasets/{dataset}/samples{query}"))
        .await
}

#[tokio::test]
async fn samples_are_the_latest_records_newest_first_with_personal_data_masked_per_role() {
    let ns = TestNamespace::new("samples");
    let api = TestApi::with_kafka().await;
    let topic = ns.create_topic("people", 3).await.unwrap();
    let dataset = format!("{}.people", ns.id());
    let document = json!({
        "apiVersion": "sluice.dev/v1alpha1", "kind": "Dataset",
        "metadata": {"name": dataset, "owner": "team-people"},
        "spec": {
            "topic": topic, "kind": "stream", "key": "id", "classification": "internal",
            "compatibility": "BACKWARD",
            "schema": {"type": "object", "required": ["id"], "properties": {
                "id": {"type": "string"},
                "email": {"type": "string", "x-pii": true},
                "address": {"type": "object", "properties": {
                    "city": {"type": "string"},
                    "street": {"type": "string", "x-pii": true}}},
                "score": {"type": "integer"}}}
        }
    });
    let put = api
        .put_json(&format!("/api/v1/datasets/{dataset}"), &document)
        .await;
    assert!(put.status.is_success(), "{}", put.body);

    // 14 records over three partitions, each a second newer than the one before; the
    // newest is not JSON.
    let base = chrono::Utc::now().timestamp_millis() - 60_000;
    let values: Vec<(String, String, i64)> = (0..14)
        .map(|i| {
            let value = if i == 13 {
                "not json: p13@example.com".to_owned()
            } else {
                json!({"id": format!("p{i}"), "email": format!("p{i}@example.com"),
                       "address": {"city": "Oslo", "street": format!("Street {i}")}, "score": i})
                .to_string()
            };
            (format!("p{i}"), value, base + i * 1000)
        })
        .collect();
    let producer = ns.kafka_producer();
    sluice_tests::send_in_order(
        &producer,
        values.iter().enumerate().map(|(i, (key, value, at))| {
            FutureRecord::to(&topic)
                .key(key.as_str())
                .payload(value.as_str())
                .partition(i32::try_from(i % 3).unwrap())
                .timestamp(*at)
        }),
    )
    .await;
    // The oracle: newest first is the reverse of the order produced.
    let newest: Vec<&str> = values
        .iter()
        .rev()
        .map(|(key, _, _)| key.as_str())
        .collect();

    let owner_team = api.token(Role::Viewer, "team-people").await;
    let other = api.token(Role::Viewer, "team-other").await;
    let approver = api.token(Role::Approver, "platform").await;

    // The default is ten; admins see everything in clear.
    let clear = samples(&api, ADMIN_TOKEN, &dataset, "").await;
    assert_eq!(clear.status, StatusCode::OK, "{}", clear.body);
    assert_eq!(clear.body["dataset"], dataset);
    assert_eq!(clear.body["topic"], topic);
    assert_eq!(clear.body["masked"], json!([]));
    let records = clear.body["records"].as_array().unwrap();
    let keys: Vec<&str> = records.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, newest[..10]);
    assert_eq!(records[0]["value"], "not json: p13@example.com");
    assert_eq!(records[1]["value"]["email"], "p12@example.com");
    assert_eq!(records[1]["partition"], 0);
    assert_eq!(
        records[1]["timestamp"],
        chrono::DateTime::from_timestamp_millis(base + 12_000)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    // Offsets are the real ones: record 12 is the fifth of partition 0.
    assert_eq!(records[1]["offset"], 4);

    // A limit takes the newest that many, across partitions.
    let three = samples(&api, &owner_team, &dataset, "?limit=3").await;
    let keys: Vec<&str> = three.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, newest[..3]);
    // The owning team sees personal data in clear.
    assert_eq!(
        three.body["records"][1]["value"]["email"],
        "p12@example.com"
    );
    assert_eq!(three.body["masked"], json!([]));
    let all = samples(&api, &owner_team, &dataset, "?limit=100").await;
    assert_eq!(all.body["records"].as_array().unwrap().len(), 14);

    // Everyone else sees the mask in place of every x-pii value, the rest as it is.
    for token in [&other, &approver] {
        let masked = samples(&api, token, &dataset, "?limit=2").await;
        assert_eq!(masked.status, StatusCode::OK, "{}", masked.body);
        assert_eq!(
            masked.body["records"][0]["value"], MASK,
            "not JSON: masked whole"
        );
        assert_eq!(
            masked.body["records"][1]["value"],
            json!({"id": "p12", "email": MASK, "address": {"city": "Oslo", "street": MASK}, "score": 12})
        );
        assert_eq!(
            masked.body["masked"],
            json!(["", "address.street", "email"])
        );
        assert!(
            !masked.body.to_string().contains("@example.com"),
            "{}",
            masked.body
        );
    }

    // Reading committed nothing: the sample readers' group has no offset on the topic.
    let committed = {
        let topic = topic.clone();
        let consumer: rdkafka::consumer::BaseConsumer = ns
            .kafka_config()
            .set("group.id", sluice_pipeline::sample::SAMPLE_GROUP)
            .create()
            .unwrap();
        tokio::task::spawn_blocking(move || {
            use rdkafka::consumer::Consumer;
            let mut partitions = rdkafka::TopicPartitionList::new();
            for p in 0..3 {
                partitions.add_partition(&topic, p);
            }
            consumer
                .committed_offsets(partitions, Duration::from_secs(10))
                .unwrap()
                .elements()
                .iter()
                .map(|e| e.offset())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap()
    };
    assert_eq!(committed, vec![rdkafka::Offset::Invalid; 3]);

    // A limit out of range is a 422 naming it.
    for bad in ["0", "101", "ten"] {
        let refused = samples(&api, &other, &dataset, &format!("?limit={bad}")).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        assert_eq!(refused.body["errors"][0]["pointer"], "#/limit", "{bad}");
    }

    // A dataset whose topic is gone is a 404 naming the topic.
    let mut missing = document.clone();
    let gone = ns.topic("never-created");
    missing["metadata"]["name"] = json!(format!("{dataset}-gone"));
    missing["spec"]["topic"] = json!(gone);
    let put = api
        .put_json(&format!("/api/v1/datasets/{dataset}-gone"), &missing)
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let refused = samples(&api, &other, &format!("{dataset}-gone"), "").await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.body);
    assert!(
        refused.body["detail"].as_str().unwrap().contains(&gone),
        "{}",
        refused.body
    );

    // Without Kafka: 503 saying what to set.
    let offline = TestApi::new().await;
    let put = offline
        .put_json(&format!("/api/v1/datasets/{dataset}"), &document)
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let url = format!("/api/v1/datasets/{dataset}/samples");
    let request = axum::http::Request::get(&url)
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(offline.router.clone(), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("SLUICE_KAFKA_BOOTSTRAP is not set"),
        "{body}"
    );
}

/// Server-sent events read from a response body.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    /// The next event's name and data, or `None` when the stream ended. Comments
    /// (keep-alives) are skipped.
    async fn next(&mut self) -> Option<(String, String)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = String::from("message");
                let mut data = Vec::new();
                for line in block.lines() {
                    if let Some(value) = line.strip_prefix("event:") {
                        name = value.trim().to_owned();
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push(value.strip_prefix(' ').unwrap_or(value).to_owned());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, data.join("\n")));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("no event within 10 s")
                .unwrap()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event, which must be a status; returns its JSON.
    async fn status(&mut self) -> Value {
        let (name, data) = self.next().await.expect("the stream ended");
        assert_eq!(name, "status", "{data}");
        serde_json::from_str(&data).unwrap()
    }
}

#[tokio::test]
async fn product_events_stream_the_status_and_its_changes_until_the_product_is_deleted() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(axum::serve(listener, api.router.clone()).into_future());
    let client = reqwest::Client::new();
    let path = "/api/v1/products/team-payments/orders-enriched";
    let viewer = api.token(Role::Viewer, "team-other").await;
    let open = |token: Option<String>, path: String| {
        let client = client.clone();
        async move {
            let mut request = client.get(format!("http://{addr}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send().await.unwrap()
        }
    };

    // Same access as the status: a token is needed, an unknown product is a 404.
    assert_eq!(
        open(None, format!("{path}/events")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let missing = open(
        Some(viewer.clone()),
        "/api/v1/products/team-payments/nope/events".to_owned(),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let response = open(Some(viewer.clone()), format!("{path}/events")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    // First: exactly the body of GET …/status.
    let first = events.status().await;
    let status = api.get(&format!("{path}/status")).await.body;
    assert_eq!(first, status);
    assert_eq!(first["phase"], "PendingApproval");

    // An approval changes the status: the stream sends it.
    let approver = api.token(Role::Approver, "platform").await;
    let approved = api
        .send_as(
            Some(&approver),
            Method::POST,
            &format!("{path}/approve"),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    let second = events.status().await;
    assert_ne!(second, first);
    assert_eq!(second, api.get(&format!("{path}/status")).await.body);

    // A status written to the store (as the controller does) is sent as written.
    let key = sluice_store::ObjectKey::data_product("team-payments", "orders-enriched");
    let mut written = second.clone();
    written["phase"] = json!("Provisioning");
    written["message"] = json!("written by the test");
    api.store
        .set_status(
            &key,
            written.clone(),
            None,
            &sluice_store::Audit::new("test", "r1"),
        )
        .await
        .unwrap();
    assert_eq!(events.status().await, written);

    // A write by another process (a second connection to the same database) is seen by
    // reading the product every second.
    let replica = sluice_store::Store::connect(&api.database_url, crate::store::test_audit_key())
        .await
        .unwrap();
    written["message"] = json!("written by another replica");
    replica
        .set_status(
            &key,
            written.clone(),
            None,
            &sluice_store::Audit::new("test", "r2"),
        )
        .await
        .unwrap();
    assert_eq!(events.status().await, written);

    // Deleted (never provisioned, so at once): `deleted`, then the end.
    let deleted = api.send(Method::DELETE, path, None, Vec::new()).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    let (name, data) = events.next().await.expect("a deleted event");
    assert_eq!(name, "deleted");
    assert_eq!(
        serde_json::from_str::<Value>(&data).unwrap(),
        json!({"team": "team-payments", "name": "orders-enriched"})
    );
    assert!(events.next().await.is_none(), "the stream goes on");
    server.abort();
}

#[tokio::test]
async fn store_writes_of_this_process_wake_change_watchers() {
    let api = TestApi::new().await;
    let mut changes = api.store.changes();
    // Reads and writes that change nothing do not wake anyone.
    api.get("/api/v1/datasets").await;
    assert!(!changes.has_changed().unwrap());
    api.apply_retail().await;
    assert!(changes.has_changed().unwrap());
    changes.mark_unchanged();
    api.apply_retail().await;
    assert!(
        !changes.has_changed().unwrap(),
        "an unchanged apply woke watchers"
    );
    let key = sluice_store::ObjectKey::data_product("team-shop", "open-orders-cache");
    api.store
        .set_status(
            &key,
            json!({"phase": "Live"}),
            None,
            &sluice_store::Audit::new("t", ""),
        )
        .await
        .unwrap();
    assert!(changes.has_changed().unwrap());
}

#[tokio::test]
async fn a_live_stream_does_not_hold_up_a_graceful_shutdown() {
    let dir = crate::api::TempDir(
        std::env::temp_dir().join(format!("sluice-events-{:x}", rand::random::<u64>())),
    );
    std::fs::create_dir_all(&dir.0).unwrap();
    let env: std::collections::HashMap<String, String> = [
        ("SLUICE_DATA_DIR", dir.0.display().to_string()),
        ("SLUICE_LISTEN", "127.0.0.1:0".to_owned()),
        ("SLUICE_SECRET_KEY", "test-secret".to_owned()),
        ("SLUICE_ADMIN_TOKEN", ADMIN_TOKEN.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = sluice_api::Config::from_sources(None, &env).unwrap();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        sluice_api::serve(
            &config,
            |addr| {
                let _ = bound_tx.send(addr);
            },
            async move {
                let _ = stopped.await;
            },
        )
        .await
    });
    let addr = bound_rx.await.unwrap();
    let client = reqwest::Client::new();
    for doc in crate::api::retail_documents() {
        let answer = client
            .put(format!("http://{addr}{}", crate::api::path_of(&doc)))
            .bearer_auth(ADMIN_TOKEN)
            .json(&doc)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
    }
    let response = client
        .get(format!(
            "http://{addr}/api/v1/products/team-payments/orders-enriched/events"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut events = Events {
        response,
        buffer: String::new(),
    };
    assert_eq!(events.status().await["phase"], "PendingApproval");
    // Shutting down ends the stream, and the server stops without waiting for the client.
    stop.send(()).unwrap();
    let served = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server did not stop within 10 s with a stream open");
    served.unwrap().unwrap();
    assert!(events.next().await.is_none(), "the stream goes on");
}

#[tokio::test]
async fn credentials_are_the_products_own_they_log_in_and_every_read_is_audited() {
    let world = World::new("creds").await;
    let fields = json!({"order_id": "o.id", "amount": "o.amount"});
    world
        .submit(&world.product("orders-pg", Cluster::Postgres, fields.clone(), "Delete"))
        .await;
    world
        .submit(&world.product("orders-search", Cluster::Search, fields, "Delete"))
        .await;
    let path = |name: &str| format!("/api/v1/products/{}/{name}/credentials", world.team);
    let owner = world.api.token(Role::Owner, &world.team).await;

    // Not provisioned yet: 404.
    let early = world.api.get_as(&owner, &path("orders-pg")).await;
    assert_eq!(early.status, StatusCode::NOT_FOUND, "{}", early.body);

    world.reconcile().await;
    let answer = world.api.get_as(&owner, &path("orders-pg")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    let admin_url: sqlx::postgres::PgConnectOptions =
        world.ns.services().postgres_url.parse().unwrap();
    let view = world.target_name("orders-pg");
    let target = &answer.body["target"];
    assert_eq!(
        *target,
        json!({
            "type": "postgres",
            "cluster": world.cluster(Cluster::Postgres),
            "host": admin_url.get_host(),
            "port": admin_url.get_port(),
            "database": admin_url.get_database().unwrap_or("postgres"),
            "object": format!("{}.{view}", world.team),
        })
    );
    let (user, password) = world.credentials("orders-pg").await;
    assert_eq!(answer.body["username"], user);
    assert_eq!(answer.body["password"], password);
    // The cluster's admin password is nowhere in the answer.
    let admin_password = reqwest::Url::parse(&world.ns.services().postgres_url)
        .unwrap()
        .password()
        .unwrap()
        .to_owned();
    assert!(!answer.body.to_string().contains(&admin_password));

    // They log in to the real PostgreSQL and read the view.
    let options = sqlx::postgres::PgConnectOptions::new()
        .host(target["host"].as_str().unwrap())
        .port(u16::try_from(target["port"].as_u64().unwrap()).unwrap())
        .database(target["database"].as_str().unwrap())
        .username(answer.body["username"].as_str().unwrap())
        .password(answer.body["password"].as_str().unwrap());
    let mut conn = PgConnection::connect_with(&options).await.unwrap();
    let rows: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM {}",
        target["object"].as_str().unwrap()
    )))
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(rows, 0);
    drop(conn);

    // OpenSearch has no per-product users: connection details only.
    let search = world.api.get(&path("orders-search")).await;
    assert_eq!(search.status, StatusCode::OK, "{}", search.body);
    let search_url = reqwest::Url::parse(&world.ns.services().opensearch_url).unwrap();
    assert_eq!(
        search.body,
        json!({
            "target": {
                "type": "elasticsearch",
                "cluster": world.cluster(Cluster::Search),
                "host": search_url.host_str().unwrap(),
                "port": search_url.port_or_known_default().unwrap(),
                "database": null,
                "object": world.target_name("orders-search"),
            },
            "username": null,
            "password": null,
        })
    );

    // Only owners of the team and admins: everyone else is refused.
    let mut others = vec![world.requester.clone()];
    for (role, team) in [
        (Role::Viewer, world.team.as_str()),
        (Role::Auditor, world.team.as_str()),
        (Role::Approver, "team-other"),
        (Role::Owner, "team-other"),
    ] {
        others.push(world.api.token(role, team).await);
    }
    for token in others {
        let refused = world.api.get_as(&token, &path("orders-pg")).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{token}");
    }

    // Each read is audited with who read it; no password is in the log.
    let entries = world
        .api
        .store
        .audit_entries(&sluice_store::AuditQuery {
            team: Some(world.team.clone()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    let reads: Vec<_> = entries
        .iter()
        .filter(|e| e.action == "credentials.read")
        .collect();
    assert_eq!(reads.len(), 2, "{reads:#?}");
    assert!(
        reads[0].actor.contains(&format!("owner@{}", world.team)),
        "{reads:#?}"
    );
    assert_eq!(reads[0].name, "orders-pg");
    assert!(reads[1].actor.contains("admin"), "{reads:#?}");
    let log = serde_json::to_string(&entries).unwrap();
    assert!(!log.contains(&password), "a password is in the audit log");
    assert!(world.api.store.verify_audit().await.unwrap().ok);
    world.cleanup().await;
}

#[tokio::test]
async fn the_console_is_served_at_root_with_spa_routes_and_security_headers() {
    let api = TestApi::new().await;
    for path in ["/", "/products/team-a/orders", "/catalog/shop.orders"] {
        let answer = api.send_as(None, Method::GET, path, None, Vec::new()).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        let content_type = answer.headers[header::CONTENT_TYPE].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        let page = answer.body.as_str().unwrap();
        // Either the built console or the page saying how to build it.
        assert!(
            page.contains("<div id=\"root\">") || page.contains("make web"),
            "{path}: {page}"
        );
        assert_eq!(answer.headers[header::CACHE_CONTROL], "no-cache", "{path}");
        assert_eq!(answer.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(answer.headers[header::REFERRER_POLICY], "no-referrer");
        let csp = answer.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "style-src 'self' 'unsafe-inline'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{csp} lacks {directive}");
        }
    }
    // The API keeps its problem+json 404s (send_as checks the content type), also for a
    // caller without a token; probes are not the console's.
    for path in ["/api/v1/nope", "/api/nope", "/healthz/nope"] {
        let answer = api.send_as(None, Method::GET, path, None, Vec::new()).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(answer.body["code"], "not_found", "{path}");
    }
    let answer = api.get("/api/v1/nope").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    // A missing hashed asset is a 404, not index.html run as a script.
    let answer = api
        .send_as(
            None,
            Method::GET,
            "/assets/missing-0000.js",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    // Only GET and HEAD reach the console.
    let answer = api
        .send_as(None, Method::POST, "/products/a/b", None, Vec::new())
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}
