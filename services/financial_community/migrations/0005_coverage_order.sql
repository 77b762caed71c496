-- The order analysts' ratings were recorded in, from the database's own
-- counter: on one date, the rating recorded last is an analyst's current one.
-- create_time_us is the recording replica's clock, which differs between
-- replicas and may step back. Rows stored before this are numbered in
-- (create_time_us, id) order, as they were ordered until now.
ALTER TABLE coverage ADD COLUMN IF NOT EXISTS seq BIGINT NULL;
SET @coverage_seq := 0;
UPDATE coverage SET seq = (@coverage_seq := @coverage_seq + 1)
  WHERE seq IS NULL ORDER BY create_time_us, id;
ALTER TABLE coverage MODIFY seq BIGINT NOT NULL AUTO_INCREMENT,
  ADD UNIQUE KEY IF NOT EXISTS coverage_seq (seq);
