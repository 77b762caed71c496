// rapport-customer: flags and environment -> options -> the common server
// runner.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "common/env_flags.h"
#include "common/log.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/server.h"
#include "common/validation.h"
#include "services/customer/bulk_import.h"
#include "services/customer/customer_logic.h"
#include "services/customer/customer_service.h"
#include "services/customer/mysql_customer_store.h"
#include "services/customer/mysql_import_store.h"
#include "services/customer/mysql_score_store.h"
#include "services/customer/stored_scores.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50051",
          "host:port to serve on; port 0 picks one");
ABSL_FLAG(std::string, mysql_uri,
          "mysql://rapport@127.0.0.1:3306/rapport_customer",
          "the database: mysql://user:password@host:port/database or "
          "mysql://user:password@unix(/path/to/socket)/database");
ABSL_FLAG(int, db_pool_size, 16, "most connections to the database");
ABSL_FLAG(int, max_threads, 64, "most threads serving calls");
ABSL_FLAG(absl::Duration, db_wait, absl::Seconds(60),
          "how long to wait at start-up for the database");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(10),
          "how long running calls may take to finish on SIGTERM");
ABSL_FLAG(std::string, currency, "USD",
          "ISO 4217 code of the reporting currency");
ABSL_FLAG(
    std::string, phone_region, "US",
    "region (ISO 3166 alpha-2) of phone numbers given without a country code");
ABSL_FLAG(bool, suppression, true,
          "keep erased customers' identities as salted hashes and refuse them "
          "afterwards");
ABSL_FLAG(
    std::string, suppression_salt, "",
    "secret salt of the suppression hashes; required while suppression is on");
ABSL_FLAG(bool, log_requests, true, "log one line per request");
ABSL_FLAG(std::string, port_file, "",
          "write the chosen port to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this server (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of this server");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA that client certificates must chain to (mutual TLS)");
ABSL_FLAG(std::string, scoring_addr, "localhost:50054",
          "the scoring service: host:port, or a comma-separated list balanced "
          "round-robin");

namespace {

constexpr char kService[] = "customer";

int Fail(const absl::Status& status) {
  rapport::LogError(kService, "cannot start",
                    {{"error", std::string(status.message())}});
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  rapport::BlockTerminationSignals();
  absl::SetProgramUsageMessage(
      "The Rapport customer service.\n"
      "Every flag may also come from the environment as RAPPORT_<FLAG>, e.g. "
      "RAPPORT_MYSQL_URI.");
  rapport::ApplyEnvOverrides({"listen", "mysql_uri", "db_pool_size",
                              "max_threads", "db_wait", "shutdown_grace",
                              "currency", "phone_region", "suppression",
                              "suppression_salt", "log_requests", "port_file",
                              "tls_cert", "tls_key", "tls_ca", "scoring_addr"});
  absl::ParseCommandLine(argc, argv);

  rapport::ServerOptions server_options;
  server_options.service_name = kService;
  server_options.listen = absl::GetFlag(FLAGS_listen);
  server_options.max_threads = absl::GetFlag(FLAGS_max_threads);
  server_options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  server_options.log_requests = absl::GetFlag(FLAGS_log_requests);
  server_options.port_file = absl::GetFlag(FLAGS_port_file);
  server_options.tls = {absl::GetFlag(FLAGS_tls_cert),
                        absl::GetFlag(FLAGS_tls_key),
                        absl::GetFlag(FLAGS_tls_ca)};
  server_options.health_service_names = {
      rapport::customer::v1::CustomerService::service_full_name()};
  if (absl::Status s = server_options.Validate(); !s.ok()) return Fail(s);

  absl::StatusOr<rapport::MysqlOptions> db =
      rapport::MysqlOptions::FromUri(absl::GetFlag(FLAGS_mysql_uri));
  if (!db.ok())
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("mysql_uri: ", db.status().message())));
  db->pool_size = absl::GetFlag(FLAGS_db_pool_size);
  rapport::customer::CustomerLogicOptions logic_options;
  logic_options.currency = absl::GetFlag(FLAGS_currency);
  if (logic_options.currency.size() != 3) {
    return Fail(absl::InvalidArgumentError(
        "currency: must be a 3-letter ISO 4217 code"));
  }
  logic_options.phone_region = absl::GetFlag(FLAGS_phone_region);
  if (!rapport::IsKnownPhoneRegion(logic_options.phone_region)) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("phone_region: \"", logic_options.phone_region,
                     "\" is not a region code such as US or GB")));
  }
  logic_options.suppression = absl::GetFlag(FLAGS_suppression);
  logic_options.suppression_salt = absl::GetFlag(FLAGS_suppression_salt);
  if (logic_options.suppression && logic_options.suppression_salt.empty()) {
    return Fail(absl::InvalidArgumentError(
        "suppression_salt: required while suppression is on (a secret of the "
        "deployment; "
        "without it erased people's identities could be recovered from their "
        "hashes)"));
  }

  absl::StatusOr<std::unique_ptr<rapport::MysqlPool>> pool =
      rapport::MysqlPool::Create(*db);
  if (!pool.ok()) return Fail(pool.status());

  // The database may still be starting: retry migrations until db_wait runs
  // out.
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_db_wait);
  for (;;) {
    absl::StatusOr<int> applied =
        rapport::ApplyMigrations(**pool, rapport::CustomerMigrations());
    if (applied.ok()) {
      rapport::LogInfo(
          kService, "schema up to date",
          {{"database", db->Redacted()}, {"applied", absl::StrCat(*applied)}});
      break;
    }
    if (!absl::IsUnavailable(applied.status()) || absl::Now() > give_up) {
      return Fail(applied.status());
    }
    rapport::LogInfo(kService, "waiting for the database",
                     {{"error", std::string(applied.status().message())}});
    absl::SleepFor(absl::Seconds(1));
  }

  rapport::customer::MysqlCustomerStore store(pool->get());
  rapport::IdGenerator ids;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> scoring_channel =
      rapport::MakeChannel(absl::GetFlag(FLAGS_scoring_addr),
                           server_options.tls);
  if (!scoring_channel.ok()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("scoring_addr: ", scoring_channel.status().message())));
  }
  rapport::customer::MysqlScoreStore score_store(pool->get());
  rapport::customer::StoredScoreOptions score_options;
  score_options.currency = logic_options.currency;
  rapport::customer::StoredScoreLogic scores(
      &score_store,
      rapport::scoring::v1::ScoringService::NewStub(*scoring_channel), &ids,
      [] { return absl::Now(); }, score_options);
  rapport::customer::CustomerLogic logic(
      &store, &ids, [] { return absl::Now(); }, logic_options, &scores);
  rapport::customer::MysqlImportStore import_store(pool->get(), &store);
  rapport::customer::BulkImportLogic imports(
      &import_store, &logic, &ids, [] { return absl::Now(); }, logic_options);
  rapport::customer::CustomerServiceImpl service(&logic, &imports, &scores);

  absl::StatusOr<std::unique_ptr<rapport::Server>> server =
      rapport::Server::Start(server_options, {&service},
                             [p = pool->get()] { return p->Ping(); });
  if (!server.ok()) return Fail(server.status());
  rapport::WaitForTerminationSignal();
  (*server)->Shutdown();
  return 0;
}
