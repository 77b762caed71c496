// The storage interface of the customer service's differentiation step: score
// refresh jobs, every customer's counted facts, and the stored values with the
// model that produced them. Plain structs in and out; MysqlScoreStore is the
// real one, unit tests use a fake of their own.
//
//   CountWindow window{.as_of_us = as_of, .window_days = 365};
//   RAPPORT_RETURN_IF_ERROR(store->ScanFacts(window, 10000,
//   [&](std::vector<CustomerFacts>& b) {
//     return SendToScoring(b);
//   }));
#ifndef RAPPORT_SERVICES_CUSTOMER_SCORE_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_SCORE_STORE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/decimal.h"

namespace rapport::customer {

// A refresh job's state; the numbers of rapport.customer.v1.RefreshJob.State.
enum class JobState : int { kRunning = 1, kSucceeded = 2, kFailed = 3 };

// One row of refresh_jobs.
struct RefreshJobRecord {
  std::string id;
  JobState state = JobState::kRunning;
  int64_t done = 0;
  int64_t total = 0;
  // Serialized rapport.customer.v1.RefreshScoresRequest, with as_of and bins
  // filled in.
  std::string request;
  int64_t create_time_us = 0;
  std::optional<int64_t> end_time_us;
  int64_t heartbeat_time_us = 0;
  std::string error;
  // Serialized rapport.scoring.v1.ScoreModel and ClvModel; empty until known.
  std::string score_model;
  std::string clv_model;
};

// Which events and costs count (SCORING.md section 1):
// as_of - window_days * 86400 s < t <= as_of; no lower bound without a window.
struct CountWindow {
  int64_t as_of_us = 0;
  std::optional<int64_t> window_days;

  // The exclusive lower bound of counted times.
  int64_t after_us() const {
    if (!window_days.has_value()) return std::numeric_limits<int64_t>::min();
    return as_of_us - *window_days * int64_t{86'400'000'000};
  }
};

// A customer's counted facts: purchases and interaction costs in the window.
struct CustomerFacts {
  std::string customer_id;
  int64_t frequency = 0;
  Decimal monetary;
  std::optional<int64_t> last_event_us;  // set iff frequency > 0
  Decimal cost_to_serve;
};

// The sum of a customer's counted purchases on one UTC day (for BG/NBD, which
// merges a day's purchases into one).
struct PurchaseDay {
  std::string customer_id;
  int64_t day = 0;  // floor(time / 1 day) since the epoch
  Decimal amount;
};

// One row of customer_scores: a customer's stored values.
struct StoredScore {
  std::string customer_id;  // in ExportPage with a source: the external id
  std::string model_id;     // the refresh job whose model produced the values
  std::optional<int64_t> recency_days;
  int64_t frequency = 0;
  Decimal monetary;
  int r = 0;
  int f = 0;
  int m = 0;
  std::string segment;
  int value_hundredths = 0;
  Decimal cost_to_serve;
  Decimal profit;
  int tier = 0;  // rapport.customer.v1.Tier
  std::optional<double> p_alive;
  std::optional<double> expected_purchases;
  std::optional<double> clv;
  int64_t score_time_us = 0;
};

// Totals of one segment or one tier.
struct GroupTotals {
  std::string segment;  // for segments
  int tier = 0;         // for tiers
  int64_t customers = 0;
  Decimal revenue;                   // sum of the stored monetary values
  int64_t value_hundredths_sum = 0;  // sum of the stored values
};

struct ScoreSummary {
  std::vector<GroupTotals> segments;  // by segment name
  std::vector<GroupTotals> tiers;     // by tier number
};

class ScoreStore {
 public:
  template <typename Row>
  using Sink = std::function<absl::Status(std::vector<Row>& batch)>;

  virtual ~ScoreStore() = default;

  // --- Jobs ---

