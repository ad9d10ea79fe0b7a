//! The audit log of the metadata store: what each change records, that verification finds
//! every kind of tampering and names the first broken entry, queries and export, failing
//! closed, and concurrent writers — on an SQLite file and on PostgreSQL (`audit::sqlite::…`
//! and `audit::postgres::…`). Tampering is done with plain SQL on a separate connection, as
//! someone with access to the database would.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_store::{
    Audit, AuditBreakReason, AuditEntry, AuditInput, AuditKey, AuditQuery, AuditVerification,
    Backend, GENESIS_HASH, ObjectInput, ObjectKey, Outcome, Store, StoreError,
};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

use crate::store::TestDb;

/// Runs each listed `async fn(&TestDb)` as a test on each backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        on_both_backends!(@module sqlite, sluice_store::Backend::Sqlite, $($name),*);
        on_both_backends!(@module postgres, sluice_store::Backend::Postgres, $($name),*);
    };
    (@module $module:ident, $backend:expr, $($name:ident),*) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = super::TestDb::new($backend).await;
                    super::$name(&db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    changes_are_recorded_with_their_diff_and_generation,
    refused_and_idle_writes_are_not_recorded,
    other_actions_are_appended,
    url_passwords_never_reach_the_log,
    the_log_is_append_only_in_the_database,
    altering_any_field_of_any_entry_is_detected,
    deleting_a_middle_entry_is_detected,
    truncating_the_tail_is_detected_and_stays_visible,
    reordering_entries_is_detected,
    altering_the_head_is_detected_and_refuses_writes,
    deleting_the_head_is_detected_and_refuses_writes,
    another_key_cannot_verify_or_extend_the_log,
    a_foreign_head_or_unsigned_entries_are_detected,
    rolling_back_to_a_saved_head_is_not_detected,
    queries_filter_by_object_actor_time_and_page,
    export_writes_json_lines_in_order,
    a_failing_audit_insert_refuses_the_change,
    concurrent_writers_build_one_chain,
);

// ---------------------------------------------------------------------------------------------
// Helpers.

fn by(actor: &str) -> Audit {
    Audit::new(actor, format!("req-{actor}"))
}

fn input(name: &str, spec: Value) -> ObjectInput {
    ObjectInput::new(json!({"name": name}), spec)
}

/// A second connection to the test database, for tampering.
async fn raw(db: &TestDb) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap()
}

async fn exec(pool: &AnyPool, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Removes the append-only triggers, as an attacker with DDL rights would.
async fn disable_append_only(db: &TestDb, pool: &AnyPool) {
    let statements: &[&str] = match db.backend {
        Backend::Sqlite => &[
            "DROP TRIGGER audit_log_no_update",
            "DROP TRIGGER audit_log_no_delete",
            "DROP TRIGGER audit_head_no_delete",
        ],
        Backend::Postgres => &[
            "ALTER TABLE audit_log DISABLE TRIGGER USER",
            "ALTER TABLE audit_head DISABLE TRIGGER USER",
        ],
    };
    for sql in statements {
        exec(pool, sql).await;
    }
}

async fn all_entries(store: &Store) -> Vec<AuditEntry> {
    let mut query = AuditQuery {
        limit: 7,
        ..AuditQuery::default()
    };
    let mut entries = Vec::new();
    loop {
        let page = store.audit_entries(&query).await.unwrap();
        let Some(last) = page.last() else {
            return entries;
        };
        query.after_seq = Some(last.seq);
        entries.extend(page);
    }
}

/// The first break `verify_audit` reports, as (seq, reason).
async fn first_break(store: &Store) -> Option<(i64, AuditBreakReason)> {
    let verification = store.verify_audit().await.unwrap();
    assert_eq!(
        verification.ok,
        verification.first_broken.is_none(),
        "{verification:?}"
    );
    verification.first_broken.map(|b| (b.seq, b.reason))
}

#[track_caller]
fn assert_intact(verification: &AuditVerification, entries: u64) {
    assert_eq!(
        verification,
        &AuditVerification {
            ok: true,
            entries,
            first_broken: None
        }
    );
}

/// Five entries: dataset created, updated, its status set, a product created, the dataset
/// deleted.
async fn five_entries(store: &Store) {
    let dataset = ObjectKey::dataset("shop.orders");
    store
        .apply(
            &dataset,
            input("shop.orders", json!({"v": 1})),
            None,
            &by("alice"),
        )
        .await
        .unwrap();
    store
        .apply(
            &dataset,
            input("shop.orders", json!({"v": 2})),
            None,
            &by("bob"),
        )
        .await
        .unwrap();
    store
        .set_status(&dataset, json!({"phase": "Ready"}), None, &by("controller"))
        .await
        .unwrap();
    let product = ObjectKey::data_product("team-a", "orders");
    store
        .apply(
            &product,
            ObjectInput::new(json!({"name": "orders", "team": "team-a"}), json!({"x": 1})),
            None,
            &by("alice"),
        )
        .await
        .unwrap();
    store.delete(&dataset, None, &by("carol")).await.unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 5);
}

