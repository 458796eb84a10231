-- Computers, their keys, enrollment secrets, applied requests and the audit log.
-- Times are unix milliseconds. SQL is kept portable to PostgreSQL.

CREATE TABLE statuses (
    name        TEXT PRIMARY KEY,
    builtin     INTEGER NOT NULL DEFAULT 0,
    description TEXT NOT NULL DEFAULT ''
);

INSERT INTO statuses (name, builtin, description) VALUES
    ('Active', 1, 'in service; the only status in which a computer consumes licenses'),
    ('Retired', 1, 'taken out of service'),
    ('Disposed', 1, 'scrapped or sold'),
    ('Return to Lessor', 1, 'leased machine given back'),
    ('Missing', 1, 'not seen for a long time (the stale-node policy sets it)'),
    ('In Stock', 1, 'on the shelf, not in use');

CREATE TABLE computers (
    id               INTEGER PRIMARY KEY,
    hostname         TEXT NOT NULL,
    os               TEXT NOT NULL DEFAULT '',
    platform         TEXT NOT NULL DEFAULT '',
    platform_version TEXT NOT NULL DEFAULT '',
    arch             TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL DEFAULT 'Active' REFERENCES statuses (name),
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    deleted_at       INTEGER,
    flags            TEXT NOT NULL DEFAULT '',
    hints_hash       TEXT NOT NULL DEFAULT '',
    basic            BLOB
);

CREATE INDEX computers_live ON computers (deleted_at, hostname);

-- Identity hints of each computer (instance, uuid, serial, machine-id, mac),
-- matched when a machine enrolls with a new key.
CREATE TABLE computer_hints (
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (computer_id, kind, value)
);

CREATE INDEX computer_hints_value ON computer_hints (kind, value);

-- Pairs of live computers that share hints (cloned images).
CREATE TABLE duplicates (
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    other_id    INTEGER NOT NULL REFERENCES computers (id),
    detected_at INTEGER NOT NULL,
    PRIMARY KEY (computer_id, other_id)
);

CREATE TABLE secrets (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL DEFAULT '',
    value      TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    uses       INTEGER NOT NULL DEFAULT 0,
    last_used  INTEGER
);

CREATE TABLE nodes (
    id             TEXT PRIMARY KEY,
    computer_id    INTEGER NOT NULL REFERENCES computers (id),
    public_key     BLOB NOT NULL,
    secret_id      TEXT,
    enrolled_at    INTEGER NOT NULL,
    last_seen      INTEGER NOT NULL,
    max_seq        INTEGER NOT NULL DEFAULT 0,
    revoked_at     INTEGER,
    revoked_reason TEXT NOT NULL DEFAULT '',
    superseded_by  TEXT
);

CREATE INDEX nodes_computer ON nodes (computer_id);

-- The most recent requests of each node with their responses, so that a
-- repeat is answered with the first outcome and applied once.
CREATE TABLE applied (
    node_id  TEXT NOT NULL REFERENCES nodes (id),
    seq      INTEGER NOT NULL,
    kind     INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    response BLOB,
    PRIMARY KEY (node_id, seq)
);

-- Hints and keys of computers deleted with --block: they may not enroll again.
CREATE TABLE blocked (
    kind        TEXT NOT NULL,
    value       TEXT NOT NULL,
    computer_id INTEGER,
    at          INTEGER NOT NULL,
    PRIMARY KEY (kind, value)
);

CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    kind        TEXT NOT NULL,
    computer_id INTEGER,
    node_id     TEXT,
    product     TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    count       INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX events_at ON events (at);
CREATE INDEX events_computer ON events (computer_id, at);
