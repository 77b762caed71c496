-- Who created each partner: the subject of the caller's token, for every way
-- a partner comes to be (CreatePartner, IdentifyPartner, and an import's row
-- naming an unknown external id, which writes no audit event of its own).
-- Partners created before this column was added have '' (their audit events,
-- where they have any, say who).

ALTER TABLE partners ADD COLUMN IF NOT EXISTS created_by VARCHAR(256) NOT NULL DEFAULT '';
