# Runs once, when the MariaDB container initialises an empty data volume (the image's
# entrypoint sources it, as the mysql user (uid 999, after its gosu), with
# docker_process_sql at hand).
#
# One database (schema) per domain service, and one account per service, named after
# its database and granted that database alone: no service reads another's, and
# whoever takes one service's password reaches that service's data only. Each service
# applies its own migrations at start-up, which create tables and the audit log's
# triggers, hence every right on its own schema. The scoring service is stateless and
# has none. The passwords come from compose secrets, so none appears here.
for service in customer partner financial_community; do
  database=rapport_$service
  password=$(cat "/run/secrets/${service}_db_password")
  case $password in
    *[!A-Za-z0-9_-]*|'')
      echo "initdb: /run/secrets/${service}_db_password: want letters, digits, - and _ only" >&2
      exit 1 ;;
  esac
  docker_process_sql <<SQL
CREATE DATABASE IF NOT EXISTS \`$database\` CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$database'@'%' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON \`$database\`.* TO '$database'@'%';
SQL
done
