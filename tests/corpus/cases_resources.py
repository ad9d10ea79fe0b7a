"""Cases of the envelope, metadata, URL, Dataset and TargetCluster."""

from corpus_lib import *  # noqa: F401,F403  (the generator's vocabulary)


def envelope():
    c = "envelope"
    for kname, base in KINDS:
        kind = base["kind"]
        edit_case(c, f"{kname}-apiversion-missing", base, [(["apiVersion"], DELETE)], ["/apiVersion"], "apiVersion is missing")
        edit_case(c, f"{kname}-apiversion-v1", base, [(["apiVersion"], "sluice.dev/v1")], ["/apiVersion"], "apiVersion is an unknown version")
        edit_case(c, f"{kname}-apiversion-k8s", base, [(["apiVersion"], "apps/v1")], ["/apiVersion"], "apiVersion of another API")
        edit_case(c, f"{kname}-apiversion-int", base, [(["apiVersion"], 1)], ["/apiVersion"], "apiVersion is a number")
        edit_case(c, f"{kname}-apiversion-null", base, [(["apiVersion"], None)], ["/apiVersion"], "apiVersion is null")
        edit_case(c, f"{kname}-apiversion-padded", base, [(["apiVersion"], " sluice.dev/v1alpha1 ")], ["/apiVersion"], "apiVersion with spaces around it")
        edit_case(c, f"{kname}-kind-missing", base, [(["kind"], DELETE)], ["/kind"], "kind is missing")
        edit_case(c, f"{kname}-kind-null", base, [(["kind"], None)], ["/kind"], "kind is null")
        edit_case(c, f"{kname}-kind-int", base, [(["kind"], 42)], ["/kind"], "kind is a number")
        edit_case(c, f"{kname}-kind-list", base, [(["kind"], [kind])], ["/kind"], "kind is a list")
        edit_case(c, f"{kname}-kind-lowercase", base, [(["kind"], kind.lower())], ["/kind"], "kind in lower case")
        edit_case(c, f"{kname}-kind-unknown", base, [(["kind"], "Deployment")], ["/kind"], "kind of another API")
        edit_case(c, f"{kname}-kind-bom", base, [(["kind"], "\ufeff" + kind)], ["/kind"], "kind with a byte order mark")
        edit_case(c, f"{kname}-metadata-missing", base, [(["metadata"], DELETE)], ["/metadata"], "metadata is missing")
        edit_case(c, f"{kname}-metadata-string", base, [(["metadata"], "orders")], ["/metadata"], "metadata is a string")
        edit_case(c, f"{kname}-metadata-list", base, [(["metadata"], [base["metadata"]])], ["/metadata"], "metadata is a list")
        edit_case(c, f"{kname}-metadata-null", base, [(["metadata"], None)], ["/metadata"], "metadata is null")
        edit_case(c, f"{kname}-spec-missing", base, [(["spec"], DELETE)], ["/spec"], "spec is missing")
        edit_case(c, f"{kname}-spec-string", base, [(["spec"], "everything")], ["/spec"], "spec is a string")
        edit_case(c, f"{kname}-spec-list", base, [(["spec"], [base["spec"]])], ["/spec"], "spec is a list")
        edit_case(c, f"{kname}-spec-null", base, [(["spec"], None)], ["/spec"], "spec is null")
        edit_case(c, f"{kname}-spec-int", base, [(["spec"], 0)], ["/spec"], "spec is a number")
        first_required = {"product": "/spec/sources", "dataset": "/spec/topic", "cluster": "/spec/type"}[kname]
        edit_case(c, f"{kname}-spec-empty", base, [(["spec"], {})], [first_required], "spec is an empty mapping")
        edit_case(c, f"{kname}-unknown-top-level-field", base, [(["extra"], "x")], ["/extra"], "an unknown top-level field")
        edit_case(c, f"{kname}-spec-misspelled", base, [(["Spec"], base["spec"]), (["spec"], DELETE)], ["/Spec", "/spec"], "spec spelled Spec")
        edit_case(c, f"{kname}-apiversion-snake-case", base, [(["api_version"], API), (["apiVersion"], DELETE)], ["/api_version", "/apiVersion"], "apiVersion spelled api_version")
        edit_case(c, f"{kname}-data-instead-of-spec", base, [(["data"], base["spec"]), (["spec"], DELETE)], ["/data", "/spec"], "data instead of spec")


