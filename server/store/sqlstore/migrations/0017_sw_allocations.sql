-- Allocations of software licenses: an entitlement of a license reserved
-- for a computer, which consumes it even before one of the license's
-- applications is recognised there (positions.Reserved).
CREATE TABLE sw_allocations (
    license_id  INTEGER NOT NULL REFERENCES sw_licenses (id),
    computer_id INTEGER NOT NULL REFERENCES computers (id),
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    PRIMARY KEY (license_id, computer_id)
) WITHOUT ROWID;

-- A webhook removed stops receiving alerts; its deliveries stay in the
-- log (those pending are given up).
ALTER TABLE alert_webhooks ADD COLUMN removed_at INTEGER;
