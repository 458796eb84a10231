-- Indexes for 'computers list' filters at 100,000 computers. The list
-- query keeps SQLite off computers_live (its "+deleted_at IS NULL"), so
-- that, without statistics, it walks the computers by ID or by one of
-- these. None is on last_seen: every post rewrites it, and an index on it
-- would be rewritten too.
CREATE INDEX computers_status ON computers (status, id);
CREATE INDEX computers_flagged ON computers (id) WHERE flags <> '';
CREATE INDEX computers_hostname_lower ON computers (lower(hostname)) WHERE deleted_at IS NULL;
CREATE INDEX blocked_computer ON blocked (computer_id);
