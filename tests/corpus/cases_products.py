"""Cases of DataProduct specs, hostile names, the plan endpoint and JSON bodies."""

from corpus_lib import *  # noqa: F401,F403  (the generator's vocabulary)


def product_sources():
    c = "product-sources"
    b = P_PG
    edit_case(c, "sources-missing", b, [(p("spec.sources"), DELETE)], ["/spec/sources"], "no sources")
    edit_case(c, "sources-empty", b, [(p("spec.sources"), [])], ["/spec/sources"], "an empty list of sources")
    wrong_types(c, "sources", b, "spec.sources", "/spec/sources", {"list", "empty-list"}, "sources")
    edit_case(c, "sources-17", P_REDIS, [(p("spec.sources"), [{"name": f"s{i}", "dataset": "shop.orders"} for i in range(17)])], ["/spec/sources"], "more than 16 sources")
    for label, value in [("string", "shop.orders"), ("int", 1), ("null", None), ("list", ["o", "shop.orders"])]:
        edit_case(c, f"source-item-{label}", b, [(p("spec.sources.0"), value)], ["/spec/sources/0"], f"a source that is a {label}")
    edit_case(c, "source-name-missing", b, [(p("spec.sources.0.name"), DELETE)], ["/spec/sources/0/name"], "a source without a name")
    for label, value in [
        ("int", 1),
        ("null", None),
        ("empty", ""),
        ("uppercase", "O"),
        ("leading-digit", "1o"),
        ("dash", "o-1"),
        ("dot", "o.x"),
        ("64-chars", "o" * 64),
        ("unicode", "\u00f6"),
        ("space", "o x"),
    ]:
        edit_case(c, f"source-name-{label}", b, [(p("spec.sources.1.name"), value)], ["/spec/sources/1/name"], f"source alias: {label}")
    for word in ["in", "null", "true", "false", "return"]:
        edit_case(c, f"source-name-cel-keyword-{word}", P_REDIS, [(p("spec.sources.0.name"), word)], ["/spec/sources/0/name"], f"source alias is the CEL keyword {word}")
    edit_case(c, "source-name-duplicate", b, [(p("spec.sources.2.name"), "c")], ["/spec/sources/2/name"], "two sources named c")
    edit_case(c, "source-dataset-missing", b, [(p("spec.sources.0.dataset"), DELETE)], ["/spec/sources/0/dataset"], "a source without a dataset")
    for label, value in [("int", 1), ("null", None), ("empty", ""), ("uppercase", "Shop.Orders"), ("space", "shop orders"), ("injection", "shop.orders; DROP TABLE x"), ("trailing-dot", "shop.orders."), ("list", ["shop.orders"])]:
        edit_case(c, f"source-dataset-{label}", b, [(p("spec.sources.0.dataset"), value)], ["/spec/sources/0/dataset"], f"source dataset: {label}")
    edit_case(c, "source-dataset-unknown", b, [(p("spec.sources.1.dataset"), "crm.clients")], ["/spec/sources/1/dataset"], "a dataset not in the catalog")
    edit_case(c, "source-dataset-never-stored", b, [(p("spec.sources.0.dataset"), "corpus.orders")], ["/spec/sources/0/dataset"], "a dataset whose apply failed")
    edit_case(c, "source-dataset-is-a-cluster", b, [(p("spec.sources.0.dataset"), "shared-pg")], ["/spec/sources/0/dataset"], "a target cluster named as dataset")
    for label, value in [
        ("int", 90),
        ("empty", ""),
        ("yesterday", "yesterday"),
        ("negative", "-1d"),
        ("fraction", "1.5h"),
        ("space", "90 d"),
        ("uppercase-unit", "90D"),
        ("year-unit", "1y"),
        ("bad-month", "2026-13-01T00:00:00Z"),
        ("date-only", "2026-01-01"),
        ("no-timezone", "2026-01-01T00:00:00"),
        ("space-separated", "2026-01-01 00:00:00"),
        ("padded-keyword", "earliest "),
        ("uppercase-keyword", "EARLIEST"),
        ("65-chars", "9" * 64 + "d"),
        ("list", ["90d"]),
        ("epoch", "1700000000"),
    ]:
        edit_case(c, f"source-from-{label}", b, [(p("spec.sources.0.from"), value)], ["/spec/sources/0/from"], f"source from: {label}")
    edit_case(c, "lookup-table-with-from", b, [(p("spec.sources.1.from"), "90d")], ["/spec/sources/1/from"], "a lookup table is loaded whole: no from")
    for field, value in [("alias", "o"), ("topic", "shop.orders"), ("filter", "true"), ("Name", "o")]:
        edit_case(c, f"source-unknown-field-{field.lower()}", b, [(p(f"spec.sources.0.{field}"), value)], [f"/spec/sources/0/{field}"], f"unknown source field {field}")


