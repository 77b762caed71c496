// Differentiation's refresh jobs: starting one, running it in the
// background, its CLV step, the catch-up after it, and the recovery of what
// a stopped replica left (see differentiation.h).
#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/score_messages.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::differentiation {
namespace {

namespace sv1 = ::rapport::scoring::v1;

constexpr char kStaleError[] =
    "its heartbeat stopped: the replica running it stopped, or lost the "
    "database";

// A model's output, or nothing when it is not a number (a degenerate fit).
std::optional<double> Finite(double x) {
  if (!std::isfinite(x)) return std::nullopt;
  return x;
}

cv1::RefreshJob ToJob(const RefreshJobRecord& r) {
  cv1::RefreshJob job;
  job.set_id(r.id);
  job.set_state(static_cast<cv1::RefreshJob::State>(static_cast<int>(r.state)));
  job.set_done(r.done);
  job.set_total(r.total);
  *job.mutable_create_time() = ToTimestamp(r.create_time_us);
  if (r.end_time_us.has_value())
    *job.mutable_end_time() = ToTimestamp(*r.end_time_us);
  job.set_error(r.error);
  job.mutable_request()->ParseFromString(r.request);
  return job;
}

// Appends batches of values to a job's set on several threads at once (each
// its own connection), with at most `threads` batches waiting.
//
//   ParallelAppender out(store, job_id, 2, &stored);
//   RAPPORT_RETURN_IF_ERROR(out.Push(std::move(batch)));  // the first error
//   RAPPORT_RETURN_IF_ERROR(out.Finish());                // so far
class ParallelAppender {
 public:
  ParallelAppender(ValueStore* store, std::string job_id, int threads,
                   std::atomic<int64_t>* stored)
      : store_(store),
        job_id_(std::move(job_id)),
        limit_(std::max(1, threads)),
        stored_(stored) {
    for (int i = 0; i < limit_; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~ParallelAppender() { Finish().IgnoreError(); }

  absl::Status Push(std::vector<StoredValue> batch) {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(this, &ParallelAppender::HasRoom));
    if (!error_.ok()) return error_;
    queue_.push_back(std::move(batch));
    return absl::OkStatus();
  }

  absl::Status Finish() {
    {
      absl::MutexLock lock(&mu_);
      closed_ = true;
    }
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
    absl::MutexLock lock(&mu_);
    return error_;
  }

 private:
  bool HasRoom() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !error_.ok() || static_cast<int>(queue_.size()) < limit_;
  }
  bool HasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty();
  }

  void Loop() {
    for (;;) {
      std::vector<StoredValue> batch;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ParallelAppender::HasWork));
        if (queue_.empty()) return;  // closed
        batch = std::move(queue_.front());
        queue_.pop_front();
        if (!error_.ok()) continue;  // drain
      }
      absl::Status s = store_->AppendValues(job_id_, batch);
      *stored_ += static_cast<int64_t>(batch.size());
      if (!s.ok()) {
        absl::MutexLock lock(&mu_);
        if (error_.ok()) error_ = s;
      }
    }
  }

  ValueStore* const store_;
  const std::string job_id_;
  const int limit_;
  std::atomic<int64_t>* const stored_;
  absl::Mutex mu_;
  std::deque<std::vector<StoredValue>> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace

// A refresh job running in this replica.
struct Differentiation::Job {
  // Progress is counted in phases (event days shipped for the CLV models,
  // facts sent, values stored), each up to `total` entities; `done` is their
  // mean, so that the bar moves through the whole job.
  int64_t done() const {
    int64_t sum = 0;
    for (const std::atomic<int64_t>& p : phase) sum += p.load();
    return std::min<int64_t>(total.load(), sum / phases);
  }

  std::string id;
  std::string actor;              // who started it
  cv1::RefreshSettings settings;  // as_of and bins filled in
  int64_t create_time_us = 0;
  int phases = 2;
  std::atomic<int64_t> total{0};
  std::atomic<int64_t> phase[3] = {0, 0, 0};
  std::atomic<bool> finished{false};
  // Its work is over and its end is being recorded (the heartbeat goes on
  // meanwhile, and then finds the job ended by this replica itself).
  std::atomic<bool> recording_end{false};
  // Its publication's answer was lost with its connection: the swap may be
  // pending on the server still.
  std::atomic<bool> publish_unanswered{false};
  std::thread thread;
  // Seconds spent in each step, for the log line at the end.
  std::string timings;
  Cancellation cancel;

  absl::Mutex mu;
  bool ended ABSL_GUARDED_BY(mu) = false;
};

// One entity's CLV outputs.
struct Differentiation::Prediction {
  std::string entity_id;
  std::optional<double> p_alive;
  std::optional<double> expected_purchases;
  std::optional<double> clv;
};

