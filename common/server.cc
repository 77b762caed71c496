#include "common/server.h"

#include <google/protobuf/descriptor.h>
#include <grpc/grpc.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/support/server_interceptor.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <initializer_list>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics/grpc_metrics.h"
#include "common/metrics/metrics.h"
#include "common/reflection.h"
#include "common/status.h"
#include "common/stream_limits.h"

namespace rapport {

// Calls whose server-side deadline has passed are ended with
// DEADLINE_EXCEEDED, as if their client had set that deadline, so that no
// call holds a thread, a connection or memory longer than the server allows,
// whatever deadline its client set, or none. So is a stream whose client
// sends (an import, population scoring) and has sent nothing for its idle
// limit: a stream opened and left silent holds a serving thread too. The
// handler sees the call cancelled (IsCancelled); what it answers afterwards
// goes nowhere.
class CallWatchdog {
 public:
  CallWatchdog() : thread_([this] { Run(); }) {}
  ~CallWatchdog() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    thread_.join();
  }

  // `idle_limit`: how long the client may go without sending its next
  // message (absl::InfiniteDuration(): no bound).
  uint64_t Watch(grpc::ServerContextBase* context, absl::Time expiry,
                 absl::Duration limit, absl::Duration idle_limit,
                 std::string method) {
    absl::MutexLock lock(&mu_);
    const uint64_t id = ++last_id_;
    calls_[id] = {context,    expiry,           limit, absl::Now() + idle_limit,
                  idle_limit, std::move(method)};
    return id;
  }
  // A message of the call arrived; `more` false when the client's stream
  // ended (it sends nothing more, so it is idle no longer).
  void Received(uint64_t id, bool more) {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return;
    it->second.idle_expiry =
        more ? absl::Now() + it->second.idle_limit : absl::InfiniteFuture();
  }
  // After this returns, the watchdog never touches the call's context. When
  // it ended the call, what it told the client.
  std::optional<std::string> Forget(uint64_t id) {
    absl::MutexLock lock(&mu_);
    if (calls_.erase(id) == 1) return std::nullopt;
    auto it = expired_.find(id);
    if (it == expired_.end()) return std::nullopt;
    std::string message = std::move(it->second);
    expired_.erase(it);
    return message;
  }

 private:
  struct Call {
    grpc::ServerContextBase* context;
    absl::Time expiry;
    absl::Duration limit;
    absl::Time idle_expiry;
    absl::Duration idle_limit;
    std::string method;
  };

  void Run() {
    absl::MutexLock lock(&mu_);
    // The methods and messages of the calls ended, logged unlocked.
    std::vector<std::pair<std::string, std::string>> ended;
    while (!mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                                 absl::Milliseconds(250))) {
      const absl::Time now = absl::Now();
      for (auto it = calls_.begin(); it != calls_.end();) {
        const Call& call = it->second;
        if (call.expiry > now && call.idle_expiry > now) {
          ++it;
          continue;
        }
        // Under the lock: Forget() waits, so the call is still alive. The
        // client gets the status in the stream's trailers.
        std::string message =
            call.expiry <= now
                ? absl::StrCat("the call ran past the server's deadline of ",
                               absl::FormatDuration(call.limit))
                : absl::StrCat("the stream sent nothing for ",
                               absl::FormatDuration(call.idle_limit),
                               ", the server's limit for a silent stream");
        grpc_call_cancel_with_status(call.context->c_call(),
                                     GRPC_STATUS_DEADLINE_EXCEEDED,
                                     message.c_str(), nullptr);
        ended.emplace_back(call.method, message);
        expired_[it->first] = std::move(message);
        calls_.erase(it++);
      }
      if (ended.empty()) continue;
      // Written without the lock, which every call takes as it starts and
      // ends: a slow log must not hold calls up.
      mu_.Unlock();
      for (const auto& [method, message] : ended) {
        LogLine("warn", ProcessService(), "call ended by the server",
                {{"method", method}, {"error", message}});
      }
      ended.clear();
      mu_.Lock();
    }
  }

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, Call> calls_ ABSL_GUARDED_BY(mu_);
  // Calls ended by the watchdog that are not forgotten yet, with what their
  // clients were told.
  absl::flat_hash_map<uint64_t, std::string> expired_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

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

