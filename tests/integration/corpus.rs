//! The corpus of malformed specs (`tests/corpus`, made by `tests/corpus/generate.py`): every
//! case goes through the API in-process and must be refused with its expected 4xx
//! `application/problem+json`, naming the expected JSON pointers, within a time limit — and
//! nothing a refused request carried may be stored.
//!
//! Needs no services: the store is a fresh SQLite file holding the retail catalog.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_schemas::Kind;
use sluice_schemas::validate::{MAX_DOCUMENT_BYTES, parse_documents};
use sluice_store::{ListQuery, Store};
use tower::ServiceExt;

/// The corpus must hold at least this many cases.
const MIN_CASES: usize = 300;
/// A case that takes longer hangs.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// The header keys a case file may start with.
const HEADER_KEYS: [&str; 5] = [
    "case",
    "endpoint",
    "content-type",
    "expect-status",
    "expect-pointer",
];

/// One malformed request and what the API must answer.
#[derive(Debug, Clone)]
struct Case {
    /// Where it comes from: the file relative to `tests/corpus`, or `generated/…`.
    name: String,
    method: Method,
    uri: String,
    content_type: Option<String>,
    status: StatusCode,
    /// Pointers (without `#`) that must be among the problem's `errors`.
    pointers: Vec<String>,
    body: Vec<u8>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

fn corpus_dir() -> PathBuf {
    repo_root().join("tests/corpus")
}

/// Splits `# key: value` header lines off the start of `bytes`.
fn split_header(bytes: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let mut header = Vec::new();
    let mut rest = bytes;
    loop {
        let end = rest.iter().position(|b| *b == b'\n');
        let line = &rest[..end.unwrap_or(rest.len())];
        let Some(text) = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.strip_prefix("# "))
        else {
            break;
        };
        let Some((key, value)) = text.split_once(": ").or_else(|| {
            text.strip_suffix(':')
                .map(|k| (k, ""))
                .filter(|(k, _)| HEADER_KEYS.contains(k))
        }) else {
            break;
        };
        if !HEADER_KEYS.contains(&key) {
            break;
        }
        header.push((key.to_owned(), value.trim().to_owned()));
        rest = match end {
            Some(i) => &rest[i + 1..],
            None => &[],
        };
    }
    (header, rest)
}

fn case_from(name: String, header: &[(String, String)], body: Vec<u8>) -> Result<Case, String> {
    let value = |key: &str| {
        header
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let endpoint = value("endpoint").ok_or("no `# endpoint:` line")?;
    let (method, uri) = endpoint
        .split_once(' ')
        .ok_or("`# endpoint:` is not `METHOD /path`")?;
    let method = Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let status = value("expect-status")
        .ok_or("no `# expect-status:` line")?
        .parse::<u16>()
        .map_err(|e| e.to_string())
        .and_then(|s| StatusCode::from_u16(s).map_err(|e| e.to_string()))?;
    if !status.is_client_error() {
        return Err(format!("expects {status}; every case must expect a 4xx"));
    }
    let pointers = header
        .iter()
        .filter(|(k, _)| k == "expect-pointer")
        .map(|(_, v)| {
            if v.starts_with('"') {
                serde_json::from_str::<String>(v).map_err(|e| format!("bad quoted pointer: {e}"))
            } else {
                Ok(v.clone())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Case {
        name,
        method,
        uri: uri.to_owned(),
        content_type: value("content-type")
            .filter(|c| !c.is_empty())
            .map(str::to_owned),
        status,
        pointers,
        body,
    })
}

/// Every case file under `tests/corpus`, sorted by path.
fn load_corpus() -> Vec<Case> {
    let root = corpus_dir();
    let mut files = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json" | "bin")
            ) && path.parent() != Some(root.as_path())
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).unwrap();
            let parsed = if path.extension().and_then(|e| e.to_str()) == Some("bin") {
                let meta = std::fs::read(path.with_extension("meta"))
                    .unwrap_or_else(|e| panic!("{name}: no .meta beside it: {e}"));
                let (header, rest) = split_header(&meta);
                assert!(
                    rest.is_empty(),
                    "{name}: the .meta holds more than a header"
                );
                case_from(name.clone(), &header, bytes)
            } else {
                let (header, body) = split_header(&bytes);
                case_from(name.clone(), &header, body.to_vec())
            };
            parsed.unwrap_or_else(|e| panic!("{name}: {e}"))
        })
        .collect()
}

