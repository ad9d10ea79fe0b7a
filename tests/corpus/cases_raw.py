"""Parse-level cases: raw bodies that are not one well-formed document."""

import gzip
import json
import random

from corpus_lib import *  # noqa: F401,F403


def parse_level():
    c = "parse"
    E = "PUT /api/v1/products/team-payments/orders-enriched"
    good = to_yaml(P_PG)

    def raw(name, body, desc, status=422, pointers=("",), endpoint=E, content_type="application/yaml", ext=None):
        add(c, name, body, endpoint=endpoint, status=status, pointers=pointers, desc=desc, content_type=content_type, ext=ext)

    # Nothing there: 400, no document.
    raw("empty-body", "", "an empty body", status=400, pointers=())
    raw("whitespace-only", "   \n\n  \n", "only whitespace", status=400, pointers=())
    raw("comment-only", "# just a comment\n# and another\n", "only comments", status=400, pointers=())
    raw("document-marker-only", "---\n", "only a document marker", status=400, pointers=())
    raw("document-markers-only", "---\n---\n...\n", "only document markers", status=400, pointers=())
    raw("null-document", "null\n", "the document is null", status=400, pointers=())
    raw("tilde-document", "~\n", "the document is ~ (null)", status=400, pointers=())
    raw("json-null", "null", "a JSON null", status=400, pointers=(), content_type="application/json")
    # Several documents in one body: one per request.
    raw("two-products", good + "---\n" + good, "two documents", status=400, pointers=())
    raw("product-and-dataset", good + "---\n" + to_yaml(DS_STREAM), "a product and a dataset", status=400, pointers=())
    raw("three-documents", "---\n" + good + "---\n" + good + "---\n" + good, "three documents", status=400, pointers=())
    raw("second-document-broken", good + "---\nkind: [\n", "a valid document followed by a broken one")
    raw("second-document-scalar", good + "---\nhello\n", "a valid document followed by a scalar", status=400, pointers=())
    # Documents that are not mappings.
    raw("scalar-int", "42\n", "the document is a number")
    raw("scalar-string", "\"a DataProduct, please\"\n", "the document is a string")
    raw("scalar-bool", "true\n", "the document is a boolean")
    raw("plain-text", "please provision orders into postgres\n", "the document is prose")
    raw("list-document", "- apiVersion: sluice.dev/v1alpha1\n- kind: DataProduct\n", "the document is a list")
    raw("list-of-products", "- " + "\n  ".join(good.rstrip("\n").split("\n")) + "\n", "a list holding the product")
    raw("json-array", json.dumps([P_PG]), "a JSON array holding the product", content_type="application/json")
    raw("json-string", "\"DataProduct\"", "a JSON string", content_type="application/json")
    raw("empty-mapping", "{}\n", "an empty mapping", pointers=("/kind",))
    raw("block-scalar", "--- |\n  apiVersion: sluice.dev/v1alpha1\n  kind: DataProduct\n", "the document is a literal block scalar")
    # YAML syntax errors.
    raw("tab-indentation", good.replace("  ", "\t"), "indented with tabs")
    raw("tab-before-key", "apiVersion: sluice.dev/v1alpha1\n\tkind: DataProduct\n", "a tab before a key")
    raw("bad-indentation", "apiVersion: sluice.dev/v1alpha1\nkind: DataProduct\nmetadata:\n  name: orders-enriched\n    team: team-payments\n", "an over-indented key")
    raw("under-indented-list", "spec:\n  sources:\n  - name: o\n   dataset: shop.orders\n", "a list item's keys misaligned")
    raw("unterminated-double-quote", "apiVersion: \"sluice.dev/v1alpha1\nkind: DataProduct\n", "an unterminated double quote")
    raw("unterminated-single-quote", "apiVersion: 'sluice.dev/v1alpha1\n", "an unterminated single quote")
    raw("unterminated-flow-sequence", "spec:\n  sources: [o, c\n", "an unterminated flow sequence")
    raw("unterminated-flow-mapping", "metadata: {name: x, team: y\n", "an unterminated flow mapping")
    raw("mapping-in-scalar", "kind: DataProduct: again\n", "a mapping value where none is allowed")
    raw("stray-closing-bracket", "kind: DataProduct]\nmetadata: {}\n}\n", "stray closing brackets")
    raw("bad-escape", "kind: \"Data\\qProduct\"\n", "an unknown escape in a double-quoted string")
    raw("unknown-directive-version", "%YAML 9.9\n---\n" + good, "an unsupported YAML version directive")
    raw("directive-without-document", "%YAML 1.2\n", "a directive and no document", status=422)
    raw("reserved-indicator", "kind: @DataProduct\n", "a reserved indicator starting a scalar")
    raw("control-characters", "kind: Data\x01Product\n", "a control character in the stream")
    raw("nul-bytes", "\x00" * 64, "only NUL bytes")
    raw("nul-in-key", "ki\x00nd: DataProduct\n", "a NUL byte inside a key")
    raw("utf16le-without-bom", "kind: DataProduct\n".encode("utf-16-le"), "UTF-16 text without a byte order mark", ext="bin")
    raw("toml", "[metadata]\nname = \"orders-enriched\"\nteam = \"team-payments\"\n", "TOML instead of YAML")
    raw("ini", "[spec]\nsources=o\n", "INI instead of YAML")
    raw("xml", "<?xml version=\"1.0\"?><DataProduct><name>x</name></DataProduct>\n", "XML sent as YAML")
    raw("html", "<!doctype html><html><body>hi</body></html>\n", "HTML sent as YAML")
    raw("csv", "name,dataset\no,shop.orders\n", "CSV sent as YAML")
    # Duplicate and non-string keys.
    raw("duplicate-kind", "apiVersion: sluice.dev/v1alpha1\nkind: DataProduct\nkind: Dataset\n" + good.split("\n", 2)[2], "kind given twice")
    raw("duplicate-spec", good + "spec:\n  sources: []\n", "spec given twice")
    raw("duplicate-nested-key", good.replace("  key: o.id\n", "  key: o.id\n  key: o.customer_id\n"), "spec.key given twice")
    raw("duplicate-source-key", good.replace("    - name: o\n", "    - name: o\n      name: x\n"), "a source's name given twice")
    raw("duplicate-field", good.replace("    order_id: o.id\n", "    order_id: o.id\n    order_id: o.customer_id\n"), "an output field given twice")
    raw("duplicate-json-key", json.dumps(P_PG)[:-1] + ', "kind": "Dataset"}', "a JSON key given twice", content_type="application/json")
    raw("integer-key", good + "1: one\n", "an integer key", pointers=())
    raw("boolean-key", good + "true: yes\n", "a boolean key", pointers=())
    raw("null-key", good + "~: nothing\n", "a null key", pointers=())
    raw("float-key", good + "1.5: x\n", "a float key", pointers=())
    raw("sequence-key", good + "? [a, b]\n: x\n", "a sequence as key", pointers=())
    raw("mapping-key", good + "? {a: 1}\n: x\n", "a mapping as key", pointers=())
    raw("integer-field-name", good.replace("    order_id: o.id\n", "    1: o.id\n"), "an output field named by an integer", pointers=())
    # Anchors, aliases, tags.
    laughs = ["lol: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]"]
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        laughs.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    raw("billion-laughs", "\n".join(laughs) + "\n", "a billion laughs")
    raw("billion-laughs-in-spec", good.replace("  deletionPolicy: Delete\n", "  deletionPolicy: Delete\n") + "\n".join(laughs) + "\n", "a billion laughs after a valid product")
    raw("billion-laughs-in-description", "x: &x " + "[" + ",".join(["\"" + "l" * 100 + "\""] * 50) + "]\n" + "\n".join(f"y{i}: &y{i} [*{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}, *{'x' if i == 0 else 'y' + str(i - 1)}]" for i in range(12)) + "\n", "eight-fold aliases twelve levels deep")
    big = "s" * 20_000
    raw("quadratic-aliases", f"a: &a \"{big}\"\nb: [" + ", ".join(["*a"] * 1500) + "]\n", "one 20 KB anchor aliased 1500 times (30 MB expanded)", pointers=())
    raw("undefined-alias", "apiVersion: *nope\n", "an alias to an anchor never defined")
    raw("recursive-alias", "a: &a [*a]\n", "an alias inside its own anchor")
    raw("anchor-redefined-alias-cycle", "a: &a {b: &b {c: *a}}\n", "an alias to an enclosing anchor")
    raw("python-object-tag", "kind: !!python/object/apply:os.system [\"rm -rf /\"]\n", "a Python object tag", pointers=())
    raw("custom-tag", "kind: !DataProduct x\n", "a custom tag on a scalar", pointers=())
    raw("binary-tag", "metadata:\n  name: !!binary b3JkZXJzLWVucmljaGVk\n", "a !!binary tag", pointers=())
    raw("int-tag-on-text", "apiVersion: !!int sluice\n", "an !!int tag on text", pointers=())
    raw("document-tag", "--- !DataProduct\n" + good, "a custom tag on the whole document", pointers=())
    # Nesting deeper than any parser should follow (the huge ones are generated by the test).
    raw("deep-json-array", "[" * 5000 + "]" * 5000, "5000 nested JSON arrays", content_type="application/json", ext="json")
    raw("deep-json-object", "{\"a\":" * 3000 + "1" + "}" * 3000, "3000 nested JSON objects", content_type="application/json", ext="json")
    raw("deep-flow-yaml", "spec: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", "3000 nested YAML flow mappings")
    raw("deep-block-yaml", "".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "a: 1\n", "200 nested YAML block mappings")
    raw("deep-block-sequence", "".join(" " * i + "-\n" for i in range(0, 400, 2)) + " " * 400 + "- 1\n", "200 nested YAML block sequences")
    nested = "1"
    for _ in range(40):
        nested = "{a: " + nested + "}"
    raw("deep-options-within-limits", good.replace("mode: upsert\n", f"mode: upsert\n    options: {nested}\n"), "40 levels of nesting inside target options (parses; the option is unknown)", pointers=("/spec/target/options/a",))
    for _ in range(60):
        nested = "{a: " + nested + "}"
    raw("deep-options-over-limit", good.replace("mode: upsert\n", f"mode: upsert\n    options: {nested}\n"), "100 levels of nesting inside target options (refused before parsing)")
    # JSON that is not well-formed.
    js = json.dumps(P_PG)
    raw("json-truncated", js[: len(js) // 2], "truncated JSON", content_type="application/json")
    raw("json-trailing-garbage", js + "}}", "JSON followed by garbage", content_type="application/json")
    raw("json-comments", "// the product\n" + js, "JSON with a // comment", content_type="application/json")
    raw("json-two-objects", js + "\n" + js, "two JSON objects back to back", content_type="application/json")
    raw("json-unquoted-keys-wrong", "{apiVersion: sluice.dev/v1alpha1, kind: DataProduct, metadata: [}", "JSON-ish with a wrong bracket", content_type="application/json")
    raw("json-single-element", "[" + js + "", "an unterminated JSON array", content_type="application/json")
    # Bytes that are not UTF-8 or not text at all.
    raw("latin1", good.replace("Paid orders", "Pay\u00e9 orders").encode("latin-1"), "Latin-1 text", ext="bin")
    raw("utf16le-bom", "\ufeff".encode("utf-16-le") + good.encode("utf-16-le"), "UTF-16LE with a byte order mark", ext="bin")
    raw("utf16be-bom", good.encode("utf-16"), "UTF-16 with a byte order mark", ext="bin")
    raw("utf32", good.encode("utf-32"), "UTF-32 text", ext="bin")
    raw("overlong-utf8", b"kind: Data\xc0\xafProduct\n", "an overlong UTF-8 sequence", ext="bin")
    raw("lone-surrogate", b"kind: Data\xed\xa0\x80Product\n", "an encoded lone surrogate", ext="bin")
    raw("truncated-utf8", good.encode() + b"# \xe2\x82", "a multi-byte sequence cut off at the end", ext="bin")
    raw("invalid-continuation", b"metadata:\n  name: orders-\x80\x81\n", "stray continuation bytes", ext="bin")
    raw("ff-fe-prefix", b"\xff\xfe" + good.encode(), "a stray UTF-16 byte order mark before UTF-8 text", ext="bin")
    rng = random.Random(20261126)
    for i in range(4):
        raw(f"random-bytes-{i}", bytes(rng.randrange(256) for _ in range(512 + 512 * i)), f"random bytes #{i}", ext="bin")
    raw("gzip", gzip.compress(good.encode(), mtime=0), "the product, gzip-compressed", ext="bin")
    raw("png-header", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89", "a PNG image", ext="bin")
    raw("elf-header", b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00", "an ELF executable header", ext="bin")
    raw("zip-header", b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)), "a ZIP archive header", ext="bin")
    raw("all-byte-values", bytes(range(256)), "every byte value once", ext="bin")
    # Media types the API does not take: 415.
    for label, ctype in [("html", "text/html"), ("xml", "application/xml"), ("png", "image/png"), ("form", "application/x-www-form-urlencoded"), ("multipart", "multipart/form-data; boundary=x"), ("octet-stream", "application/octet-stream"), ("protobuf", "application/protobuf")]:
        raw(f"media-type-{label}", good, f"a body labelled {ctype}", status=415, pointers=(), content_type=ctype)
