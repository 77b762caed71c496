// What every Rapport service's main() does, written once: the server flags
// (listen, threads, TLS, logs, ...) with the service's own defaults, their
// RAPPORT_<FLAG> environment overrides, and serving until SIGTERM. A
// service's main.cc is then wiring only.
//
//   int main(int argc, char** argv) {
//     const rapport::ServiceDefaults defaults{.name = "partner", .port =
//     50052}; rapport::InitService(argc, argv, defaults, "The Rapport partner
//     service."); absl::StatusOr<rapport::ServerOptions> server =
//         rapport::ReadServerFlags(defaults, {Service::service_full_name()});
//     if (!server.ok()) return rapport::FailToStart(defaults, server.status());
//     ...
//     return rapport::Serve(*server, {&service}, [&] { return pool->Ping(); });
//   }
#ifndef RAPPORT_COMMON_SERVICE_MAIN_H_
#define RAPPORT_COMMON_SERVICE_MAIN_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/server.h"

namespace rapport {

// A service's defaults for the common flags.
struct ServiceDefaults {
  std::string name;  // for logs and messages, e.g. "customer"
  int port = 0;      // --listen defaults to 127.0.0.1:<port>
  // --metrics_listen defaults to 127.0.0.1:<metrics_port> (Prometheus, HTTP).
  int metrics_port = 0;
  int max_threads = 64;
  // How long running calls (and a counterpart's refresh under way) may take
  // to finish on SIGTERM.
  absl::Duration shutdown_grace = absl::Seconds(30);
  // The database name that --mysql_uri defaults to (counterpart services).
  std::string database;
  // Whether the service takes the tokens the domain services make for their
  // own calls (ServiceAudience): the scoring service only, so that a service's
  // key, if stolen, reads no domain's data.
  bool takes_service_tokens = false;
};

// Call first in main(), before any thread starts: blocks SIGTERM and SIGINT
// (see WaitForTerminationSignal; until Serve, either ends the process at
// once, since there is nothing to drain yet), gives the common flags the
// service's
// defaults, applies every RAPPORT_<FLAG> environment variable to its flag,
// and parses the command line (a flag given there wins). A bad environment
// value exits with status 2 naming the variable.
void InitService(int argc, char** argv, const ServiceDefaults& defaults,
                 absl::string_view description);

// The server flags' values, checked, with the verifier of callers' tokens
// (--jwks_file, --auth_issuer, --auth_audience); errors name the flag.
absl::StatusOr<ServerOptions> ReadServerFlags(
    const ServiceDefaults& defaults,
    std::vector<std::string> health_service_names);

// The `iss` and `aud` of the deployment's tokens (--auth_issuer,
// --auth_audience), for the tokens a service mints for its own calls.
std::string AuthIssuer();
std::string AuthAudience();
// The `aud` of the tokens a domain service makes for its calls to the
// scoring service: --auth_audience with ".scoring" after it. Only a service
// whose defaults say takes_service_tokens accepts it.
std::string ServiceAudience();

// Serves until SIGTERM or SIGINT, then shuts down gracefully; returns the
// process's exit status. After the calls have drained, `drain` (when given)
// is called with the end of the grace period (--shutdown_grace after the
// signal), for work of the service's own that should finish before it
// (a counterpart's refreshes under way).
int Serve(const ServerOptions& options, std::vector<grpc::Service*> services,
          Server::Probe probe = nullptr,
          std::function<void(absl::Time deadline)> drain = nullptr);

// Logs that the service cannot start, and why; returns the exit status 1.
int FailToStart(const ServiceDefaults& defaults, const absl::Status& status);

}  // namespace rapport

#endif  // RAPPORT_COMMON_SERVICE_MAIN_H_
