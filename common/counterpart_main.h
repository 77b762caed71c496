// What the main() of every counterpart service (customer, partner, financial
// community) reads besides the server flags (service_main.h): its database,
// the scoring service and the reporting currency; and opening the database
// with its migrations applied, waiting while it is still starting.
//
//   absl::StatusOr<rapport::CounterpartOptions> options =
//       rapport::ReadCounterpartFlags(defaults);
//   if (!options.ok()) return rapport::FailToStart(defaults, options.status());
//   absl::StatusOr<std::unique_ptr<rapport::MysqlPool>> pool =
//       rapport::OpenDatabase(defaults, *options, migrations);
#ifndef RAPPORT_COMMON_COUNTERPART_MAIN_H_
#define RAPPORT_COMMON_COUNTERPART_MAIN_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth/service_tokens.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/scoring_client.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/service_main.h"

namespace rapport {

struct CounterpartOptions {
  MysqlOptions database;
  // How long to wait at start-up for the database.
  absl::Duration db_wait = absl::Seconds(60);
  // The scoring service: host:port, or a comma-separated list balanced
  // round-robin.
  std::string scoring_addr;
  // ISO 4217 code of the reporting currency.
  std::string currency = "USD";
  // Signs the service's own tokens for its calls to the scoring service.
  std::shared_ptr<auth::ServiceTokens> service_tokens;
};

// The secret a file holds (a mounted Secret, say), for a flag that would
// otherwise carry it in the environment, where every process of the pod
// reads it: the file's text without its final line break. INVALID_ARGUMENT
// naming `setting` when the file cannot be read or holds nothing.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path,
                                           absl::string_view setting);

// The flags' values, checked; errors name the flag. --mysql_uri defaults to
// mysql://rapport@127.0.0.1:3306/<defaults.database>. The service's tokens
// say "service:<name>" with the reader role (all that scoring needs).
absl::StatusOr<CounterpartOptions> ReadCounterpartFlags(
    const ServiceDefaults& defaults);

// A pool on the database with `migrations` applied (on a connection of
// their own, without the pool's limit on a statement's time). While the
// database is unreachable (it may still be starting), retries once a second
// for options.db_wait, then gives up with its error; while another replica
// migrates, waits for it as long as it takes.
absl::StatusOr<std::unique_ptr<MysqlPool>> OpenDatabase(
    const ServiceDefaults& defaults, const CounterpartOptions& options,
    const std::vector<Migration>& migrations);

// The client of the scoring service at options.scoring_addr, calling with
// the service's own tokens and TLS files, in plaintext to another machine
// only where the server may serve so (server.allow_plaintext).
absl::StatusOr<std::unique_ptr<differentiation::GrpcScoringClient>>
ScoringClientFor(const ServerOptions& server,
                 const CounterpartOptions& options);

// Serves `service` as Serve does, ready while `pool` reaches the database;
// on SIGTERM, once the calls have drained, a refresh of `values` under way
// (a rollout, a scale-down) gets what is left of the grace period to finish.
int ServeCounterpart(const ServerOptions& server, grpc::Service* service,
                     MysqlPool* pool, differentiation::Differentiation* values);

}  // namespace rapport

#endif  // RAPPORT_COMMON_COUNTERPART_MAIN_H_
