//! Authentication and the access matrix, exhaustively: every endpoint × every role × own and
//! other team, plus requests without, with malformed, unknown, expired and revoked tokens.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sluice_api::auth::matrix::{self, RULES};
use sluice_api::auth::tokens;
use sluice_api::auth::{Principal, Role, Via};
use sluice_store::{Audit, NewToken};

use crate::api::{TestApi, retail_documents};

const OWN_TEAM: &str = "team-payments";
const OTHER_TEAM: &str = "team-other";

/// A concrete path for a route template, naming objects of the retail example.
fn concrete(template: &str) -> String {
    template
        .replace("{team}", OWN_TEAM)
        .replace("/datasets/{name}", "/datasets/shop.orders")
        .replace("/targetclusters/{name}", "/targetclusters/shared-pg")
        .replace("{name}", "orders-enriched")
        .replace("{version}", "1")
        .replace("{kind}", "dataproduct")
        .replace("{id}", "no-such-token")
}

#[tokio::test]
async fn every_endpoint_for_every_role_and_team() {
    // With Kafka, as `sluice serve` runs: endpoints that read it answer rather than 503.
    let api = TestApi::with_kafka().await;
    api.apply_retail().await;
    let mut failures = Vec::new();
    for role in Role::ALL {
        for team in [OWN_TEAM, OTHER_TEAM] {
            let token = api.token(role, team).await;
            let principal = Principal {
                name: String::new(),
                team: team.to_owned(),
                role,
                via: Via::Token,
            };
            for rule in RULES {
                let method = Method::from_bytes(rule.method.as_bytes()).unwrap();
                let path = concrete(rule.path);
                let path_team = rule.path.contains("{team}").then_some(OWN_TEAM);
                let expected = matrix::allows(rule.access, &principal, path_team);
                // A body that is valid where one is needed is irrelevant: refusals come first.
                // Live streams never end: only their status is read.
                let status = if path.ends_with("/events") {
                    api.status_as(Some(&token), method.clone(), &path).await
                } else {
                    api.send_as(
                        Some(&token),
                        method.clone(),
                        &path,
                        Some("application/json"),
                        b"{}".to_vec(),
                    )
                    .await
                    .status
                };
                let refused = status == StatusCode::FORBIDDEN;
                if status == StatusCode::UNAUTHORIZED || refused == expected {
                    failures.push(format!(
                        "{role}@{team} {} {path}: {} (expected {})",
                        rule.method,
                        status,
                        if expected { "allowed" } else { "403" }
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn the_matrix_covers_exactly_the_routes_and_its_document_is_current() {
    let (_, openapi) = sluice_api::api();
    let mut routes = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    let public: BTreeSet<(String, String)> = matrix::PUBLIC
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let unlisted: Vec<_> = public.difference(&routes).collect();
    assert!(
        unlisted.is_empty(),
        "public endpoints that are not routes: {unlisted:?}"
    );
    let routes: BTreeSet<(String, String)> = routes.difference(&public).cloned().collect();
    let declared: BTreeSet<(String, String)> = RULES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned()))
        .collect();
    let both: Vec<_> = declared.intersection(&public).collect();
    assert!(both.is_empty(), "public and in the matrix: {both:?}");
    let missing: Vec<_> = routes.difference(&declared).collect();
    let stale: Vec<_> = declared.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without an access rule: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "access rules for routes that do not exist: {stale:?}"
    );

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/roles.md");
    let rendered = matrix::render_markdown();
    if std::env::var_os("SLUICE_UPDATE_DOCS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap_or_default(),
        rendered,
        "docs/roles.md is stale: run with SLUICE_UPDATE_DOCS=1 and commit"
    );
}

#[tokio::test]
async fn team_boundaries_hold() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let product = retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == "orders-enriched")
        .unwrap();
    let body = product.to_string().into_bytes();
    let other = api.token(Role::Requester, OTHER_TEAM).await;
    let own = api.token(Role::Requester, OWN_TEAM).await;
    let path = "/api/v1/products/team-payments/orders-enriched";
    let answer = api
        .send_as(
            Some(&other),
            Method::PUT,
            path,
            Some("application/json"),
            body.clone(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert_eq!(answer.body["code"], json!("forbidden"));
    let answer = api
        .send_as(
            Some(&own),
            Method::PUT,
            path,
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    // Requesters cannot touch target clusters or tokens, whatever their team.
    let answer = api
        .send_as(
            Some(&own),
            Method::DELETE,
            "/api/v1/targetclusters/shared-pg",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    let answer = api
        .send_as(Some(&own), Method::GET, "/api/v1/tokens", None, Vec::new())
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    // Owners may change only their own team's datasets.
    let owner_other = api.token(Role::Owner, OTHER_TEAM).await;
    let dataset = retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == "shop.orders")
        .unwrap();
    let answer = api
        .send_as(
            Some(&owner_other),
            Method::PUT,
            "/api/v1/datasets/shop.orders",
            Some("application/json"),
            dataset.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    let owner_shop = api.token(Role::Owner, "team-shop").await;
    let answer = api
        .send_as(
            Some(&owner_shop),
            Method::PUT,
            "/api/v1/datasets/shop.orders",
            Some("application/json"),
            dataset.to_string().into_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn bad_tokens_get_401() {
    let api = TestApi::new().await;
    let path = "/api/v1/datasets";
    let answer = api.send_as(None, Method::GET, path, None, Vec::new()).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.body["code"], json!("unauthenticated"));
    for token in [
        "",
        "slc_not-a-real-token",
        "x".repeat(10_000).as_str(),
        "slc_with spaces and ; semicolons",
    ] {
        let answer = api
            .send_as(Some(token), Method::GET, path, None, Vec::new())
            .await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "token {:?}",
            &token[..token.len().min(20)]
        );
    }
    // Expired.
    let expired = "slc_expired-token";
    api.store
        .create_token(
            NewToken {
                name: "expired".into(),
                team: OWN_TEAM.into(),
                role: "viewer".into(),
                hash: tokens::hash(expired),
                expires_at: Some(chrono::Utc::now() - chrono::Duration::seconds(1)),
            },
            &Audit::new("test", ""),
        )
        .await
        .unwrap();
    assert_eq!(
        api.send_as(Some(expired), Method::GET, path, None, Vec::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Revoked through the API: works before, not after.
    let created = api
        .send(
            Method::POST,
            "/api/v1/tokens",
            Some("application/json"),
            json!({"name": "ci", "team": OWN_TEAM, "role": "requester"})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("slc_"));
    assert_eq!(
        api.send_as(Some(&token), Method::GET, path, None, Vec::new())
            .await
            .status,
        StatusCode::OK
    );
    let listed = api.get("/api/v1/tokens").await.body;
    assert!(
        !listed.to_string().contains(&token),
        "the token text is listed"
    );
    let revoked = api
        .send(Method::DELETE, "/api/v1/tokens/ci", None, Vec::new())
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        api.send_as(Some(&token), Method::GET, path, None, Vec::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Public endpoints need nothing, and are outside the access check: a bad token is not
    // even looked at.
    let mut public = vec!["/healthz", "/readyz", "/api/v1/openapi.json", "/"];
    public.extend(matrix::PUBLIC.iter().map(|(_, path)| *path));
    for public in public {
        for token in [None, Some("slc_not-a-real-token")] {
            assert_eq!(
                api.send_as(token, Method::GET, public, None, Vec::new())
                    .await
                    .status,
                StatusCode::OK,
                "{public} with {token:?}"
            );
        }
    }
}

#[tokio::test]
async fn changes_are_audited_with_the_caller() {
    let api = TestApi::new().await;
    api.apply_retail().await;
    let entries = api
        .store
        .audit_entries(&sluice_store::AuditQuery::default())
        .await
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.action == "apply" && e.actor.contains("admin") && !e.request_id.is_empty()),
        "{entries:#?}"
    );
    assert!(api.store.verify_audit().await.unwrap().ok);
}
