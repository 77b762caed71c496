// Differentiation: the step of relationship marketing that values every
// entity of a counterpart (customer, partner, member of the financial
// community), written once for all of them on three interfaces: the
// counterpart's facts (Counterpart), where values are kept (ValueStore), and
// the scoring service (ScoringClient).
//
// A refresh job streams every live entity's counted facts (never raw events)
// to ScorePopulation in batches, writes the scores that come back into a new
// set of stored values and publishes it at once, with the model that produced
// it; with CLV it first ships each entity's event days once to PredictClv,
// which fits BG/NBD and Gamma-Gamma and predicts P(alive), expected events
// over the next `clv_predict_days` days and CLV over `clv_horizon_months`
// months. The job runs in a background thread of this replica and keeps a
// heartbeat in the store, so any replica can report it. Whatever step a
// replica dies at, Recover() (at start-up, every `recover_every`, and before
// a refresh starts) leaves live values, models and job states that agree,
// and no leftover sets; a reader that finds a job stale ends it (its state
// is then final) and leaves the rest to Recover(). Between refreshes,
// Rescore() scores one entity against the stored model of the latest
// succeeded job; concurrent re-scores share one facts query, one
// ScoreEntities call and one write (see Batcher).
//
//   Differentiation values(&facts, &store, scoring.get(), &ids,
//                          [] { return absl::Now(); }, {.entity = "partner"});
//   values.Recover().IgnoreError();  // logged; retried in the background
//   RAPPORT_ASSIGN_OR_RETURN(cv1::RefreshJob job,
//   values.StartRefresh(settings));
//   ... values.GetRefreshJob(job.id()) until job.state() != STATE_RUNNING
#ifndef RAPPORT_COMMON_DIFFERENTIATION_DIFFERENTIATION_H_
#define RAPPORT_COMMON_DIFFERENTIATION_DIFFERENTIATION_H_

#include <atomic>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/base/batcher.h"
#include "common/base/decimal.h"
#include "common/differentiation/counterpart.h"
#include "common/differentiation/scoring_client.h"
#include "common/differentiation/value_store.h"
#include "common/ids.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "rapport/common/v1/differentiation.pb.h"

