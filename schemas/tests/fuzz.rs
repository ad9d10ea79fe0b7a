//! Bounded property tests of validation on hostile input: random bytes, random YAML-ish text
//! and random mutations of the retail documents never panic or hang, and every refusal
//! carries at least one problem with a message and a JSON pointer.
//!
//! The seed is fixed and failures are not persisted, so every run checks the same inputs;
//! change `SEED` to explore others. Each case must finish within `CASE_TIMEOUT_MS` (proptest
//! runs the cases in a child process to enforce it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::LazyLock;

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngSeed, TestCaseError};
use serde_json::{Map, Number, Value};
use sluice_schemas::Document;
use sluice_schemas::validate::{
    CatalogDataset, Context, Problem, parse_documents, semantics, structure,
};

const SEED: u64 = 20_261_126;
const CASE_TIMEOUT_MS: u32 = 3_000;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(SEED),
        timeout: CASE_TIMEOUT_MS,
        max_shrink_time: 10_000,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

fn retail(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/retail")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "${SLUICE_TEST_POSTGRES_URL}",
            "postgres://u:p@127.0.0.1:5432/db",
        )
        .replace("${SLUICE_TEST_OPENSEARCH_URL}", "http://127.0.0.1:9200")
        .replace("${SLUICE_TEST_REDIS_URL}", "redis://u:p@127.0.0.1:6379/0");
    parse_documents(text.as_bytes()).unwrap()
}

/// Every retail document: datasets, target clusters and products.
static DOCUMENTS: LazyLock<Vec<Value>> = LazyLock::new(|| {
    ["datasets.yaml", "targets.yaml", "products.yaml"]
        .iter()
        .flat_map(|f| retail(f))
        .collect()
});

