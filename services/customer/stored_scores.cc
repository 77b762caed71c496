#include "services/customer/stored_scores.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto_convert.h"
#include "common/status.h"

namespace rapport::customer {
namespace {

namespace sv1 = ::rapport::scoring::v1;

constexpr char kService[] = "customer";
constexpr char kStaleError[] = "the replica running it stopped";
constexpr int kMaxSourceBytes = 64;

// The scoring service's answer as a status whose message says where it came
// from.
absl::Status ScoringError(const grpc::Status& status, absl::string_view what) {
  absl::Status s = FromGrpcStatus(status);
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

const char* TierName(int tier) {
  switch (tier) {
    case v1::TIER_LEAD:
      return "Lead";
    case v1::TIER_IRON:
      return "Iron";
    case v1::TIER_GOLD:
      return "Gold";
    case v1::TIER_PLATINUM:
      return "Platinum";
    default:
      return "Unspecified";
  }
}

// Average of `count` values summing to `sum`, rounded half away from zero.
int32_t RoundedAverage(int64_t sum, int64_t count) {
  if (count <= 0) return 0;
  const int64_t magnitude = (2 * (sum < 0 ? -sum : sum) + count) / (2 * count);
  return static_cast<int32_t>(sum < 0 ? -magnitude : magnitude);
}

absl::StatusOr<StoredScore> FromEntityScore(const sv1::EntityScore& s,
                                            const std::string& model_id,
                                            int64_t score_time_us) {
  StoredScore v;
  v.customer_id = s.entity_id();
  v.model_id = model_id;
  if (s.has_recency_days()) v.recency_days = s.recency_days();
  v.frequency = s.frequency();
  RAPPORT_ASSIGN_OR_RETURN(v.monetary,
                           FromMoney(s.monetary(), "score.monetary"));
  v.r = s.r();
  v.f = s.f();
  v.m = s.m();
  v.segment = s.segment();
  v.value_hundredths = s.value_hundredths();
  RAPPORT_ASSIGN_OR_RETURN(v.cost_to_serve,
                           FromMoney(s.cost_to_serve(), "score.cost_to_serve"));
  RAPPORT_ASSIGN_OR_RETURN(v.profit, FromMoney(s.profit(), "score.profit"));
  v.tier = static_cast<int>(s.tier());  // same numbering in both APIs
  v.score_time_us = score_time_us;
  return v;
}

// A model's output, or nothing when it is not a number (a degenerate fit).
std::optional<double> Finite(double x) {
  if (!std::isfinite(x)) return std::nullopt;
  return x;
}

absl::Status SetFacts(const CustomerFacts& f, sv1::EntityFacts* out) {
  out->set_entity_id(f.customer_id);
  out->set_frequency(f.frequency);
  RAPPORT_ASSIGN_OR_RETURN(*out->mutable_monetary(),
                           ToMoney(f.monetary, "", "monetary"));
  if (f.last_event_us.has_value())
    *out->mutable_last_event_time() = ToTimestamp(*f.last_event_us);
  RAPPORT_ASSIGN_OR_RETURN(*out->mutable_cost_to_serve(),
                           ToMoney(f.cost_to_serve, "", "cost_to_serve"));
  return absl::OkStatus();
}

// Appends batches of values to a job's set on several threads at once (each
// its own connection), with at most `threads` batches waiting.
//
//   ParallelAppender out(store, job_id, 2);
//   RAPPORT_RETURN_IF_ERROR(out.Push(std::move(batch)));  // the first error so
//   far RAPPORT_RETURN_IF_ERROR(out.Finish());
class ParallelAppender {
 public:
  ParallelAppender(ScoreStore* store, std::string job_id, int threads,
                   std::atomic<int64_t>* stored)
      : store_(store),
        job_id_(std::move(job_id)),
        limit_(std::max(1, threads)),
        stored_(stored) {
    for (int i = 0; i < limit_; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~ParallelAppender() { Finish().IgnoreError(); }

  absl::Status Push(std::vector<StoredScore> batch) {
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
      std::vector<StoredScore> batch;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &ParallelAppender::HasWork));
        if (queue_.empty()) return;  // closed
        batch = std::move(queue_.front());
        queue_.pop_front();
        if (!error_.ok()) continue;  // drain
      }
      absl::Status s = store_->AppendScores(job_id_, batch);
      *stored_ += static_cast<int64_t>(batch.size());
      if (!s.ok()) {
        absl::MutexLock lock(&mu_);
        if (error_.ok()) error_ = s;
      }
    }
  }

