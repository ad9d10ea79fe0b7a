//! The Redis provisioner against the real Redis of `make services`: each test plans
//! products whose names and teams derive from its namespace id (so its keys and ACL users
//! are its own), and deletes them at the end.

use redis::aio::MultiplexedConnection;
use serde_json::Map;
use sluice_provisioners::TargetRequest;
use sluice_provisioners::redis::provision::{Credentials, delete, ensure, grant, observe};
use sluice_provisioners::redis::{RedisPlan, plan_redis};
use sluice_schemas::output::{OutputField, OutputKey, OutputSchema};
use sluice_schemas::{FieldType, WriteMode};
use sluice_tests::TestNamespace;

fn output() -> OutputSchema {
    let field = |name: &str, field_type| OutputField {
        name: name.to_owned(),
        field_type,
        nullable: false,
        pii: false,
        pii_sources: Vec::new(),
        expr: format!("o.{name}"),
        description: None,
    };
    OutputSchema {
        fields: vec![
            field("id", FieldType::String),
            field("total", FieldType::Number),
        ],
        key: Some(OutputKey {
            expr: "o.id".to_owned(),
            field_type: FieldType::String,
            field: Some("id".to_owned()),
        }),
    }
}

/// One test's namespace, admin connection and plans.
struct Fixture {
    ns: TestNamespace,
    admin: MultiplexedConnection,
    output: OutputSchema,
}

impl Fixture {
    async fn new(label: &str) -> Self {
        let ns = TestNamespace::new(label);
        let admin = ns
            .redis()
            .await
            .expect("Redis is unreachable: run `make services`");
        Fixture {
            ns,
            admin,
            output: output(),
        }
    }

    /// The plan of product `product` with target name `<id>.<suffix>` (a valid prefix:
    /// `[a-z0-9][a-z0-9_.-]*`, unique to this test), version `version`.
    fn plan(&self, product: &str, suffix: &str, version: u32) -> RedisPlan {
        let name = format!("{}.{suffix}", self.ns.id());
        self.try_plan(product, &name, version).unwrap()
    }

    fn try_plan(
        &self,
        product: &str,
        name: &str,
        version: u32,
    ) -> Result<RedisPlan, sluice_provisioners::PlanError> {
        let team = format!("t{}", self.ns.id());
        plan_redis(&TargetRequest {
            team: &team,
            product,
            version,
            name,
            mode: WriteMode::Upsert,
            options: &Map::new(),
            output: &self.output,
        })
    }

    async fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        let mut con = self.admin.clone();
        redis::cmd(args[0])
            .arg(&args[1..])
            .query_async(&mut con)
            .await
            .unwrap()
    }

    async fn write_row(&self, key: &str) {
        self.cmd::<()>(&["HSET", key, "id", "1", "total", "9.5"])
            .await;
    }

    async fn exists(&self, key: &str) -> bool {
        self.cmd::<u64>(&["EXISTS", key]).await == 1
    }

    /// A connection as `user` with `password`.
    async fn connect_as(
        &self,
        user: &str,
        password: &str,
    ) -> redis::RedisResult<MultiplexedConnection> {
        let url = &self.ns.services().redis_url;
        let host = url
            .rsplit_once('@')
            .map_or(url.trim_start_matches("redis://"), |(_, h)| h);
        redis::Client::open(format!("redis://{user}:{password}@{host}"))?
            .get_multiplexed_async_connection()
            .await
    }

    async fn reader(&self, credentials: &Credentials) -> MultiplexedConnection {
        self.connect_as(&credentials.user, &credentials.password)
            .await
            .unwrap()
    }
}

async fn run(con: &MultiplexedConnection, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut con = con.clone();
    redis::cmd(args[0])
        .arg(&args[1..])
        .query_async(&mut con)
        .await
}

fn assert_noperm(result: redis::RedisResult<redis::Value>, what: &str) {
    let err = result.expect_err(what);
    assert_eq!(err.code(), Some("NOPERM"), "{what}: {err}");
}

