// Differentiation in the customer service: score refresh jobs through the
// scoring service, the stored values and the contact policy that comes with
// them, summaries and exports.
#ifndef RAPPORT_SERVICES_CUSTOMER_SCORE_LOGIC_H_
#define RAPPORT_SERVICES_CUSTOMER_SCORE_LOGIC_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "rapport/customer/v1/customer_service.pb.h"

namespace rapport::customer {

namespace v1 = ::rapport::customer::v1;

class ScoreLogic {
 public:
  virtual ~ScoreLogic() = default;

  // Starts a refresh job (it runs in the background of this replica) and
  // returns it at once.
  virtual absl::StatusOr<v1::RefreshJob> StartRefresh(
      const v1::RefreshScoresRequest& request) = 0;
  virtual absl::StatusOr<v1::RefreshJob> GetRefreshJob(
      const v1::GetRefreshJobRequest& request) = 0;
  virtual absl::StatusOr<v1::CustomerValue> GetCustomerValue(
      const v1::GetCustomerValueRequest& request) = 0;
  virtual absl::StatusOr<v1::SummarizeSegmentsResponse> SummarizeSegments(
      const v1::SummarizeSegmentsRequest& request) = 0;
  // Writes batches through `write` (false: the client went away).
  virtual absl::Status ExportScores(
      const v1::ExportScoresRequest& request,
      const std::function<bool(const v1::ExportScoresResponse&)>& write) = 0;

  // After a purchase: scores the customer again against the stored model, so
  // values stay current between refreshes. Best effort: an error is returned
  // for the caller to log, the purchase stands.
  virtual absl::Status Rescore(const std::string& customer_id) = 0;
  // The same for several customers at once, as one batch: one status per id,
  // in order.
  virtual std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& customer_ids) = 0;
  // The contact policy of the customer's stored tier; nullopt when the
  // customer has not been scored yet.
  virtual absl::StatusOr<std::optional<v1::ContactPolicy>> ContactPolicyOf(
      const std::string& customer_id) = 0;
  // Fills `value` of each customer that has stored values.
  virtual absl::Status AttachValues(std::vector<v1::Customer*> customers) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_SCORE_LOGIC_H_
