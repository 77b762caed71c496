-- A member counts once in an engagement however its rows arrive: the check
-- before an insert (LogEngagement, an import) cannot see a row that a
-- concurrent writer has not committed yet, and this key refuses the second.
-- A member that such a race stored twice in one engagement keeps its first
-- row, so that the key can be added.
DELETE dup FROM engagements dup
  JOIN engagements kept
    ON kept.engagement_id = dup.engagement_id
   AND kept.member_id = dup.member_id
   AND kept.id < dup.id;
ALTER TABLE engagements
  ADD UNIQUE KEY IF NOT EXISTS engagements_group_member (engagement_id, member_id),
  DROP KEY IF EXISTS engagements_group;
