-- The spool backlog each agent reported in its latest inventory post.
ALTER TABLE computers ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0;
