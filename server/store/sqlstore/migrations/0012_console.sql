-- Indexes for the console's pages at 1,000,000 events: the dashboard's
-- seat chart and counters and the events page filtered by kind read the
-- events of one kind over a time range; with the count in the index they
-- never read the table.
CREATE INDEX events_kind_at ON events (kind, at, count);

-- The status filters of the console count the live computers of each
-- status; this index counts them without reading a row.
CREATE INDEX computers_live_status ON computers (status, deleted_at) WHERE deleted_at IS NULL;
