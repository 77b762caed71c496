#include "common/server.h"

#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <signal.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/reflection.h"

namespace rapport {
namespace {

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

// Logs one line per finished call: method, peer, status code and duration.
class RequestLogInterceptor final : public grpc::experimental::Interceptor {
 public:
  RequestLogInterceptor(const std::string* service,
                        grpc::experimental::ServerRpcInfo* info)
      : service_(service), info_(info), start_(absl::Now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      LogFields fields = {
          {"method", info_->method()},
          {"code", CodeName(status.error_code())},
          {"ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(
                                             absl::Now() - start_))}};
      if (info_->server_context() != nullptr) {
        fields.push_back({"peer", info_->server_context()->peer()});
      }
      if (!status.ok()) fields.push_back({"error", status.error_message()});
      LogLine(status.ok() ? "info" : "warn", *service_, "request", fields);
    }
    methods->Proceed();
  }

 private:
  const std::string* service_;
  grpc::experimental::ServerRpcInfo* info_;
  absl::Time start_;
};

class RequestLogFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RequestLogFactory(std::string service)
      : service_(std::move(service)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RequestLogInterceptor(&service_, info);
  }

 private:
  std::string service_;
};

}  // namespace

absl::Status ServerOptions::Validate() const {
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen: want host:port with port 0..65535, got \"", listen, "\""));
  }
  if (max_threads < 2)
    return absl::InvalidArgumentError("max_threads: must be at least 2");
  if (shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("shutdown_grace: must not be negative");
  }
  if (verifier == nullptr) {
    return absl::InvalidArgumentError(
        "jwks_file: required (every call is authenticated)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServerOptions& options, std::vector<grpc::Service*> services,
    Probe probe) {
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  // Debian builds Abseil without NDEBUG, which leaves Mutex deadlock detection
  // on: every lock, gRPC's included, then updates one process-wide lock graph
  // under a global spin lock. Unit tests keep it; a server turns it off.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      MakeServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();

  grpc::EnableDefaultHealthCheckService(true);

  std::unique_ptr<Server> server(new Server());
  server->options_ = options;
  server->probe_ = std::move(probe);

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &server->port_);
  grpc::ResourceQuota quota(absl::StrCat("rapport-", options.service_name));
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  // Keep the threads that served a call as pollers instead of letting gRPC end
  // them and start new ones: with its default of two pollers, a busy server
  // spends its time creating and joining threads.
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(
      grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, options.max_threads);
  builder.SetMaxReceiveMessageSize(64 << 20);
  // A second server on a port in use must fail, not share the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients reconnect now and then, so replicas added by an autoscaler get
  // their share of long-lived channels; running calls get a grace period.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, 5 * 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             60 * 60 * 1000);
  for (grpc::Service* service : services) builder.RegisterService(service);
  server->reflection_ = NewReflectionServices(options.verifier.get(),
                                              options.health_service_names);
  for (const auto& service : server->reflection_)
    builder.RegisterService(service.get());
  if (options.log_requests) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        logs;
    logs.push_back(std::make_unique<RequestLogFactory>(options.service_name));
    builder.experimental().SetInterceptorCreators(std::move(logs));
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("listen: cannot bind ", options.listen));
  }

  // Register each service by its full name, so health answers for it too.
  grpc::HealthCheckServiceInterface* health =
      server->server_->GetHealthCheckService();
  for (const std::string& name : options.health_service_names) {
    health->SetServingStatus(name, false);
  }
  server->health_thread_ = std::thread([s = server.get()] { s->PollHealth(); });

  if (!options.port_file.empty()) {
    std::ofstream out(options.port_file + ".tmp");
    out << server->port_ << "\n";
    out.close();
    std::rename((options.port_file + ".tmp").c_str(),
                options.port_file.c_str());
  }
  LogInfo(options.service_name, "serving",
          {{"listen", options.listen},
           {"port", absl::StrCat(server->port_)},
           {"tls", options.tls.enabled() ? "on" : "off"}});
  return server;
}

void Server::PollHealth() {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  bool last = true;
  bool first = true;
  do {
    bool serving = true;
    absl::Status status;
    if (probe_) {
      status = probe_();
      serving = status.ok();
    }
    if (serving != last || first) {
      health->SetServingStatus(serving);
      if (!first || !serving) {
        LogLine(serving ? "info" : "error", options_.service_name,
                serving ? "ready: dependencies reachable" : "not ready",
                serving ? LogFields{}
                        : LogFields{{"error", std::string(status.message())}});
      }
      last = serving;
      first = false;
    }
  } while (!stopping_.WaitForNotificationWithTimeout(absl::Seconds(1)));
}

void Server::Shutdown() {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  LogInfo(options_.service_name, "shutting down",
          {{"grace_seconds",
            absl::StrCat(absl::ToInt64Seconds(options_.shutdown_grace))}});
  stopping_.Notify();
  if (health_thread_.joinable()) health_thread_.join();
  server_->GetHealthCheckService()->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  server_->Wait();
  LogInfo(options_.service_name, "stopped");
}

Server::~Server() { Shutdown(); }

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

}  // namespace rapport
