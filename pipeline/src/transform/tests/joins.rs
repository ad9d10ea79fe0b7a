//! Lookup joins: each driving-stream record is joined with the current row of each table for
//! its join key; a left join unless `inner: true`.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::transform::{LookupTable, RecordError, Site};

/// The retail `orders-enriched` product without its window join (and what reads `p`).
fn enriched() -> Value {
    let mut doc = retail_product("orders-enriched");
    let spec = &mut doc["spec"];
    spec["sources"]
        .as_array_mut()
        .unwrap()
        .retain(|s| s["name"] != "p");
    spec["joins"]
        .as_array_mut()
        .unwrap()
        .retain(|j| j["right"] != "p");
    spec["fields"].as_object_mut().unwrap().remove("paid_at");
    spec["filter"] = json!(r#"o.status != "CANCELLED""#);
    doc
}

/// `enriched()` with `f` applied to its spec.
fn enriched_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut doc = enriched();
    f(&mut doc["spec"]);
    doc
}

fn order(id: &str, customer: Value, status: &str) -> Value {
    json!({
        "id": id,
        "customer_id": customer,
        "amount": 12.5,
        "currency": "EUR",
        "status": status,
    })
}

/// The tables' current rows by alias and key, recording every lookup made.
struct Tables {
    rows: HashMap<(String, String), Value>,
    asked: RefCell<Vec<(String, String)>>,
}

impl Tables {
    fn new(rows: &[(&str, &str, Value)]) -> Self {
        Tables {
            rows: rows
                .iter()
                .map(|(alias, key, row)| ((alias.to_string(), key.to_string()), row.clone()))
                .collect(),
            asked: RefCell::default(),
        }
    }

    fn customers() -> Self {
        Tables::new(&[
            (
                "c",
                "c-1",
                json!({"id": "c-1", "name": "Ada", "tier": "gold"}),
            ),
            (
                "c",
                "c-2",
                json!({"id": "c-2", "name": "Bob", "tier": "silver"}),
            ),
        ])
    }

    fn apply(
        &self,
        p: &CompiledProduct,
        key: Option<&[u8]>,
        value: Option<&Value>,
    ) -> Result<Option<Emit>, RecordError> {
        p.apply_with(key, value, &|alias, key| {
            self.asked
                .borrow_mut()
                .push((alias.to_owned(), key.to_owned()));
            self.rows.get(&(alias.to_owned(), key.to_owned()))
        })
    }

    fn asked(&self) -> Vec<(String, String)> {
        self.asked.take()
    }
}