def metadata():
    c = "metadata"
    prod, ds, tc = P_PG, DS_STREAM, TC_PG
    # Products: metadata.name is a DNS-1123 label.
    edit_case(c, "product-name-missing", prod, [(p("metadata.name"), DELETE)], ["/metadata/name"], "product without a name")
    edit_case(c, "product-name-empty", prod, [(p("metadata.name"), "")], ["/metadata/name"], "empty product name")
    wrong_types(c, "product-name", prod, "metadata.name", "/metadata/name", {"string"}, "product name")
    for label, name in [
        ("uppercase", "Orders-Enriched"),
        ("underscore", "orders_enriched"),
        ("leading-dash", "-orders"),
        ("trailing-dash", "orders-"),
        ("dot", "orders.enriched"),
        ("64-chars", "o" * 64),
        ("129-chars", "o" * 129),
        ("space", "orders enriched"),
        ("unicode", "bestellungen-\u00fc"),
        ("only-dash", "-"),
    ]:
        edit_case(c, f"product-name-{label}", prod, [(p("metadata.name"), name)], ["/metadata/name"], f"product name: {label}")
    edit_case(c, "product-team-missing", prod, [(p("metadata.team"), DELETE)], ["/metadata/team"], "product without a team")
    edit_case(c, "product-team-null", prod, [(p("metadata.team"), None)], ["/metadata/team"], "product team is null")
    edit_case(c, "product-team-empty", prod, [(p("metadata.team"), "")], ["/metadata/team"], "product team is empty")
    for label, team in [("uppercase", "Team-Payments"), ("underscore", "team_payments"), ("64-chars", "t" * 64), ("dot", "team.payments")]:
        edit_case(c, f"product-team-{label}", prod, [(p("metadata.team"), team)], ["/metadata/team"], f"product team: {label}")
    wrong_types(c, "product-team", prod, "metadata.team", "/metadata/team", {"string", "null"}, "product team")
    edit_case(c, "product-with-owner", prod, [(p("metadata.owner"), "team-shop")], ["/metadata/owner"], "products have a team, not an owner")
    edit_case(c, "product-owner-invalid", prod, [(p("metadata.owner"), "Team Shop")], ["/metadata/owner"], "product with an invalid owner")
    edit_case(c, "description-int", prod, [(p("metadata.description"), 5)], ["/metadata/description"], "description is a number")
    edit_case(c, "description-list", prod, [(p("metadata.description"), ["a"])], ["/metadata/description"], "description is a list")
    edit_case(c, "description-too-long", prod, [(p("metadata.description"), "d" * 4097)], ["/metadata/description"], "description over 4096 characters")
    edit_case(c, "tags-string", prod, [(p("metadata.tags"), "orders")], ["/metadata/tags"], "tags is a string")
    edit_case(c, "tags-map", prod, [(p("metadata.tags"), {"a": "b"})], ["/metadata/tags"], "tags is a mapping")
    edit_case(c, "tags-item-int", prod, [(p("metadata.tags"), [1])], ["/metadata/tags/0"], "a tag is a number")
    edit_case(c, "tags-item-null", prod, [(p("metadata.tags"), ["ok", None])], ["/metadata/tags/1"], "a tag is null")
    edit_case(c, "tags-item-empty", prod, [(p("metadata.tags"), [""])], ["/metadata/tags/0"], "an empty tag")
    edit_case(c, "tags-item-too-long", prod, [(p("metadata.tags"), ["t" * 65])], ["/metadata/tags/0"], "a tag over 64 characters")
    edit_case(c, "tags-too-many", prod, [(p("metadata.tags"), [f"t{i}" for i in range(65)])], ["/metadata/tags"], "65 tags")
    edit_case(c, "tags-item-map", prod, [(p("metadata.tags"), [{"a": 1}])], ["/metadata/tags/0"], "a tag is a mapping")
    edit_case(c, "labels-list", prod, [(p("metadata.labels"), ["a=b"])], ["/metadata/labels"], "labels is a list")
    edit_case(c, "labels-string", prod, [(p("metadata.labels"), "a=b")], ["/metadata/labels"], "labels is a string")
    edit_case(c, "labels-value-int", prod, [(p("metadata.labels"), {"tier": 1})], ["/metadata/labels/tier"], "a label value is a number")
    edit_case(c, "labels-value-map", prod, [(p("metadata.labels"), {"tier": {"a": "b"}})], ["/metadata/labels/tier"], "a label value is a mapping")
    edit_case(c, "labels-value-null", prod, [(p("metadata.labels"), {"tier": None})], ["/metadata/labels/tier"], "a label value is null")
    edit_case(c, "unknown-namespace", prod, [(p("metadata.namespace"), "default")], ["/metadata/namespace"], "metadata.namespace does not exist")
    edit_case(c, "unknown-annotations", prod, [(p("metadata.annotations"), {"a": "b"})], ["/metadata/annotations"], "metadata.annotations does not exist")
    edit_case(c, "unknown-misspelled-description", prod, [(p("metadata.descripton"), "typo")], ["/metadata/descripton"], "a misspelled metadata field")
    edit_case(c, "generation-string", prod, [(p("metadata.generation"), "one")], ["/metadata/generation"], "generation is a string")
    edit_case(c, "generation-float", prod, [(p("metadata.generation"), 1.5)], ["/metadata/generation"], "generation is a fraction")
    edit_case(c, "uid-int", prod, [(p("metadata.uid"), 5)], ["/metadata/uid"], "uid is a number")
    edit_case(c, "creation-timestamp-int", prod, [(p("metadata.creationTimestamp"), 5)], ["/metadata/creationTimestamp"], "creationTimestamp is a number")
    edit_case(c, "resource-version-int-list", prod, [(p("metadata.resourceVersion"), [1])], ["/metadata/resourceVersion"], "resourceVersion is a list")
    edit_case(c, "resource-version-not-a-number", prod, [(p("metadata.resourceVersion"), "abc")], ["/metadata/resourceVersion"], "resourceVersion the server never handed out", status=400)
    edit_case(c, "resource-version-zero", prod, [(p("metadata.resourceVersion"), "0")], ["/metadata/resourceVersion"], "resourceVersion zero", status=400)
    edit_case(c, "resource-version-negative", prod, [(p("metadata.resourceVersion"), "-7")], ["/metadata/resourceVersion"], "a negative resourceVersion", status=400)
    edit_case(c, "resource-version-stale-on-create", prod, [(p("metadata.resourceVersion"), "999999")], [], "a resourceVersion for an object that does not exist", status=409)
    # Datasets: metadata.name is a catalog name; owner is required, team forbidden.
    for label, name in [
        ("uppercase", "Corpus.Orders"),
        ("leading-dot", ".orders"),
        ("trailing-dot", "orders."),
        ("slash", "corpus/orders"),
        ("space", "corpus orders"),
        ("colon", "corpus:orders"),
        ("129-chars", "o" * 129),
        ("star", "corpus.*"),
    ]:
        edit_case(c, f"dataset-name-{label}", ds, [(p("metadata.name"), name)], ["/metadata/name"], f"dataset name: {label}")
    wrong_types(c, "dataset-name", ds, "metadata.name", "/metadata/name", {"string", "empty-map", "empty-list", "list", "map", "float", "bool", "null"}, "dataset name")
    edit_case(c, "dataset-owner-missing", ds, [(p("metadata.owner"), DELETE)], ["/metadata/owner"], "dataset without an owner")
    edit_case(c, "dataset-owner-null", ds, [(p("metadata.owner"), None)], ["/metadata/owner"], "dataset owner is null")
    edit_case(c, "dataset-owner-invalid", ds, [(p("metadata.owner"), "Team Shop")], ["/metadata/owner"], "dataset owner is not a DNS label")
    edit_case(c, "dataset-owner-int", ds, [(p("metadata.owner"), 7)], ["/metadata/owner"], "dataset owner is a number")
    edit_case(c, "dataset-with-team", ds, [(p("metadata.team"), "team-shop")], ["/metadata/team"], "datasets have an owner, not a team")
    # Target clusters: DNS label names, no team or owner.
    for label, name in [("uppercase", "Corpus-PG"), ("underscore", "corpus_pg"), ("dot", "corpus.pg"), ("64-chars", "c" * 64)]:
        edit_case(c, f"cluster-name-{label}", tc, [(p("metadata.name"), name)], ["/metadata/name"], f"cluster name: {label}")
    edit_case(c, "cluster-name-missing", tc, [(p("metadata.name"), DELETE)], ["/metadata/name"], "cluster without a name")
    edit_case(c, "cluster-with-team", tc, [(p("metadata.team"), "team-a")], ["/metadata/team"], "clusters are shared: no team")
    edit_case(c, "cluster-with-owner", tc, [(p("metadata.owner"), "team-a")], ["/metadata/owner"], "clusters belong to the platform: no owner")