def product_joins():
    c = "product-joins"
    b = P_PG
    wrong_types(c, "joins", b, "spec.joins", "/spec/joins", {"list", "empty-list", "null"}, "joins")
    for label, value in [("string", "c"), ("int", 1), ("null", None), ("list", ["lookup", "c"])]:
        edit_case(c, f"join-item-{label}", b, [(p("spec.joins.0"), value)], ["/spec/joins/0"], f"a join that is a {label}")
    edit_case(c, "joins-16", b, [(p("spec.joins"), [b["spec"]["joins"][0]] * 16)], ["/spec/joins"], "more than 15 joins")
    edit_case(c, "join-type-missing", b, [(p("spec.joins.0.type"), DELETE)], ["/spec/joins/0/type"], "a join without a type")
    for label, value in [("uppercase", "LOOKUP"), ("inner", "inner"), ("left", "left"), ("int", 1), ("null", None), ("list", ["lookup"])]:
        edit_case(c, f"join-type-{label}", b, [(p("spec.joins.0.type"), value)], ["/spec/joins/0/type"], f"join type: {label}")
    edit_case(c, "join-right-missing", b, [(p("spec.joins.0.right"), DELETE)], ["/spec/joins/0/right"], "a join without right")
    for label, value in [("int", 1), ("empty", ""), ("uppercase", "C"), ("injection", "c; DROP"), ("dataset-name", "crm.customers"), ("null", None)]:
        edit_case(c, f"join-right-{label}", b, [(p("spec.joins.0.right"), value)], ["/spec/joins/0/right"], f"join right: {label}")
    edit_case(c, "join-right-unknown", b, [(p("spec.joins.0.right"), "x")], ["/spec/joins/0/right"], "join right names no source")
    edit_case(c, "self-join-driving", b, [(p("spec.joins.0.right"), "o"), (p("spec.joins.0.on"), "o.customer_id == o.id")], ["/spec/joins/0/right"], "the driving source joined to itself")
    edit_case(c, "join-same-source-twice", b, [(p("spec.joins.2"), {"type": "lookup", "right": "c", "on": "o.customer_id == c.id"})], ["/spec/joins/2/right"], "c joined twice")
    edit_case(c, "lookup-on-a-stream", b, [(p("spec.joins.1"), {"type": "lookup", "right": "p", "on": "o.id == p.order_id"})], ["/spec/joins/1/right"], "a lookup join of a stream")
    edit_case(c, "window-on-a-table", b, [(p("spec.joins.0"), {"type": "window", "right": "c", "on": "o.customer_id == c.id", "within": "1h"})], ["/spec/joins/0/right"], "a window join of a table")
    edit_case(c, "window-without-within", b, [(p("spec.joins.1.within"), DELETE)], ["/spec/joins/1/within"], "a window join without within")
    edit_case(c, "window-within-null", b, [(p("spec.joins.1.within"), None)], ["/spec/joins/1/within"], "a window join with within null")
    for label, value in [("words", "1 hour"), ("fraction", "1.5h"), ("int", 3600), ("empty", ""), ("negative", "-1h"), ("year", "1y"), ("iso8601", "PT1H"), ("list", ["1h"]), ("ten-digits", "1234567890s")]:
        edit_case(c, f"window-within-{label}", b, [(p("spec.joins.1.within"), value)], ["/spec/joins/1/within"], f"within: {label}")
    for label, value in [("zero", "0s"), ("zero-sum", "0h0m0s"), ("zero-ms", "0ms")]:
        edit_case(c, f"window-within-{label}", b, [(p("spec.joins.1.within"), value)], ["/spec/joins/1/within"], f"within: {label}")
    edit_case(c, "lookup-with-within", b, [(p("spec.joins.0.within"), "1h")], ["/spec/joins/0/within"], "only window joins have within")
    edit_case(c, "window-with-propagate", b, [(p("spec.joins.1.propagate"), True)], ["/spec/joins/1/propagate"], "only lookup joins propagate")
    edit_case(c, "window-not-inner", b, [(p("spec.joins.1.inner"), False)], ["/spec/joins/1/inner"], "window joins are always inner")
    for label, value in [("string", "yes"), ("int", 1), ("list", [True])]:
        edit_case(c, f"join-inner-{label}", b, [(p("spec.joins.0.inner"), value)], ["/spec/joins/0/inner"], f"inner: {label}")
        edit_case(c, f"join-propagate-{label}", b, [(p("spec.joins.0.propagate"), value)], ["/spec/joins/0/propagate"], f"propagate: {label}")
    edit_case(c, "join-on-missing", b, [(p("spec.joins.0.on"), DELETE)], ["/spec/joins/0/on"], "a join without on")
    for label, value in [("int", 1), ("null", None), ("empty", ""), ("list", ["o.customer_id", "c.id"]), ("map", {"left": "o.customer_id", "right": "c.id"}), ("too-long", "o.customer_id == c.id" + " " * 4090)]:
        edit_case(c, f"join-on-{label}", b, [(p("spec.joins.0.on"), value)], ["/spec/joins/0/on"], f"on: {label}")
    for label, value in [
        ("syntax-dangling", "o.customer_id =="),
        ("syntax-single-equals", "o.customer_id = c.id"),
        ("syntax-sql", "o.customer_id = c.id AND 1=1"),
        ("syntax-unclosed", "(o.customer_id == c.id"),
        ("blank", "   "),
        ("not-equal", "o.customer_id != c.id"),
        ("conjunction", "o.customer_id == c.id && o.id == c.id"),
        ("constant", "o.customer_id == \"x\""),
        ("both-right", "c.id == c.id"),
        ("both-left", "o.id == o.customer_id"),
        ("unknown-source", "o.customer_id == x.id"),
        ("unknown-left-field", "o.nope == c.id"),
        ("unknown-right-field", "o.customer_id == c.nope"),
        ("not-yet-joined", "o.customer_id == p.order_id"),
        ("function", "size(o.customer_id) == c.id"),
        ("true", "true"),
        ("nested-too-deep", "(" * 60 + "o.customer_id == c.id" + ")" * 60),
        ("whole-record", "o == c"),
    ]:
        edit_case(c, f"join-on-{label}", b, [(p("spec.joins.0.on"), value)], ["/spec/joins/0/on"], f"on: {label}")
    edit_case(c, "never-joined-source", b, [(p("spec.joins.1"), DELETE), (p("spec.filter"), DELETE), (p("spec.fields.paid_at"), DELETE)], ["/spec/sources/2"], "source p is never joined")
    edit_case(c, "no-joins-at-all", b, [(p("spec.joins"), DELETE)], ["/spec/sources/1", "/spec/sources/2"], "neither c nor p is joined")
    edit_case(c, "driving-source-joined-first-table", b, [(p("spec.sources"), [b["spec"]["sources"][1], b["spec"]["sources"][0], b["spec"]["sources"][2]])], ["/spec/joins/0/right"], "the table first, so the lookup joins the driving source")
    for field, value in [("condition", "o.customer_id == c.id"), ("using", "customer_id"), ("left", "o"), ("Type", "lookup")]:
        edit_case(c, f"join-unknown-field-{field.lower()}", b, [(p(f"spec.joins.0.{field}"), value)], [f"/spec/joins/0/{field}"], f"unknown join field {field}")