#[tokio::test]
async fn redis_ensure_grant_and_least_privilege() {
    let f = Fixture::new("redis_ensure_grant").await;
    let plan = f.plan("orders", "orders", 1);
    let other = f.plan("payments", "payments", 1);

    let report = ensure(&f.admin, &plan).await.unwrap();
    assert!(report.pointer_set && report.user_created && !report.user_aligned);
    assert_eq!(report.mutations, 2);
    let state = observe(&f.admin, &plan).await.unwrap();
    assert_eq!(state.pointer.as_deref(), Some("v1"));
    let user = state.user.unwrap();
    assert!(user.matches(&plan), "{user:?}");
    assert_eq!(user.passwords, 0);
    assert!(!user.flags.iter().any(|f| f == "nopass"), "{user:?}");
    // Without a password nobody can log in as the reader.
    assert!(f.connect_as(&plan.user, "guess").await.is_err());

    let again = ensure(&f.admin, &plan).await.unwrap();
    assert_eq!(again.mutations, 0, "{again:?}");
    assert!(!again.pointer_set && !again.user_created && !again.user_aligned);

    ensure(&f.admin, &other).await.unwrap();
    let own_key = plan.data_key("1");
    let other_key = other.data_key("1");
    f.write_row(&own_key).await;
    f.write_row(&other_key).await;

    let credentials = grant(&f.admin, &plan).await.unwrap();
    assert_eq!(credentials.user, plan.user);
    assert!(!format!("{credentials:?}").contains(&credentials.password));
    let reader = f.reader(&credentials).await;
    assert_eq!(
        run(&reader, &["GET", &plan.pointer_key]).await.unwrap(),
        redis::Value::BulkString(b"v1".to_vec())
    );
    let mut con = reader.clone();
    let row: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(&own_key)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(row.get("total").map(String::as_str), Some("9.5"));

    assert_noperm(
        run(&reader, &["HGETALL", &other_key]).await,
        "other product's row",
    );
    assert_noperm(
        run(&reader, &["GET", &other.pointer_key]).await,
        "other pointer",
    );
    assert_noperm(run(&reader, &["SET", &own_key, "x"]).await, "SET");
    assert_noperm(run(&reader, &["HSET", &own_key, "a", "b"]).await, "HSET");
    assert_noperm(run(&reader, &["FLUSHALL"]).await, "FLUSHALL");
    assert_noperm(run(&reader, &["KEYS", "*"]).await, "KEYS");
    assert_noperm(run(&reader, &["SCAN", "0"]).await, "SCAN");
    assert_noperm(run(&reader, &["CONFIG", "GET", "*"]).await, "CONFIG");
    assert_noperm(run(&reader, &["ACL", "LIST"]).await, "ACL");

    // A converged ensure after grant neither mutates nor revokes the password.
    assert_eq!(ensure(&f.admin, &plan).await.unwrap().mutations, 0);
    run(&f.reader(&credentials).await, &["PING"]).await.unwrap();
    // A second grant replaces the password.
    let fresh = grant(&f.admin, &plan).await.unwrap();
    assert_ne!(fresh.password, credentials.password);
    assert!(
        f.connect_as(&plan.user, &credentials.password)
            .await
            .is_err()
    );
    f.reader(&fresh).await;

    delete(&f.admin, &plan, false).await.unwrap();
    delete(&f.admin, &other, false).await.unwrap();
}

#[tokio::test]
async fn redis_glob_characters_cannot_widen_the_key_pattern() {
    let f = Fixture::new("redis_glob").await;
    // A space would start a second ACL rule: the plan refuses the name.
    assert!(f.try_plan("p", &format!("{} +@all", f.ns.id()), 1).is_err());

    // Glob characters are escaped: `<id>.a*` matches only itself, not `<id>.ab`.
    let plan = f.plan("globby", "a*", 1);
    let neighbour = f.plan("neighbour", "ab", 1);
    let expected = format!("~{}.a\\*:*", f.ns.id());
    assert!(plan.acl_rules.contains(&expected), "{:?}", plan.acl_rules);
    assert!(plan.acl_rule.contains(&expected));

    ensure(&f.admin, &plan).await.unwrap();
    let own_key = plan.data_key("1");
    let neighbour_key = neighbour.data_key("1");
    f.write_row(&own_key).await;
    f.write_row(&neighbour_key).await;
    let credentials = grant(&f.admin, &plan).await.unwrap();
    let reader = f.reader(&credentials).await;
    run(&reader, &["HGETALL", &own_key]).await.unwrap();
    assert_noperm(
        run(&reader, &["HGETALL", &neighbour_key]).await,
        "neighbour",
    );

    // Deleting scans with the escaped prefix too: the neighbour's key survives.
    delete(&f.admin, &plan, false).await.unwrap();
    assert!(!f.exists(&own_key).await);
    assert!(f.exists(&neighbour_key).await);
    delete(&f.admin, &neighbour, false).await.unwrap();
    assert!(!f.exists(&neighbour_key).await);
}