  // Inserts the job; a RUNNING one is refused with FAILED_PRECONDITION while
  // another job runs (checked and inserted atomically across replicas).
  virtual absl::Status CreateJob(const RefreshJobRecord& job) = 0;
  // NOT_FOUND when there is no such job.
  virtual absl::StatusOr<RefreshJobRecord> GetJob(const std::string& id) = 0;
  // The job in `state` that was created last (for kSucceeded: that ended
  // last), if any.
  virtual absl::StatusOr<std::optional<RefreshJobRecord>> LatestJob(
      JobState state) = 0;
  // The id of that job, without reading the rest (a store may do it faster).
  virtual absl::StatusOr<std::optional<std::string>> LatestJobId(
      JobState state) {
    absl::StatusOr<std::optional<RefreshJobRecord>> job = LatestJob(state);
    if (!job.ok()) return job.status();
    if (!job->has_value()) return std::optional<std::string>();
    return std::optional<std::string>((*job)->id);
  }
  // Records progress and the heartbeat of a running job.
  virtual absl::Status UpdateProgress(const std::string& id, int64_t done,
                                      int64_t total, int64_t now_us) = 0;
  // Stores the models of a running job (before its values are published, so
  // that every stored value's model can be found).
  virtual absl::Status SetModels(const std::string& id,
                                 const std::string& score_model,
                                 const std::string& clv_model) = 0;
  // Ends a running job with job.state, error, done, total and end_time_us.
  // FAILED_PRECONDITION when it is no longer running.
  virtual absl::Status FinishJob(const RefreshJobRecord& job) = 0;
  // Fails the running jobs whose heartbeat is older than `stale_before_us`,
  // with `error`, and drops what they staged.
  virtual absl::Status FailStaleJobs(int64_t stale_before_us,
                                     const std::string& error,
                                     int64_t now_us) = 0;

  // --- Counted facts ---

  // Live customers (not merged into another; erased ones count).
  virtual absl::StatusOr<int64_t> CountLiveCustomers() = 0;
  // Every live customer's counted facts, customers without any included, in
  // batches of at most `batch_size`, each in id order (the batches may come
  // in any order, one sink call at a time, from other threads). A sink error
  // stops the scan and is returned.
  virtual absl::Status ScanFacts(const CountWindow& window, int batch_size,
                                 const Sink<CustomerFacts>& sink) = 0;
  // The counted facts of those of `customer_ids` that are live customers
  // (zero when they have none), in any order; merged and unknown ids are left
  // out.
  virtual absl::StatusOr<std::vector<CustomerFacts>> FactsOf(
      const std::vector<std::string>& customer_ids,
      const CountWindow& window) = 0;
  // Every live customer's counted purchases summed per UTC day, by customer id
  // then day, in batches of rows of at most about `batch_size` customers.
  virtual absl::Status ScanPurchaseDays(const CountWindow& window,
                                        int batch_size,
                                        const Sink<PurchaseDay>& sink) = 0;

  // --- Stored values ---

  // A refresh replaces every stored value at once: BeginScoreSet, then
  // AppendScores batches, then PublishScoreSet (one atomic swap), or
  // DiscardScoreSet.
  virtual absl::Status BeginScoreSet(const std::string& job_id) = 0;
  virtual absl::Status AppendScores(const std::string& job_id,
                                    const std::vector<StoredScore>& scores) = 0;
  // Publishing also says which customers of the replaced set were re-scored
  // after `rescored_since_us` (while the refresh ran): their new values were
  // computed before the swap and are gone with the old set.
  virtual absl::StatusOr<std::vector<std::string>> PublishScoreSet(
      const std::string& job_id, int64_t rescored_since_us) = 0;
  virtual absl::Status DiscardScoreSet(const std::string& job_id) = 0;
  // Inserts or replaces customers' values, all or none; keeps the stored
  // p_alive, expected purchases and CLV of a score that has none.
  virtual absl::Status UpsertScores(const std::vector<StoredScore>& scores) = 0;
  // The stored values of those of `customer_ids` that have some.
  // The customers whose stored values came from a model other than `job_id`'s
  // (re-scored against an older model while `job_id` was being published).
  virtual absl::StatusOr<std::vector<std::string>> ScoredByOtherModels(
      const std::string& job_id) = 0;
  virtual absl::StatusOr<std::vector<StoredScore>> GetScores(
      const std::vector<std::string>& customer_ids) = 0;
  // The live customer an id names (following merges); NOT_FOUND otherwise.
  virtual absl::StatusOr<std::string> ResolveLiveCustomer(
      const std::string& id) = 0;
  // Counts, revenue and value sums of the live customers' stored values.
  virtual absl::StatusOr<ScoreSummary> Summarize() = 0;
  // Stored values of live customers keyed by their id (`source` empty) or by
  // their external id from `source`, with key > after_key in key order, at
  // most `limit`; customer_id holds the key.
  virtual absl::StatusOr<std::vector<StoredScore>> ExportPage(
      const std::string& source, const std::string& after_key, int limit) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_SCORE_STORE_H_
