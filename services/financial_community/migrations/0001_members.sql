-- The financial community: members (shareholders, investors, analysts), the
-- holdings register, engagements and analyst coverage. Times are
-- microseconds since the Unix epoch (UTC); a holding's or a rating's date is
-- kept as the microsecond its day ends (23:59:59.999999 UTC), which is when it
-- holds; money is DECIMAL(38,9).

CREATE TABLE IF NOT EXISTS members (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  display_name VARCHAR(256) NOT NULL,
  name_key VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  kind TINYINT NOT NULL,
  member_type TINYINT NOT NULL DEFAULT 0,
  organisation VARCHAR(256) NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  version BIGINT NOT NULL DEFAULT 1,
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY members_name (name_key, organisation),
  KEY members_kind (kind, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS member_external_ids (
  source VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  external_id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  PRIMARY KEY (source, external_id),
  KEY member_external_ids_member (member_id),
  CONSTRAINT member_external_ids_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS member_attributes (
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  attr_key VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  attr_value VARCHAR(1024) NOT NULL,
  PRIMARY KEY (member_id, attr_key),
  CONSTRAINT member_attributes_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS member_contacts (
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  position INT NOT NULL,
  name VARCHAR(256) NOT NULL,
  role VARCHAR(128) NOT NULL DEFAULT '',
  email VARCHAR(320) NOT NULL DEFAULT '',
  email_key VARCHAR(320) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL DEFAULT '',
  phone VARCHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '',
  PRIMARY KEY (member_id, position),
  KEY member_contacts_email (email_key),
  CONSTRAINT member_contacts_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per member, security and date: the position at the end of that date.
CREATE TABLE IF NOT EXISTS holdings (
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  security VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  end_time_us BIGINT NOT NULL,
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  shares BIGINT NOT NULL,
  price DECIMAL(38, 9) NOT NULL,
  create_time_us BIGINT NOT NULL,
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  -- Clustered by member, security and date: a member's latest row per
  -- security at or before a time is read in key order, and a second row for
  -- one date is a correction of the first.
  PRIMARY KEY (member_id, security, end_time_us),
  UNIQUE KEY holdings_id (id),
  KEY holdings_security (security, end_time_us),
  CONSTRAINT holdings_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per member of an engagement: the member's event (amount 0, since a
-- member's monetary fact is the market value of its holdings) and its share
-- of the cost.
CREATE TABLE IF NOT EXISTS engagements (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  engagement_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  kind TINYINT NOT NULL,
  engagement_time_us BIGINT NOT NULL,
  amount DECIMAL(38, 9) NOT NULL DEFAULT 0,
  cost DECIMAL(38, 9) NOT NULL,
  outcome VARCHAR(256) NOT NULL DEFAULT '',
  note VARCHAR(1024) NOT NULL DEFAULT '',
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY engagements_member_time (member_id, engagement_time_us, amount, cost),
  KEY engagements_group (engagement_id),
  CONSTRAINT engagements_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Analysts' ratings and target prices, per security and date.
CREATE TABLE IF NOT EXISTS coverage (
  id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  member_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  security VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  end_time_us BIGINT NOT NULL,
  rating TINYINT NOT NULL,
  rating_text VARCHAR(64) NOT NULL DEFAULT '',
  target_price DECIMAL(38, 9) NULL,
  create_time_us BIGINT NOT NULL,
  recorded_by VARCHAR(256) NOT NULL DEFAULT '',
  fingerprint CHAR(16) CHARACTER SET ascii NULL,
  KEY coverage_security (security, member_id, end_time_us),
  KEY coverage_member (member_id, id),
  CONSTRAINT coverage_member_fk FOREIGN KEY (member_id) REFERENCES members (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
