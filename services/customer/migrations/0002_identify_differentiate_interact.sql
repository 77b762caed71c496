-- Identification (merges, suppression), interaction (interactions, consents)
-- and differentiation (stored scores, models, refresh jobs).

ALTER TABLE customers
  ADD COLUMN IF NOT EXISTS postal_code VARCHAR(32) NULL,
  -- The email's duplicate-matching key (see EmailMatchKey): not unique.
  ADD COLUMN IF NOT EXISTS email_match_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  -- Set when the customer was merged into another: reads resolve to that one.
  ADD COLUMN IF NOT EXISTS merged_into CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NULL,
  -- Set when the personal data was erased.
  ADD COLUMN IF NOT EXISTS erased_time_us BIGINT NULL,
  ADD KEY IF NOT EXISTS customers_name_postal (display_name(64), postal_code),
  ADD KEY IF NOT EXISTS customers_email_match (email_match_key);

-- Who merged which customer into which, and when.
CREATE TABLE IF NOT EXISTS customer_merges (
  merged_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  primary_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  actor VARCHAR(256) NOT NULL,
  merge_time_us BIGINT NOT NULL,
  moved_purchases BIGINT NOT NULL,
  moved_interactions BIGINT NOT NULL,
  moved_consents BIGINT NOT NULL,
  moved_identities BIGINT NOT NULL,
  KEY customer_merges_primary (primary_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Salted hashes of erased customers' identities, to refuse bringing them back.
CREATE TABLE IF NOT EXISTS suppressed_identities (
  identity_hash CHAR(64) CHARACTER SET ascii NOT NULL PRIMARY KEY,
  erase_time_us BIGINT NOT NULL
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS interactions (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel TINYINT NOT NULL,
  kind VARCHAR(64) NOT NULL DEFAULT '',
  interaction_time_us BIGINT NOT NULL,
  cost DECIMAL(38, 9) NOT NULL,
  note VARCHAR(1024) NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  request_id VARCHAR(160) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  request_hash CHAR(16) CHARACTER SET ascii NULL,
  UNIQUE KEY interactions_request_id (request_id),
  KEY interactions_customer_time (customer_id, interaction_time_us, id),
  CONSTRAINT interactions_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS consents (
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  purpose VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  channel TINYINT NOT NULL,
  granted BOOLEAN NOT NULL,
  capture_time_us BIGINT NOT NULL,
  source VARCHAR(128) NOT NULL,
  PRIMARY KEY (customer_id, purpose, channel),
  CONSTRAINT consents_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Refresh jobs; any replica can answer for any job.
CREATE TABLE IF NOT EXISTS refresh_jobs (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  state TINYINT NOT NULL,
  done BIGINT NOT NULL DEFAULT 0,
  total BIGINT NOT NULL DEFAULT 0,
  request BLOB NOT NULL,
  create_time_us BIGINT NOT NULL,
  end_time_us BIGINT NULL,
  heartbeat_time_us BIGINT NOT NULL,
  error VARCHAR(2048) NOT NULL DEFAULT '',
  -- The scoring model (rapport.scoring.v1.ScoreModel) and, with CLV, the
  -- rapport.scoring.v1.ClvModel, serialized.
  score_model BLOB NULL,
  clv_model BLOB NULL
) ENGINE=InnoDB;

-- The latest stored values of each customer.
CREATE TABLE IF NOT EXISTS customer_scores (
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  model_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  recency_days BIGINT NULL,
  frequency BIGINT NOT NULL,
  monetary DECIMAL(38, 9) NOT NULL,
  r TINYINT NOT NULL,
  f TINYINT NOT NULL,
  m TINYINT NOT NULL,
  segment VARCHAR(64) NOT NULL,
  value_hundredths SMALLINT NOT NULL,
  cost_to_serve DECIMAL(38, 9) NOT NULL,
  profit DECIMAL(38, 9) NOT NULL,
  tier TINYINT NOT NULL,
  p_alive DOUBLE NULL,
  expected_purchases DOUBLE NULL,
  clv DOUBLE NULL,
  score_time_us BIGINT NOT NULL,
  KEY customer_scores_segment (segment, customer_id),
  KEY customer_scores_tier (tier, customer_id),
  KEY customer_scores_value (value_hundredths, customer_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
