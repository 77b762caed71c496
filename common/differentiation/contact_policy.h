// What a tier's contact policy allows, for every counterpart alike: which
// channels, and what one interaction may cost. LogInteraction holds a new
// interaction to its entity's policy (force logs it anyway); an import holds
// the rows dated within the last day to it, and takes older rows as history.
//
//   if (std::optional<PolicyRefusal> no = RefusedByPolicy(
//           policy, CHANNEL_VISIT, cost, "customer 01HV...")) {
//     // no->field is "channel" (or "cost"), no->message says why.
//   }
#ifndef RAPPORT_COMMON_DIFFERENTIATION_CONTACT_POLICY_H_
#define RAPPORT_COMMON_DIFFERENTIATION_CONTACT_POLICY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/decimal.h"
#include "rapport/common/v1/differentiation.pb.h"

namespace rapport::differentiation {

// Why a policy refuses an interaction: the field to blame ("channel" or
// "cost") and what to say (without the field in front).
struct PolicyRefusal {
  std::string field;
  std::string message;
};

// Whether `policy` refuses an interaction on `channel` costing `cost` with
// `whom` ("customer 01HV..."): a channel the policy does not name, or a cost
// above its ceiling. Nothing when it allows it.
std::optional<PolicyRefusal> RefusedByPolicy(
    const ::rapport::common::v1::ContactPolicy& policy, int channel,
    const Decimal& cost, absl::string_view whom);

// Holds an import call's recent interaction rows to their entities' contact
// policies, reading each entity's policy once per call (up to kMaxKnown).
class RecentInteractions {
 public:
  // An entity's policy; nullopt while it has no tier (never scored).
  using PolicyOf = std::function<
      absl::StatusOr<std::optional<::rapport::common::v1::ContactPolicy>>(
          const std::string& id)>;
  // Rows dated less than this before the import's clock are held to the
  // policy; older ones are history.
  static constexpr absl::Duration kRecent = absl::Hours(24);

  // `noun` names the entity in refusals ("customer").
  RecentInteractions(PolicyOf policy_of, std::string noun)
      : policy_of_(std::move(policy_of)), noun_(std::move(noun)) {}

  // The refusal of a row for entity `id` dated `time_us` (the clock saying
  // `now_us`) on `channel` costing `cost`, telling the importer how to log
  // it anyway; nothing for an older row, an entity without a tier, or a row
  // its policy allows. An error is the policy's read (the database lost).
  absl::StatusOr<std::optional<PolicyRefusal>> Check(const std::string& id,
                                                     int64_t time_us,
                                                     int64_t now_us,
                                                     int channel,
                                                     const Decimal& cost);

 private:
  static constexpr size_t kMaxKnown = 100000;
  PolicyOf policy_of_;
  std::string noun_;
  absl::flat_hash_map<std::string,
                      std::optional<::rapport::common::v1::ContactPolicy>>
      known_;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_CONTACT_POLICY_H_