// ---------------------------------------------------------------------------------------------
// The suite.

async fn changes_are_recorded_with_their_diff_and_generation(db: &TestDb) {
    let store = db.connect().await;
    assert_intact(&store.verify_audit().await.unwrap(), 0);
    let key = ObjectKey::dataset("shop.orders");
    let metadata = json!({"name": "shop.orders", "description": "orders"});

    let created = store
        .apply(
            &key,
            ObjectInput::new(metadata.clone(), json!({"topic": "t", "keep": [1, 2]})),
            None,
            &Audit::new("alice", "r-1"),
        )
        .await
        .unwrap();
    assert_eq!(created.outcome, Outcome::Created);
    // Metadata only: the generation stays.
    let relabelled = json!({"name": "shop.orders", "description": "all orders"});
    store
        .apply(
            &key,
            ObjectInput::new(relabelled.clone(), json!({"topic": "t", "keep": [1, 2]})),
            None,
            &Audit::new("bob", "r-2"),
        )
        .await
        .unwrap();
    // The spec: generation 2.
    let updated = store
        .apply(
            &key,
            ObjectInput::new(relabelled.clone(), json!({"topic": "u", "keep": [1, 2]})),
            None,
            &Audit::new("bob", "r-3"),
        )
        .await
        .unwrap();
    assert_eq!(updated.object.generation, 2);
    store
        .set_status(
            &key,
            json!({"phase": "Ready"}),
            None,
            &Audit::new("controller", "r-4"),
        )
        .await
        .unwrap();
    store
        .set_status(
            &key,
            json!({"phase": "Failed", "reason": "x"}),
            None,
            &Audit::new("controller", "r-5"),
        )
        .await
        .unwrap();
    store
        .delete(&key, None, &Audit::new("carol", "r-6"))
        .await
        .unwrap()
        .unwrap();

    let entries = all_entries(&store).await;
    let summary: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.seq,
                e.actor.as_str(),
                e.request_id.as_str(),
                e.action.as_str(),
                e.outcome.as_str(),
                e.generation,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "alice", "r-1", "apply", "created", Some(1)),
            (2, "bob", "r-2", "apply", "updated", Some(1)),
            (3, "bob", "r-3", "apply", "updated", Some(2)),
            (4, "controller", "r-4", "status", "updated", Some(2)),
            (5, "controller", "r-5", "status", "updated", Some(2)),
            (6, "carol", "r-6", "delete", "deleted", Some(2)),
        ]
    );
    for entry in &entries {
        assert_eq!(
            (
                entry.kind.as_str(),
                entry.team.as_str(),
                entry.name.as_str()
            ),
            ("Dataset", "", "shop.orders")
        );
    }
    let diffs: Vec<&Value> = entries.iter().map(|e| &e.diff).collect();
    assert_eq!(
        diffs,
        [
            &json!({"before": null, "after": {"metadata": metadata, "spec": {"topic": "t", "keep": [1, 2]}}}),
            &json!({"before": {"metadata": {"description": "orders"}}, "after": {"metadata": {"description": "all orders"}}}),
            &json!({"before": {"spec": {"topic": "t"}}, "after": {"spec": {"topic": "u"}}}),
            &json!({"before": {}, "after": {"status": {"phase": "Ready"}}}),
            &json!({"before": {"status": {"phase": "Ready"}}, "after": {"status": {"phase": "Failed", "reason": "x"}}}),
            &json!({"before": {"metadata": relabelled, "spec": {"topic": "u", "keep": [1, 2]}, "status": {"phase": "Failed", "reason": "x"}}, "after": null}),
        ]
    );
    // The chain: consecutive, linked, timestamps in order and the entry time is the write's.
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1);
        assert_eq!(pair[1].prev_hash, pair[0].hash);
        assert!(pair[1].time >= pair[0].time);
    }
    assert_eq!(entries[0].time, created.object.updated_at);
    assert!(entries.iter().all(|e| e.hash.len() == 64));
    assert_intact(&store.verify_audit().await.unwrap(), 6);

    // A re-opened store verifies and continues the same chain.
    store.close().await;
    let again = db.connect().await;
    assert_intact(&again.verify_audit().await.unwrap(), 6);
    again
        .apply(&key, input("shop.orders", json!({})), None, &by("dave"))
        .await
        .unwrap();
    let last = all_entries(&again).await.pop().unwrap();
    assert_eq!((last.seq, last.outcome.as_str()), (7, "created"));
    assert_eq!(last.prev_hash, entries[5].hash);
    assert_intact(&again.verify_audit().await.unwrap(), 7);
}

