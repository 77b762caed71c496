-- The audit log of a service: one row per change, written in the change's own
-- transaction, never updated or deleted (the triggers refuse both, whoever
-- asks; the deployment's grants refuse them too where it can).
CREATE TABLE IF NOT EXISTS audit_events (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  time_us BIGINT NOT NULL,
  -- The subject of the caller's token.
  actor VARCHAR(256) NOT NULL,
  rpc VARCHAR(64) NOT NULL,
  -- The resource's name, e.g. customers/01jd8x4r2c6n7m9p0q1r2s3t4v.
  resource VARCHAR(256) NOT NULL,
  request_id VARCHAR(256) NOT NULL DEFAULT '',
  outcome VARCHAR(32) NOT NULL,
  details VARCHAR(1024) NOT NULL DEFAULT '',
  KEY audit_events_time (time_us, id),
  KEY audit_events_actor (actor, time_us, id),
  KEY audit_events_resource (resource, time_us, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TRIGGER IF NOT EXISTS audit_events_no_update BEFORE UPDATE ON audit_events FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only';

CREATE TRIGGER IF NOT EXISTS audit_events_no_delete BEFORE DELETE ON audit_events FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'audit events are append-only';