metrics::CallType FromServerType(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::CLIENT_STREAMING:
      return metrics::CallType::kClientStream;
    case Type::SERVER_STREAMING:
      return metrics::CallType::kServerStream;
    case Type::BIDI_STREAMING:
      return metrics::CallType::kBidiStream;
    default:
      return metrics::CallType::kUnary;
  }
}

// gRPC's own answer to a request message of a served method that it could
// not decode (protobuf refuses a proto3 text field that is not valid UTF-8,
// and bytes that are not the method's message), or to a unary call that
// sent none: INTERNAL with protobuf's empty initialization error or "No
// payload" (synchronous handlers), UNIMPLEMENTED with no message (callback
// handlers). Rapport's handlers never answer either without a message
// (their INTERNAL errors carry an error id), so this is the caller's
// mistake.
bool IsUndecodedRequest(const grpc::Status& status, bool known_method) {
  switch (status.error_code()) {
    case grpc::StatusCode::INTERNAL:
      return status.error_message().empty() ||
             status.error_message() == "No payload";
    case grpc::StatusCode::UNIMPLEMENTED:
      return known_method && status.error_message().empty();
    default:
      return false;
  }
}

// As every INVALID_ARGUMENT, with its field ("request") in the details.
grpc::Status UndecodedRequestStatus() {
  return ToGrpcStatus(InvalidField(
      "request",
      "cannot be decoded as the method's request message (a text field that "
      "is not valid UTF-8, malformed bytes, or no message)"));
}

