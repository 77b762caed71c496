// ValueStore: where differentiation keeps refresh jobs and every entity's
// stored values, with the model that produced them. Plain structs in and out;
// MysqlValueStore is the real one, unit tests use a fake of their own.
//
// A refresh replaces every stored value at once: BeginValueSet, AppendValues
// batches, then PublishValueSet swaps the new set in atomically and keeps the
// set it replaced until DropReplacedSet. The published set names its job
// (LiveSetJob), so that after a crash at any step a replica can tell what is
// live and finish or undo the rest (see Differentiation::Recover).
//
//   RAPPORT_RETURN_IF_ERROR(store->BeginValueSet(job.id));
//   RAPPORT_RETURN_IF_ERROR(store->AppendValues(job.id, values));
//   RAPPORT_RETURN_IF_ERROR(store->PublishValueSet(job.id));
#ifndef RAPPORT_COMMON_DIFFERENTIATION_VALUE_STORE_H_
#define RAPPORT_COMMON_DIFFERENTIATION_VALUE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/audit/audit.h"
#include "common/differentiation/values.h"

namespace rapport::differentiation {

// A set of values that is not the live one: staged by a job that has not
// published it, or replaced by a job's publication.
struct LeftoverSet {
  enum class Kind { kStaged, kReplaced };
  std::string job_id;
  Kind kind = Kind::kStaged;
};

class ValueStore {
 public:
  virtual ~ValueStore() = default;

  // --- Jobs ---

  // Inserts the job, and `event` (its start) with it; a RUNNING one is
  // refused with FAILED_PRECONDITION while another job runs (checked and
  // inserted atomically across replicas).
  virtual absl::Status CreateJob(const RefreshJobRecord& job,
                                 const audit::Event& event) = 0;
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
  // Ends the running jobs whose replica stopped: those whose heartbeat is
  // older than `stale_before_us`, and those whose heartbeat is older than
  // `gone_before_us` (the later bound) when their replica's hold on the job
  // is gone (for MariaDB, the job's lock: its connection closed, as when the
  // process died), found so on two calls a few seconds apart (by the
  // process's clock). SUCCEEDED, with
  // done = total, when their set is the live one, else FAILED with `error`; end
  // time `now_us`. Atomic with PublishValueSet across replicas, so that a job
  // is never ended FAILED while its set goes live. Each end is audited
  // ("system:recovery"). Returns the jobs it ended, as they now are.
  virtual absl::StatusOr<std::vector<RefreshJobRecord>> EndStaleJobs(
      int64_t stale_before_us, int64_t gone_before_us, const std::string& error,
      int64_t now_us) = 0;
  // Records progress and the heartbeat of a running job, and holds the job
  // for its replica (for MariaDB, the job's lock on the heartbeats'
  // connection); FAILED_PRECONDITION when the job is not running any more
  // (recovery ended it as stale).
  virtual absl::Status UpdateProgress(const std::string& id, int64_t done,
                                      int64_t total, int64_t now_us) = 0;
  // Called once a job's heartbeat has stopped: whatever the heartbeats held
  // (a database connection) goes until the next job.
  virtual void HeartbeatsStopped() {}
  // Stores the models of a running job (before its values are published, so
  // that every stored value's model can be found).
  virtual absl::Status SetModels(const std::string& id,
                                 const std::string& score_model,
                                 const std::string& clv_model) = 0;
  // Ends a running job with job.state, error, done, total and end_time_us,
  // and writes `event` (its end) with it. FAILED_PRECONDITION when it is no
  // longer running.
  virtual absl::Status FinishJob(const RefreshJobRecord& job,
                                 const audit::Event& event) = 0;

  // --- Value sets ---

  // A new, empty set staged for the job (replacing one it staged before).
  virtual absl::Status BeginValueSet(const std::string& job_id) = 0;
  virtual absl::Status AppendValues(const std::string& job_id,
                                    const std::vector<StoredValue>& values) = 0;
  // Makes the job's staged set the live one in one atomic step; the set it
  // replaces is kept as the job's replaced set. FAILED_PRECONDITION when the
  // job no longer runs (checked atomically with the swap).
  virtual absl::Status PublishValueSet(const std::string& job_id) = 0;
  // The entities of the job's replaced set whose values were written after
  // `since_us` (re-scored while the job ran; those values went with the set).
  virtual absl::StatusOr<std::vector<std::string>> RescoredInReplacedSet(
      const std::string& job_id, int64_t since_us) = 0;
  // Drops the job's replaced set; OK when there is none.
  virtual absl::Status DropReplacedSet(const std::string& job_id) = 0;
  // Keeps the set `job_id` replaced as the previous set (the values as they
  // stood before that refresh, for trends), in place of the one kept before;
  // nothing when the replaced set is gone already.
  virtual absl::Status RetireReplacedSet(const std::string& job_id) = 0;
  // The values of those of `ids` that the live set replaced: its replaced
  // set while that is not yet retired (the live refresh's catch-up runs),
  // else the previous set.
  virtual absl::StatusOr<std::vector<StoredValue>> GetPreviousValues(
      const std::vector<std::string>& ids) = 0;
  // Drops the job's staged set; OK when there is none.
  virtual absl::Status DiscardValueSet(const std::string& job_id) = 0;
  // The job whose published set is live; nullopt before any (or for a set
  // published before sets named their job).
  virtual absl::StatusOr<std::optional<std::string>> LiveSetJob() = 0;
  // The same, once no publication is under way: what a job whose publish
  // call failed asks, so that a swap its lost connection left pending on the
  // server (which ends with that connection's hold of the refresh lock) is
  // seen before the job is recorded as failed.
  virtual absl::StatusOr<std::optional<std::string>> SettledLiveSetJob() {
    return LiveSetJob();
  }
  // Every staged and replaced set there is.
  virtual absl::StatusOr<std::vector<LeftoverSet>> LeftoverSets() = 0;

  // --- Live values ---

  // Inserts or replaces entities' values, all or none; keeps the stored
  // p_alive, expected purchases and CLV of a value that has none. A value
  // whose score_time_us is before the stored one's (scored from older
  // facts, stored late) changes nothing.
  virtual absl::Status UpsertValues(const std::vector<StoredValue>& values) = 0;
  // Deletes the values of entities that are no longer live (deleted,
  // merged or erased while a refresh that had valued them ran, which then
  // published their values) from the live and the previous set; returns
  // their ids.
  virtual absl::StatusOr<std::vector<std::string>> DropValuesOfEntitiesGone() {
    return std::vector<std::string>();
  }
  // The entities whose live values came from a model other than `job_id`'s
  // (re-scored against an older model while `job_id` was being published).
  virtual absl::StatusOr<std::vector<std::string>> ValuedByOtherModels(
      const std::string& job_id) = 0;
  // The live values of those of `ids` that have some.
  virtual absl::StatusOr<std::vector<StoredValue>> GetValues(
      const std::vector<std::string>& ids) = 0;
  // Totals of the live entities' values: per segment, per tier, all.
  virtual absl::StatusOr<ValueTotals> Summarize() = 0;
  // Values of live entities keyed by their id (`source` empty) or by their
  // external id from `source`, with key > after_key in key byte order, at
  // most `limit`; entity_id holds the key.
  virtual absl::StatusOr<std::vector<StoredValue>> ExportPage(
      const std::string& source, const std::string& after_key, int limit) = 0;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_VALUE_STORE_H_