Differentiation::Differentiation(Counterpart* counterpart, ValueStore* store,
                                 ScoringClient* scoring, IdGenerator* ids,
                                 Clock clock, DifferentiationOptions options)
    : counterpart_(counterpart),
      store_(store),
      scoring_(scoring),
      ids_(ids),
      clock_(std::move(clock)),
      options_(std::move(options)),
      rescores_({.max_running = options_.rescore_concurrency,
                 .max_batch = static_cast<size_t>(options_.rescore_batch)},
                [this](const std::vector<std::string>& ids) {
                  return RescoreEach(ids);
                }) {
  metrics::RefreshJobMetrics::Get();  // its series, at zero, from the start
  if (options_.recover_every > absl::ZeroDuration()) {
    recoverer_ = std::thread([this] { RecoverInBackground(); });
  }
  soon_worker_ = std::thread([this] { RescoreInBackground(); });
}

Differentiation::~Differentiation() {
  stopping_.Notify();
  // Running refreshes end (FAILED, cancelled) while the re-scores still
  // queued run out, for about rescore_drain.
  {
    absl::MutexLock lock(&mu_);
    for (const std::unique_ptr<Job>& job : jobs_) job->cancel.Cancel();
  }
  {
    absl::MutexLock lock(&soon_mu_);
    soon_stop_ = true;
    soon_drain_until_ = absl::Now() + options_.rescore_drain;
  }
  if (options_.on_stop) options_.on_stop();
  soon_worker_.join();
  if (recoverer_.joinable()) recoverer_.join();
  WaitForJobs();
}

void Differentiation::WaitForJobs() {
  std::list<std::unique_ptr<Job>> jobs;
  {
    absl::MutexLock lock(&mu_);
    jobs.swap(jobs_);
  }
  for (const std::unique_ptr<Job>& job : jobs) {
    if (job->thread.joinable()) job->thread.join();
  }
}

int Differentiation::FinishRefreshes(absl::Time deadline) {
  auto running = [this] {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count_if(
        jobs_.begin(), jobs_.end(),
        [](const std::unique_ptr<Job>& job) { return !job->finished.load(); }));
  };
  int left = running();
  if (left == 0) return 0;
  LogInfo(ProcessService(), "waiting for the refreshes under way to finish",
          {{"refreshes", absl::StrCat(left)},
           {"until", FormatRfc3339Micros(absl::ToUnixMicros(deadline))}});
  while (left > 0 && absl::Now() < deadline) {
    absl::SleepFor(std::min(absl::Milliseconds(50), deadline - absl::Now()));
    left = running();
  }
  if (left > 0) {
    LogLine("warn", ProcessService(),
            "stopping cuts refreshes short: they end FAILED (a longer "
            "--shutdown_grace lets them finish)",
            {{"refreshes", absl::StrCat(left)}});
  } else {
    LogInfo(ProcessService(), "the refreshes under way finished");
  }
  return left;
}

int64_t Differentiation::NowMicros() const {
  return absl::ToUnixMicros(clock_());
}

void Differentiation::Reached(RefreshStep step) const {
  if (options_.at_step) options_.at_step(step);
}

void Differentiation::RecoverInBackground() {
  while (!stopping_.WaitForNotificationWithTimeout(options_.recover_every)) {
    if (absl::Status s = Recover(); !s.ok()) {
      // A stop that cut a catch-up short is not an error: the next
      // recovery, on any replica, goes on with it.
      LogLine(stopping_.HasBeenNotified() ? "info" : "error", ProcessService(),
              "cannot recover stopped refreshes",
              {{"error", std::string(s.message())}});
    }
  }
}

// --- Jobs --------------------------------------------------------------------

namespace {

// Whether a refresh asked with `given` is the one stored as `started` (its
// settings as filled in when it started: as_of and bins defaulted).
bool SameRefresh(const cv1::RefreshSettings& given,
                 const cv1::RefreshSettings& started) {
  return given.window_days() == started.window_days() &&
         (given.bins() == 0 ? 5 : given.bins()) == started.bins() &&
         given.with_clv() == started.with_clv() &&
         (!given.has_as_of() ||
          (given.as_of().seconds() == started.as_of().seconds() &&
           given.as_of().nanos() == started.as_of().nanos()));
}

}  // namespace

absl::StatusOr<std::optional<cv1::RefreshJob>> Differentiation::StartedBy(
    const std::string& job_id, const cv1::RefreshSettings& settings) {
  absl::StatusOr<RefreshJobRecord> stored = store_->GetJob(job_id);
  if (absl::IsNotFound(stored.status())) {
    return std::optional<cv1::RefreshJob>();
  }
  if (!stored.ok()) return stored.status();
  cv1::RefreshSettings started;
  if (!started.ParseFromString(stored->request) ||
      !SameRefresh(settings, started)) {
    return RequestIdReused(absl::StrCat("a refresh (job ", job_id, ")"));
  }
  RAPPORT_ASSIGN_OR_RETURN(cv1::RefreshJob job, GetRefreshJob(job_id));
  return std::optional<cv1::RefreshJob>(std::move(job));
}

