-- The records merged into a customer, found by key: erasing or deleting a
-- customer reads them, and without this index read and locked every customer
-- (calls for any other customer waited behind an erasure).

ALTER TABLE customers ADD INDEX IF NOT EXISTS customers_merged_into (merged_into);