#[tokio::test]
async fn redis_ensure_repairs_a_deleted_or_widened_user() {
    let f = Fixture::new("redis_repair").await;
    let plan = f.plan("orders", "orders", 1);
    ensure(&f.admin, &plan).await.unwrap();

    f.cmd::<u64>(&["ACL", "DELUSER", &plan.user]).await;
    let report = ensure(&f.admin, &plan).await.unwrap();
    assert!(report.user_created && !report.pointer_set);
    assert_eq!(report.mutations, 1);
    assert!(
        observe(&f.admin, &plan)
            .await
            .unwrap()
            .user
            .unwrap()
            .matches(&plan)
    );

    // Rights widened by hand are narrowed again; the granted password keeps working.
    let credentials = grant(&f.admin, &plan).await.unwrap();
    f.cmd::<()>(&["ACL", "SETUSER", &plan.user, "+@all", "allkeys"])
        .await;
    assert!(
        !observe(&f.admin, &plan)
            .await
            .unwrap()
            .user
            .unwrap()
            .matches(&plan)
    );
    let report = ensure(&f.admin, &plan).await.unwrap();
    assert!(report.user_aligned && !report.user_created);
    assert_eq!(report.mutations, 1);
    let user = observe(&f.admin, &plan).await.unwrap().user.unwrap();
    assert!(user.matches(&plan), "{user:?}");
    assert_eq!(user.passwords, 1);
    let reader = f.reader(&credentials).await;
    assert_noperm(
        run(&reader, &["SET", &plan.data_key("1"), "x"]).await,
        "SET",
    );
    assert_eq!(ensure(&f.admin, &plan).await.unwrap().mutations, 0);

    // A new version moves the pointer; the user already matches.
    let v2 = f.plan("orders", "orders", 2);
    let report = ensure(&f.admin, &v2).await.unwrap();
    assert!(report.pointer_set && !report.user_created && !report.user_aligned);
    assert_eq!(report.mutations, 1);

    delete(&f.admin, &v2, false).await.unwrap();
}

#[tokio::test]
async fn redis_delete_with_and_without_retain() {
    let f = Fixture::new("redis_delete").await;
    let plan = f.plan("orders", "orders", 2);
    let old = f.plan("orders", "orders", 1);
    ensure(&f.admin, &plan).await.unwrap();
    let keys = [plan.data_key("1"), plan.data_key("2"), old.data_key("1")];
    for key in &keys {
        f.write_row(key).await;
    }

    let report = delete(&f.admin, &plan, true).await.unwrap();
    assert_eq!(report.keys_deleted, 0);
    assert!(report.user_deleted);
    let state = observe(&f.admin, &plan).await.unwrap();
    assert_eq!(state.pointer.as_deref(), Some("v2"));
    assert!(state.user.is_none());
    for key in &keys {
        assert!(f.exists(key).await, "{key} retained");
    }
    assert!(!delete(&f.admin, &plan, true).await.unwrap().user_deleted);

    ensure(&f.admin, &plan).await.unwrap();
    let report = delete(&f.admin, &plan, false).await.unwrap();
    assert_eq!(report.keys_deleted, 4, "three rows and the pointer");
    assert!(report.user_deleted);
    let state = observe(&f.admin, &plan).await.unwrap();
    assert!(state.pointer.is_none() && state.user.is_none());
    for key in &keys {
        assert!(!f.exists(key).await, "{key} deleted");
    }

    let report = delete(&f.admin, &plan, false).await.unwrap();
    assert_eq!(report.keys_deleted, 0);
    assert!(!report.user_deleted);
}
