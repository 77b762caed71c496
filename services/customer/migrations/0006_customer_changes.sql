-- A count of the changes that end a customer's ability to take new history:
-- merges, erasures and deletions each add one in their own transaction. An
-- import that resolved its customers while the count stood at N, and finds it
-- still at N (with a shared lock) when it writes, knows they are all still
-- live, and skips checking them one by one.
CREATE TABLE IF NOT EXISTS customer_changes (
  id TINYINT NOT NULL PRIMARY KEY,
  changes BIGINT NOT NULL
) ENGINE=InnoDB;

INSERT IGNORE INTO customer_changes (id, changes) VALUES (1, 0);