def url_mismatch():
    c = "url"
    prod = P_PG
    doc_case(c, "product-name-differs", prod, ["/metadata/name"], "body names another product than the URL", endpoint="PUT /api/v1/products/team-payments/other-product")
    doc_case(c, "product-name-case-differs", prod, ["/metadata/name"], "URL name differs in case", endpoint="PUT /api/v1/products/team-payments/Orders-Enriched")
    doc_case(c, "product-name-trailing-space", prod, ["/metadata/name"], "URL name with a trailing space", endpoint="PUT /api/v1/products/team-payments/orders-enriched%20")
    doc_case(c, "product-team-differs", prod, ["/metadata/team"], "body team differs from the URL team", endpoint="PUT /api/v1/products/team-shop/orders-enriched")
    doc_case(c, "product-team-case-differs", prod, ["/metadata/team"], "URL team differs in case", endpoint="PUT /api/v1/products/Team-Payments/orders-enriched")
    edit_case(c, "product-team-missing-in-body", prod, [(p("metadata.team"), DELETE)], ["/metadata/team"], "team only in the URL", endpoint="PUT /api/v1/products/team-payments/orders-enriched")
    doc_case(c, "product-both-differ", prod, ["/metadata/name", "/metadata/team"], "both team and name differ", endpoint="PUT /api/v1/products/team-x/product-y")
    doc_case(c, "dataset-at-products-url", DS_STREAM, ["/kind"], "a Dataset put at a product URL", endpoint="PUT /api/v1/products/team-shop/corpus.orders")
    doc_case(c, "cluster-at-products-url", TC_PG, ["/kind"], "a TargetCluster put at a product URL", endpoint="PUT /api/v1/products/team-a/corpus-pg")
    doc_case(c, "product-at-datasets-url", prod, ["/kind"], "a DataProduct put at a dataset URL", endpoint="PUT /api/v1/datasets/orders-enriched")
    doc_case(c, "cluster-at-datasets-url", TC_PG, ["/kind"], "a TargetCluster put at a dataset URL", endpoint="PUT /api/v1/datasets/corpus-pg")
    doc_case(c, "product-at-clusters-url", prod, ["/kind"], "a DataProduct put at a target cluster URL", endpoint="PUT /api/v1/targetclusters/orders-enriched")
    doc_case(c, "dataset-at-clusters-url", DS_STREAM, ["/kind"], "a Dataset put at a target cluster URL", endpoint="PUT /api/v1/targetclusters/corpus.orders")
    doc_case(c, "dataset-name-differs", DS_STREAM, ["/metadata/name"], "dataset body names another dataset", endpoint="PUT /api/v1/datasets/corpus.other")
    doc_case(c, "dataset-name-overwrites-catalog", DS_STREAM, ["/metadata/name"], "a dataset body put at an existing catalog entry's URL", endpoint="PUT /api/v1/datasets/shop.orders")
    doc_case(c, "cluster-name-differs", TC_PG, ["/metadata/name"], "cluster body names another cluster", endpoint="PUT /api/v1/targetclusters/shared-pg")
    doc_case(c, "plan-name-differs", prod, ["/metadata/name"], "plan of a body naming another product", endpoint="POST /api/v1/products/team-payments/other/plan")
    doc_case(c, "plan-team-differs", prod, ["/metadata/team"], "plan of a body of another team", endpoint="POST /api/v1/products/team-x/orders-enriched/plan")
    doc_case(c, "plan-of-a-dataset", DS_STREAM, ["/kind"], "plan of a Dataset", endpoint="POST /api/v1/products/team-shop/corpus.orders/plan")
    doc_case(c, "plan-of-a-cluster", TC_PG, ["/kind"], "plan of a TargetCluster", endpoint="POST /api/v1/products/team-a/corpus-pg/plan")


