-- Differentiation: indexes that let a score refresh aggregate every
-- customer's counted facts from the index alone, in customer-id order.

ALTER TABLE purchases
  ADD KEY IF NOT EXISTS purchases_customer_time_amount (customer_id, purchase_time_us, amount);

ALTER TABLE interactions
  ADD KEY IF NOT EXISTS interactions_customer_time_cost (customer_id, interaction_time_us, cost);

-- The latest succeeded job (whose model re-scores single customers).
ALTER TABLE refresh_jobs
  ADD KEY IF NOT EXISTS refresh_jobs_state_end (state, end_time_us);
