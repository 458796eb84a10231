-- Application products: licensed only by Activation IDs or leases, with no
-- plug-in, added by an administrator with 'tally-server products add'.
CREATE TABLE application_products (
    name       TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    kinds      TEXT NOT NULL, -- comma-separated license kinds
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL
);

-- Discards and refusals per pool (the license kind they concern), so that
-- usage shows the node seats' waiting computers apart from the machines
-- refused a lease. Earlier refusals are node refusals, except those of a
-- product with concurrent licenses and no node licenses: lease refusals.
CREATE TABLE discards_pooled (
    computer_id INTEGER NOT NULL,
    product     TEXT NOT NULL,
    pool        TEXT NOT NULL DEFAULT 'node',
    reason      TEXT NOT NULL,
    count       INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (computer_id, product, pool, reason)
);

INSERT INTO discards_pooled (computer_id, product, pool, reason, count, first_at, last_at)
SELECT computer_id, product,
    CASE WHEN reason = 'denied:no-seat'
        AND EXISTS (SELECT 1 FROM licenses l WHERE l.product = d.product AND l.kind = 'concurrent')
        AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.product = d.product AND l.kind = 'node')
    THEN 'concurrent' ELSE 'node' END,
    reason, count, first_at, last_at
FROM discards d;

DROP TABLE discards;
ALTER TABLE discards_pooled RENAME TO discards;
CREATE INDEX discards_product ON discards (product, pool);
