-- A partner's own reference of a deal (an import's deal_id) names one deal of
-- that partner: a file imported twice, or a deal registered again under its
-- reference, must not count the deal twice. The key is exact (byte for byte,
-- trailing spaces too); deals without a reference ('') are not keyed.
--
-- References stored more than once for a partner before this migration keep
-- the first deal (the least id) as it is; each later one gets its own id
-- appended (" #<id>"), so that every deal stays, told apart, for review.
-- Run again (stopped between the two statements), the first finds nothing.
UPDATE deals d
  JOIN (SELECT partner_id, CAST(reference AS BINARY) AS ref, MIN(id) AS first_id
          FROM deals
         WHERE reference <> ''
         GROUP BY partner_id, CAST(reference AS BINARY)
        HAVING COUNT(*) > 1) twice
    ON twice.partner_id = d.partner_id
   AND twice.ref = CAST(d.reference AS BINARY)
   AND d.id <> twice.first_id
   SET d.reference = CONCAT(LEFT(d.reference, 100), ' #', d.id),
       d.version = d.version + 1;

ALTER TABLE deals
  ADD COLUMN IF NOT EXISTS reference_key VARCHAR(128) CHARACTER SET utf8mb4
    COLLATE utf8mb4_nopad_bin AS (NULLIF(reference, '')) PERSISTENT,
  ADD UNIQUE KEY IF NOT EXISTS deals_partner_reference (partner_id, reference_key);