absl::StatusOr<cv1::RefreshJob> Differentiation::StartRefresh(
    const cv1::RefreshSettings& settings, const std::string& actor,
    const std::string& request_id) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request_id));
  std::vector<FieldViolation> bad;
  const int64_t now = NowMicros();
  cv1::RefreshSettings filled = settings;
  if (settings.has_as_of()) {
    // Values as of a time still to come would count every event of today as
    // long past, and govern the re-scores until the next refresh.
    absl::StatusOr<int64_t> as_of = FromTimestamp(settings.as_of(), "as_of");
    AddViolations(
        as_of.ok() ? CheckNotFuture(*as_of, now, "as_of") : as_of.status(),
        &bad);
  } else {
    *filled.mutable_as_of() = ToTimestamp(now);
  }
  if (settings.window_days() < 0 || settings.window_days() > 100000) {
    bad.push_back({"window_days", "must be 1..100000 days (0: no window)"});
  }
  if (settings.bins() == 0) {
    filled.set_bins(5);
  } else if (settings.bins() < 2 || settings.bins() > 10) {
    bad.push_back(
        {"bins", absl::StrCat("must be 2..10, not ", settings.bins())});
  }
  if (!bad.empty()) return InvalidFields(bad);

  // A retry of the request that started a job gets that job.
  const std::string keyed =
      request_id.empty() ? "" : KeyedId("refresh", request_id);
  if (!keyed.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::RefreshJob> earlier,
                             StartedBy(keyed, settings));
    if (earlier.has_value()) return *std::move(earlier);
  }

  // A stopped job is ended and its leftovers dropped first. What recovery
  // could not finish (catching up entities re-scored meanwhile needs the
  // scoring service) does not stand in the way of a refresh, which values
  // every entity anyway; a database that is away fails the next step.
  if (absl::Status recovered = Recover(); !recovered.ok()) {
    LogLine("warn", ProcessService(), "recovery before a refresh failed",
            {{"error", std::string(recovered.message())}});
  }
  RAPPORT_ASSIGN_OR_RETURN(std::optional<RefreshJobRecord> running,
                           store_->LatestJob(JobState::kRunning));
  if (running.has_value()) {
    // The job running is this request's own (its twin, sent again before
    // the first answer came, started it meanwhile): answered with it, as a
    // later retry is.
    if (!keyed.empty() && running->id == keyed) {
      RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::RefreshJob> twin,
                               StartedBy(keyed, settings));
      if (twin.has_value()) return *std::move(twin);
    }
    return absl::FailedPreconditionError(
        absl::StrCat("refresh job ", running->id,
                     " is running; follow it with GetRefreshJob"));
  }

  RefreshJobRecord record;
  record.id = keyed.empty() ? ids_->Next() : keyed;
  record.state = JobState::kRunning;
  record.request = filled.SerializeAsString();
  // Its create time is the request's instant, the default as_of: the
  // re-scores caught up after it are those from then on. Its heartbeat is
  // as it is stored (recovery above may have taken a while); its first beat
  // takes the replica's hold on it.
  record.create_time_us = now;
  record.heartbeat_time_us = NowMicros();
  absl::Status created = store_->CreateJob(
      record, {.time_us = now,
               .actor = actor,
               .rpc = "RefreshScores",
               .resource = absl::StrCat("refreshJobs/", record.id),
               .request_id = request_id,
               .outcome = "started",
               .details = absl::StrCat(
                   "as_of=",
                   FormatRfc3339Micros(
                       FromTimestamp(filled.as_of(), "as_of").value_or(0)),
                   " window_days=", filled.window_days(), " bins=",
                   filled.bins(), filled.with_clv() ? " with_clv" : "")});
  if (!created.ok() && IsPassing(created)) {
    // The answer may have been lost after the job was stored: then it is
    // this call's to run (stored as made here, at this call's instant), or
    // it would stay running with no one running it, and a retry under the
    // same request id would be given it.
    absl::StatusOr<RefreshJobRecord> stored = store_->GetJob(record.id);
    if (stored.ok() && stored->state == JobState::kRunning &&
        stored->create_time_us == now && stored->request == record.request) {
      created = absl::OkStatus();
    }
  }
  if (!created.ok() && !keyed.empty() &&
      (absl::IsFailedPrecondition(created) || absl::IsAlreadyExists(created))) {
    // A twin of this call (a retry sent twice at once) started it first.
    RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::RefreshJob> twin,
                             StartedBy(keyed, settings));
    if (twin.has_value()) return *std::move(twin);
  }
  RAPPORT_RETURN_IF_ERROR(created);

  auto job = std::make_unique<Job>();
  job->id = record.id;
  job->actor = actor;
  job->settings = filled;
  job->create_time_us = now;
  job->phases = filled.with_clv() ? 3 : 2;
  Job* raw = job.get();
  {
    absl::MutexLock lock(&mu_);
    // Reap the jobs that ended.
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if ((*it)->finished.load()) {
        (*it)->thread.join();
        it = jobs_.erase(it);
      } else {
        ++it;
      }
    }
    jobs_.push_back(std::move(job));
    raw->thread = std::thread([this, raw] { RunJob(*raw); });
  }
  return ToJob(record);
}

