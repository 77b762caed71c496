// Metrics of gRPC calls, served and made, under the names of
// go-grpc-prometheus, so that existing dashboards and alerts apply:
//
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}
//   (histogram)
//
// and the same with `client` for calls this process makes (a domain service
// calling the scoring service). The server side is recorded by the server's
// interceptor (common/server.cc); a channel gets the client side from
// ClientInterceptors().
#ifndef RAPPORT_COMMON_METRICS_GRPC_METRICS_H_
#define RAPPORT_COMMON_METRICS_GRPC_METRICS_H_

#include <grpcpp/support/client_interceptor.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"

namespace google::protobuf {
class ServiceDescriptor;
}  // namespace google::protobuf

namespace rapport::metrics {

// grpc_type's values.
enum class CallType { kUnary, kClientStream, kServerStream, kBidiStream };

class GrpcCallMetrics {
 public:
  // The process's metrics of calls it serves, and of calls it makes.
  static GrpcCallMetrics& Server();
  static GrpcCallMetrics& Client();

  // Makes every series of a method the server serves, at zero (its count of
  // each status code included), as go-grpc-prometheus's InitializeMetrics
  // does: a rate or an alert on calls that never happened reads 0, not
  // nothing.
  void Initialize(absl::string_view full_method, CallType type);
  // Initialize for every method of `service`, each of its type; returns their
  // full names ("/package.Service/Method").
  std::vector<std::string> InitializeService(
      const google::protobuf::ServiceDescriptor& service);

  // `full_method` is gRPC's "/package.Service/Method".
  void Started(absl::string_view full_method, CallType type);
  void Handled(absl::string_view full_method, CallType type,
               grpc::StatusCode code, absl::Duration elapsed);
  // A message of the call received, or sent (a stream's each).
  void Received(absl::string_view full_method, CallType type);
  void Sent(absl::string_view full_method, CallType type);

 private:
  // The series of one method, made on its first call; a code's counter on
  // its first occurrence.
  struct Method {
    prometheus::Counter* started = nullptr;
    prometheus::Counter* received = nullptr;
    prometheus::Counter* sent = nullptr;
    prometheus::Histogram* seconds = nullptr;
    prometheus::Counter* handled[17] = {};
  };

  explicit GrpcCallMetrics(absl::string_view side);
  Method& Find(absl::string_view full_method, CallType type);
  prometheus::Counter& HandledCounter(Method& method,
                                      absl::string_view full_method,
                                      CallType type, grpc::StatusCode code);

  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Counter>& received_;
  prometheus::Family<prometheus::Counter>& sent_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_
      ABSL_GUARDED_BY(mu_);
};

// The interceptors that record a channel's calls in GrpcCallMetrics::Client(),
// for grpc::experimental::CreateCustomChannelWithInterceptors.
std::vector<
    std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
ClientInterceptors();

}  // namespace rapport::metrics

#endif  // RAPPORT_COMMON_METRICS_GRPC_METRICS_H_
