-- Sluice metadata store, SQLite. JSON documents are stored as text, timestamps as RFC 3339
-- UTC text with microseconds (so they sort as text). TEXT comparisons use SQLite's BINARY
-- collation: keyset pagination orders names by their UTF-8 bytes, as on PostgreSQL.

-- Every resource: one row per (kind, team, name). `team` is '' for cluster-scoped kinds.
CREATE TABLE objects (
    kind             TEXT    NOT NULL,
    team             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    uid              TEXT    NOT NULL UNIQUE,
    metadata         TEXT    NOT NULL,
    spec             TEXT    NOT NULL,
    status           TEXT,
    generation       INTEGER NOT NULL CHECK (generation >= 1),
    resource_version INTEGER NOT NULL,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    PRIMARY KEY (kind, team, name)
) STRICT, WITHOUT ROWID;

-- Every schema version of every dataset, numbered from 1.
CREATE TABLE schema_versions (
    dataset    TEXT    NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    schema     TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (dataset, version)
) STRICT, WITHOUT ROWID;

-- The store-wide revision counter: every write transaction increments it first, which both
-- serialises writers and yields the written object's resourceVersion.
CREATE TABLE store_revision (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    value INTEGER NOT NULL
) STRICT;

INSERT INTO store_revision (id, value) VALUES (1, 0);
