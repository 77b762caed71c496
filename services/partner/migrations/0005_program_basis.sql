-- Whether a program's percentages are a commission the company pays on what
-- the partner sells (1, as every program before this one) or a margin the
-- partner keeps, its discount off the list price (2).
ALTER TABLE programs ADD COLUMN IF NOT EXISTS basis TINYINT NOT NULL DEFAULT 1;
