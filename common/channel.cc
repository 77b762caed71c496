#include "common/channel.h"

#include <grpcpp/create_channel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
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

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(
    const std::string& address, const TlsOptions& tls) {
  if (address.empty())
    return absl::InvalidArgumentError("addr: the address is empty");
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      MakeChannelCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args;
  args.SetLoadBalancingPolicyName("round_robin");
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  return grpc::CreateCustomChannel(ChannelTarget(address), *credentials, args);
}

}  // namespace rapport