fn retail(file: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(repo_root().join("examples/retail").join(file)).unwrap();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let var = &rest[start + 2..end];
        out.push_str(if var.contains("POSTGRES") {
            "postgres://u:p@127.0.0.1:1/db"
        } else if var.contains("OPENSEARCH") || var.contains("ELASTIC") {
            "http://127.0.0.1:1"
        } else if var.contains("REDIS") {
            "redis://u:p@127.0.0.1:1/0"
        } else {
            panic!("no dummy value for ${{{var}}} in examples/retail/{file}")
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    parse_documents(out.as_bytes()).unwrap()
}

fn product_doc() -> Value {
    retail("products.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == "orders-enriched")
        .unwrap()
}

const PRODUCT_URL: &str = "/api/v1/products/team-payments/orders-enriched";

/// Cases too big for the repository, made here.
fn generated_cases() -> Vec<Case> {
    let case = |name: &str, uri: &str, ctype: &str, status: u16, pointers: &[&str], body| Case {
        name: format!("generated/{name}"),
        method: Method::PUT,
        uri: uri.to_owned(),
        content_type: Some(ctype.to_owned()),
        status: StatusCode::from_u16(status).unwrap(),
        pointers: pointers.iter().map(|p| (*p).to_owned()).collect(),
        body,
    };
    let yaml = "application/yaml";
    let product_yaml = serde_yaml::to_string(&product_doc()).unwrap();
    let padded = |len: usize| {
        let mut body = product_yaml.clone().into_bytes();
        body.extend_from_slice(b"# ");
        body.resize(len, b'x');
        body.push(b'\n');
        body
    };
    let with = |pointer: &str, value: Value| {
        let mut doc = product_doc();
        *doc.pointer_mut(pointer).unwrap() = value;
        serde_json::to_vec(&doc).unwrap()
    };
    let json = "application/json";
    vec![
        case(
            "one-byte-over-the-limit",
            PRODUCT_URL,
            yaml,
            413,
            &[],
            padded(MAX_DOCUMENT_BYTES),
        ),
        case(
            "beyond-the-body-limit",
            PRODUCT_URL,
            yaml,
            413,
            &[],
            padded(MAX_DOCUMENT_BYTES + 64 * 1024),
        ),
        case(
            "two-mib-of-a",
            PRODUCT_URL,
            yaml,
            413,
            &[],
            vec![b'a'; 2 * 1024 * 1024],
        ),
        case(
            "sixteen-mib-of-zeros",
            PRODUCT_URL,
            yaml,
            413,
            &[],
            vec![0; 16 * 1024 * 1024],
        ),
        case(
            "huge-description",
            PRODUCT_URL,
            json,
            413,
            &[],
            with("/metadata/description", json!("d".repeat(1_500_000))),
        ),
        case(
            "huge-dataset",
            "/api/v1/datasets/corpus.orders",
            yaml,
            413,
            &[],
            format!(
                "apiVersion: sluice.dev/v1alpha1\nkind: Dataset\nmetadata: {{name: corpus.orders, owner: team-shop}}\nspec:\n  topic: corpus.orders\n  kind: stream\n  classification: internal\n  schema:\n    type: object\n    properties:\n{}",
                (0..60_000)
                    .map(|i| format!("      f{i}: {{type: string}}\n"))
                    .collect::<String>()
            )
            .into_bytes(),
        ),
        case(
            "exactly-at-the-limit-of-spaces",
            PRODUCT_URL,
            yaml,
            400,
            &[],
            vec![b' '; MAX_DOCUMENT_BYTES],
        ),
        case(
            "deep-json-arrays-200k",
            PRODUCT_URL,
            json,
            422,
            &[""],
            format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes(),
        ),
        case(
            "deep-flow-mappings-50k",
            PRODUCT_URL,
            yaml,
            422,
            &[""],
            format!("{}1{}", "{a: ".repeat(50_000), "}".repeat(50_000)).into_bytes(),
        ),
        case(
            "deep-block-mappings-1000",
            PRODUCT_URL,
            yaml,
            422,
            &[""],
            (0..1000)
                .map(|i| format!("{}a:\n", " ".repeat(i)))
                .collect::<String>()
                .into_bytes(),
        ),
        case(
            "unclosed-brackets-200k",
            PRODUCT_URL,
            yaml,
            422,
            &[""],
            "[".repeat(200_000).into_bytes(),
        ),
        case(
            "aliases-of-a-large-anchor",
            PRODUCT_URL,
            yaml,
            422,
            &[],
            format!(
                "a: &a \"{}\"\nb: [{}]\n",
                "s".repeat(100_000),
                vec!["*a"; 200].join(", ")
            )
            .into_bytes(),
        ),
        case(
            "ten-thousand-fields",
            PRODUCT_URL,
            json,
            422,
            &["/spec/fields"],
            with(
                "/spec/fields",
                Value::Object(
                    (0..10_000)
                        .map(|i| (format!("f{i}"), json!("o.id")))
                        .collect(),
                ),
            ),
        ),
        case(
            "ten-thousand-sources",
            PRODUCT_URL,
            json,
            422,
            &["/spec/sources"],
            with(
                "/spec/sources",
                Value::Array(
                    (0..10_000)
                        .map(|i| json!({"name": format!("s{i}"), "dataset": "shop.orders"}))
                        .collect(),
                ),
            ),
        ),
        case(
            "filter-of-900k",
            PRODUCT_URL,
            json,
            422,
            &["/spec/filter"],
            with(
                "/spec/filter",
                json!(format!("o.amount > 1{}", " && true".repeat(100_000))),
            ),
        ),
        case(
            "name-of-900k",
            PRODUCT_URL,
            json,
            422,
            &["/metadata/name"],
            with("/metadata/name", json!("o".repeat(900_000))),
        ),
        case(
            "cel-unary-run-8k",
            PRODUCT_URL,
            json,
            422,
            &["/spec/filter"],
            with("/spec/filter", json!(format!("{}true", "!".repeat(8_000)))),
        ),
    ]
}

/// What went wrong with one case, if anything.
fn judge(
    case: &Case,
    status: StatusCode,
    content_type: Option<&str>,
    body: &[u8],
) -> Option<String> {
    if status.is_success() || status.is_redirection() || status.is_informational() {
        return Some(format!("accepted with {status}, expected {}", case.status));
    }
    let mut wrong = Vec::new();
    if status != case.status {
        wrong.push(format!("status {status}, expected {}", case.status));
    }
    if status.is_server_error() {
        wrong.push("a server error".to_owned());
    }
    if !content_type.is_some_and(|c| c.starts_with("application/problem+json")) {
        wrong.push(format!(
            "content type {content_type:?}, expected application/problem+json"
        ));
    }
    let problem: Option<Value> = serde_json::from_slice(body).ok();
    match &problem {
        None => wrong.push(format!(
            "the body is not JSON: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
        Some(problem) => {
            if problem["detail"]
                .as_str()
                .is_none_or(|d| d.trim().is_empty())
            {
                wrong.push("no `detail`".to_owned());
            }
            if problem["status"].as_u64() != Some(u64::from(status.as_u16())) {
                wrong.push(format!("`status` is {}", problem["status"]));
            }
            let found: Vec<&str> = problem["errors"]
                .as_array()
                .map(|errors| {
                    errors
                        .iter()
                        .filter_map(|e| e["pointer"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let missing: Vec<String> = case
                .pointers
                .iter()
                .map(|p| format!("#{p}"))
                .filter(|p| !found.contains(&p.as_str()))
                .collect();
            if !missing.is_empty() {
                wrong.push(format!("no error at {missing:?} (errors at {found:?})"));
            }
            if let Some(errors) = problem["errors"].as_array()
                && errors.iter().any(|e| {
                    e["detail"].as_str().is_none_or(|d| d.trim().is_empty())
                        || !e["pointer"].as_str().is_some_and(|p| p.starts_with('#'))
                })
            {
                wrong.push("an error without a pointer or a detail".to_owned());
            }
        }
    }
    if wrong.is_empty() {
        return None;
    }
    let detail = problem
        .as_ref()
        .and_then(|p| p["detail"].as_str())
        .map(|d| format!(" — detail: {}", d.chars().take(200).collect::<String>()))
        .unwrap_or_default();
    Some(format!("{}{detail}", wrong.join("; ")))
}

async fn send(app: &Router, case: &Case) -> (StatusCode, Option<String>, Vec<u8>) {
    let mut request = Request::builder()
        .method(case.method.clone())
        .uri(&case.uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", crate::api::ADMIN_TOKEN),
        );
    if let Some(content_type) = &case.content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    let request = request.body(Body::from(case.body.clone())).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, content_type, body.to_vec())
}

/// Puts the retail catalog (datasets, then target clusters) through the API.
async fn load_catalog(app: &Router) -> BTreeSet<(String, String)> {
    let mut keys = BTreeSet::new();
    for doc in retail("datasets.yaml")
        .into_iter()
        .chain(retail("targets.yaml"))
    {
        let name = doc["metadata"]["name"].as_str().unwrap().to_owned();
        let (uri, kind) = match doc["kind"].as_str() {
            Some("Dataset") => (format!("/api/v1/datasets/{name}"), Kind::Dataset),
            Some("TargetCluster") => (
                format!("/api/v1/targetclusters/{name}"),
                Kind::TargetCluster,
            ),
            other => panic!("unexpected {other:?} in the retail catalog"),
        };
        let case = Case {
            name: name.clone(),
            method: Method::PUT,
            uri,
            content_type: Some("application/json".to_owned()),
            status: StatusCode::CREATED,
            pointers: Vec::new(),
            body: serde_json::to_vec(&doc).unwrap(),
        };
        let (status, _, body) = send(app, &case).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "loading {name}: {}",
            String::from_utf8_lossy(&body)
        );
        keys.insert((kind.to_string(), name));
    }
    keys
}

/// Every stored object: kind, team/name and resourceVersion.
async fn stored(store: &Store) -> BTreeMap<(String, String), i64> {
    let mut out = BTreeMap::new();
    for kind in [Kind::Dataset, Kind::TargetCluster, Kind::DataProduct] {
        let mut query = ListQuery {
            limit: ListQuery::MAX_LIMIT,
            ..ListQuery::default()
        };
        loop {
            let page = store.list(kind, &query).await.unwrap();
            for object in &page.items {
                let name = if object.key.team().is_empty() {
                    object.key.name().to_owned()
                } else {
                    format!("{}/{}", object.key.team(), object.key.name())
                };
                out.insert((kind.to_string(), name), object.resource_version);
            }
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
    }
    out
}

#[test]
fn every_malformed_spec_is_refused_with_a_problem_and_nothing_is_stored() {
    let started = Instant::now();
    let mut cases = load_corpus();
    let from_files = cases.len();
    cases.extend(generated_cases());
    let mut per_category: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        let category = case.name.split('/').next().unwrap_or_default().to_owned();
        *per_category.entry(category).or_default() += 1;
    }

    let dir = std::env::temp_dir().join(format!(
        "sluice-corpus-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // A runtime of our own, shut down without waiting: a case stuck in a busy loop must not
    // keep the test from reporting it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let (failures, unexpected_objects) = runtime.block_on(async {
        let url = format!("sqlite://{}?mode=rwc", dir.join("store.db").display());
        let store = Store::connect(&url, crate::store::test_audit_key())
            .await
            .unwrap();
        sluice_api::bootstrap_admin(
            &store,
            Some(&sluice_api::Secret::new(crate::api::ADMIN_TOKEN)),
        )
        .await
        .unwrap();
        let app = sluice_api::router(AppState::new(store.clone()));
        let catalog = load_catalog(&app).await;
        let before = stored(&store).await;
        assert_eq!(
            before.keys().cloned().collect::<BTreeSet<_>>(),
            catalog,
            "the store holds exactly the retail catalog before the corpus"
        );

        // SLUICE_CORPUS_SHOW=1 prints every answer, to review what the cases provoke.
        let show = std::env::var_os("SLUICE_CORPUS_SHOW").is_some();
        let mut failures = Vec::new();
        for case in &cases {
            let task = tokio::spawn({
                let app = app.clone();
                let case = case.clone();
                async move { send(&app, &case).await }
            });
            let abort = task.abort_handle();
            match tokio::time::timeout(CASE_TIMEOUT, task).await {
                Err(_) => {
                    abort.abort();
                    failures.push(format!(
                        "{}: hang (no answer within {CASE_TIMEOUT:?})",
                        case.name
                    ));
                }
                Ok(Err(e)) => failures.push(format!("{}: the request panicked: {e}", case.name)),
                Ok(Ok((status, content_type, body))) => {
                    if show {
                        eprintln!(
                            "{} -> {status} {}",
                            case.name,
                            String::from_utf8_lossy(&body)
                        );
                    }
                    if let Some(wrong) = judge(case, status, content_type.as_deref(), &body) {
                        failures.push(format!("{}: {wrong}", case.name));
                    }
                }
            }
        }

        // Nothing half-stored: exactly the catalog, each object unchanged.
        let after = stored(&store).await;
        let unexpected: Vec<String> = after
            .iter()
            .filter(|(key, rv)| before.get(key) != Some(rv))
            .map(|((kind, name), _)| {
                if before.contains_key(&(kind.clone(), name.clone())) {
                    format!("{kind} {name} was changed")
                } else {
                    format!("{kind} {name} was stored")
                }
            })
            .chain(
                before
                    .keys()
                    .filter(|key| !after.contains_key(key))
                    .map(|(kind, name)| format!("{kind} {name} was deleted")),
            )
            .collect();
        store.close().await;
        (failures, unexpected)
    });
    runtime.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);

    eprintln!(
        "corpus: {} cases ({from_files} files, {} generated) in {:.1?}",
        cases.len(),
        cases.len() - from_files,
        started.elapsed()
    );
    for (category, count) in &per_category {
        eprintln!("  {category:22} {count:4}");
    }
    assert!(
        from_files >= MIN_CASES,
        "the corpus holds {from_files} case files; at least {MIN_CASES} expected"
    );
    assert!(
        failures.is_empty() && unexpected_objects.is_empty(),
        "{} of {} corpus cases failed:\n{}\n\nstore after the corpus:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n"),
        if unexpected_objects.is_empty() {
            "nothing unexpected".to_owned()
        } else {
            unexpected_objects.join("\n")
        }
    );
}
