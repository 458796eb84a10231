-- The license engine's state: licenses, seats, allocations, discards,
-- product data (software inventory interned, plug-in payloads), tasks and
-- the patch catalog. Seat counts per license are kept in licenses.held, in
-- the same transaction as every seat change; maintenance reconciles them.

ALTER TABLE computers ADD COLUMN plugins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE computers ADD COLUMN sw_generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE computers ADD COLUMN sw_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN sw_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE licenses (
    id            TEXT PRIMARY KEY,
    product       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    duration      TEXT NOT NULL,
    seats         INTEGER NOT NULL CHECK (seats > 0),
    held          INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0 AND held <= seats),
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER,
    upgrade_until INTEGER,
    customer      TEXT NOT NULL DEFAULT '',
    issuer        TEXT NOT NULL,
    imported_at   INTEGER NOT NULL,
    file          BLOB NOT NULL
);

CREATE INDEX licenses_product ON licenses (product);

CREATE TABLE seats (
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    product     TEXT NOT NULL,
    license_id  TEXT NOT NULL REFERENCES licenses (id),
    since       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (computer_id, product)
);

CREATE INDEX seats_license ON seats (license_id, since);
CREATE INDEX seats_product ON seats (product);

CREATE TABLE allocations (
    license_id  TEXT NOT NULL REFERENCES licenses (id),
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    product     TEXT NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (license_id, computer_id),
    UNIQUE (computer_id, product)
);

CREATE TABLE discards (
    computer_id INTEGER NOT NULL,
    product     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    count       INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    PRIMARY KEY (computer_id, product, reason)
);

CREATE INDEX discards_product ON discards (product);

-- Seats freed, whose product data waits for the product's retention.
CREATE TABLE freed (
    computer_id INTEGER NOT NULL,
    product     TEXT NOT NULL,
    freed_at    INTEGER NOT NULL,
    PRIMARY KEY (computer_id, product)
);

-- Software packages, interned: each distinct package once for the fleet.
CREATE TABLE packages (
    id        INTEGER PRIMARY KEY,
    source    TEXT NOT NULL,
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    arch      TEXT NOT NULL,
    publisher TEXT NOT NULL,
    UNIQUE (source, name, version, arch, publisher)
);

CREATE TABLE computer_software (
    computer_id  INTEGER NOT NULL REFERENCES computers (id),
    package_id   INTEGER NOT NULL REFERENCES packages (id),
    install_date INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (computer_id, package_id)
) WITHOUT ROWID;

CREATE TABLE product_data (
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    product     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    posts       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (computer_id, product, kind)
);

CREATE TABLE tasks (
    id           TEXT PRIMARY KEY,
    computer_id  INTEGER NOT NULL REFERENCES computers (id),
    action       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);

CREATE INDEX tasks_pending ON tasks (computer_id, delivered_at);

CREATE TABLE patch_catalog (
    name    TEXT NOT NULL,
    source  TEXT NOT NULL DEFAULT '',
    version TEXT NOT NULL,
    PRIMARY KEY (name, source)
);

-- Discards are audited per computer, product, reason and hour.
ALTER TABLE events ADD COLUMN bucket INTEGER;
CREATE UNIQUE INDEX events_discard_bucket ON events (computer_id, product, reason, bucket) WHERE kind = 'data.discarded';
CREATE INDEX events_product ON events (product, at);
