-- A product version's job may run as several slices (each a share of the driving source's
-- partitions, possibly in different processes): reports and leases are kept per slice.
-- Existing rows are slice 0 of a job in one slice.
ALTER TABLE job_reports ADD COLUMN slice BIGINT NOT NULL DEFAULT 0;
ALTER TABLE job_reports DROP CONSTRAINT job_reports_pkey;
ALTER TABLE job_reports ADD PRIMARY KEY (team, name, version, slice);

ALTER TABLE job_leases ADD COLUMN slice BIGINT NOT NULL DEFAULT 0;
ALTER TABLE job_leases DROP CONSTRAINT job_leases_pkey;
ALTER TABLE job_leases ADD PRIMARY KEY (team, name, version, slice);

-- The processes that run jobs, each renewing its row while it lives: the slices of a job
-- are shared out among the live ones.
CREATE TABLE job_workers (
    holder     TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