async fn refused_and_idle_writes_are_not_recorded(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "p");
    let product = |claim: &str| {
        ObjectInput::new(json!({"name": "p", "team": "team-a"}), json!({"c": claim}))
            .with_claims(vec![claim.to_owned()])
    };
    let created = store
        .apply(&key, product("t1"), None, &by("alice"))
        .await
        .unwrap();
    let v1 = created.object.resource_version;
    // Unchanged apply, same status twice (one entry), deleting nothing.
    let unchanged = store
        .apply(&key, product("t1"), None, &by("alice"))
        .await
        .unwrap();
    assert_eq!(unchanged.outcome, Outcome::Unchanged);
    let with_status = store
        .set_status(&key, json!({"phase": "Live"}), None, &by("controller"))
        .await
        .unwrap();
    store
        .set_status(&key, json!({"phase": "Live"}), None, &by("controller"))
        .await
        .unwrap();
    assert_eq!(
        store
            .delete(&ObjectKey::dataset("ghost"), None, &by("alice"))
            .await
            .unwrap(),
        None
    );
    // Refused: stale precondition on each kind of write, a claim held by another object.
    assert!(
        store
            .apply(&key, product("t2"), Some(v1), &by("mallory"))
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(
        store
            .set_status(&key, json!({}), Some(v1), &by("mallory"))
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert!(
        store
            .delete(&key, Some(v1), &by("mallory"))
            .await
            .unwrap_err()
            .is_conflict()
    );
    let other = ObjectKey::data_product("team-a", "q");
    let taken = store
        .apply(
            &other,
            ObjectInput::new(json!({"name": "q"}), json!({})).with_claims(vec!["t1".into()]),
            None,
            &by("mallory"),
        )
        .await;
    assert!(
        matches!(taken, Err(StoreError::ClaimTaken { .. })),
        "{taken:?}"
    );
    // Without an actor nothing is written at all.
    let anonymous = Audit::new("", "r");
    assert!(matches!(
        store.apply(&other, product("t9"), None, &anonymous).await,
        Err(StoreError::InvalidAuditEntry { .. })
    ));
    assert_eq!(store.get(&other).await.unwrap(), None);

    let entries = all_entries(&store).await;
    let actions: Vec<_> = entries
        .iter()
        .map(|e| (e.seq, e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [(1, "apply", "alice"), (2, "status", "controller")]
    );
    assert_eq!(
        store.get(&key).await.unwrap().unwrap().resource_version,
        with_status.resource_version
    );
    assert_intact(&store.verify_audit().await.unwrap(), 2);
}

async fn other_actions_are_appended(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "p");
    store
        .apply(
            &key,
            ObjectInput::new(json!({"name": "p"}), json!({})),
            None,
            &by("alice"),
        )
        .await
        .unwrap();
    let approver = Audit::new("bob", "r-approve");
    let approval = store
        .append_audit(
            AuditInput::new(&approver, "approve", "approved")
                .with_object(&key)
                .with_generation(Some(1))
                .with_diff(json!({"comment": "ok"})),
        )
        .await
        .unwrap();
    assert_eq!(approval.seq, 2);
    assert_eq!(
        (
            approval.kind.as_str(),
            approval.team.as_str(),
            approval.name.as_str()
        ),
        ("DataProduct", "team-a", "p")
    );
    let token = store
        .append_audit(
            AuditInput::new(&by("admin"), "token.create", "created")
                .with_subject("ApiToken", "team-a", "ci-bot"),
        )
        .await
        .unwrap();
    let verified = store
        .append_audit(AuditInput::new(&by("auditor"), "audit.verify", "succeeded"))
        .await
        .unwrap();
    assert_eq!((token.seq, verified.seq), (3, 4));
    assert_eq!(verified.diff, Value::Null);
    assert_eq!((verified.kind.as_str(), verified.generation), ("", None));
    assert_eq!(all_entries(&store).await[1..], [approval, token, verified]);
    for bad in [
        AuditInput::new(&by(""), "a", "b"),
        AuditInput::new(&by("x"), "", "b"),
        AuditInput::new(&by("x"), "a", ""),
    ] {
        assert!(matches!(
            store.append_audit(bad).await,
            Err(StoreError::InvalidAuditEntry { .. })
        ));
    }
    assert_intact(&store.verify_audit().await.unwrap(), 4);
}

async fn url_passwords_never_reach_the_log(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::target_cluster("shared-pg");
    let spec = |password: &str| json!({"type": "postgres", "url": format!("postgres://admin:{password}@db:5432/x")});
    for password in ["first-s3cret", "second-s3cret"] {
        store
            .apply(&key, input("shared-pg", spec(password)), None, &by("alice"))
            .await
            .unwrap();
    }
    store.delete(&key, None, &by("alice")).await.unwrap();
    let mut export = Vec::new();
    store
        .export_audit(&AuditQuery::default(), &mut export)
        .await
        .unwrap();
    let export = String::from_utf8(export).unwrap();
    assert!(!export.contains("s3cret"), "{export}");
    let entries = all_entries(&store).await;
    // A password change still shows as a change of the URL.
    assert_eq!(
        entries[1].diff,
        json!({
            "before": {"spec": {"url": "postgres://admin:redacted@db:5432/x"}},
            "after": {"spec": {"url": "postgres://admin:redacted@db:5432/x"}},
        })
    );
    assert_intact(&store.verify_audit().await.unwrap(), 3);
}

async fn the_log_is_append_only_in_the_database(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    let mut attempts = vec![
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 5",
        "DELETE FROM audit_head",
    ];
    if db.backend == Backend::Postgres {
        attempts.extend(["TRUNCATE audit_log", "TRUNCATE audit_head"]);
    }
    for sql in attempts {
        let result = sqlx::query(sql).execute(&pool).await;
        let err = result.expect_err(sql).to_string();
        assert!(
            err.contains("append-only") || err.contains("cannot be deleted"),
            "{sql}: {err}"
        );
    }
    assert_intact(&store.verify_audit().await.unwrap(), 5);
}

async fn altering_any_field_of_any_entry_is_detected(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    disable_append_only(db, &pool).await;
    let text_columns = [
        "time",
        "actor",
        "action",
        "kind",
        "team",
        "name",
        "request_id",
        "outcome",
        "diff",
        "prev_hash",
        "hash",
    ];
    for seq in 1..=5 {
        for column in text_columns {
            exec(
                &pool,
                &format!("UPDATE audit_log SET {column} = {column} || 'x' WHERE seq = {seq}"),
            )
            .await;
            assert_eq!(
                first_break(&store).await,
                Some((seq, AuditBreakReason::Altered)),
                "{column} of entry {seq}"
            );
            exec(
                &pool,
                &format!(
                    "UPDATE audit_log SET {column} = substr({column}, 1, length({column}) - 1) \
                     WHERE seq = {seq}"
                ),
            )
            .await;
        }
        let original: Option<i64> =
            sqlx::query_scalar("SELECT generation FROM audit_log WHERE seq = $1")
                .bind(seq)
                .fetch_one(&pool)
                .await
                .unwrap();
        for altered in ["generation + 1", "NULL"] {
            exec(
                &pool,
                &format!("UPDATE audit_log SET generation = {altered} WHERE seq = {seq}"),
            )
            .await;
            assert_eq!(
                first_break(&store).await,
                Some((seq, AuditBreakReason::Altered)),
                "generation of entry {seq} set to {altered}"
            );
            sqlx::query("UPDATE audit_log SET generation = $1 WHERE seq = $2")
                .bind(original)
                .bind(seq)
                .execute(&pool)
                .await
                .unwrap();
        }
        // A diff with the same meaning but other text is an alteration too.
        exec(
            &pool,
            &format!("UPDATE audit_log SET diff = ' ' || diff WHERE seq = {seq}"),
        )
        .await;
        assert_eq!(
            first_break(&store).await,
            Some((seq, AuditBreakReason::Altered))
        );
        exec(
            &pool,
            &format!("UPDATE audit_log SET diff = substr(diff, 2) WHERE seq = {seq}"),
        )
        .await;
        assert_intact(&store.verify_audit().await.unwrap(), 5);
    }
}

async fn deleting_a_middle_entry_is_detected(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    disable_append_only(db, &pool).await;
    exec(&pool, "DELETE FROM audit_log WHERE seq = 3").await;
    let verification = store.verify_audit().await.unwrap();
    assert!(!verification.ok);
    assert_eq!(verification.entries, 4);
    let broken = verification.first_broken.unwrap();
    assert_eq!((broken.seq, broken.reason), (3, AuditBreakReason::Missing));
    // Deleting the first one, too: it is the first break now.
    exec(&pool, "DELETE FROM audit_log WHERE seq = 1").await;
    assert_eq!(
        first_break(&store).await,
        Some((1, AuditBreakReason::Missing))
    );
}

async fn truncating_the_tail_is_detected_and_stays_visible(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    disable_append_only(db, &pool).await;
    exec(&pool, "DELETE FROM audit_log WHERE seq = 5").await;
    assert_eq!(
        first_break(&store).await,
        Some((5, AuditBreakReason::Truncated))
    );
    exec(&pool, "DELETE FROM audit_log WHERE seq >= 4").await;
    assert_eq!(
        first_break(&store).await,
        Some((4, AuditBreakReason::Truncated))
    );
    // A later change chains to the signed head, so the cut stays visible as a gap.
    let key = ObjectKey::dataset("after.cut");
    store
        .apply(&key, input("after.cut", json!({})), None, &by("alice"))
        .await
        .unwrap();
    let entries = all_entries(&store).await;
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 6]
    );
    assert_eq!(
        first_break(&store).await,
        Some((4, AuditBreakReason::Missing))
    );
    // Everything gone.
    exec(&pool, "DELETE FROM audit_log").await;
    let verification = store.verify_audit().await.unwrap();
    assert_eq!(verification.entries, 0);
    assert_eq!(
        verification.first_broken.map(|b| (b.seq, b.reason)),
        Some((1, AuditBreakReason::Truncated))
    );
}