absl::StatusOr<cv1::RefreshJob> Differentiation::GetRefreshJob(
    const std::string& id) {
  // Job ids are the kit's own: anything else is refused before it reaches
  // the store (or an answer quoting it).
  RAPPORT_RETURN_IF_ERROR(CheckId(id, "id"));
  RAPPORT_ASSIGN_OR_RETURN(RefreshJobRecord record, store_->GetJob(id));
  if (record.state == JobState::kRunning &&
      record.heartbeat_time_us <
          NowMicros() - absl::ToInt64Microseconds(std::min(
                            options_.stale_after, options_.gone_after))) {
    // Ends the stopped job, and only that: the rest of recovery (catching
    // up the entities re-scored during it, which calls the scoring service)
    // is the background recovery's, not this reader's to wait for.
    if (absl::Status ended = EndStaleJobs().status(); !ended.ok()) {
      LogLine("warn", ProcessService(), "ending a stale job failed",
              {{"job", id}, {"error", std::string(ended.message())}});
    }
    RAPPORT_ASSIGN_OR_RETURN(record, store_->GetJob(id));
  }
  return ToJob(record);
}

void Differentiation::RunJob(Job& job) {
  metrics::RefreshJobMetrics::Get().Started();
  const absl::Time started = absl::Now();
  std::thread heartbeat([this, &job] {
    job.mu.Lock();
    // The first beat at once: it takes the replica's hold on the job.
    for (bool first = true;
         first || !job.mu.AwaitWithTimeout(absl::Condition(&job.ended),
                                           options_.heartbeat);
         first = false) {
      job.mu.Unlock();
      absl::Status s = store_->UpdateProgress(job.id, job.done(),
                                              job.total.load(), NowMicros());
      if (absl::IsFailedPrecondition(s) && !job.recording_end.load() &&
          !job.cancel.cancelled()) {
        // Ended by another replica's recovery (this one was cut off for
        // longer than stale_after): its set is gone and a new refresh may
        // run, so this one stops instead of scoring on for nothing.
        LogError(ProcessService(), "refresh ended elsewhere; stopping it",
                 {{"job", job.id}});
        job.cancel.Cancel();
      } else if (!s.ok() &&
                 !(absl::IsFailedPrecondition(s) && job.recording_end.load())) {
        LogError(ProcessService(), "cannot record refresh progress",
                 {{"job", job.id}, {"error", std::string(s.message())}});
      }
      job.mu.Lock();
    }
    job.mu.Unlock();
  });
  absl::Status status = Refresh(job);
  job.recording_end.store(true);
  // The heartbeat goes on until the end is recorded: a job whose end is
  // being retried through a loss of the database is not stale.
  auto stop_heartbeat = [this, &job, &heartbeat] {
    {
      absl::MutexLock lock(&job.mu);
      job.ended = true;
    }
    heartbeat.join();
    // Its connection is not held idle between refreshes (each replica would
    // keep one beside its pool).
    store_->HeartbeatsStopped();
  };

  // A publication whose answer was lost (the connection broke after the
  // swap) still published: the live set says so, once the database answers.
  // Until then the job's outcome is unknown and nothing is recorded (should
  // the database stay away, recovery decides it the same way).
  bool settled = status.ok();
  auto settle = [&]() -> absl::Status {
    if (settled) return absl::OkStatus();
    // After a publication whose answer was lost, once no swap is pending
    // (a plain read could miss the swap its connection left behind).
    absl::StatusOr<std::optional<std::string>> live =
        job.publish_unanswered ? store_->SettledLiveSetJob()
                               : store_->LiveSetJob();
    if (!live.ok()) return live.status();
    if (*live == job.id) {
      LogError(ProcessService(), "refresh published before it failed",
               {{"job", job.id}, {"error", std::string(status.message())}});
      status = absl::OkStatus();
    }
    settled = true;
    return absl::OkStatus();
  };
  RefreshJobRecord record;
  audit::Event end;
  auto describe = [&] {
    record = RefreshJobRecord();
    record.id = job.id;
    record.state = status.ok() ? JobState::kSucceeded : JobState::kFailed;
    if (!status.ok()) {
      // Readers see the job's error: internal detail stays in the log.
      const absl::Status shown = Redacted(status);
      record.error = absl::StrCat(absl::StatusCodeToString(shown.code()), ": ",
                                  shown.message());
    }
    record.total = job.total.load();
    record.done = status.ok() ? record.total : job.done();
    record.end_time_us = NowMicros();
    end = audit::Event{.time_us = *record.end_time_us,
                       .actor = job.actor,
                       .rpc = "RefreshScores",
                       .resource = absl::StrCat("refreshJobs/", job.id),
                       .outcome = status.ok() ? "succeeded" : "failed",
                       .details = status.ok()
                                      ? absl::StrCat("entities=", record.total)
                                      : record.error};
  };
  // The end is recorded even through a short loss of the database (for up
  // to stale_after, the heartbeat going on meanwhile), so that the job does
  // not stay RUNNING, refusing new refreshes, and then get ended by recovery
  // for a reason that is not its own.
  absl::Status finished;
  absl::Duration pause = absl::Milliseconds(100);
  const absl::Time give_up = absl::Now() + options_.stale_after;
  bool described = false;
  for (bool tried = false;; tried = true) {
    finished = settle();
    if (finished.ok()) {
      if (!described) {
        describe();
        described = true;
      }
      finished = store_->FinishJob(record, end);
      if (tried && absl::IsFailedPrecondition(finished)) {
        // An earlier attempt committed and its answer was lost: the job
        // ended as this one says.
        absl::StatusOr<RefreshJobRecord> stored = store_->GetJob(job.id);
        if (stored.ok() && stored->state == record.state) {
          finished = absl::OkStatus();
        }
      }
    }
    if (!IsPassing(finished) || absl::Now() + pause > give_up ||
        stopping_.WaitForNotificationWithTimeout(pause)) {
      break;
    }
    pause = std::min(pause * 2, absl::Seconds(5));
  }
  // Counted once its end is on record; else the recovery that ends it (on
  // any replica, perhaps already) counts it.
  if (finished.ok()) {
    metrics::RefreshJobMetrics::Get().Ended(status.ok(), absl::Now() - started,
                                            job.total.load());
  } else {
    metrics::RefreshJobMetrics::Get().LeftToRecovery();
  }
  stop_heartbeat();
  if (!finished.ok()) {
    LogError(ProcessService(), "cannot record the end of a refresh",
             {{"job", job.id}, {"error", std::string(finished.message())}});
  } else {
    LogInfo(ProcessService(), "refresh ended",
            {{"job", job.id},
             {"state", status.ok() ? "SUCCEEDED" : "FAILED"},
             {"entities", absl::StrCat(record.total)},
             {"seconds", absl::StrCat(static_cast<double>(*record.end_time_us -
                                                          job.create_time_us) /
                                      1e6)},
             {"steps", job.timings},
             {"error", record.error}});
    if (status.ok()) {
      Reached(RefreshStep::kFinished);
      if (absl::Status s = CatchUp(job.id, job.create_time_us, {}); !s.ok()) {
        LogLine(stopping_.HasBeenNotified() ? "info" : "error",
                ProcessService(),
                "cannot re-score the entities valued during a refresh; "
                "recovery will",
                {{"job", job.id}, {"error", std::string(s.message())}});
      }
    }
  }
  job.finished.store(true);
}

