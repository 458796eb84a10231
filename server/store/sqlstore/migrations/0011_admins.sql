-- Named admins with roles, their API tokens and console sessions. Tokens
-- and session identifiers are stored as SHA-256 hashes only; passwords as
-- argon2id hashes. The first admin (holding the data folder's token) is
-- made at start, from the token file, by EnsureFirstAdmin.
CREATE TABLE admins (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    last_seen     INTEGER
);

CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    admin      TEXT NOT NULL REFERENCES admins (name) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    label      TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_used  INTEGER,
    revoked_at INTEGER
);

CREATE INDEX admin_tokens_admin ON admin_tokens (admin);

CREATE TABLE admin_sessions (
    hash       TEXT PRIMARY KEY,
    admin      TEXT NOT NULL REFERENCES admins (name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);

CREATE INDEX admin_sessions_admin ON admin_sessions (admin);
