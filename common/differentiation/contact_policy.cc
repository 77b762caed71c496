#include "common/differentiation/contact_policy.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api_names.h"
#include "common/base/status_macros.h"
#include "common/proto_convert.h"

namespace rapport::differentiation {
namespace {

// The ceiling of `policy` that one interaction costing `cost` is above, if
// it is (a policy without a ceiling has none).
std::optional<Decimal> CostCeilingExceeded(
    const ::rapport::common::v1::ContactPolicy& policy, const Decimal& cost) {
  if (!policy.has_cost_ceiling()) return std::nullopt;
  absl::StatusOr<Decimal> ceiling =
      FromMoney(policy.cost_ceiling(), "cost_ceiling");
  if (!ceiling.ok() || cost <= *ceiling) return std::nullopt;
  return *ceiling;
}

}  // namespace

std::optional<PolicyRefusal> RefusedByPolicy(
    const ::rapport::common::v1::ContactPolicy& policy, int channel,
    const Decimal& cost, absl::string_view whom) {
  const std::string tier = TierName(policy.tier());
  bool named = false;
  std::vector<std::string> allowed;
  for (int c : policy.channels()) {
    named |= c == channel;
    allowed.push_back(ChannelName(c));
  }
  if (!named) {
    return PolicyRefusal{
        "channel",
        absl::StrCat("the ", tier, " tier's contact policy does not allow the ",
                     ChannelName(channel), " channel for ", whom,
                     " (allowed: ", absl::StrJoin(allowed, ", "), ")")};
  }
  if (std::optional<Decimal> ceiling = CostCeilingExceeded(policy, cost)) {
    return PolicyRefusal{
        "cost", absl::StrCat(cost.ToString(), " is more than the ",
                             ceiling->ToString(), " the ", tier,
                             " tier's contact policy allows one interaction "
                             "with ",
                             whom)};
  }
  return std::nullopt;
}

absl::StatusOr<std::optional<PolicyRefusal>> RecentInteractions::Check(
    const std::string& id, int64_t time_us, int64_t now_us, int channel,
    const Decimal& cost) {
  if (time_us <= now_us - absl::ToInt64Microseconds(kRecent)) {
    return std::nullopt;
  }
  auto it = known_.find(id);
  if (it == known_.end()) {
    RAPPORT_ASSIGN_OR_RETURN(
        std::optional<::rapport::common::v1::ContactPolicy> policy,
        policy_of_(id));
    if (known_.size() >= kMaxKnown) known_.clear();
    it = known_.emplace(id, std::move(policy)).first;
  }
  if (!it->second.has_value()) return std::nullopt;
  std::optional<PolicyRefusal> refused =
      RefusedByPolicy(*it->second, channel, cost, absl::StrCat(noun_, " ", id));
  if (refused.has_value()) {
    absl::StrAppend(&refused->message, "; a row dated within the last ",
                    absl::ToInt64Hours(kRecent),
                    " hours is held to it (an admin's import with force "
                    "records it anyway)");
  }
  return refused;
}

}  // namespace rapport::differentiation
