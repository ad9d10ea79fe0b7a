//! The diffs audit entries carry: what an object write changed, with URL passwords redacted.

use serde_json::{Map, Value};

/// What replaces the password of a URL in a diff.
const REDACTED: &str = "redacted";

/// The diff of an object write: `{"before": B, "after": A}` where `before` and `after` are the
/// object's states (`null` when it does not exist) pruned to what differs: members equal on
/// both sides are left out, recursively through objects; a member only in `before` was
/// removed, one only in `after` was added; arrays and scalars that differ appear whole.
pub(crate) fn object_diff(before: Option<Value>, after: Option<Value>) -> Value {
    let (before, after) = match (before, after) {
        (Some(before), Some(after)) => prune(&before, &after),
        (before, after) => (before.unwrap_or(Value::Null), after.unwrap_or(Value::Null)),
    };
    let mut diff = Map::new();
    diff.insert("before".to_owned(), before);
    diff.insert("after".to_owned(), after);
    Value::Object(diff)
}

fn prune(before: &Value, after: &Value) -> (Value, Value) {
    let (Value::Object(b), Value::Object(a)) = (before, after) else {
        return (before.clone(), after.clone());
    };
    let mut kept_before = Map::new();
    let mut kept_after = Map::new();
    for (key, old) in b {
        match a.get(key) {
            Some(new) if new == old => {}
            Some(new) => {
                let (old, new) = prune(old, new);
                kept_before.insert(key.clone(), old);
                kept_after.insert(key.clone(), new);
            }
            None => {
                kept_before.insert(key.clone(), old.clone());
            }
        }
    }
    for (key, new) in a {
        if !b.contains_key(key) {
            kept_after.insert(key.clone(), new.clone());
        }
    }
    (Value::Object(kept_before), Value::Object(kept_after))
}

/// `value` with the password of every URL in it (any string that parses as a URL with a
/// password, e.g. a target cluster's `postgres://user:pw@host/db`) replaced by `redacted`:
/// credentials never reach the audit log.
pub(super) fn redact(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(redact_url(text)),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, redact(value)))
                .collect(),
        ),
        other => other,
    }
}

fn redact_url(text: String) -> String {
    if !text.contains("://") {
        return text;
    }
    match url::Url::parse(&text) {
        Ok(mut url) if url.password().is_some() => match url.set_password(Some(REDACTED)) {
            Ok(()) => url.to_string(),
            Err(()) => REDACTED.to_owned(),
        },
        _ => text,
    }
}
