//! Sinks against the real services of `make services`: each test provisions its own
//! target through the provisioners (unique names), writes through a [`Sink`] and removes
//! what it made, also when it fails.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sluice_provisioners::{TargetConnection, TargetPlan, TargetRequest, plan_target};
use sluice_schemas::output::{OutputField, OutputKey, OutputSchema};
use sluice_schemas::{FieldType, Isolation, TargetType, WriteMode};

use super::{RowText, Sink, SinkError, SinkRecord, latest_per_key};

const PG: &str = "SLUICE_TEST_POSTGRES_URL";
const REDIS: &str = "SLUICE_TEST_REDIS_URL";
const SEARCH: [&str; 2] = [
    "SLUICE_TEST_OPENSEARCH_URL",
    "SLUICE_TEST_ELASTICSEARCH_URL",
];

// ---------------------------------------------------------------------------------------
// Helpers

/// The URL of a local test service, from the environment or `.sluice/services.env`.
pub(crate) fn service_url(key: &str) -> String {
    if let Some(value) = std::env::var(key).ok().filter(|v| !v.is_empty()) {
        return value;
    }
    let path = std::env::var_os("SLUICE_SERVICES_ENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.sluice/services.env")
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("cannot read {} — run `make services`", path.display()));
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("{key} is not in {} — run `make services`", path.display()))
}

pub(crate) fn unique(prefix: &str) -> String {
    use rand::Rng;
    let n: u64 = rand::rng().random();
    format!("{prefix}{n:016x}")
}

fn field(name: &str, field_type: FieldType, nullable: bool) -> OutputField {
    OutputField {
        name: name.to_owned(),
        field_type,
        nullable,
        pii: false,
        pii_sources: Vec::new(),
        expr: format!("o.{name}"),
        description: None,
    }
}

/// One field of every type, keyed by the field `id`.
fn every_type() -> OutputSchema {
    OutputSchema {
        fields: vec![
            field("id", FieldType::String, false),
            field("count", FieldType::Integer, false),
            field("price", FieldType::Number, true),
            field("active", FieldType::Boolean, true),
            field("at", FieldType::Timestamp, true),
            field("address", FieldType::Object, true),
            field("tags", FieldType::Array, true),
        ],
        key: Some(OutputKey {
            expr: "o.id".to_owned(),
            field_type: FieldType::String,
            field: Some("id".to_owned()),
        }),
    }
}

/// `name` and `amount`, keyed by a computed integer.
fn computed_key() -> OutputSchema {
    OutputSchema {
        fields: vec![
            field("name", FieldType::String, false),
            field("amount", FieldType::Number, true),
        ],
        key: Some(OutputKey {
            expr: "o.a * 100 + o.b".to_owned(),
            field_type: FieldType::Integer,
            field: None,
        }),
    }
}

fn row(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// A record of `key` at `version` (partition 0).
fn rec(key: &str, version: i64, value: Option<Value>) -> SinkRecord {
    SinkRecord {
        key: key.to_owned(),
        version,
        row: value.map(|v| RowText::from_map(&row(v))),
        partition: 0,
    }
}

/// A full row of [`every_type`].
fn full(id: &str, count: i64) -> Value {
    json!({
        "id": id,
        "count": count,
        "price": 12.5,
        "active": true,
        "at": "2024-05-01T10:00:00Z",
        "address": {"city": "Lyon", "zip": "69001"},
        "tags": ["a", {"b": 1}],
    })
}

/// One provisioned target and a sink for it.
struct Fixture {
    conn: Arc<TargetConnection>,
    plan: TargetPlan,
    sink: Sink,
    team: String,
}

impl Fixture {
    /// Plans version 1 of a new product (unique names) with `extra` options, ensures it
    /// and makes its sink.
    async fn new(
        target_type: TargetType,
        url_key: &str,
        mode: WriteMode,
        extra: Value,
        output: &OutputSchema,
    ) -> Fixture {
        let (isolation, mut options) = match target_type {
            TargetType::Postgres => (Isolation::Schema, Map::new()),
            TargetType::Elasticsearch => (Isolation::Index, row(json!({"replicas": 0}))),
            TargetType::Redis => (Isolation::AclPrefix, Map::new()),
        };
        options.extend(row(extra));
        let team = unique("st");
        let product = unique("p");
        let name = unique("n");
        let request = TargetRequest {
            team: &team,
            product: &product,
            version: 1,
            name: &name,
            mode,
            options: &options,
            output,
        };
        let plan = plan_target(&request, target_type, isolation).unwrap();
        let conn = Arc::new(TargetConnection::connect(target_type, &service_url(url_key)).unwrap());
        conn.ensure(&plan, false).await.unwrap();
        let sink = Sink::new(conn.clone(), &plan).unwrap();
        Fixture {
            conn,
            plan,
            sink,
            team,
        }
    }

    /// Removes everything the fixture made.
    async fn cleanup(&self) {
        self.conn.delete(&self.plan, false).await.unwrap();
        if let (TargetConnection::Postgres(pg), TargetPlan::Postgres(p)) =
            (self.conn.as_ref(), &self.plan)
        {
            for sql in [
                format!("DROP SCHEMA IF EXISTS {} CASCADE", q(&self.team)),
                format!("DROP ROLE IF EXISTS {}", q(&p.role)),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(pg.pool())
                    .await
                    .unwrap();
            }
        }
    }

    /// The same fixture, its PostgreSQL sink taking the COPY path for every batch.
    fn copying(mut self) -> Fixture {
        if let Sink::Postgres(sink) = &mut self.sink {
            sink.set_copy_min_rows(1);
        }
        self
    }

    fn never_copying(mut self) -> Fixture {
        if let Sink::Postgres(sink) = &mut self.sink {
            sink.set_copy_min_rows(usize::MAX);
        }
        self
    }

    async fn write(&self, batch: &[SinkRecord]) {
        self.sink.write(batch).await.unwrap();
    }
}

/// Runs `body` with a fresh fixture, then cleans up, whether or not `body` panicked.
async fn with_fixture<F, Fut>(fixture: Fixture, body: F)
where
    F: FnOnce(Arc<Fixture>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let fixture = Arc::new(fixture);
    let outcome = tokio::spawn(body(fixture.clone())).await;
    fixture.cleanup().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

fn q(name: &str) -> String {
    sluice_provisioners::quote::pg_ident(name).unwrap()
}

// ---------------------------------------------------------------------------------------
// Pure parts

#[test]
fn only_the_latest_record_of_each_key_is_kept() {
    let batch = [
        rec("b", 1, Some(json!({}))),
        rec("a", 2, Some(json!({}))),
        rec("b", 3, None),
        rec("a", 0, Some(json!({}))),
    ];
    let latest: Vec<(&str, i64)> = latest_per_key(&batch)
        .iter()
        .map(|r| (r.key.as_str(), r.version))
        .collect();
    assert_eq!(latest, [("a", 2), ("b", 3)]);
    // On a tie of versions the later record wins.
    let tied = [rec("k", 5, Some(json!({}))), rec("k", 5, None)];
    assert_eq!(latest_per_key(&tied)[0].row, None);
}

#[test]
fn only_unavailability_is_retryable() {
    let unavailable = SinkError::Unavailable {
        target: "t".to_owned(),
        detail: "d".to_owned(),
    };
    assert!(unavailable.is_retryable());
    assert_eq!(unavailable.record(), None);
    let record = SinkError::record_error(&rec("k", 4, None), "bad");
    assert!(!record.is_retryable());
    assert_eq!(record.record(), Some(("k", 4)));
    assert!(record.to_string().contains("\"k\""), "{record}");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// The table's rows as JSON objects (bookkeeping columns included), by primary key.
async fn pg_rows(f: &Fixture) -> Vec<Value> {
    let (TargetConnection::Postgres(pg), TargetPlan::Postgres(p)) = (f.conn.as_ref(), &f.plan)
    else {
        panic!("not PostgreSQL");
    };
    let order: Vec<String> = p.primary_key.iter().map(|c| q(c)).collect();
    let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT to_jsonb(t)::text FROM {}.{} t ORDER BY {}",
        q(&p.schema),
        q(&p.table),
        order.join(", ")
    )))
    .fetch_all(pg.pool())
    .await
    .unwrap();
    texts
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect()
}

