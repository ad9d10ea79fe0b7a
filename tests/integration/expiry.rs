//! Expiry: products are warned about before their `expires` date, owners extend without a
//! new approval, and expired products are marked for teardown — each step audited.

use axum::http::{Method, StatusCode};
use chrono::{Duration, Utc};
use serde_json::json;
use sluice_api::auth::Role;
use sluice_api::expiry::sweep;
use sluice_store::{AuditQuery, ObjectKey};

use crate::api::{TestApi, path_of, retail_documents};

#[tokio::test]
async fn products_are_warned_extended_and_expired() {
    let api = TestApi::new().await;
    for doc in retail_documents()
        .into_iter()
        .filter(|d| d["kind"] != "DataProduct")
    {
        assert!(api.put_json(&path_of(&doc), &doc).await.status.is_success());
    }
    let requester = api.token(Role::Requester, "team-shop").await;
    let platform = api.token(Role::Approver, "platform").await;
    let today = Utc::now().date_naive();
    let mut doc = retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == "open-orders-cache")
        .unwrap();
    doc["spec"]["expires"] = json!((today + Duration::days(5)).to_string());
    let put = |doc: serde_json::Value| {
        let api = &api;
        let requester = requester.clone();
        async move {
            api.send_as(
                Some(&requester),
                Method::PUT,
                &path_of(&doc),
                Some("application/json"),
                doc.to_string().into_bytes(),
            )
            .await
        }
    };
    assert_eq!(put(doc.clone()).await.status, StatusCode::CREATED);
    let approve = api
        .send_as(
            Some(&platform),
            Method::POST,
            &format!("{}/approve", path_of(&doc)),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(
        approve.body["status"]["approvedGeneration"],
        json!(1),
        "{}",
        approve.body
    );
    let key = ObjectKey::data_product("team-shop", "open-orders-cache");
    let status = |api: &TestApi| {
        let key = key.clone();
        let store = api.store.clone();
        async move { store.get(&key).await.unwrap().unwrap().status.unwrap() }
    };

    let done = sweep(&api.store, today, Duration::days(14)).await.unwrap();
    assert_eq!(done.warned, ["team-shop/open-orders-cache"]);
    let s = status(&api).await;
    assert_eq!(s["conditions"][0]["type"], json!("Expiring"), "{s}");
    // The warning is a metric too, scraped without a token.
    let scraped = api
        .send_as(None, Method::GET, "/metrics", None, Vec::new())
        .await;
    assert_eq!(scraped.status, StatusCode::OK);
    let text = scraped.body.as_str().unwrap().to_owned();
    assert!(text.contains("sluice_products_expiring 1"), "{text}");
    assert!(
        text.contains("sluice_products{phase=\"Approved\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sluice_products_pending_approval 0"),
        "{text}"
    );
    // A second sweep changes nothing.
    assert_eq!(
        sweep(&api.store, today, Duration::days(14)).await.unwrap(),
        Default::default()
    );

    // Extending is a narrowing change: approved at once, and the warning goes.
    doc["spec"]["expires"] = json!((today + Duration::days(90)).to_string());
    let extended = put(doc.clone()).await;
    assert_eq!(
        extended.body["status"]["approvedGeneration"],
        json!(2),
        "{}",
        extended.body
    );
    let done = sweep(&api.store, today, Duration::days(14)).await.unwrap();
    assert_eq!(done.cleared, ["team-shop/open-orders-cache"]);
    assert!(
        status(&api).await["conditions"]
            .as_array()
            .is_none_or(|c| c.is_empty())
    );

    // Past the date it is marked for teardown.
    let done = sweep(&api.store, today + Duration::days(91), Duration::days(14))
        .await
        .unwrap();
    assert_eq!(done.expired, ["team-shop/open-orders-cache"]);
    let s = status(&api).await;
    assert_eq!(s["phase"], json!("Deleting"));

    let actions: Vec<String> = api
        .store
        .audit_entries(&AuditQuery::for_object(&key))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    for expected in ["expiry.warn", "expiry.extend", "expiry.expire"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
}
