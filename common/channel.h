// Client channels to Rapport services.
//
// `address` is a gRPC target. A comma-separated list of host:port pairs, with
// or without the "ipv4:" scheme ("ipv4:127.0.0.1:50054,127.0.0.1:50064"), is
// balanced round-robin over all of them, which is how a caller spreads load
// over several replicas without a load balancer in between.
//
//   RAPPORT_ASSIGN_OR_RETURN(auto channel, MakeChannel("localhost:50054", {}));
//   auto stub = rapport::scoring::v1::ScoringService::NewStub(channel);
#ifndef RAPPORT_COMMON_CHANNEL_H_
#define RAPPORT_COMMON_CHANNEL_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/client_interceptor.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace rapport {

// `interceptors` see every call of the channel (e.g. the client metrics of
// common/metrics/grpc_metrics.h).
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const TlsOptions& tls,
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors = {});

// The target string MakeChannel dials for `address` (exposed for tests).
std::string ChannelTarget(const std::string& address);

// A channel for the `lane`-th (0, 1, ...) of several calls made at once that
// should each reach a replica of its own, such as the streams of an import:
// on one round-robin channel they would all go to the replica it reached
// first. It connects to one replica (gRPC's pick_first), with a connection
// of its own, shared with no other channel. Given a list of replicas, lane n
// connects to the replica n places after one chosen at random once per
// process, or, when that one does not answer as the lane starts, to the next
// ones in the list's order. Given one name, each lane resolves it and
// connects to the first address it gets: a balanced address (a Kubernetes
// Service's) is balanced per connection, hence per lane, and a DNS server
// that rotates its answers (CoreDNS's loadbalance) spreads a headless name's.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeLaneChannel(
    const std::string& address, const TlsOptions& tls, int lane);

// The target MakeLaneChannel dials for `lane` when its process chose the
// list's replica `first` to start from (exposed for tests).
std::string LaneTarget(const std::string& address, int lane, size_t first);

// Whether every host `address` names is this machine: "localhost", 127.0.0.0/8,
// [::1], or a unix: socket. A credential meant for this machine only (the
// local platform's operator token) is sent nowhere else.
bool IsLoopbackAddress(const std::string& address);

// Bearer tokens cross the network over TLS only: INVALID_ARGUMENT saying so
// ("<address> is another machine, and without TLS ...", for the caller to
// prefix with its setting and follow with its remedy) when `tls` is off and
// `address` is not this machine's; OK otherwise. A caller that may send in
// plaintext anyway (a network that encrypts by itself) does not ask.
absl::Status PlaintextRefusal(const std::string& address,
                              const TlsOptions& tls);

}  // namespace rapport

#endif  // RAPPORT_COMMON_CHANNEL_H_
