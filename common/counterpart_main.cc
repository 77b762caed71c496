#include "common/counterpart_main.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/channel.h"
#include "common/log.h"

ABSL_FLAG(std::string, mysql_uri, "",
          "the database: mysql://user:password@host:port/database or "
          "mysql://user:password@unix(/path/to/socket)/database; default "
          "mysql://rapport@127.0.0.1:3306/<the service's database>");
ABSL_FLAG(std::string, mysql_ssl_ca, "",
          "PEM file of the CA that signed the database server's certificate: "
          "connections use TLS and verify the server's certificate and name "
          "(the host of --mysql_uri); empty: plaintext, for a database on "
          "loopback or a private network");
ABSL_FLAG(std::string, mysql_password_file, "",
          "file holding the database password (a mounted Secret): it replaces "
          "the password of --mysql_uri, which then holds no secret");
ABSL_FLAG(int, db_pool_size, 16, "most connections to the database");
ABSL_FLAG(absl::Duration, db_wait, absl::Seconds(60),
          "how long to wait at start-up for the database");
ABSL_FLAG(std::string, scoring_addr, "localhost:50054",
          "the scoring service: host:port, or a comma-separated list balanced "
          "round-robin");
ABSL_FLAG(std::string, currency, "USD",
          "ISO 4217 code of the reporting currency");
ABSL_FLAG(std::string, service_key_file, "",
          "PEM private key (EC P-256) that signs this service's own tokens for "
          "its calls to the scoring service (required; its public key must be "
          "in the scoring service's JWKS)");

namespace rapport {

absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view setting) {
  constexpr std::streamsize kMost = 64 * 1024;  // a password or a salt
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        setting, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  const absl::Status too_large = absl::InvalidArgumentError(
      absl::StrCat(setting, ": ", path, " is not a file of at most 64 KiB"));
  if (!S_ISREG(st.st_mode) || st.st_size > kMost) return too_large;
  std::ifstream in(path, std::ios::binary);
  std::string secret(kMost + 1, '\0');
  if (in) in.read(secret.data(), kMost + 1);
  if (!in.is_open() || in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": cannot read ", path));
  }
  // Grown past the bound since it was looked at: refused, not cut short.
  if (in.gcount() > kMost) return too_large;
  secret.resize(static_cast<size_t>(in.gcount()));
  // One final line break, as editors and `echo` leave it, is not part of
  // the secret.
  if (absl::EndsWith(secret, "\n")) secret.pop_back();
  if (absl::EndsWith(secret, "\r")) secret.pop_back();
  if (secret.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": ", path, " is empty"));
  }
  return secret;
}

absl::StatusOr<CounterpartOptions> ReadCounterpartFlags(
    const ServiceDefaults& defaults) {
  CounterpartOptions out;
  std::string uri = absl::GetFlag(FLAGS_mysql_uri);
  if (uri.empty())
    uri = absl::StrCat("mysql://rapport@127.0.0.1:3306/", defaults.database);
  absl::StatusOr<MysqlOptions> db = MysqlOptions::FromUri(uri);
  if (!db.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mysql_uri: ", db.status().message()));
  }
  out.database = *std::move(db);
  if (const std::string file = absl::GetFlag(FLAGS_mysql_password_file);
      !file.empty()) {
    if (!out.database.password.empty()) {
      return absl::InvalidArgumentError(
          "mysql_password_file: --mysql_uri has a password too; give it in "
          "one place");
    }
    RAPPORT_ASSIGN_OR_RETURN(out.database.password,
                             ReadSecretFile(file, "mysql_password_file"));
  }
  out.database.ssl_ca = absl::GetFlag(FLAGS_mysql_ssl_ca);
  if (!out.database.ssl_ca.empty() &&
      access(out.database.ssl_ca.c_str(), R_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("mysql_ssl_ca: cannot read ", out.database.ssl_ca));
  }
  if (!out.database.ssl_ca.empty() && !out.database.socket.empty()) {
    return absl::InvalidArgumentError(
        "mysql_ssl_ca: a database on a unix socket is reached without TLS");
  }
  out.database.pool_size = absl::GetFlag(FLAGS_db_pool_size);
  if (out.database.pool_size < 1) {
    return absl::InvalidArgumentError("db_pool_size: must be at least 1");
  }
  out.db_wait = absl::GetFlag(FLAGS_db_wait);
  out.scoring_addr = absl::GetFlag(FLAGS_scoring_addr);
  if (out.scoring_addr.empty()) {
    return absl::InvalidArgumentError("scoring_addr: is required");
  }
  out.currency = absl::GetFlag(FLAGS_currency);
  if (out.currency.size() != 3) {
    return absl::InvalidArgumentError(
        "currency: must be a 3-letter ISO 4217 code");
  }
  const std::string key_file = absl::GetFlag(FLAGS_service_key_file);
  if (key_file.empty()) {
    return absl::InvalidArgumentError(
        "service_key_file: required (calls to the scoring service are "
        "authenticated)");
  }
  absl::StatusOr<auth::SigningKey> key = auth::SigningKey::Load(key_file);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service_key_file: ", key.status().message()));
  }
  out.service_tokens = std::make_shared<auth::ServiceTokens>(
      *std::move(key),
      auth::TokenClaims{
          .subject = absl::StrCat(auth::kServiceSubjectPrefix, defaults.name),
          .roles = {"reader"},
          .issuer = AuthIssuer(),
          .audience = ServiceAudience(),
          .ttl = absl::Hours(1)});
  return out;
}