def dataset_spec():
    c = "dataset"
    ds, dt = DS_STREAM, DS_TABLE
    edit_case(c, "topic-missing", ds, [(p("spec.topic"), DELETE)], ["/spec/topic"], "no topic")
    wrong_types(c, "topic", ds, "spec.topic", "/spec/topic", {"string"}, "topic")
    for label, topic in [
        ("empty", ""),
        ("space", "corpus orders"),
        ("semicolon", "orders;drop"),
        ("slash", "corpus/orders"),
        ("unicode", "bestellungen-\u00fc"),
        ("250-chars", "t" * 250),
        ("star", "orders.*"),
        ("newline", "orders\nx"),
    ]:
        edit_case(c, f"topic-{label}", ds, [(p("spec.topic"), topic)], ["/spec/topic"], f"topic: {label}")
    edit_case(c, "kind-missing", ds, [(p("spec.kind"), DELETE)], ["/spec/kind"], "no kind")
    for label, kind in [("capitalised", "Stream"), ("log", "log"), ("compacted", "compacted"), ("int", 1), ("null", None), ("list", ["stream"])]:
        edit_case(c, f"kind-{label}", ds, [(p("spec.kind"), kind)], ["/spec/kind"], f"kind: {label}")
    for label, key in [("int", 5), ("leading-digit", "1id"), ("dash", "order-id"), ("dotted", "address.city"), ("injection", "id; DROP TABLE x"), ("empty", ""), ("list", ["id"])]:
        edit_case(c, f"key-{label}", ds, [(p("spec.key"), key)], ["/spec/key"], f"key: {label}")
    edit_case(c, "key-not-in-schema", ds, [(p("spec.key"), "order_id")], ["/spec/key"], "key names no field of the schema")
    edit_case(c, "key-number-field", ds, [(p("spec.key"), "amount")], ["/spec/key"], "key is a number field")
    edit_case(c, "key-object-field", ds, [(p("spec.key"), "address")], ["/spec/key"], "key is an object field")
    edit_case(c, "key-boolean-field", ds, [(p("spec.key"), "gift")], ["/spec/key"], "key is a boolean field")
    edit_case(c, "key-case-differs", ds, [(p("spec.key"), "ID")], ["/spec/key"], "key differs from the field in case")
    edit_case(c, "table-without-key", dt, [(p("spec.key"), DELETE)], ["/spec/key"], "a table needs a key")
    edit_case(c, "table-key-null", dt, [(p("spec.key"), None)], ["/spec/key"], "a table with a null key")
    for label, ts in [("int", 5), ("space", "created at"), ("dash", "created-at"), ("list", ["created_at"])]:
        edit_case(c, f"timestamp-field-{label}", ds, [(p("spec.timestampField"), ts)], ["/spec/timestampField"], f"timestampField: {label}")
    edit_case(c, "timestamp-field-not-in-schema", ds, [(p("spec.timestampField"), "placed_at")], ["/spec/timestampField"], "timestampField names no field")
    edit_case(c, "timestamp-field-plain-string", ds, [(p("spec.timestampField"), "currency")], ["/spec/timestampField"], "timestampField is a string without format date-time")
    edit_case(c, "timestamp-field-number", ds, [(p("spec.timestampField"), "amount")], ["/spec/timestampField"], "timestampField is a number field")
    edit_case(c, "timestamp-field-object", ds, [(p("spec.timestampField"), "address")], ["/spec/timestampField"], "timestampField is an object field")
    edit_case(c, "timestamp-field-boolean", ds, [(p("spec.timestampField"), "gift")], ["/spec/timestampField"], "timestampField is a boolean field")
    edit_case(c, "classification-missing", ds, [(p("spec.classification"), DELETE)], ["/spec/classification"], "no classification")
    for label, value in [("secret", "secret"), ("capitalised", "Internal"), ("int", 2), ("null", None), ("list", ["internal"])]:
        edit_case(c, f"classification-{label}", ds, [(p("spec.classification"), value)], ["/spec/classification"], f"classification: {label}")
    for label, value in [("lowercase", "backward"), ("strict", "STRICT"), ("int", 1), ("null", None), ("dash", "BACKWARD-TRANSITIVE")]:
        edit_case(c, f"compatibility-{label}", ds, [(p("spec.compatibility"), value)], ["/spec/compatibility"], f"compatibility: {label}")
    edit_case(c, "schema-missing", ds, [(p("spec.schema"), DELETE)], ["/spec/schema"], "no schema")
    for label, value in [("string", "object"), ("list", [ORDERS_SCHEMA]), ("int", 1), ("null", None), ("bool", True)]:
        edit_case(c, f"schema-{label}", ds, [(p("spec.schema"), value)], ["/spec/schema"], f"schema: {label}")
    edit_case(c, "schema-type-array", ds, [(p("spec.schema.type"), "array")], ["/spec/schema/type"], "records must be objects")
    edit_case(c, "schema-type-missing", ds, [(p("spec.schema.type"), DELETE)], ["/spec/schema/type"], "schema without type")
    edit_case(c, "schema-type-string", ds, [(p("spec.schema"), {"type": "string"})], ["/spec/schema/type"], "schema of a string")
    edit_case(c, "schema-no-properties", ds, [(p("spec.schema"), {"type": "object"})], ["/spec/schema/properties"], "schema with no properties")
    edit_case(c, "schema-empty-properties", ds, [(p("spec.schema.properties"), {})], ["/spec/schema/properties"], "schema with empty properties")
    edit_case(c, "schema-property-type-typo", ds, [(p("spec.schema.properties.id.type"), "strnig")], ["/spec/schema/properties/id/type"], "a property type misspelled")
    edit_case(c, "schema-properties-list", ds, [(p("spec.schema.properties"), [{"id": {"type": "string"}}])], ["/spec/schema/properties"], "properties is a list")
    edit_case(c, "schema-required-string", ds, [(p("spec.schema.required"), "id")], ["/spec/schema/required"], "required is a string")
    edit_case(c, "schema-min-length-negative", ds, [(p("spec.schema.properties.id.minLength"), -1)], ["/spec/schema/properties/id/minLength"], "a negative minLength")
    edit_case(c, "schema-property-not-schema", ds, [(p("spec.schema.properties.id"), 5)], ["/spec/schema/properties/id"], "a property that is not a schema")
    edit_case(c, "schema-enum-not-list", ds, [(p("spec.schema.properties.status.enum"), "PLACED")], ["/spec/schema/properties/status/enum"], "enum is not a list")
    edit_case(c, "unknown-field-partitions", ds, [(p("spec.partitions"), 6)], ["/spec/partitions"], "an unknown spec field")
    edit_case(c, "unknown-field-snake-case", ds, [(p("spec.timestamp_field"), "created_at")], ["/spec/timestamp_field"], "timestampField spelled timestamp_field")
    edit_case(c, "unknown-field-owner-in-spec", ds, [(p("spec.owner"), "team-shop")], ["/spec/owner"], "owner in spec instead of metadata")
    # Schema changes the stored shop.orders' BACKWARD rule refuses: 422 incompatible_schema.
    base = DS_SHOP_ORDERS
    edit_case(c, "incompatible-type-change", base, [(p("spec.schema.properties.amount.type"), "string")], ["/spec/schema/properties/amount/type"], "amount changes from number to string")
    edit_case(c, "incompatible-new-required-field", base, [(p("spec.schema.properties.tenant"), {"type": "string"}), (p("spec.schema.required"), ["id", "customer_id", "amount", "tenant"])], ["/spec/schema/properties/tenant"], "a new required field old records lack")
    edit_case(c, "incompatible-enum-narrowed", base, [(p("spec.schema.properties.status.enum"), ["PLACED", "PAID"])], ["/spec/schema/properties/status/enum"], "status loses enum values old records use")


