-- The id prefix of each import (common/import): its rows' ids are the prefix
-- and their row numbers, so a retried import makes the same ids.
CREATE TABLE IF NOT EXISTS import_prefixes (
  kind VARCHAR(32) CHARACTER SET ascii NOT NULL,
  import_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  prefix CHAR(16) CHARACTER SET ascii NOT NULL,
  create_time_us BIGINT NOT NULL,
  PRIMARY KEY (kind, import_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
