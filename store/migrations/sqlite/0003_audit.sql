-- The audit log: one row per state change, appended in the transaction of the change, and
-- hash-chained (see docs/audit.md for the exact hash). `seq` is consecutive from 1. `kind`,
-- `team` and `name` are '' when the action has no such part; `generation` is NULL then.
-- `time` is RFC 3339 UTC text with microseconds; `diff` is JSON text; hashes are lowercase hex.
CREATE TABLE audit_log (
    seq        INTEGER NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    team       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    generation INTEGER,
    request_id TEXT    NOT NULL,
    outcome    TEXT    NOT NULL,
    diff       TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_log_object ON audit_log (kind, team, name, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- The signed checkpoint of the chain: the last entry's seq and hash, and an HMAC-SHA256 of
-- them under the server's audit key, so that cutting off the tail of the log is detected.
-- Absent until the first entry is written.
CREATE TABLE audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL,
    hmac TEXT    NOT NULL
) STRICT;

-- Append-only: Sluice never updates or deletes an entry, nor the head row. (Someone with
-- DDL rights can drop these triggers; the hash chain and the signed head catch that.)
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'audit_head cannot be deleted');
END;