def cluster_spec():
    c = "cluster"
    pg, es, rd = TC_PG, TC_ES, TC_REDIS
    edit_case(c, "type-missing", pg, [(p("spec.type"), DELETE)], ["/spec/type"], "no type")
    for label, value in [("mysql", "mysql"), ("capitalised", "Postgres"), ("opensearch", "opensearch"), ("int", 1), ("null", None), ("list", ["postgres"])]:
        edit_case(c, f"type-{label}", pg, [(p("spec.type"), value)], ["/spec/type"], f"type: {label}")
    edit_case(c, "url-missing", pg, [(p("spec.url"), DELETE)], ["/spec/url"], "no url")
    for label, value in [("empty", ""), ("int", 5432), ("null", None), ("list", ["postgres://x"]), ("map", {"host": "x"}), ("too-long", "postgres://h/" + "d" * 2040)]:
        edit_case(c, f"url-{label}", pg, [(p("spec.url"), value)], ["/spec/url"], f"url: {label}")
    for label, base, url in [
        ("postgres-mysql-scheme", pg, "mysql://u@h/db"),
        ("postgres-http-scheme", pg, "http://h:5432"),
        ("postgres-whitespace", pg, "postgres://u:p@h/db name"),
        ("postgres-newline", pg, "postgres://h/db\nother"),
        ("postgres-no-scheme", pg, "db.internal:5432"),
        ("postgres-file", pg, "file:///etc/passwd"),
        ("postgres-javascript", pg, "javascript:alert(1)"),
        ("postgres-uppercase-scheme", pg, "POSTGRES://h/db"),
        ("elasticsearch-postgres-scheme", es, "postgres://h/db"),
        ("elasticsearch-redis-scheme", es, "redis://h"),
        ("elasticsearch-ftp", es, "ftp://h"),
        ("elasticsearch-scheme-relative", es, "//h:9200"),
        ("redis-http-scheme", rd, "http://h:6379"),
        ("redis-tab", rd, "redis://h\t:6379"),
        ("redis-bare-host", rd, "localhost"),
    ]:
        edit_case(c, f"url-{label}", base, [(p("spec.url"), url)], ["/spec/url"], f"url: {label}")
    edit_case(c, "isolation-missing", pg, [(p("spec.isolation"), DELETE)], ["/spec/isolation"], "no isolation")
    for label, value in [("namespace", "namespace"), ("capitalised", "Schema"), ("int", 1), ("null", None), ("underscore", "acl_prefix")]:
        edit_case(c, f"isolation-{label}", pg, [(p("spec.isolation"), value)], ["/spec/isolation"], f"isolation: {label}")
    for base, tname in [(pg, "postgres"), (es, "elasticsearch"), (rd, "redis")]:
        for iso in ["database", "schema", "acl-prefix", "index"]:
            if iso == base["spec"]["isolation"] or (tname == "postgres" and iso == "database"):
                continue
            edit_case(c, f"isolation-{iso}-on-{tname}", base, [(p("spec.isolation"), iso)], ["/spec/isolation"], f"{tname} clusters do not support isolation {iso}")
    for label, value in [("uppercase", "Admin-Secret"), ("underscore", "admin_secret"), ("path", "../admin"), ("empty", ""), ("int", 5), ("list", ["a"])]:
        edit_case(c, f"credentials-secret-{label}", pg, [(p("spec.credentialsSecret"), value)], ["/spec/credentialsSecret"], f"credentialsSecret: {label}")
    edit_case(c, "allowed-teams-string", pg, [(p("spec.allowedTeams"), "*")], ["/spec/allowedTeams"], "allowedTeams is a string")
    edit_case(c, "allowed-teams-map", pg, [(p("spec.allowedTeams"), {"team-a": True})], ["/spec/allowedTeams"], "allowedTeams is a mapping")
    for label, teams, index in [
        ("int", [5], 0),
        ("null", ["team-a", None], 1),
        ("uppercase", ["Team-A"], 0),
        ("space", ["team a"], 0),
        ("injection", ["team-a", "x; DROP"], 1),
        ("double-star", ["**"], 0),
        ("empty", [""], 0),
        ("glob", ["team-*"], 0),
        ("list", [["team-a"]], 0),
    ]:
        edit_case(c, f"allowed-teams-item-{label}", pg, [(p("spec.allowedTeams"), teams)], [f"/spec/allowedTeams/{index}"], f"allowedTeams entry: {label}")
    for field, value in [("password", "hunter2"), ("username", "admin"), ("allowed_teams", ["*"]), ("tls", True), ("dedicated", True)]:
        edit_case(c, f"unknown-field-{field.replace('_', '-')}", pg, [(p(f"spec.{field}"), value)], [f"/spec/{field}"], f"unknown spec field {field}")
