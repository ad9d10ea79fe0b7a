//! The metadata store (`sluice-store`): one suite, run against an SQLite file and against a
//! fresh PostgreSQL database of the local services — every test below runs once per backend
//! (`store::sqlite::…` and `store::postgres::…`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use sluice_store::{
    Applied, Audit, AuditKey, AuditQuery, Backend, Kind, ListQuery, ObjectInput, ObjectKey,
    Outcome, Store, StoreError, StoredObject,
};

// ---------------------------------------------------------------------------------------------
// Fixture: an empty database per test.

/// The audit key of every test store.
pub(crate) fn test_audit_key() -> AuditKey {
    AuditKey::from_secret(b"sluice-test-audit-secret").unwrap()
}

/// Who the changes of these tests are by.
pub(crate) fn audit() -> Audit {
    Audit::new("store-test", "test-request")
}

/// An empty database of one backend, removed when dropped (unless `SLUICE_TEST_KEEP` is set).
pub(crate) struct TestDb {
    pub(crate) backend: Backend,
    pub(crate) url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// The SQLite file lives in this directory of its own.
    Directory(PathBuf),
    /// A database created on the admin connection.
    Database { admin_url: String, name: String },
}

impl TestDb {
    pub(crate) async fn new(backend: Backend) -> TestDb {
        let id = format!("{:016x}", rand::random::<u64>());
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("sluice-store-{id}"));
                // A directory that does not exist yet: the store creates it.
                let file = dir.join("nested").join("dir").join("sluice.db");
                TestDb {
                    backend,
                    url: format!("sqlite://{}?mode=rwc", file.display()),
                    cleanup: Cleanup::Directory(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = sluice_tests::services().postgres_url.clone();
                let name = format!("store_{id}");
                let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
                sqlx::query(sluice_tests::sql_with_ident("CREATE DATABASE ", &name, ""))
                    .execute(&admin)
                    .await
                    .unwrap();
                admin.close().await;
                TestDb {
                    backend,
                    url: with_database(&admin_url, &name),
                    cleanup: Cleanup::Database { admin_url, name },
                }
            }
        }
    }

    /// A new store on this database (migrating it if needed).
    pub(crate) async fn connect(&self) -> Store {
        let store = Store::connect(&self.url, test_audit_key()).await.unwrap();
        assert_eq!(store.backend(), self.backend);
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::env::var_os("SLUICE_TEST_KEEP").is_some() {
            eprintln!("SLUICE_TEST_KEEP set: keeping {}", self.url);
            return;
        }
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                // Drop may run while a runtime shuts down: clean up on a runtime of its own.
                let (admin_url, database) = (admin_url.clone(), name.clone());
                let cleanup = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a current-thread runtime");
                    runtime.block_on(async {
                        let admin = sqlx::PgPool::connect(&admin_url).await?;
                        let sql = sluice_tests::sql_with_ident(
                            "DROP DATABASE IF EXISTS ",
                            &database,
                            " WITH (FORCE)",
                        );
                        sqlx::query(sql).execute(&admin).await?;
                        admin.close().await;
                        Ok::<_, sqlx::Error>(())
                    })
                });
                match cleanup.join() {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => eprintln!("dropping test database {name}: {err}"),
                    Err(_) => eprintln!("dropping test database {name} panicked"),
                }
            }
        }
    }
}

/// `url` with its database (path) replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority = base.find("://").expect("a URL with a scheme") + 3;
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let mut out = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

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
    starts_empty_and_migrates,
    two_stores_migrate_one_fresh_database_at_once,
    create_get_list_round_trip,
    generation_changes_only_with_the_spec,
    stale_precondition_conflicts,
    precondition_on_a_missing_object_conflicts,
    concurrent_writers_with_one_precondition_one_wins,
    concurrent_creates_of_one_key_never_fail,
    resource_versions_are_unique_and_never_reused,
    pagination_has_no_gaps_or_duplicates,
    list_filters_by_team_and_name_prefix,
    delete_with_and_without_precondition,
    status_writes_keep_the_generation,
    progress_only_status_writes_are_not_audited,
    schema_versions_are_appended_only_on_change,
    concurrent_schema_changes_number_versions_without_gaps,
    reopening_keeps_the_data,
    claims_are_exclusive_and_follow_their_object,
);

// ---------------------------------------------------------------------------------------------
// Helpers.

fn input(name: &str, spec: Value) -> ObjectInput {
    ObjectInput::new(json!({"name": name}), spec)
}

fn product_input(team: &str, name: &str, spec: Value) -> ObjectInput {
    ObjectInput::new(json!({"name": name, "team": team}), spec)
}

async fn apply(store: &Store, key: &ObjectKey, input: ObjectInput) -> Applied {
    store.apply(key, input, None, &audit()).await.unwrap()
}

async fn list_all(store: &Store, kind: Kind, query: ListQuery) -> Vec<StoredObject> {
    let mut query = query;
    let mut items = Vec::new();
    loop {
        let page = store.list(kind, &query).await.unwrap();
        assert!(page.items.len() <= query.effective_limit() as usize);
        items.extend(page.items);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return items,
        }
    }
}

fn names(items: &[StoredObject]) -> Vec<String> {
    items.iter().map(|o| o.key.name().to_owned()).collect()
}

