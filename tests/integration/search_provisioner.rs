//! The Elasticsearch/OpenSearch provisioner against both real engines of `make services`
//! (OpenSearch and Elasticsearch 7.17): creation, idempotence (a converged `ensure` sends no
//! mutating request), additive mapping changes, typed drift, an atomic alias swap to
//! version N+1, repair of a hand-deleted alias and idempotent deletion. The oracle is the
//! engine itself, read through the test's own HTTP client.

use serde_json::{Map, Value, json};
use sluice_provisioners::TargetRequest;
use sluice_provisioners::elasticsearch::provision::{
    ElasticsearchProvisioner, SearchProvisionError,
};
use sluice_provisioners::elasticsearch::{ElasticsearchPlan, plan_elasticsearch};
use sluice_schemas::output::{OutputField, OutputKey, OutputSchema};
use sluice_schemas::{FieldType, WriteMode};
use sluice_tests::{SearchEngine, TestNamespace};

fn field(name: &str, field_type: FieldType) -> OutputField {
    OutputField {
        name: name.to_owned(),
        field_type,
        nullable: name != "order_id",
        pii: false,
        pii_sources: Vec::new(),
        expr: format!("o.{name}"),
        description: None,
    }
}

/// The output of an `orders-enriched`-like product, with `extra` fields appended.
fn output(extra: &[(&str, FieldType)]) -> OutputSchema {
    let mut fields = vec![
        field("order_id", FieldType::String),
        field("amount", FieldType::Number),
        field("amount_cents", FieldType::Integer),
        field("paid_at", FieldType::Timestamp),
        field("customer", FieldType::Object),
        field("tags", FieldType::Array),
    ];
    fields.extend(extra.iter().map(|(name, t)| field(name, *t)));
    OutputSchema {
        fields,
        key: Some(OutputKey {
            expr: "o.id".to_owned(),
            field_type: FieldType::String,
            field: Some("order_id".to_owned()),
        }),
    }
}

fn plan(name: &str, version: u32, output: &OutputSchema) -> ElasticsearchPlan {
    let options: Map<String, Value> =
        serde_json::from_value(json!({"shards": 2, "replicas": 0})).unwrap();
    plan_elasticsearch(&TargetRequest {
        team: "team-payments",
        product: "orders-enriched",
        version,
        name,
        mode: WriteMode::Upsert,
        options: &options,
        output,
    })
    .unwrap()
}

fn provisioner(ns: &TestNamespace, engine: SearchEngine) -> ElasticsearchProvisioner {
    let (_, base) = ns.search(engine, "");
    ElasticsearchProvisioner::new(&base).unwrap()
}

/// `GET path` on the engine: status and JSON body.
async fn get(ns: &TestNamespace, engine: SearchEngine, path: &str) -> (u16, Value) {
    let (client, url) = ns.search(engine, path);
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The indices `alias` points at, sorted, as the engine reports them.
async fn alias_targets(ns: &TestNamespace, engine: SearchEngine, alias: &str) -> Vec<String> {
    let (status, body) = get(ns, engine, &format!("_alias/{alias}")).await;
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{engine:?}: {body}");
    let mut indices: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
    indices.sort();
    indices
}

async fn index_exists(ns: &TestNamespace, engine: SearchEngine, index: &str) -> bool {
    let (client, url) = ns.search(engine, index);
    client.head(url).send().await.unwrap().status().is_success()
}

#[tokio::test]
async fn ensure_creates_the_planned_index_and_alias_then_is_a_no_op() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_create");
        let name = ns.index("orders");
        let out = output(&[]);
        let plan = plan(&name, 1, &out);
        let es = provisioner(&ns, engine);

        let state = es.observe(&plan).await.unwrap();
        assert_eq!(state.index, None, "{engine:?}");
        assert!(state.alias_indices.is_empty(), "{engine:?}");

        let report = es.ensure(&plan).await.unwrap();
        assert!(
            report.created_index && report.alias_moved,
            "{engine:?}: {report:?}"
        );
        assert_eq!(report.mutations, 2, "{engine:?}: {report:?}");

        // The engine's own view: the planned mapping and settings.
        let (status, body) = get(&ns, engine, &plan.index).await;
        assert_eq!(status, 200, "{engine:?}: {body}");
        let index = &body[&plan.index];
        assert_eq!(index["mappings"]["dynamic"], "strict", "{engine:?}");
        let props = &index["mappings"]["properties"];
        assert_eq!(props["order_id"]["type"], "keyword", "{engine:?}");
        assert_eq!(props["amount"]["type"], "double", "{engine:?}");
        assert_eq!(props["amount_cents"]["type"], "long", "{engine:?}");
        assert_eq!(props["paid_at"]["type"], "date", "{engine:?}");
        assert_eq!(props["_sluice_version"]["type"], "long", "{engine:?}");
        assert_eq!(props["tags"]["enabled"], false, "{engine:?}");
        assert_eq!(
            index["settings"]["index"]["number_of_shards"], "2",
            "{engine:?}"
        );
        assert_eq!(
            index["settings"]["index"]["number_of_replicas"], "0",
            "{engine:?}"
        );
        // OpenSearch's index does not merge on refresh; Elasticsearch, which has no such
        // setting, gets the plan's settings only.
        let opensearch = matches!(engine, SearchEngine::OpenSearch);
        assert_eq!(es.is_opensearch().await.unwrap(), opensearch, "{engine:?}");
        let merge_on_flush = &index["settings"]["index"]["merge_on_flush"]["enabled"];
        if opensearch {
            assert_eq!(merge_on_flush, "false", "{body}");
        } else {
            assert!(merge_on_flush.is_null(), "{body}");
        }
        assert_eq!(
            alias_targets(&ns, engine, &plan.alias).await,
            [plan.index.as_str()]
        );

        let state = es.observe(&plan).await.unwrap();
        let observed = state.index.unwrap();
        assert_eq!((observed.shards, observed.replicas), (Some(2), Some(0)));
        assert_eq!(observed.properties["customer"], "object", "{engine:?}");
        assert_eq!(
            observed.properties.len(),
            out.fields.len() + 1,
            "{engine:?}"
        );
        assert_eq!(state.alias_indices, [plan.index.as_str()], "{engine:?}");

        let again = es.ensure(&plan).await.unwrap();
        assert_eq!(again.mutations, 0, "{engine:?}: {again:?}");
        assert!(!again.created_index && !again.alias_moved && again.added_fields.is_empty());
    }
}