namespace rapport::differentiation {

namespace cv1 = ::rapport::common::v1;

// The steps of a refresh, in order; DifferentiationOptions::at_step sees each
// as it is reached (for tests that stop a refresh there).
enum class RefreshStep {
  kStarted,       // the job is recorded, nothing else done
  kValuesStaged,  // every value is in the job's staged set
  kModelsStored,  // the job's models are stored with it
  kPublished,     // the staged set is live; the job still runs
  kFinished,      // the job is SUCCEEDED; catch-up not done yet
  kCaughtUp,      // values re-scored meanwhile are current; replaced set kept
};

struct DifferentiationOptions {
  // What the entities are called in messages: "customer", "partner".
  std::string entity = "customer";
  // ISO 4217 code of the reporting currency, put on every Money.
  std::string currency = "USD";
  // What a tier's contact policy says as its service level, by tier
  // (cv1::Tier), in place of the scoring service's, for counterparts whose
  // care is told in other terms (the financial community: the management
  // time a member deserves). A tier left out keeps the scoring service's.
  absl::flat_hash_map<int, std::string> tier_service_levels;
  // Entities per facts message and per write; exported values per message.
  int batch_size = 10000;
  int export_batch_size = 2000;
  // Threads (connections) that write a refresh's values at once.
  int write_threads = 2;
  // How often a running job records progress, and how old its heartbeat may
  // get before the job counts as stopped.
  absl::Duration heartbeat = absl::Seconds(1);
  absl::Duration stale_after = absl::Seconds(30);
  // How old the heartbeat of a job whose replica's hold on it is gone (its
  // database connection closed, as when the process died) may get before
  // the job counts as stopped: a new refresh need not wait stale_after.
  absl::Duration gone_after = absl::Seconds(10);
  // How often Recover() runs in the background; zero: only when called and
  // when a stale job is seen.
  absl::Duration recover_every = absl::Seconds(30);
  // Re-scores after activity: entities per batch, batches at once, and how
  // many entities may wait for a background re-score (RescoreSoon).
  int rescore_batch = 500;
  int rescore_concurrency = 2;
  int rescore_queue = 100000;
  // A background re-score that failed for a passing reason (the database or
  // the scoring service away, slow or busy, a deadlock) is queued again, and
  // the worker waits this long first, twice as long after each failure in a
  // row up to the most.
  absl::Duration rescore_backoff = absl::Seconds(1);
  absl::Duration rescore_backoff_most = absl::Seconds(30);
  // When the replica stops, the re-scores still queued get this long to run
  // (a batch under way at its end finishes; no batch is tried again after
  // that); those left are dropped, counted and logged.
  absl::Duration rescore_drain = absl::Seconds(5);
  // CLV: expected events over this many days; CLV over this many months at
  // this monthly discount rate.
  double clv_predict_days = 365;
  int clv_horizon_months = 12;
  double clv_discount_monthly = 0.01;
  // Event days per PredictClv message: at about 60 bytes each, 16384 make
  // about 1 MiB, well under the servers' --max_message_bytes (4 MiB).
  int clv_events_per_message = 16384;
  // For tests: called as a refresh reaches each step, on the job's thread.
  std::function<void(RefreshStep)> at_step;
  // For tests: called by the destructor once the stop has begun (running
  // refreshes cancelled, the re-score drain's clock started), before it
  // waits for anything.
  std::function<void()> on_stop;
};

// What a counterpart's own logic asks of differentiation: keep values current
// after activity, the contact policy of an entity's tier, and the stored
// values to show with entities. Differentiation implements it; unit tests of
// a service's logic use a fake.
class ValueKeeper {
 public:
  virtual ~ValueKeeper() = default;
  // Scores the entity again against the stored model, so values stay current
  // between refreshes. Best effort: an error is returned for the caller to
  // log, the activity stands. While the first refresh runs (no model yet)
  // the entity is queued for that refresh's model, as by RescoreSoon.
  virtual absl::Status Rescore(const std::string& id) = 0;
  // The same for several entities at once, as one batch: one status per id,
  // in order.
  virtual std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& ids) = 0;
  // Queues the entities to be scored again in the background, in batches
  // (an entity queued twice is scored once), so that the call that recorded
  // the activity answers without waiting for the scoring service. Best
  // effort: past `rescore_queue` entities waiting, more are dropped (counted
  // in rapport_rescore_dropped_total) and the next refresh catches up. Those
  // that fail for a passing reason are tried again (rescore_backoff). A
  // replica that stops runs what is queued for about `rescore_drain`.
  // Before any refresh has succeeded nothing is queued, except while the
  // first one runs: its entities then wait for its model.
  virtual void RescoreSoon(const std::vector<std::string>& ids) = 0;
  // The contact policy of the entity's stored tier (one not scored yet is
  // scored now, against the live model); nullopt before the first refresh,
  // and when an entity not scored yet cannot be scored now (the scoring
  // service away: it is queued for a re-score instead).
  // What it allows is RefusedByPolicy's (contact_policy.h).
  virtual absl::StatusOr<std::optional<cv1::ContactPolicy>> ContactPolicyOf(
      const std::string& id) = 0;
  // The stored values of those of `ids` that have some, by id.
  virtual absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>>
  ValuesOf(const std::vector<std::string>& ids) = 0;
};

class Differentiation final : public ValueKeeper {
 public:
  using Clock = std::function<absl::Time()>;
  using ExportWriter = std::function<bool(
      google::protobuf::RepeatedPtrField<cv1::EntityValue>&)>;

  Differentiation(Counterpart* counterpart, ValueStore* store,
                  ScoringClient* scoring, IdGenerator* ids, Clock clock,
                  DifferentiationOptions options = {});
  // Cancels the jobs running here (they end FAILED) and waits for them.
  ~Differentiation() override;

