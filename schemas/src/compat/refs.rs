//! `$ref` stability: a `$ref` that is identical on both sides is only as good as its target.

use std::collections::HashSet;

use serde_json::Value;

fn collect_refs<'v>(value: &'v Value, out: &mut Vec<&'v str>, nested_id: &mut bool, depth: usize) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => out.push(s),
                    ("$id", Value::String(_)) if depth > 0 => *nested_id = true,
                    _ => {}
                }
                collect_refs(v, out, nested_id, depth + 1);
            }
        }
        Value::Array(items) => {
            for item in items {
                collect_refs(item, out, nested_id, depth + 1);
            }
        }
        _ => {}
    }
}

fn has_scheme(uri: &str) -> bool {
    let Some((scheme, _)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The `$ref` values whose targets cannot be shown identical in `a` and `b`.
pub(super) fn unstable_refs(a: &Value, b: &Value) -> HashSet<String> {
    let mut refs = Vec::new();
    let mut nested_id = false;
    collect_refs(a, &mut refs, &mut nested_id, 0);
    collect_refs(b, &mut refs, &mut nested_id, 0);
    let any_id = nested_id || a.get("$id").is_some() || b.get("$id").is_some();
    let mut unstable = HashSet::new();
    let mut stable: Vec<(&str, &Value)> = Vec::new();
    for r in refs {
        let target = if has_scheme(r) {
            // An absolute URI names an external, immutable document — unless the schemas
            // carry identifiers it could point back into.
            if any_id {
                unstable.insert(r.to_owned());
            }
            continue;
        } else if nested_id || r.contains('%') {
            None
        } else if let Some(pointer) = r.strip_prefix('#')
            && (pointer.is_empty() || pointer.starts_with('/'))
        {
            match (a.pointer(pointer), b.pointer(pointer)) {
                (Some(x), Some(y)) if x == y => Some(x),
                _ => None,
            }
        } else {
            None
        };
        match target {
            Some(t) => stable.push((r, t)),
            None => {
                unstable.insert(r.to_owned());
            }
        }
    }
    // A target is only stable if every reference inside it is.
    loop {
        let before = unstable.len();
        for (r, target) in &stable {
            if !unstable.contains(*r) && contains_unstable(target, &unstable) {
                unstable.insert((*r).to_owned());
            }
        }
        if unstable.len() == before {
            return unstable;
        }
    }
}

pub(super) fn contains_unstable(value: &Value, unstable: &HashSet<String>) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            match (k.as_str(), v) {
                ("$ref", Value::String(s)) if unstable.contains(s) => return true,
                ("$dynamicRef" | "$recursiveRef", _) => return true,
                _ => {}
            }
            contains_unstable(v, unstable)
        }),
        Value::Array(items) => items.iter().any(|v| contains_unstable(v, unstable)),
        _ => false,
    }
}
