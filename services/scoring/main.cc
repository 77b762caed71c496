// rapport-scoring: flags and environment -> options -> the common server
// runner. Stateless: no database; run as many replicas as the load needs.
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "common/env_flags.h"
#include "common/log.h"
#include "common/server.h"
#include "services/scoring/scoring_service.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:50054",
          "host:port to serve on; port 0 picks one");
ABSL_FLAG(int, max_threads, 16, "most threads serving calls");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(30),
          "how long running calls may take to finish on SIGTERM");
ABSL_FLAG(bool, log_requests, true, "log one line per request");
ABSL_FLAG(std::string, port_file, "",
          "write the chosen port to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this server (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of this server");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA that client certificates must chain to (mutual TLS)");

int main(int argc, char** argv) {
  rapport::BlockTerminationSignals();
  absl::SetProgramUsageMessage(
      "The Rapport scoring service (stateless).\n"
      "Every flag may also come from the environment as RAPPORT_<FLAG>, e.g. "
      "RAPPORT_LISTEN.");
  rapport::ApplyEnvOverrides({"listen", "max_threads", "shutdown_grace",
                              "log_requests", "port_file", "tls_cert",
                              "tls_key", "tls_ca"});
  absl::ParseCommandLine(argc, argv);

  rapport::ServerOptions options;
  options.service_name = "scoring";
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_threads = absl::GetFlag(FLAGS_max_threads);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.log_requests = absl::GetFlag(FLAGS_log_requests);
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                 absl::GetFlag(FLAGS_tls_ca)};
  options.health_service_names = {
      rapport::scoring::v1::ScoringService::service_full_name()};

  rapport::scoring::ScoringServiceImpl service([] { return absl::Now(); });
  absl::StatusOr<std::unique_ptr<rapport::Server>> server =
      rapport::Server::Start(options, {&service});
  if (!server.ok()) {
    rapport::LogError("scoring", "cannot start",
                      {{"error", std::string(server.status().message())}});
    return 1;
  }
  rapport::WaitForTerminationSignal();
  (*server)->Shutdown();
  return 0;
}