  Differentiation(const Differentiation&) = delete;
  Differentiation& operator=(const Differentiation&) = delete;

  // Starts a refresh job for `actor` (it runs in the background of this
  // replica) and returns it at once; FAILED_PRECONDITION while another job
  // runs. Its start and end are audited. Under a `request_id`, the job is
  // KeyedId("refresh", request_id): a retry gets that job as it stands, and
  // the id used for other settings is INVALID_ARGUMENT naming request_id.
  absl::StatusOr<cv1::RefreshJob> StartRefresh(
      const cv1::RefreshSettings& settings, const std::string& actor,
      const std::string& request_id = "");
  absl::StatusOr<cv1::RefreshJob> GetRefreshJob(const std::string& id);
  // The entity's stored values (following merges); FAILED_PRECONDITION when
  // it has none yet.
  absl::StatusOr<cv1::EntityValue> GetValue(const std::string& id);
  // The values of those of `ids` as they stood before the latest refresh
  // (for trends), by id; empty before a second refresh.
  absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>>
  PreviousValuesOf(const std::vector<std::string>& ids);
  // An entity's value now and before the latest refresh (nullopt where it
  // has none), read again when a refresh published between the two reads,
  // so that a trend never compares a set with itself.
  struct Trend {
    std::optional<cv1::EntityValue> now;
    std::optional<cv1::EntityValue> previous;
  };
  absl::StatusOr<Trend> TrendOf(const std::string& id);
  // The next tier up from `value`'s and the profit it takes, from the
  // thresholds of the model that produced it: reaching Iron takes a profit
  // of 0, Gold and Platinum a profit above their thresholds; nullopt at the
  // top (or when the model has no thresholds). Iron's next is Platinum when
  // Gold's threshold is Platinum's (more than it is Platinum). `more_than`
  // says whether the profit must exceed `profit` (Gold, Platinum) or reach
  // it (Iron).
  struct NextTier {
    cv1::Tier tier = cv1::TIER_UNSPECIFIED;
    Decimal profit;
    bool more_than = false;
    // profit - the entity's profit: what it lacks.
    Decimal lacking;
  };
  absl::StatusOr<std::optional<NextTier>> NextTierOf(
      const cv1::EntityValue& value);
  // Totals per segment, per tier and of all live entities' values; `entities`
  // gets the number of live entities, `model_id` the job whose values are
  // live (empty before the first refresh).
  struct Summary {
    std::vector<cv1::GroupSummary> segments;
    std::vector<cv1::GroupSummary> tiers;
    cv1::GroupSummary total;
    int64_t entities = 0;
    std::string model_id;
  };
  absl::StatusOr<Summary> Summarize();
  // Every live entity's values keyed by its id, or by its external id from
  // `external_id_source`, in key byte order, in batches through `write`
  // (false: the client went away); ABORTED when a refresh publishes another
  // set meanwhile (the values are never of two sets).
  absl::Status Export(const std::string& external_id_source,
                      const ExportWriter& write);

