//! The web console end to end, in a real browser: Debian's Chromium, driven by Playwright
//! (`web/e2e/console.e2e.mjs`), against the real `sluice serve` binary with the real Kafka and
//! PostgreSQL of `make services`. A requester signs in with a token, finds the demo's orders
//! dataset in the catalog, builds a product in the form, sees its plan and submits it; an
//! approver signs in, approves it from the inbox and watches it reach `Live`; an owner of the
//! team reads the reader credentials on the product page; an auditor's
//! audit page shows the entries and the chain intact. Then this test checks, without the browser, that the target holds
//! exactly the rows an independent oracle computes from the topic, and that the audit log
//! names the requester and the approver. Screenshots of every main page land in
//! `docs/screenshots/`.
//!
//! Needs the console built (`web/build.sh`, which `make test` runs first) and Chromium
//! (`tests/services/deps.sh` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::Message;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;
use sluice_tests::oracle::{self, Rows};

mod common;
use common::Serve;

const ADMIN_TOKEN: &str = "slc_console-e2e-admin-token-0123456789ab";
const SECRET_KEY: &str = "console-e2e-secret-key-0123456789abcdef";
/// How long the browser flow may take, from sign-in to the audit page.
const BROWSER_LIMIT: Duration = Duration::from_secs(300);
/// Orders the demo produces (each 2–3 events).
const ORDERS: usize = 120;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `GET path` as the admin: its status and body (JSON, or `null`).
fn get(serve: &Serve, path: &str) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", serve.url()))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    })
}

/// `GET path` as the admin, which must succeed: its JSON.
fn get_ok(serve: &Serve, path: &str) -> Value {
    let (status, body) = get(serve, path);
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

fn services() -> &'static sluice_tests::Services {
    sluice_tests::services()
}

fn kafka_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &services().kafka_bootstrap);
    config
}

