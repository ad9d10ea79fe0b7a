//! Reading documents from bytes: YAML (one or many documents) or JSON, within budgets.
//!
//! Untrusted input is bounded three ways before and while it is read: its size, the nesting
//! of its flow collections (checked on the raw bytes, because the YAML parser reads a whole
//! document before anything can stop it, and deep flow nesting costs it quadratic time), and
//! the number of values it expands to (checked while deserializing, so alias bombs are
//! stopped after a bounded amount of work and memory). Duplicate and non-string keys are
//! errors, never silently merged.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::Problem;

/// The largest input accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
/// The deepest nesting of flow collections (`[`, `{`) accepted in the raw text.
pub const MAX_FLOW_NESTING: usize = 64;
/// The most values (scalars and collections) one input may expand to, aliases included.
pub const MAX_VALUES: usize = 200_000;
/// The most bytes of string data one input may expand to, aliases included.
pub const MAX_EXPANDED_BYTES: usize = 8 * MAX_DOCUMENT_BYTES;

/// Parses YAML or JSON text into documents; empty documents (a trailing `---`) are skipped.
/// A problem's pointer is `""` and its message names the document (1-based) and position.
pub fn parse_documents(bytes: &[u8]) -> Result<Vec<Value>, Problem> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(Problem::new(
            "",
            format!(
                "input is {} bytes; at most {MAX_DOCUMENT_BYTES} are accepted",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Problem::new(
            "",
            format!(
                "input is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })?;
    let depth = flow_nesting(text);
    if depth > MAX_FLOW_NESTING {
        return Err(Problem::new(
            "",
            format!("input nests {depth} levels deep; at most {MAX_FLOW_NESTING} are accepted"),
        ));
    }
    let budget = Budget {
        values: Cell::new(0),
        bytes: Cell::new(0),
    };
    let mut documents = Vec::new();
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = BoundedValue { budget: &budget }
            .deserialize(doc)
            .map_err(|e| {
                let message = e.to_string();
                Problem::new(
                    "",
                    if message.contains("document") {
                        message
                    } else {
                        format!("document {}: {message}", index + 1)
                    },
                )
            })?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The deepest nesting of `[`/`{` in `text`; brackets inside quotes count too, which can
/// only make the check stricter.
fn flow_nesting(text: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

struct Budget {
    values: Cell<usize>,
    bytes: Cell<usize>,
}

impl Budget {
    fn spend<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        let values = self.values.get() + 1;
        let total = self.bytes.get().saturating_add(bytes);
        self.values.set(values);
        self.bytes.set(total);
        if values > MAX_VALUES {
            return Err(E::custom(format!(
                "input expands to more than {MAX_VALUES} values (YAML aliases included)"
            )));
        }
        if total > MAX_EXPANDED_BYTES {
            return Err(E::custom(format!(
                "input expands to more than {MAX_EXPANDED_BYTES} bytes of text (YAML aliases included)"
            )));
        }
        Ok(())
    }
}

/// Deserializes a JSON value, spending the budget on every value.
struct BoundedValue<'b> {
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.spend(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.budget.spend(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.budget.spend(0)?;
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.spend(0)?;
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("numbers must be finite (no .nan or .inf)"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.spend(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.spend(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Value, E> {
        Err(E::custom("binary values are not accepted"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.spend(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.spend(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(BoundedValue {
            budget: self.budget,
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.budget.spend(0)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key_seed(BoundedValue {
            budget: self.budget,
        })? {
            let Value::String(key) = key else {
                return Err(de::Error::custom(format!(
                    "mapping keys must be strings, found {key}"
                )));
            };
            let value = map.next_value_seed(BoundedValue {
                budget: self.budget,
            })?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_yaml_and_json() {
        let docs = parse_documents(b"a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(
            docs,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
        let docs = parse_documents(br#"{"kind": "Dataset"}"#).unwrap();
        assert_eq!(docs[0]["kind"], "Dataset");
    }

    #[test]
    fn refuses_duplicates_and_odd_keys() {
        let err = parse_documents(b"a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{err}");
        let err = parse_documents(br#"{"a": 1, "a": 2}"#).unwrap_err();
        assert!(err.message.contains("duplicate key"), "{err}");
        assert!(
            parse_documents(b"1: x\n")
                .unwrap_err()
                .message
                .contains("keys must be strings")
        );
        assert!(parse_documents(b"a: .nan\n").is_err());
    }

    #[test]
    fn refuses_bad_bytes_bombs_and_giants() {
        assert!(
            parse_documents(b"a: \xff\xfe")
                .unwrap_err()
                .message
                .contains("not UTF-8")
        );
        let bomb = "a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n\
                    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n\
                    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n\
                    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n\
                    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n\
                    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n\
                    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n\
                    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n\
                    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
        assert!(parse_documents(bomb.as_bytes()).is_err());
        // Few aliases of one large anchor: bounded by the expanded size, not the alias count.
        let big = "x".repeat(256 * 1024);
        let wide = format!("a: &a \"{big}\"\nb: [{}]\n", vec!["*a"; 100].join(","));
        let err = parse_documents(wide.as_bytes()).unwrap_err();
        assert!(err.message.contains("bytes of text"), "{err}");
        let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            parse_documents(deep.as_bytes())
                .unwrap_err()
                .message
                .contains("nests")
        );
        let huge = vec![b'a'; MAX_DOCUMENT_BYTES + 1];
        assert!(
            parse_documents(&huge)
                .unwrap_err()
                .message
                .contains("at most")
        );
    }
}
