-- A member's engagements list in time order, then id: the id goes right
-- after the time in the index that serves the list (and the refresh's
-- per-member facts, which it still covers), so that a page starts where the
-- last ended instead of sorting the member's whole history.
ALTER TABLE engagements
  DROP KEY IF EXISTS engagements_member_time,
  ADD KEY engagements_member_time (member_id, engagement_time_us, id, amount, cost);