// Records every call in the server's metrics (started, handled by code,
// latency) and, when asked, logs one line per finished call: method, peer,
// status code and duration.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  // `known`: the methods the server serves. Others (a path a client made
  // up, answered UNIMPLEMENTED) are counted under one "unknown" method, so
  // that no caller can add series to the metrics without end.
  CallInterceptor(const ServerOptions* options, CallWatchdog* watchdog,
                  StreamLimits* streams,
                  const absl::flat_hash_set<std::string>* known,
                  grpc::experimental::ServerRpcInfo* info)
      : options_(options),
        watchdog_(watchdog),
        streams_(streams),
        info_(info),
        type_(FromServerType(info->type())),
        counted_as_(known->contains(info->method()) ? info->method()
                                                    : "/unknown/unknown") {
    metrics::GrpcCallMetrics::Server().Started(counted_as_, type_);
  }
  ~CallInterceptor() override {
    if (watched_) watchdog_->Forget(watch_id_);
    LeaveStreams();
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::
                POST_RECV_INITIAL_METADATA) &&
        !watched_ && info_->server_context() != nullptr) {
      // Reflection streams (grpcurl's questions about the API, a moment
      // each) get a unary call's time: one left open must not hold a
      // server thread for a stream's hour.
      const bool reflection =
          absl::StartsWith(info_->method(), "/grpc.reflection.");
      const absl::Duration limit =
          type_ == metrics::CallType::kUnary || reflection
              ? options_->max_call_time
              : options_->max_stream_time;
      // A stream whose client sends must keep sending (reflection's
      // questions are bounded by the unary time above).
      client_sends_ =
          !reflection && (type_ == metrics::CallType::kClientStream ||
                          type_ == metrics::CallType::kBidiStream);
      watch_id_ =
          watchdog_->Watch(info_->server_context(), start_ + limit, limit,
                           client_sends_ ? options_->max_stream_idle_time
                                         : absl::InfiniteDuration(),
                           info_->method());
      watched_ = true;
      // A stream may outlive its token (imports and exports run up to
      // max_stream_time): its caller is found as it starts, for the log,
      // and for the streams one caller may run at once.
      if (type_ != metrics::CallType::kUnary) {
        const std::string subject = VerifiedSubject();
        if (options_->log_requests) caller_ = subject;
        // A stream without a valid token is refused by its handler at once;
        // the others count, and one past the bounds is refused here (its
        // handler then finds its stream ended).
        if (!subject.empty()) {
          refused_ = streams_->Enter(subject);
          if (refused_.ok()) {
            streaming_caller_ = subject;
          } else {
            grpc_call_cancel_with_status(
                info_->server_context()->c_call(),
                GRPC_STATUS_RESOURCE_EXHAUSTED,
                std::string(refused_.message()).c_str(), nullptr);
          }
        }
      }
    }
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_MESSAGE)) {
      const bool more = methods->GetRecvMessage() != nullptr;  // not the end
      if (more) metrics::GrpcCallMetrics::Server().Received(counted_as_, type_);
      if (watched_ && client_sends_) watchdog_->Received(watch_id_, more);
    }
    // Counted once sent (as go-grpc-prometheus counts): not an answer to a
    // client that had gone, nor a write to a cancelled stream.
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_SEND_MESSAGE) &&
        methods->GetSendMessageStatus()) {
      metrics::GrpcCallMetrics::Server().Sent(counted_as_, type_);
    }
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      std::optional<std::string> expired;  // what the watchdog said
      if (watched_) {
        expired = watchdog_->Forget(watch_id_);
        watched_ = false;
      }
      // What the client got: the watchdog's answer, when it ended the call;
      // for a call that ended before its answer (the client cancelled it,
      // its deadline passed, its connection went), not the handler's.
      // gRPC's own answer to a request it could not decode goes out as
      // the caller's mistake; the log keeps what gRPC said.
      const grpc::Status answered = methods->GetSendStatus();
      const bool undecoded =
          IsUndecodedRequest(answered, counted_as_ == info_->method());
      if (undecoded) methods->ModifySendStatus(UndecodedRequestStatus());
      LeaveStreams();
      grpc::Status status =
          expired ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, *expired)
          : !refused_.ok() ? ToGrpcStatus(refused_)
          : undecoded      ? UndecodedRequestStatus()
                           : answered;
      if (const grpc::ServerContextBase* context = info_->server_context();
          !expired && refused_.ok() && context != nullptr &&
          context->IsCancelled()) {
        status = context->deadline() <= std::chrono::system_clock::now()
                     ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                    "past the caller's deadline")
                     : grpc::Status(grpc::StatusCode::CANCELLED,
                                    "ended before its answer");
      }
      const absl::Duration elapsed = absl::Now() - start_;
      metrics::GrpcCallMetrics::Server().Handled(counted_as_, type_,
                                                 status.error_code(), elapsed);
      if (options_->log_requests) Log(status, answered, elapsed);
    }
    methods->Proceed();
  }

 private:
  // The subject of the call's token, when the request log is on and the
  // token verifies now; else "".
  std::string Caller() const {
    return options_->log_requests ? VerifiedSubject() : "";
  }

  // Ends the count of a stream Enter counted (once).
  void LeaveStreams() {
    if (streaming_caller_.empty()) return;
    streams_->Leave(streaming_caller_);
    streaming_caller_.clear();
  }

  // The subject of the call's token when it verifies now; else "".
  std::string VerifiedSubject() const {
    const grpc::ServerContextBase* context = info_->server_context();
    if (options_->verifier == nullptr || context == nullptr) return "";
    const auto& metadata = context->client_metadata();
    auto it = metadata.find("authorization");
    if (it == metadata.end()) return "";
    absl::StatusOr<auth::Principal> caller = options_->verifier->Verify(
        absl::string_view(it->second.data(), it->second.size()));
    return caller.ok() ? caller->subject : "";
  }

  // `status` is what the caller got, `answered` what the handler said (they
  // differ for a call that ended before its answer).
  void Log(const grpc::Status& status, const grpc::Status& answered,
           absl::Duration elapsed) {
    LogFields fields = {
        {"method", info_->method()},
        {"code", CodeName(status.error_code())},
        {"ms", absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(elapsed))}};
    if (answered.error_code() != status.error_code() ||
        answered.error_message() != status.error_message()) {
      fields.push_back({"handler_code", CodeName(answered.error_code())});
      if (!answered.ok())
        fields.push_back({"handler_error", answered.error_message()});
    }
    if (const grpc::ServerContextBase* context = info_->server_context()) {
      fields.push_back({"peer", context->peer()});
      // Who called, reads too (the audit log has the changes only): the
      // token the call verified, found again in the verifier's cache. A
      // refused unary call's token is not verified twice (a flood of bad
      // ones costs a signature check each, not two).
      if (caller_.empty() &&
          status.error_code() != grpc::StatusCode::UNAUTHENTICATED) {
        caller_ = Caller();
      }
      if (!caller_.empty()) fields.push_back({"caller", caller_});
    }
    if (!status.ok()) fields.push_back({"error", status.error_message()});
    LogLine(status.ok() ? "info" : "warn", options_->service_name, "request",
            fields);
  }

  const ServerOptions* options_;
  CallWatchdog* watchdog_;
  StreamLimits* streams_;
  grpc::experimental::ServerRpcInfo* info_;
  const metrics::CallType type_;
  const absl::string_view counted_as_;  // the method, or "/unknown/unknown"
  const absl::Time start_ = absl::Now();
  bool watched_ = false;
  uint64_t watch_id_ = 0;
  bool client_sends_ = false;  // a stream bounded by max_stream_idle_time
  std::string caller_;         // a stream's, found as it started
  // A stream's caller while it counts in streams_; empty when it does not.
  std::string streaming_caller_;
  absl::Status refused_;  // a stream past streams_'s bounds
};

class CallInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  CallInterceptorFactory(const ServerOptions* options, CallWatchdog* watchdog,
                         StreamLimits* streams)
      : options_(options), watchdog_(watchdog), streams_(streams) {
    // The services' methods, from their descriptors, and the standard ones,
    // each with its series in the metrics from the start.
    metrics::GrpcCallMetrics& metrics = metrics::GrpcCallMetrics::Server();
    for (const std::string& name : options->health_service_names) {
      const google::protobuf::ServiceDescriptor* service =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              name);
      if (service == nullptr) continue;
      for (std::string& full : metrics.InitializeService(*service)) {
        known_.insert(std::move(full));
      }
    }
    using Type = metrics::CallType;
    for (const auto& [method, type] :
         std::initializer_list<std::pair<const char*, Type>>{
             {"/grpc.health.v1.Health/Check", Type::kUnary},
             {"/grpc.health.v1.Health/Watch", Type::kServerStream},
             {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
              Type::kBidiStream},
             {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
              Type::kBidiStream}}) {
      metrics.Initialize(method, type);
      known_.insert(method);
    }
  }
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(options_, watchdog_, streams_, &known_, info);
  }

 private:
  const ServerOptions* options_;
  CallWatchdog* watchdog_;
  StreamLimits* streams_;
  absl::flat_hash_set<std::string> known_;
};

// Writes `port` to `path` whole or not at all (a reader polls for it).
void WritePortFile(const std::string& path, int port) {
  std::ofstream out(path + ".tmp");
  out << port << "\n";
  out.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

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
  if (!metrics_listen.empty()) {
    if (absl::Status s = metrics::Endpoint::CheckListen(metrics_listen);
        !s.ok()) {
      return s;
    }
  }
  const bool loopback = IsLoopbackAddress(listen);
  if (!loopback && tls.cert_file.empty() && !allow_plaintext) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen: ", listen,
        " is reached from other machines, and without TLS every call's "
        "bearer token would cross the network in the clear: give tls_cert "
        "and tls_key, or allow_plaintext where the network encrypts by "
        "itself"));
  }
  if (max_threads < 2)
    return absl::InvalidArgumentError("max_threads: must be at least 2");
  if (max_message_bytes < (64 << 10)) {
    return absl::InvalidArgumentError(
        "max_message_bytes: must be at least 65536");
  }
  if (max_call_time <= absl::ZeroDuration() ||
      max_stream_time <= absl::ZeroDuration() ||
      max_stream_idle_time <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "max_call_time, max_stream_time and max_stream_idle_time: must be "
        "positive");
  }
  if (max_streams < 0 || max_streams_per_caller < 0) {
    return absl::InvalidArgumentError(
        "max_streams and max_streams_per_caller: must not be negative (0: "
        "from max_threads)");
  }
  if (StreamsAtOnce() >= max_threads) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_streams: ", StreamsAtOnce(), " must be less than max_threads (",
        max_threads, "), so that streams leave threads for short calls"));
  }
  if (max_streams_per_connection < 1) {
    return absl::InvalidArgumentError(
        "max_streams_per_connection: must be at least 1");
  }
  if (shutdown_grace < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("shutdown_grace: must not be negative");
  }
  if (verifier == nullptr) {
    return absl::InvalidArgumentError(
        "jwks_file: required (every call is authenticated)");
  }
  return absl::OkStatus();
}