#[tokio::test]
async fn a_new_field_is_added_to_the_mapping_and_a_type_change_is_drift() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_additive");
        let name = ns.index("orders");
        let es = provisioner(&ns, engine);
        let v1 = output(&[]);
        es.ensure(&plan(&name, 1, &v1)).await.unwrap();

        let wider = output(&[
            ("currency", FieldType::String),
            ("paid", FieldType::Boolean),
        ]);
        let wide = plan(&name, 1, &wider);
        let report = es.ensure(&wide).await.unwrap();
        assert_eq!(report.added_fields, ["currency", "paid"], "{engine:?}");
        assert_eq!(report.mutations, 1, "{engine:?}: {report:?}");
        assert!(!report.created_index && !report.alias_moved, "{engine:?}");
        let (_, body) = get(&ns, engine, &format!("{}/_mapping", wide.index)).await;
        let props = &body[&wide.index]["mappings"]["properties"];
        assert_eq!(props["currency"]["type"], "keyword", "{engine:?}");
        assert_eq!(props["paid"]["type"], "boolean", "{engine:?}");
        assert_eq!(props["order_id"]["type"], "keyword", "{engine:?}");
        assert_eq!(es.ensure(&wide).await.unwrap().mutations, 0, "{engine:?}");

        // `amount` as an integer: the index maps it as double, which cannot change in place.
        let mut changed = wider.clone();
        changed.fields[1].field_type = FieldType::Integer;
        let err = es.ensure(&plan(&name, 1, &changed)).await.unwrap_err();
        match err {
            SearchProvisionError::MappingDrift {
                field,
                planned,
                found,
                ..
            } => assert_eq!(
                (field.as_str(), planned.as_str(), found.as_str()),
                ("amount", "long", "double")
            ),
            other => panic!("{engine:?}: expected drift, got {other:?}"),
        }
        let (_, body) = get(&ns, engine, &format!("{}/_mapping", wide.index)).await;
        assert_eq!(
            body[&wide.index]["mappings"]["properties"]["amount"]["type"],
            "double"
        );
    }
}

