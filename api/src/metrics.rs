//! `GET /metrics`: Prometheus/OpenMetrics gauges of what the metadata store holds — products
//! per phase, products awaiting approval, products about to expire.
//!
//! Computed at scrape time from the store, so every replica reports the same truth and no
//! counter can drift from it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use sluice_schemas::{ConditionStatus, DataProductStatus, Kind};
use sluice_store::ListQuery;

use crate::state::AppState;

/// The OpenMetrics text exposition of the current state.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let products = Family::<Vec<(String, String)>, Gauge>::default();
    let expiring = Gauge::<i64>::default();
    let backfill = Family::<Vec<(String, String)>, Gauge>::default();
    let dead_letters = Family::<Vec<(String, String)>, Gauge>::default();
    let lag = Family::<Vec<(String, String)>, Gauge>::default();
    let pending = Gauge::<i64>::default();
    let mut query = ListQuery {
        limit: ListQuery::MAX_LIMIT,
        ..ListQuery::default()
    };
    loop {
        let page = match state.store.list(Kind::DataProduct, &query).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: metadata store unavailable");
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "metadata store unavailable\n",
                )
                    .into_response();
            }
        };
        for object in &page.items {
            let status: Option<DataProductStatus> = object
                .status
                .clone()
                .and_then(|s| serde_json::from_value(s).ok());
            let phase = status
                .as_ref()
                .and_then(|s| serde_json::to_value(s.phase).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_else(|| "Unknown".to_owned());
            products
                .get_or_create(&vec![("phase".to_owned(), phase)])
                .inc();
            if let Some(status) = &status {
                let product = || {
                    vec![
                        ("team".to_owned(), object.key.team().to_owned()),
                        ("name".to_owned(), object.key.name().to_owned()),
                    ]
                };
                for source in &status.backfill {
                    for (state, events) in [("done", source.done), ("total", source.total)] {
                        let mut labels = product();
                        labels.push(("source".to_owned(), source.source.clone()));
                        labels.push(("state".to_owned(), state.to_owned()));
                        backfill
                            .get_or_create(&labels)
                            .set(i64::try_from(events).unwrap_or(i64::MAX));
                    }
                }
                if let Some(ms) = status.lag_ms {
                    lag.get_or_create(&product())
                        .set(i64::try_from(ms).unwrap_or(i64::MAX));
                }
                if let Some(count) = status.dead_letters {
                    dead_letters
                        .get_or_create(&product())
                        .set(i64::try_from(count).unwrap_or(i64::MAX));
                }
                if status
                    .approval
                    .as_ref()
                    .is_some_and(|a| a.rejected.is_none() && !a.missing().is_empty())
                {
                    pending.inc();
                }
                if status
                    .conditions
                    .iter()
                    .any(|c| c.condition_type == "Expiring" && c.status == ConditionStatus::True)
                {
                    expiring.inc();
                }
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let mut registry = Registry::with_prefix("sluice");
    registry.register("products", "Data products by lifecycle phase", products);
    registry.register(
        "products_pending_approval",
        "Data products whose latest generation awaits an approval",
        pending,
    );
    registry.register(
        "products_expiring",
        "Data products within the warning period before their expiry date",
        expiring,
    );
    registry.register(
        "product_backfill_events",
        "Backfill progress of each product's live version, per source: events done and to do",
        backfill,
    );
    registry.register(
        "product_lag_ms",
        "Live lag of each live product: event time to applied in its target, milliseconds",
        lag,
    );
    registry.register(
        "product_dead_letters",
        "Records of each product's live version sent to its dead-letter topic",
        dead_letters,
    );
    if let Some(metrics) = &state.controller_metrics {
        register_controller(&mut registry, &metrics.snapshot());
    }
    let mut body = String::new();
    if let Err(e) = encode(&mut body, &registry) {
        tracing::error!(error = %e, "metrics: encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The in-process controller's counters.
fn register_controller(registry: &mut Registry, m: &sluice_controller::MetricsSnapshot) {
    let counter = |value: u64| {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        c
    };
    let seconds = |micros: u64| {
        let c = Counter::<f64, AtomicU64>::default();
        c.inc_by(micros as f64 / 1e6);
        c
    };
    registry.register(
        "controller_reconciles",
        "Product reconciles run by this process's controller",
        counter(m.reconciles),
    );
    registry.register(
        "controller_reconcile_errors",
        "Product reconciles that failed (the product shows why)",
        counter(m.reconcile_errors),
    );
    registry.register(
        "controller_reconcile_seconds",
        "Time spent reconciling products",
        seconds(m.reconcile_micros),
    );
    registry.register(
        "controller_passes",
        "Reconcile passes over the products",
        counter(m.passes),
    );
    let mutations = Family::<Vec<(String, String)>, Counter>::default();
    mutations
        .get_or_create(&vec![("system".to_owned(), "kafka".to_owned())])
        .inc_by(m.kafka_mutations);
    mutations
        .get_or_create(&vec![("system".to_owned(), "target".to_owned())])
        .inc_by(m.target_mutations);
    registry.register(
        "controller_mutations",
        "Mutating calls the controller issued to Kafka and the target clusters",
        mutations,
    );
    let leader = Gauge::<i64>::default();
    leader.set(i64::from(m.leader));
    registry.register(
        "controller_leader",
        "1 when this process's controller leads",
        leader,
    );
}
