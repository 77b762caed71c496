// ScoreStore on MySQL/MariaDB through Connector/C++ (with MysqlCustomerStore,
// the only code of the customer service that touches the connector).
//
// A refresh reads facts a page of customers at a time: the live customers'
// ids in primary-key order, then their purchases and interaction costs
// aggregated by GROUP BY customer_id over the covering indexes of migration
// 0004, merged in id order here; pages are aggregated on several connections
// at once. It writes the new values into a staging
// table with multi-row prepared INSERTs and publishes them with one atomic
// RENAME TABLE, so readers see either the old or the new set, never a mix.
//
//   MysqlScoreStore store(pool.get());
//   RAPPORT_ASSIGN_OR_RETURN(int64_t n, store.CountLiveCustomers());
#ifndef RAPPORT_SERVICES_CUSTOMER_MYSQL_SCORE_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_MYSQL_SCORE_STORE_H_

#include <string>
#include <vector>

#include "common/mysql/mysql_pool.h"
#include "services/customer/score_store.h"

namespace rapport::customer {

class MysqlScoreStore final : public ScoreStore {
 public:
  // `scan_threads`: connections that aggregate facts concurrently in ScanFacts.
  explicit MysqlScoreStore(MysqlPool* pool, int scan_threads = 2)
      : pool_(pool), scan_threads_(scan_threads < 1 ? 1 : scan_threads) {}

  absl::Status CreateJob(const RefreshJobRecord& job) override;
  absl::StatusOr<RefreshJobRecord> GetJob(const std::string& id) override;
  absl::StatusOr<std::optional<RefreshJobRecord>> LatestJob(
      JobState state) override;
  absl::StatusOr<std::optional<std::string>> LatestJobId(
      JobState state) override;
  absl::Status UpdateProgress(const std::string& id, int64_t done,
                              int64_t total, int64_t now_us) override;
  absl::Status SetModels(const std::string& id, const std::string& score_model,
                         const std::string& clv_model) override;
  absl::Status FinishJob(const RefreshJobRecord& job) override;
  absl::Status FailStaleJobs(int64_t stale_before_us, const std::string& error,
                             int64_t now_us) override;

  absl::StatusOr<int64_t> CountLiveCustomers() override;
  absl::Status ScanFacts(const CountWindow& window, int batch_size,
                         const Sink<CustomerFacts>& sink) override;
  absl::StatusOr<std::vector<CustomerFacts>> FactsOf(
      const std::vector<std::string>& customer_ids,
      const CountWindow& window) override;
  absl::Status ScanPurchaseDays(const CountWindow& window, int batch_size,
                                const Sink<PurchaseDay>& sink) override;

  absl::Status BeginScoreSet(const std::string& job_id) override;
  absl::Status AppendScores(const std::string& job_id,
                            const std::vector<StoredScore>& scores) override;
  absl::StatusOr<std::vector<std::string>> PublishScoreSet(
      const std::string& job_id, int64_t rescored_since_us) override;
  absl::StatusOr<std::vector<std::string>> ScoredByOtherModels(
      const std::string& job_id) override;
  absl::Status DiscardScoreSet(const std::string& job_id) override;
  absl::Status UpsertScores(const std::vector<StoredScore>& scores) override;
  absl::StatusOr<std::vector<StoredScore>> GetScores(
      const std::vector<std::string>& customer_ids) override;
  absl::StatusOr<std::string> ResolveLiveCustomer(
      const std::string& id) override;
  absl::StatusOr<ScoreSummary> Summarize() override;
  absl::StatusOr<std::vector<StoredScore>> ExportPage(
      const std::string& source, const std::string& after_key,
      int limit) override;

 private:
  // The ids of up to `limit` live customers after `after_id`, in id order.
  absl::StatusOr<std::vector<std::string>> LiveCustomerPage(
      const std::string& after_id, int limit);

  MysqlPool* pool_;
  int scan_threads_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_MYSQL_SCORE_STORE_H_
