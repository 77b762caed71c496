-- Runs once, when the MariaDB container initialises an empty data volume.
-- The image's entrypoint has already created the user 'rapport'@'%' from MARIADB_USER
-- and MARIADB_PASSWORD_FILE (a compose secret), so no password appears here.
-- One database (schema) per domain service; no service reads another's. The scoring
-- service is stateless and has none.
CREATE DATABASE IF NOT EXISTS rapport_customer CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS rapport_partner CHARACTER SET utf8mb4;
CREATE DATABASE IF NOT EXISTS rapport_financial_community CHARACTER SET utf8mb4;

-- Each service applies its own migrations at start-up, so it needs DDL on its schema.
-- At scale, give each service its own user limited to its own schema (see ../k8s/README.md).
GRANT ALL PRIVILEGES ON rapport_customer.* TO 'rapport'@'%';
GRANT ALL PRIVILEGES ON rapport_partner.* TO 'rapport'@'%';
GRANT ALL PRIVILEGES ON rapport_financial_community.* TO 'rapport'@'%';