absl::Status Differentiation::CatchUp(
    const std::string& job_id, int64_t create_time_us,
    std::vector<std::string> rescored_meanwhile) {
  {
    absl::MutexLock l(&mu_);
    if (!catching_up_.insert(job_id).second) return absl::OkStatus();
  }
  absl::Cleanup done = [&] {
    absl::MutexLock l(&mu_);
    catching_up_.erase(job_id);
  };
  // Activity recorded while the job ran re-scored its entities against the
  // old model, into the replaced set; a re-score racing the swap may have
  // written an old-model value into the new set. Both are scored again now.
  std::vector<std::string>& ids = rescored_meanwhile;
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<std::string> replaced,
      store_->RescoredInReplacedSet(job_id, create_time_us));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> racing,
                           store_->ValuedByOtherModels(job_id));
  ids.insert(ids.end(), replaced.begin(), replaced.end());
  ids.insert(ids.end(), racing.begin(), racing.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const size_t step = static_cast<size_t>(std::max(1, options_.rescore_batch));
  for (size_t begin = 0; begin < ids.size(); begin += step) {
    // A replica that stops leaves the rest to the next recovery, on any
    // replica: its replaced set stays until then.
    if (stopping_.HasBeenNotified()) {
      return absl::UnavailableError(
          "this replica is stopping; the next recovery catches up");
    }
    std::vector<std::string> batch(
        ids.begin() + begin, ids.begin() + std::min(ids.size(), begin + step));
    const std::vector<absl::Status> outcome = RescoreEach(batch);
    for (size_t i = 0; i < outcome.size() && i < batch.size(); ++i) {
      absl::Status s = outcome[i];
      if (s.ok() || absl::IsNotFound(s)) continue;
      // A database or scoring service away: caught up later, whole.
      if (IsPassing(s)) return s;
      // A batch fails whole for one entity in it: each is tried alone.
      if (batch.size() > 1) s = RescoreEach({batch[i]}).front();
      if (s.ok() || absl::IsNotFound(s)) continue;
      if (IsPassing(s)) return s;
      // An entity that cannot be scored at all (its facts past what the
      // engine takes) would stop every later catch-up too: it keeps the
      // value it has, and the log says which.
      LogError(ProcessService(), "an entity could not be caught up",
               {{"job", job_id},
                {"entity", batch[i]},
                {"error", std::string(s.message())}});
    }
  }
  // Entities deleted, merged or erased while the job ran went with their
  // values, which the job then published again.
  RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> gone,
                           store_->DropValuesOfEntitiesGone());
  if (!gone.empty()) {
    LogInfo(ProcessService(),
            "values of entities gone during a refresh dropped",
            {{"job", job_id}, {"entities", absl::StrCat(gone.size())}});
  }
  Reached(RefreshStep::kCaughtUp);
  // Kept as the previous set: scorecards show the trend against it.
  return store_->RetireReplacedSet(job_id);
}

