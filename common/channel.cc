#include "common/channel.h"

#include <arpa/inet.h>
#include <grpcpp/create_channel.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rapport {

std::string ChannelTarget(const std::string& address) {
  if (!absl::StrContains(address, ',')) return address;
  absl::string_view rest = address;
  for (absl::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (absl::ConsumePrefix(&rest, scheme)) return absl::StrCat(scheme, rest);
  }
  return absl::StrCat("ipv4:", rest);
}

bool IsLoopbackAddress(const std::string& address) {
  absl::string_view rest = absl::StripAsciiWhitespace(address);
  if (absl::StartsWith(rest, "unix:") ||
      absl::StartsWith(rest, "unix-abstract:"))
    return true;
  for (absl::string_view scheme : {"ipv4:", "ipv6:", "dns:///", "dns:"}) {
    if (absl::ConsumePrefix(&rest, scheme)) break;
  }
  if (rest.empty()) return false;
  for (absl::string_view entry : absl::StrSplit(rest, ',')) {
    absl::string_view host = entry;
    if (absl::ConsumePrefix(&host, "[")) {
      host = host.substr(0, host.find(']'));
    } else if (const size_t colon = host.rfind(':');
               colon != absl::string_view::npos) {
      host = host.substr(0, colon);
    }
    const std::string name = absl::AsciiStrToLower(host);
    in_addr four;
    in6_addr six;
    const bool loopback = name == "localhost" ||
                          (inet_pton(AF_INET, name.c_str(), &four) == 1 &&
                           (ntohl(four.s_addr) >> 24) == 127) ||
                          (inet_pton(AF_INET6, name.c_str(), &six) == 1 &&
                           IN6_IS_ADDR_LOOPBACK(&six));
    if (!loopback) return false;
  }
  return true;
}

absl::Status PlaintextRefusal(const std::string& address,
                              const TlsOptions& tls) {
  // An empty address is no machine: MakeChannel says so.
  if (address.empty() || tls.enabled() || IsLoopbackAddress(address)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(address,
                   " is another machine, and without TLS every call's bearer "
                   "token would cross the network in the clear"));
}

namespace {

// A list's entries are IP addresses with ports: gRPC's ipv4: and ipv6:
// targets take nothing else, and a host name there fails every call.
absl::Status CheckReplicaList(const std::string& target) {
  const bool six = absl::StartsWith(target, "ipv6:");
  const size_t scheme = target.find(':') + 1;
  for (absl::string_view entry :
       absl::StrSplit(absl::string_view(target).substr(scheme), ',')) {
    const size_t colon = entry.rfind(':');
    int port = 0;
    bool ok = colon != absl::string_view::npos &&
              absl::SimpleAtoi(entry.substr(colon + 1), &port) && port > 0 &&
              port < 65536;
    if (ok) {
      std::string host(entry.substr(0, colon));
      unsigned char ip[sizeof(in6_addr)];
      if (six) {
        ok = host.size() > 2 && host.front() == '[' && host.back() == ']' &&
             inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), ip) ==
                 1;
      } else {
        ok = inet_pton(AF_INET, host.c_str(), ip) == 1;
      }
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "addr: \"", entry, "\" in a list of replicas is not ",
          six ? "[IPv6]:port" : "IPv4:port",
          "; a list takes IP addresses only (for host names, give one name "
          "that resolves to every replica)"));
    }
  }
  return absl::OkStatus();
}

// The replicas of a list target ("ipv4:a,b"), after its scheme.
std::vector<std::string> Replicas(const std::string& target) {
  return absl::StrSplit(absl::string_view(target).substr(target.find(':') + 1),
                        ',');
}

std::string Scheme(const std::string& target) {
  return target.substr(0, target.find(':') + 1);
}

// The replica of a list that this process's lanes count from.
size_t FirstLane() {
  static const size_t first = [] {
    absl::BitGen random;
    return absl::Uniform<size_t>(random, 0, 1 << 30);
  }();
  return first;
}

// What every channel of MakeChannel and MakeLaneChannel shares.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Build(
    const std::string& address, const TlsOptions& tls,
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors,
    std::optional<int> lane) {
  if (address.empty())
    return absl::InvalidArgumentError("addr: the address is empty");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  std::string target = ChannelTarget(address);
  const bool list = absl::StrContains(address, ',');
  if (list) {
    if (absl::Status s = CheckReplicaList(target); !s.ok()) return s;
  }
  if (lane.has_value()) {
    // One replica: of a list, tried in the lane's order; of a name, the
    // first address it resolves to, then the next.
    args.SetLoadBalancingPolicyName("pick_first");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (list) target = LaneTarget(address, *lane, FirstLane());
  } else {
    args.SetLoadBalancingPolicyName("round_robin");
    // round_robin starts with the first address of the list; shuffled,
    // short-lived clients (one rapportctl command, one call) spread over
    // the replicas too, not only the long-lived ones.
    if (list) {
      std::vector<std::string> replicas = Replicas(target);
      absl::BitGen random;
      std::shuffle(replicas.begin(), replicas.end(), random);
      target = absl::StrCat(Scheme(target), absl::StrJoin(replicas, ","));
    }
  }
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  // A server that dies (or a connection a middlebox dropped) during a call
  // is noticed within 40 s, not when the call's deadline ends; an idle
  // channel sends no pings and finds out at its next call. Rapport's servers
  // allow pings every 10 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30 * 1000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10 * 1000);
  // And it keeps pinging while a stream is quiet (a scoring replica working
  // on a population it was sent sends nothing for minutes): gRPC's default
  // stops after two pings without data.
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A peer that comes back is found within seconds: calls fail fast while
  // the channel waits to reconnect, and gRPC's default wait grows to two
  // minutes after a long outage.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 5 * 1000);
  if (interceptors.empty()) {
    return grpc::CreateCustomChannel(target, *credentials, args);
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(
      target, *credentials, args, std::move(interceptors));
}

}  // namespace

std::string LaneTarget(const std::string& address, int lane, size_t first) {
  const std::string target = ChannelTarget(address);
  if (!absl::StrContains(address, ',')) return target;
  std::vector<std::string> replicas = Replicas(target);
  const size_t start = (first + static_cast<size_t>(lane)) % replicas.size();
  std::rotate(replicas.begin(), replicas.begin() + start, replicas.end());
  return absl::StrCat(Scheme(target), absl::StrJoin(replicas, ","));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const TlsOptions& tls,
    std::vector<
        std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>>
        interceptors) {
  return Build(address, tls, std::move(interceptors), std::nullopt);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeLaneChannel(
    const std::string& address, const TlsOptions& tls, int lane) {
  if (lane < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("lane: ", lane, " is negative"));
  }
  return Build(address, tls, {}, lane);
}

}  // namespace rapport
