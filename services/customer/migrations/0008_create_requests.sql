-- The request ids that created customers move out of the customers table into
-- one of their own, which has a row only for a customer created under a
-- request id (CreateCustomer, IdentifyCustomer). The unique index on
-- customers held an entry for every customer, a NULL one for each customer an
-- import created, and imports paid for it: about 5% of a bulk import's time.
-- Erasure and deletion delete the customer's row here.
--
-- Pods from before 0008 write the dropped columns, so the rollout that brings
-- it must not run old and new pods together (deploy/k8s/README.md, "Upgrades").

CREATE TABLE IF NOT EXISTS customer_create_requests (
  request_id VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
  request_hash CHAR(16) CHARACTER SET ascii NOT NULL,
  customer_id CHAR(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  KEY customer_create_requests_customer (customer_id),
  CONSTRAINT customer_create_requests_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Copied only while the old columns are still there (a re-run finds them gone).
SET @copy = IF(
  (SELECT COUNT(*) FROM information_schema.columns
   WHERE table_schema = DATABASE() AND table_name = 'customers'
     AND column_name = 'create_request_id') > 0,
  'INSERT IGNORE INTO customer_create_requests (request_id, request_hash, customer_id)
   SELECT create_request_id, create_request_hash, id FROM customers
   WHERE create_request_id IS NOT NULL AND create_request_hash IS NOT NULL',
  'DO 0');
PREPARE copy_requests FROM @copy;
EXECUTE copy_requests;
DEALLOCATE PREPARE copy_requests;

ALTER TABLE customers
  DROP KEY IF EXISTS customers_create_request_id,
  DROP COLUMN IF EXISTS create_request_id,
  DROP COLUMN IF EXISTS create_request_hash;