async fn reordering_entries_is_detected(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    disable_append_only(db, &pool).await;
    // Swap entries 2 and 4.
    for sql in [
        "UPDATE audit_log SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
    ] {
        exec(&pool, sql).await;
    }
    assert_eq!(
        first_break(&store).await,
        Some((2, AuditBreakReason::Altered))
    );
    // Swapped back, all is well again.
    for sql in [
        "UPDATE audit_log SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_log SET seq = 2 WHERE seq = 4",
        "UPDATE audit_log SET seq = 4 WHERE seq = 1000",
    ] {
        exec(&pool, sql).await;
    }
    assert_intact(&store.verify_audit().await.unwrap(), 5);
    // Renumbering every entry (shifting the log) is caught at the first.
    exec(&pool, "UPDATE audit_log SET seq = seq + 10").await;
    assert_eq!(
        first_break(&store).await,
        Some((1, AuditBreakReason::Missing))
    );
}

async fn altering_the_head_is_detected_and_refuses_writes(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    let key = ObjectKey::dataset("refused");
    for (alter, restore) in [
        ("seq = seq - 1", "seq = seq + 1"),
        ("seq = seq + 1", "seq = seq - 1"),
        (
            "hash = (SELECT hash FROM audit_log WHERE seq = 4)",
            "hash = (SELECT hash FROM audit_log WHERE seq = 5)",
        ),
        ("hmac = hmac || '00'", "hmac = substr(hmac, 1, 64)"),
    ] {
        exec(&pool, &format!("UPDATE audit_head SET {alter}")).await;
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM audit_head")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(
            first_break(&store).await,
            Some((seq, AuditBreakReason::HeadSignatureInvalid)),
            "head altered: {alter}"
        );
        let refused = store
            .apply(&key, input("refused", json!({})), None, &by("alice"))
            .await;
        assert!(
            matches!(refused, Err(StoreError::AuditHeadInvalid { .. })),
            "{refused:?}"
        );
        assert!(refused.unwrap_err().is_audit_failure());
        assert_eq!(store.get(&key).await.unwrap(), None);
        exec(&pool, &format!("UPDATE audit_head SET {restore}")).await;
        assert_intact(&store.verify_audit().await.unwrap(), 5);
    }
    store
        .apply(&key, input("refused", json!({})), None, &by("alice"))
        .await
        .unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 6);
}

