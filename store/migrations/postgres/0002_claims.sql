-- Claims: names an object holds exclusively (e.g. a product's target table or index), so
-- two objects can never be given the same target. Maintained in the transaction that
-- writes the object.
CREATE TABLE object_claims (
    claim TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind  TEXT COLLATE "C" NOT NULL,
    team  TEXT COLLATE "C" NOT NULL,
    name  TEXT COLLATE "C" NOT NULL
);
CREATE INDEX object_claims_owner ON object_claims (kind, team, name);