#[track_caller]
fn assert_conflict(
    result: Result<impl std::fmt::Debug, StoreError>,
    expected: Option<i64>,
    actual: Option<i64>,
) {
    match result {
        Err(StoreError::Conflict {
            expected: e,
            actual: a,
            ..
        }) => assert_eq!((e, a), (expected, actual), "conflict versions"),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The suite.

async fn starts_empty_and_migrates(db: &TestDb) {
    let store = db.connect().await;
    store.ping().await.unwrap();
    for kind in Kind::ALL {
        let page = store.list(kind, &ListQuery::default()).await.unwrap();
        assert!(page.items.is_empty(), "{kind} not empty");
        assert_eq!(page.next, None);
    }
    assert_eq!(store.get(&ObjectKey::dataset("x")).await.unwrap(), None);
    assert!(store.schema_versions("x").await.unwrap().is_empty());

    // Connecting again finds the migrations applied and changes nothing.
    let key = ObjectKey::target_cluster("shared-pg");
    let created = apply(
        &store,
        &key,
        input("shared-pg", json!({"type": "postgres"})),
    )
    .await;
    store.close().await;
    let again = db.connect().await;
    assert_eq!(again.get(&key).await.unwrap(), Some(created.object));
}

async fn two_stores_migrate_one_fresh_database_at_once(db: &TestDb) {
    // Like two replicas starting together against an empty database.
    let (a, b) = tokio::join!(
        Store::connect(&db.url, test_audit_key()),
        Store::connect(&db.url, test_audit_key())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let key = ObjectKey::dataset("shop.orders");
    let created = apply(&a, &key, input("shop.orders", json!({"topic": "t"}))).await;
    assert_eq!(b.get(&key).await.unwrap(), Some(created.object));
}

async fn create_get_list_round_trip(db: &TestDb) {
    let store = db.connect().await;
    let dataset = ObjectKey::dataset("shop.orders");
    let metadata = json!({"name": "shop.orders", "owner": "team-shop", "tags": ["orders"]});
    let spec = json!({"topic": "shop.orders", "kind": "stream", "schema": {"type": "object"}});
    let applied = store
        .apply(
            &dataset,
            ObjectInput::new(metadata.clone(), spec.clone()),
            None,
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(applied.outcome, Outcome::Created);
    assert_eq!(applied.schema_version, None);
    let created = applied.object;
    assert_eq!(created.key, dataset);
    assert_eq!(created.metadata, metadata);
    assert_eq!(created.spec, spec);
    assert_eq!(created.status, None);
    assert_eq!(created.generation, 1);
    assert!(created.resource_version > 0);
    assert_eq!(created.created_at, created.updated_at);
    assert_eq!(created.uid.get_version_num(), 4);

    let got = store.get(&dataset).await.unwrap().unwrap();
    assert_eq!(got, created);

    let document = got.document();
    assert_eq!(document["apiVersion"], "sluice.dev/v1alpha1");
    assert_eq!(document["kind"], "Dataset");
    assert_eq!(document["metadata"]["name"], "shop.orders");
    assert_eq!(document["metadata"]["owner"], "team-shop");
    assert_eq!(document["metadata"]["generation"], 1);
    assert_eq!(
        document["metadata"]["resourceVersion"],
        created.resource_version.to_string()
    );
    assert_eq!(document["metadata"]["uid"], created.uid.to_string());
    let created_at = document["metadata"]["creationTimestamp"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert_eq!(document["spec"], spec);
    assert!(document.get("status").is_none());

    // A product is addressed by team and name; the same name in another team is another object.
    let product = ObjectKey::data_product("team-payments", "orders-enriched");
    let p = apply(
        &store,
        &product,
        product_input("team-payments", "orders-enriched", json!({"sources": []})),
    )
    .await;
    assert_eq!(p.outcome, Outcome::Created);
    assert_eq!(p.object.key.team(), "team-payments");
    let other_team = ObjectKey::data_product("team-shop", "orders-enriched");
    assert_eq!(store.get(&other_team).await.unwrap(), None);
    // Kinds are separate namespaces.
    assert_eq!(
        store
            .get(&ObjectKey::target_cluster("shop.orders"))
            .await
            .unwrap(),
        None
    );

    let datasets = store
        .list(Kind::Dataset, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(datasets.items, vec![created]);
    assert_eq!(datasets.next, None);
    let products = store
        .list(Kind::DataProduct, &ListQuery::default())
        .await
        .unwrap();
    assert_eq!(products.items, vec![p.object]);
    let clusters = store
        .list(Kind::TargetCluster, &ListQuery::default())
        .await
        .unwrap();
    assert!(clusters.items.is_empty());
}

async fn generation_changes_only_with_the_spec(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "p");
    let spec = json!({"filter": "true", "key": "o.id"});
    let meta = json!({"name": "p", "team": "team-a", "description": "one"});
    let v1 = apply(&store, &key, ObjectInput::new(meta.clone(), spec.clone()))
        .await
        .object;

    // Identical apply: nothing written.
    let same = apply(&store, &key, ObjectInput::new(meta.clone(), spec.clone())).await;
    assert_eq!(same.outcome, Outcome::Unchanged);
    assert_eq!(same.object, v1);

    // Key order does not matter, nor do the server-maintained metadata fields of a document
    // read back and re-applied.
    let reordered_meta = json!({"description": "one", "team": "team-a", "name": "p"});
    let reordered_spec = json!({"key": "o.id", "filter": "true"});
    let same = apply(
        &store,
        &key,
        ObjectInput::new(reordered_meta, reordered_spec),
    )
    .await;
    assert_eq!(same.outcome, Outcome::Unchanged);
    let document = v1.document();
    let same = apply(
        &store,
        &key,
        ObjectInput::new(document["metadata"].clone(), document["spec"].clone()),
    )
    .await;
    assert_eq!(same.outcome, Outcome::Unchanged);
    assert_eq!(store.get(&key).await.unwrap().unwrap(), v1);

    // Metadata-only change: new resourceVersion, same generation.
    let meta2 = json!({"name": "p", "team": "team-a", "description": "two"});
    let v2 = apply(&store, &key, ObjectInput::new(meta2.clone(), spec.clone())).await;
    assert_eq!(v2.outcome, Outcome::Updated);
    let v2 = v2.object;
    assert_eq!(v2.generation, 1);
    assert!(v2.resource_version > v1.resource_version);
    assert_eq!(v2.metadata, meta2);
    assert_eq!((v2.uid, v2.created_at), (v1.uid, v1.created_at));
    assert!(v2.updated_at >= v1.updated_at);

    // Spec change: generation 2.
    let spec3 = json!({"filter": "o.amount > 0", "key": "o.id"});
    let v3 = apply(&store, &key, ObjectInput::new(meta2.clone(), spec3.clone())).await;
    assert_eq!(v3.outcome, Outcome::Updated);
    let v3 = v3.object;
    assert_eq!(v3.generation, 2);
    assert!(v3.resource_version > v2.resource_version);
    assert_eq!(v3.spec, spec3);

    // Spec and metadata together: one more generation.
    let v4 = apply(
        &store,
        &key,
        ObjectInput::new(json!({"name": "p", "team": "team-a"}), spec),
    )
    .await
    .object;
    assert_eq!(v4.generation, 3);
    assert_eq!(store.get(&key).await.unwrap().unwrap(), v4);
}

async fn stale_precondition_conflicts(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::dataset("crm.customers");
    let v1 = apply(&store, &key, input("crm.customers", json!({"v": 1})))
        .await
        .object;
    let v2 = store
        .apply(
            &key,
            input("crm.customers", json!({"v": 2})),
            Some(v1.resource_version),
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(v2.outcome, Outcome::Updated);
    let v2 = v2.object;

    // Writing on top of v1 again is refused and changes nothing.
    let stale = store
        .apply(
            &key,
            input("crm.customers", json!({"v": 3})),
            Some(v1.resource_version),
            &audit(),
        )
        .await;
    assert_conflict(stale, Some(v1.resource_version), Some(v2.resource_version));
    // Even when the write would be a no-op.
    let stale = store
        .apply(
            &key,
            input("crm.customers", json!({"v": 2})),
            Some(v1.resource_version),
            &audit(),
        )
        .await;
    assert_conflict(stale, Some(v1.resource_version), Some(v2.resource_version));
    assert_eq!(store.get(&key).await.unwrap().unwrap(), v2);

    // The current version is accepted, also for a no-op.
    let same = store
        .apply(
            &key,
            input("crm.customers", json!({"v": 2})),
            Some(v2.resource_version),
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(same.outcome, Outcome::Unchanged);

    let err = store
        .apply(
            &key,
            input("crm.customers", json!({"v": 9})),
            Some(1_000_000),
            &audit(),
        )
        .await
        .unwrap_err();
    assert!(err.is_conflict());
    assert!(err.to_string().contains("Dataset crm.customers"), "{err}");
}

/// Documented behaviour: a precondition on a missing object is a conflict (`actual: None`),
/// for apply, delete and set_status alike; without a precondition, set_status says NotFound
/// and delete returns `None`.
async fn precondition_on_a_missing_object_conflicts(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::target_cluster("ghost");
    let result = store
        .apply(&key, input("ghost", json!({})), Some(7), &audit())
        .await;
    assert_conflict(result, Some(7), None);
    assert_eq!(store.get(&key).await.unwrap(), None);

    assert_conflict(store.delete(&key, Some(7), &audit()).await, Some(7), None);
    assert_conflict(
        store
            .set_status(&key, json!({"phase": "Live"}), Some(7), &audit())
            .await,
        Some(7),
        None,
    );
    let err = store
        .set_status(&key, json!({"phase": "Live"}), None, &audit())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(store.delete(&key, None, &audit()).await.unwrap(), None);
    assert_eq!(store.get(&key).await.unwrap(), None);
}

async fn concurrent_writers_with_one_precondition_one_wins(db: &TestDb) {
    // Two stores (two pools, like two replicas) sharing the database.
    let stores = [db.connect().await, db.connect().await];
    let key = ObjectKey::data_product("team-a", "race");
    let base = apply(
        &stores[0],
        &key,
        product_input("team-a", "race", json!({"writer": -1})),
    )
    .await
    .object;

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = stores[i % 2].clone();
            let key = key.clone();
            let barrier = Arc::clone(&barrier);
            let rv = base.resource_version;
            tokio::spawn(async move {
                barrier.wait().await;
                let spec = json!({"writer": i});
                store
                    .apply(
                        &key,
                        product_input("team-a", "race", spec),
                        Some(rv),
                        &audit(),
                    )
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(applied) => winners.push(applied),
            Err(StoreError::Conflict {
                expected, actual, ..
            }) => conflicts.push((expected, actual)),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins");
    let winner = winners.pop().unwrap();
    assert_eq!(winner.outcome, Outcome::Updated);
    assert_eq!(winner.object.generation, 2);
    assert_eq!(conflicts.len(), 19);
    for (expected, actual) in conflicts {
        assert_eq!(expected, Some(base.resource_version));
        assert_eq!(actual, Some(winner.object.resource_version));
    }
    assert_eq!(store_get(&stores[1], &key).await, winner.object);
}

async fn store_get(store: &Store, key: &ObjectKey) -> StoredObject {
    store.get(key).await.unwrap().expect("object exists")
}

async fn concurrent_creates_of_one_key_never_fail(db: &TestDb) {
    let stores = [db.connect().await, db.connect().await];

    // The same document from 20 writers: one creates, the others find it unchanged.
    let key = ObjectKey::dataset("pay.payments");
    let outcomes = race(&stores, 20, |_, store| {
        let key = key.clone();
        async move {
            store
                .apply(
                    &key,
                    input("pay.payments", json!({"topic": "pay"})),
                    None,
                    &audit(),
                )
                .await
        }
    })
    .await;
    let created = outcomes
        .iter()
        .filter(|a| a.outcome == Outcome::Created)
        .count();
    let unchanged = outcomes
        .iter()
        .filter(|a| a.outcome == Outcome::Unchanged)
        .count();
    assert_eq!((created, unchanged), (1, 19));
    let uids: BTreeSet<_> = outcomes.iter().map(|a| a.object.uid).collect();
    assert_eq!(uids.len(), 1, "one incarnation");

    // Different specs from 20 writers: one creates, each other one updates in turn.
    let key = ObjectKey::dataset("pay.refunds");
    let outcomes = race(&stores, 20, |i, store| {
        let key = key.clone();
        async move {
            store
                .apply(
                    &key,
                    input("pay.refunds", json!({"writer": i})),
                    None,
                    &audit(),
                )
                .await
        }
    })
    .await;
    let created = outcomes
        .iter()
        .filter(|a| a.outcome == Outcome::Created)
        .count();
    let updated = outcomes
        .iter()
        .filter(|a| a.outcome == Outcome::Updated)
        .count();
    assert_eq!((created, updated), (1, 19));
    let generations: BTreeSet<_> = outcomes.iter().map(|a| a.object.generation).collect();
    assert_eq!(generations, (1..=20).collect(), "one generation per write");
    let last = outcomes
        .iter()
        .max_by_key(|a| a.object.resource_version)
        .unwrap();
    assert_eq!(store_get(&stores[0], &key).await, last.object);
}

/// Runs `n` writes at once (alternating between the stores); every write must succeed.
async fn race<F, Fut>(stores: &[Store; 2], n: usize, write: F) -> Vec<Applied>
where
    F: Fn(usize, Store) -> Fut,
    Fut: Future<Output = Result<Applied, StoreError>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let write = write(i, stores[i % 2].clone());
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                write.await
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap().expect("concurrent write failed"));
    }
    out
}

async fn resource_versions_are_unique_and_never_reused(db: &TestDb) {
    let stores = [db.connect().await, db.connect().await];
    let created = race(&stores, 30, |i, store| async move {
        let name = format!("cluster-{i:02}");
        store
            .apply(
                &ObjectKey::target_cluster(&name),
                input(&name, json!({"type": "redis"})),
                None,
                &audit(),
            )
            .await
    })
    .await;
    let versions: BTreeSet<_> = created.iter().map(|a| a.object.resource_version).collect();
    assert_eq!(
        versions.len(),
        30,
        "every write has its own resourceVersion"
    );
    let uids: BTreeSet<_> = created.iter().map(|a| a.object.uid).collect();
    assert_eq!(uids.len(), 30);

    // Delete and re-create: a new incarnation with a new uid and a resourceVersion never
    // seen before, so a precondition from the old incarnation cannot match the new one.
    let store = &stores[0];
    let key = ObjectKey::target_cluster("cluster-00");
    let old = store_get(store, &key).await;
    store.delete(&key, None, &audit()).await.unwrap().unwrap();
    let new = apply(store, &key, input("cluster-00", json!({"type": "redis"}))).await;
    assert_eq!(new.outcome, Outcome::Created);
    assert_eq!(new.object.generation, 1);
    assert_ne!(new.object.uid, old.uid);
    assert!(new.object.resource_version > *versions.last().unwrap());
    let stale = store
        .apply(
            &key,
            input("cluster-00", json!({"type": "postgres"})),
            Some(old.resource_version),
            &audit(),
        )
        .await;
    assert_conflict(
        stale,
        Some(old.resource_version),
        Some(new.object.resource_version),
    );
}

async fn pagination_has_no_gaps_or_duplicates(db: &TestDb) {
    let stores = [db.connect().await, db.connect().await];
    let teams = ["team-a", "team-b", "team-c"];
    let mut expected = Vec::new();
    for i in 0..250 {
        expected.push((teams[i % 3].to_owned(), format!("product-{i:03}")));
    }
    for chunk in expected.chunks(50) {
        let chunk = chunk.to_vec();
        race(&stores, chunk.len(), |i, store| {
            let (team, name) = chunk[i].clone();
            async move {
                store
                    .apply(
                        &ObjectKey::data_product(&team, &name),
                        product_input(&team, &name, json!({"i": i})),
                        None,
                        &audit(),
                    )
                    .await
            }
        })
        .await;
    }
    expected.sort();
    let store = &stores[0];

    let mut query = ListQuery {
        limit: 100,
        ..ListQuery::default()
    };
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    loop {
        let page = store.list(Kind::DataProduct, &query).await.unwrap();
        sizes.push(page.items.len());
        seen.extend(
            page.items
                .iter()
                .map(|o| (o.key.team().to_owned(), o.key.name().to_owned())),
        );
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, vec![100, 100, 50]);
    assert_eq!(seen, expected, "ordered by (team, name), each exactly once");

    // An exact multiple of the page size ends without an empty page.
    let team_a: Vec<_> = expected.iter().filter(|(t, _)| t == "team-a").collect();
    assert_eq!(team_a.len(), 84);
    let first = store
        .list(
            Kind::DataProduct,
            &ListQuery {
                team: Some("team-a".to_owned()),
                limit: 84,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 84);
    assert_eq!(first.next, None);

    // A filtered walk with a small page.
    let walked = list_all(
        store,
        Kind::DataProduct,
        ListQuery {
            team: Some("team-b".to_owned()),
            limit: 7,
            ..ListQuery::default()
        },
    )
    .await;
    let want: Vec<_> = expected
        .iter()
        .filter(|(t, _)| t == "team-b")
        .map(|(_, n)| n.clone())
        .collect();
    assert_eq!(names(&walked), want);

    // Limits: 0 is the default (100), more than 1000 is capped; a foreign cursor is refused.
    let page = store
        .list(
            Kind::DataProduct,
            &ListQuery {
                limit: 0,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 100);
    let page = store
        .list(
            Kind::DataProduct,
            &ListQuery {
                limit: 5000,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next), (250, None));
    let err = store
        .list(
            Kind::DataProduct,
            &ListQuery {
                after: Some("not-a-cursor".to_owned()),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
}

async fn list_filters_by_team_and_name_prefix(db: &TestDb) {
    let store = db.connect().await;
    let datasets = [
        "shop.orders",
        "shop.order_items",
        "shop_orders",
        "shopxorders",
        "shop-orders",
        "Shop.upper",
        "crm.customers",
        "shop%",
    ];
    for name in datasets {
        apply(
            &store,
            &ObjectKey::dataset(name),
            input(name, json!({"topic": name})),
        )
        .await;
    }
    for (team, name) in [("team-a", "one"), ("team-a", "two"), ("team-b", "one")] {
        apply(
            &store,
            &ObjectKey::data_product(team, name),
            product_input(team, name, json!({})),
        )
        .await;
    }
    apply(
        &store,
        &ObjectKey::target_cluster("shop-pg"),
        input("shop-pg", json!({"type": "postgres"})),
    )
    .await;

    let by_prefix = |prefix: &str| ListQuery {
        name_prefix: Some(prefix.to_owned()),
        ..ListQuery::default()
    };
    // Byte order on both backends: uppercase before lowercase, '-' < '.' < '_'.
    let all = list_all(&store, Kind::Dataset, ListQuery::default()).await;
    assert_eq!(
        names(&all),
        [
            "Shop.upper",
            "crm.customers",
            "shop%",
            "shop-orders",
            "shop.order_items",
            "shop.orders",
            "shop_orders",
            "shopxorders",
        ]
    );
    let list = |query| list_all(&store, Kind::Dataset, query);
    assert_eq!(
        names(&list(by_prefix("shop.")).await),
        ["shop.order_items", "shop.orders"]
    );
    // `_` and `%` are literal characters, not wildcards.
    assert_eq!(names(&list(by_prefix("shop_")).await), ["shop_orders"]);
    assert_eq!(names(&list(by_prefix("shop%")).await), ["shop%"]);
    // Case-sensitive.
    assert_eq!(names(&list(by_prefix("Shop")).await), ["Shop.upper"]);
    assert_eq!(names(&list(by_prefix("shop")).await).len(), 6);
    assert_eq!(
        names(&list(by_prefix("shop.orders")).await),
        ["shop.orders"]
    );
    assert!(list(by_prefix("shop.orders.x")).await.is_empty());
    assert_eq!(list(by_prefix("")).await.len(), datasets.len());
    // A prefix walk across small pages.
    let walked = list(ListQuery {
        limit: 1,
        ..by_prefix("shop")
    })
    .await;
    assert_eq!(walked.len(), 6);

    // Team filter: products of one team; cluster-scoped kinds have no team.
    let team = |team: &str| ListQuery {
        team: Some(team.to_owned()),
        ..ListQuery::default()
    };
    let a = list_all(&store, Kind::DataProduct, team("team-a")).await;
    assert_eq!(names(&a), ["one", "two"]);
    assert!(a.iter().all(|o| o.key.team() == "team-a"));
    let b = list_all(&store, Kind::DataProduct, team("team-b")).await;
    assert_eq!(names(&b), ["one"]);
    assert!(
        list_all(&store, Kind::DataProduct, team("team-c"))
            .await
            .is_empty()
    );
    assert!(
        list_all(&store, Kind::Dataset, team("team-a"))
            .await
            .is_empty()
    );
    let both = list_all(
        &store,
        Kind::DataProduct,
        ListQuery {
            team: Some("team-a".to_owned()),
            name_prefix: Some("t".to_owned()),
            ..ListQuery::default()
        },
    )
    .await;
    assert_eq!(names(&both), ["two"]);

    // Kinds do not mix.
    let clusters = list_all(&store, Kind::TargetCluster, by_prefix("shop")).await;
    assert_eq!(names(&clusters), ["shop-pg"]);
}

async fn delete_with_and_without_precondition(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "doomed");
    let v1 = apply(
        &store,
        &key,
        product_input("team-a", "doomed", json!({"v": 1})),
    )
    .await
    .object;
    let v2 = store
        .set_status(&key, json!({"phase": "Live"}), None, &audit())
        .await
        .unwrap();

    // A stale precondition deletes nothing.
    assert_conflict(
        store
            .delete(&key, Some(v1.resource_version), &audit())
            .await,
        Some(v1.resource_version),
        Some(v2.resource_version),
    );
    assert_eq!(store_get(&store, &key).await, v2);

    // The current one deletes, returning the object as it was.
    let deleted = store
        .delete(&key, Some(v2.resource_version), &audit())
        .await
        .unwrap();
    assert_eq!(deleted, Some(v2.clone()));
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert_eq!(store.delete(&key, None, &audit()).await.unwrap(), None);

    // Without a precondition.
    let other = ObjectKey::data_product("team-a", "also-doomed");
    let created = apply(
        &store,
        &other,
        product_input("team-a", "also-doomed", json!({})),
    )
    .await
    .object;
    assert_eq!(
        store.delete(&other, None, &audit()).await.unwrap(),
        Some(created)
    );
    assert!(
        store
            .list(Kind::DataProduct, &ListQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // Re-created: a fresh incarnation without the old status.
    let again = apply(
        &store,
        &key,
        product_input("team-a", "doomed", json!({"v": 1})),
    )
    .await;
    assert_eq!(again.outcome, Outcome::Created);
    assert_eq!(again.object.generation, 1);
    assert_eq!(again.object.status, None);
    assert_ne!(again.object.uid, v1.uid);
}

async fn progress_only_status_writes_are_not_audited(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "filling");
    apply(&store, &key, product_input("team-a", "filling", json!({}))).await;
    let count = |store: &Store| {
        let store = store.clone();
        async move {
            store
                .audit_entries(&AuditQuery {
                    name: Some("filling".to_owned()),
                    limit: 1000,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len()
        }
    };
    let progress = |done: u64| {
        json!({"phase": "Backfilling", "backfill": [{"source": "o", "done": done, "total": 10}],
               "lagMs": done})
    };
    store
        .set_status(&key, progress(1), None, &audit())
        .await
        .unwrap();
    let after_first = count(&store).await;
    // Only the progress moves: written, not audited.
    let moved = store
        .set_status(&key, progress(7), None, &audit())
        .await
        .unwrap();
    assert_eq!(moved.status, Some(progress(7)));
    assert_eq!(count(&store).await, after_first);
    // A phase change is audited.
    let mut live = progress(10);
    live["phase"] = json!("Live");
    store.set_status(&key, live, None, &audit()).await.unwrap();
    assert_eq!(count(&store).await, after_first + 1);
}

async fn status_writes_keep_the_generation(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::data_product("team-a", "live");
    let spec = json!({"target": {"cluster": "shared-pg"}});
    let v1 = apply(&store, &key, product_input("team-a", "live", spec.clone()))
        .await
        .object;

    let status = json!({"phase": "Provisioning", "observedGeneration": 1});
    let v2 = store
        .set_status(&key, status.clone(), Some(v1.resource_version), &audit())
        .await
        .unwrap();
    assert_eq!(v2.status, Some(status.clone()));
    assert_eq!(v2.generation, 1);
    assert!(v2.resource_version > v1.resource_version);
    assert_eq!(
        (&v2.spec, &v2.metadata, v2.uid),
        (&v1.spec, &v1.metadata, v1.uid)
    );
    assert_eq!(store_get(&store, &key).await, v2);
    assert_eq!(v2.document()["status"], status);

    // A stale status write is refused.
    assert_conflict(
        store
            .set_status(
                &key,
                json!({"phase": "Failed"}),
                Some(v1.resource_version),
                &audit(),
            )
            .await,
        Some(v1.resource_version),
        Some(v2.resource_version),
    );

    // Applying the same spec is still a no-op; a new spec keeps the status.
    let same = apply(&store, &key, product_input("team-a", "live", spec)).await;
    assert_eq!(same.outcome, Outcome::Unchanged);
    assert_eq!(same.object, v2);
    let v3 = apply(
        &store,
        &key,
        product_input("team-a", "live", json!({"target": {"cluster": "other"}})),
    )
    .await
    .object;
    assert_eq!(v3.generation, 2);
    assert_eq!(v3.status, Some(status));

    // Writing the same status again is a no-op (key order does not matter).
    let again = store
        .set_status(
            &key,
            json!({"observedGeneration": 1, "phase": "Provisioning"}),
            Some(v3.resource_version),
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(again, v3);

    // Without a precondition, and clearing with null.
    let v4 = store
        .set_status(
            &key,
            json!({"phase": "Live", "observedGeneration": 2}),
            None,
            &audit(),
        )
        .await
        .unwrap();
    assert_eq!(v4.generation, 2);
    assert!(v4.resource_version > v3.resource_version);
    let v5 = store
        .set_status(&key, Value::Null, None, &audit())
        .await
        .unwrap();
    assert_eq!(v5.status, None);
    assert_eq!(store_get(&store, &key).await, v5);
    assert!(v5.document().get("status").is_none());
}

async fn schema_versions_are_appended_only_on_change(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::dataset("shop.orders");
    let schema_a = json!({"type": "object", "properties": {"id": {"type": "string"}}});
    let schema_b = json!({"type": "object", "properties": {"id": {"type": "string"}, "amount": {"type": "number"}}});
    let with_schema = |description: &str, schema: &Value| {
        ObjectInput::new(
            json!({"name": "shop.orders", "description": description}),
            json!({"topic": "shop.orders", "schema": schema}),
        )
        .with_schema_version(schema.clone())
    };

    let first = apply(&store, &key, with_schema("d1", &schema_a)).await;
    assert_eq!(
        (first.outcome, first.schema_version),
        (Outcome::Created, Some(1))
    );
    // Same document: nothing written, no version.
    let same = apply(&store, &key, with_schema("d1", &schema_a)).await;
    assert_eq!(
        (same.outcome, same.schema_version),
        (Outcome::Unchanged, None)
    );
    // A metadata change with the same schema: no version.
    let meta = apply(&store, &key, with_schema("d2", &schema_a)).await;
    assert_eq!(
        (meta.outcome, meta.schema_version),
        (Outcome::Updated, None)
    );
    // The same schema with its keys in another order is the same schema.
    let reordered = json!({"properties": {"id": {"type": "string"}}, "type": "object"});
    let same = apply(&store, &key, with_schema("d3", &reordered)).await;
    assert_eq!(same.schema_version, None);
    // A new schema: version 2; back to the first: version 3 (it differs from the latest).
    let second = apply(&store, &key, with_schema("d3", &schema_b)).await;
    assert_eq!(second.schema_version, Some(2));
    let third = apply(&store, &key, with_schema("d3", &schema_a)).await;
    assert_eq!(third.schema_version, Some(3));
    assert_eq!(third.object.generation, 3);

    let versions = store.schema_versions("shop.orders").await.unwrap();
    let listed: Vec<_> = versions
        .iter()
        .map(|v| (v.version, v.schema.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            (1, schema_a.clone()),
            (2, schema_b.clone()),
            (3, schema_a.clone())
        ]
    );
    assert!(
        versions
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at)
    );
    let two = store
        .schema_version("shop.orders", 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(two, versions[1]);
    assert_eq!(store.schema_version("shop.orders", 4).await.unwrap(), None);
    assert!(
        store
            .schema_versions("shop.other")
            .await
            .unwrap()
            .is_empty()
    );

    // A failed write records no version either.
    let stale = store
        .apply(
            &key,
            with_schema("d4", &json!({"type": "string"})),
            Some(first.object.resource_version),
            &audit(),
        )
        .await;
    assert!(stale.unwrap_err().is_conflict());
    assert_eq!(store.schema_versions("shop.orders").await.unwrap().len(), 3);

    // Only datasets have schema versions.
    let err = store
        .apply(
            &ObjectKey::data_product("team-a", "p"),
            product_input("team-a", "p", json!({})).with_schema_version(schema_a.clone()),
            None,
            &audit(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaVersionNotDataset {
                kind: Kind::DataProduct
            }
        ),
        "{err:?}"
    );

    // Deleting the dataset deletes its versions; a re-created one starts again at 1.
    store.delete(&key, None, &audit()).await.unwrap().unwrap();
    assert!(
        store
            .schema_versions("shop.orders")
            .await
            .unwrap()
            .is_empty()
    );
    let again = apply(&store, &key, with_schema("d1", &schema_b)).await;
    assert_eq!(again.schema_version, Some(1));
    let versions = store.schema_versions("shop.orders").await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].schema, schema_b);
}

async fn concurrent_schema_changes_number_versions_without_gaps(db: &TestDb) {
    let stores = [db.connect().await, db.connect().await];
    let key = ObjectKey::dataset("events.clicks");
    let results = race(&stores, 12, |i, store| {
        let key = key.clone();
        async move {
            let schema = json!({"type": "object", "title": format!("v{i}")});
            let input = ObjectInput::new(
                json!({"name": "events.clicks"}),
                json!({"topic": "clicks", "schema": schema}),
            )
            .with_schema_version(schema);
            store.apply(&key, input, None, &audit()).await
        }
    })
    .await;
    let mut numbers: Vec<_> = results.iter().filter_map(|a| a.schema_version).collect();
    numbers.sort();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>());
    // Each version is the schema of the write that recorded it.
    let versions = stores[0].schema_versions("events.clicks").await.unwrap();
    assert_eq!(versions.len(), 12);
    for applied in &results {
        let number = applied.schema_version.unwrap();
        let version = &versions[usize::try_from(number - 1).unwrap()];
        assert_eq!(version.version, number);
        assert_eq!(version.schema, applied.object.spec["schema"]);
    }
    // The latest version is the schema of the latest write.
    let latest = store_get(&stores[1], &key).await;
    assert_eq!(versions.last().unwrap().schema, latest.spec["schema"]);
}

async fn reopening_keeps_the_data(db: &TestDb) {
    let store = db.connect().await;
    let key = ObjectKey::dataset("shop.orders");
    let schema = json!({"type": "object"});
    let applied = apply(
        &store,
        &key,
        input("shop.orders", json!({"schema": schema})).with_schema_version(schema),
    )
    .await;
    let with_status = store
        .set_status(&key, json!({"ok": true}), None, &audit())
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let reopened = db.connect().await;
    assert_eq!(store_get(&reopened, &key).await, with_status);
    assert_eq!(
        reopened.schema_versions("shop.orders").await.unwrap().len(),
        1
    );
    // The revision counter survives too: new writes get higher resourceVersions.
    let next = apply(
        &reopened,
        &ObjectKey::dataset("shop.more"),
        input("shop.more", json!({})),
    )
    .await;
    assert!(next.object.resource_version > with_status.resource_version);
    assert!(with_status.resource_version > applied.object.resource_version);
}

// ---------------------------------------------------------------------------------------------
// Backend-specific checks.

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_migrated_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    let Cleanup::Directory(dir) = &db.cleanup else {
        unreachable!()
    };
    let file = dir.join("nested").join("dir").join("sluice.db");
    assert!(!file.exists());
    let store = db.connect().await;
    assert!(
        file.exists(),
        "the store creates the file and its directories"
    );
    apply(
        &store,
        &ObjectKey::dataset("d"),
        input("d", json!({"topic": "d"})),
    )
    .await;
    store.close().await;
    let again = db.connect().await;
    again.close().await;

    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let migrations: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&pool)
        .await
        .unwrap();
    let files = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../store/migrations/sqlite"
    ))
    .unwrap()
    .count();
    assert_eq!(
        migrations,
        i64::try_from(files).unwrap(),
        "each migration applied once"
    );
    let objects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM objects")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(objects, 1);
    pool.close().await;
}

#[tokio::test]
async fn corrupt_rows_are_reported_as_corrupt() {
    let db = TestDb::new(Backend::Sqlite).await;
    let store = db.connect().await;
    let key = ObjectKey::dataset("d");
    apply(&store, &key, input("d", json!({"topic": "d"}))).await;
    let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
    sqlx::query("UPDATE objects SET spec = '{not json'")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = store.get(&key).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { column: "spec", .. }),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "stored spec of Dataset d is corrupt");
    assert!(std::error::Error::source(&err).is_some());
    let err = store
        .list(Kind::Dataset, &ListQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}

#[tokio::test]
async fn in_memory_sqlite_store_works() {
    let store = Store::connect("sqlite::memory:", test_audit_key())
        .await
        .unwrap();
    let key = ObjectKey::dataset("d");
    let created = apply(&store, &key, input("d", json!({}))).await;
    assert_eq!(store_get(&store, &key).await, created.object);
}

#[tokio::test]
async fn postgres_store_uses_its_own_tables() {
    let db = TestDb::new(Backend::Postgres).await;
    let store = db.connect().await;
    assert_eq!(store.backend(), Backend::Postgres);
    apply(
        &store,
        &ObjectKey::dataset("d"),
        input("d", json!({"topic": "d"})),
    )
    .await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_sqlx_migrations",
            "api_tokens",
            "audit_head",
            "audit_log",
            "job_leases",
            "job_reports",
            "job_workers",
            "object_claims",
            "objects",
            "product_credentials",
            "schema_versions",
            "store_revision"
        ]
    );
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn unsupported_urls_are_refused() {
    for url in [
        "mysql://localhost/sluice",
        "",
        "/var/lib/sluice.db",
        "sqlite://x.db?mode=bogus",
        "postgres://[::1/x",
    ] {
        let err = Store::connect(url, test_audit_key()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidUrl { .. }),
            "{url}: {err:?}"
        );
    }
}

#[test]
fn database_urls_are_rewritten_for_test_databases() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres", "x"),
        "postgres://u:p@h:5432/x"
    );
    assert_eq!(
        with_database("postgres://h/postgres?sslmode=disable", "x"),
        "postgres://h/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

async fn claims_are_exclusive_and_follow_their_object(db: &TestDb) {
    let store = db.connect().await;
    let a = ObjectKey::data_product("team-a", "first");
    let b = ObjectKey::data_product("team-b", "second");
    let claim = |n: &str| vec![format!("target:cluster:{n}")];
    apply(
        &store,
        &a,
        product_input("team-a", "first", json!({"v": 1})).with_claims(claim("x")),
    )
    .await;

    // Another object cannot take the claim, and its write leaves nothing behind.
    let err = store
        .apply(
            &b,
            product_input("team-b", "second", json!({"v": 1})).with_claims(claim("x")),
            None,
            &audit(),
        )
        .await
        .unwrap_err();
    match err {
        StoreError::ClaimTaken { claim, owner } => {
            assert_eq!(claim, "target:cluster:x");
            assert_eq!(owner, a);
        }
        other => panic!("expected ClaimTaken, got {other:?}"),
    }
    assert!(store.get(&b).await.unwrap().is_none());

    // Moving to another claim frees the first; deleting frees the second.
    apply(
        &store,
        &a,
        product_input("team-a", "first", json!({"v": 2})).with_claims(claim("y")),
    )
    .await;
    apply(
        &store,
        &b,
        product_input("team-b", "second", json!({"v": 1})).with_claims(claim("x")),
    )
    .await;
    assert!(
        store
            .apply(
                &b,
                product_input("team-b", "second", json!({"v": 2})).with_claims(claim("y")),
                None,
                &audit()
            )
            .await
            .is_err()
    );
    store.delete(&a, None, &audit()).await.unwrap();
    apply(
        &store,
        &b,
        product_input("team-b", "second", json!({"v": 2})).with_claims(claim("y")),
    )
    .await;

    // Racing creates with one claim: exactly one wins.
    let stores = [db.connect().await, db.connect().await];
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            let key = ObjectKey::data_product("team-r", format!("racer-{i}"));
            store
                .apply(
                    &key,
                    product_input("team-r", &format!("racer-{i}"), json!({}))
                        .with_claims(vec!["contested".into()]),
                    None,
                    &audit(),
                )
                .await
                .is_ok()
        }));
    }
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1);
}
