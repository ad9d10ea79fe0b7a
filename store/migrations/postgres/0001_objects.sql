-- Sluice metadata store, PostgreSQL. The same tables as on SQLite, with the same column
-- types as seen through sqlx's Any driver: JSON documents are stored as text, timestamps as
-- RFC 3339 UTC text with microseconds. Key columns use the "C" collation so that ordering
-- (and so keyset pagination) is by UTF-8 bytes, exactly as on SQLite.

-- Every resource: one row per (kind, team, name). `team` is '' for cluster-scoped kinds.
CREATE TABLE objects (
    kind             TEXT COLLATE "C" NOT NULL,
    team             TEXT COLLATE "C" NOT NULL,
    name             TEXT COLLATE "C" NOT NULL,
    uid              TEXT   NOT NULL UNIQUE,
    metadata         TEXT   NOT NULL,
    spec             TEXT   NOT NULL,
    status           TEXT,
    generation       BIGINT NOT NULL CHECK (generation >= 1),
    resource_version BIGINT NOT NULL,
    created_at       TEXT   NOT NULL,
    updated_at       TEXT   NOT NULL,
    PRIMARY KEY (kind, team, name)
);

-- Every schema version of every dataset, numbered from 1.
CREATE TABLE schema_versions (
    dataset    TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL CHECK (version >= 1),
    schema     TEXT   NOT NULL,
    created_at TEXT   NOT NULL,
    PRIMARY KEY (dataset, version)
);

-- The store-wide revision counter: every write transaction increments it first, which both
-- serialises writers (the row lock is held to commit) and yields the written object's
-- resourceVersion, so resource versions increase in commit order.
CREATE TABLE store_revision (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    value BIGINT   NOT NULL
);

INSERT INTO store_revision (id, value) VALUES (1, 0);