  ScoreStore* const store_;
  const std::string job_id_;
  const int limit_;
  std::atomic<int64_t>* const stored_;
  absl::Mutex mu_;
  std::deque<std::vector<StoredScore>> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace

// A refresh job running in this replica.
struct StoredScoreLogic::Job {
  // Progress is counted in phases (purchase days read for the CLV fit and for
  // the prediction, facts sent, values stored), each up to `total` customers;
  // `done` is their mean, so that the bar moves through the whole job.
  int64_t done() const {
    int64_t sum = 0;
    for (const std::atomic<int64_t>& p : phase) sum += p.load();
    return std::min<int64_t>(total.load(), sum / phases);
  }

  std::string id;
  v1::RefreshScoresRequest request;  // as_of and bins filled in
  int64_t create_time_us = 0;
  int phases = 2;
  std::atomic<int64_t> total{0};
  std::atomic<int64_t> phase[4] = {0, 0, 0, 0};
  std::atomic<bool> finished{false};
  std::thread thread;
  // Seconds spent in each step, for the log line at the end.
  std::string timings;
  // Customers re-scored while the job ran (their values went with the old
  // set): scored again once the job has succeeded.
  std::vector<std::string> rescored_meanwhile;

  absl::Mutex mu;
  grpc::ClientContext* call ABSL_GUARDED_BY(mu) = nullptr;
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool ended ABSL_GUARDED_BY(mu) = false;
};

// One customer's CLV outputs.
struct StoredScoreLogic::Prediction {
  std::string customer_id;
  std::optional<double> p_alive;
  std::optional<double> expected_purchases;
  std::optional<double> clv;
};

StoredScoreLogic::StoredScoreLogic(ScoreStore* store,
                                   std::unique_ptr<ScoringStub> scoring,
                                   IdGenerator* ids, Clock clock,
                                   StoredScoreOptions options)
    : store_(store),
      scoring_(std::move(scoring)),
      ids_(ids),
      clock_(std::move(clock)),
      options_(std::move(options)),
      rescores_({.max_running = options_.rescore_concurrency,
                 .max_batch = static_cast<size_t>(options_.rescore_batch)},
                [this](const std::vector<std::string>& ids) {
                  return RescoreEach(ids);
                }) {}

StoredScoreLogic::~StoredScoreLogic() {
  {
    absl::MutexLock lock(&mu_);
    for (const std::unique_ptr<Job>& job : jobs_) {
      absl::MutexLock job_lock(&job->mu);
      job->cancelled = true;
      if (job->call != nullptr) job->call->TryCancel();
    }
  }
  WaitForJobs();
}

void StoredScoreLogic::WaitForJobs() {
  std::list<std::unique_ptr<Job>> jobs;
  {
    absl::MutexLock lock(&mu_);
    jobs.swap(jobs_);
  }
  for (const std::unique_ptr<Job>& job : jobs) {
    if (job->thread.joinable()) job->thread.join();
  }
}

int64_t StoredScoreLogic::NowMicros() const {
  return absl::ToUnixMicros(clock_());
}

std::unique_ptr<grpc::ClientContext> StoredScoreLogic::NewCall(
    absl::Duration timeout) const {
  auto call = std::make_unique<grpc::ClientContext>();
  call->set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  return call;
}

bool StoredScoreLogic::SetCall(Job& job, grpc::ClientContext* call) {
  absl::MutexLock lock(&job.mu);
  if (job.cancelled && call != nullptr) return false;
  job.call = call;
  return true;
}

absl::Status StoredScoreLogic::FailStaleJobs() {
  const int64_t now = NowMicros();
  return store_->FailStaleJobs(
      now - absl::ToInt64Microseconds(options_.stale_after), kStaleError, now);
}

// --- Jobs --------------------------------------------------------------------

namespace {

v1::RefreshJob ToJob(const RefreshJobRecord& r) {
  v1::RefreshJob job;
  job.set_id(r.id);
  job.set_state(static_cast<v1::RefreshJob::State>(static_cast<int>(r.state)));
  job.set_done(r.done);
  job.set_total(r.total);
  *job.mutable_create_time() = ToTimestamp(r.create_time_us);
  if (r.end_time_us.has_value())
    *job.mutable_end_time() = ToTimestamp(*r.end_time_us);
  job.set_error(r.error);
  job.mutable_request()->ParseFromString(r.request);
  return job;
}

}  // namespace

absl::StatusOr<v1::RefreshJob> StoredScoreLogic::StartRefresh(
    const v1::RefreshScoresRequest& request) {
  std::vector<FieldViolation> bad;
  const int64_t now = NowMicros();
  v1::RefreshScoresRequest filled = request;
  if (request.has_as_of()) {
    if (absl::StatusOr<int64_t> t = FromTimestamp(request.as_of(), "as_of");
        !t.ok()) {
      bad.push_back({"as_of", std::string(t.status().message())});
    }
  } else {
    *filled.mutable_as_of() = ToTimestamp(now);
  }
  if (request.window_days() < 0 || request.window_days() > 100000) {
    bad.push_back({"window_days", "must be 1..100000 days (0: no window)"});
  }
  if (request.bins() == 0) {
    filled.set_bins(5);
  } else if (request.bins() < 2 || request.bins() > 10) {
    bad.push_back(
        {"bins", absl::StrCat("must be 2..10, not ", request.bins())});
  }
  if (!bad.empty()) return InvalidFields(bad);

  RAPPORT_RETURN_IF_ERROR(FailStaleJobs());
  RAPPORT_ASSIGN_OR_RETURN(std::optional<RefreshJobRecord> running,
                           store_->LatestJob(JobState::kRunning));
  if (running.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat("refresh job ", running->id,
                     " is running; follow it with GetRefreshJob"));
  }

