-- Faster writes of purchases: one secondary index serves both listing a
-- customer's purchases in time order and the refresh's per-customer sums
-- (it covers customer_id, time, id and amount), and the foreign key goes:
-- the service checks the customer in the same transaction as every insert,
-- and deletes purchases before the customer.
ALTER TABLE purchases DROP FOREIGN KEY IF EXISTS purchases_customer_fk;
ALTER TABLE purchases
  DROP KEY IF EXISTS purchases_customer_time_amount,
  DROP KEY IF EXISTS purchases_customer_time,
  ADD KEY purchases_customer_time (customer_id, purchase_time_us, id, amount);