absl::Status Differentiation::Refresh(Job& job) {
  Reached(RefreshStep::kStarted);
  const absl::Time begun = absl::Now();
  const cv1::RefreshSettings& r = job.settings;
  CountWindow window;
  RAPPORT_ASSIGN_OR_RETURN(window.as_of_us, FromTimestamp(r.as_of(), "as_of"));
  if (r.window_days() > 0) window.window_days = r.window_days();
  RAPPORT_ASSIGN_OR_RETURN(int64_t total, counterpart_->CountEntities());
  job.total.store(total);

  std::vector<Prediction> predictions;
  std::string clv_model;
  if (r.with_clv())
    RAPPORT_RETURN_IF_ERROR(PredictClv(job, &predictions, &clv_model));
  std::atomic<int64_t>& sent = job.phase[r.with_clv() ? 1 : 0];
  std::atomic<int64_t>& stored = job.phase[r.with_clv() ? 2 : 1];

  RAPPORT_RETURN_IF_ERROR(store_->BeginValueSet(job.id));
  const absl::Time started = absl::Now();
  absl::Time facts_sent = started;
  auto discard = [&](absl::Status s) {
    store_->DiscardValueSet(job.id)
        .IgnoreError();  // the job's error says what matters
    return s;
  };
  // Cancelled (the replica stopping, or the job ended elsewhere) once the
  // scores were in: the set is not published, and the stop does not wait
  // for its indexes to be built.
  auto cancelled = [&] { return job.cancel.cancelled(); };
  const absl::Status kCancelled = absl::CancelledError(
      "the refresh was cancelled (its service stopping, or the job ended "
      "elsewhere)");

  sv1::ScoringConfig config;
  *config.mutable_as_of() = r.as_of();
  config.set_window_days(r.window_days());
  config.set_bins(r.bins());
  config.set_response_batch_size(options_.batch_size);
  sv1::ScoreModel model;
  bool has_model = false;
  size_t next_prediction = 0;
  ParallelAppender appender(store_, job.id, options_.write_threads, &stored);
  absl::Status scored = scoring_->ScorePopulation(
      config,
      [&](const ScoringClient::Writer<sv1::ScorePopulationRequest>& write) {
        sent = 0;  // a call made again (a busy replica) counts afresh
        sv1::ScorePopulationRequest message;
        absl::Status s = counterpart_->ScanFacts(
            window, options_.batch_size,
            [&](std::vector<EntityFacts>& batch) -> absl::Status {
              for (const EntityFacts& f : batch) {
                if (f.frequency == 0 && f.cost_to_serve.is_zero()) {
                  message.add_entity_ids(f.entity_id);  // a Prospect
                } else {
                  RAPPORT_RETURN_IF_ERROR(SetFacts(f, message.add_facts()));
                }
              }
              if (!write(message)) {
                return absl::CancelledError(
                    "the scoring service closed the stream");
              }
              message.Clear();
              sent += static_cast<int64_t>(batch.size());
              return absl::OkStatus();
            });
        facts_sent = absl::Now();
        return s;
      },
      [&](sv1::ScorePopulationResponse& response) -> absl::Status {
        std::vector<StoredValue> values;
        values.reserve(response.scores_size());
        for (const sv1::EntityScore& s : response.scores()) {
          RAPPORT_ASSIGN_OR_RETURN(
              StoredValue v, FromEntityScore(s, job.id, job.create_time_us));
          // Predictions and scores both come in id byte order.
          while (next_prediction < predictions.size() &&
                 predictions[next_prediction].entity_id < v.entity_id) {
            ++next_prediction;
          }
          if (next_prediction < predictions.size() &&
              predictions[next_prediction].entity_id == v.entity_id) {
            const Prediction& p = predictions[next_prediction];
            v.p_alive = p.p_alive;
            v.expected_purchases = p.expected_purchases;
            v.clv = p.clv;
          }
          values.push_back(std::move(v));
        }
        RAPPORT_RETURN_IF_ERROR(appender.Push(std::move(values)));
        if (response.has_model()) {
          model = std::move(*response.mutable_model());
          has_model = true;
        }
        return absl::OkStatus();
      },
      &job.cancel);
  absl::Status appended = appender.Finish();
  if (scored.ok()) scored = appended;
  if (!scored.ok()) return discard(scored);
  if (!has_model)
    return discard(absl::InternalError("the scoring service sent no model"));
  Reached(RefreshStep::kValuesStaged);
  if (cancelled()) return discard(kCancelled);

  const absl::Time values_staged = absl::Now();
  if (absl::Status s =
          store_->SetModels(job.id, model.SerializeAsString(), clv_model);
      !s.ok()) {
    return discard(s);
  }
  {
    absl::MutexLock lock(&mu_);
    models_.erase(job.id);
  }
  Reached(RefreshStep::kModelsStored);
  if (cancelled()) return discard(kCancelled);
  if (absl::Status s = store_->PublishValueSet(job.id); !s.ok()) {
    if (absl::IsUnavailable(s)) job.publish_unanswered = true;
    return discard(s);
  }
  Reached(RefreshStep::kPublished);
  job.timings =
      absl::StrFormat("clv %.2f s, facts %.2f s, values %.2f s, publish %.2f s",
                      absl::ToDoubleSeconds(started - begun),
                      absl::ToDoubleSeconds(facts_sent - started),
                      absl::ToDoubleSeconds(values_staged - facts_sent),
                      absl::ToDoubleSeconds(absl::Now() - values_staged));
  return absl::OkStatus();
}

