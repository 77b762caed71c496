// Runs a gRPC server the way every Rapport service does.
//
// A Server serves the given services plus the standard health service (open
// to all, for probes) and server reflection (for any valid token), counts and
// times every call in Prometheus metrics (served over HTTP at
// `metrics_listen`), logs one structured line per request, and shuts down
// gracefully (in-flight calls get `shutdown_grace` to finish). An optional
// readiness probe (for example a database ping) is polled every second: while
// it fails, health answers NOT_SERVING for the whole server and each service.
//
//   int main(int argc, char** argv) {
//     rapport::BlockTerminationSignals();  // first, before any thread starts
//     ...
//     auto server = rapport::Server::Start(options, {&service}, [&] { return
//     pool->Ping(); }); if (!server.ok()) { ...; return 1; }
//     rapport::WaitForTerminationSignal();
//     (*server)->Shutdown();
//   }
#ifndef RAPPORT_COMMON_SERVER_H_
#define RAPPORT_COMMON_SERVER_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/api_names.h"
#include "common/auth/jwt.h"
#include "common/metrics/metrics.h"
#include "common/tls.h"

namespace rapport {

struct ServerOptions {
  std::string service_name;                // for logs, e.g. "customer"
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  int max_threads = 64;                    // bound on threads serving calls
  absl::Duration shutdown_grace = absl::Seconds(10);
  bool log_requests = true;
  std::string
      port_file;  // when set, the chosen port is written there once serving
  // Bounds on what callers may take: the largest message a call may send, a
  // server-side deadline for every call whatever the client asked (unary
  // calls, and streams such as imports and exports), and the calls one
  // connection may run at once.
  int max_message_bytes = 4 << 20;
  absl::Duration max_call_time = absl::Seconds(60);
  absl::Duration max_stream_time = absl::Hours(1);
  // A stream whose client sends (an import, population scoring) and from
  // which the server has received no message for this long is ended the same
  // way (the time the handler spends between two reads counts too: the
  // scoring service's wait for a population slot, up to --population_wait,
  // must be shorter).
  absl::Duration max_stream_idle_time = absl::Minutes(10);
  int max_streams_per_connection = 100;
  // Streaming calls the server runs at once, all callers together, and one
  // caller (a token's subject); 0: three quarters of max_threads, and a
  // quarter of them (StreamsAtOnce, StreamsPerCaller). Each holds a thread
  // while its client keeps it open, so the rest stay for short calls.
  int max_streams = 0;
  int max_streams_per_caller = 0;
  // host:port of the Prometheus metrics endpoint (HTTP, /metrics); empty: none.
  std::string metrics_listen;
  // When set, the metrics endpoint's port is written there once serving.
  std::string metrics_port_file;
  TlsOptions tls;  // empty: plaintext
  // Plaintext on an address other machines reach (bearer tokens in the
  // clear) is refused unless this is set: for a network that encrypts by
  // itself (a service mesh) or a trusted one.
  bool allow_plaintext = false;
  // Full names of the services, e.g. "rapport.customer.v1.CustomerService",
  // that health reports on besides the whole server (""), and that
  // reflection describes.
  // Health also answers for kLivenessName: SERVING from the start until
  // shutdown, whatever the dependencies, so that a liveness probe tells a
  // process that answers from one that hangs without restarting every
  // replica while the database is away.
  std::vector<std::string> health_service_names;
  // Verifies the bearer tokens of reflection calls (the services check their
  // own calls with a CallGuard on the same verifier). Required.
  std::shared_ptr<const auth::TokenVerifier> verifier;

  // Checks the values; the error names the setting.
  absl::Status Validate() const;

  int StreamsAtOnce() const {
    return max_streams > 0 ? max_streams : std::max(1, max_threads * 3 / 4);
  }
  int StreamsPerCaller() const {
    return max_streams_per_caller > 0 ? max_streams_per_caller
                                      : std::max(1, max_threads / 4);
  }
};

class CallWatchdog;  // server.cc: cancels calls past the server's deadline
class StreamLimits;  // stream_limits.h

class Server {
 public:
  using Probe = std::function<absl::Status()>;

  // Binds, starts serving, and starts polling `probe` (may be empty).
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServerOptions& options, std::vector<grpc::Service*> services,
      Probe probe = nullptr);
  ~Server();

  // The port the server listens on (useful with port 0).
  int port() const { return port_; }
  // The port of the metrics endpoint; 0 without one.
  int metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  // The streaming calls that count against max_streams now.
  int streams_running() const;
  // Stops accepting calls, lets running ones finish within the grace period.
  void Shutdown();

 private:
  Server() = default;
  // Sets health's answer for the server ("") and each of its services, not
  // for kLivenessName.
  void SetReady(bool serving);
  void PollHealth();

  ServerOptions options_;
  std::unique_ptr<metrics::Endpoint> metrics_;
  std::unique_ptr<CallWatchdog> watchdog_;
  std::unique_ptr<StreamLimits> streams_;
  // Before server_, so that they outlive it.
  std::vector<std::unique_ptr<grpc::Service>> reflection_;
  std::unique_ptr<grpc::Server> server_;
  Probe probe_;
  int port_ = 0;
  absl::Notification stopping_;
  absl::Notification probed_;  // the first probe has answered
  std::thread health_thread_;
  bool shut_down_ = false;
};

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts
// later; call first thing in main().
void BlockTerminationSignals();

// Waits until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace rapport

#endif  // RAPPORT_COMMON_SERVER_H_