  absl::Status Rescore(const std::string& id) override;
  std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& ids) override;
  void RescoreSoon(const std::vector<std::string>& ids) override;
  // Blocks until every entity queued by RescoreSoon has been re-scored (for
  // tests and orderly shutdown).
  void WaitForRescores();
  absl::StatusOr<std::optional<cv1::ContactPolicy>> ContactPolicyOf(
      const std::string& id) override;
  absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>> ValuesOf(
      const std::vector<std::string>& ids) override;

  // Finishes what stopped refreshes left: a job whose replica stopped ends
  // SUCCEEDED when its values were published, else FAILED; staged sets of
  // jobs that no longer run are dropped; a replaced set is used to catch up
  // the entities re-scored into it, then dropped. Safe to run on several
  // replicas at once.
  absl::Status Recover();

  // Blocks until every job started by this object has ended (for tests).
  void WaitForJobs();
  // For a replica that stops: waits until the refreshes it runs have ended,
  // or until `deadline`, whichever comes first (those still running then are
  // cancelled when this object goes, and end FAILED); returns how many still
  // run.
  int FinishRefreshes(absl::Time deadline);

 private:
  // Summarize's reads, once.
  absl::StatusOr<Summary> SummarizeOnce();
  // The job `job_id` (a request id's) when it exists and was started with
  // `settings`; nullopt when there is none; INVALID_ARGUMENT naming
  // request_id when it was started with other settings.
  absl::StatusOr<std::optional<cv1::RefreshJob>> StartedBy(
      const std::string& job_id, const cv1::RefreshSettings& settings);
  struct Job;
  struct Prediction;
  using ScoreModel = ::rapport::scoring::v1::ScoreModel;

  void RunJob(Job& job);
  absl::Status Refresh(Job& job);
  absl::Status PredictClv(Job& job, std::vector<Prediction>* predictions,
                          std::string* clv_model);
  // After `job_id`'s set was published: scores again the entities whose
  // values it replaced with older facts, then drops the replaced set. OK at
  // once when this replica is catching up with that job already (a slow
  // catch-up outlasts the wait recovery gives a job's own replica).
  absl::Status CatchUp(const std::string& job_id, int64_t create_time_us,
                       std::vector<std::string> rescored_meanwhile);
  void Reached(RefreshStep step) const;

  // The stored model of a job, cached; null when the job stored none.
  absl::StatusOr<std::shared_ptr<const ScoreModel>> ModelOf(
      const std::string& job_id);
  absl::StatusOr<cv1::EntityValue> ToValue(const StoredValue& value);
  // The facts of the live entities `ids` name, following merges; ids that
  // name none get their error in `outcome`.
  absl::StatusOr<std::vector<EntityFacts>> FactsOfLive(
      const std::vector<std::string>& ids, const CountWindow& window,
      absl::flat_hash_map<std::string, absl::Status>* outcome);
  int64_t NowMicros() const;
  // The first step of Recover(): ends the jobs whose replica stopped; the
  // ids of every job this replica has ended so (ended_stale_).
  absl::StatusOr<absl::flat_hash_set<std::string>> EndStaleJobs();
  void RecoverInBackground();
  void RescoreInBackground();
  // Whether no refresh has succeeded yet and one runs (on any replica).
  absl::StatusOr<bool> FirstRefreshRunning();

  Counterpart* const counterpart_;
  ValueStore* const store_;
  ScoringClient* const scoring_;
  IdGenerator* const ids_;
  const Clock clock_;
  const DifferentiationOptions options_;

  absl::Mutex mu_;
  std::list<std::unique_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<const ScoreModel>> models_
      ABSL_GUARDED_BY(mu_);
  // Jobs this replica ended for their stopped replica (a reader may end one
  // and leave the rest of recovery to later): their leftovers are recovery's
  // at once, with no replica of theirs to wait for.
  absl::flat_hash_set<std::string> ended_stale_ ABSL_GUARDED_BY(mu_);
  // Jobs whose catch-up runs on this replica.
  absl::flat_hash_set<std::string> catching_up_ ABSL_GUARDED_BY(mu_);
  Batcher<std::string, absl::Status> rescores_;
  // RescoreSoon's queue, in arrival order, without repeats.
  // A refresh has succeeded (RescoreSoon queues nothing before).
  std::atomic<bool> ever_refreshed_{false};
  absl::Mutex soon_mu_;
  std::deque<std::string> soon_ ABSL_GUARDED_BY(soon_mu_);
  absl::flat_hash_set<std::string> soon_queued_ ABSL_GUARDED_BY(soon_mu_);
  bool soon_busy_ ABSL_GUARDED_BY(soon_mu_) = false;
  bool soon_stop_ ABSL_GUARDED_BY(soon_mu_) = false;
  // Once stopping: when the re-scores still queued are given up.
  absl::Time soon_drain_until_ ABSL_GUARDED_BY(soon_mu_);
  std::thread soon_worker_;
  absl::Notification stopping_;
  std::thread recoverer_;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_DIFFERENTIATION_H_