/// The oracle: what the product built in the browser (`order_id`, `amount`, `status` of
/// each order, keyed by the order id, without orders whose latest status is `CANCELLED`)
/// must hold, computed from the topic's records, not by Sluice.
fn expected_rows(topic: &str) -> Rows {
    // Assigned, never subscribed or committed: the group id is only what librdkafka needs.
    let consumer: BaseConsumer = kafka_config()
        .set("group.id", format!("sluice-console-e2e-{topic}"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut assignment = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .unwrap();
        remaining += high - low;
        assignment
            .add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    // An order's events are in one partition, in order: the last one read is its latest.
    let mut latest: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while remaining > 0 {
        assert!(
            Instant::now() < deadline,
            "{topic}: {remaining} records unread"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap();
            let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let value: Value = serde_json::from_slice(message.payload().unwrap()).unwrap();
            latest.insert(key, value);
            remaining -= 1;
        }
    }
    latest
        .into_iter()
        .filter(|(_, v)| v["status"] != "CANCELLED")
        .map(|(k, v)| {
            (
                k,
                (
                    v["amount"].as_f64().unwrap(),
                    v["status"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// Runs the browser flow; panics with its output when it fails or overruns.
fn browser_flow(env: &[(&str, String)]) {
    let web = repo().join("web");
    assert!(
        web.join("dist/index.html").is_file(),
        "the console is not built: run web/build.sh (make test does) before this test"
    );
    assert!(
        web.join("node_modules/playwright-core").is_dir(),
        "web/node_modules lacks playwright-core: run web/build.sh (npm ci)"
    );
    let output =
        std::env::temp_dir().join(format!("sluice-console-e2e-{}.log", std::process::id()));
    let log = std::fs::File::create(&output).unwrap();
    let mut child = Command::new("node")
        .arg("e2e/console.e2e.mjs")
        .current_dir(&web)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("node is needed for the console's browser test");
    let deadline = Instant::now() + BROWSER_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    let _ = std::fs::remove_file(&output);
    println!("{text}");
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("the browser flow failed ({s}):\n{text}"),
        None => panic!("the browser flow took over {BROWSER_LIMIT:?}:\n{text}"),
    }
}

#[test]
fn a_requester_builds_a_product_in_the_browser_and_an_approver_takes_it_live() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let run = format!("e2e{}x{nanos}", std::process::id());
    let _topics = common::Topics(run.clone());
    let serve = Serve::start(
        "console-e2e",
        ADMIN_TOKEN,
        SECRET_KEY,
        &[
            ("SLUICE_JOBS", "in-process"),
            ("SLUICE_CONTROLLER_RESYNC", "1s"),
            ("SLUICE_CONTROLLER_MAX_BACKOFF", "2s"),
            ("SLUICE_LOG", "info"),
        ],
    );
    let team = format!("team-{run}");
    let product = "paid-orders".to_owned();
    let cluster = format!("pg-{run}");
    let dataset = format!("{run}.shop.orders");

    serve.must(&[
        "demo",
        "--orders",
        &ORDERS.to_string(),
        "--customers",
        "40",
        "--days",
        "30",
        "--topic-prefix",
        &format!("{run}."),
    ]);
    let targets = serve.dir.join("targets.yaml");
    std::fs::write(
        &targets,
        format!(
            "apiVersion: sluice.dev/v1alpha1\nkind: TargetCluster\nmetadata: {{name: {cluster}}}\n\
             spec:\n  type: postgres\n  url: {}\n  isolation: schema\n  \
             allowedTeams: [\"*\"]\n",
            services().postgres_url
        ),
    )
    .unwrap();
    serve.must(&["apply", "-f", targets.to_str().unwrap()]);
    let token = |team: &str, role: &str| -> String {
        let out = serve.must(&[
            "token", "create", "--team", team, "--role", role, "-o", "json",
        ]);
        let doc: Value = serde_json::from_str(&out).unwrap();
        doc["token"].as_str().unwrap().to_owned()
    };
    let requester = token(&team, "requester");
    let owner = token(&team, "owner");
    // The platform team approves (the default policy's `platformTeam`).
    let approver = token("platform", "approver");
    let auditor = token("platform", "auditor");

    let screenshots = repo().join("docs/screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    browser_flow(&[
        ("SLUICE_E2E_URL", serve.url()),
        ("SLUICE_E2E_REQUESTER_TOKEN", requester),
        ("SLUICE_E2E_APPROVER_TOKEN", approver),
        ("SLUICE_E2E_AUDITOR_TOKEN", auditor),
        ("SLUICE_E2E_OWNER_TOKEN", owner),
        ("SLUICE_E2E_TEAM", team.clone()),
        ("SLUICE_E2E_PRODUCT", product.clone()),
        ("SLUICE_E2E_DATASET", dataset.clone()),
        ("SLUICE_E2E_CLUSTER", cluster.clone()),
        ("SLUICE_E2E_TARGET", "paid_orders".to_owned()),
        ("SLUICE_E2E_SCREENSHOTS", screenshots.display().to_string()),
    ]);

    // The product the browser built is Live, and its target is exactly the oracle's.
    let status = get_ok(&serve, &format!("/api/v1/products/{team}/{product}/status"));
    assert_eq!(status["phase"], "Live", "{status}\n{}", serve.log());
    let want = expected_rows(&dataset);
    assert!(want.len() > ORDERS / 2, "the demo gave {} rows", want.len());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = runtime
            .block_on(oracle::postgres_rows(services(), &team, "paid_orders"))
            .unwrap_or_default();
        if got == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the target holds {} rows, the oracle {}; first differences: {:?}",
            got.len(),
            want.len(),
            want.iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .take(5)
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The audit log names who asked and who approved.
    let audit = get_ok(
        &serve,
        &format!("/api/v1/audit?kind=DataProduct&team={team}&name={product}&limit=1000"),
    );
    let entries = audit.as_array().unwrap();
    let by = |action: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        !by("apply").is_empty() && !by("approve").is_empty(),
        "audit entries: {entries:#?}"
    );
    assert_ne!(by("apply")[0], by("approve")[0], "{entries:#?}");
    // The owner's look at the credentials is on record, without the password.
    let reads: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "credentials.read")
        .collect();
    assert_eq!(reads.len(), 1, "{entries:#?}");
    assert!(
        reads[0]["actor"]
            .as_str()
            .unwrap_or_default()
            .contains("owner"),
        "{:#?}",
        reads[0]
    );
    assert!(
        !reads[0].to_string().contains("password\":\""),
        "{:#?}",
        reads[0]
    );

    // Torn down through the controller, so nothing of the test is left in PostgreSQL.
    serve.must(&["delete", "product", &format!("{team}/{product}")]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&serve, &format!("/api/v1/products/{team}/{product}")).0 != 404 {
        assert!(
            Instant::now() < deadline,
            "the product was not torn down\n{}",
            serve.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
