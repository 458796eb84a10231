-- Keep the rows every post rewrites narrow. SQLite rewrites a whole row on
-- update: the basic inventory (a kilobyte or more) moves out of computers
-- into its own table, written only when it changes, so that the update of
-- last_seen at each post rewrites a short row.

CREATE TABLE basic_inventory (
    computer_id INTEGER PRIMARY KEY REFERENCES computers (id),
    blob        BLOB NOT NULL
);

INSERT INTO basic_inventory (computer_id, blob) SELECT id, basic FROM computers WHERE basic IS NOT NULL;
UPDATE computers SET basic = NULL;
