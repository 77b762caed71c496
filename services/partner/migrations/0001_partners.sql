-- Marketing partners, their programs, agreements, deals, orders, funds and
-- interactions. Times are microseconds since the Unix epoch (UTC); money is
-- DECIMAL(38,9). Rows written under a request id (or an import's row) keep
-- the fingerprint of what the request said, so that a retry is recognised
-- and a reuse with other content refused.

CREATE TABLE IF NOT EXISTS partners (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  display_name VARCHAR(256) NOT NULL,
  -- For duplicate checks: the name lower-cased, punctuation and legal forms
  -- dropped ("ACME, Inc." -> "acme").
  name_key VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  kind TINYINT NOT NULL,
  lifecycle TINYINT NOT NULL,
  region VARCHAR(64) NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY partners_name_region (name_key, region),
  KEY partners_kind (kind, id),
  KEY partners_lifecycle (lifecycle, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS partner_external_ids (
  source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (source, external_id),
  KEY partner_external_ids_partner (partner_id),
  CONSTRAINT partner_external_ids_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS partner_attributes (
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  attr_key VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  attr_value VARCHAR(1024) NOT NULL,
  PRIMARY KEY (partner_id, attr_key),
  CONSTRAINT partner_attributes_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS partner_contacts (
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  position INT NOT NULL,
  name VARCHAR(256) NOT NULL,
  role VARCHAR(128) NOT NULL DEFAULT '',
  email VARCHAR(320) NOT NULL DEFAULT '',
  -- The email's duplicate key (EmailMatchKey); '' without an email.
  email_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  phone VARCHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '',
  PRIMARY KEY (partner_id, position),
  KEY partner_contacts_email (email_key),
  CONSTRAINT partner_contacts_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS programs (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  name VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  create_time_us BIGINT NOT NULL,
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  UNIQUE KEY programs_name (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS program_terms (
  program_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  -- rapport.common.v1.Tier; 0: the default terms.
  tier TINYINT NOT NULL,
  commission_percent DECIMAL(9, 4) NOT NULL,
  PRIMARY KEY (program_id, tier),
  CONSTRAINT program_terms_program_fk FOREIGN KEY (program_id) REFERENCES programs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS agreements (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  program_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  start_time_us BIGINT NOT NULL,
  end_time_us BIGINT NULL,
  state TINYINT NOT NULL,
  -- The partner and program while the agreement is active, else NULL: the
  -- unique key allows one active agreement per partner and program.
  active_key CHAR(53) CHARACTER SET ascii COLLATE ascii_bin NULL,
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  UNIQUE KEY agreements_active (active_key),
  KEY agreements_partner (partner_id, id),
  KEY agreements_program (program_id, id),
  CONSTRAINT agreements_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id),
  CONSTRAINT agreements_program_fk FOREIGN KEY (program_id) REFERENCES programs (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS deals (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  reference VARCHAR(128) NOT NULL DEFAULT '',
  account_name VARCHAR(256) NOT NULL,
  account_domain VARCHAR(253) NOT NULL DEFAULT '',
  -- The account's matching keys (deal conflicts): the normalised domain ('' when
  -- unknown) and the normalised name.
  domain_key VARCHAR(253) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
  name_key VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  amount DECIMAL(38, 9) NOT NULL,
  register_time_us BIGINT NOT NULL,
  expected_close_time_us BIGINT NULL,
  close_time_us BIGINT NULL,
  -- rapport.partner.v1.DealState: 1 submitted, 2 approved, 3 rejected, 4 won,
  -- 5 lost, 6 expired.
  state TINYINT NOT NULL,
  conflict_with CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NULL,
  approved_in_conflict BOOLEAN NOT NULL DEFAULT FALSE,
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  -- Won deals are a partner's activity events (state 4, at close time): a
  -- refresh aggregates them from this index alone, in partner order.
  KEY deals_partner_close (partner_id, close_time_us, amount, state),
  KEY deals_partner_id (partner_id, id),
  KEY deals_domain (domain_key, register_time_us),
  KEY deals_name (name_key, register_time_us),
  KEY deals_conflicts (conflict_with),
  KEY deals_state (state, id),
  CONSTRAINT deals_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS orders (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  order_time_us BIGINT NOT NULL,
  amount DECIMAL(38, 9) NOT NULL,
  description VARCHAR(1024) NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY orders_partner_time (partner_id, order_time_us, amount, id),
  CONSTRAINT orders_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS fund_requests (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  activity VARCHAR(512) NOT NULL,
  requested_amount DECIMAL(38, 9) NOT NULL,
  -- rapport.partner.v1.FundRequestState: 1 requested, 2 approved, 3 rejected,
  -- 4 claimed, 5 paid, 6 claim rejected.
  state TINYINT NOT NULL,
  claimed_amount DECIMAL(38, 9) NULL,
  claim_time_us BIGINT NULL,
  paid_time_us BIGINT NULL,
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  -- Paid claims are costs of serving the partner (state 5, at payment time).
  KEY fund_requests_partner_paid (partner_id, paid_time_us, claimed_amount, state),
  KEY fund_requests_partner_id (partner_id, id),
  KEY fund_requests_state (state, id),
  CONSTRAINT fund_requests_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS interactions (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  partner_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  channel TINYINT NOT NULL,
  kind VARCHAR(64) NOT NULL DEFAULT '',
  interaction_time_us BIGINT NOT NULL,
  cost DECIMAL(38, 9) NOT NULL,
  note VARCHAR(1024) NOT NULL DEFAULT '',
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY interactions_partner_time_cost (partner_id, interaction_time_us, cost, id),
  CONSTRAINT interactions_partner_fk FOREIGN KEY (partner_id) REFERENCES partners (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
