// A ValueKeeper (common/differentiation) that records what it is asked to
// re-score, answers with the contact policies a test gives it, and answers
// everything else with nothing: for tests of a service's imports and logic,
// whose values the e2e tests check.
#ifndef RAPPORT_TESTS_SUPPORT_RESCORE_RECORDER_H_
#define RAPPORT_TESTS_SUPPORT_RESCORE_RECORDER_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/differentiation/differentiation.h"

namespace rapport::testing {

class RescoreRecorder : public differentiation::ValueKeeper {
 public:
  absl::Status Rescore(const std::string&) override { return absl::OkStatus(); }
  std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& ids) override {
    return std::vector<absl::Status>(ids.size());
  }
  void RescoreSoon(const std::vector<std::string>& ids) override {
    soon.insert(soon.end(), ids.begin(), ids.end());
  }
  absl::StatusOr<std::optional<common::v1::ContactPolicy>> ContactPolicyOf(
      const std::string& id) override {
    ++policy_reads;
    auto it = policies.find(id);
    if (it == policies.end()) return std::optional<common::v1::ContactPolicy>();
    return std::optional<common::v1::ContactPolicy>(it->second);
  }
  absl::StatusOr<absl::flat_hash_map<std::string, common::v1::EntityValue>>
  ValuesOf(const std::vector<std::string>&) override {
    return absl::flat_hash_map<std::string, common::v1::EntityValue>();
  }

  // Every id RescoreSoon was given, in order.
  std::vector<std::string> soon;
  // The contact policies of the entities that have a tier (none by
  // default), and how often ContactPolicyOf was asked.
  absl::flat_hash_map<std::string, common::v1::ContactPolicy> policies;
  int policy_reads = 0;
};

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_RESCORE_RECORDER_H_