/// The retail catalog, as semantic validation sees it.
static CONTEXT: LazyLock<Context> = LazyLock::new(|| {
    let mut ctx = Context::new(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
    for doc in DOCUMENTS.iter() {
        match structure(doc).unwrap() {
            Document::Dataset(d) => {
                ctx = ctx.with_dataset(
                    d.metadata.name.clone(),
                    CatalogDataset {
                        owner: d.metadata.owner.clone(),
                        spec: d.spec,
                    },
                );
            }
            Document::TargetCluster(t) => {
                ctx = ctx.with_cluster(t.metadata.name.clone(), t.spec);
            }
            Document::DataProduct(_) => {}
        }
    }
    ctx
});

fn check_problem(problem: &Problem) -> Result<(), TestCaseError> {
    prop_assert!(
        !problem.message.trim().is_empty(),
        "a problem without a message at {:?}",
        problem.pointer
    );
    prop_assert!(
        problem.pointer.is_empty() || problem.pointer.starts_with('/'),
        "a pointer that is not a JSON pointer: {:?} ({})",
        problem.pointer,
        problem.message
    );
    Ok(())
}

fn check_problems(problems: &[Problem]) -> Result<(), TestCaseError> {
    prop_assert!(!problems.is_empty(), "refused without a single problem");
    problems.iter().try_for_each(check_problem)
}

/// Both validation layers on one value; whatever they say must be well-formed.
fn validate(value: &Value) -> Result<(), TestCaseError> {
    match structure(value) {
        Err(problems) => check_problems(&problems),
        Ok(document) => match semantics(&document, &CONTEXT) {
            Err(problems) => check_problems(&problems),
            Ok(_) => Ok(()),
        },
    }
}

/// Parsing, then both layers on every document parsed.
fn parse_and_validate(bytes: &[u8]) -> Result<(), TestCaseError> {
    match parse_documents(bytes) {
        Err(problem) => check_problem(&problem),
        Ok(documents) => documents.iter().try_for_each(validate),
    }
}

/// Strings that steer mutations into the interesting parts of validation.
const WORDS: &[&str] = &[
    "",
    " ",
    "o",
    "c",
    "p",
    "x",
    "o.id",
    "o.amount",
    "o.amount * 2.0",
    "o.customer_id == c.id",
    "o.id == p.order_id",
    "c.name",
    "p.created_at",
    "o.nope",
    "o ==",
    "int(o.amount * 100.0)",
    "(((((",
    "!!!!!!!!",
    "has(o.address.city)",
    "o.items.exists(i, i.qty > 2)",
    "shop.orders",
    "crm.customers",
    "pay.payments",
    "shared-pg",
    "shared-search",
    "shared-redis",
    "team-payments",
    "lookup",
    "window",
    "stream",
    "table",
    "upsert",
    "append",
    "postgres",
    "elasticsearch",
    "redis",
    "schema",
    "index",
    "acl-prefix",
    "database",
    "hash",
    "json",
    "string",
    "integer",
    "number",
    "boolean",
    "timestamp",
    "object",
    "array",
    "null",
    "earliest",
    "latest",
    "90d",
    "1h",
    "0s",
    "7d",
    "999999999w999999999w",
    "2026-01-01T00:00:00Z",
    "2020-01-01",
    "2099-12-31",
    "Delete",
    "Retain",
    "BACKWARD",
    "DataProduct",
    "Dataset",
    "TargetCluster",
    "sluice.dev/v1alpha1",
    "date-time",
    "x\"; DROP TABLE users; --",
    "$(reboot)",
    "../../etc/passwd",
    "_sluice_x",
    "a/b~c",
    "ñ",
    "\u{0}",
];

/// Keys worth inserting: the fields of the model, and noise.
const KEYS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "status",
    "name",
    "team",
    "owner",
    "description",
    "tags",
    "labels",
    "resourceVersion",
    "sources",
    "dataset",
    "from",
    "joins",
    "type",
    "right",
    "on",
    "within",
    "inner",
    "propagate",
    "filter",
    "key",
    "fields",
    "expr",
    "target",
    "cluster",
    "dedicated",
    "size",
    "mode",
    "options",
    "ttl",
    "shards",
    "replicas",
    "deletionPolicy",
    "slo",
    "freshness",
    "expires",
    "topic",
    "timestampField",
    "classification",
    "compatibility",
    "schema",
    "properties",
    "required",
    "x-pii",
    "format",
    "url",
    "isolation",
    "allowedTeams",
    "credentialsSecret",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => "\\PC{0,24}",
        1 => "[a-z_.]{1,12}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-z_]{1,8}",
        1 => "\\PC{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        (-1e15f64..1e15).prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a document, at the node `at` picks among all of its nodes.
#[derive(Debug, Clone)]
enum Edit {
    /// A string becomes another (type-preserving: reaches semantic validation most often).
    Text(String),
    /// Any node becomes a random value.
    Replace(Value),
    Delete,
    Insert(String, Value),
    /// A node's key is renamed.
    Rename(String),
    /// A node becomes a value of another type (a number its text, an object its values…).
    SwapType,
    /// A node becomes a copy of another node of the document.
    CopyFrom(Index),
}

fn edit() -> impl Strategy<Value = (Index, Edit)> {
    let edit = prop_oneof![
        8 => text().prop_map(Edit::Text),
        2 => json_value().prop_map(Edit::Replace),
        2 => Just(Edit::Delete),
        2 => (key(), json_value()).prop_map(|(k, v)| Edit::Insert(k, v)),
        1 => key().prop_map(Edit::Rename),
        1 => Just(Edit::SwapType),
        2 => any::<Index>().prop_map(Edit::CopyFrom),
    ];
    (any::<Index>(), edit)
}

/// A step from a node to one of its children.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    At(usize),
}

fn paths(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                prefix.push(Step::Key(k.clone()));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                prefix.push(Step::At(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(value: &'a mut Value, path: &[Step]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(k) => node.get_mut(k.as_str()),
        Step::At(i) => node.get_mut(*i),
    })
}

fn node<'a>(value: &'a Value, path: &[Step]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, step| match step {
        Step::Key(k) => node.get(k.as_str()),
        Step::At(i) => node.get(*i),
    })
}

fn swapped(value: &Value) -> Value {
    match value {
        Value::Null => Value::Object(Map::new()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Number(n) => Value::String(n.to_string()),
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::Array(vec![value.clone()]), Value::Number),
        Value::Array(items) => Value::Object(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
        ),
        Value::Object(map) => Value::Array(map.values().cloned().collect()),
    }
}