absl::StatusOr<std::unique_ptr<MysqlPool>> OpenDatabase(
    const ServiceDefaults& defaults, const CounterpartOptions& options,
    const std::vector<Migration>& migrations) {
  // Migrations run on a connection of their own, without the serving
  // pool's limits on a statement: rebuilding an index of a large table
  // takes longer.
  MysqlOptions migrating = options.database;
  migrating.pool_size = 1;
  migrating.io_timeout = absl::Hours(24);
  migrating.statement_timeout = absl::ZeroDuration();
  migrating.lock_wait_timeout = absl::ZeroDuration();
  // A schema change waits for the transactions open on its table, and every
  // statement of the serving replicas on that table queues behind it: until
  // its migration has changed something, it gives up after a few seconds and
  // runs again after a pause that grows (up to 30 s) while the table stays
  // busy, rather than hold the table for as long as a long transaction
  // lasts (ApplyMigrations).
  migrating.metadata_lock_wait_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<MysqlPool>> migrator =
      MysqlPool::Create(migrating);
  if (!migrator.ok()) return migrator.status();
  absl::Time give_up = absl::Now() + options.db_wait;
  absl::Duration pause = absl::Seconds(1);
  for (;;) {
    absl::StatusOr<int> applied = ApplyMigrations(**migrator, migrations);
    if (applied.ok()) {
      const MysqlOptions& db = options.database;
      LogInfo(defaults.name, "schema up to date",
              {{"database", db.Redacted()},
               {"applied", absl::StrCat(*applied)},
               {"tls", db.ssl_ca.empty() ? "off" : "verified"}});
      // Passwords and customers' data cross the network in the clear.
      if (db.ssl_ca.empty() && db.socket.empty() &&
          !IsLoopbackAddress(absl::StrCat(db.host, ":", db.port))) {
        LogLine("warning", defaults.name,
                "the database is another machine and its connections are "
                "plaintext: set --mysql_ssl_ca unless the network encrypts "
                "by itself",
                {{"database", db.Redacted()}});
      }
      break;
    }
    if (absl::IsDeadlineExceeded(applied.status())) {
      // Another replica is migrating, as long as it takes: the database is
      // there, so the wait for it starts again (ApplyMigrations logs each).
      give_up = absl::Now() + options.db_wait;
      continue;
    }
    // A migration's code that lost a race with serving replicas (a
    // deadlock, a lock wait), or a schema change that found its table busy,
    // rolled back whole: it runs again, for as long as it takes, the
    // database being there.
    const bool busy = IsRetryableTransactionError(applied.status());
    if (busy) give_up = absl::Now() + options.db_wait;
    if ((!absl::IsUnavailable(applied.status()) &&
         !IsRetryableTransactionError(applied.status())) ||
        absl::Now() > give_up) {
      return applied.status();
    }
    LogInfo(defaults.name, "waiting for the database",
            {{"error", std::string(applied.status().message())}});
    absl::SleepFor(busy ? pause : absl::Seconds(1));
    pause = busy ? std::min(pause * 2, absl::Seconds(30)) : absl::Seconds(1);
  }
  migrator->reset();
  return MysqlPool::Create(options.database);
}

absl::StatusOr<std::unique_ptr<differentiation::GrpcScoringClient>>
ScoringClientFor(const ServerOptions& server,
                 const CounterpartOptions& options) {
  return differentiation::GrpcScoringClient::Create(
      options.scoring_addr, server.tls,
      {.authorization =
           [tokens = options.service_tokens] {
             return tokens->Authorization();
           },
       .allow_plaintext = server.allow_plaintext});
}

int ServeCounterpart(const ServerOptions& server, grpc::Service* service,
                     MysqlPool* pool,
                     differentiation::Differentiation* values) {
  return Serve(
      server, {service}, [pool] { return pool->Ping(); },
      [values](absl::Time deadline) { values->FinishRefreshes(deadline); });
}

}  // namespace rapport