async fn deleting_the_head_is_detected_and_refuses_writes(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    disable_append_only(db, &pool).await;
    exec(&pool, "DELETE FROM audit_head").await;
    assert_eq!(
        first_break(&store).await,
        Some((5, AuditBreakReason::HeadMissing))
    );
    let refused = store
        .append_audit(AuditInput::new(&by("alice"), "x", "y"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AuditHeadInvalid { .. })),
        "{refused:?}"
    );
    assert_eq!(all_entries(&store).await.len(), 5);
}

async fn another_key_cannot_verify_or_extend_the_log(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let other = Store::connect(&db.url, AuditKey::from_secret(b"another secret").unwrap())
        .await
        .unwrap();
    assert_eq!(
        first_break(&other).await,
        Some((5, AuditBreakReason::HeadSignatureInvalid))
    );
    let key = ObjectKey::dataset("by.other.key");
    let refused = other
        .apply(&key, input("by.other.key", json!({})), None, &by("alice"))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AuditHeadInvalid { .. })),
        "{refused:?}"
    );
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_intact(&store.verify_audit().await.unwrap(), 5);
}

async fn a_foreign_head_or_unsigned_entries_are_detected(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    let head = |pool: &AnyPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (i64, String, String)>("SELECT seq, hash, hmac FROM audit_head")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let set_head = |pool: &AnyPool, (seq, hash, hmac): (i64, String, String)| {
        let pool = pool.clone();
        async move {
            sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, hmac = $3")
                .bind(seq)
                .bind(hash)
                .bind(hmac)
                .execute(&pool)
                .await
                .unwrap();
        }
    };
    // A head validly signed with the same key, but of another log at the same length.
    let other_db = TestDb::new(db.backend).await;
    let other = other_db.connect().await;
    for i in 0..5 {
        other
            .append_audit(AuditInput::new(&by("elsewhere"), format!("a{i}"), "ok"))
            .await
            .unwrap();
    }
    let own = head(&pool).await;
    set_head(&pool, head(&raw(&other_db).await).await).await;
    assert_eq!(
        first_break(&store).await,
        Some((5, AuditBreakReason::HeadMismatch))
    );
    set_head(&pool, own.clone()).await;

    // The head saved at entry 5 put back over a log of 7: entries 6 and 7 are unsigned.
    let key = ObjectKey::dataset("more");
    let before = head(&pool).await;
    store
        .apply(&key, input("more", json!({})), None, &by("alice"))
        .await
        .unwrap();
    store
        .apply(&key, input("more", json!({"v": 2})), None, &by("alice"))
        .await
        .unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 7);
    set_head(&pool, before).await;
    assert_eq!(
        first_break(&store).await,
        Some((6, AuditBreakReason::Unsigned))
    );
}

