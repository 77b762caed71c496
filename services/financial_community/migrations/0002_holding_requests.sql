-- The request ids of RecordHolding, with what each said and the position it
-- wrote. A second row for a member, security and date corrects the first
-- and keeps the first one's id, so the holding alone cannot tell a retry of
-- a correction from a new request (which would undo a later correction).
CREATE TABLE IF NOT EXISTS holding_requests (
  -- KeyedId("holding", request id)
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  security VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  end_time_us BIGINT NOT NULL,
  fingerprint CHAR(16) CHARACTER SET ascii NOT NULL,
  create_time_us BIGINT NOT NULL,
  KEY holding_requests_member (member_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