#[tokio::test]
async fn version_two_gets_a_new_index_and_the_alias_moves_atomically() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_rebuild");
        let name = ns.index("orders");
        let es = provisioner(&ns, engine);
        let v1 = plan(&name, 1, &output(&[]));
        es.ensure(&v1).await.unwrap();

        let mut changed = output(&[]);
        changed.fields[1].field_type = FieldType::String;
        let v2 = plan(&name, 2, &changed);
        assert_ne!(v1.index, v2.index);
        let report = es.ensure(&v2).await.unwrap();
        assert!(
            report.created_index && report.alias_moved,
            "{engine:?}: {report:?}"
        );
        // Create + one `_aliases` request (remove from v1 and add to v2 together).
        assert_eq!(report.mutations, 2, "{engine:?}: {report:?}");
        assert_eq!(alias_targets(&ns, engine, &name).await, [v2.index.as_str()]);
        assert!(
            index_exists(&ns, engine, &v1.index).await,
            "{engine:?}: v1 kept"
        );
        let (_, body) = get(&ns, engine, &format!("{}/_mapping", v2.index)).await;
        assert_eq!(
            body[&v2.index]["mappings"]["properties"]["amount"]["type"],
            "keyword"
        );
        assert_eq!(es.ensure(&v2).await.unwrap().mutations, 0, "{engine:?}");

        // Delete removes every version and the alias; a second delete is a no-op.
        let deleted = es.delete(&v2, false).await.unwrap();
        assert_eq!(
            deleted.deleted_indices,
            [v1.index.as_str(), v2.index.as_str()]
        );
        assert!(!index_exists(&ns, engine, &v1.index).await, "{engine:?}");
        assert!(!index_exists(&ns, engine, &v2.index).await, "{engine:?}");
        assert!(
            alias_targets(&ns, engine, &name).await.is_empty(),
            "{engine:?}"
        );
    }
}

#[tokio::test]
async fn a_hand_deleted_alias_is_recreated() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_alias");
        let name = ns.index("orders");
        let es = provisioner(&ns, engine);
        let plan = plan(&name, 1, &output(&[]));
        es.ensure(&plan).await.unwrap();

        let (client, url) = ns.search(engine, &format!("{}/_alias/{}", plan.index, plan.alias));
        assert!(
            client
                .delete(url)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
        assert!(
            alias_targets(&ns, engine, &name).await.is_empty(),
            "{engine:?}"
        );
        assert!(es.observe(&plan).await.unwrap().alias_indices.is_empty());

        let report = es.ensure(&plan).await.unwrap();
        assert!(
            report.alias_moved && !report.created_index,
            "{engine:?}: {report:?}"
        );
        assert_eq!(report.mutations, 1, "{engine:?}: {report:?}");
        assert_eq!(
            alias_targets(&ns, engine, &name).await,
            [plan.index.as_str()]
        );
    }
}

#[tokio::test]
async fn delete_retains_or_removes_and_is_idempotent() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_delete");
        let name = ns.index("orders");
        // Another product whose name starts with this one's: never touched.
        let other = plan(&format!("{name}_vip"), 1, &output(&[]));
        let es = provisioner(&ns, engine);
        let plan = plan(&name, 1, &output(&[]));
        es.ensure(&plan).await.unwrap();
        es.ensure(&other).await.unwrap();

        let retained = es.delete(&plan, true).await.unwrap();
        assert!(retained.deleted_indices.is_empty(), "{engine:?}");
        assert!(index_exists(&ns, engine, &plan.index).await, "{engine:?}");
        assert_eq!(
            alias_targets(&ns, engine, &name).await,
            [plan.index.as_str()]
        );

        let deleted = es.delete(&plan, false).await.unwrap();
        assert_eq!(deleted.deleted_indices, [plan.index.as_str()], "{engine:?}");
        assert_eq!(
            deleted.alias_removed_from,
            [plan.index.as_str()],
            "{engine:?}"
        );
        assert!(!index_exists(&ns, engine, &plan.index).await, "{engine:?}");
        assert!(
            alias_targets(&ns, engine, &name).await.is_empty(),
            "{engine:?}"
        );
        assert!(
            index_exists(&ns, engine, &other.index).await,
            "{engine:?}: other kept"
        );

        let again = es.delete(&plan, false).await.unwrap();
        assert!(again.deleted_indices.is_empty() && again.alias_removed_from.is_empty());
        assert_eq!(es.observe(&plan).await.unwrap().index, None, "{engine:?}");
    }
}

#[tokio::test]
async fn engine_errors_carry_status_type_and_reason() {
    for engine in SearchEngine::ALL {
        let ns = TestNamespace::new("esprov_errors");
        let name = ns.index("orders");
        let es = provisioner(&ns, engine);
        let plan = plan(&name, 1, &output(&[]));
        // A concrete index where the alias must go: the engine refuses the alias.
        let (client, url) = ns.search(engine, &name);
        assert!(client.put(url).send().await.unwrap().status().is_success());
        match es.ensure(&plan).await.unwrap_err() {
            SearchProvisionError::Engine {
                status,
                error_type,
                reason,
                ..
            } => {
                assert_eq!(status, 400, "{engine:?}: {error_type} {reason}");
                assert_eq!(
                    error_type, "invalid_alias_name_exception",
                    "{engine:?}: {reason}"
                );
                assert!(reason.contains(&name), "{engine:?}: {reason}");
            }
            other => panic!("{engine:?}: expected an engine error, got {other:?}"),
        }
    }
}