/// `(id, count, _sluice_version)` of every row.
async fn pg_state(f: &Fixture) -> Vec<(String, i64, i64)> {
    pg_rows(f)
        .await
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_owned(),
                r["count"].as_i64().unwrap(),
                r["_sluice_version"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn st(items: &[(&str, i64, i64)]) -> Vec<(String, i64, i64)> {
    items
        .iter()
        .map(|(k, c, v)| ((*k).to_owned(), *c, *v))
        .collect()
}

#[tokio::test]
async fn postgres_upserts_are_idempotent_and_version_guarded() {
    pg_upserts_are_idempotent_and_version_guarded(false).await;
}

#[tokio::test]
async fn postgres_upserts_are_idempotent_and_version_guarded_with_copy() {
    pg_upserts_are_idempotent_and_version_guarded(true).await;
}

/// A batch large enough to go as two concurrent transactions lands whole, by COPY and by
/// `unnest` alike, with deletes in both halves; a refused record in the second half is
/// named, and writing the batch again without it leaves every row right.
#[tokio::test]
async fn postgres_large_batches_go_as_two_transactions_and_land_whole() {
    for copy in [true, false] {
        let out = every_type();
        let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
        let f = if copy { f.copying() } else { f.never_copying() };
        with_fixture(f, |f| async move {
            let key = |n: i64| format!("k{n:05}");
            let first: Vec<SinkRecord> = (0..6_000i64)
                .map(|n| rec(&key(n), n, Some(json!({"id": key(n), "count": n}))))
                .collect();
            f.write(&first).await;
            assert_eq!(pg_state(&f).await.len(), 6_000);
            // Every tenth key deleted, the others updated; one refused row near the end.
            let mut second: Vec<SinkRecord> = (0..6_000i64)
                .map(|n| {
                    let row = (n % 10 != 0).then(|| json!({"id": key(n), "count": n + 1}));
                    rec(&key(n), 10_000 + n, row)
                })
                .collect();
            second.push(rec(
                "k99999",
                20_000,
                Some(json!({"id": "k99999", "count": "x"})),
            ));
            let err = f.sink.write(&second).await.unwrap_err();
            assert_eq!(err.record(), Some(("k99999", 20_000)), "{err}");
            second.pop();
            f.write(&second).await;
            let expected: Vec<(String, i64, i64)> = (0..6_000i64)
                .filter(|n| n % 10 != 0)
                .map(|n| (key(n), n + 1, 10_000 + n))
                .collect();
            assert_eq!(pg_state(&f).await, expected, "copy: {copy}");
        })
        .await;
    }
}

/// A COPY batch whose keys are all new goes straight into the table; one that meets keys
/// already there gives way to the guarded upsert, in the same transaction as its deletes,
/// and later batches take whichever path without a row going wrong.
#[tokio::test]
async fn postgres_straight_copy_gives_way_to_the_guarded_upsert_on_known_keys() {
    let out = every_type();
    let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
    with_fixture(f.copying(), |f| async move {
        let key = |n: i64| format!("k{n:03}");
        let record = |n: i64, version: i64, count: i64| {
            rec(
                &key(n),
                version,
                Some(json!({"id": key(n), "count": count})),
            )
        };
        let straight = || match &f.sink {
            Sink::Postgres(sink) => sink.straight_copies(),
            _ => panic!("not PostgreSQL"),
        };
        f.write(&(0..100).map(|n| record(n, n, n)).collect::<Vec<_>>())
            .await;
        assert_eq!(straight(), 1, "a batch of new keys goes straight");
        let mut expected: BTreeMap<String, (i64, i64)> =
            (0..100).map(|n| (key(n), (n, n))).collect();
        // Older versions of 0..25 (ignored), newer ones of 25..50, deletes of 50..60 (one
        // of them older than its row), and new keys 100..150.
        let mut mixed: Vec<SinkRecord> = (0..25).map(|n| record(n, n - 1, -1)).collect();
        mixed.extend((25..50).map(|n| record(n, 1_000 + n, 1_000 + n)));
        mixed.extend((50..60).map(|n| rec(&key(n), if n == 50 { 49 } else { 1_000 + n }, None)));
        mixed.extend((100..150).map(|n| record(n, 1_000 + n, n)));
        f.write(&mixed).await;
        assert_eq!(straight(), 1, "a batch of known keys is upserted");
        for n in 25..50 {
            expected.insert(key(n), (1_000 + n, 1_000 + n));
        }
        for n in 51..60 {
            expected.remove(&key(n));
        }
        for n in 100..150 {
            expected.insert(key(n), (n, 1_000 + n));
        }
        let state = |expected: &BTreeMap<String, (i64, i64)>| {
            expected
                .iter()
                .map(|(k, (count, version))| (k.clone(), *count, *version))
                .collect::<Vec<_>>()
        };
        assert_eq!(pg_state(&f).await, state(&expected));
        // Batches of new keys, then one re-delivered, then new ones again: whatever path
        // each takes, the table holds every newest row once.
        for round in 0..8i64 {
            let batch: Vec<SinkRecord> = (0..20)
                .map(|i| 200 + 20 * round + i)
                .map(|n| record(n, 2_000 + n, n))
                .collect();
            f.write(&batch).await;
            if round == 3 {
                f.write(&batch).await;
            }
            for n in (0..20).map(|i| 200 + 20 * round + i) {
                expected.insert(key(n), (n, 2_000 + n));
            }
        }
        assert_eq!(pg_state(&f).await, state(&expected));
        // Refused once before round 0 (pause 1: round 0 staged), rounds 1–3 straight, the
        // re-delivery refused (pause 1: round 4 staged), rounds 5–7 straight.
        assert_eq!(straight(), 1 + 6);
    })
    .await;
}

async fn pg_upserts_are_idempotent_and_version_guarded(copy: bool) {
    let out = every_type();
    let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
    let f = if copy { f.copying() } else { f };
    with_fixture(f, |f| async move {
        let batch = [
            rec("a", 0, Some(full("a", 1))),
            rec("b", 1, Some(full("b", 1))),
            rec("a", 2, Some(full("a", 2))),
            rec("c", 3, Some(json!({"id": "c", "count": 3}))),
        ];
        f.write(&batch).await;
        let expected = st(&[("a", 2, 2), ("b", 1, 1), ("c", 3, 3)]);
        assert_eq!(pg_state(&f).await, expected);

        // The same batch again, and any prefix of it: no change, no duplicate.
        f.write(&batch).await;
        f.write(&batch[..2]).await;
        assert_eq!(pg_state(&f).await, expected);

        // An older record after a newer one is ignored, also an older delete.
        f.write(&[rec("b", 5, Some(full("b", 5)))]).await;
        f.write(&[rec("b", 1, Some(full("b", 1)))]).await;
        f.write(&[rec("b", 4, None)]).await;
        assert_eq!(
            pg_state(&f).await,
            st(&[("a", 2, 2), ("b", 5, 5), ("c", 3, 3)])
        );

        // A delete removes the row; within one batch an older upsert cannot undo it.
        f.write(&[rec("c", 6, None), rec("c", 3, Some(full("c", 3)))])
            .await;
        assert_eq!(pg_state(&f).await, st(&[("a", 2, 2), ("b", 5, 5)]));

        // Documented limitation: a re-delivered older upsert in a later batch writes the
        // row again, and the in-order re-delivery of the delete removes it again.
        let history = [
            vec![rec("c", 3, Some(full("c", 3)))],
            vec![rec("b", 5, Some(full("b", 5))), rec("c", 6, None)],
        ];
        f.write(&history[0]).await;
        assert_eq!(pg_state(&f).await.len(), 3);
        f.write(&history[1]).await;
        assert_eq!(pg_state(&f).await, st(&[("a", 2, 2), ("b", 5, 5)]));

        // A full re-delivery of everything, in order, in other batch sizes: same state.
        let all = [
            batch.to_vec(),
            vec![rec("b", 5, Some(full("b", 5)))],
            vec![rec("b", 4, None), rec("c", 6, None)],
        ]
        .concat();
        for chunk in all.chunks(2) {
            f.write(chunk).await;
        }
        assert_eq!(pg_state(&f).await, st(&[("a", 2, 2), ("b", 5, 5)]));
    })
    .await;
}

#[tokio::test]
async fn postgres_converts_every_output_type() {
    pg_converts_every_output_type(false).await;
}

#[tokio::test]
async fn postgres_converts_every_output_type_with_copy() {
    pg_converts_every_output_type(true).await;
}

async fn pg_converts_every_output_type(copy: bool) {
    let out = every_type();
    let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
    let f = if copy { f.copying() } else { f };
    with_fixture(f, |f| async move {
        f.write(&[
            rec("a", 7, Some(full("a", 9_007_199_254_740_993))),
            rec(
                "n",
                8,
                Some(json!({"id": "n", "count": -1, "price": null, "at": "2024-05-01T12:30:00.5+02:00"})),
            ),
        ])
        .await;
        let rows = pg_rows(&f).await;
        assert_eq!(
            rows[0],
            json!({
                "id": "a",
                "count": 9_007_199_254_740_993_i64,
                "price": 12.5,
                "active": true,
                "at": "2024-05-01T10:00:00+00:00",
                "address": {"city": "Lyon", "zip": "69001"},
                "tags": ["a", {"b": 1}],
                "_sluice_version": 7,
            })
        );
        assert_eq!(rows[1]["at"], json!("2024-05-01T10:30:00.5+00:00"));
        assert_eq!(rows[1]["price"], Value::Null);
        assert_eq!(rows[1]["tags"], Value::Null);

        // Values that do not fit are refused per record, naming the key; nothing written.
        for (bad, reason) in [
            (json!({"id": "x", "count": "1"}), "count"),
            (json!({"id": "x", "count": 1.5}), "count"),
            (json!({"id": "x", "count": 1, "at": "yesterday"}), "at"),
            (json!({"id": "x", "count": 1, "active": "yes"}), "active"),
            (json!({"id": "x", "count": 1, "nope": 1}), "nope"),
            (json!({"id": "x"}), "count"),
            (json!({"id": "y", "count": 1}), "key"),
        ] {
            let err = f
                .sink
                .write(&[rec("a", 9, Some(full("a", 1))), rec("x", 10, Some(bad))])
                .await
                .unwrap_err();
            assert!(!err.is_retryable(), "{err}");
            assert_eq!(err.record(), Some(("x", 10)), "{err}");
            assert!(err.to_string().contains(reason), "{err}");
        }
        assert_eq!(pg_rows(&f).await[0]["_sluice_version"], json!(7));
    })
    .await;
}

#[tokio::test]
async fn postgres_computed_keys_go_into_the_key_column() {
    pg_computed_keys_go_into_the_key_column(false).await;
}

#[tokio::test]
async fn postgres_computed_keys_go_into_the_key_column_with_copy() {
    pg_computed_keys_go_into_the_key_column(true).await;
}

async fn pg_computed_keys_go_into_the_key_column(copy: bool) {
    let out = computed_key();
    let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
    let f = if copy { f.copying() } else { f };
    with_fixture(f, |f| async move {
        let batch = [
            rec("101", 0, Some(json!({"name": "x", "amount": 1.0}))),
            rec("7", 1, Some(json!({"name": "y"}))),
            rec("101", 2, Some(json!({"name": "x2", "amount": 2.0}))),
        ];
        f.write(&batch).await;
        f.write(&batch).await;
        f.write(&[rec("7", 0, None)]).await;
        let keys = |rows: Vec<Value>| -> Vec<(i64, String, i64)> {
            rows.iter()
                .map(|r| {
                    (
                        r["_sluice_key"].as_i64().unwrap(),
                        r["name"].as_str().unwrap().to_owned(),
                        r["_sluice_version"].as_i64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(
            keys(pg_rows(&f).await),
            [(7, "y".to_owned(), 1), (101, "x2".to_owned(), 2)]
        );
        f.write(&[rec("7", 3, None)]).await;
        assert_eq!(keys(pg_rows(&f).await), [(101, "x2".to_owned(), 2)]);
        let err = f.sink.write(&[rec("abc", 4, None)]).await.unwrap_err();
        assert_eq!(err.record(), Some(("abc", 4)), "{err}");
    })
    .await;
}

#[tokio::test]
async fn postgres_append_writes_each_record_once() {
    pg_append_writes_each_record_once(false).await;
}

#[tokio::test]
async fn postgres_append_writes_each_record_once_with_copy() {
    pg_append_writes_each_record_once(true).await;
}

async fn pg_append_writes_each_record_once(copy: bool) {
    let out = computed_key();
    let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Append, json!({}), &out).await;
    let f = if copy { f.copying() } else { f };
    with_fixture(f, |f| async move {
        let mut batch = vec![
            rec("1", 10, Some(json!({"name": "a"}))),
            rec("1", 11, Some(json!({"name": "b"}))),
            rec("2", 12, None),
        ];
        batch.push(SinkRecord {
            partition: 3,
            ..rec("1", 10, Some(json!({"name": "c", "amount": 0.25})))
        });
        f.write(&batch).await;
        f.write(&batch).await;
        f.write(&batch[1..2]).await;
        let rows: Vec<(i64, i64, String)> = pg_rows(&f)
            .await
            .iter()
            .map(|r| {
                (
                    r["_sluice_partition"].as_i64().unwrap(),
                    r["_sluice_offset"].as_i64().unwrap(),
                    r["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (0, 10, "a".to_owned()),
                (0, 11, "b".to_owned()),
                (3, 10, "c".to_owned())
            ]
        );
    })
    .await;
}

/// Values that `COPY`'s text format must escape (or must not): tabs, newlines, carriage
/// returns, backslashes (also before `N`, which would read as NULL), quotes, Unicode, the
/// text `\N` itself, empty strings and NULLs, in text and jsonb columns.
fn awkward_rows() -> Vec<(String, Value)> {
    let texts = [
        "tab\there",
        "line\nbreak\r\nand return",
        "back\\slash \\N \\t \\\\",
        "\\N",
        "quotes ' \" `",
        "unicode é ü 日本語 🚀",
        "",
        "comma, semicolon; pipe |",
    ];
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let id = format!("k{i}\t{text}");
            let value = json!({
                "id": id,
                "count": i,
                "price": if i % 2 == 0 { Value::Null } else { json!(0.1 + i as f64) },
                "active": i % 3 == 0,
                "at": if i % 2 == 1 { Value::Null } else { json!("2024-05-01T10:00:00Z") },
                "address": {"line": text, "nested": [text, null, {"q": "\"\\"}]},
                "tags": [text, i, null],
            });
            (id, value)
        })
        .collect()
}

#[tokio::test]
async fn postgres_copy_and_unnest_write_awkward_values_alike() {
    let out = every_type();
    let mut states = Vec::new();
    for copy in [true, false] {
        let f = Fixture::new(TargetType::Postgres, PG, WriteMode::Upsert, json!({}), &out).await;
        let f = if copy { f.copying() } else { f };
        let (tx, rx) = std::sync::mpsc::channel();
        with_fixture(f, |f| async move {
            let rows = awkward_rows();
            let batch: Vec<SinkRecord> = rows
                .iter()
                .enumerate()
                .map(|(i, (id, value))| rec(id, i as i64, Some(value.clone())))
                .collect();
            f.write(&batch).await;
            let got = pg_rows(&f).await;
            assert_eq!(got.len(), rows.len());
            for (id, value) in &rows {
                let row = got
                    .iter()
                    .find(|r| r["id"] == json!(id))
                    .unwrap_or_else(|| panic!("no row {id:?} in {got:#?}"));
                for field in ["id", "count", "price", "active", "address", "tags"] {
                    assert_eq!(row[field], value[field], "{field} of {id:?} (copy: {copy})");
                }
            }
            tx.send(got).unwrap();
        })
        .await;
        let mut got = rx.recv().unwrap();
        // The tables differ only in names; the rows must be the same.
        for row in &mut got {
            row.as_object_mut().unwrap().remove("_sluice_version");
        }
        states.push(got);
    }
    assert_eq!(states[0], states[1]);
}

// ---------------------------------------------------------------------------------------
// Elasticsearch / OpenSearch

/// The index's documents, `_id` → `_source`, after a refresh.
async fn es_docs(f: &Fixture) -> BTreeMap<String, Value> {
    let (TargetConnection::Elasticsearch(es), TargetPlan::Elasticsearch(p)) =
        (f.conn.as_ref(), &f.plan)
    else {
        panic!("not Elasticsearch");
    };
    let base = es.base_url();
    es.http()
        .post(format!("{base}/{}/_refresh", p.index))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let answer: Value = es
        .http()
        .post(format!("{base}/{}/_search", p.index))
        .json(&json!({"size": 1000, "query": {"match_all": {}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_owned(), h["_source"].clone()))
        .collect()
}

/// `id` → (`count`, `_sluice_version`).
async fn es_state(f: &Fixture) -> BTreeMap<String, (i64, i64)> {
    es_docs(f)
        .await
        .into_iter()
        .map(|(id, d)| {
            (
                id,
                (
                    d["count"].as_i64().unwrap(),
                    d["_sluice_version"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

fn es_st(items: &[(&str, i64, i64)]) -> BTreeMap<String, (i64, i64)> {
    items
        .iter()
        .map(|(k, c, v)| ((*k).to_owned(), (*c, *v)))
        .collect()
}

#[tokio::test]
async fn search_upserts_are_idempotent_and_version_guarded() {
    for url in SEARCH {
        let out = every_type();
        let f = Fixture::new(
            TargetType::Elasticsearch,
            url,
            WriteMode::Upsert,
            json!({}),
            &out,
        )
        .await;
        with_fixture(f, |f| async move {
            let batch = [
                rec("a", 0, Some(full("a", 1))),
                rec("b", 1, Some(full("b", 1))),
                rec("a", 2, Some(full("a", 2))),
                rec("c", 3, Some(json!({"id": "c", "count": 3}))),
            ];
            f.write(&batch).await;
            let expected = es_st(&[("a", 2, 2), ("b", 1, 1), ("c", 3, 3)]);
            assert_eq!(es_state(&f).await, expected);
            f.write(&batch).await;
            f.write(&batch[..2]).await;
            assert_eq!(es_state(&f).await, expected);

            // Older records and older deletes after newer ones are ignored.
            f.write(&[rec("b", 5, Some(full("b", 5)))]).await;
            f.write(&[rec("b", 1, Some(full("b", 1)))]).await;
            f.write(&[rec("b", 4, None)]).await;
            assert_eq!(
                es_state(&f).await,
                es_st(&[("a", 2, 2), ("b", 5, 5), ("c", 3, 3)])
            );

            // A delete, then the older upsert re-delivered in a later batch: stays deleted
            // (the engine's versioned tombstone); a delete of a missing key is fine.
            f.write(&[rec("c", 6, None)]).await;
            f.write(&[rec("c", 3, Some(full("c", 3)))]).await;
            f.write(&[rec("zz", 7, None)]).await;
            assert_eq!(es_state(&f).await, es_st(&[("a", 2, 2), ("b", 5, 5)]));
            // A newer upsert after the delete brings the key back.
            f.write(&[rec("c", 8, Some(full("c", 8)))]).await;
            assert_eq!(es_state(&f).await.get("c"), Some(&(8, 8)));

            // Every output type as the index stores it.
            let docs = es_docs(&f).await;
            let mut expected = row(full("a", 2));
            expected.insert("_sluice_version".to_owned(), json!(2));
            assert_eq!(docs["a"], Value::Object(expected));

            // A document the index refuses is a record error naming the key.
            let err = f
                .sink
                .write(&[
                    rec("d", 9, Some(json!({"id": "d", "count": 1, "nope": 1}))),
                    rec("e", 10, Some(full("e", 1))),
                ])
                .await
                .unwrap_err();
            assert!(!err.is_retryable(), "{err}");
            assert_eq!(err.record(), Some(("d", 9)), "{err}");
            let err = f
                .sink
                .write(&[rec(
                    "d",
                    11,
                    Some(json!({"id": "d", "count": 1, "at": "x"})),
                )])
                .await
                .unwrap_err();
            assert_eq!(err.record(), Some(("d", 11)), "{err}");
        })
        .await;
    }
}

#[tokio::test]
async fn search_computed_keys_and_append() {
    for url in SEARCH {
        let out = computed_key();
        let f = Fixture::new(
            TargetType::Elasticsearch,
            url,
            WriteMode::Upsert,
            json!({}),
            &out,
        )
        .await;
        with_fixture(f, |f| async move {
            f.write(&[
                rec("101", 0, Some(json!({"name": "x"}))),
                rec("7", 1, Some(json!({"name": "y", "amount": 2.5}))),
            ])
            .await;
            let docs = es_docs(&f).await;
            assert_eq!(docs.keys().collect::<Vec<_>>(), ["101", "7"]);
            assert_eq!(
                docs["7"],
                json!({"name": "y", "amount": 2.5, "_sluice_version": 1})
            );
        })
        .await;

        let f = Fixture::new(
            TargetType::Elasticsearch,
            url,
            WriteMode::Append,
            json!({}),
            &out,
        )
        .await;
        with_fixture(f, |f| async move {
            let batch = [
                rec("1", 10, Some(json!({"name": "a"}))),
                rec("1", 11, Some(json!({"name": "b"}))),
                rec("2", 12, None),
            ];
            f.write(&batch).await;
            f.write(&batch).await;
            let docs = es_docs(&f).await;
            assert_eq!(docs.keys().collect::<Vec<_>>(), ["0-10", "0-11"]);
            assert_eq!(docs["0-11"]["name"], json!("b"));
        })
        .await;
    }
}

/// The index's `index.refresh_interval`, `None` while it has the engine's default.
async fn es_refresh_interval(f: &Fixture) -> Option<String> {
    let (TargetConnection::Elasticsearch(es), TargetPlan::Elasticsearch(p)) =
        (f.conn.as_ref(), &f.plan)
    else {
        panic!("not Elasticsearch");
    };
    let answer: Value = es
        .http()
        .get(format!("{}/{}/_settings", es.base_url(), p.index))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer[&p.index]["settings"]["index"]["refresh_interval"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn a_live_search_index_refreshes_more_often_than_during_the_backfill() {
    for url in SEARCH {
        let out = computed_key();
        let f = Fixture::new(
            TargetType::Elasticsearch,
            url,
            WriteMode::Upsert,
            json!({}),
            &out,
        )
        .await;
        with_fixture(f, |f| async move {
            // The backfill writes with the engine's default.
            f.write(&[rec("1", 0, Some(json!({"name": "x"})))]).await;
            assert_eq!(es_refresh_interval(&f).await, None);
            f.sink.live().await.unwrap();
            assert_eq!(
                es_refresh_interval(&f).await.as_deref(),
                Some(sluice_provisioners::elasticsearch::provision::LIVE_REFRESH_INTERVAL)
            );
            // Again: nothing changes.
            f.sink.live().await.unwrap();
            assert_eq!(
                es_refresh_interval(&f).await.as_deref(),
                Some(sluice_provisioners::elasticsearch::provision::LIVE_REFRESH_INTERVAL)
            );
        })
        .await;
    }
}

#[tokio::test]
async fn readying_a_missing_index_for_live_sync_is_refused() {
    let out = computed_key();
    let f = Fixture::new(
        TargetType::Elasticsearch,
        SEARCH[0],
        WriteMode::Upsert,
        json!({}),
        &out,
    )
    .await;
    f.conn.delete(&f.plan, false).await.unwrap();
    let err = f.sink.live().await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("404"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Redis

/// What a reader sees under `key`: the hash's fields, or the JSON string parsed; `None`
/// when the key does not exist.
async fn redis_read(f: &Fixture, key: &str) -> Option<Value> {
    let (TargetConnection::Redis(r), TargetPlan::Redis(p)) = (f.conn.as_ref(), &f.plan) else {
        panic!("not Redis");
    };
    let mut con = r.connection().await.unwrap();
    let data_key = p.data_key(key);
    let kind: String = redis::cmd("TYPE")
        .arg(&data_key)
        .query_async(&mut con)
        .await
        .unwrap();
    match kind.as_str() {
        "none" => None,
        "hash" => {
            let fields: BTreeMap<String, String> = redis::cmd("HGETALL")
                .arg(&data_key)
                .query_async(&mut con)
                .await
                .unwrap();
            Some(json!(fields))
        }
        "string" => {
            let text: String = redis::cmd("GET")
                .arg(&data_key)
                .query_async(&mut con)
                .await
                .unwrap();
            Some(serde_json::from_str(&text).unwrap())
        }
        other => panic!("unexpected type {other}"),
    }
}

async fn redis_ttl(f: &Fixture, key: &str) -> i64 {
    let TargetConnection::Redis(r) = f.conn.as_ref() else {
        panic!("not Redis");
    };
    let mut con = r.connection().await.unwrap();
    redis::cmd("TTL")
        .arg(key)
        .query_async(&mut con)
        .await
        .unwrap()
}

/// What the key of `partition`'s applied offset holds.
async fn redis_applied(f: &Fixture, partition: i32) -> Option<String> {
    let TargetConnection::Redis(r) = f.conn.as_ref() else {
        panic!("not Redis");
    };
    let mut con = r.connection().await.unwrap();
    redis::cmd("GET")
        .arg(redis_sink(f).applied_key(partition))
        .query_async(&mut con)
        .await
        .unwrap()
}

fn redis_sink(f: &Fixture) -> &super::RedisSink {
    match &f.sink {
        Sink::Redis(s) => s,
        _ => panic!("not Redis"),
    }
}

#[tokio::test]
async fn redis_hash_rows_are_idempotent_version_guarded_and_stay_deleted() {
    let out = every_type();
    let f = Fixture::new(TargetType::Redis, REDIS, WriteMode::Upsert, json!({}), &out).await;
    with_fixture(f, |f| async move {
        let batch = [
            rec("a", 0, Some(full("a", 1))),
            rec("b", 1, Some(json!({"id": "b", "count": 1, "price": null}))),
            rec("a", 2, Some(full("a", 2))),
        ];
        f.write(&batch).await;
        let a = json!({
            "id": "a",
            "count": "2",
            "price": "12.5",
            "active": "true",
            "at": "2024-05-01T10:00:00Z",
            "address": r#"{"city":"Lyon","zip":"69001"}"#,
            "tags": r#"["a",{"b":1}]"#,
            "_sluice_version": "2",
        });
        let b = json!({"id": "b", "count": "1", "_sluice_version": "1"});
        assert_eq!(redis_read(&f, "a").await, Some(a.clone()));
        assert_eq!(redis_read(&f, "b").await, Some(b.clone()));
        assert_eq!(redis_ttl(&f, &data_key(&f, "a")).await, -1);

        // Re-delivery, prefixes and older records change nothing.
        f.write(&batch).await;
        f.write(&batch[..1]).await;
        f.write(&[rec("b", 0, None), rec("a", 1, Some(full("a", 1)))])
            .await;
        assert_eq!(redis_read(&f, "a").await, Some(a.clone()));
        assert_eq!(redis_read(&f, "b").await, Some(b));

        // A delete, then the older upsert re-delivered in a later batch: stays deleted.
        f.write(&[rec("b", 5, None)]).await;
        assert_eq!(redis_read(&f, "b").await, None);
        f.write(&[rec("b", 1, Some(json!({"id": "b", "count": 1})))])
            .await;
        assert_eq!(redis_read(&f, "b").await, None);
        // A newer row replaces the whole hash (a field that became null is gone); the
        // partition's applied offset follows.
        f.write(&[rec("b", 6, Some(json!({"id": "b", "count": 6})))])
            .await;
        assert_eq!(
            redis_read(&f, "b").await,
            Some(json!({"id": "b", "count": "6", "_sluice_version": "6"}))
        );
        assert_eq!(redis_applied(&f, 0).await.as_deref(), Some("6"));
        f.write(&[rec("a", 7, Some(json!({"id": "a", "count": 7})))])
            .await;
        assert_eq!(
            redis_read(&f, "a").await,
            Some(json!({"id": "a", "count": "7", "_sluice_version": "7"}))
        );

        // Unknown fields are refused per record.
        let err = f
            .sink
            .write(&[rec("c", 8, Some(json!({"id": "c", "_sluice_version": 1})))])
            .await
            .unwrap_err();
        assert_eq!(err.record(), Some(("c", 8)), "{err}");
        for bad in [
            json!({"id": "c", "nope": 1}),
            json!({"count": 1, "id": "c", "nope": 1}),
        ] {
            let err = f.sink.write(&[rec("c", 8, Some(bad))]).await.unwrap_err();
            assert!(err.to_string().contains("`nope`"), "{err}");
        }
        // Fields in another order than the plan's are known all the same.
        f.write(&[rec(
            "c",
            9,
            Some(json!({"count": 3, "price": 1.5, "id": "c"})),
        )])
        .await;
        assert_eq!(
            redis_read(&f, "c").await,
            Some(json!({"id": "c", "count": "3", "price": "1.5", "_sluice_version": "9"}))
        );
    })
    .await;
}

/// A data key holding something the sink did not write (a string where rows are hashes,
/// a hash where rows are JSON) is replaced whole by the next row, and a delete removes it;
/// a row with a field the plan lacks is refused in either encoding.
#[tokio::test]
async fn redis_keys_of_another_type_are_replaced_whole() {
    for encoding in ["hash", "json"] {
        let out = every_type();
        let f = Fixture::new(
            TargetType::Redis,
            REDIS,
            WriteMode::Upsert,
            json!({"type": encoding}),
            &out,
        )
        .await;
        with_fixture(f, move |f| async move {
            let TargetConnection::Redis(r) = f.conn.as_ref() else {
                panic!("not Redis");
            };
            let mut con = r.connection().await.unwrap();
            // A string where rows are hashes, a hash where rows are JSON strings.
            let foreign: &[&str] = if encoding == "hash" {
                &["SET", "junk"]
            } else {
                &["HSET", "x", "1"]
            };
            for key in [data_key(&f, "a"), data_key(&f, "b")] {
                let mut cmd = redis::cmd(foreign[0]);
                cmd.arg(&key).arg(&foreign[1..]);
                let _: () = cmd.query_async(&mut con).await.unwrap();
            }
            f.write(&[
                rec("a", 3, Some(json!({"id": "a", "count": 3}))),
                rec("b", 4, None),
            ])
            .await;
            let a_row = if encoding == "hash" {
                json!({"id": "a", "count": "3", "_sluice_version": "3"})
            } else {
                json!({"id": "a", "count": 3, "_sluice_version": 3})
            };
            assert_eq!(redis_read(&f, "a").await, Some(a_row), "{encoding}");
            assert_eq!(redis_read(&f, "b").await, None, "{encoding}");
            // The delete is remembered: an older row of `b` stays out.
            f.write(&[rec("b", 2, Some(json!({"id": "b", "count": 2})))])
                .await;
            assert_eq!(redis_read(&f, "b").await, None, "{encoding}");
            // A field the plan does not have is refused in either encoding, naming the
            // record, and nothing of it is written.
            let err = f
                .sink
                .write(&[rec("b", 9, Some(json!({"id": "b", "unknown": 1})))])
                .await
                .unwrap_err();
            assert_eq!(err.record(), Some(("b", 9)), "{encoding}: {err}");
            assert!(err.to_string().contains("`unknown`"), "{encoding}: {err}");
            assert_eq!(redis_read(&f, "b").await, None, "{encoding}");
        })
        .await;
    }
}

/// A batch larger than one transaction lands whole; a re-delivery overlapping what is
/// applied writes only the rest (a key changed behind the sink's back after its record was
/// applied keeps that change); two sinks writing at once — a worker that lost its
/// partitions, writing older records again, and the one that got them — leave the newer
/// rows; a record refused in a later transaction is named.
#[tokio::test]
async fn redis_batches_land_once_in_transactions_and_two_writers_agree() {
    let out = every_type();
    let f = Fixture::new(TargetType::Redis, REDIS, WriteMode::Upsert, json!({}), &out).await;
    with_fixture(f, |f| async move {
        let TargetConnection::Redis(r) = f.conn.as_ref() else {
            panic!("not Redis");
        };
        // Key `k<j>` lives in partition j % 2; versions grow within each partition.
        let record = |j: i64, version: i64, count: i64| {
            let key = format!("k{j}");
            SinkRecord {
                partition: i32::from(j % 2 == 1),
                ..rec(&key, version, Some(json!({"id": key, "count": count})))
            }
        };
        let batch: Vec<SinkRecord> = (0..2_500i64).map(|j| record(j, j, j)).collect();
        f.write(&batch).await;
        assert_eq!(redis_applied(&f, 0).await.as_deref(), Some("2498"));
        assert_eq!(redis_applied(&f, 1).await.as_deref(), Some("2499"));

        let mut con = r.connection().await.unwrap();
        let _: () = redis::cmd("HSET")
            .arg(data_key(&f, "k1300"))
            .arg("count")
            .arg("changed")
            .query_async(&mut con)
            .await
            .unwrap();
        // Re-delivery of the batch's last 1,300 records, then newer versions of k0…k999.
        let mut again: Vec<SinkRecord> = batch[1_200..].to_vec();
        again.extend((0..1_000i64).map(|j| record(j, 10_000 + j, j + 1)));
        f.write(&again).await;
        for (j, count, version) in [
            (0i64, "1", 10_000i64),
            (999, "1000", 10_999),
            (1_000, "1000", 1_000),
            (2_499, "2499", 2_499),
        ] {
            let key = format!("k{j}");
            assert_eq!(
                redis_read(&f, &key).await,
                Some(json!({"id": key, "count": count, "_sluice_version": version.to_string()})),
                "{key}"
            );
        }
        assert_eq!(
            redis_read(&f, "k1300").await,
            Some(json!({"id": "k1300", "count": "changed", "_sluice_version": "1300"})),
            "an applied record was written again"
        );

        // Two sinks at once, four rounds: a worker that lost the partitions and has not
        // noticed writes older records again while the one that got them writes newer
        // ones. Whichever transaction runs first, every key ends with the newer row.
        let zombie = Sink::new(Arc::clone(&f.conn), &f.plan).unwrap();
        let mut newest = 0;
        for round in 0..4i64 {
            newest = 20_000 + 10_000 * round;
            let newer: Vec<SinkRecord> = (0..2_500i64)
                .map(|j| record(j, newest + j, j + 2 + round))
                .collect();
            let older: Vec<SinkRecord> = (0..2_500i64)
                .map(|j| record(j, newest - 5_000 + j, -1))
                .collect();
            let (a, b) = tokio::join!(zombie.write(&older), f.sink.write(&newer));
            a.unwrap();
            b.unwrap();
        }
        let mut read = r.connection().await.unwrap();
        let mut pipe = redis::pipe();
        for j in 0..2_500i64 {
            pipe.cmd("HMGET")
                .arg(data_key(&f, &format!("k{j}")))
                .arg("count")
                .arg("_sluice_version");
        }
        let rows: Vec<(String, String)> = pipe.query_async(&mut read).await.unwrap();
        for (j, row) in (0..2_500i64).zip(rows) {
            assert_eq!(row, ((j + 5).to_string(), (newest + j).to_string()), "k{j}");
        }
        assert_eq!(
            redis_applied(&f, 0).await,
            Some((newest + 2_498).to_string())
        );
        assert_eq!(
            redis_applied(&f, 1).await,
            Some((newest + 2_499).to_string())
        );
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", data_key(&f, "k")))
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(keys.len(), 2_500);

        // A record the plan refuses, in the batch's second transaction.
        let mut refused: Vec<SinkRecord> = (0..1_500i64)
            .map(|j| record(j, 100_000 + 2 * j, j))
            .collect();
        refused[1_200] = SinkRecord {
            partition: 0,
            ..rec("k2600", 102_400, Some(json!({"id": "x", "unknown": 1})))
        };
        let err = f.sink.write(&refused).await.unwrap_err();
        assert_eq!(err.record(), Some(("k2600", 102_400)), "{err}");
    })
    .await;
}

fn data_key(f: &Fixture, key: &str) -> String {
    match &f.plan {
        TargetPlan::Redis(p) => p.data_key(key),
        _ => panic!("not Redis"),
    }
}

#[tokio::test]
async fn redis_json_rows_with_ttl_and_computed_keys() {
    let out = computed_key();
    let f = Fixture::new(
        TargetType::Redis,
        REDIS,
        WriteMode::Upsert,
        json!({"type": "json", "ttl": "1h"}),
        &out,
    )
    .await;
    with_fixture(f, |f| async move {
        let batch = [
            rec("101", 0, Some(json!({"name": "x", "amount": 1.5}))),
            rec("7", 1, Some(json!({"name": "y", "amount": null}))),
        ];
        f.write(&batch).await;
        f.write(&batch).await;
        assert_eq!(
            redis_read(&f, "101").await,
            Some(json!({"name": "x", "amount": 1.5, "_sluice_version": 0}))
        );
        assert_eq!(
            redis_read(&f, "7").await,
            Some(json!({"name": "y", "amount": null, "_sluice_version": 1}))
        );
        let ttl = redis_ttl(&f, &data_key(&f, "7")).await;
        assert!((3590..=3600).contains(&ttl), "{ttl}");

        // Older after newer, delete then older: the newer state stays.
        f.write(&[rec("101", 4, Some(json!({"name": "x4"})))]).await;
        f.write(&[rec("101", 3, Some(json!({"name": "x3"})))]).await;
        assert_eq!(
            redis_read(&f, "101").await,
            Some(json!({"name": "x4", "_sluice_version": 4}))
        );
        f.write(&[rec("7", 5, None)]).await;
        f.write(&[rec("7", 1, Some(json!({"name": "y"})))]).await;
        assert_eq!(redis_read(&f, "7").await, None);
        // The applied offset does not expire with the rows.
        assert_eq!(redis_applied(&f, 0).await.as_deref(), Some("5"));
        assert_eq!(redis_ttl(&f, &redis_sink(&f).applied_key(0)).await, -1);
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Unreachable targets

#[tokio::test]
async fn unreachable_targets_are_retryable() {
    let out = every_type();
    let options = Map::new();
    let request = TargetRequest {
        team: "t",
        product: "p",
        version: 1,
        name: "n",
        mode: WriteMode::Upsert,
        options: &options,
        output: &out,
    };
    for (target_type, isolation, url) in [
        (
            TargetType::Redis,
            Isolation::AclPrefix,
            "redis://127.0.0.1:1/0",
        ),
        (
            TargetType::Elasticsearch,
            Isolation::Index,
            "http://127.0.0.1:1",
        ),
        (
            TargetType::Postgres,
            Isolation::Schema,
            "postgres://u:secretpw@127.0.0.1:1/x",
        ),
    ] {
        let plan = plan_target(&request, target_type, isolation).unwrap();
        let conn = Arc::new(TargetConnection::connect(target_type, url).unwrap());
        let sink = Sink::new(conn, &plan).unwrap();
        let err = sink
            .write(&[rec("a", 1, Some(full("a", 1)))])
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{target_type}: {err}");
        assert!(!err.to_string().contains("secretpw"), "{err}");
    }
}

#[tokio::test]
async fn a_sink_needs_a_connection_of_its_plan_type() {
    let out = every_type();
    let options = Map::new();
    let request = TargetRequest {
        team: "t",
        product: "p",
        version: 1,
        name: "n",
        mode: WriteMode::Upsert,
        options: &options,
        output: &out,
    };
    let plan = plan_target(&request, TargetType::Redis, Isolation::AclPrefix).unwrap();
    let conn = Arc::new(
        TargetConnection::connect(TargetType::Elasticsearch, "http://127.0.0.1:1").unwrap(),
    );
    assert!(matches!(
        Sink::new(conn, &plan),
        Err(SinkError::PlanMismatch { .. })
    ));
}

/// Walking a row's fields passes each one in order (a repeated field twice, the last one
/// last) with escaped names unescaped, as values or names only; an error of the callback
/// ends the walk and is the result; a text that is not one JSON object is a record error.
#[test]
fn row_text_fields_are_walked_in_order() {
    let record = rec("k", 3, None);
    let row = RowText::new(r#"{"b": 1, "a\u0041": {"x": [1]}, "b": "two", "c": null}"#).unwrap();
    let mut seen = Vec::new();
    row.for_each_field(&record, |name, value| {
        seen.push((name.to_owned(), value));
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen,
        [
            ("b".to_owned(), json!(1)),
            ("aA".to_owned(), json!({"x": [1]})),
            ("b".to_owned(), json!("two")),
            ("c".to_owned(), Value::Null),
        ]
    );
    // Names only: the same names, in the same order, with no value built.
    let mut names = Vec::new();
    row.for_each_field(&record, |name, _: serde::de::IgnoredAny| {
        names.push(name.to_owned());
        Ok(())
    })
    .unwrap();
    assert_eq!(names, ["b", "aA", "b", "c"]);
    let mut calls = 0;
    let err = row
        .for_each_field(&record, |name, _: Value| {
            calls += 1;
            match name {
                "aA" => Err(SinkError::record_error(&record, "refused aA")),
                _ => Ok(()),
            }
        })
        .unwrap_err();
    assert_eq!(calls, 2);
    assert!(err.to_string().contains("refused aA"), "{err}");
    for text in [r#"{"a": 1} {"b": 2}"#, r#"{"a": }"#, r#"{"a" 1}"#] {
        let err = RowText::new(text)
            .unwrap()
            .for_each_field(&record, |_, _: serde::de::IgnoredAny| Ok(()))
            .unwrap_err();
        assert_eq!(err.record(), Some(("k", 3)), "{text}");
        assert!(err.to_string().contains("not a JSON object"), "{err}");
    }
}

/// The version goes in as the row's last member, whatever the row's spacing or strings.
#[test]
fn row_text_takes_a_member_last() {
    let with = |text: &str| RowText::new(text).unwrap().with_member("_v", 7);
    assert_eq!(with(r#"{"a": 1}"#), r#"{"a": 1,"_v":7}"#);
    assert_eq!(with("{ }"), r#"{"_v":7}"#);
    let parsed: Value = serde_json::from_str(&with(r#"{"a": "}"}"#)).unwrap();
    assert_eq!(parsed, json!({"a": "}", "_v": 7}));
}
