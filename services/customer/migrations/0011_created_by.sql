-- Who created each customer: the subject of the caller's token, for every way
-- a customer comes to be (CreateCustomer, IdentifyCustomer, and an import's
-- row naming an unknown identity, which writes no audit event of its own).
-- Customers created before this column was added have '' (their audit
-- events, where they have any, say who).

ALTER TABLE customers ADD COLUMN IF NOT EXISTS created_by VARCHAR(256) NOT NULL DEFAULT '';