absl::Status Differentiation::PredictClv(Job& job,
                                         std::vector<Prediction>* predictions,
                                         std::string* clv_model) {
  const cv1::RefreshSettings& r = job.settings;
  // The models see every event up to as_of (SCORING.md section 7: T counts
  // from the first purchase ever), whatever window the R, F and M count in.
  CountWindow window;
  RAPPORT_ASSIGN_OR_RETURN(window.as_of_us, FromTimestamp(r.as_of(), "as_of"));

  // Every entity's event days go once, as events (one per day, its sum),
  // which the scoring service summarises exactly as it would the raw log,
  // fits BG/NBD (and Gamma-Gamma when the repeat buyers allow it) on, and
  // predicts for.
  sv1::PredictionConfig config;
  config.mutable_fit()->set_unit(sv1::TIME_UNIT_DAY);
  config.mutable_fit()->set_fit_spend(true);
  config.set_predict_periods(options_.clv_predict_days);
  config.set_horizon_months(options_.clv_horizon_months);
  config.set_discount_monthly(options_.clv_discount_monthly);
  config.set_response_batch_size(options_.batch_size);
  *config.mutable_as_of() = r.as_of();
  std::atomic<int64_t>& shipped = job.phase[0];
  sv1::ClvModel fitted;
  absl::Status predicted = scoring_->PredictClv(
      config,
      [&](const ScoringClient::Writer<sv1::PredictClvRequest>& write) {
        shipped = 0;  // a call made again (a busy replica) counts afresh
        sv1::PredictClvRequest request;
        return counterpart_->ScanEventDays(
            window, options_.batch_size,
            [&](std::vector<EventDay>& batch) -> absl::Status {
              auto send = [&]() -> absl::Status {
                if (!write(request)) {
                  return absl::CancelledError(
                      "the scoring service closed the stream");
                }
                request.Clear();
                return absl::OkStatus();
              };
              for (size_t i = 0; i < batch.size(); ++i) {
                const EventDay& d = batch[i];
                // Counted before it is sent: a rejection of an early message
                // seen only by a later write is not "no events".
                if (i == 0 || batch[i - 1].entity_id != d.entity_id) ++shipped;
                sv1::ActivityEvent* e = request.add_events();
                e->set_entity_id(d.entity_id);
                *e->mutable_time() = ToTimestamp(d.day * kMicrosPerDay);
                RAPPORT_ASSIGN_OR_RETURN(*e->mutable_amount(),
                                         ToMoney(d.amount, "", "amount"));
                // Messages stay under the servers' --max_message_bytes
                // however many days the entities have.
                if (request.events_size() >= options_.clv_events_per_message) {
                  RAPPORT_RETURN_IF_ERROR(send());
                }
              }
              if (request.events_size() > 0) RAPPORT_RETURN_IF_ERROR(send());
              return absl::OkStatus();
            });
      },
      [&](sv1::PredictClvResponse& response) -> absl::Status {
        if (response.has_model()) fitted = response.model();
        for (sv1::CustomerPrediction& p : *response.mutable_predictions()) {
          Prediction& out = predictions->emplace_back();
          out.entity_id = std::move(*p.mutable_entity_id());
          out.p_alive = Finite(p.p_alive());
          out.expected_purchases = Finite(p.expected_purchases());
          out.clv = Finite(p.clv());
        }
        return absl::OkStatus();
      },
      &job.cancel);
  if (ScoringCode(predicted) == absl::StatusCode::kInvalidArgument &&
      shipped.load() == 0) {
    // No entity has an event up to as_of: there is nothing to fit, and
    // nobody to predict for (everyone is a Prospect).
    return absl::OkStatus();
  }
  RAPPORT_RETURN_IF_ERROR(predicted);
  if (!fitted.has_bgnbd())
    return absl::InternalError("the scoring service sent no CLV model");
  if (!fitted.has_gamma_gamma()) {
    for (Prediction& p : *predictions) p.clv.reset();  // no spend model
  }
  *clv_model = fitted.SerializeAsString();
  return absl::OkStatus();
}

