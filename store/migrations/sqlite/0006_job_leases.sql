-- Which worker runs the job of a product version: held while renewed, taken over once
-- expired, so one process runs each job and another picks it up when it dies.
CREATE TABLE job_leases (
    team       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (team, name, version)
) STRICT, WITHOUT ROWID;
