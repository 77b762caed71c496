-- A member counts once in an engagement however its rows arrive: the check
-- before an insert (LogEngagement, an import) cannot see a row that a
-- concurrent writer has not committed yet, and this key refuses the second.
ALTER TABLE engagements
  ADD UNIQUE KEY IF NOT EXISTS engagements_group_member (engagement_id, member_id),
  DROP KEY IF EXISTS engagements_group;
