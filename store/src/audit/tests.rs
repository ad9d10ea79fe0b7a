//! Unit tests of the chain, the head signature, diffs, redaction and the walk.

use serde_json::json;
use sha2::Digest;

use super::chain::RawEntry;
use super::diff::redact;
use super::verify::Walk;
use super::*;

fn raw(seq: i64, diff: &str) -> RawEntry {
    RawEntry {
        seq,
        time: "2025-01-02T03:04:05.678901Z".to_owned(),
        actor: "alice \"a\"\n".to_owned(),
        action: "apply".to_owned(),
        kind: "Dataset".to_owned(),
        team: String::new(),
        name: "shop.orders".to_owned(),
        generation: Some(2),
        request_id: "r-1".to_owned(),
        outcome: "updated".to_owned(),
        diff: diff.to_owned(),
        prev_hash: GENESIS_HASH.to_owned(),
        hash: String::new(),
    }
}

#[test]
fn canonical_text_is_fixed() {
    let entry = raw(7, r#"{"before":{"a":1},"after":{"a":2}}"#);
    assert_eq!(
        entry.canonical_text(),
        concat!(
            r#"{"seq":7,"time":"2025-01-02T03:04:05.678901Z","actor":"alice \"a\"\n","#,
            r#""action":"apply","kind":"Dataset","team":"","name":"shop.orders","#,
            r#""generation":2,"requestId":"r-1","outcome":"updated","#,
            r#""diff":"{\"before\":{\"a\":1},\"after\":{\"a\":2}}","#,
            r#""prevHash":"0000000000000000000000000000000000000000000000000000000000000000"}"#
        )
    );
    // It is what serde_json makes of the same fields in this order.
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Same<'a> {
        seq: i64,
        time: &'a str,
        actor: &'a str,
        action: &'a str,
        kind: &'a str,
        team: &'a str,
        name: &'a str,
        generation: Option<i64>,
        request_id: &'a str,
        outcome: &'a str,
        diff: &'a str,
        prev_hash: &'a str,
    }
    let mut entry = raw(1, "null");
    entry.generation = None;
    entry.actor = "\u{1}é\t\\".to_owned();
    let same = Same {
        seq: entry.seq,
        time: &entry.time,
        actor: &entry.actor,
        action: &entry.action,
        kind: &entry.kind,
        team: &entry.team,
        name: &entry.name,
        generation: entry.generation,
        request_id: &entry.request_id,
        outcome: &entry.outcome,
        diff: &entry.diff,
        prev_hash: &entry.prev_hash,
    };
    assert_eq!(
        entry.canonical_text(),
        serde_json::to_string(&same).unwrap()
    );
}

#[test]
fn hash_is_sha256_of_the_canonical_text() {
    let entry = raw(1, "null");
    let expected = hex::encode(Sha256::digest(entry.canonical_text().as_bytes()));
    assert_eq!(entry.computed_hash(), expected);
    assert_eq!(entry.computed_hash().len(), 64);
    assert_ne!(entry.computed_hash(), raw(2, "null").computed_hash());
}

#[test]
fn head_signatures_depend_on_key_seq_and_hash() {
    let key = AuditKey::from_secret(b"secret").unwrap();
    let other = AuditKey::from_secret(b"secret2").unwrap();
    let hash = raw(1, "null").computed_hash();
    let tag = key.sign(1, &hash);
    assert!(key.verifies(1, &hash, &tag));
    assert!(!other.verifies(1, &hash, &tag));
    assert!(!key.verifies(2, &hash, &tag));
    assert!(!key.verifies(1, GENESIS_HASH, &tag));
    assert!(!key.verifies(1, &hash, "zz"));
    assert!(matches!(
        AuditKey::from_secret(b""),
        Err(StoreError::InvalidAuditKey)
    ));
    assert_eq!(format!("{key:?}"), "AuditKey(<redacted>)");
    // HMAC-SHA256(secret, label) as the key, then HMAC over the head message.
    let mut derive = Hmac::<Sha256>::new_from_slice(b"secret").unwrap();
    derive.update(b"sluice-audit-key-v1");
    let derived = derive.finalize().into_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(&derived).unwrap();
    mac.update(format!("sluice-audit-head-v1\n1\n{hash}").as_bytes());
    assert_eq!(tag, hex::encode(mac.finalize().into_bytes()));
}

