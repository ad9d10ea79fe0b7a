-- Reader credentials the controller granted in a product's target: the password sealed
-- with the operator's secret key (never in clear), one row per product.
CREATE TABLE product_credentials (
    team       TEXT NOT NULL,
    name       TEXT NOT NULL,
    username   TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (team, name)
) STRICT, WITHOUT ROWID;

-- What the stream job of a product version last reported (progress, backfill done),
-- written by whoever runs the job and read by the controller.
CREATE TABLE job_reports (
    team       TEXT NOT NULL,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    report     TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (team, name, version)
) STRICT, WITHOUT ROWID;
