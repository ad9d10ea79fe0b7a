-- The audit log: one row per state change, appended in the transaction of the change, and
-- hash-chained (see docs/audit.md for the exact hash). `seq` is consecutive from 1. `kind`,
-- `team` and `name` are '' when the action has no such part; `generation` is NULL then.
-- `time` is RFC 3339 UTC text with microseconds; `diff` is JSON text; hashes are lowercase hex.
CREATE TABLE audit_log (
    seq        BIGINT NOT NULL PRIMARY KEY CHECK (seq >= 1),
    time       TEXT COLLATE "C" NOT NULL,
    actor      TEXT COLLATE "C" NOT NULL,
    action     TEXT   NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    team       TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    generation BIGINT,
    request_id TEXT   NOT NULL,
    outcome    TEXT   NOT NULL,
    diff       TEXT   NOT NULL,
    prev_hash  TEXT   NOT NULL,
    hash       TEXT   NOT NULL
);
CREATE INDEX audit_log_object ON audit_log (kind, team, name, seq);
CREATE INDEX audit_log_actor ON audit_log (actor, seq);
CREATE INDEX audit_log_time ON audit_log (time);

-- The signed checkpoint of the chain: the last entry's seq and hash, and an HMAC-SHA256 of
-- them under the server's audit key, so that cutting off the tail of the log is detected.
-- Absent until the first entry is written.
CREATE TABLE audit_head (
    id   SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT   NOT NULL,
    hash TEXT     NOT NULL,
    hmac TEXT     NOT NULL
);

-- Append-only: Sluice never updates or deletes an entry, nor the head row. (Someone with
-- DDL rights can drop these triggers; the hash chain and the signed head catch that.)
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is not allowed: the audit log is append-only', TG_OP, TG_TABLE_NAME;
END
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
