-- The differentiation tables of a counterpart service, named by its
-- ValueTables: {jobs} (refresh jobs), {values} (each entity's live values,
-- keyed by {entity_id}). Customer databases created before the kit have them
-- already, from their own migrations 0002 and 0004, in this very form.

-- Refresh jobs; any replica can answer for any job.
CREATE TABLE IF NOT EXISTS {jobs} (
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

-- The latest succeeded job (whose model re-scores single entities).
ALTER TABLE {jobs}
  ADD KEY IF NOT EXISTS {jobs}_state_end (state, end_time_us);

-- The latest stored values of each entity.
CREATE TABLE IF NOT EXISTS {values} (
  {entity_id} CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
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
  KEY {values}_segment (segment, {entity_id}),
  KEY {values}_tier (tier, {entity_id}),
  KEY {values}_value (value_hundredths, {entity_id})
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
