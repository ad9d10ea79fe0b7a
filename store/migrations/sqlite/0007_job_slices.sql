-- A product version's job may run as several slices (each a share of the driving source's
-- partitions, possibly in different processes): reports and leases are kept per slice.
-- Existing rows are slice 0 of a job in one slice.
CREATE TABLE job_reports_sliced (
    team       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    slice      INTEGER NOT NULL,
    report     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (team, name, version, slice)
) STRICT, WITHOUT ROWID;
INSERT INTO job_reports_sliced (team, name, version, slice, report, updated_at)
    SELECT team, name, version, 0, report, updated_at FROM job_reports;
DROP TABLE job_reports;
ALTER TABLE job_reports_sliced RENAME TO job_reports;

CREATE TABLE job_leases_sliced (
    team       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    slice      INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL,
    PRIMARY KEY (team, name, version, slice)
) STRICT, WITHOUT ROWID;
INSERT INTO job_leases_sliced (team, name, version, slice, holder, expires_ms)
    SELECT team, name, version, 0, holder, expires_ms FROM job_leases;
DROP TABLE job_leases;
ALTER TABLE job_leases_sliced RENAME TO job_leases;

-- The processes that run jobs, each renewing its row while it lives: the slices of a job
-- are shared out among the live ones.
CREATE TABLE job_workers (
    holder     TEXT NOT NULL PRIMARY KEY,
    expires_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