def product_expressions():
    c = "product-expressions"
    b = P_PG
    wrong_types(c, "filter", b, "spec.filter", "/spec/filter", {"string", "null"}, "filter")
    for label, value in [
        ("empty", ""),
        ("blank", "   "),
        ("dangling-operator", "o.status =="),
        ("single-equals", "o.status = \"PAID\""),
        ("unbalanced-open", "(o.amount > 1"),
        ("unbalanced-close", "o.amount > 1)"),
        ("unterminated-string", "o.status == \"PAID"),
        ("leading-operator", "&& o.amount > 1"),
        ("double-dot", "o..status == \"PAID\""),
        ("triple-equals", "o.status === \"PAID\""),
        ("sql", "SELECT * FROM orders WHERE amount > 1"),
        ("sql-injection", "o.status == \"x\"; DROP TABLE orders"),
        ("js-comment", "o.amount > 1 /* all */"),
        ("shell", "$(reboot)"),
        ("unknown-source", "x.amount > 1"),
        ("unknown-field", "o.stauts == \"PAID\""),
        ("field-of-scalar", "o.amount.value > 1"),
        ("unknown-field-of-table", "c.nope == \"x\""),
        ("nested-too-deep", "(" * 60 + "o.amount > 1" + ")" * 60),
        ("unary-run", "!" * 100 + "true"),
        ("too-long", "o.amount > 1 " + "&& true " * 1100),
        ("only-whitespace-newlines", "\n\n\t\n"),
    ]:
        edit_case(c, f"filter-{label}", b, [(p("spec.filter"), value)], ["/spec/filter"], f"filter: {label}")
    # No type checker: a filter that is not boolean, or calls a function CEL does not have.
    for label, value in [("int-literal", "42"), ("string-literal", "\"PAID\""), ("map-literal", "{\"$ne\": null}"), ("unknown-function", "frobnicate(o.amount)")]:
        edit_case(c, f"filter-{label}", b, [(p("spec.filter"), value)], ["/spec/filter"], f"filter: {label} (not a boolean expression)")
    wrong_types(c, "key", b, "spec.key", "/spec/key", {"string", "null"}, "key")
    for label, value in [
        ("empty", ""),
        ("blank", " "),
        ("dangling-dot", "o."),
        ("dangling-operator", "o.id +"),
        ("unknown-source", "x.id"),
        ("unknown-field", "o.order_id"),
        ("number-field", "o.amount"),
        ("timestamp-field", "o.created_at"),
        ("too-long", "o.id" + " " * 4093),
        ("nested-too-deep", "[" * 50 + "o.id" + "]" * 50),
    ]:
        edit_case(c, f"key-{label}", b, [(p("spec.key"), value)], ["/spec/key"], f"key: {label}")
    edit_case(c, "upsert-without-key", b, [(p("spec.key"), DELETE)], ["/spec/key"], "upsert targets need a key")
    edit_case(c, "upsert-key-null", b, [(p("spec.key"), None)], ["/spec/key"], "upsert target with a null key")
    edit_case(c, "upsert-default-mode-without-key", b, [(p("spec.key"), DELETE), (p("spec.target.mode"), DELETE)], ["/spec/key"], "the default mode is upsert, which needs a key")


