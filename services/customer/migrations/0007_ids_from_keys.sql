-- Idempotent rows are found by their primary key instead of a unique index of
-- request ids. A purchase or interaction written under a request id has an id
-- made from it (KeyedId in common/ids.h), and a row that an import names only
-- by its row number has its import's id prefix followed by that number
-- (RowId). A retry makes the same id and fails on the primary key. The
-- request-id index cost MariaDB a third of its time per imported row, and its
-- entries (NULL ones too) were written for every row.
--
-- Rows written before this migration keep their ids: a request id used
-- before it is not recognized when retried after it (deploy/k8s/README.md,
-- "Upgrades").

-- The id prefix of each import, by kind (1 purchases, 2 interactions).
CREATE TABLE IF NOT EXISTS imports (
  kind TINYINT NOT NULL,
  import_id VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  id_prefix CHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  create_time_us BIGINT NOT NULL,
  PRIMARY KEY (kind, import_id),
  UNIQUE KEY imports_id_prefix (id_prefix)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

ALTER TABLE purchases DROP KEY IF EXISTS purchases_request_id;
ALTER TABLE interactions DROP KEY IF EXISTS interactions_request_id;