  RefreshJobRecord record;
  record.id = ids_->Next();
  record.state = JobState::kRunning;
  record.request = filled.SerializeAsString();
  record.create_time_us = now;
  record.heartbeat_time_us = now;
  RAPPORT_RETURN_IF_ERROR(store_->CreateJob(record));

  auto job = std::make_unique<Job>();
  job->id = record.id;
  job->request = filled;
  job->create_time_us = now;
  job->phases = filled.with_clv() ? 4 : 2;
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

absl::StatusOr<v1::RefreshJob> StoredScoreLogic::GetRefreshJob(
    const v1::GetRefreshJobRequest& request) {
  if (request.id().empty()) return InvalidField("id", "is required");
  RAPPORT_ASSIGN_OR_RETURN(RefreshJobRecord record,
                           store_->GetJob(request.id()));
  if (record.state == JobState::kRunning &&
      record.heartbeat_time_us <
          NowMicros() - absl::ToInt64Microseconds(options_.stale_after)) {
    RAPPORT_RETURN_IF_ERROR(FailStaleJobs());
    RAPPORT_ASSIGN_OR_RETURN(record, store_->GetJob(request.id()));
  }
  return ToJob(record);
}

void StoredScoreLogic::RunJob(Job& job) {
  std::thread heartbeat([this, &job] {
    job.mu.Lock();
    while (!job.mu.AwaitWithTimeout(absl::Condition(&job.ended),
                                    options_.heartbeat)) {
      job.mu.Unlock();
      absl::Status s = store_->UpdateProgress(job.id, job.done(),
                                              job.total.load(), NowMicros());
      if (!s.ok()) {
        LogError(kService, "cannot record refresh progress",
                 {{"job", job.id}, {"error", std::string(s.message())}});
      }
      job.mu.Lock();
    }
    job.mu.Unlock();
  });
  absl::Status status = Refresh(job);
  {
    absl::MutexLock lock(&job.mu);
    job.ended = true;
  }
  heartbeat.join();

  RefreshJobRecord record;
  record.id = job.id;
  record.state = status.ok() ? JobState::kSucceeded : JobState::kFailed;
  if (!status.ok()) {
    record.error = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                status.message());
  }
  record.total = job.total.load();
  record.done = status.ok() ? record.total : job.done();
  record.end_time_us = NowMicros();
  absl::Status finished = store_->FinishJob(record);
  if (status.ok() && finished.ok()) CatchUp(job);
  if (!finished.ok()) {
    LogError(kService, "cannot record the end of a refresh",
             {{"job", job.id}, {"error", std::string(finished.message())}});
  } else {
    LogInfo(kService, "refresh ended",
            {{"job", job.id},
             {"state", status.ok() ? "SUCCEEDED" : "FAILED"},
             {"customers", absl::StrCat(record.total)},
             {"seconds", absl::StrCat(static_cast<double>(*record.end_time_us -
                                                          job.create_time_us) /
                                      1e6)},
             {"steps", job.timings},
             {"error", record.error}});
  }
  job.finished.store(true);
}

void StoredScoreLogic::CatchUp(Job& job) {
  // Purchases recorded while the job ran re-scored their customers against
  // the old model, into the old set; a re-score racing the swap may have
  // written an old-model value into the new set. Both are scored again now.
  std::vector<std::string> ids = std::move(job.rescored_meanwhile);
  absl::StatusOr<std::vector<std::string>> racing =
      store_->ScoredByOtherModels(job.id);
  absl::Status status = racing.status();
  if (racing.ok()) ids.insert(ids.end(), racing->begin(), racing->end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const size_t step = static_cast<size_t>(std::max(1, options_.rescore_batch));
  for (size_t begin = 0; begin < ids.size(); begin += step) {
    std::vector<std::string> batch(
        ids.begin() + begin, ids.begin() + std::min(ids.size(), begin + step));
    for (const absl::Status& s : RescoreEach(batch)) {
      if (status.ok() && !s.ok() && !absl::IsNotFound(s)) status = s;
    }
  }
  if (!status.ok()) {
    LogError(kService, "cannot re-score customers that bought during a refresh",
             {{"job", job.id},
              {"customers", absl::StrCat(ids.size())},
              {"error", std::string(status.message())}});
  }
}

absl::Status StoredScoreLogic::Refresh(Job& job) {
  const absl::Time begun = absl::Now();
  const v1::RefreshScoresRequest& r = job.request;
  CountWindow window;
  RAPPORT_ASSIGN_OR_RETURN(window.as_of_us, FromTimestamp(r.as_of(), "as_of"));
  if (r.window_days() > 0) window.window_days = r.window_days();
  RAPPORT_ASSIGN_OR_RETURN(int64_t total, store_->CountLiveCustomers());
  job.total.store(total);

  std::vector<Prediction> predictions;
  std::string clv_model;
  if (r.with_clv())
    RAPPORT_RETURN_IF_ERROR(PredictClv(job, &predictions, &clv_model));
  std::atomic<int64_t>& sent = job.phase[r.with_clv() ? 2 : 0];
  std::atomic<int64_t>& stored = job.phase[r.with_clv() ? 3 : 1];

  RAPPORT_RETURN_IF_ERROR(store_->BeginScoreSet(job.id));
  const absl::Time started = absl::Now();
  auto discard = [&](absl::Status s) {
    store_->DiscardScoreSet(job.id)
        .IgnoreError();  // the job's error says what matters
    return s;
  };

  std::unique_ptr<grpc::ClientContext> call = NewCall(options_.job_timeout);
  if (!SetCall(job, call.get()))
    return discard(absl::CancelledError("the service is stopping"));
  struct Unset {
    StoredScoreLogic* self;
    Job& job;
    ~Unset() { self->SetCall(job, nullptr); }
  } unset{this, job};
  auto stream = scoring_->ScorePopulation(call.get());

  sv1::ScorePopulationRequest message;
  sv1::ScoringConfig* config = message.mutable_config();
  *config->mutable_as_of() = r.as_of();
  config->set_window_days(r.window_days());
  config->set_bins(r.bins());
  config->set_response_batch_size(options_.batch_size);
  bool closed = false;
  absl::Status scanned = store_->ScanFacts(
      window, options_.batch_size,
      [&](std::vector<CustomerFacts>& batch) -> absl::Status {
        for (const CustomerFacts& f : batch) {
          if (f.frequency == 0 && f.cost_to_serve.is_zero()) {
            message.add_entity_ids(
                f.customer_id);  // a Prospect: the id is enough
          } else {
            RAPPORT_RETURN_IF_ERROR(SetFacts(f, message.add_facts()));
          }
        }
        if (!stream->Write(message)) {
          closed = true;
          return absl::CancelledError("the scoring service closed the stream");
        }
        message.Clear();
        sent += static_cast<int64_t>(batch.size());
        return absl::OkStatus();
      });
  if (scanned.ok() && message.has_config() && !stream->Write(message))
    closed = true;  // nobody
  if (closed) {
    grpc::Status status = stream->Finish();
    return discard(status.ok() ? absl::UnavailableError(
                                     "the scoring service closed the stream")
                               : ScoringError(status, "scoring service"));
  }
  if (!scanned.ok()) {
    call->TryCancel();
    stream->Finish();
    return discard(scanned);
  }
  stream->WritesDone();
  const absl::Time facts_sent = absl::Now();

  sv1::ScorePopulationResponse response;
  sv1::ScoreModel model;
  bool has_model = false;
  size_t next_prediction = 0;
  absl::Status written;
  ParallelAppender appender(store_, job.id, options_.write_threads, &stored);
  while (written.ok() && stream->Read(&response)) {
    std::vector<StoredScore> values;
    values.reserve(response.scores_size());
    for (const sv1::EntityScore& s : response.scores()) {
      absl::StatusOr<StoredScore> v =
          FromEntityScore(s, job.id, job.create_time_us);
      if (!v.ok()) {
        written = v.status();
        break;
      }
      // Predictions and scores both come in id byte order.
      while (next_prediction < predictions.size() &&
             predictions[next_prediction].customer_id < v->customer_id) {
        ++next_prediction;
      }
      if (next_prediction < predictions.size() &&
          predictions[next_prediction].customer_id == v->customer_id) {
        const Prediction& p = predictions[next_prediction];
        v->p_alive = p.p_alive;
        v->expected_purchases = p.expected_purchases;
        v->clv = p.clv;
      }
      values.push_back(*std::move(v));
    }
    if (written.ok()) written = appender.Push(std::move(values));
    if (response.has_model()) {
      model = response.model();
      has_model = true;
    }
  }
  absl::Status appended = appender.Finish();
  if (written.ok()) written = appended;
  if (!written.ok()) {
    call->TryCancel();
    stream->Finish();
    return discard(written);
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) return discard(ScoringError(status, "scoring service"));
  if (!has_model)
    return discard(absl::InternalError("the scoring service sent no model"));

  const absl::Time values_staged = absl::Now();
  RAPPORT_RETURN_IF_ERROR(
      store_->SetModels(job.id, model.SerializeAsString(), clv_model));
  {
    absl::MutexLock lock(&mu_);
    models_.erase(job.id);
  }
  absl::StatusOr<std::vector<std::string>> published =
      store_->PublishScoreSet(job.id, job.create_time_us);
  if (!published.ok()) return discard(published.status());
  job.rescored_meanwhile = *std::move(published);
  job.timings =
      absl::StrFormat("clv %.2f s, facts %.2f s, values %.2f s, publish %.2f s",
                      absl::ToDoubleSeconds(started - begun),
                      absl::ToDoubleSeconds(facts_sent - started),
                      absl::ToDoubleSeconds(values_staged - facts_sent),
                      absl::ToDoubleSeconds(absl::Now() - values_staged));
  return absl::OkStatus();
}

absl::Status StoredScoreLogic::PredictClv(Job& job,
                                          std::vector<Prediction>* predictions,
                                          std::string* clv_model) {
  const v1::RefreshScoresRequest& r = job.request;
  CountWindow window;
  RAPPORT_ASSIGN_OR_RETURN(window.as_of_us, FromTimestamp(r.as_of(), "as_of"));
  if (r.window_days() > 0) window.window_days = r.window_days();

  // Streams every customer's purchase days as events (one per day, its sum),
  // which the scoring service summarises exactly as it would the raw log.
  auto send_days =
      [&](std::atomic<int64_t>& progress,
          const std::function<bool(
              google::protobuf::RepeatedPtrField<sv1::ActivityEvent>&)>& write)
      -> absl::Status {
    progress.store(0);
    google::protobuf::RepeatedPtrField<sv1::ActivityEvent> events;
    return store_->ScanPurchaseDays(
        window, options_.batch_size,
        [&](std::vector<PurchaseDay>& batch) -> absl::Status {
          int64_t customers = 0;
          for (size_t i = 0; i < batch.size(); ++i) {
            const PurchaseDay& d = batch[i];
            if (i == 0 || batch[i - 1].customer_id != d.customer_id)
              ++customers;
            sv1::ActivityEvent* e = events.Add();
            e->set_entity_id(d.customer_id);
            *e->mutable_time() = ToTimestamp(d.day * kMicrosPerDay);
            RAPPORT_ASSIGN_OR_RETURN(*e->mutable_amount(),
                                     ToMoney(d.amount, "", "amount"));
          }
          if (!write(events))
            return absl::CancelledError(
                "the scoring service closed the stream");
          events.Clear();
          progress += customers;
          return absl::OkStatus();
        });
  };

  // 1. Fit BG/NBD and Gamma-Gamma; without repeat buyers Gamma-Gamma cannot
  // be fitted, and the job goes on without CLV amounts.
  sv1::ClvModel fitted;
  for (const bool spend : {true, false}) {
    std::unique_ptr<grpc::ClientContext> call = NewCall(options_.job_timeout);
    if (!SetCall(job, call.get()))
      return absl::CancelledError("the service is stopping");
    sv1::FitClvModelResponse response;
    auto writer = scoring_->FitClvModel(call.get(), &response);
    sv1::FitClvModelRequest first;
    first.mutable_config()->set_unit(sv1::TIME_UNIT_DAY);
    *first.mutable_config()->mutable_as_of() = r.as_of();
    first.mutable_config()->set_fit_spend(spend);
    bool config_sent = false;
    absl::Status sent = send_days(
        job.phase[0],
        [&](google::protobuf::RepeatedPtrField<sv1::ActivityEvent>& e) {
          sv1::FitClvModelRequest request;
          if (!config_sent) request = first;
          config_sent = true;
          request.mutable_events()->Swap(&e);
          return writer->Write(request);
        });
    if (sent.ok() && !config_sent)
      writer->Write(first);  // no purchases: the service says so
    if (!sent.ok() && !absl::IsCancelled(sent)) {
      call->TryCancel();
      writer->Finish();
      SetCall(job, nullptr);
      return sent;
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    SetCall(job, nullptr);
    if (status.ok()) {
      fitted = response.model();
      break;
    }
    if (!spend || status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
      return ScoringError(status, "fitting the CLV models");
    }
  }
  *clv_model = fitted.SerializeAsString();

  // 2. Predict for every customer with purchases.
  std::unique_ptr<grpc::ClientContext> call = NewCall(options_.job_timeout);
  if (!SetCall(job, call.get()))
    return absl::CancelledError("the service is stopping");
  struct Unset {
    StoredScoreLogic* self;
    Job& job;
    ~Unset() { self->SetCall(job, nullptr); }
  } unset{this, job};
  auto stream = scoring_->PredictClv(call.get());
  sv1::PredictClvRequest first;
  sv1::PredictionConfig* config = first.mutable_config();
  *config->mutable_model() = fitted;
  config->set_predict_periods(options_.clv_predict_days);
  config->set_horizon_months(options_.clv_horizon_months);
  config->set_discount_monthly(options_.clv_discount_monthly);
  config->set_response_batch_size(options_.batch_size);
  *config->mutable_as_of() = r.as_of();
  bool config_sent = false;
  absl::Status sent =
      send_days(job.phase[1],
                [&](google::protobuf::RepeatedPtrField<sv1::ActivityEvent>& e) {
                  sv1::PredictClvRequest request;
                  if (!config_sent) request = first;
                  config_sent = true;
                  request.mutable_events()->Swap(&e);
                  return stream->Write(request);
                });
  if (sent.ok() && !config_sent) stream->Write(first);
  if (!sent.ok() && !absl::IsCancelled(sent)) {
    call->TryCancel();
    stream->Finish();
    return sent;
  }
  stream->WritesDone();
  const bool has_spend = fitted.has_gamma_gamma();
  sv1::PredictClvResponse response;
  while (stream->Read(&response)) {
    for (const sv1::CustomerPrediction& p : response.predictions()) {
      Prediction& out = predictions->emplace_back();
      out.customer_id = p.entity_id();
      out.p_alive = Finite(p.p_alive());
      out.expected_purchases = Finite(p.expected_purchases());
      if (has_spend) out.clv = Finite(p.clv());
    }
  }
  grpc::Status status = stream->Finish();
  if (!status.ok()) return ScoringError(status, "predicting CLV");
  return absl::OkStatus();
}

// --- Values ------------------------------------------------------------------

absl::StatusOr<std::shared_ptr<const StoredScoreLogic::ScoreModel>>
StoredScoreLogic::ModelOf(const std::string& job_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = models_.find(job_id);
    if (it != models_.end()) return it->second;
  }
  absl::StatusOr<RefreshJobRecord> job = store_->GetJob(job_id);
  if (absl::IsNotFound(job.status()))
    return std::shared_ptr<const ScoreModel>();
  if (!job.ok()) return job.status();
  if (job->score_model.empty()) return std::shared_ptr<const ScoreModel>();
  auto model = std::make_shared<ScoreModel>();
  if (!model->ParseFromString(job->score_model)) {
    return absl::DataLossError(
        absl::StrCat("the stored model of job ", job_id, " is unreadable"));
  }
  absl::MutexLock lock(&mu_);
  if (models_.size() >= 64)
    models_.clear();  // models are small; a few jobs are in use
  models_[job_id] = model;
  return std::shared_ptr<const ScoreModel>(std::move(model));
}

namespace {

absl::StatusOr<std::optional<v1::ContactPolicy>> PolicyFor(
    const sv1::ScoreModel* model, int tier, const std::string& currency) {
  if (model == nullptr) return std::optional<v1::ContactPolicy>();
  for (const sv1::ContactPolicy& p : model->contact_policies()) {
    if (static_cast<int>(p.tier()) != tier) continue;
    v1::ContactPolicy out;
    out.set_tier(static_cast<v1::Tier>(static_cast<int>(p.tier())));
    for (int c : p.channels()) out.add_channels(static_cast<v1::Channel>(c));
    out.set_service_level(p.service_level());
    RAPPORT_ASSIGN_OR_RETURN(Decimal ceiling,
                             FromMoney(p.cost_ceiling(), "cost_ceiling"));
    RAPPORT_ASSIGN_OR_RETURN(*out.mutable_cost_ceiling(),
                             ToMoney(ceiling, currency, "cost_ceiling"));
    return std::optional<v1::ContactPolicy>(std::move(out));
  }
  return std::optional<v1::ContactPolicy>();
}

}  // namespace

absl::StatusOr<v1::CustomerValue> StoredScoreLogic::ToValue(
    const StoredScore& s) {
  v1::CustomerValue v;
  v.set_customer_id(s.customer_id);
  if (s.recency_days.has_value()) v.set_recency_days(*s.recency_days);
  v.set_frequency(s.frequency);
  RAPPORT_ASSIGN_OR_RETURN(*v.mutable_monetary(),
                           ToMoney(s.monetary, options_.currency, "monetary"));
  v.set_r(s.r);
  v.set_f(s.f);
  v.set_m(s.m);
  v.set_segment(s.segment);
  v.set_value_hundredths(s.value_hundredths);
  RAPPORT_ASSIGN_OR_RETURN(
      *v.mutable_cost_to_serve(),
      ToMoney(s.cost_to_serve, options_.currency, "cost_to_serve"));
  RAPPORT_ASSIGN_OR_RETURN(*v.mutable_profit(),
                           ToMoney(s.profit, options_.currency, "profit"));
  v.set_tier(static_cast<v1::Tier>(s.tier));
  RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const ScoreModel> model,
                           ModelOf(s.model_id));
  RAPPORT_ASSIGN_OR_RETURN(std::optional<v1::ContactPolicy> policy,
                           PolicyFor(model.get(), s.tier, options_.currency));
  if (policy.has_value()) *v.mutable_contact_policy() = *std::move(policy);
  if (s.p_alive.has_value()) v.set_p_alive(*s.p_alive);
  if (s.expected_purchases.has_value())
    v.set_expected_purchases(*s.expected_purchases);
  if (s.clv.has_value()) v.set_clv(*s.clv);
  v.set_model_id(s.model_id);
  *v.mutable_score_time() = ToTimestamp(s.score_time_us);
  return v;
}

absl::StatusOr<v1::CustomerValue> StoredScoreLogic::GetCustomerValue(
    const v1::GetCustomerValueRequest& request) {
  if (request.id().empty()) return InvalidField("id", "is required");
  RAPPORT_ASSIGN_OR_RETURN(std::string id,
                           store_->ResolveLiveCustomer(request.id()));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredScore> scores,
                           store_->GetScores({id}));
  if (scores.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("customer ", id,
                     " has no stored values yet; refresh the scores first"));
  }
  return ToValue(scores.front());
}

