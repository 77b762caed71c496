-- Who recorded each purchase and interaction (the subject of the caller's
-- token; NULL for rows from before authentication), and every consent ever
-- given or withdrawn, append-only: consents holds the current one per
-- purpose and channel, the one captured last.
ALTER TABLE purchases ADD COLUMN IF NOT EXISTS recorded_by VARCHAR(256) NULL;
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS recorded_by VARCHAR(256) NULL;

CREATE TABLE IF NOT EXISTS consent_history (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  purpose VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  channel TINYINT NOT NULL,
  granted BOOLEAN NOT NULL,
  capture_time_us BIGINT NOT NULL,
  source VARCHAR(128) NOT NULL,
  record_time_us BIGINT NOT NULL,
  recorded_by VARCHAR(256) NOT NULL,
  KEY consent_history_customer (customer_id, purpose, channel, capture_time_us),
  CONSTRAINT consent_history_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
