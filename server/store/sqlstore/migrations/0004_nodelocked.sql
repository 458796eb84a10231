-- Node-locked licenses (Activation IDs and the machines bound to them) and
-- concurrent licenses (leases). A node-locked license's held counter counts
-- live bindings; a concurrent license's seats are counted from the leases
-- whose time has not run out, so an expired lease frees its seat by itself.

CREATE TABLE activation_ids (
    id             TEXT PRIMARY KEY,
    product        TEXT NOT NULL,
    license_id     TEXT NOT NULL REFERENCES licenses (id),
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    expires_at     INTEGER,
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     INTEGER NOT NULL,
    deactivated_at INTEGER
);

CREATE INDEX activation_ids_license ON activation_ids (license_id);

CREATE TABLE activations (
    id            INTEGER PRIMARY KEY,
    activation_id TEXT NOT NULL REFERENCES activation_ids (id),
    computer_id   INTEGER NOT NULL REFERENCES computers (id),
    node_id       TEXT NOT NULL,
    machine       TEXT NOT NULL,
    activated_at  INTEGER NOT NULL,
    ended_at      INTEGER,
    end_reason    TEXT NOT NULL DEFAULT '',
    record        BLOB NOT NULL
);

CREATE UNIQUE INDEX activations_live ON activations (activation_id, computer_id) WHERE ended_at IS NULL;
CREATE INDEX activations_computer ON activations (computer_id, ended_at);

CREATE TABLE leases (
    product     TEXT NOT NULL,
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    license_id  TEXT NOT NULL REFERENCES licenses (id),
    node_id     TEXT NOT NULL,
    granted_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    ttl         INTEGER NOT NULL,
    PRIMARY KEY (product, computer_id)
);

CREATE INDEX leases_license ON leases (license_id, expires_at);
