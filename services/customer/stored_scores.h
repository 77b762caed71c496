// StoredScoreLogic: the customer service's differentiation step, on a
// ScoreStore and the scoring service.
//
// A refresh job streams every live customer's counted facts (never raw
// events) to ScorePopulation in batches, writes the scores that come back into
// a new set of stored values and publishes it at once, with the model that
// produced it; with CLV it first fits BG/NBD and Gamma-Gamma on the customers'
// purchase days and predicts P(alive), expected purchases over the next
// `clv_predict_days` days and CLV over `clv_horizon_months` months. The job
// runs in a background thread of this replica and keeps a heartbeat in the
// store, so any replica can report it, and one whose heartbeat stopped is
// reported FAILED. Between refreshes, Rescore() scores one customer against
// the stored model of the latest succeeded job; concurrent re-scores share
// one facts query, one ScoreEntities call and one write (see Batcher).
//
//   StoredScoreLogic scores(&store, ScoringService::NewStub(channel), &ids,
//                           [] { return absl::Now(); }, {.currency = "USD"});
//   RAPPORT_ASSIGN_OR_RETURN(v1::RefreshJob job, scores.StartRefresh(request));
//   ... scores.GetRefreshJob(...) until job.state() != STATE_RUNNING
#ifndef RAPPORT_SERVICES_CUSTOMER_STORED_SCORES_H_
#define RAPPORT_SERVICES_CUSTOMER_STORED_SCORES_H_

#include <atomic>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/batcher.h"
#include "common/ids.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "services/customer/score_logic.h"
#include "services/customer/score_store.h"

namespace rapport::customer {

struct StoredScoreOptions {
  // ISO 4217 code of the reporting currency, put on every Money.
  std::string currency = "USD";
  // Customers per facts message and per write; exported values per message.
  int batch_size = 10000;
  int export_batch_size = 2000;
  // Threads (connections) that write a refresh's values at once.
  int write_threads = 2;
  // How often a running job records progress, and how old its heartbeat may
  // get before the job counts as failed.
  absl::Duration heartbeat = absl::Seconds(1);
  absl::Duration stale_after = absl::Seconds(30);
  // Deadline of ScoreEntity calls and of a refresh's streams.
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration job_timeout = absl::Hours(2);
  // Re-scores after purchases: customers per batch, batches at once.
  int rescore_batch = 500;
  int rescore_concurrency = 2;
  // CLV: expected purchases over this many days; CLV over this many months
  // at this monthly discount rate.
  double clv_predict_days = 365;
  int clv_horizon_months = 12;
  double clv_discount_monthly = 0.01;
};

class StoredScoreLogic final : public ScoreLogic {
 public:
  using Clock = std::function<absl::Time()>;
  using ScoringStub = ::rapport::scoring::v1::ScoringService::StubInterface;

  StoredScoreLogic(ScoreStore* store, std::unique_ptr<ScoringStub> scoring,
                   IdGenerator* ids, Clock clock,
                   StoredScoreOptions options = {});
  // Cancels the jobs running here (they end FAILED) and waits for them.
  ~StoredScoreLogic() override;

  StoredScoreLogic(const StoredScoreLogic&) = delete;
  StoredScoreLogic& operator=(const StoredScoreLogic&) = delete;

  absl::StatusOr<v1::RefreshJob> StartRefresh(
      const v1::RefreshScoresRequest& request) override;
  absl::StatusOr<v1::RefreshJob> GetRefreshJob(
      const v1::GetRefreshJobRequest& request) override;
  absl::StatusOr<v1::CustomerValue> GetCustomerValue(
      const v1::GetCustomerValueRequest& request) override;
  absl::StatusOr<v1::SummarizeSegmentsResponse> SummarizeSegments(
      const v1::SummarizeSegmentsRequest& request) override;
  absl::Status ExportScores(
      const v1::ExportScoresRequest& request,
      const std::function<bool(const v1::ExportScoresResponse&)>& write)
      override;
  absl::Status Rescore(const std::string& customer_id) override;
  std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& customer_ids) override;
  absl::StatusOr<std::optional<v1::ContactPolicy>> ContactPolicyOf(
      const std::string& customer_id) override;
  absl::Status AttachValues(std::vector<v1::Customer*> customers) override;

  // Blocks until every job started by this object has ended (for tests).
  void WaitForJobs();

 private:
  struct Job;
  struct Prediction;
  using ScoreModel = ::rapport::scoring::v1::ScoreModel;

  void RunJob(Job& job);
  // After a job succeeded: scores again the customers whose values it
  // replaced with older facts.
  void CatchUp(Job& job);
  absl::Status Refresh(Job& job);
  absl::Status PredictClv(Job& job, std::vector<Prediction>* predictions,
                          std::string* clv_model);
  // Registers the job's current call so that a shutdown can cancel it; false
  // when the job is already cancelled.
  bool SetCall(Job& job, grpc::ClientContext* call);
  std::unique_ptr<grpc::ClientContext> NewCall(absl::Duration timeout) const;

  // The stored model of a job, cached; null when the job stored none.
  absl::StatusOr<std::shared_ptr<const ScoreModel>> ModelOf(
      const std::string& job_id);
  absl::StatusOr<v1::CustomerValue> ToValue(const StoredScore& score);
  // The facts of the live customers `ids` name, following merges; ids that
  // name none get their error in `outcome`.
  absl::StatusOr<std::vector<CustomerFacts>> FactsOfLive(
      const std::vector<std::string>& ids, const CountWindow& window,
      absl::flat_hash_map<std::string, absl::Status>* outcome);
  absl::Status FailStaleJobs();
  int64_t NowMicros() const;

  ScoreStore* const store_;
  const std::unique_ptr<ScoringStub> scoring_;
  IdGenerator* const ids_;
  const Clock clock_;
  const StoredScoreOptions options_;

  absl::Mutex mu_;
  std::list<std::unique_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<const ScoreModel>> models_
      ABSL_GUARDED_BY(mu_);
  Batcher<std::string, absl::Status> rescores_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_STORED_SCORES_H_