absl::StatusOr<v1::SummarizeSegmentsResponse>
StoredScoreLogic::SummarizeSegments(
    const v1::SummarizeSegmentsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(ScoreSummary summary, store_->Summarize());
  RAPPORT_ASSIGN_OR_RETURN(std::optional<RefreshJobRecord> latest,
                           store_->LatestJob(JobState::kSucceeded));
  v1::SummarizeSegmentsResponse response;
  auto fill = [&](const GroupTotals& g, std::string name,
                  v1::GroupSummary* out) -> absl::Status {
    out->set_name(std::move(name));
    out->set_customers(g.customers);
    RAPPORT_ASSIGN_OR_RETURN(*out->mutable_revenue(),
                             ToMoney(g.revenue, options_.currency, "revenue"));
    out->set_average_value_hundredths(
        RoundedAverage(g.value_hundredths_sum, g.customers));
    return absl::OkStatus();
  };
  for (const GroupTotals& g : summary.segments) {
    RAPPORT_RETURN_IF_ERROR(fill(g, g.segment, response.add_segments()));
  }
  for (const GroupTotals& g : summary.tiers) {
    RAPPORT_RETURN_IF_ERROR(fill(g, TierName(g.tier), response.add_tiers()));
  }
  if (latest.has_value()) response.set_model_id(latest->id);
  return response;
}