def product_fields():
    c = "product-fields"
    b = P_PG
    edit_case(c, "fields-missing", b, [(p("spec.fields"), DELETE)], ["/spec/fields"], "no fields")
    wrong_types(c, "fields", b, "spec.fields", "/spec/fields", {"map"}, "fields")
    edit_case(c, "fields-513", P_REDIS, [(p("spec.fields"), {f"f{i}": "o.id" for i in range(513)})], ["/spec/fields"], "more than 512 fields")
    for label, value in [("int", 1), ("bool", True), ("null", None), ("list", ["o.id"]), ("float", 1.5), ("empty", ""), ("too-long", "o.id" + " " * 4093)]:
        edit_case(c, f"field-value-{label}", b, [(p("spec.fields.order_id"), value)], ["/spec/fields/order_id"], f"a field expression: {label}")
    edit_case(c, "typed-without-expr", b, [(p("spec.fields.paid_at"), {"type": "timestamp"})], ["/spec/fields/paid_at/expr"], "typed field without expr")
    for label, value in [("int", 1), ("null", None), ("list", ["p.created_at"]), ("empty", "")]:
        edit_case(c, f"typed-expr-{label}", b, [(p("spec.fields.paid_at.expr"), value)], ["/spec/fields/paid_at/expr"], f"typed field expr: {label}")
    for label, value in [("datetime", "datetime"), ("int", "int"), ("capitalised", "String"), ("number-value", 5), ("list", ["string"]), ("date", "date"), ("float", "float")]:
        edit_case(c, f"typed-type-{label}", b, [(p("spec.fields.paid_at.type"), value)], ["/spec/fields/paid_at/type"], f"declared type: {label}")
    edit_case(c, "typed-unknown-field", b, [(p("spec.fields.paid_at.nullable"), True)], ["/spec/fields/paid_at/nullable"], "unknown typed-field key")
    edit_case(c, "typed-expression-key", b, [(p("spec.fields.paid_at"), {"expression": "p.created_at", "type": "timestamp"})], ["/spec/fields/paid_at/expression"], "expression instead of expr")
    edit_case(c, "typed-description-int", b, [(p("spec.fields.paid_at.description"), 5)], ["/spec/fields/paid_at/description"], "field description is a number")
    edit_case(c, "computed-without-type", b, [(p("spec.fields.amount_cents"), "int(o.amount * 100.0)")], ["/spec/fields/amount_cents"], "a computed field needs a declared type")
    edit_case(c, "computed-typed-without-type", b, [(p("spec.fields.total"), {"expr": "o.amount * 2.0"})], ["/spec/fields/total"], "a computed typed field without type")
    edit_case(c, "computed-concat-without-type", b, [(p("spec.fields.label"), "o.id + \"-\" + c.name")], ["/spec/fields/label"], "string concatenation without type")
    for label, expr, type_ in [
        ("number-as-string", "o.amount", "string"),
        ("string-as-integer", "o.id", "integer"),
        ("timestamp-as-boolean", "o.created_at", "boolean"),
        ("string-as-number", "c.name", "number"),
        ("number-as-object", "o.amount", "object"),
        ("string-as-array", "o.currency", "array"),
        ("number-as-timestamp", "p.amount", "timestamp"),
    ]:
        edit_case(c, f"type-mismatch-{label}", b, [(p("spec.fields.mismatch"), {"expr": expr, "type": type_})], ["/spec/fields/mismatch"], f"declared type {type_} for {expr}")
    edit_case(c, "type-mismatch-literal", b, [(p("spec.fields.mismatch"), {"expr": "\"abc\"", "type": "integer"})], ["/spec/fields/mismatch"], "a string literal declared integer")
    for label, name in [
        ("uppercase", "Order_Id"),
        ("dash", "order-id"),
        ("leading-digit", "1st"),
        ("space", "order id"),
        ("sql-injection", "a\"; DROP TABLE x; --"),
        ("reserved-prefix", "_sluice_version"),
        ("reserved", "_sluice"),
        ("64-chars", "f" * 64),
        ("empty", ""),
        ("unicode", "pr\u00e9nom"),
        ("dot", "a.b"),
        ("slash", "a/b"),
        ("tilde", "a~b"),
        ("shell", "$(reboot)"),
        ("json", "{\"a\":1}"),
        ("newline", "a\nb"),
    ]:
        edit_case(c, f"field-name-{label}", b, [(["spec", "fields", name], "o.id")], [ptr("spec", "fields", name)], f"output field name: {label}")
    for label, expr in [
        ("dangling-operator", "o.amount +"),
        ("dangling-dot", "o."),
        ("ternary-incomplete", "o.amount > 1 ? 1"),
        ("unknown-source", "x.id"),
        ("unknown-field", "o.nope"),
        ("field-of-scalar", "c.name.first"),
        ("unknown-field-of-window-source", "p.nope"),
        ("nested-too-deep", "(" * 60 + "o.id" + ")" * 60),
        ("shell", "`id`"),
    ]:
        edit_case(c, f"expr-{label}", b, [(p("spec.fields.order_id"), expr)], ["/spec/fields/order_id"], f"field expression: {label}")


