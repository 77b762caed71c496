-- The phone a record had when it was merged into another: its unique key
-- (phone) is freed for others, and this copy lets erasing the person the
-- record was merged into suppress it too.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS merged_phone VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL;
