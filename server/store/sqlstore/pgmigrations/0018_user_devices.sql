-- PostgreSQL twin of migrations/0018_user_devices.sql.
-- Users agents report, and devices (seed 003). A computer's primary user
-- and logged-in users are rows of computer_users; a device registration is
-- a row per (computer, product of its plug-ins) naming the computer's
-- primary user, kept in the transaction of the post, status change,
-- goodbye or deletion that changes it, together with that user's seat.

ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'admin';
UPDATE users SET source = 'directory' WHERE directory_id IS NOT NULL;

CREATE TABLE computer_users (
    computer_id BIGINT NOT NULL REFERENCES computers (id),
    user_id     BIGINT NOT NULL REFERENCES users (id),
    role        TEXT NOT NULL CHECK (role IN ('primary', 'logged-in')),
    seen_at     BIGINT NOT NULL,
    PRIMARY KEY (computer_id, role, user_id)
);

CREATE INDEX computer_users_user ON computer_users (user_id);

CREATE TABLE user_devices (
    computer_id BIGINT NOT NULL REFERENCES computers (id),
    product     TEXT NOT NULL,
    user_id     BIGINT NOT NULL REFERENCES users (id),
    since       BIGINT NOT NULL,
    PRIMARY KEY (computer_id, product)
);

CREATE INDEX user_devices_user ON user_devices (user_id, product);