#[test]
fn diffs_keep_only_what_changed() {
    let before = json!({"metadata": {"name": "a", "tags": ["x"]}, "spec": {"k": 1, "gone": true, "deep": {"same": 1, "v": 1}}});
    let after = json!({"metadata": {"name": "a", "tags": ["x", "y"]}, "spec": {"k": 1, "new": null, "deep": {"same": 1, "v": 2}}});
    assert_eq!(
        object_diff(Some(before.clone()), Some(after.clone())),
        json!({
            "before": {"metadata": {"tags": ["x"]}, "spec": {"gone": true, "deep": {"v": 1}}},
            "after": {"metadata": {"tags": ["x", "y"]}, "spec": {"new": null, "deep": {"v": 2}}},
        })
    );
    assert_eq!(
        object_diff(None, Some(after.clone())),
        json!({"before": null, "after": after})
    );
    assert_eq!(
        object_diff(Some(before.clone()), None),
        json!({"before": before, "after": null})
    );
}

#[test]
fn url_passwords_are_redacted() {
    let value = json!({"spec": {"url": "postgres://admin:s3cret@db:5432/x", "other": "http://h/p", "list": ["redis://:pw@r:6379"]}});
    let text = redact(value).to_string();
    assert!(!text.contains("s3cret") && !text.contains(":pw@"), "{text}");
    assert!(
        text.contains("postgres://admin:redacted@db:5432/x"),
        "{text}"
    );
    assert!(text.contains("http://h/p"), "{text}");
}

#[test]
fn walks_name_the_first_break() {
    let key = AuditKey::from_secret(b"k").unwrap();
    let mut chain = Vec::new();
    let mut prev = GENESIS_HASH.to_owned();
    for seq in 1..=4 {
        let mut entry = raw(seq, "null");
        entry.prev_hash = prev;
        entry.hash = entry.computed_hash();
        prev = entry.hash.clone();
        chain.push(entry);
    }
    let walk = |entries: &[&RawEntry]| {
        let mut walk = Walk::default();
        for entry in entries {
            walk.check(entry);
        }
        walk
    };
    let all: Vec<&RawEntry> = chain.iter().collect();
    let head = |seq: i64, hash: &str| Some((seq, hash.to_owned(), key.sign(seq, hash)));
    let intact = walk(&all);
    assert_eq!(intact.first_broken, None);
    assert_eq!(intact.check_head(head(4, &chain[3].hash), &key), None);
    let reason = |b: Option<AuditBreak>| b.map(|b| (b.seq, b.reason));
    assert_eq!(
        reason(intact.check_head(None, &key)),
        Some((4, AuditBreakReason::HeadMissing))
    );
    assert_eq!(
        reason(intact.check_head(head(6, &chain[3].hash), &key)),
        Some((5, AuditBreakReason::Truncated))
    );
    assert_eq!(
        reason(intact.check_head(head(3, &chain[2].hash), &key)),
        Some((4, AuditBreakReason::Unsigned))
    );
    assert_eq!(
        reason(intact.check_head(head(4, &chain[2].hash), &key)),
        Some((4, AuditBreakReason::HeadMismatch))
    );
    assert_eq!(
        reason(intact.check_head(Some((4, chain[3].hash.clone(), "00".into())), &key)),
        Some((4, AuditBreakReason::HeadSignatureInvalid))
    );
    let gap = walk(&[&chain[0], &chain[2], &chain[3]]);
    assert_eq!(
        reason(gap.first_broken),
        Some((2, AuditBreakReason::Missing))
    );
    assert_eq!(gap.entries, 3);
}