/// A name, the record value (null: a tombstone), what must be written and the lookups made.
type JoinCase = (&'static str, Value, Option<Emit>, Vec<(String, String)>);

fn enriched_row(id: &str, customer_name: Value) -> Value {
    json!({
        "order_id": id,
        "amount": 12.5,
        "currency": "EUR",
        "customer_name": customer_name,
        "amount_cents": 1250,
    })
}

#[test]
fn the_driving_source_and_lookups_are_named() {
    let p = compile(&enriched());
    assert_eq!(p.source(), "o");
    assert_eq!(
        p.lookups(),
        [LookupTable {
            alias: "c".into(),
            key_field: "id".into(),
            propagate: false,
        }]
    );
    assert!(
        compile(&retail_product("open-orders-cache"))
            .lookups()
            .is_empty()
    );

    // `on` may be written either way round; the driving source need not be listed first.
    let reversed = compile(&enriched_with(|s| {
        s["joins"][0]["on"] = json!("c.id == o.customer_id");
    }));
    assert_eq!(reversed.lookups(), p.lookups());
    let (mut spec, output) = validated(&enriched());
    spec.sources.reverse();
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    assert_eq!(p.source(), "o");
}

#[test]
fn a_table_read_only_by_plain_paths_names_the_fields_it_reads() {
    let named = |p: &CompiledProduct, alias: &str| {
        p.table_fields(alias).map(|f| {
            let mut f = f.to_vec();
            f.sort();
            f
        })
    };
    // `enriched()` reads `c.name` only (its join's left side reads `o`).
    assert_eq!(named(&compile(&enriched()), "c"), Some(vec!["name".into()]));
    // Every plain path counts, in the filter, the key and the fields; a field read twice
    // is named once.
    let paths = compile(&enriched_with(|s| {
        s["filter"] = json!("c.tier");
        s["fields"]["customer_country"] = json!("c.country");
        s["fields"]["customer_again"] = json!("c.name");
    }));
    assert_eq!(
        named(&paths, "c"),
        Some(vec!["country".into(), "name".into(), "tier".into()])
    );
    // A CEL program reading `c` reads its rows whole.
    let cel = compile(&enriched_with(|s| {
        s["fields"]["customer_label"] = json!({"expr": "c.name + \"!\"", "type": "string"});
    }));
    assert_eq!(cel.table_fields("c"), None);
    // A program reading only `o` leaves `c`'s projection alone.
    let other = compile(&enriched_with(|s| {
        s["fields"]["doubled"] = json!({"expr": "o.amount * 2.0", "type": "number"});
    }));
    assert_eq!(named(&other, "c"), Some(vec!["name".into()]));
    // The driving source and unknown aliases are no lookup's.
    assert_eq!(compile(&enriched()).table_fields("o"), None);
    assert_eq!(compile(&enriched()).table_fields("x"), None);
}

#[test]
fn a_driving_source_read_only_by_plain_paths_names_the_fields_it_reads() {
    let sorted = |f: Option<&[String]>| {
        f.map(|f| {
            let mut f = f.to_vec();
            f.sort();
            f
        })
    };
    // `enriched()`'s filter and `amount_cents` are CEL programs reading `o`: records whole.
    assert_eq!(compile(&enriched()).source_fields(), None);
    // Plain paths only: the key, the fields and the join's left side (`o.customer_id`).
    let plain = compile(&enriched_with(|s| {
        s.as_object_mut().unwrap().remove("filter");
        let fields = s["fields"].as_object_mut().unwrap();
        fields.remove("amount_cents");
        fields.insert("state".into(), json!("o.status"));
    }));
    assert_eq!(
        sorted(plain.source_fields()),
        Some(
            ["amount", "currency", "customer_id", "id", "status"]
                .map(String::from)
                .to_vec()
        )
    );
}

#[test]
fn orders_are_enriched_with_their_customer_or_nulls() {
    let p = compile(&enriched());
    let tables = Tables::customers();
    let cases: Vec<JoinCase> = vec![
        (
            "partner present",
            order("o-1", json!("c-1"), "PAID"),
            emit("o-1", Some(enriched_row("o-1", json!("Ada")))),
            vec![("c".into(), "c-1".into())],
        ),
        (
            "partner missing: a left join gives nulls",
            order("o-2", json!("c-9"), "PAID"),
            emit("o-2", Some(enriched_row("o-2", Value::Null))),
            vec![("c".into(), "c-9".into())],
        ),
        (
            "a null join key has no partner and looks nothing up",
            order("o-3", Value::Null, "PAID"),
            emit("o-3", Some(enriched_row("o-3", Value::Null))),
            vec![],
        ),
        (
            "a missing join key too",
            json!({"id": "o-4", "amount": 12.5, "currency": "EUR", "status": "PAID"}),
            emit("o-4", Some(enriched_row("o-4", Value::Null))),
            vec![],
        ),
        (
            "the filter still applies",
            order("o-5", json!("c-1"), "CANCELLED"),
            emit("o-5", None),
            vec![("c".into(), "c-1".into())],
        ),
        (
            "a tombstone deletes by record key and looks nothing up",
            Value::Null,
            emit("o-1", None),
            vec![],
        ),
    ];
    for (name, value, expected, asked) in cases {
        let value = (!value.is_null()).then_some(value);
        assert_eq!(
            tables.apply(&p, Some(b"o-1"), value.as_ref()).unwrap(),
            expected,
            "{name}"
        );
        assert_eq!(tables.asked(), asked, "{name}");
    }
}

#[test]
fn inner_lookups_drop_records_without_a_partner() {
    let tables = Tables::customers();
    let upsert = compile(&enriched_with(|s| s["joins"][0]["inner"] = json!(true)));
    assert_eq!(
        tables
            .apply(&upsert, None, Some(&order("o-1", json!("c-1"), "PAID")))
            .unwrap(),
        emit("o-1", Some(enriched_row("o-1", json!("Ada"))))
    );
    for customer in [json!("c-9"), Value::Null] {
        assert_eq!(
            tables
                .apply(&upsert, None, Some(&order("o-2", customer.clone(), "PAID")))
                .unwrap(),
            emit("o-2", None),
            "{customer}"
        );
    }

    let append = compile(&enriched_with(|s| {
        s["joins"][0]["inner"] = json!(true);
        s["target"]["mode"] = json!("append");
    }));
    assert_eq!(
        tables
            .apply(&append, None, Some(&order("o-1", json!("c-1"), "PAID")))
            .unwrap(),
        emit("", Some(enriched_row("o-1", json!("Ada"))))
    );
    assert_eq!(
        tables
            .apply(&append, None, Some(&order("o-2", json!("c-9"), "PAID")))
            .unwrap(),
        None
    );
}

#[test]
fn the_output_schema_makes_lookup_fields_nullable_unless_inner() {
    let nullable = |doc: &Value| {
        let (_, output) = validated(doc);
        output
            .fields
            .iter()
            .find(|f| f.name == "customer_id")
            .unwrap()
            .nullable
    };
    // `c.id` is required in the table's schema: only a missing partner makes it null.
    let with_id = |inner: bool| {
        enriched_with(|s| {
            s["fields"]["customer_id"] = json!("c.id");
            s["joins"][0]["inner"] = json!(inner);
        })
    };
    assert!(nullable(&with_id(false)));
    assert!(!nullable(&with_id(true)));
}

#[test]
fn the_filter_and_fields_read_the_right_side() {
    let p = compile(&enriched_with(|s| {
        s["filter"] = json!(r#"o.status != "CANCELLED" && c != null && c.tier == "gold""#);
        s["fields"]["greeting"] = json!({
            "expr": r#"c == null ? "Dear customer" : "Dear " + c.name"#,
            "type": "string",
        });
    }));
    let tables = Tables::customers();
    let greeting = |name: &str| {
        let mut row = enriched_row("o-1", json!(name));
        row["greeting"] = json!(format!("Dear {name}"));
        row
    };
    assert_eq!(
        tables
            .apply(&p, None, Some(&order("o-1", json!("c-1"), "PAID")))
            .unwrap(),
        emit("o-1", Some(greeting("Ada")))
    );
    // c-2 is not gold, c-9 has no row: both filtered out, without an error.
    for customer in ["c-2", "c-9"] {
        assert_eq!(
            tables
                .apply(&p, None, Some(&order("o-1", json!(customer), "PAID")))
                .unwrap(),
            emit("o-1", None),
            "{customer}"
        );
    }

    // Without a guard, CEL reading a field of a missing partner fails the record.
    let unguarded = compile(&enriched_with(|s| {
        s["filter"] = json!(r#"c.tier == "gold""#);
    }));
    let err = tables
        .apply(&unguarded, None, Some(&order("o-1", json!("c-9"), "PAID")))
        .unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Evaluation {
                site: Site::Filter,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        tables
            .apply(&unguarded, None, Some(&order("o-1", json!("c-1"), "PAID")))
            .unwrap(),
        emit("o-1", Some(enriched_row("o-1", json!("Ada"))))
    );
}

#[test]
fn apply_behaves_as_if_no_table_had_rows() {
    let tables = Tables::new(&[]);
    for doc in [
        enriched(),
        enriched_with(|s| s["joins"][0]["inner"] = json!(true)),
    ] {
        let p = compile(&doc);
        for record in [
            Some(order("o-1", json!("c-1"), "PAID")),
            Some(order("o-1", json!("c-1"), "CANCELLED")),
            Some(order("o-1", Value::Null, "PAID")),
            None,
        ] {
            assert_eq!(
                p.apply(Some(b"o-1"), record.as_ref()).unwrap(),
                tables.apply(&p, Some(b"o-1"), record.as_ref()).unwrap(),
                "{record:?}"
            );
        }
    }
    assert_eq!(
        compile(&enriched())
            .apply(None, Some(&order("o-1", json!("c-1"), "PAID")))
            .unwrap(),
        emit("o-1", Some(enriched_row("o-1", Value::Null)))
    );
}

/// `test.events` (alias `e`) looking up `test.labels` (alias `l`) by its integer key.
fn labelled() -> CompiledProduct {
    compile(&product(json!({
        "sources": [
            {"name": "e", "dataset": "test.events"},
            {"name": "l", "dataset": "test.labels"},
        ],
        "joins": [{"type": "lookup", "right": "l", "on": "e.n == l.n"}],
        "key": "e.n",
        "fields": {
            "n": "e.n",
            "label": "l.label",
            "heavy": {"expr": "l != null && l.weight > 1.0", "type": "boolean"},
        },
        "target": {"cluster": "shared-pg", "name": "labelled", "mode": "upsert"},
    })))
    .with_table_schema(
        "l",
        catalog()
            .dataset("test.labels")
            .unwrap()
            .spec
            .schema
            .clone(),
    )
}

#[test]
fn integer_join_keys_are_decimal_text() {
    let p = labelled();
    let tables = Tables::new(&[("l", "7", json!({"n": 7, "label": "seven", "weight": 2}))]);
    let expected = emit("7", Some(json!({"n": 7, "label": "seven", "heavy": true})));
    let mut record = event();
    assert_eq!(tables.apply(&p, None, Some(&record)).unwrap(), expected);
    record["n"] = json!(7.0);
    assert_eq!(tables.apply(&p, None, Some(&record)).unwrap(), expected);
    assert_eq!(
        tables.asked(),
        [
            ("l".to_owned(), "7".to_owned()),
            ("l".to_owned(), "7".to_owned())
        ]
    );
}

#[test]
fn join_keys_and_table_rows_of_other_types_are_record_errors() {
    let p = compile(&enriched());
    let tables = Tables::new(&[("c", "c-1", json!(["not", "an", "object"]))]);
    let cases = [
        (
            order("o-1", json!({"id": "c-1"}), "PAID"),
            "join key of `c` `o.customer_id` gave an object, expected a string or integer",
        ),
        (
            order("o-1", json!(1.5), "PAID"),
            "join key of `c` `o.customer_id` gave a number, expected a string or integer",
        ),
        (
            order("o-1", json!("c-1"), "PAID"),
            "the row of `c` for key `c-1` is an array, not a JSON object",
        ),
    ];
    for (record, reason) in cases {
        let err = tables.apply(&p, None, Some(&record)).unwrap_err();
        assert_eq!(err.reason(), reason);
    }
}

#[test]
fn joins_that_cannot_run_are_refused() {
    let (spec, output) = validated(&enriched());
    let with = |f: &dyn Fn(&mut DataProductSpec)| {
        let mut spec = spec.clone();
        f(&mut spec);
        CompiledProduct::compile(&spec, &output).unwrap_err()
    };
    let join_error = |e: TransformError| match e {
        TransformError::Join { right, reason } => (right, reason),
        other => panic!("not a join error: {other:?}"),
    };
    for on in [
        "o.customer_id != c.id",
        "o.customer_id == c.address.id",
        "o.customer_id == o.id",
        "c.id == c.name",
        "o.customer_id == c.id && o.id == c.id",
    ] {
        let (right, reason) = join_error(with(&|s| s.joins[0].on = on.into()));
        assert_eq!(right, "c");
        assert!(
            reason.starts_with(
                "`on` must compare a field of `o` with a top-level field of `c` (e.g. `o.customer_id == c.id`)"
            ),
            "{on}: {reason}"
        );
    }
    let (_, reason) = join_error(with(&|s| s.joins[0].on = "o.customer_id ==".into()));
    assert!(reason.starts_with("`on` does not parse"), "{reason}");
    let (right, reason) = join_error(with(&|s| s.joins[0].right = "x".into()));
    assert_eq!(
        (right.as_str(), reason.as_str()),
        ("x", "no source is named `x`")
    );
    let (_, reason) = join_error(with(&|s| s.joins.push(s.joins[0].clone())));
    assert_eq!(reason, "`c` is joined twice");

    assert_eq!(with(&|s| s.joins.clear()), TransformError::SourceCount(2));
    let err = with(&|s| s.filter = Some(r#"x.tier == "gold""#.into()));
    assert_eq!(
        err.to_string(),
        "filter reads `x`, which is not one of the sources `o`, `c`"
    );
}

#[test]
fn a_join_key_reads_only_sources_joined_before_it() {
    // `l` is joined after `c`, so `c`'s key may not read `l`; `l`'s key may read `c`.
    let (mut spec, output) = validated(&enriched());
    spec.sources.push(sluice_schemas::product::Source {
        name: "l".into(),
        dataset: "test.labels".into(),
        from: None,
    });
    let mut later = spec.joins[0].clone();
    later.right = "l".into();
    later.on = "c.name == l.label".into();
    spec.joins.push(later);
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    assert_eq!(
        p.lookups()
            .iter()
            .map(|t| (t.alias.as_str(), t.key_field.as_str()))
            .collect::<Vec<_>>(),
        [("c", "id"), ("l", "label")]
    );
    let tables = Tables::new(&[
        ("c", "c-1", json!({"id": "c-1", "name": "Ada"})),
        ("l", "Ada", json!({"n": 1, "label": "Ada"})),
    ]);
    tables
        .apply(&p, None, Some(&order("o-1", json!("c-1"), "PAID")))
        .unwrap();
    assert_eq!(
        tables.asked(),
        [
            ("c".to_owned(), "c-1".to_owned()),
            ("l".to_owned(), "Ada".to_owned())
        ]
    );
    // No customer: `c.name` is null, so `l` is not looked up either.
    tables
        .apply(&p, None, Some(&order("o-1", json!("c-9"), "PAID")))
        .unwrap();
    assert_eq!(tables.asked(), [("c".to_owned(), "c-9".to_owned())]);

    spec.joins.swap(0, 1);
    let err = CompiledProduct::compile(&spec, &output).unwrap_err();
    assert!(
        matches!(&err, TransformError::Join { right, .. } if right == "l"),
        "{err:?}"
    );
}

#[test]
fn a_window_join_pairs_the_record_with_the_partner_the_runtime_gives_and_is_inner() {
    // `orders-enriched`: lookup `c`, window `p` on `o.id == p.order_id`, a filter reading
    // both, `paid_at` from `p`.
    let (spec, output) = validated(&retail_product("orders-enriched"));
    let p = CompiledProduct::compile(&spec, &output).unwrap();
    let customer = json!({"id": "c-1", "name": "Ada"});
    let payment = json!({"id": "p-1", "order_id": "o-1", "amount": 20.0,
                         "created_at": "2026-01-02T03:04:05Z"});
    let asked = RefCell::new(Vec::new());
    let paired = |alias: &str, key: &str| -> Option<&Value> {
        asked.borrow_mut().push((alias.to_owned(), key.to_owned()));
        match alias {
            "c" => Some(&customer),
            "p" => Some(&payment),
            _ => None,
        }
    };
    let emit = p
        .apply_with(None, Some(&order("o-1", json!("c-1"), "PAID")), &paired)
        .unwrap()
        .unwrap();
    assert_eq!(emit.key, "o-1");
    let row = emit.row.unwrap();
    assert_eq!(row["customer_name"], json!("Ada"));
    assert_eq!(row["paid_at"], json!("2026-01-02T03:04:05Z"));
    // The partner is asked for by the window join's key, after the lookup.
    assert_eq!(
        asked.take(),
        [
            ("c".to_owned(), "c-1".to_owned()),
            ("p".to_owned(), "o-1".to_owned())
        ]
    );

    // No partner: the window join is inner, so the key has no row (even though `c` joins).
    let unpaired = |alias: &str, _: &str| -> Option<&Value> { (alias == "c").then_some(&customer) };
    let mut joined = Vec::new();
    let emit = p
        .apply_traced(
            None,
            Some(&order("o-1", json!("c-1"), "PAID")),
            &unpaired,
            &mut joined,
        )
        .unwrap();
    assert_eq!(
        emit,
        Some(Emit {
            key: "o-1".into(),
            row: None
        })
    );
    // The trace names the window join's key, which is how the runtime finds partners.
    assert!(joined.contains(&("p".to_owned(), "o-1".to_owned())));

    // The filter reads the partner: a payment below the order's amount drops the row.
    let small = json!({"id": "p-2", "order_id": "o-1", "amount": 1.0});
    let small_pair = |alias: &str, _: &str| -> Option<&Value> {
        match alias {
            "c" => Some(&customer),
            _ => Some(&small),
        }
    };
    let emit = p
        .apply_with(None, Some(&order("o-1", json!("c-1"), "PAID")), &small_pair)
        .unwrap();
    assert_eq!(
        emit,
        Some(Emit {
            key: "o-1".into(),
            row: None
        })
    );
}

/// Records enter CEL only for the aliases some expression reads through CEL; plain paths
/// read the JSON. Either way the rows are the same.
#[test]
fn only_aliases_cel_reads_are_converted_and_rows_stay_the_same() {
    let tables = Tables::customers();
    let paid = order("o-1", json!("c-1"), "PAID");

    // `amount_cents` and the filter read `o` through CEL; `customer_name` is a path of `c`.
    let p = compile(&enriched());
    assert_eq!(p.in_cel, [true, false]);
    assert_eq!(
        tables.apply(&p, None, Some(&paid)).unwrap(),
        emit("o-1", Some(enriched_row("o-1", json!("Ada"))))
    );

    // Nothing but paths: no record is converted.
    let paths = compile(&enriched_with(|s| {
        s.as_object_mut().unwrap().remove("filter");
        s["fields"]["amount_cents"] = json!("o.amount");
    }));
    assert_eq!(paths.in_cel, [false, false]);
    let row = tables.apply(&paths, None, Some(&paid)).unwrap().unwrap();
    assert_eq!(row.row.as_ref().unwrap()["customer_name"], json!("Ada"));
    assert_eq!(row.key, "o-1");

    // A program reading `c`.
    let shouting = compile(&enriched_with(|s| {
        s["fields"]["customer_name"] = json!({"expr": "c.name.upperAscii()", "type": "string"});
    }));
    assert_eq!(shouting.in_cel, [true, true]);
    assert_eq!(
        tables.apply(&shouting, None, Some(&paid)).unwrap(),
        emit("o-1", Some(enriched_row("o-1", json!("ADA"))))
    );
}

/// The job's lookup tables answer with each key's current row however often a key is
/// looked up: a changed row is seen at the next lookup, a removed one is gone, and a key
/// that had no row is found once it gets one.
#[test]
fn job_tables_serve_current_rows() {
    let p = compile(&enriched());
    // In memory: the default budget is far above these rows.
    let mut tables = crate::job::Tables::new(crate::state::StateSettings::default(), "test");
    let table = crate::job::TableSource {
        alias: "c".into(),
        topic: "customers".into(),
        key_field: "id".into(),
    };
    let put = |tables: &mut crate::job::Tables, id: &str, name: &str| {
        let row = json!({"id": id, "name": name, "tier": "gold"}).to_string();
        tables
            .apply(&table, Some(id.as_bytes()), Some(row.as_bytes()))
            .unwrap();
    };
    let name_of = |tables: &crate::job::Tables, customer: &str| {
        let arena = typed_arena::Arena::new();
        let broken = RefCell::new(None);
        let lookup = tables.lookup(&p, &arena, &broken);
        let emit = p
            .apply_with(None, Some(&order("o-1", json!(customer), "PAID")), &lookup)
            .unwrap()
            .unwrap();
        assert!(broken.borrow().is_none());
        emit.row.unwrap()["customer_name"].clone()
    };
    put(&mut tables, "c-1", "Ada");
    for _ in 0..3 {
        assert_eq!(name_of(&tables, "c-1"), json!("Ada"));
        assert_eq!(name_of(&tables, "c-2"), Value::Null);
    }
    put(&mut tables, "c-1", "Bea");
    put(&mut tables, "c-2", "Cy");
    for _ in 0..3 {
        assert_eq!(name_of(&tables, "c-1"), json!("Bea"));
        assert_eq!(name_of(&tables, "c-2"), json!("Cy"));
    }
    tables.apply(&table, Some(b"c-1"), None).unwrap();
    assert_eq!(name_of(&tables, "c-1"), Value::Null);
}
