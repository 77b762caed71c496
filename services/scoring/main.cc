// rapport-scoring: flags and environment -> options -> the common server
// runner. Stateless: no database; run as many replicas as the load needs.
#include "absl/time/clock.h"
#include "common/call_guard.h"
#include "common/service_main.h"
#include "services/scoring/scoring_service.h"

int main(int argc, char** argv) {
  const rapport::ServiceDefaults defaults{.name = "scoring",
                                          .port = 50054,
                                          .metrics_port = 9454,
                                          .max_threads = 16,
                                          .shutdown_grace = absl::Seconds(30)};
  rapport::InitService(argc, argv, defaults,
                       "The Rapport scoring service (stateless).");
  absl::StatusOr<rapport::ServerOptions> server = rapport::ReadServerFlags(
      defaults, {rapport::scoring::v1::ScoringService::service_full_name()});
  if (!server.ok()) return rapport::FailToStart(defaults, server.status());
  const rapport::CallGuard guard(server->verifier.get(),
                                 rapport::scoring::ScoringMethodRoles());
  rapport::scoring::ScoringServiceImpl service(&guard,
                                               [] { return absl::Now(); });
  return rapport::Serve(*server, {&service});
}
