-- Which worker runs the job of a product version: held while renewed, taken over once
-- expired, so one process runs each job and another picks it up when it dies.
CREATE TABLE job_leases (
    team       TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,
    holder     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    PRIMARY KEY (team, name, version)
);
