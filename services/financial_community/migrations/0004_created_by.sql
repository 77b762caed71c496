-- Who created each member: the subject of the caller's token, for every way a
-- member comes to be (CreateMember, IdentifyMember, and an import's row naming
-- an unknown external id, which writes no audit event of its own). Members
-- created before this column was added have '' (their audit events, where
-- they have any, say who).

ALTER TABLE members ADD COLUMN IF NOT EXISTS created_by VARCHAR(256) NOT NULL DEFAULT '';
