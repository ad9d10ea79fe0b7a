-- Claims: names an object holds exclusively (e.g. a product's target table or index), so
-- two objects can never be given the same target. Maintained in the transaction that
-- writes the object.
CREATE TABLE object_claims (
    claim TEXT NOT NULL PRIMARY KEY,
    kind  TEXT NOT NULL,
    team  TEXT NOT NULL,
    name  TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX object_claims_owner ON object_claims (kind, team, name);