absl::Status StoredScoreLogic::ExportScores(
    const v1::ExportScoresRequest& request,
    const std::function<bool(const v1::ExportScoresResponse&)>& write) {
  const std::string& source = request.external_id_source();
  if (source.size() > kMaxSourceBytes) {
    return InvalidField("external_id_source", "must be at most 64 bytes");
  }
  std::string after;
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(
        std::vector<StoredScore> page,
        store_->ExportPage(source, after, options_.export_batch_size));
    if (page.empty()) return absl::OkStatus();
    v1::ExportScoresResponse response;
    for (const StoredScore& s : page) {
      RAPPORT_ASSIGN_OR_RETURN(*response.add_values(), ToValue(s));
    }
    if (!write(response)) return absl::CancelledError("the client went away");
    if (static_cast<int>(page.size()) < options_.export_batch_size)
      return absl::OkStatus();
    after = page.back().customer_id;
  }
}

namespace {
// The most entities the scoring service takes in one ScoreEntities call.
constexpr size_t kScoreEntitiesPerCall = 10000;
}  // namespace

absl::Status StoredScoreLogic::Rescore(const std::string& customer_id) {
  if (customer_id.empty()) return InvalidField("customer_id", "is required");
  return rescores_.Submit(customer_id);
}

std::vector<absl::Status> StoredScoreLogic::RescoreEach(
    const std::vector<std::string>& ids) {
  // An id may come more than once; each customer is scored once.
  std::vector<std::string> unique = ids;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  absl::flat_hash_map<std::string, absl::Status> outcome;
  absl::Status batch = [&]() -> absl::Status {
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> latest,
                             store_->LatestJobId(JobState::kSucceeded));
    std::shared_ptr<const ScoreModel> model;
    if (latest.has_value()) {
      RAPPORT_ASSIGN_OR_RETURN(model, ModelOf(*latest));
    }
    const int64_t now = NowMicros();
    CountWindow window;
    window.as_of_us = now;
    if (model != nullptr && model->window_days() > 0)
      window.window_days = model->window_days();
    RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerFacts> facts,
                             FactsOfLive(unique, window, &outcome));
    if (model == nullptr || facts.empty())
      return absl::OkStatus();  // never refreshed: nothing to keep current
    std::vector<StoredScore> scores;
    for (size_t begin = 0; begin < facts.size();
         begin += kScoreEntitiesPerCall) {
      const size_t end = std::min(facts.size(), begin + kScoreEntitiesPerCall);
      sv1::ScoreEntitiesRequest request;
      *request.mutable_model() = *model;
      *request.mutable_as_of() = ToTimestamp(now);
      for (size_t i = begin; i < end; ++i)
        RAPPORT_RETURN_IF_ERROR(SetFacts(facts[i], request.add_facts()));
      sv1::ScoreEntitiesResponse response;
      std::unique_ptr<grpc::ClientContext> call =
          NewCall(options_.call_timeout);
      grpc::Status status =
          scoring_->ScoreEntities(call.get(), request, &response);
      if (!status.ok()) return ScoringError(status, "scoring service");
      for (const sv1::EntityScore& s : response.scores()) {
        RAPPORT_ASSIGN_OR_RETURN(StoredScore score,
                                 FromEntityScore(s, *latest, now));
        scores.push_back(std::move(score));
      }
    }
    return store_->UpsertScores(scores);
  }();
  std::vector<absl::Status> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    auto it = outcome.find(id);
    out.push_back(it != outcome.end() && !it->second.ok() ? it->second : batch);
  }
  return out;
}