def product_target():
    c = "product-target"
    b, es, rd = P_PG, P_ES, P_REDIS
    edit_case(c, "target-missing", b, [(p("spec.target"), DELETE)], ["/spec/target"], "no target")
    wrong_types(c, "target", b, "spec.target", "/spec/target", {"map", "empty-map"}, "target")
    edit_case(c, "target-empty", b, [(p("spec.target"), {})], ["/spec/target/name"], "an empty target")
    for label, value in [("int", 1), ("empty", ""), ("uppercase", "Shared-PG"), ("underscore", "shared_pg"), ("injection", "x; DROP"), ("list", ["shared-pg"]), ("url", "postgres://h/db")]:
        edit_case(c, f"cluster-{label}", b, [(p("spec.target.cluster"), value)], ["/spec/target/cluster"], f"target cluster: {label}")
    edit_case(c, "cluster-unknown", b, [(p("spec.target.cluster"), "nowhere")], ["/spec/target/cluster"], "a cluster that is not registered")
    edit_case(c, "cluster-never-stored", b, [(p("spec.target.cluster"), "corpus-pg")], ["/spec/target/cluster"], "a cluster whose apply failed")
    edit_case(c, "cluster-null-no-dedicated", b, [(p("spec.target.cluster"), None)], ["/spec/target/cluster"], "neither cluster nor dedicated")
    edit_case(c, "cluster-and-dedicated", b, [(p("spec.target.dedicated"), {"type": "postgres"})], ["/spec/target"], "both cluster and dedicated")
    edit_case(c, "dedicated-standalone", rd, [(p("spec.target.cluster"), DELETE), (p("spec.target.dedicated"), {"type": "redis", "size": "small"})], ["/spec/target/dedicated"], "dedicated targets need Kubernetes mode")
    for label, value, pointer in [
        ("type-unknown", {"type": "mysql"}, "/spec/target/dedicated/type"),
        ("size-unknown", {"type": "redis", "size": "huge"}, "/spec/target/dedicated/size"),
        ("type-missing", {"size": "small"}, "/spec/target/dedicated/type"),
        ("string", "redis", "/spec/target/dedicated"),
        ("unknown-field", {"type": "redis", "replicas": 3}, "/spec/target/dedicated/replicas"),
        ("size-int", {"type": "redis", "size": 3}, "/spec/target/dedicated/size"),
    ]:
        edit_case(c, f"dedicated-{label}", rd, [(p("spec.target.cluster"), DELETE), (p("spec.target.dedicated"), value)], [pointer], f"dedicated: {label}")
    edit_case(c, "name-missing", b, [(p("spec.target.name"), DELETE)], ["/spec/target/name"], "a target without a name")
    for label, value in [("int", 1), ("empty", ""), ("null", None), ("list", ["orders"]), ("101-chars", "o" * 101)]:
        edit_case(c, f"name-{label}", b, [(p("spec.target.name"), value)], ["/spec/target/name"], f"target name: {label}")
    for label, value in [
        ("dash", "orders-enriched"),
        ("uppercase", "Orders"),
        ("leading-digit", "1orders"),
        ("49-chars", "o" * 49),
        ("sql-injection", "orders; DROP TABLE x"),
        ("schema-qualified", "public.orders"),
        ("quoted", "\"orders\""),
        ("space", "orders enriched"),
        ("comment", "orders--"),
    ]:
        edit_case(c, f"postgres-name-{label}", b, [(p("spec.target.name"), value)], ["/spec/target/name"], f"postgres target name: {label}")
    for label, value in [
        ("uppercase", "Order-Search"),
        ("leading-underscore", "_order"),
        ("leading-dash", "-order"),
        ("wildcard", "order*"),
        ("space", "order search"),
        ("comma", "order,other"),
        ("slash", "order/x"),
        ("dotdot", ".."),
        ("colon", "cluster:order"),
        ("all", "_all"),
    ]:
        edit_case(c, f"elasticsearch-name-{label}", es, [(p("spec.target.name"), value)], ["/spec/target/name"], f"elasticsearch target name: {label}")
    for label, value in [
        ("colon", "open:orders"),
        ("glob", "open*"),
        ("uppercase", "Open"),
        ("space", "open orders"),
        ("newline", "open\norders"),
        ("braces", "{open}"),
        ("leading-underscore", "_open"),
        ("question-mark", "open?"),
        ("brackets", "open[ab]"),
    ]:
        edit_case(c, f"redis-name-{label}", rd, [(p("spec.target.name"), value)], ["/spec/target/name"], f"redis key prefix: {label}")
    for label, value in [("merge", "merge"), ("uppercase", "UPSERT"), ("int", 1), ("null", None), ("list", ["upsert"])]:
        edit_case(c, f"mode-{label}", b, [(p("spec.target.mode"), value)], ["/spec/target/mode"], f"mode: {label}")
    edit_case(c, "redis-append", rd, [(p("spec.target.mode"), "append")], ["/spec/target/mode"], "redis targets hold one value per key")
    for label, value in [("list", ["ttl"]), ("string", "ttl=7d"), ("int", 7), ("null", None)]:
        edit_case(c, f"options-{label}", rd, [(p("spec.target.options"), value)], ["/spec/target/options"], f"options: {label}")
    for label, opts, key in [("ttl", {"ttl": "7d"}, "ttl"), ("fillfactor", {"fillfactor": 70}, "fillfactor"), ("schema", {"schema": "public"}, "schema"), ("shards", {"shards": 1}, "shards")]:
        edit_case(c, f"postgres-option-{label}", b, [(p("spec.target.options"), opts)], [f"/spec/target/options/{key}"], f"postgres takes no option {key}")
    for label, opts, key in [
        ("shards-zero", {"shards": 0}, "shards"),
        ("shards-too-many", {"shards": 1025}, "shards"),
        ("shards-string", {"shards": "1"}, "shards"),
        ("shards-fraction", {"shards": 1.5}, "shards"),
        ("shards-negative", {"shards": -1}, "shards"),
        ("shards-null", {"shards": None}, "shards"),
        ("replicas-negative", {"replicas": -1}, "replicas"),
        ("replicas-too-many", {"replicas": 17}, "replicas"),
        ("replicas-string", {"replicas": "0"}, "replicas"),
        ("replicas-bool", {"replicas": False}, "replicas"),
        ("unknown-refresh", {"refresh_interval": "1s"}, "refresh_interval"),
        ("redis-type", {"type": "hash"}, "type"),
        ("ttl", {"ttl": "7d"}, "ttl"),
    ]:
        edit_case(c, f"elasticsearch-option-{label}", es, [(p("spec.target.options"), opts)], [ptr("spec", "target", "options", key)], f"elasticsearch option: {label}")
    for label, opts, key in [
        ("type-list", {"type": "list"}, "type"),
        ("type-uppercase", {"type": "HASH"}, "type"),
        ("type-int", {"type": 5}, "type"),
        ("type-null", {"type": None}, "type"),
        ("ttl-forever", {"ttl": "forever"}, "ttl"),
        ("ttl-int", {"ttl": 7}, "ttl"),
        ("ttl-zero", {"ttl": "0s"}, "ttl"),
        ("ttl-words", {"ttl": "7 days"}, "ttl"),
        ("ttl-empty", {"ttl": ""}, "ttl"),
        ("ttl-negative", {"ttl": "-7d"}, "ttl"),
        ("unknown-db", {"db": 1}, "db"),
        ("elasticsearch-shards", {"shards": 1}, "shards"),
    ]:
        edit_case(c, f"redis-option-{label}", rd, [(p("spec.target.options"), opts)], [ptr("spec", "target", "options", key)], f"redis option: {label}")
    for field, value in [("table", "orders"), ("schema", "public"), ("index", "orders"), ("Mode", "upsert")]:
        edit_case(c, f"unknown-field-{field.lower()}", b, [(p(f"spec.target.{field}"), value)], [f"/spec/target/{field}"], f"unknown target field {field}")


