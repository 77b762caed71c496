// ValueStore on MySQL/MariaDB through Connector/C++, for any counterpart:
// ValueTables names its tables.
//
// A refresh writes its values into a staging table (`<values>_staging_<job>`,
// loaded without its secondary indexes, which are built in one sorted pass
// before the swap) with multi-row prepared INSERTs, and publishes it with one
// atomic RENAME TABLE, so readers see either the old or the new set, never a
// mix; the old set stays as `<values>_old_<job>` until the job has caught up.
// The live table's comment names the job that published it: it moves with
// the rename, so what is live is never in doubt after a crash. Publishing and
// ending stale jobs take one named lock, so they cannot interleave.
//
//   MysqlValueStore store(pool.get(), CustomerValueTables());
//   RAPPORT_ASSIGN_OR_RETURN(ValueTotals totals, store.Summarize());
#ifndef RAPPORT_COMMON_DIFFERENTIATION_MYSQL_VALUE_STORE_H_
#define RAPPORT_COMMON_DIFFERENTIATION_MYSQL_VALUE_STORE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "common/differentiation/value_store.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::differentiation {

// The names a counterpart service gives its differentiation tables, and where
// its entities are.
struct ValueTables {
  // The live values: one row per entity, keyed by `entity_column`.
  std::string values;         // e.g. "customer_scores"
  std::string entity_column;  // e.g. "customer_id"
  // Refresh jobs.
  std::string jobs = "refresh_jobs";
  // The counterpart's entities (primary key `id`), so that summaries and
  // exports cover live entities only: `live_condition` is SQL over the
  // entities table aliased `c` (empty: every entity is live).
  std::string entities;        // e.g. "customers"
  std::string live_condition;  // e.g. "c.merged_into IS NULL"
  // External ids (`entity_column`, source, external_id), for exports keyed by
  // them; empty when the counterpart has none.
  std::string external_ids;  // e.g. "customer_external_ids"

  // INVALID_ARGUMENT unless every name is a plain SQL identifier.
  absl::Status Validate() const;
};

// The schema of the jobs and values tables for `tables`, as migrations
// numbered from 1001 (after a service's own 0001..0999), applied with the
// service's own (see CustomerSchema(), services/customer/customer_values.h).
std::vector<Migration> ValueTableMigrations(const ValueTables& tables);

// Deletes the values of the entities `ids` (deleted, or merged into another)
// from the live set and from the previous one, which a scorecard's trend
// reads, within the caller's transaction on `c`: an entity made again under
// the same id must not show the old one's trend. May throw
// sql::SQLException.
void DeleteEntityValues(sql::Connection& c, const ValueTables& tables,
                        const std::vector<std::string>& ids);

// For creates of entities whose ids an earlier entity may have had (ids made
// from a request id or an external id): deletes whatever values the live
// and the previous set hold under `ids`, as DeleteEntityValues does. A
// re-score, or a refresh that had read the earlier entity's facts, may have
// written its value after that entity was deleted. Looks first with a
// plain read, and deletes only the rows it found (usually none), so that a
// batch of creates locks no rows it does not change. Not covered: a refresh
// running across both the delete and the create (its set is published with
// the value it scored before the delete). May throw sql::SQLException.
void ClearValuesOfReusedIds(sql::Connection& c, const ValueTables& tables,
                            const std::vector<std::string>& ids);

class MysqlValueStore final : public ValueStore {
 public:
  MysqlValueStore(MysqlPool* pool, ValueTables tables);

  absl::Status CreateJob(const RefreshJobRecord& job,
                         const audit::Event& event) override;
  absl::StatusOr<RefreshJobRecord> GetJob(const std::string& id) override;
  absl::StatusOr<std::optional<RefreshJobRecord>> LatestJob(
      JobState state) override;
  absl::StatusOr<std::optional<std::string>> LatestJobId(
      JobState state) override;
  absl::StatusOr<std::vector<RefreshJobRecord>> EndStaleJobs(
      int64_t stale_before_us, int64_t gone_before_us, const std::string& error,
      int64_t now_us) override;
  void HeartbeatsStopped() override;
  absl::Status UpdateProgress(const std::string& id, int64_t done,
                              int64_t total, int64_t now_us) override;
  absl::Status SetModels(const std::string& id, const std::string& score_model,
                         const std::string& clv_model) override;
  absl::Status FinishJob(const RefreshJobRecord& job,
                         const audit::Event& event) override;

  absl::Status BeginValueSet(const std::string& job_id) override;
  absl::Status AppendValues(const std::string& job_id,
                            const std::vector<StoredValue>& values) override;
  absl::Status PublishValueSet(const std::string& job_id) override;
  absl::StatusOr<std::vector<std::string>> RescoredInReplacedSet(
      const std::string& job_id, int64_t since_us) override;
  absl::Status DropReplacedSet(const std::string& job_id) override;
  absl::Status RetireReplacedSet(const std::string& job_id) override;
  absl::StatusOr<std::vector<StoredValue>> GetPreviousValues(
      const std::vector<std::string>& ids) override;
  absl::Status DiscardValueSet(const std::string& job_id) override;
  absl::StatusOr<std::optional<std::string>> LiveSetJob() override;
  absl::StatusOr<std::optional<std::string>> SettledLiveSetJob() override;
  absl::StatusOr<std::vector<LeftoverSet>> LeftoverSets() override;

  absl::Status UpsertValues(const std::vector<StoredValue>& values) override;
  absl::StatusOr<std::vector<std::string>> DropValuesOfEntitiesGone() override;
  absl::StatusOr<std::vector<std::string>> ValuedByOtherModels(
      const std::string& job_id) override;
  absl::StatusOr<std::vector<StoredValue>> GetValues(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<ValueTotals> Summarize() override;
  absl::StatusOr<std::vector<StoredValue>> ExportPage(
      const std::string& source, const std::string& after_key,
      int limit) override;

 private:
  // The values of `ids` from the statement `prefix` + "?,...)"; with
  // `table`, nothing when that table does not exist. With `missing`, the
  // statement reads a table that may be renamed away at any moment (one of
  // its own, not kept prepared): then *missing is set, and what was read
  // is not to be used.
  absl::StatusOr<std::vector<StoredValue>> ReadValues(
      const std::string& prefix, const std::string& table,
      const std::vector<std::string>& ids, bool* missing = nullptr);
  // The statement texts, made once from the table names.
  struct Queries;

  absl::StatusOr<std::string> StagingTable(const std::string& job_id) const;
  absl::StatusOr<std::string> ReplacedTable(const std::string& job_id) const;

  MysqlPool* const pool_;
  const ValueTables tables_;
  std::shared_ptr<const Queries> q_;
  // The refresh jobs' heartbeats: not behind calls that fill the pool for
  // longer than a job may go without one (stale_after), which would have
  // other replicas end a job that is running.
  MysqlPool::Kept heartbeats_;
  // Late jobs whose lock this replica found free, by id: the heartbeat they
  // had then, and when (this process's clock). One is ended only when found
  // so again kGoneConfirmUs later, its heartbeat unchanged: a replica that
  // lost its connection for a moment (a database restart frees every lock)
  // takes the lock again with its next beat.
  absl::Mutex gone_mu_;
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> gone_seen_
      ABSL_GUARDED_BY(gone_mu_);
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_MYSQL_VALUE_STORE_H_