absl::StatusOr<std::vector<CustomerFacts>> StoredScoreLogic::FactsOfLive(
    const std::vector<std::string>& ids, const CountWindow& window,
    absl::flat_hash_map<std::string, absl::Status>* outcome) {
  // Most ids name live customers; the others are followed through their
  // merges one by one.
  RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerFacts> facts,
                           store_->FactsOf(ids, window));
  absl::flat_hash_map<std::string, bool> found;
  for (const CustomerFacts& f : facts) found[f.customer_id] = true;
  std::vector<std::string> followed;
  for (const std::string& id : ids) {
    if (found.contains(id)) continue;
    absl::StatusOr<std::string> live = store_->ResolveLiveCustomer(id);
    if (!live.ok()) {
      (*outcome)[id] = live.status();
    } else if (!found.contains(*live)) {
      found[*live] = true;
      followed.push_back(*live);
    }
  }
  if (!followed.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerFacts> more,
                             store_->FactsOf(followed, window));
    for (CustomerFacts& f : more) facts.push_back(std::move(f));
  }
  return facts;
}

absl::StatusOr<std::optional<v1::ContactPolicy>>
StoredScoreLogic::ContactPolicyOf(const std::string& customer_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredScore> scores,
                           store_->GetScores({customer_id}));
  if (scores.empty()) return std::optional<v1::ContactPolicy>();
  RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const ScoreModel> model,
                           ModelOf(scores.front().model_id));
  return PolicyFor(model.get(), scores.front().tier, options_.currency);
}

absl::Status StoredScoreLogic::AttachValues(
    std::vector<v1::Customer*> customers) {
  std::vector<std::string> ids;
  ids.reserve(customers.size());
  for (const v1::Customer* c : customers) ids.push_back(c->id());
  if (ids.empty()) return absl::OkStatus();
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredScore> scores,
                           store_->GetScores(ids));
  absl::flat_hash_map<std::string, const StoredScore*> by_id;
  for (const StoredScore& s : scores) by_id[s.customer_id] = &s;
  for (v1::Customer* c : customers) {
    auto it = by_id.find(c->id());
    if (it == by_id.end()) continue;
    RAPPORT_ASSIGN_OR_RETURN(*c->mutable_value(), ToValue(*it->second));
  }
  return absl::OkStatus();
}

}  // namespace rapport::customer
