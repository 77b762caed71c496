-- A partner's orders and interactions list in time order, then id: the id
-- goes right after the time in the indexes that serve those lists (and the
-- refresh's per-partner sums, which they still cover), so that a page starts
-- where the last ended instead of sorting the partner's whole history.
ALTER TABLE orders
  DROP KEY IF EXISTS orders_partner_time,
  ADD KEY orders_partner_time (partner_id, order_time_us, id, amount);
ALTER TABLE interactions
  DROP KEY IF EXISTS interactions_partner_time_cost,
  ADD KEY interactions_partner_time_cost (partner_id, interaction_time_us, id, cost);
