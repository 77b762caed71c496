-- Customers, their identities and attributes, and their purchases.
-- Times are microseconds since the Unix epoch (UTC); money is DECIMAL(38,9).

CREATE TABLE IF NOT EXISTS customers (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  display_name VARCHAR(256) NOT NULL,
  -- The address as given, and its lower-cased trimmed form that must be unique.
  email VARCHAR(320) NULL,
  email_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  phone VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  create_request_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  create_request_hash CHAR(16) CHARACTER SET ascii NULL,
  UNIQUE KEY customers_email_key (email_key),
  UNIQUE KEY customers_phone (phone),
  UNIQUE KEY customers_create_request_id (create_request_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS customer_external_ids (
  source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (source, external_id),
  KEY customer_external_ids_customer (customer_id),
  CONSTRAINT customer_external_ids_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS customer_attributes (
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  name VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  value VARCHAR(1024) NOT NULL,
  PRIMARY KEY (customer_id, name),
  CONSTRAINT customer_attributes_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS purchases (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  purchase_time_us BIGINT NOT NULL,
  amount DECIMAL(38, 9) NOT NULL,
  currency CHAR(3) CHARACTER SET ascii NOT NULL,
  description VARCHAR(1024) NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  request_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  request_hash CHAR(16) CHARACTER SET ascii NULL,
  UNIQUE KEY purchases_request_id (request_id),
  KEY purchases_customer_time (customer_id, purchase_time_us, id),
  CONSTRAINT purchases_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
