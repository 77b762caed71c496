#include "common/metrics/grpc_metrics.h"

#include <google/protobuf/descriptor.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rapport::metrics {
namespace {

const char* TypeName(CallType type) {
  switch (type) {
    case CallType::kUnary:
      return "unary";
    case CallType::kClientStream:
      return "client_stream";
    case CallType::kServerStream:
      return "server_stream";
    case CallType::kBidiStream:
      return "bidi_stream";
  }
  return "unary";
}

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "Canceled",
                                       "Unknown",
                                       "InvalidArgument",
                                       "DeadlineExceeded",
                                       "NotFound",
                                       "AlreadyExists",
                                       "PermissionDenied",
                                       "ResourceExhausted",
                                       "FailedPrecondition",
                                       "Aborted",
                                       "OutOfRange",
                                       "Unimplemented",
                                       "Internal",
                                       "Unavailable",
                                       "DataLoss",
                                       "Unauthenticated"};
  const int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "Unknown";
}

// "/package.Service/Method" -> ("package.Service", "Method").
std::pair<std::string, std::string> SplitMethod(absl::string_view full) {
  if (!full.empty() && full.front() == '/') full.remove_prefix(1);
  const size_t slash = full.find('/');
  if (slash == absl::string_view::npos) return {"unknown", std::string(full)};
  return {std::string(full.substr(0, slash)),
          std::string(full.substr(slash + 1))};
}

prometheus::Family<prometheus::Counter>& CounterFamily(
    const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(Registry());
}

CallType FromClientType(grpc::experimental::ClientRpcInfo::Type type) {
  using Type = grpc::experimental::ClientRpcInfo::Type;
  switch (type) {
    case Type::CLIENT_STREAMING:
      return CallType::kClientStream;
    case Type::SERVER_STREAMING:
      return CallType::kServerStream;
    case Type::BIDI_STREAMING:
      return CallType::kBidiStream;
    default:
      return CallType::kUnary;
  }
}

// Records one client call: started when made, handled with its status.
class ClientInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit ClientInterceptor(grpc::experimental::ClientRpcInfo* info)
      : method_(info->method()), type_(FromClientType(info->type())) {
    GrpcCallMetrics::Client().Started(method_, type_);
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    // Counted once sent: not a write to a stream that had ended. (A unary
    // request is sent in one batch with the wait for the answer, which gRPC
    // reports as a whole: it counts as sent, as go-grpc-prometheus counts
    // it, before the call.)
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_SEND_MESSAGE) &&
        methods->GetSendMessageStatus()) {
      GrpcCallMetrics::Client().Sent(method_, type_);
    }
    // Also reached when a stream ends, without a message.
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() != nullptr) {
      GrpcCallMetrics::Client().Received(method_, type_);
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_STATUS)) {
      GrpcCallMetrics::Client().Handled(method_, type_,
                                        methods->GetRecvStatus()->error_code(),
                                        absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  const CallType type_;
  const absl::Time start_ = absl::Now();
};

class ClientInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo* info) override {
    return new ClientInterceptor(info);
  }
};

}  // namespace

GrpcCallMetrics& GrpcCallMetrics::Server() {
  static auto* const metrics = new GrpcCallMetrics("server");
  return *metrics;
}

GrpcCallMetrics& GrpcCallMetrics::Client() {
  static auto* const metrics = new GrpcCallMetrics("client");
  return *metrics;
}

GrpcCallMetrics::GrpcCallMetrics(absl::string_view side)
    : started_(
          CounterFamily(absl::StrCat("grpc_", side, "_started_total"),
                        absl::StrCat("RPCs started on the ", side, " side"))),
      handled_(CounterFamily(absl::StrCat("grpc_", side, "_handled_total"),
                             absl::StrCat("RPCs completed on the ", side,
                                          " side, by status code"))),
      received_(CounterFamily(
          absl::StrCat("grpc_", side, "_msg_received_total"),
          absl::StrCat("Messages received on the ", side, " side"))),
      sent_(
          CounterFamily(absl::StrCat("grpc_", side, "_msg_sent_total"),
                        absl::StrCat("Messages sent on the ", side, " side"))),
      seconds_(prometheus::BuildHistogram()
                   .Name(absl::StrCat("grpc_", side, "_handling_seconds"))
                   .Help(absl::StrCat("Latency of RPCs completed on the ", side,
                                      " side, in seconds"))
                   .Register(Registry())) {}

