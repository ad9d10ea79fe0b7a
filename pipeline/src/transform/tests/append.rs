//! Append mode: every passing record is a row; nothing is ever deleted.

use serde_json::json;

use super::*;

fn append(key: Option<&str>) -> Value {
    let mut spec = json!({
        "sources": [{"name": "o", "dataset": "shop.orders"}],
        "filter": r#"o.status == "PAID""#,
        "fields": {"order_id": "o.id", "status": "o.status"},
        "target": {"cluster": "shared-pg", "name": "paid_log", "mode": "append"},
    });
    if let Some(key) = key {
        spec["key"] = json!(key);
    }
    product(spec)
}

#[test]
fn append_mode_writes_passing_records_and_never_deletes() {
    for key in [None, Some("o.id"), Some("o.currency")] {
        let p = compile(&append(key));
        let paid = json!({"id": "o-1", "customer_id": "c", "amount": 1, "status": "PAID"});
        let shipped = json!({"id": "o-1", "customer_id": "c", "amount": 1, "status": "SHIPPED"});
        assert_eq!(
            p.apply(Some(b"o-1"), Some(&paid)).unwrap(),
            emit("", Some(json!({"order_id": "o-1", "status": "PAID"}))),
            "{key:?}"
        );
        assert_eq!(
            p.apply(Some(b"o-1"), Some(&shipped)).unwrap(),
            None,
            "{key:?}"
        );
        assert_eq!(p.apply(Some(b"o-1"), None).unwrap(), None, "{key:?}");
        assert_eq!(p.apply(None, None).unwrap(), None, "{key:?}");
    }
}

#[test]
fn append_mode_does_not_evaluate_the_key() {
    let p = compile(&append(Some("o.currency")));
    // No `currency`: upsert would refuse a null key; append does not need one.
    let keyless = json!({"id": "o-1", "customer_id": "c", "amount": 1, "status": "PAID"});
    assert_eq!(
        p.apply(None, Some(&keyless)).unwrap(),
        emit("", Some(json!({"order_id": "o-1", "status": "PAID"})))
    );
}
