-- One row per computer for its software set instead of one row per package:
-- the package IDs and their install dates as two compact blobs (the format
-- is described in softwareset.go). SQL cannot write varints, so the rows of
-- computer_software are carried over by a Go step that runs after this SQL
-- in the same transaction (convertSoftwareSets), which then drops
-- computer_software.

CREATE TABLE computer_software_sets (
    computer_id INTEGER PRIMARY KEY REFERENCES computers (id),
    ids         BLOB NOT NULL,
    dates       BLOB NOT NULL
);
