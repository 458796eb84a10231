-- License positions of any software (seed 004): applications recognised
-- in the software sets agents post, software licenses of them, purchases
-- split across licenses, and the recognitions kept up to date in the
-- transaction of each software set write. Dates are days since 1970-01-01
-- (0: none); money is in cents.
CREATE TABLE sw_applications (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    publisher  TEXT NOT NULL DEFAULT '',
    rules      TEXT NOT NULL, -- JSON list of recognize.Rule
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL
);

-- Which applications each computer has: packages counts the computer's
-- packages the application's rules recognise.
CREATE TABLE sw_recognitions (
    application_id INTEGER NOT NULL REFERENCES sw_applications (id) ON DELETE CASCADE,
    computer_id    INTEGER NOT NULL,
    packages       INTEGER NOT NULL,
    PRIMARY KEY (application_id, computer_id)
) WITHOUT ROWID;
CREATE INDEX sw_recognitions_computer ON sw_recognitions (computer_id, application_id);

CREATE TABLE sw_licenses (
    id                  INTEGER PRIMARY KEY,
    name                TEXT NOT NULL UNIQUE COLLATE NOCASE,
    publisher           TEXT NOT NULL DEFAULT '',
    type                TEXT NOT NULL,
    duration            TEXT NOT NULL,
    expiry              INTEGER NOT NULL DEFAULT 0,
    extra               INTEGER NOT NULL DEFAULT 0 CHECK (extra >= 0),
    unit_price          INTEGER NOT NULL DEFAULT 0 CHECK (unit_price >= 0),
    planned_non_renewal INTEGER NOT NULL DEFAULT 0,
    true_up             INTEGER NOT NULL DEFAULT 0,
    status              TEXT NOT NULL,
    serial              TEXT NOT NULL DEFAULT '',
    manager             TEXT NOT NULL DEFAULT '',
    cost_centre         TEXT NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    actor               TEXT NOT NULL
);

CREATE TABLE sw_license_applications (
    license_id     INTEGER NOT NULL REFERENCES sw_licenses (id),
    application_id INTEGER NOT NULL REFERENCES sw_applications (id),
    PRIMARY KEY (license_id, application_id)
) WITHOUT ROWID;
CREATE INDEX sw_license_applications_app ON sw_license_applications (application_id);

CREATE TABLE purchases (
    id            INTEGER PRIMARY KEY,
    po            TEXT NOT NULL,
    item          TEXT NOT NULL,
    vendor        TEXT NOT NULL DEFAULT '',
    purchase_date INTEGER NOT NULL DEFAULT 0,
    quantity      INTEGER NOT NULL CHECK (quantity > 0),
    unit_price    INTEGER NOT NULL DEFAULT 0 CHECK (unit_price >= 0),
    type          TEXT NOT NULL CHECK (type IN ('license', 'subscription', 'maintenance')),
    effective     INTEGER NOT NULL DEFAULT 0,
    expiry        INTEGER NOT NULL DEFAULT 0,
    cost_centre   TEXT NOT NULL DEFAULT '',
    description   TEXT NOT NULL DEFAULT '',
    created_at    INTEGER NOT NULL,
    actor         TEXT NOT NULL,
    CHECK (expiry = 0 OR effective = 0 OR expiry >= effective)
);

-- A purchase's quantity split across licenses: license is a software
-- license's ID (SW-n) or one of Tally's product licenses' IDs.
CREATE TABLE purchase_links (
    purchase_id INTEGER NOT NULL REFERENCES purchases (id),
    license     TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (purchase_id, license)
) WITHOUT ROWID;
CREATE INDEX purchase_links_license ON purchase_links (license);

-- Alerts: webhooks, the conditions raised (each alerted once while it
-- lasts), and each alert's delivery to each webhook, retried until
-- delivered or given up; queued in the transaction that raises the
-- condition, so that a restart loses none.
CREATE TABLE alert_webhooks (
    id         INTEGER PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    actor      TEXT NOT NULL
);

CREATE TABLE alert_conditions (
    key       TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    license   TEXT NOT NULL,
    message   TEXT NOT NULL,
    raised_at INTEGER NOT NULL
);

CREATE TABLE alert_deliveries (
    id            INTEGER PRIMARY KEY,
    webhook_id    INTEGER NOT NULL REFERENCES alert_webhooks (id),
    condition_key TEXT NOT NULL,
    body          BLOB NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending', -- pending, delivered, failed
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_at       INTEGER NOT NULL,
    last_status   INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT NOT NULL DEFAULT '',
    last_at       INTEGER,
    created_at    INTEGER NOT NULL,
    delivered_at  INTEGER
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_at) WHERE state = 'pending';
