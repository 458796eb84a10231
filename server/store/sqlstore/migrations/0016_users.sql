-- Per-user licenses (seed 003): users from admins and directories, their
-- credentials per product, and the user seats they hold. A user seat is a
-- row per (user, product) counted in licenses.held of a user license, in
-- the same transaction as its cause, so the CHECK on licenses.held keeps
-- seats held within seats granted.

CREATE TABLE directories (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    url           TEXT NOT NULL,
    base_dn       TEXT NOT NULL,
    bind_dn       TEXT NOT NULL,
    password_file TEXT NOT NULL,
    filter        TEXT NOT NULL,
    group_filter  TEXT NOT NULL,
    domain        TEXT NOT NULL,
    start_tls     INTEGER NOT NULL DEFAULT 0,
    interval_s    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_sync_at  INTEGER,
    last_result   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    key          TEXT NOT NULL UNIQUE,
    directory_id INTEGER REFERENCES directories (id),
    domain       TEXT NOT NULL DEFAULT '',
    name         TEXT NOT NULL,
    display      TEXT NOT NULL DEFAULT '',
    dn           TEXT NOT NULL DEFAULT '',
    ou           TEXT NOT NULL DEFAULT '',
    groups       TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('Active', 'Disabled', 'Deleted')),
    external     TEXT NOT NULL DEFAULT '',
    external_why TEXT NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

CREATE INDEX users_name ON users (lower(name), lower(domain));
CREATE INDEX users_directory ON users (directory_id);

CREATE TABLE user_credentials (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id),
    product       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('token', 'certificate', 'qa')),
    label         TEXT NOT NULL DEFAULT '',
    secret_hash   TEXT NOT NULL DEFAULT '',
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER,
    last_used_at  INTEGER,
    ended_at      INTEGER,
    end_reason    TEXT NOT NULL DEFAULT ''
);

CREATE INDEX user_credentials_user ON user_credentials (user_id, product);
CREATE INDEX user_credentials_live_expiry ON user_credentials (expires_at) WHERE ended_at IS NULL;

CREATE TABLE user_seats (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    product    TEXT NOT NULL,
    license_id TEXT NOT NULL REFERENCES licenses (id),
    since      INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    PRIMARY KEY (user_id, product)
);

CREATE INDEX user_seats_license ON user_seats (license_id);