async fn rolling_back_to_a_saved_head_is_not_detected(db: &TestDb) {
    // The documented limit: someone who saved an old head (it is not secret) and can write
    // the database can cut the log back to it, and verification cannot tell.
    let store = db.connect().await;
    five_entries(&store).await;
    let pool = raw(db).await;
    let (seq, hash, hmac) =
        sqlx::query_as::<_, (i64, String, String)>("SELECT seq, hash, hmac FROM audit_head")
            .fetch_one(&pool)
            .await
            .unwrap();
    store
        .append_audit(AuditInput::new(&by("alice"), "later", "ok"))
        .await
        .unwrap();
    disable_append_only(db, &pool).await;
    exec(&pool, "DELETE FROM audit_log WHERE seq = 6").await;
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, hmac = $3")
        .bind(seq)
        .bind(hash)
        .bind(hmac)
        .execute(&pool)
        .await
        .unwrap();
    assert_intact(&store.verify_audit().await.unwrap(), 5);
}

async fn queries_filter_by_object_actor_time_and_page(db: &TestDb) {
    let store = db.connect().await;
    let a = ObjectKey::data_product("team-a", "orders");
    let b = ObjectKey::data_product("team-b", "orders");
    let d = ObjectKey::dataset("orders");
    for round in 0..4 {
        for (key, actor) in [(&a, "alice"), (&b, "bob"), (&d, "alice")] {
            store
                .apply(
                    key,
                    ObjectInput::new(json!({"name": key.name()}), json!({"round": round})),
                    None,
                    &by(actor),
                )
                .await
                .unwrap();
        }
    }
    let all = all_entries(&store).await;
    assert_eq!(all.len(), 12);
    let seqs = |entries: &[AuditEntry]| entries.iter().map(|e| e.seq).collect::<Vec<_>>();
    let expect = |keep: &dyn Fn(&AuditEntry) -> bool| {
        all.iter()
            .filter(|e| keep(e))
            .map(|e| e.seq)
            .collect::<Vec<_>>()
    };
    let query = |q: AuditQuery| {
        let store = store.clone();
        async move { store.audit_entries(&q).await.unwrap() }
    };

    let of_a = query(AuditQuery::for_object(&a)).await;
    assert_eq!(seqs(&of_a), [1, 4, 7, 10]);
    assert!(
        of_a.iter()
            .all(|e| e.team == "team-a" && e.name == "orders")
    );
    let named = query(AuditQuery {
        name: Some("orders".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(named.len(), 12);
    let products = query(AuditQuery {
        kind: Some("DataProduct".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(
        seqs(&products),
        expect(&|e: &AuditEntry| e.kind == "DataProduct")
    );
    let team_b = query(AuditQuery {
        team: Some("team-b".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(seqs(&team_b), [2, 5, 8, 11]);
    let alice = query(AuditQuery {
        actor: Some("alice".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(seqs(&alice), expect(&|e: &AuditEntry| e.actor == "alice"));
    assert_eq!(alice.len(), 8);
    let alice_datasets = query(AuditQuery {
        actor: Some("alice".into()),
        kind: Some("Dataset".into()),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(seqs(&alice_datasets), [3, 6, 9, 12]);
    assert!(
        query(AuditQuery {
            actor: Some("nobody".into()),
            ..AuditQuery::default()
        })
        .await
        .is_empty()
    );

    // Time: since is inclusive, until exclusive.
    let (since, until) = (all[3].time, all[8].time);
    let window = query(AuditQuery {
        since: Some(since),
        until: Some(until),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(
        seqs(&window),
        expect(&|e: &AuditEntry| e.time >= since && e.time < until)
    );
    assert!(window.iter().any(|e| e.seq == 4));
    let later = query(AuditQuery {
        since: Some(all[11].time),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(
        seqs(&later),
        expect(&|e: &AuditEntry| e.time >= all[11].time)
    );
    assert!(
        query(AuditQuery {
            until: Some(all[0].time),
            ..AuditQuery::default()
        })
        .await
        .is_empty()
    );

    // Pages: after_seq and limit, also combined with a filter.
    let page = query(AuditQuery {
        after_seq: Some(4),
        limit: 3,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(seqs(&page), [5, 6, 7]);
    let page = query(AuditQuery {
        actor: Some("bob".into()),
        after_seq: Some(5),
        limit: 1,
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(seqs(&page), [8]);
    assert_eq!(
        query(AuditQuery {
            limit: 0,
            ..AuditQuery::default()
        })
        .await
        .len(),
        12
    );
    assert_eq!(
        AuditQuery {
            limit: 5000,
            ..AuditQuery::default()
        }
        .effective_limit(),
        AuditQuery::MAX_LIMIT
    );
}

async fn export_writes_json_lines_in_order(db: &TestDb) {
    let store = db.connect().await;
    five_entries(&store).await;
    for i in 0..20 {
        store
            .append_audit(AuditInput::new(&by("bulk"), "noop", format!("n{i}")))
            .await
            .unwrap();
    }
    let all = all_entries(&store).await;
    let mut out = Vec::new();
    let written = store
        .export_audit(
            &AuditQuery {
                limit: 2,
                ..AuditQuery::default()
            },
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(written, 25);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 25);
    let parsed: Vec<AuditEntry> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(parsed, all);
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "seq",
            "time",
            "actor",
            "action",
            "kind",
            "team",
            "name",
            "generation",
            "requestId",
            "outcome",
            "diff",
            "prevHash",
            "hash"
        ]
    );
    // The time exactly as stored (microseconds, Z).
    let time = first["time"].as_str().unwrap();
    assert_eq!(time.len(), "2025-01-01T00:00:00.000000Z".len(), "{time}");
    assert!(time.ends_with('Z'));

    // Filtered, from a position.
    let mut out = Vec::new();
    let written = store
        .export_audit(
            &AuditQuery {
                actor: Some("bulk".into()),
                after_seq: Some(20),
                ..AuditQuery::default()
            },
            &mut out,
        )
        .await
        .unwrap();
    assert_eq!(written, 5);
    let seqs: Vec<i64> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<AuditEntry>(l).unwrap().seq)
        .collect();
    assert_eq!(seqs, [21, 22, 23, 24, 25]);
}

async fn a_failing_audit_insert_refuses_the_change(db: &TestDb) {
    let store = db.connect().await;
    let existing = ObjectKey::data_product("team-a", "existing");
    let product = |spec: Value| {
        ObjectInput::new(json!({"name": "existing", "team": "team-a"}), spec)
            .with_claims(vec!["claim-1".into()])
    };
    let v1 = store
        .apply(&existing, product(json!({"v": 1})), None, &by("alice"))
        .await
        .unwrap()
        .object;
    let pool = raw(db).await;
    // A real fault of the database: every insert into the log fails.
    match db.backend {
        Backend::Sqlite => {
            exec(
                &pool,
                "CREATE TRIGGER audit_test_fail BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
            )
            .await
        }
        Backend::Postgres => {
            exec(
                &pool,
                "CREATE FUNCTION audit_test_fail() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
            )
            .await;
            exec(
                &pool,
                "CREATE TRIGGER audit_test_fail BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_test_fail()",
            )
            .await;
        }
    }
    #[track_caller]
    fn assert_refused<T: std::fmt::Debug>(result: Result<T, StoreError>) {
        match result {
            Err(err @ StoreError::AuditWrite { .. }) => {
                assert!(err.is_audit_failure());
                let source = std::error::Error::source(&err).unwrap().to_string();
                assert!(source.contains("audit log unavailable"), "{source}");
            }
            other => panic!("expected an audit write failure, got {other:?}"),
        }
    }
    let dataset = ObjectKey::dataset("new.ds");
    assert_refused(
        store
            .apply(
                &dataset,
                input("new.ds", json!({})).with_schema_version(json!({"type": "object"})),
                None,
                &by("alice"),
            )
            .await,
    );
    assert_refused(
        store
            .apply(
                &ObjectKey::data_product("team-b", "other"),
                ObjectInput::new(json!({"name": "other"}), json!({}))
                    .with_claims(vec!["claim-2".into()]),
                None,
                &by("alice"),
            )
            .await,
    );
    assert_refused(
        store
            .apply(&existing, product(json!({"v": 2})), None, &by("alice"))
            .await,
    );
    assert_refused(
        store
            .set_status(&existing, json!({"phase": "Live"}), None, &by("alice"))
            .await,
    );
    assert_refused(store.delete(&existing, None, &by("alice")).await);
    assert_refused(
        store
            .append_audit(AuditInput::new(&by("alice"), "x", "y"))
            .await,
    );
    // Nothing of any of them was stored.
    assert_eq!(store.get(&dataset).await.unwrap(), None);
    assert!(store.schema_versions("new.ds").await.unwrap().is_empty());
    assert_eq!(store.get(&existing).await.unwrap(), Some(v1.clone()));
    assert_eq!(all_entries(&store).await.len(), 1);

    // The same when the head cannot be moved.
    drop_test_trigger(db, &pool, "audit_log").await;
    match db.backend {
        Backend::Sqlite => {
            exec(
                &pool,
                "CREATE TRIGGER audit_test_fail BEFORE UPDATE ON audit_head \
                 BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
            )
            .await
        }
        Backend::Postgres => {
            exec(
                &pool,
                "CREATE TRIGGER audit_test_fail BEFORE UPDATE ON audit_head \
                 FOR EACH ROW EXECUTE FUNCTION audit_test_fail()",
            )
            .await
        }
    }
    assert_refused(
        store
            .apply(&existing, product(json!({"v": 3})), None, &by("alice"))
            .await,
    );
    assert_eq!(store.get(&existing).await.unwrap(), Some(v1));
    assert_eq!(all_entries(&store).await.len(), 1);

    // Repaired: writes go through, and the refused ones left no trace in the chain.
    drop_test_trigger(db, &pool, "audit_head").await;
    store
        .apply(&existing, product(json!({"v": 4})), None, &by("alice"))
        .await
        .unwrap();
    let seqs: Vec<i64> = all_entries(&store).await.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2]);
    assert_intact(&store.verify_audit().await.unwrap(), 2);
}

async fn drop_test_trigger(db: &TestDb, pool: &AnyPool, table: &str) {
    match db.backend {
        Backend::Sqlite => exec(pool, "DROP TRIGGER audit_test_fail").await,
        Backend::Postgres => exec(pool, &format!("DROP TRIGGER audit_test_fail ON {table}")).await,
    }
}

async fn concurrent_writers_build_one_chain(db: &TestDb) {
    // Two stores (like two replicas) on one database, 20 writers at once, some on one object.
    let stores = [Arc::new(db.connect().await), Arc::new(db.connect().await)];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            let (key, name) = if i < 15 {
                (ObjectKey::dataset(format!("c{i}")), format!("c{i}"))
            } else {
                (ObjectKey::dataset("shared"), "shared".to_owned())
            };
            store
                .apply(
                    &key,
                    input(&name, json!({"writer": i})),
                    None,
                    &by(&format!("w{i}")),
                )
                .await
                .unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let verification = stores[0].verify_audit().await.unwrap();
    assert_intact(&verification, 20);
    let entries = all_entries(&stores[1]).await;
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=20).collect::<Vec<_>>()
    );
    let actors: BTreeSet<&str> = entries.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors.len(), 20);
    let shared: Vec<&AuditEntry> = entries.iter().filter(|e| e.name == "shared").collect();
    assert_eq!(shared[0].outcome, "created");
    assert!(shared[1..].iter().all(|e| e.outcome == "updated"));
}
