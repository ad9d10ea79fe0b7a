//! Schema compatibility: the case table in `compat_cases.yaml` under every rule, plus the
//! shape of what is reported (pointers, sides, directions, messages).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_schemas::Compatibility;
use sluice_schemas::compat::{self, Direction, Incompatibility, Side};

const RULES: [Compatibility; 7] = [
    Compatibility::None,
    Compatibility::Backward,
    Compatibility::BackwardTransitive,
    Compatibility::Forward,
    Compatibility::ForwardTransitive,
    Compatibility::Full,
    Compatibility::FullTransitive,
];

fn name(rule: Compatibility) -> String {
    let value = serde_json::to_value(rule).expect("a rule serializes");
    value.as_str().expect("a rule is a string").to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    old: Option<Value>,
    #[serde(default)]
    history: Option<Vec<Value>>,
    new: Value,
    expect: BTreeMap<String, Expect>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Expect {
    /// `ok`
    Ok(String),
    /// The fields reported, `field` or `field@version`.
    Fields(Vec<String>),
}

/// (field, against_version)
type Outcome = BTreeSet<(String, usize)>;

impl Case {
    fn previous(&self) -> Vec<Value> {
        match (&self.old, &self.history) {
            (Some(old), None) => vec![old.clone()],
            (None, Some(history)) if !history.is_empty() => history.clone(),
            _ => panic!(
                "case `{}`: give exactly one of `old` and `history`",
                self.name
            ),
        }
    }

    fn expected(&self, rule: Compatibility) -> Outcome {
        let latest = self.previous().len();
        if let Some(expect) = self.expect.get(&name(rule)) {
            return match expect {
                Expect::Ok(ok) => {
                    assert_eq!(
                        ok, "ok",
                        "case `{}`: `{ok}` is neither ok nor a list",
                        self.name
                    );
                    Outcome::new()
                }
                Expect::Fields(fields) => fields
                    .iter()
                    .map(|f| match f.rsplit_once('@') {
                        Some((field, v)) => (
                            field.to_owned(),
                            v.parse().expect("a version number after @"),
                        ),
                        None => (f.clone(), latest),
                    })
                    .collect(),
            };
        }
        let union = |a: Compatibility, b: Compatibility| {
            let mut out = self.expected(a);
            out.extend(self.expected(b));
            out
        };
        use Compatibility as C;
        match rule {
            C::None => Outcome::new(),
            C::Full => union(C::Backward, C::Forward),
            C::FullTransitive => union(C::BackwardTransitive, C::ForwardTransitive),
            C::BackwardTransitive if latest == 1 => self.expected(C::Backward),
            C::ForwardTransitive if latest == 1 => self.expected(C::Forward),
            _ => panic!("case `{}` must list {}", self.name, name(rule)),
        }
    }
}

fn cases() -> Vec<Case> {
    let text = include_str!("compat_cases.yaml");
    serde_yaml::from_str(text).expect("compat_cases.yaml parses")
}

/// What every reported incompatibility must look like, whatever the case.
fn check_shape(
    case: &Case,
    rule: Compatibility,
    previous: &[Value],
    found: &Incompatibility,
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail =
        |what: String| problems.push(format!("case `{}` {}: {what}", case.name, name(rule)));
    if found.rule != rule {
        fail(format!("reported rule {:?}", found.rule));
    }
    if !found.message.contains(&name(rule)) {
        fail(format!("message does not name the rule: {}", found.message));
    }
    let what = if found.field.is_empty() {
        "the record".to_owned()
    } else {
        format!("field `{}`", found.field)
    };
    if !found.message.starts_with(&what) {
        fail(format!(
            "message does not start with {what}: {}",
            found.message
        ));
    }
    let transitive = matches!(
        rule,
        Compatibility::BackwardTransitive
            | Compatibility::ForwardTransitive
            | Compatibility::FullTransitive
    );
    if !(1..=previous.len()).contains(&found.against_version)
        || (!transitive && found.against_version != previous.len())
    {
        fail(format!("against version {}", found.against_version));
    } else {
        let schema = match found.path_in {
            Side::New => &case.new,
            Side::Old => &previous[found.against_version - 1],
        };
        if schema.pointer(&found.path).is_none() {
            fail(format!(
                "{} is not a place in the {:?} schema",
                found.path, found.path_in
            ));
        }
    }
    let direction_ok = match found.direction {
        Direction::Backward => !matches!(
            rule,
            Compatibility::Forward | Compatibility::ForwardTransitive
        ),
        Direction::Forward => !matches!(
            rule,
            Compatibility::Backward | Compatibility::BackwardTransitive
        ),
    };
    if !direction_ok {
        fail(format!("direction {:?}", found.direction));
    }
    problems
}

#[test]
fn case_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        for key in case.expect.keys() {
            assert!(
                RULES.iter().any(|r| name(*r) == *key),
                "case `{}`: unknown rule {key}",
                case.name
            );
        }
        let previous = case.previous();
        for schema in previous.iter().chain([&case.new]) {
            if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
                failures.push(format!(
                    "case `{}`: not a valid JSON Schema: {e}",
                    case.name
                ));
            }
        }
        for rule in RULES {
            let found = compat::check(rule, &case.new, &previous);
            let actual: Outcome = found
                .iter()
                .map(|i| (i.field.clone(), i.against_version))
                .collect();
            let expected = case.expected(rule);
            if actual != expected {
                let messages: Vec<&str> = found.iter().map(|i| i.message.as_str()).collect();
                failures.push(format!(
                    "case `{}` {}: expected {expected:?}, got {actual:?}\n    {}",
                    case.name,
                    name(rule),
                    messages.join("\n    ")
                ));
            }
            for incompatibility in &found {
                failures.extend(check_shape(case, rule, &previous, incompatibility));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_is_exercised_both_ways() {
    let cases = cases();
    for rule in RULES.into_iter().filter(|r| *r != Compatibility::None) {
        let incompatible = cases
            .iter()
            .filter(|c| !c.expected(rule).is_empty())
            .count();
        let compatible = cases.iter().filter(|c| c.expected(rule).is_empty()).count();
        assert!(incompatible > 0 && compatible > 0, "{}", name(rule));
    }
    let transitive_only = cases
        .iter()
        .filter(|c| {
            c.expected(Compatibility::Backward).is_empty()
                && !c.expected(Compatibility::BackwardTransitive).is_empty()
        })
        .count();
    assert!(transitive_only > 0);
}

fn orders(amount_type: &str) -> Value {
    json!({
        "type": "object",
        "required": ["id", "amount"],
        "properties": {"id": {"type": "string"}, "amount": {"type": amount_type}}
    })
}

#[test]
fn type_change_is_reported_in_the_new_schema() {
    let found = compat::check(
        Compatibility::Backward,
        &orders("string"),
        &[orders("number")],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    let i = &found[0];
    assert_eq!(i.field, "amount");
    assert_eq!(i.path, "/properties/amount/type");
    assert_eq!(i.path_in, Side::New);
    assert_eq!(i.rule, Compatibility::Backward);
    assert_eq!(i.direction, Direction::Backward);
    assert_eq!(i.against_version, 1);
    assert_eq!(
        i.message,
        "field `amount`: version 1 writes number values, which the new schema (type string) \
         does not accept; BACKWARD requires the new schema to read data written with version 1"
    );
}

#[test]
fn full_reports_both_directions() {
    let found = compat::check(Compatibility::Full, &orders("string"), &[orders("number")]);
    let directions: Vec<Direction> = found.iter().map(|i| i.direction).collect();
    assert_eq!(directions, [Direction::Backward, Direction::Forward]);
    assert!(
        found[1]
            .message
            .contains("FULL requires version 1 to read data written with the new schema")
    );
}

#[test]
fn removed_things_point_into_the_old_schema() {
    let old = json!({"type": "object", "required": ["id", "amount"],
        "properties": {"id": {"type": "string"}, "amount": {"type": "number"}}});
    let new = json!({"type": "object", "additionalProperties": false, "required": ["id"],
        "properties": {"id": {"type": "string"}}});
    let found = compat::check(Compatibility::Full, &new, std::slice::from_ref(&old));
    let summary: Vec<(Direction, &str, Side)> = found
        .iter()
        .map(|i| (i.direction, i.path.as_str(), i.path_in))
        .collect();
    assert_eq!(
        summary,
        [
            // the new schema is closed and does not declare what version 1 writes
            (Direction::Backward, "/properties/amount", Side::Old),
            // version 1 requires what the new schema no longer writes
            (Direction::Forward, "/properties/amount", Side::Old),
        ]
    );
    assert!(
        found[0].message.contains("additionalProperties: false"),
        "{}",
        found[0].message
    );
    assert!(
        found[1]
            .message
            .contains("required by version 1 but not written by the new schema")
    );
}

#[test]
fn unsupported_keywords_compare_by_equality() {
    let old = json!({"type": "object", "properties": {"pay": {"oneOf": [{"type": "string"}]}}});
    let new = json!({"type": "object", "properties": {"pay": {"oneOf": [{"type": "integer"}]}}});
    let found = compat::check(Compatibility::Backward, &new, &[old]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].path, "/properties/pay/oneOf");
    assert!(
        found[0]
            .message
            .starts_with("field `pay`: cannot prove compatible: `oneOf` changed")
    );
}

#[test]
fn transitive_names_the_version() {
    let v1 = orders("integer");
    let v2 = orders("number");
    let found = compat::check(Compatibility::ForwardTransitive, &v2.clone(), &[v1, v2]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].against_version, 1);
    assert!(
        found[0]
            .message
            .contains("FORWARD_TRANSITIVE requires version 1 to read")
    );
}

#[test]
fn no_history_and_none_accept_anything() {
    assert!(compat::check(Compatibility::FullTransitive, &orders("string"), &[]).is_empty());
    assert!(compat::check(Compatibility::None, &json!(false), &[orders("string")]).is_empty());
}

#[test]
fn can_read_is_the_core_relation() {
    let number = json!({"type": "number"});
    let integer = json!({"type": "integer"});
    assert!(compat::can_read(&number, &integer).is_empty());
    let reasons = compat::can_read(&integer, &number);
    assert_eq!(reasons.len(), 1);
    assert_eq!(reasons[0].field, "");
    assert_eq!(reasons[0].reader_path.as_deref(), Some("/type"));
    assert_eq!(
        reasons[0].message,
        "the record: the writer writes number values, which the reader (type integer) does not accept"
    );
    // Boolean schemas: `true` reads anything, nothing but `false` is read by `false`.
    assert!(compat::can_read(&json!(true), &number).is_empty());
    assert!(compat::can_read(&number, &json!(false)).is_empty());
    assert_eq!(compat::can_read(&json!(false), &number).len(), 1);
}

/// Soundness against a real validator: whenever `can_read` accepts a pair, every instance the
/// writer admits is admitted by the reader. Writers are closed (`additionalProperties: false`
/// at every object), which makes the module's "writers write only declared fields" literal.
mod soundness {
    use proptest::prelude::*;
    use serde_json::{Value, json};
    use sluice_schemas::compat;

    fn leaf() -> BoxedStrategy<Value> {
        prop_oneof![
            Just(json!({"type": "integer"})),
            Just(json!({"type": "number"})),
            Just(json!({"type": ["integer", "null"]})),
            Just(json!({"type": "string"})),
            Just(json!({"type": ["string", "null"], "maxLength": 2})),
            Just(json!({"type": "string", "minLength": 1})),
            Just(json!({"type": "string", "format": "date-time"})),
            Just(json!({"type": "string", "pattern": "^a"})),
            Just(json!({"type": "integer", "minimum": 0})),
            Just(json!({"type": "number", "exclusiveMinimum": 0})),
            Just(json!({"type": "number", "maximum": 1, "multipleOf": 0.5})),
            Just(json!({"enum": [1, "x", null]})),
            Just(json!({"enum": [1, "x"]})),
            Just(json!({"const": 1})),
            Just(json!({"type": "boolean"})),
            Just(json!({"type": "array", "items": {"type": "integer"}})),
            Just(json!({"type": "array", "items": {"type": "number"}, "maxItems": 1})),
            Just(json!({})),
        ]
        .boxed()
    }

    fn object(inner: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
        (
            proptest::option::of(inner.clone()),
            proptest::option::of(inner),
            any::<(bool, bool)>(),
            proptest::option::of(any::<bool>()),
            any::<bool>(),
        )
            .prop_map(|(a, b, (ra, rb), ap, nullable)| {
                let mut properties = serde_json::Map::new();
                if let Some(a) = a {
                    properties.insert("a".into(), a);
                }
                if let Some(b) = b {
                    properties.insert("b".into(), b);
                }
                let required: Vec<&str> = [("a", ra), ("b", rb)]
                    .into_iter()
                    .filter(|(_, r)| *r)
                    .map(|(n, _)| n)
                    .collect();
                let mut schema = json!({
                    "type": if nullable { json!(["object", "null"]) } else { json!("object") },
                    "properties": properties,
                    "required": required,
                });
                if let Some(ap) = ap {
                    schema["additionalProperties"] = json!(ap);
                }
                schema
            })
            .boxed()
    }

    fn schema() -> impl Strategy<Value = Value> {
        object(prop_oneof![3 => leaf(), 1 => object(leaf())].boxed())
    }

    fn instance() -> impl Strategy<Value = Value> {
        let scalar = prop_oneof![
            Just(json!(null)),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(-1)),
            Just(json!(0.5)),
            Just(json!(1.5)),
            Just(json!("")),
            Just(json!("x")),
            Just(json!("ab")),
            Just(json!("abc")),
            Just(json!("2024-01-01T00:00:00Z")),
            Just(json!(true)),
            Just(json!([1])),
            Just(json!([1, 2.5])),
        ];
        scalar.prop_recursive(2, 8, 2, |inner| {
            (
                proptest::option::of(inner.clone()),
                proptest::option::of(inner),
            )
                .prop_map(|(a, b)| {
                    let mut map = serde_json::Map::new();
                    if let Some(a) = a {
                        map.insert("a".into(), a);
                    }
                    if let Some(b) = b {
                        map.insert("b".into(), b);
                    }
                    Value::Object(map)
                })
        })
    }

    /// `additionalProperties: false` on every object schema.
    fn close(schema: &mut Value) {
        if let Some(map) = schema.as_object_mut() {
            if map.contains_key("properties") {
                map.insert("additionalProperties".into(), json!(false));
            }
            for value in map.values_mut() {
                close(value);
            }
        }
    }

    fn valid(schema: &Value, instance: &Value) -> bool {
        jsonschema::options()
            .should_validate_formats(true)
            .build(schema)
            .expect("generated schemas are valid")
            .is_valid(instance)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn accepted_pairs_are_readable(
            reader in schema(),
            mut writer in schema(),
            instances in proptest::collection::vec(instance(), 40),
        ) {
            close(&mut writer);
            prop_assert!(compat::can_read(&writer, &writer).is_empty());
            if compat::can_read(&reader, &writer).is_empty() {
                for i in &instances {
                    prop_assert!(
                        !valid(&writer, i) || valid(&reader, i),
                        "accepted, but {i} is valid for the writer and not for the reader"
                    );
                }
            }
        }

        #[test]
        fn never_panics(a in any_json(), b in any_json()) {
            let _ = compat::can_read(&a, &b);
            prop_assert!(compat::can_read(&a, &a).is_empty());
        }
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let keys = prop_oneof![
            Just("type"),
            Just("properties"),
            Just("required"),
            Just("items"),
            Just("enum"),
            Just("const"),
            Just("minimum"),
            Just("additionalProperties"),
            Just("$ref"),
            Just("format"),
            Just("a"),
        ];
        let leaf = prop_oneof![
            Just(json!(null)),
            Just(json!(true)),
            Just(json!(false)),
            Just(json!(1)),
            Just(json!("string")),
            Just(json!("#/properties/a")),
            Just(json!(["a"])),
            Just(json!("object")),
        ];
        leaf.prop_recursive(3, 24, 4, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::vec((keys.clone(), inner), 0..4).prop_map(|pairs| {
                    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                }),
            ]
        })
    }
}
