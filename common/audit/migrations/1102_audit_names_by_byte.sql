-- Actors and resources are names and compare byte for byte, as the services
-- write them: svc:Alice and svc:alice are two callers, imports/Q1 and
-- imports/q1 two imports (the table's default collation took them for one).
ALTER TABLE audit_events
  MODIFY actor VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  MODIFY resource VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