// --- Recovery ----------------------------------------------------------------

absl::StatusOr<absl::flat_hash_set<std::string>>
Differentiation::EndStaleJobs() {
  const int64_t now = NowMicros();
  const int64_t stale_before =
      now - absl::ToInt64Microseconds(options_.stale_after);
  const int64_t gone_before =
      now - absl::ToInt64Microseconds(options_.gone_after);
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<RefreshJobRecord> ended,
      store_->EndStaleJobs(stale_before, gone_before, kStaleError, now));
  absl::MutexLock l(&mu_);
  for (const RefreshJobRecord& job : ended) {
    metrics::RefreshJobMetrics::Get().Recovered(job.state ==
                                                JobState::kSucceeded);
    ended_stale_.insert(job.id);
    LogInfo(ProcessService(), "refresh ended by recovery",
            {{"job", job.id},
             {"state",
              job.state == JobState::kSucceeded ? "SUCCEEDED" : "FAILED"}});
  }
  return ended_stale_;
}

absl::Status Differentiation::Recover() {
  const int64_t stale_before =
      NowMicros() - absl::ToInt64Microseconds(options_.stale_after);
  RAPPORT_ASSIGN_OR_RETURN(absl::flat_hash_set<std::string> recovered,
                           EndStaleJobs());
  RAPPORT_ASSIGN_OR_RETURN(std::vector<LeftoverSet> leftovers,
                           store_->LeftoverSets());
  {
    // A job ended here is remembered while it leaves a set behind.
    absl::flat_hash_set<std::string> left;
    for (const LeftoverSet& set : leftovers) left.insert(set.job_id);
    absl::MutexLock l(&mu_);
    absl::erase_if(ended_stale_,
                   [&](const std::string& id) { return !left.contains(id); });
  }
  if (leftovers.empty()) return absl::OkStatus();
  RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> live,
                           store_->LiveSetJob());
  // Each leftover on its own: one that cannot be dealt with now (its
  // catch-up needs the scoring service) leaves the others to be; the first
  // failure is the answer, and the next recovery tries it again.
  absl::Status first_failure;
  auto note = [&first_failure](absl::Status s) {
    if (first_failure.ok()) first_failure = std::move(s);
  };
  for (const LeftoverSet& set : leftovers) {
    absl::StatusOr<RefreshJobRecord> job = store_->GetJob(set.job_id);
    if (!job.ok() && !absl::IsNotFound(job.status())) {
      note(job.status());
      continue;
    }
    if (job.ok() && job->state == JobState::kRunning)
      continue;  // its replica is at work
    if (set.kind == LeftoverSet::Kind::kStaged) {
      note(store_->DiscardValueSet(set.job_id));
      continue;
    }
    // A replaced set: the replica of a job that ended lately may still be
    // catching up with it.
    if (job.ok() && !recovered.contains(set.job_id) &&
        job->end_time_us.value_or(0) > stale_before) {
      continue;
    }
    if (job.ok() && job->state == JobState::kSucceeded && live == set.job_id) {
      note(CatchUp(set.job_id, job->create_time_us, {}));
    } else {
      note(store_->DropReplacedSet(set.job_id));
    }
  }
  return first_failure;
}

}  // namespace rapport::differentiation