int Server::streams_running() const { return streams_->running(); }

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

  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<metrics::Endpoint>> endpoint =
        metrics::Endpoint::Start(options.metrics_listen);
    if (!endpoint.ok()) return endpoint.status();
    server->metrics_ = *std::move(endpoint);
  }

  server->watchdog_ = std::make_unique<CallWatchdog>();
  server->streams_ = std::make_unique<StreamLimits>(options.StreamsAtOnce(),
                                                    options.StreamsPerCaller());

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
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_streams_per_connection);
  // Dead peers are noticed: a ping every minute on an idle connection, gone
  // after 20 s without an answer. Clients may ping every 10 s (Rapport's
  // channels ping every 30 s, common/channel.cc).
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20 * 1000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10 * 1000);
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
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<CallInterceptorFactory>(
      &server->options_, server->watchdog_.get(), server->streams_.get()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("listen: cannot bind ", options.listen));
  }

  // Register each service by its full name, so health answers for it too.
  grpc::HealthCheckServiceInterface* health =
      server->server_->GetHealthCheckService();
  // Nothing, the server as a whole included, reads SERVING before the first
  // probe of the dependencies has answered; liveness does at once.
  server->SetReady(false);
  health->SetServingStatus(std::string(kLivenessName), true);
  server->health_thread_ = std::thread([s = server.get()] { s->PollHealth(); });
  // The first probe's answer before the port files say "serving" (a probe
  // that hangs gives up on its own timeout; the wait is bounded all the same).
  server->probed_.WaitForNotificationWithTimeout(absl::Seconds(10));

  // The metrics port first: a port file's appearance says "serving".
  if (!options.metrics_port_file.empty()) {
    WritePortFile(options.metrics_port_file, server->metrics_port());
  }
  if (!options.port_file.empty()) {
    WritePortFile(options.port_file, server->port_);
  }
  LogInfo(options.service_name, "serving",
          {{"listen", options.listen},
           {"port", absl::StrCat(server->port_)},
           {"metrics_port", absl::StrCat(server->metrics_port())},
           {"tls", options.tls.enabled() ? "on" : "off"}});
  return server;
}

void Server::SetReady(bool serving) {
  // Name by name: SetServingStatus(bool) would set the liveness name too.
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus("", serving);
  for (const std::string& name : options_.health_service_names) {
    health->SetServingStatus(name, serving);
  }
}

void Server::PollHealth() {
  static auto& keys_stale =
      prometheus::BuildGauge()
          .Name("rapport_auth_keys_stale")
          .Help(
              "1 while the JWKS file cannot be read again: the keys read "
              "before it changed are still trusted, a removed one included")
          .Register(metrics::Registry())
          .Add({});
  static auto& signature_checks =
      prometheus::BuildCounter()
          .Name("rapport_auth_signature_checks_total")
          .Help(
              "Token signatures checked (a token verified before costs none): "
              "near the call rate, callers send new or forged tokens")
          .Register(metrics::Registry())
          .Add({});
  bool last = true;
  bool first = true;
  bool keys_ok = true;
  do {
    // Calls go on with the keys read before (an outage would be worse), but
    // an operator who took a key out must learn that it is still trusted.
    if (options_.verifier != nullptr) {
      const absl::Status keys = options_.verifier->ReloadStatus();
      keys_stale.Set(keys.ok() ? 0 : 1);
      signature_checks.Increment(
          static_cast<double>(options_.verifier->TakeNewSignatureChecks()));
      if (keys.ok() != keys_ok) {
        keys_ok = keys.ok();
        LogLine(keys_ok ? "info" : "error", options_.service_name,
                keys_ok ? "keys read again"
                        : "cannot read the keys again; those read before "
                          "stay trusted",
                keys_ok ? LogFields{}
                        : LogFields{{"error", std::string(keys.message())}});
      }
    }
    bool serving = true;
    absl::Status status;
    if (probe_) {
      status = probe_();
      serving = status.ok();
    }
    if (serving != last || first) {
      SetReady(serving);
      if (!first || !serving) {
        LogLine(serving ? "info" : "error", options_.service_name,
                serving ? "ready: dependencies reachable" : "not ready",
                serving ? LogFields{}
                        : LogFields{{"error", std::string(status.message())}});
      }
      last = serving;
      if (first) probed_.Notify();
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
  // NOT_SERVING at once, for every name (later probes cannot undo it), so
  // balancers stop sending calls here while the probe thread ends.
  server_->GetHealthCheckService()->Shutdown();
  // The drain starts now, not after a probe under way (a database ping of
  // up to seconds) has ended; the probe thread is joined once calls are.
  stopping_.Notify();
  server_->Shutdown(std::chrono::system_clock::now() +
                    absl::ToChronoMilliseconds(options_.shutdown_grace));
  server_->Wait();
  if (health_thread_.joinable()) health_thread_.join();
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