def product_misc():
    c = "product-misc"
    b = P_PG
    for label, value in [("lowercase", "delete"), ("keep", "Keep"), ("int", 1), ("null", None), ("bool", True), ("list", ["Delete"]), ("orphan", "Orphan")]:
        edit_case(c, f"deletion-policy-{label}", b, [(p("spec.deletionPolicy"), value)], ["/spec/deletionPolicy"], f"deletionPolicy: {label}")
    for label, value in [("string", "5s"), ("list", ["5s"]), ("int", 5)]:
        edit_case(c, f"slo-{label}", b, [(p("spec.slo"), value)], ["/spec/slo"], f"slo: {label}")
    for label, value in [("int", 5), ("words", "5 seconds"), ("empty", ""), ("fraction", "0.5s"), ("list", ["5s"]), ("bool", True)]:
        edit_case(c, f"slo-freshness-{label}", b, [(p("spec.slo"), {"freshness": value})], ["/spec/slo/freshness"], f"slo freshness: {label}")
    edit_case(c, "slo-freshness-zero", b, [(p("spec.slo"), {"freshness": "0s"})], ["/spec/slo/freshness"], "a zero freshness objective")
    edit_case(c, "slo-unknown-field", b, [(p("spec.slo"), {"latency": "5s"})], ["/spec/slo/latency"], "unknown slo field")
    for label, value in [
        ("past", "2020-01-01"),
        ("long-past", "1999-12-31"),
        ("month-13", "2027-13-01"),
        ("february-30", "2027-02-30"),
        ("european", "30/06/2027"),
        ("datetime", "2027-06-30T00:00:00Z"),
        ("tomorrow", "tomorrow"),
        ("int", 20270630),
        ("empty", ""),
        ("list", ["2027-06-30"]),
        ("two-digit-year", "27-06-30"),
        ("no-padding", "2027-6-30"),
    ]:
        edit_case(c, f"expires-{label}", b, [(p("spec.expires"), value)], ["/spec/expires"], f"expires: {label}")
    for field in ["source", "join", "filters", "keys", "output", "schedule", "Sources", "status", "target_cluster", "deletion_policy"]:
        edit_case(c, f"unknown-spec-field-{field.lower().replace('_', '-')}", b, [(p(f"spec.{field}"), "x")], [f"/spec/{field}"], f"unknown spec field {field}")
    # Several mistakes at once: each is reported.
    edit_case(
        c,
        "many-mistakes-at-once",
        b,
        [
            (p("spec.sources.1.dataset"), "crm.clients"),
            (p("spec.filter"), "o.nope > 1"),
            (p("spec.fields.x"), "q.y"),
            (p("spec.target.cluster"), "nowhere"),
            (p("spec.expires"), "2020-01-01"),
        ],
        ["/spec/sources/1/dataset", "/spec/filter", "/spec/fields/x", "/spec/target/cluster", "/spec/expires"],
        "five semantic mistakes, all reported",
    )
    edit_case(
        c,
        "many-structural-mistakes-at-once",
        b,
        [(p("spec.sources.0.nmae"), "typo"), (p("spec.target.mode"), "merge"), (p("spec.deletionPolicy"), 3), (p("metadata.tags"), "x")],
        ["/spec/sources/0/nmae", "/spec/target/mode", "/spec/deletionPolicy", "/metadata/tags"],
        "four structural mistakes, all reported",
    )


