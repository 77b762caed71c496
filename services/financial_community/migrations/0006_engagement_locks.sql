-- One row per engagement that rows were added to under a request id, locked
-- (INSERT ... ON DUPLICATE KEY UPDATE) by whoever adds to it, so that two
-- imports, or an import and LogEngagement, adding to one engagement take
-- turns without locking gaps of the engagements table: imports run READ
-- COMMITTED, and gap locks made the two streams of one import deadlock.
-- The rows hold nothing else.
CREATE TABLE IF NOT EXISTS engagement_locks (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
) ENGINE=InnoDB;
