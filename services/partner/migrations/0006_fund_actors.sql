-- Who asked for each fund request and who claimed its funds: the subject of
-- the caller's token. The request is approved, and the claim paid, by someone
-- else (or by an admin with force, audited). Requests stored before these
-- columns were added have '' (their audit events say who), and are decided
-- as before.
ALTER TABLE fund_requests
  ADD COLUMN IF NOT EXISTS requested_by VARCHAR(256) NOT NULL DEFAULT '',
  ADD COLUMN IF NOT EXISTS claimed_by VARCHAR(256) NOT NULL DEFAULT '';