def injection():
    """Hostile strings in every name a spec carries."""
    c = "injection"
    locations = [
        ("product-name", P_PG, "metadata.name", "/metadata/name"),
        ("team", P_PG, "metadata.team", "/metadata/team"),
        ("source-alias", P_REDIS, "spec.sources.0.name", "/spec/sources/0/name"),
        ("source-dataset", P_PG, "spec.sources.1.dataset", "/spec/sources/1/dataset"),
        ("join-right", P_PG, "spec.joins.0.right", "/spec/joins/0/right"),
        ("target-cluster", P_PG, "spec.target.cluster", "/spec/target/cluster"),
        ("postgres-table", P_PG, "spec.target.name", "/spec/target/name"),
        ("elasticsearch-index", P_ES, "spec.target.name", "/spec/target/name"),
        ("redis-prefix", P_REDIS, "spec.target.name", "/spec/target/name"),
        ("dataset-name", DS_STREAM, "metadata.name", "/metadata/name"),
        ("dataset-owner", DS_STREAM, "metadata.owner", "/metadata/owner"),
        ("topic", DS_STREAM, "spec.topic", "/spec/topic"),
        ("dataset-key", DS_STREAM, "spec.key", "/spec/key"),
        ("timestamp-field", DS_STREAM, "spec.timestampField", "/spec/timestampField"),
        ("cluster-name", TC_PG, "metadata.name", "/metadata/name"),
        ("allowed-team", TC_PG, "spec.allowedTeams.0", "/spec/allowedTeams/0"),
        ("credentials-secret", TC_PG, "spec.credentialsSecret", "/spec/credentialsSecret"),
        ("product-filter", P_PG, "spec.filter", "/spec/filter"),
    ]
    # Every location gets the SQL and shell classics plus five more, rotating through the rest
    # of HOSTILE so that each hostile string lands in several locations.
    always, rotating = HOSTILE[:1] + HOSTILE[3:4], HOSTILE[1:3] + HOSTILE[4:]
    for i, (loc, base, path, pointer) in enumerate(locations):
        chosen = always + [rotating[(5 * i + k) % len(rotating)] for k in range(5)]
        for hname, text in chosen:
            if loc == "product-filter" and hname == "json-object":
                continue  # a map literal parses as CEL: see product-expressions/filter-map-literal
            edit_case(c, f"{loc}-{hname}", base, [(p(path), text)], [pointer], f"{loc}: {text!r}")
    for hname, text in HOSTILE:
        edit_case(c, f"field-name-{hname}", P_PG, [(["spec", "fields", text], "o.id")], [ptr("spec", "fields", text)], f"output field name {text!r}")


