//! Approvals end to end through the API: who must approve (classification, PII, policy
//! rules), self-approval, re-approval on widening and none on narrowing, rejection with a
//! comment, the inbox, and the audit entries of each step.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_api::AppState;
use sluice_api::approvals::Policy;
use sluice_api::auth::Role;
use sluice_store::AuditQuery;

use crate::api::{Answer, TestApi, path_of, retail_documents};

fn product(name: &str) -> Value {
    retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap()
}

/// The catalog (datasets and clusters) applied by the admin; products are left to the test.
async fn catalog(api: &TestApi) {
    for doc in retail_documents()
        .into_iter()
        .filter(|d| d["kind"] != "DataProduct")
    {
        assert!(api.put_json(&path_of(&doc), &doc).await.status.is_success());
    }
}

async fn put(api: &TestApi, token: &str, doc: &Value) -> Answer {
    api.send_as(
        Some(token),
        Method::PUT,
        &path_of(doc),
        Some("application/json"),
        doc.to_string().into_bytes(),
    )
    .await
}

async fn decide(api: &TestApi, token: &str, doc: &Value, verb: &str, body: Value) -> Answer {
    let path = format!("{}/{verb}", path_of(doc));
    api.send_as(
        Some(token),
        Method::POST,
        &path,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

fn approval(answer: &Answer) -> &Value {
    &answer.body["status"]["approval"]
}

#[tokio::test]
async fn classified_sources_need_the_owner_and_the_platform() {
    let api = TestApi::new().await;
    catalog(&api).await;
    let requester = api.token(Role::Requester, "team-payments").await;
    let platform = api.token(Role::Approver, "platform").await;
    let crm_owner = api.token(Role::Owner, "team-crm").await;
    let shop_owner = api.token(Role::Owner, "team-shop").await;
    let doc = product("orders-enriched");

    let applied = put(&api, &requester, &doc).await;
    assert_eq!(applied.status, StatusCode::CREATED, "{}", applied.body);
    assert_eq!(applied.body["status"]["phase"], json!("PendingApproval"));
    assert_eq!(
        approval(&applied)["required"],
        json!(["platform", "owner:team-crm"])
    );
    assert!(
        approval(&applied)["reasons"]
            .to_string()
            .contains("confidential dataset crm.customers")
    );

    // The requester's role cannot approve at all; another team's owner has nothing to give.
    assert_eq!(
        decide(&api, &requester, &doc, "approve", json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let refused = decide(&api, &shop_owner, &doc, "approve", json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("platform, owner:team-crm")
    );

    // The owner's inbox shows it; the platform approver's too.
    let inbox = api
        .send_as(
            Some(&crm_owner),
            Method::GET,
            "/api/v1/approvals",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(inbox.body["items"].as_array().unwrap().len(), 1);
    let inbox = api
        .send_as(
            Some(&shop_owner),
            Method::GET,
            "/api/v1/approvals",
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(inbox.body["items"], json!([]));

    let partial = decide(
        &api,
        &platform,
        &doc,
        "approve",
        json!({"comment": "fine by platform", "generation": 1}),
    )
    .await;
    assert_eq!(partial.status, StatusCode::OK, "{}", partial.body);
    assert_eq!(partial.body["status"]["phase"], json!("PendingApproval"));
    let done = decide(
        &api,
        &crm_owner,
        &doc,
        "approve",
        json!({"comment": "names only, ok"}),
    )
    .await;
    assert_eq!(
        done.body["status"]["phase"],
        json!("Approved"),
        "{}",
        done.body
    );
    assert_eq!(done.body["status"]["approvedGeneration"], json!(1));
    // Nothing is left to approve.
    assert_eq!(
        decide(&api, &platform, &doc, "approve", json!({}))
            .await
            .status,
        StatusCode::CONFLICT
    );

    let actions: Vec<(String, String)> = api
        .store
        .audit_entries(&AuditQuery::for_object(
            &sluice_store::ObjectKey::data_product("team-payments", "orders-enriched"),
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.action, e.outcome))
        .collect();
    for expected in [
        ("approval.request", "pending"),
        ("approve", "partially-approved"),
        ("approve", "approved"),
    ] {
        assert!(
            actions
                .iter()
                .any(|(a, o)| a == expected.0 && o == expected.1),
            "missing audit entry {expected:?} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let api = TestApi::new().await;
    catalog(&api).await;
    let doc = product("open-orders-cache");
    // The admin applies, so the admin (who may approve anything) is the requester.
    assert_eq!(
        api.put_json(&path_of(&doc), &doc).await.status,
        StatusCode::CREATED
    );
    let answer = api
        .send(
            Method::POST,
            &format!("{}/approve", path_of(&doc)),
            Some("application/json"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(
        answer.body["detail"]
            .as_str()
            .unwrap()
            .contains("requester"),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn widening_needs_approval_again_and_narrowing_does_not() {
    let api = TestApi::new().await;
    catalog(&api).await;
    let requester = api.token(Role::Requester, "team-shop").await;
    let platform = api.token(Role::Approver, "platform").await;
    let shop_owner = api.token(Role::Owner, "team-shop").await;
    let mut doc = product("open-orders-cache");
    put(&api, &requester, &doc).await;
    let approved = decide(&api, &platform, &doc, "approve", json!({})).await;
    assert_eq!(
        approved.body["status"]["approvedGeneration"],
        json!(1),
        "{}",
        approved.body
    );

    // A new field that is personal data: generation 2 waits for the owner and the platform,
    // generation 1 keeps running.
    doc["spec"]["fields"]["email"] = json!("o.shipping_email");
    let widened = put(&api, &requester, &doc).await;
    assert_eq!(widened.body["metadata"]["generation"], json!(2));
    assert_eq!(widened.body["status"]["approvedGeneration"], json!(1));
    assert_eq!(widened.body["status"]["phase"], json!("Approved"));
    assert_eq!(
        approval(&widened)["required"],
        json!(["platform", "owner:team-shop"])
    );
    assert!(
        widened.body["status"]["message"]
            .as_str()
            .unwrap()
            .contains("generation 1 keeps running")
    );
    assert!(
        approval(&widened)["reasons"]
            .to_string()
            .contains("new field email")
    );
    decide(&api, &platform, &doc, "approve", json!({})).await;
    let both = decide(&api, &shop_owner, &doc, "approve", json!({})).await;
    assert_eq!(
        both.body["status"]["approvedGeneration"],
        json!(2),
        "{}",
        both.body
    );

    // Removing the field and starting later only narrows: approved at once.
    doc["spec"]["fields"]
        .as_object_mut()
        .unwrap()
        .remove("email");
    doc["spec"]["sources"][0]["from"] = json!("1d");
    let narrowed = put(&api, &requester, &doc).await;
    assert_eq!(narrowed.body["metadata"]["generation"], json!(3));
    assert_eq!(
        narrowed.body["status"]["approvedGeneration"],
        json!(3),
        "{}",
        narrowed.body
    );

    // Reading further back widens again.
    doc["spec"]["sources"][0]["from"] = json!("30d");
    let earlier = put(&api, &requester, &doc).await;
    assert_eq!(earlier.body["status"]["approvedGeneration"], json!(3));
    assert!(
        approval(&earlier)["reasons"]
            .to_string()
            .contains("further back")
    );
}

#[tokio::test]
async fn rejection_needs_a_comment_and_says_why() {
    let api = TestApi::new().await;
    catalog(&api).await;
    let requester = api.token(Role::Requester, "team-support").await;
    let platform = api.token(Role::Approver, "platform").await;
    let doc = product("order-search");
    put(&api, &requester, &doc).await;
    let refused = decide(&api, &platform, &doc, "reject", json!({})).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let rejected = decide(
        &api,
        &platform,
        &doc,
        "reject",
        json!({"comment": "use the support index instead"}),
    )
    .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    assert_eq!(rejected.body["status"]["phase"], json!("Rejected"));
    assert!(
        rejected.body["status"]["message"]
            .as_str()
            .unwrap()
            .contains("use the support index instead")
    );
    assert_eq!(
        approval(&rejected)["rejected"]["comment"],
        json!("use the support index instead")
    );
    // A new generation asks again.
    let mut doc = doc;
    doc["metadata"]["description"] = json!("same spec: no new generation");
    assert_eq!(
        put(&api, &requester, &doc).await.body["status"]["phase"],
        json!("Rejected")
    );
    doc["spec"]["fields"]["currency"] = json!("o.currency");
    assert_eq!(
        put(&api, &requester, &doc).await.body["status"]["phase"],
        json!("PendingApproval")
    );
}

#[tokio::test]
async fn a_policy_rule_approves_internal_data_into_the_teams_own_target() {
    let policy: Policy = serde_yaml::from_str(
        "autoApprove:\n  - {name: internal-own-target, maxClassification: internal, ownTargetOnly: true}\n",
    )
    .unwrap();
    let api = TestApi::with_state(|store| AppState::new(store).with_policy(policy)).await;
    catalog(&api).await;
    // A cluster of team-shop's own.
    let mut cluster = retail_documents()
        .into_iter()
        .find(|d| d["metadata"]["name"] == "shared-redis")
        .unwrap();
    cluster["metadata"]["name"] = json!("shop-redis");
    cluster["spec"]["allowedTeams"] = json!(["team-shop"]);
    assert!(
        api.put_json(&path_of(&cluster), &cluster)
            .await
            .status
            .is_success()
    );
    let requester = api.token(Role::Requester, "team-shop").await;

    let mut doc = product("open-orders-cache");
    doc["spec"]["target"]["cluster"] = json!("shop-redis");
    let applied = put(&api, &requester, &doc).await;
    assert_eq!(
        applied.body["status"]["phase"],
        json!("Approved"),
        "{}",
        applied.body
    );
    assert!(
        approval(&applied)["granted"][0]["by"]
            .as_str()
            .unwrap()
            .contains("internal-own-target")
    );

    // Into the shared cluster the rule does not apply.
    doc["metadata"]["name"] = json!("open-orders-shared");
    doc["spec"]["target"]["cluster"] = json!("shared-redis");
    doc["spec"]["target"]["name"] = json!("open_orders_shared");
    assert_eq!(
        put(&api, &requester, &doc).await.body["status"]["phase"],
        json!("PendingApproval")
    );
    // Nor with personal data.
    let mut pii = product("open-orders-cache");
    pii["metadata"]["name"] = json!("open-orders-pii");
    pii["spec"]["target"] = json!({"cluster": "shop-redis", "name": "open_orders_pii"});
    pii["spec"]["fields"]["email"] = json!("o.shipping_email");
    assert_eq!(
        put(&api, &requester, &pii).await.body["status"]["phase"],
        json!("PendingApproval")
    );
    assert!(api.store.verify_audit().await.unwrap().ok);
}