fn apply(doc: &mut Value, at: &Index, edit: &Edit) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let path = all[at.index(all.len())].clone();
    match edit {
        Edit::Text(t) => {
            // The nearest string at or below the chosen node.
            let mut strings = Vec::new();
            paths(
                node(doc, &path).unwrap_or(&Value::Null),
                &mut path.clone(),
                &mut strings,
            );
            if let Some(target) = strings
                .into_iter()
                .find(|p| node(doc, p).is_some_and(Value::is_string))
                && let Some(n) = node_mut(doc, &target)
            {
                *n = Value::String(t.clone());
            }
        }
        Edit::Rename(new_key) => {
            if let Some((Step::Key(old), parent)) = path.split_last()
                && let Some(Value::Object(map)) = node_mut(doc, parent)
                && let Some(v) = map.shift_remove(old)
            {
                map.insert(new_key.clone(), v);
            }
        }
        Edit::Replace(v) => {
            if let Some(n) = node_mut(doc, &path) {
                *n = v.clone();
            }
        }
        Edit::Delete => match path.split_last() {
            None => *doc = Value::Null,
            Some((last, parent)) => match (node_mut(doc, parent), last) {
                (Some(Value::Object(map)), Step::Key(k)) => {
                    map.shift_remove(k);
                }
                (Some(Value::Array(items)), Step::At(i)) if *i < items.len() => {
                    items.remove(*i);
                }
                _ => {}
            },
        },
        Edit::Insert(k, v) => match node_mut(doc, &path) {
            Some(Value::Object(map)) => {
                map.insert(k.clone(), v.clone());
            }
            Some(Value::Array(items)) => items.push(v.clone()),
            Some(other) => {
                let mut map = Map::new();
                map.insert(k.clone(), v.clone());
                *other = Value::Object(map);
            }
            None => {}
        },
        Edit::SwapType => {
            if let Some(n) = node_mut(doc, &path) {
                *n = swapped(n);
            }
        }
        Edit::CopyFrom(from) => {
            let source = node(doc, &all[from.index(all.len())]).cloned();
            if let (Some(source), Some(n)) = (source, node_mut(doc, &path)) {
                *n = source;
            }
        }
    }
}

/// Tokens YAML parsers care about, to build text that is almost YAML.
const YAML_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    ",",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "!!str ",
    "!!binary ",
    "!Tag ",
    "---\n",
    "...\n",
    "'",
    "\"",
    "# ",
    "? ",
    "|\n",
    ">\n",
    "%YAML 1.2\n",
    "<<: ",
    "~",
    "null",
    "true",
    "1e400",
    "-0",
    "0x1F",
    ".inf",
    "\\u0000",
    "\\",
    "kind",
    "DataProduct",
    "apiVersion",
    "sluice.dev/v1alpha1",
    "spec",
    "metadata",
    "name",
    "sources",
    "fields",
    "\u{feff}",
    "\u{0}",
    "é",
];

fn yamlish() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            4 => proptest::sample::select(YAML_TOKENS).prop_map(str::to_owned),
            1 => "\\PC{0,6}",
            1 => "[ \n]{0,4}[a-z]{1,6}",
        ],
        0..160,
    )
    .prop_map(|tokens| tokens.concat())
}

proptest! {
    #![proptest_config(config(4_000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        parse_and_validate(&bytes)?;
    }

    #[test]
    fn random_utf8_never_panics(text in "\\PC{0,512}") {
        parse_and_validate(text.as_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(4_000))]

    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        parse_and_validate(text.as_bytes())?;
    }

    #[test]
    fn retail_documents_with_yamlish_splices_never_panic(
        doc in 0..9usize,
        at in any::<Index>(),
        splice in yamlish(),
    ) {
        // A retail document as YAML text with random text spliced in at a random line.
        let yaml = serde_yaml::to_string(&DOCUMENTS[doc % DOCUMENTS.len()]).unwrap();
        let lines: Vec<&str> = yaml.lines().collect();
        let cut = at.index(lines.len() + 1);
        let text = format!("{}\n{splice}\n{}", lines[..cut].join("\n"), lines[cut..].join("\n"));
        parse_and_validate(text.as_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(16_000))]

    #[test]
    fn mutated_retail_documents_never_panic(
        doc in any::<Index>(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let mut value = doc.get(&DOCUMENTS).clone();
        for (at, edit) in &edits {
            apply(&mut value, at, edit);
        }
        validate(&value)?;
    }

    #[test]
    fn random_documents_of_each_kind_never_panic(
        kind in proptest::sample::select(&["Dataset", "TargetCluster", "DataProduct"][..]),
        metadata in json_value(),
        spec in json_value(),
    ) {
        let mut map = Map::new();
        map.insert("apiVersion".into(), "sluice.dev/v1alpha1".into());
        map.insert("kind".into(), kind.into());
        map.insert("metadata".into(), metadata);
        map.insert("spec".into(), spec);
        validate(&Value::Object(map))?;
    }
}

#[test]
fn the_unmutated_retail_documents_are_valid() {
    // The mutations start from valid documents, so what they find is due to the mutation.
    assert_eq!(DOCUMENTS.len(), 9);
    for doc in DOCUMENTS.iter() {
        let document = structure(doc).unwrap();
        semantics(&document, &CONTEXT).unwrap();
    }
}