def plan_endpoint():
    """The dry run validates like the apply: a sample of mistakes through POST .../plan."""
    c = "plan"

    def plan_case(name, base, edits, pointers, desc):
        doc = mutate(base, *edits)
        put = endpoint_for(doc, base)
        endpoint = "POST" + put[len("PUT") :] + "/plan"
        doc_case(c, name, doc, pointers, desc, endpoint=endpoint)

    b = P_PG
    plan_case("unknown-dataset", b, [(p("spec.sources.1.dataset"), "crm.clients")], ["/spec/sources/1/dataset"], "plan of a product reading an unknown dataset")
    plan_case("unknown-cluster", b, [(p("spec.target.cluster"), "nowhere")], ["/spec/target/cluster"], "plan of a product landing in an unknown cluster")
    plan_case("cel-syntax", b, [(p("spec.filter"), "o.amount >")], ["/spec/filter"], "plan of a product with a broken filter")
    plan_case("unknown-field", b, [(p("spec.fields.order_id"), "o.nope")], ["/spec/fields/order_id"], "plan of a product reading an unknown field")
    plan_case("computed-without-type", b, [(p("spec.fields.x"), "o.amount * 2.0")], ["/spec/fields/x"], "plan of a computed field without type")
    plan_case("type-mismatch", b, [(p("spec.fields.amount"), {"expr": "o.amount", "type": "string"})], ["/spec/fields/amount"], "plan with a declared type mismatch")
    plan_case("window-without-within", b, [(p("spec.joins.1.within"), DELETE)], ["/spec/joins/1/within"], "plan of a window join without within")
    plan_case("lookup-on-stream", b, [(p("spec.joins.1"), {"type": "lookup", "right": "p", "on": "o.id == p.order_id"})], ["/spec/joins/1/right"], "plan of a lookup of a stream")
    plan_case("bad-target-name", b, [(p("spec.target.name"), "orders; DROP TABLE x")], ["/spec/target/name"], "plan with a hostile table name")
    plan_case("redis-append", P_REDIS, [(p("spec.target.mode"), "append")], ["/spec/target/mode"], "plan of an append into redis")
    plan_case("unknown-spec-field", b, [(p("spec.colour"), "blue")], ["/spec/colour"], "plan with an unknown field")
    plan_case("missing-target", b, [(p("spec.target"), DELETE)], ["/spec/target"], "plan without a target")
    plan_case("dedicated", P_REDIS, [(p("spec.target.cluster"), DELETE), (p("spec.target.dedicated"), {"type": "redis"})], ["/spec/target/dedicated"], "plan of a dedicated target outside Kubernetes")
    plan_case("expired", b, [(p("spec.expires"), "2020-01-01")], ["/spec/expires"], "plan of a product that expired")
    plan_case("no-key", b, [(p("spec.key"), DELETE)], ["/spec/key"], "plan of an upsert without a key")
    add(c, "empty-body", "", endpoint="POST /api/v1/products/team-payments/orders-enriched/plan", status=400, desc="plan of nothing")
    add(c, "not-utf8", b"\xff\xfe\xfd", endpoint="POST /api/v1/products/team-payments/orders-enriched/plan", pointers=("",), desc="plan of bytes that are not UTF-8", ext="bin")


def json_bodies():
    """The same documents sent as JSON (application/json)."""
    c = "json"
    cases = [
        ("unknown-dataset", P_PG, [(p("spec.sources.1.dataset"), "crm.clients")], ["/spec/sources/1/dataset"]),
        ("source-name-int", P_PG, [(p("spec.sources.0.name"), 1)], ["/spec/sources/0/name"]),
        ("fields-list", P_PG, [(p("spec.fields"), ["o.id"])], ["/spec/fields"]),
        ("field-number", P_PG, [(p("spec.fields.order_id"), 1)], ["/spec/fields/order_id"]),
        ("join-without-within", P_PG, [(p("spec.joins.1.within"), DELETE)], ["/spec/joins/1/within"]),
        ("cel-error", P_PG, [(p("spec.key"), "o.id +")], ["/spec/key"]),
        ("target-null", P_PG, [(p("spec.target"), None)], ["/spec/target"]),
        ("es-shards-string", P_ES, [(p("spec.target.options.shards"), "1")], ["/spec/target/options/shards"]),
        ("redis-ttl-int", P_REDIS, [(p("spec.target.options.ttl"), 604800)], ["/spec/target/options/ttl"]),
        ("dataset-kind-bad", DS_STREAM, [(p("spec.kind"), "queue")], ["/spec/kind"]),
        ("dataset-schema-array", DS_STREAM, [(p("spec.schema.type"), "array")], ["/spec/schema/type"]),
        ("cluster-url-wrong-scheme", TC_ES, [(p("spec.url"), "redis://h")], ["/spec/url"]),
        ("cluster-isolation-mismatch", TC_REDIS, [(p("spec.isolation"), "schema")], ["/spec/isolation"]),
        ("number-huge", P_PG, [(p("metadata.generation"), 10**40)], ["/metadata/generation"]),
        ("field-name-injection", P_PG, [(["spec", "fields", "x\"}, {\"injected\": 1"], "o.id")], [ptr("spec", "fields", "x\"}, {\"injected\": 1")]),
        ("unicode-escapes", P_PG, [(p("metadata.name"), "orders\u2028enriched")], ["/metadata/name"]),
    ]
    for name, base, edits, pointers in cases:
        doc = mutate(base, *edits)
        doc_case(c, name, doc, pointers, f"JSON body: {name}", fallback=base, as_json=True)
    add(c, "yaml-labelled-json-broken", "kind: [\n", endpoint="PUT /api/v1/products/team-payments/orders-enriched", pointers=("",), desc="broken YAML labelled application/json", content_type="application/json")
    add(c, "nan-literal", json.dumps(P_PG).replace('"replicas"', '"x"').replace('"upsert"}', '"upsert", "options": NaN}'), endpoint="PUT /api/v1/products/team-payments/orders-enriched", pointers=("/spec/target/options",), desc="NaN where a mapping belongs", content_type="application/json")
