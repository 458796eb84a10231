-- The hash of each computer's stored basic inventory, so an agent whose
-- basic inventory did not change can send the hash alone.
ALTER TABLE computers ADD COLUMN basic_hash TEXT NOT NULL DEFAULT '';