GrpcCallMetrics::Method& GrpcCallMetrics::Find(absl::string_view full_method,
                                               CallType type) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = methods_.find(full_method);
    if (it != methods_.end()) return *it->second;
  }
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Method>& method = methods_[full_method];
  if (method == nullptr) {
    const auto [service, name] = SplitMethod(full_method);
    const prometheus::Labels labels = {{"grpc_type", TypeName(type)},
                                       {"grpc_service", service},
                                       {"grpc_method", name}};
    method = std::make_unique<Method>();
    method->started = &started_.Add(labels);
    method->received = &received_.Add(labels);
    method->sent = &sent_.Add(labels);
    method->seconds = &seconds_.Add(labels, SecondsBuckets());
  }
  return *method;
}

prometheus::Counter& GrpcCallMetrics::HandledCounter(
    Method& method, absl::string_view full_method, CallType type,
    grpc::StatusCode code) {
  const int i = static_cast<int>(code);
  const int slot = i >= 0 && i <= 16 ? i : static_cast<int>(grpc::UNKNOWN);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (method.handled[slot] != nullptr) return *method.handled[slot];
  }
  absl::MutexLock lock(&mu_);
  if (method.handled[slot] == nullptr) {
    const auto [service, name] = SplitMethod(full_method);
    method.handled[slot] = &handled_.Add(
        {{"grpc_type", TypeName(type)},
         {"grpc_service", service},
         {"grpc_method", name},
         {"grpc_code", CodeName(static_cast<grpc::StatusCode>(slot))}});
  }
  return *method.handled[slot];
}

void GrpcCallMetrics::Initialize(absl::string_view full_method, CallType type) {
  Method& method = Find(full_method, type);
  for (int code = 0; code <= 16; ++code) {
    HandledCounter(method, full_method, type,
                   static_cast<grpc::StatusCode>(code));
  }
}

std::vector<std::string> GrpcCallMetrics::InitializeService(
    const google::protobuf::ServiceDescriptor& service) {
  std::vector<std::string> names;
  for (int i = 0; i < service.method_count(); ++i) {
    const google::protobuf::MethodDescriptor& method = *service.method(i);
    CallType type =
        method.server_streaming() ? CallType::kServerStream : CallType::kUnary;
    if (method.client_streaming()) {
      type = method.server_streaming() ? CallType::kBidiStream
                                       : CallType::kClientStream;
    }
    names.push_back(absl::StrCat("/", service.full_name(), "/", method.name()));
    Initialize(names.back(), type);
  }
  return names;
}

void GrpcCallMetrics::Started(absl::string_view full_method, CallType type) {
  Find(full_method, type).started->Increment();
}

void GrpcCallMetrics::Received(absl::string_view full_method, CallType type) {
  Find(full_method, type).received->Increment();
}

void GrpcCallMetrics::Sent(absl::string_view full_method, CallType type) {
  Find(full_method, type).sent->Increment();
}

void GrpcCallMetrics::Handled(absl::string_view full_method, CallType type,
                              grpc::StatusCode code, absl::Duration elapsed) {
  Method& method = Find(full_method, type);
  HandledCounter(method, full_method, type, code).Increment();
  method.seconds->Observe(absl::ToDoubleSeconds(elapsed));
}

std::vector<
    std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ClientInterceptors() {
  std::vector<
      std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(std::make_unique<ClientInterceptorFactory>());
  return interceptors;
}

}  // namespace rapport::metrics
