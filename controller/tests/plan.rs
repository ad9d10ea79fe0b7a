//! Plans of the retail example products, validated the way the API validates them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{context, retail};

use sluice_controller::plan::{PlanError, plan_product};
use sluice_provisioners::TargetPlan;
use sluice_schemas::output::OutputSchema;
use sluice_schemas::validate::{semantics, structure};
use sluice_schemas::{DataProduct, Document, Isolation, TargetClusterSpec};

/// A retail product, validated, with its output schema and target cluster.
fn product(name: &str) -> (DataProduct, OutputSchema, TargetClusterSpec) {
    let ctx = context();
    let doc = retail("products.yaml")
        .into_iter()
        .find(|p| p["metadata"]["name"] == name)
        .unwrap();
    let document = structure(&doc).unwrap();
    let output = semantics(&document, &ctx).unwrap().unwrap();
    let Document::DataProduct(product) = document else {
        panic!("{name} is not a product")
    };
    let cluster = ctx
        .cluster(product.spec.target.cluster.as_deref().unwrap())
        .unwrap()
        .clone();
    (product, output, cluster)
}

#[test]
fn orders_enriched_lands_in_a_postgres_team_schema() {
    let (product, output, cluster) = product("orders-enriched");
    let plan = plan_product(&product, &output, &cluster, &[6, 3, 12], 1).unwrap();
    let TargetPlan::Postgres(pg) = &plan.target else {
        panic!("{plan:?}")
    };
    assert_eq!(pg.schema, "team-payments");
    assert_eq!(pg.table, "orders_enriched_v1");
    assert_eq!(pg.primary_key, ["order_id"]);
    assert_eq!(
        plan.topics[0].name,
        "sluice.team-payments.orders-enriched.v1"
    );
    assert_eq!(plan.topics[0].partitions, 12);
    assert_eq!(plan.output_schema, output.to_json_schema());
    insta::assert_yaml_snapshot!(plan);
    insta::assert_snapshot!(plan.summary().join("\n"));
}

#[test]
fn order_search_lands_in_an_index_behind_an_alias() {
    let (product, output, cluster) = product("order-search");
    let plan = plan_product(&product, &output, &cluster, &[], 2).unwrap();
    let TargetPlan::Elasticsearch(es) = &plan.target else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (es.index.as_str(), es.alias.as_str()),
        ("order-search_v2", "order-search")
    );
    assert_eq!((es.shards, es.replicas), (1, 0));
    assert_eq!(plan.topics[0].partitions, 1);
    insta::assert_yaml_snapshot!(plan);
}

#[test]
fn open_orders_cache_lands_in_redis_hashes_with_a_ttl() {
    let (product, output, cluster) = product("open-orders-cache");
    let plan = plan_product(&product, &output, &cluster, &[3], 1).unwrap();
    let TargetPlan::Redis(redis) = &plan.target else {
        panic!("{plan:?}")
    };
    assert_eq!(redis.ttl_seconds, Some(7 * 86_400));
    assert_eq!(redis.data_key("o-1"), "open_orders:v1:o-1");
    assert_eq!(redis.user, "sluice_team-shop_open-orders-cache");
    insta::assert_yaml_snapshot!(plan);
}

#[test]
fn the_plan_serializes_in_camel_case_with_a_typed_target() {
    let (product, output, cluster) = product("orders-enriched");
    let json =
        serde_json::to_value(plan_product(&product, &output, &cluster, &[1], 1).unwrap()).unwrap();
    assert_eq!(json["target"]["type"], "postgres");
    assert!(json["target"]["primaryKey"].is_array());
    assert!(json["outputSchema"]["properties"].is_object());
    assert_eq!(json["topics"][0]["configs"]["cleanup.policy"], "compact");
}

#[test]
fn database_isolation_puts_the_product_in_the_team_database() {
    let (product, output, mut cluster) = product("orders-enriched");
    cluster.isolation = Isolation::Database;
    let plan = plan_product(&product, &output, &cluster, &[1], 1).unwrap();
    let TargetPlan::Postgres(pg) = &plan.target else {
        panic!("{plan:?}")
    };
    assert_eq!(pg.database.as_deref(), Some("team-payments"));
    assert_eq!(pg.schema, "public");
}

#[test]
fn products_that_cannot_be_planned_say_why() {
    let (mut product, output, mut cluster) = product("orders-enriched");
    assert!(matches!(
        plan_product(&product, &output, &cluster, &[1], 0),
        Err(PlanError::Provision(_))
    ));

    cluster.allowed_teams = vec!["team-other".to_owned()];
    let err = plan_product(&product, &output, &cluster, &[1], 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "team `team-payments` may not provision into target cluster `shared-pg`"
    );

    cluster.allowed_teams = vec!["*".to_owned()];
    cluster.isolation = Isolation::Index;
    let err = plan_product(&product, &output, &cluster, &[1], 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "postgres targets cannot be isolated by `index`"
    );

    product.metadata.team = None;
    assert!(matches!(
        plan_product(&product, &output, &cluster, &[1], 1),
        Err(PlanError::MissingTeam { .. })
    ));
}
