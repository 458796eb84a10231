-- Indexes for the console's pages at 1,000,000 events: the dashboard's
-- chart and counters and the events page filtered by kind read the
-- events of one kind over a time range.
CREATE INDEX events_kind_at ON events (kind, at);
