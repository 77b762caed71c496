// Differentiation on a fake counterpart and value store and the real scoring
// service, in-process on a loopback port, reached through GrpcScoringClient:
// a refresh stores exactly what the scoring service computes from the raw
// events, activity re-scores one entity against the stored model, policies
// come with the values, failures end jobs with a reason, and a refresh
// stopped at any step is finished or undone by recovery.
#include "common/differentiation/differentiation.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/base/status_macros.h"
#include "common/differentiation/score_messages.h"
#include "common/differentiation/scoring_client.h"
#include "common/ids.h"
#include "common/metrics/metrics.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "services/scoring/scoring_logic.h"
#include "services/scoring/scoring_service.h"
#include "tests/support/test_auth.h"

namespace rapport::differentiation {
namespace {

namespace sv1 = ::rapport::scoring::v1;

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kAsOf = 1'700'000'000'000'000;

Decimal D(const char* text) { return *Decimal::Parse(text); }

// Raw events and costs in memory, facts computed the way SQL would; jobs and
// value sets kept the way MysqlValueStore keeps them.
class FakeStore final : public Counterpart, public ValueStore {
 public:
  struct Event {
    std::string entity_id;
    int64_t time_us;
    Decimal amount;
  };

  // --- test data ---
  absl::Mutex mu;
  std::map<std::string, bool> entities ABSL_GUARDED_BY(mu);  // id -> live
  std::vector<Event> purchases ABSL_GUARDED_BY(mu);
  std::vector<Event> costs ABSL_GUARDED_BY(mu);
  std::map<std::string, RefreshJobRecord> jobs ABSL_GUARDED_BY(mu);
  std::vector<audit::Event> events ABSL_GUARDED_BY(mu);
  std::map<std::string, StoredValue> scores ABSL_GUARDED_BY(mu);
  // Values written by re-scores (UpsertValues), all told.
  std::atomic<size_t> upserts{0};
  // UpsertValues and FinishJob fail this many more times as a database away
  // would.
  std::atomic<int> upserts_unavailable{0};
  // UpsertValues refuses a batch holding this entity, as a value past what
  // the store holds would be (not a passing failure).
  std::string upsert_refused ABSL_GUARDED_BY(mu);
  std::atomic<int> finishes_unavailable{0};
  // FinishJob records the end, then answers as a lost connection would.
  std::atomic<bool> finish_answer_lost{false};
  // CreateJob stores the job, then answers as a lost connection would.
  std::atomic<bool> create_answer_lost{false};
  std::string live_job ABSL_GUARDED_BY(mu);  // whose set `scores` is
  std::map<std::string, std::map<std::string, StoredValue>> staged
      ABSL_GUARDED_BY(mu);
  std::map<std::string, StoredValue> previous ABSL_GUARDED_BY(mu);
  std::map<std::string, std::map<std::string, StoredValue>> replaced
      ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> external
      ABSL_GUARDED_BY(mu);  // "source\nkey" -> id
  // When set, ScanFacts waits for it (to hold a job running).
  absl::Notification* hold_scan = nullptr;
  // Run once, before the next look for a running job (a twin call's turn).
  std::function<void()> before_latest_running;
  // Scans begun so far (a held job is held once this has moved).
  std::atomic<int> scans_begun{0};
  // When set, runs as PublishValueSet begins (outside the lock).
  std::function<void()> before_publish;
  std::function<void()> after_upsert;      // called outside the lock
  std::function<void()> after_get_values;  // likewise
  // When set, PublishValueSet publishes and then answers this error (the
  // answer of a swap that happened was lost).
  absl::Status publish_answer;
  // LiveSetJob fails (UNAVAILABLE) this many times first.
  int live_set_failures ABSL_GUARDED_BY(mu) = 0;
  // Heartbeats of jobs no longer running, and values appended, so far.
  int heartbeats_not_running ABSL_GUARDED_BY(mu) = 0;
  int appended_values ABSL_GUARDED_BY(mu) = 0;

  void AddCustomer(const std::string& id, bool live = true) {
    absl::MutexLock l(&mu);
    entities[id] = live;
  }
  void AddPurchase(const std::string& id, int64_t t, const char* amount) {
    absl::MutexLock l(&mu);
    purchases.push_back({id, t, D(amount)});
  }
  void AddCost(const std::string& id, int64_t t, const char* cost) {
    absl::MutexLock l(&mu);
    costs.push_back({id, t, D(cost)});
  }

  // --- ValueStore: jobs ---
  absl::Status CreateJob(const RefreshJobRecord& job,
                         const audit::Event& event) override {
    absl::MutexLock l(&mu);
    if (jobs.contains(job.id)) return absl::AlreadyExistsError("duplicate id");
    for (const auto& [id, j] : jobs) {
      if (j.state == JobState::kRunning && job.state == JobState::kRunning)
        return absl::FailedPreconditionError("refresh job " + id +
                                             " is running");
    }
    jobs[job.id] = job;
    events.push_back(event);
    if (create_answer_lost.exchange(false)) {
      return absl::UnavailableError("lost connection during commit");
    }
    return absl::OkStatus();
  }
  absl::StatusOr<RefreshJobRecord> GetJob(const std::string& id) override {
    absl::MutexLock l(&mu);
    auto it = jobs.find(id);
    if (it == jobs.end()) return absl::NotFoundError("no such job");
    return it->second;
  }
  absl::StatusOr<std::optional<RefreshJobRecord>> LatestJob(
      JobState state) override {
    if (state == JobState::kRunning && before_latest_running) {
      std::function<void()> hook;
      hook.swap(before_latest_running);  // once
      hook();
    }
    absl::MutexLock l(&mu);
    std::optional<RefreshJobRecord> best;
    for (const auto& [id, j] : jobs) {
      if (j.state != state) continue;
      const int64_t key = state == JobState::kSucceeded
                              ? j.end_time_us.value_or(0)
                              : j.create_time_us;
      const int64_t best_key = !best ? 0
                               : state == JobState::kSucceeded
                                   ? best->end_time_us.value_or(0)
                                   : best->create_time_us;
      if (!best || key >= best_key) best = j;
    }
    return best;
  }
  // Holds every job as its replica would (no process dies here): only the
  // stale ones end.
  absl::StatusOr<std::vector<RefreshJobRecord>> EndStaleJobs(
      int64_t stale_before_us, int64_t /*gone_before_us*/,
      const std::string& error, int64_t now_us) override {
    absl::MutexLock l(&mu);
    std::vector<RefreshJobRecord> ended;
    for (auto& [id, j] : jobs) {
      if (j.state != JobState::kRunning ||
          j.heartbeat_time_us >= stale_before_us)
        continue;
      const bool published = live_job == id;
      j.state = published ? JobState::kSucceeded : JobState::kFailed;
      j.error = published ? "" : error;
      if (published) j.done = j.total;
      j.end_time_us = now_us;
      ended.push_back(j);
    }
    return ended;
  }
  absl::Status UpdateProgress(const std::string& id, int64_t done,
                              int64_t total, int64_t now_us) override {
    absl::MutexLock l(&mu);
    RefreshJobRecord& j = jobs[id];
    if (j.state != JobState::kRunning) {
      ++heartbeats_not_running;
      return absl::FailedPreconditionError("not running");
    }
    j.done = done;
    j.total = total;
    j.heartbeat_time_us = now_us;
    return absl::OkStatus();
  }
  absl::Status SetModels(const std::string& id, const std::string& score_model,
                         const std::string& clv_model) override {
    absl::MutexLock l(&mu);
    if (jobs[id].state != JobState::kRunning)
      return absl::FailedPreconditionError("not running");
    jobs[id].score_model = score_model;
    jobs[id].clv_model = clv_model;
    return absl::OkStatus();
  }
  absl::Status FinishJob(const RefreshJobRecord& job,
                         const audit::Event& event) override {
    if (finishes_unavailable.fetch_sub(1) > 0) {
      return absl::UnavailableError("the database is away");
    }
    absl::MutexLock l(&mu);
    RefreshJobRecord& j = jobs[job.id];
    if (j.state != JobState::kRunning)
      return absl::FailedPreconditionError("not running");
    events.push_back(event);
    j.state = job.state;
    j.error = job.error;
    if (finish_answer_lost.exchange(false)) {
      return absl::UnavailableError("lost connection");
    }
    j.done = job.done;
    j.total = job.total;
    j.end_time_us = job.end_time_us;
    return absl::OkStatus();
  }

  // --- ValueStore: sets ---
  absl::Status BeginValueSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    staged[job_id].clear();
    return absl::OkStatus();
  }
  absl::Status AppendValues(const std::string& job_id,
                            const std::vector<StoredValue>& batch) override {
    absl::MutexLock l(&mu);
    appended_values += static_cast<int>(batch.size());
    for (const StoredValue& s : batch) staged[job_id][s.entity_id] = s;
    return absl::OkStatus();
  }
  absl::Status PublishValueSet(const std::string& job_id) override {
    if (before_publish) before_publish();
    absl::MutexLock l(&mu);
    if (jobs[job_id].state != JobState::kRunning)
      return absl::FailedPreconditionError("no longer running");
    replaced[job_id] = std::move(scores);
    scores = std::move(staged[job_id]);
    staged.erase(job_id);
    live_job = job_id;
    return publish_answer;
  }
  absl::StatusOr<std::vector<std::string>> RescoredInReplacedSet(
      const std::string& job_id, int64_t since_us) override {
    absl::MutexLock l(&mu);
    std::vector<std::string> out;
    for (const auto& [id, s] : replaced[job_id]) {
      if (s.score_time_us > since_us) out.push_back(id);
    }
    return out;
  }
  absl::Status DropReplacedSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    replaced.erase(job_id);
    return absl::OkStatus();
  }
  absl::Status RetireReplacedSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    auto it = replaced.find(job_id);
    if (it == replaced.end()) return absl::OkStatus();
    previous = std::move(it->second);
    replaced.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<StoredValue>> GetPreviousValues(
      const std::vector<std::string>& ids) override {
    absl::MutexLock l(&mu);
    // The live set's replaced set until it is retired, as in MariaDB.
    auto replaced_set = replaced.find(live_job);
    const auto& from =
        replaced_set != replaced.end() ? replaced_set->second : previous;
    std::vector<StoredValue> out;
    for (const std::string& id : ids) {
      if (auto it = from.find(id); it != from.end()) out.push_back(it->second);
    }
    return out;
  }
  absl::Status DiscardValueSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    staged.erase(job_id);
    return absl::OkStatus();
  }
  absl::StatusOr<std::optional<std::string>> LiveSetJob() override {
    absl::MutexLock l(&mu);
    if (live_set_failures > 0) {
      --live_set_failures;
      return absl::UnavailableError("database down");
    }
    if (live_job.empty()) return std::optional<std::string>();
    return std::optional<std::string>(live_job);
  }
  absl::StatusOr<std::vector<LeftoverSet>> LeftoverSets() override {
    absl::MutexLock l(&mu);
    std::vector<LeftoverSet> out;
    for (const auto& [id, set] : staged)
      out.push_back({id, LeftoverSet::Kind::kStaged});
    for (const auto& [id, set] : replaced)
      out.push_back({id, LeftoverSet::Kind::kReplaced});
    return out;
  }

  // --- ValueStore: live values ---
  absl::StatusOr<std::vector<std::string>> ValuedByOtherModels(
      const std::string& job_id) override {
    absl::MutexLock l(&mu);
    std::vector<std::string> out;
    for (const auto& [id, s] : scores) {
      if (s.model_id != job_id) out.push_back(id);
    }
    return out;
  }
  absl::Status UpsertValues(const std::vector<StoredValue>& batch) override {
    if (upserts_unavailable.fetch_sub(1) > 0) {
      return absl::UnavailableError("the database is away");
    }
    {
      absl::MutexLock l(&mu);
      for (const StoredValue& score : batch) {
        if (score.entity_id == upsert_refused) {
          return absl::OutOfRangeError("monetary: is past what is stored");
        }
      }
      upserts += batch.size();
      for (const StoredValue& score : batch) {
        auto [it, added] = scores.try_emplace(score.entity_id, score);
        StoredValue& s = it->second;
        if (added || score.score_time_us < s.score_time_us) continue;
        StoredValue old = s;
        s = score;
        if (!s.clv) s.clv = old.clv;
        if (!s.p_alive) s.p_alive = old.p_alive;
        if (!s.expected_purchases)
          s.expected_purchases = old.expected_purchases;
      }
    }
    if (after_upsert) after_upsert();
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<StoredValue>> GetValues(
      const std::vector<std::string>& ids) override {
    std::vector<StoredValue> out;
    {
      absl::MutexLock l(&mu);
      for (const std::string& id : ids) {
        if (auto it = scores.find(id); it != scores.end())
          out.push_back(it->second);
      }
    }
    if (after_get_values) after_get_values();
    return out;
  }
  absl::StatusOr<ValueTotals> Summarize() override {
    absl::MutexLock l(&mu);
    std::map<std::string, GroupTotals> segments;
    std::map<int, GroupTotals> tiers;
    ValueTotals out;
    for (const auto& [id, s] : scores) {
      for (GroupTotals* g : {&segments[s.segment], &tiers[s.tier], &out.all}) {
        g->segment = s.segment;
        g->tier = s.tier;
        ++g->entities;
        g->monetary += s.monetary;
        g->cost_to_serve += s.cost_to_serve;
        g->profit += s.profit;
        g->value_hundredths_sum += s.value_hundredths;
      }
    }
    for (auto& [k, g] : segments) out.segments.push_back(g);
    for (auto& [k, g] : tiers) out.tiers.push_back(g);
    return out;
  }
  absl::StatusOr<std::vector<StoredValue>> ExportPage(
      const std::string& source, const std::string& after_key,
      int limit) override {
    absl::MutexLock l(&mu);
    std::vector<StoredValue> out;
    if (source.empty()) {
      for (auto it = scores.upper_bound(after_key);
           it != scores.end() && out.size() < size_t(limit); ++it) {
        out.push_back(it->second);
      }
      return out;
    }
    for (auto it = external.upper_bound(source + "\n" + after_key);
         it != external.end() && it->first.rfind(source + "\n", 0) == 0 &&
         out.size() < size_t(limit);
         ++it) {
      auto s = scores.find(it->second);
      if (s == scores.end()) continue;
      out.push_back(s->second);
      out.back().entity_id = it->first.substr(source.size() + 1);
    }
    return out;
  }

  // --- Counterpart ---
  absl::StatusOr<int64_t> CountEntities() override {
    absl::MutexLock l(&mu);
    return static_cast<int64_t>(
        std::count_if(entities.begin(), entities.end(),
                      [](const auto& c) { return c.second; }));
  }
  static bool Counts(const CountWindow& w, int64_t t) {
    return t > w.after_us() && t <= w.as_of_us;
  }
  EntityFacts FactsLocked(const std::string& id, const CountWindow& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    EntityFacts f;
    f.entity_id = id;
    for (const Event& e : purchases) {
      if (e.entity_id != id || !Counts(w, e.time_us)) continue;
      ++f.frequency;
      f.monetary += e.amount;
      f.last_event_us =
          std::max(f.last_event_us.value_or(INT64_MIN), e.time_us);
    }
    for (const Event& e : costs) {
      if (e.entity_id == id && Counts(w, e.time_us))
        f.cost_to_serve += e.amount;
    }
    return f;
  }
  absl::Status ScanFacts(const CountWindow& window, int batch_size,
                         const Sink<EntityFacts>& sink) override {
    ++scans_begun;
    if (hold_scan != nullptr) hold_scan->WaitForNotification();
    std::vector<EntityFacts> all;
    {
      absl::MutexLock l(&mu);
      for (const auto& [id, live] : entities) {
        if (live) all.push_back(FactsLocked(id, window));
      }
    }
    for (size_t i = 0; i < all.size(); i += batch_size) {
      std::vector<EntityFacts> batch(
          all.begin() + i, all.begin() + std::min(all.size(), i + batch_size));
      RAPPORT_RETURN_IF_ERROR(sink(batch));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<EntityFacts>> FactsOf(
      const std::vector<std::string>& ids, const CountWindow& window) override {
    absl::MutexLock l(&mu);
    std::vector<EntityFacts> out;
    for (const std::string& id : ids) {
      auto it = entities.find(id);
      if (it != entities.end() && it->second)
        out.push_back(FactsLocked(id, window));
    }
    return out;
  }
  absl::Status ScanEventDays(const CountWindow& window, int batch_size,
                             const Sink<EventDay>& sink) override {
    std::map<std::pair<std::string, int64_t>, Decimal> days;
    {
      absl::MutexLock l(&mu);
      for (const Event& e : purchases) {
        if (entities[e.entity_id] && Counts(window, e.time_us)) {
          days[{e.entity_id, FloorDays(e.time_us)}] += e.amount;
        }
      }
    }
    std::vector<EventDay> batch;
    for (const auto& [key, amount] : days)
      batch.push_back({key.first, key.second, amount});
    return batch.empty() ? absl::OkStatus() : sink(batch);
  }
  static int64_t FloorDays(int64_t t) {
    return t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay);
  }
  absl::StatusOr<std::string> ResolveEntity(const std::string& id) override {
    absl::MutexLock l(&mu);
    auto it = entities.find(id);
    if (it == entities.end() || !it->second)
      return absl::NotFoundError("no such customer");
    return id;
  }
};

class DifferentiationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scoring_ = std::make_unique<scoring::ScoringServiceImpl>(
        &guard_, [] { return absl::Now(); });
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(scoring_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    logic_ = NewLogic(absl::StrCat("127.0.0.1:", port_));
  }
  void TearDown() override {
    logic_.reset();
    server_->Shutdown();
  }

  std::unique_ptr<Differentiation> NewLogic(const std::string& address) {
    DifferentiationOptions options;
    options.batch_size = 3;  // several batches with a handful of customers
    options.export_batch_size = 2;
    // Entities' event days split across PredictClv messages, too.
    options.clv_events_per_message = 2;
    options.heartbeat = absl::Milliseconds(20);
    options.recover_every = absl::ZeroDuration();
    options.rescore_backoff = absl::Milliseconds(1);
    options.rescore_backoff_most = absl::Milliseconds(4);
    client_ = *GrpcScoringClient::Create(
        address, {},
        {.call_timeout = absl::Seconds(5),
         .authorization = []() -> absl::StatusOr<std::string> {
           return testing::TestAuth::Get().ServiceBearer("customer");
         }});
    return std::make_unique<Differentiation>(
        &store_, &store_, client_.get(), &ids_,
        [this] { return absl::FromUnixMicros(now_.load()); }, options);
  }

  // The population refreshed as of kAsOf, now three days later, and the
  // prospect's purchase of 500 the day before: whether the refresh
  // succeeded.
  bool RefreshedThenProspectBought() {
    AddPopulation();
    cv1::RefreshSettings request;
    *request.mutable_as_of() = ToTimestamp(kAsOf);
    cv1::RefreshJob job = Refresh(request);
    EXPECT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
    now_ = kAsOf + 3 * kDay;
    store_.AddPurchase("p-prospect", kAsOf + 2 * kDay, "500");
    return job.state() == cv1::RefreshJob::STATE_SUCCEEDED;
  }

  // Starts a refresh and waits for it to end.
  cv1::RefreshJob Refresh(cv1::RefreshSettings request) {
    absl::StatusOr<cv1::RefreshJob> started =
        logic_->StartRefresh(request, "user:test");
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return {};
    EXPECT_EQ(started->state(), cv1::RefreshJob::STATE_RUNNING);
    logic_->WaitForJobs();
    absl::StatusOr<cv1::RefreshJob> job = logic_->GetRefreshJob(started->id());
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : cv1::RefreshJob();
  }

  // The scoring service's own answer from the raw events and costs.
  std::map<std::string, sv1::EntityScore> Expected(int64_t as_of,
                                                   int window_days, int bins) {
    sv1::ScorePopulationRequest request;
    *request.mutable_config()->mutable_as_of() = ToTimestamp(as_of);
    request.mutable_config()->set_window_days(window_days);
    request.mutable_config()->set_bins(bins);
    absl::MutexLock l(&store_.mu);
    for (const auto& [id, live] : store_.entities) {
      if (live) request.add_entity_ids(id);
    }
    for (const auto& e : store_.purchases) {
      sv1::ActivityEvent* a = request.add_events();
      a->set_entity_id(e.entity_id);
      *a->mutable_time() = ToTimestamp(e.time_us);
      *a->mutable_amount() = *ToMoney(e.amount, "", "");
    }
    for (const auto& e : store_.costs) {
      sv1::InteractionCost* c = request.add_costs();
      c->set_entity_id(e.entity_id);
      *c->mutable_time() = ToTimestamp(e.time_us);
      *c->mutable_cost() = *ToMoney(e.amount, "", "");
    }
    auto run = scoring::PopulationRun::Start(request.config(), absl::Now());
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return {};  // the caller's comparison fails
    EXPECT_TRUE((*run)->Add(request).ok());
    EXPECT_TRUE((*run)->Finish().ok());
    google::protobuf::RepeatedPtrField<sv1::EntityScore> scores;
    EXPECT_TRUE((*run)->FillScores(0, (*run)->size(), &scores).ok());
    std::map<std::string, sv1::EntityScore> out;
    for (const auto& s : scores) out[s.entity_id()] = s;
    return out;
  }

  // A population with repeat buyers, one-time buyers, refunds, a prospect,
  // a Lead (costs above its purchases), a merged customer, and old purchases.
  void AddPopulation() {
    for (int i = 0; i < 12; ++i) {
      const std::string id = absl::StrCat("c", i < 10 ? "0" : "", i);
      store_.AddCustomer(id);
      for (int k = 0; k <= i % 5; ++k) {
        store_.AddPurchase(id, kAsOf - (i * 7 + k * 13) * kDay - k,
                           absl::StrCat(i * 3 + k, ".", k * 11 % 100).c_str());
      }
    }
    store_.AddPurchase("c03", kAsOf - 2 * kDay, "-4.5");
    store_.AddPurchase("c04", kAsOf - 500 * kDay, "1000");
    store_.AddPurchase("c05", kAsOf + kDay, "77");  // after as_of
    store_.AddCustomer("p-prospect");
    store_.AddCustomer("p-lead");
    store_.AddCost("p-lead", kAsOf - kDay, "2.5");
    store_.AddCost("c02", kAsOf - 3 * kDay, "1.25");
    store_.AddCustomer("m-merged", /*live=*/false);
  }

  // What ScoreEntity gives for the customer's facts now (no window) against
  // the stored model of `job_id`.
  absl::StatusOr<sv1::ScoreEntityResponse> ScoreNow(const std::string& job_id,
                                                    const std::string& id) {
    sv1::ScoreEntityRequest direct;
    if (!direct.mutable_model()->ParseFromString(
            store_.GetJob(job_id)->score_model)) {
      return absl::DataLossError("unreadable model");
    }
    EntityFacts facts;
    {
      absl::MutexLock l(&store_.mu);
      facts = store_.FactsLocked(id, CountWindow{now_.load(), std::nullopt});
    }
    sv1::EntityFacts* f = direct.mutable_facts();
    f->set_entity_id(id);
    f->set_frequency(facts.frequency);
    *f->mutable_monetary() = *ToMoney(facts.monetary, "", "");
    if (facts.last_event_us)
      *f->mutable_last_event_time() = ToTimestamp(*facts.last_event_us);
    *f->mutable_cost_to_serve() = *ToMoney(facts.cost_to_serve, "", "");
    *direct.mutable_as_of() = ToTimestamp(now_.load());
    return scoring::ScoreOne(direct);
  }

  // Starts a refresh of the population that waits in its scan until
  // `release` (which the caller notifies before WaitForJobs).
  absl::StatusOr<cv1::RefreshJob> StartHeldRefresh(
      absl::Notification& release) {
    AddPopulation();
    store_.hold_scan = &release;
    return logic_->StartRefresh(cv1::RefreshSettings(), "user:test");
  }

  // Another replica on the same store, stopped at `stop`: its clock stands
  // still (so does its heartbeat), and its job thread waits at the step until
  // `release` (or the replica goes; members go in reverse order, so `logic`
  // waits for its job first, once the destructor has released it).
  struct StoppedReplica {
    StoppedReplica(DifferentiationTest& test, RefreshStep stop,
                   int rescore_batch = 500,
                   std::function<void()> on_stop = nullptr)
        : frozen(test.now_.load()) {
      DifferentiationOptions options;
      options.rescore_batch = rescore_batch;
      options.on_stop = std::move(on_stop);
      options.heartbeat = absl::Milliseconds(20);
      options.recover_every = absl::ZeroDuration();
      options.at_step = [this, stop](RefreshStep step) {
        if (step != stop) return;
        reached.Notify();
        release.WaitForNotification();
      };
      logic = std::make_unique<Differentiation>(
          &test.store_, &test.store_, test.client_.get(), &test.ids_,
          [at = frozen] { return absl::FromUnixMicros(at); }, options);
    }
    ~StoppedReplica() {
      if (!release.HasBeenNotified()) release.Notify();
    }
    const int64_t frozen;
    absl::Notification reached, release;
    std::unique_ptr<Differentiation> logic;
  };

  // A purchase of p-prospect while the first refresh runs on another
  // replica, after it read the facts, then `rescore` (the activity's
  // re-score): p-prospect ends valued with the purchase by that refresh's
  // model.
  void ExpectScoredByTheFirstRefresh(const std::function<void()>& rescore) {
    StoppedReplica other(*this, RefreshStep::kValuesStaged);
    absl::StatusOr<cv1::RefreshJob> job =
        other.logic->StartRefresh(cv1::RefreshSettings(), "user:test");
    ASSERT_TRUE(job.ok()) << job.status();
    ASSERT_TRUE(
        other.reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
    store_.AddPurchase("p-prospect", now_.load() - kDay / 24, "500");
    rescore();
    other.release.Notify();
    other.logic->WaitForJobs();
    logic_->WaitForRescores();
    absl::StatusOr<cv1::EntityValue> value = logic_->GetValue("p-prospect");
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(value->frequency(), 1);
    EXPECT_EQ(value->monetary().units(), 500);
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.scores["p-prospect"].model_id, job->id());
  }

  // A refresh as of kAsOf on a replica that stops once it has published,
  // after a first refresh succeeded; the clock is then past its staleness.
  void StopAfterPublishing(StoppedReplica& stopped, cv1::RefreshJob* job) {
    AddPopulation();
    cv1::RefreshSettings request;
    *request.mutable_as_of() = ToTimestamp(kAsOf);
    ASSERT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
    absl::StatusOr<cv1::RefreshJob> started =
        stopped.logic->StartRefresh(request, "user:test");
    ASSERT_TRUE(started.ok()) << started.status();
    *job = *std::move(started);
    ASSERT_TRUE(
        stopped.reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
    now_ = stopped.frozen + 31'000'000;
  }

  // Marks `ids` (none: every entity of the set) as re-scored at `at` while
  // the stopped job ran, in its replaced set, so that its catch-up has them
  // to do; how many it marked.
  size_t RescoredMeanwhile(const std::vector<std::string>& ids, int64_t at) {
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.replaced.size(), 1u);
    if (store_.replaced.empty()) return 0;
    std::map<std::string, StoredValue>& set = store_.replaced.begin()->second;
    if (ids.empty()) {
      for (auto& [id, value] : set) value.score_time_us = at;
      return set.size();
    }
    for (const std::string& id : ids) set[id].score_time_us = at;
    return ids.size();
  }

  std::atomic<int64_t> now_{kAsOf + kDay};
  FakeStore store_;
  IdGenerator ids_;
  std::shared_ptr<const auth::TokenVerifier> verifier_ =
      testing::TestAuth::Get().Verifier(/*scoring=*/true);
  CallGuard guard_{verifier_.get(), scoring::ScoringMethodRoles()};
  std::unique_ptr<scoring::ScoringServiceImpl> scoring_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<GrpcScoringClient> client_;
  std::unique_ptr<Differentiation> logic_;
};

void ExpectSameScore(const StoredValue& got, const sv1::EntityScore& want) {
  SCOPED_TRACE(want.entity_id());
  EXPECT_EQ(got.recency_days.has_value(), want.has_recency_days());
  if (want.has_recency_days() && got.recency_days.has_value()) {
    EXPECT_EQ(*got.recency_days, want.recency_days());
  }
  EXPECT_EQ(got.frequency, want.frequency());
  EXPECT_EQ(got.monetary, *FromMoney(want.monetary(), ""));
  EXPECT_EQ(got.r, want.r());
  EXPECT_EQ(got.f, want.f());
  EXPECT_EQ(got.m, want.m());
  EXPECT_EQ(got.segment, want.segment());
  EXPECT_EQ(got.value_hundredths, want.value_hundredths());
  EXPECT_EQ(got.cost_to_serve, *FromMoney(want.cost_to_serve(), ""));
  EXPECT_EQ(got.profit, *FromMoney(want.profit(), ""));
  EXPECT_EQ(got.tier, static_cast<int>(want.tier()));
}

TEST_F(DifferentiationTest,
       RefreshStoresExactlyWhatTheScoringServiceComputesFromRawEvents) {
  AddPopulation();
  for (const auto& [window, bins] : {std::pair{0, 5}, std::pair{60, 3}}) {
    cv1::RefreshSettings request;
    *request.mutable_as_of() = ToTimestamp(kAsOf);
    request.set_window_days(window);
    request.set_bins(bins);
    cv1::RefreshJob job = Refresh(request);
    ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
    EXPECT_EQ(job.done(), 14);
    EXPECT_EQ(job.total(), 14);

    std::map<std::string, sv1::EntityScore> want =
        Expected(kAsOf, window, bins);
    absl::MutexLock l(&store_.mu);
    ASSERT_EQ(store_.scores.size(), want.size());
    EXPECT_EQ(store_.scores.count("m-merged"), 0u);
    for (const auto& [id, s] : want) {
      ASSERT_EQ(store_.scores.count(id), 1u) << id;
      ExpectSameScore(store_.scores[id], s);
      EXPECT_EQ(store_.scores[id].model_id, job.id());
      EXPECT_FALSE(store_.scores[id].clv.has_value());
    }
    EXPECT_EQ(store_.scores["p-lead"].tier, cv1::TIER_LEAD);
    // Its start and end are audited under who asked.
    ASSERT_GE(store_.events.size(), 2u);
    const audit::Event& start = store_.events[store_.events.size() - 2];
    const audit::Event& end = store_.events.back();
    EXPECT_EQ(start.actor, "user:test");
    EXPECT_EQ(start.rpc, "RefreshScores");
    EXPECT_EQ(start.resource, "refreshJobs/" + job.id());
    EXPECT_EQ(start.outcome, "started");
    EXPECT_EQ(end.actor, "user:test");
    EXPECT_EQ(end.outcome, "succeeded");
    EXPECT_EQ(end.details, "entities=14");
    EXPECT_EQ(store_.scores["p-prospect"].segment, "Prospect");
    // The model that produced the values is stored with the job.
    sv1::ScoreModel model;
    ASSERT_TRUE(model.ParseFromString(store_.jobs[job.id()].score_model));
    EXPECT_EQ(model.bins(), bins);
    EXPECT_EQ(model.window_days(), window);
  }
}

TEST_F(DifferentiationTest,
       TheValuesBeforeARefreshAreKeptForTrendsAndTheNextTierComesFromTheModel) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob first = Refresh(request);
  ASSERT_EQ(first.state(), cv1::RefreshJob::STATE_SUCCEEDED) << first.error();
  // No refresh before the first: no previous values.
  auto none = logic_->PreviousValuesOf({"c07"});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  absl::StatusOr<cv1::EntityValue> before = logic_->GetValue("c07");
  ASSERT_TRUE(before.ok()) << before.status();

  store_.AddPurchase("c07", kAsOf - kDay, "500");
  *request.mutable_as_of() = ToTimestamp(kAsOf + kDay);
  cv1::RefreshJob second = Refresh(request);
  ASSERT_EQ(second.state(), cv1::RefreshJob::STATE_SUCCEEDED) << second.error();
  auto previous = logic_->PreviousValuesOf({"c07", "nobody"});
  ASSERT_TRUE(previous.ok()) << previous.status();
  ASSERT_EQ(previous->size(), 1u);
  EXPECT_EQ(previous->at("c07").model_id(), first.id());
  EXPECT_EQ(previous->at("c07").value_hundredths(), before->value_hundredths());
  EXPECT_EQ(previous->at("c07").monetary().units(), before->monetary().units());
  // A trend is read from one publication: one that comes between reading the
  // value now and the previous one (here, once) makes it read both again.
  bool published = false;
  std::map<std::string, StoredValue> first_set;
  {
    absl::MutexLock l(&store_.mu);
    first_set = store_.previous;
  }
  store_.after_get_values = [&] {
    if (std::exchange(published, true)) return;
    absl::MutexLock l(&store_.mu);
    store_.previous = store_.scores;
    for (auto& [id, s] : store_.scores) s.model_id = "third";
    store_.live_job = "third";
  };
  absl::StatusOr<Differentiation::Trend> trend = logic_->TrendOf("c07");
  store_.after_get_values = nullptr;
  ASSERT_TRUE(trend.ok()) << trend.status();
  ASSERT_TRUE(trend->now.has_value() && trend->previous.has_value());
  EXPECT_EQ(trend->now->model_id(), "third");
  EXPECT_EQ(trend->previous->model_id(), second.id());
  {
    // Back to the second refresh's sets, for what follows.
    absl::MutexLock l(&store_.mu);
    store_.scores = store_.previous;
    store_.previous = first_set;
    store_.live_job = second.id();
  }

  // The next tier: a Lead lacks its negative profit to reach Iron; Iron and
  // Gold lack what separates them from the model's thresholds; Platinum is
  // the top.
  sv1::ScoreModel model;
  ASSERT_TRUE(model.ParseFromString(store_.jobs[second.id()].score_model));
  const Decimal gold = *FromMoney(model.gold_above(), "");
  const Decimal platinum = *FromMoney(model.platinum_above(), "");
  auto all = logic_->ValuesOf({"p-lead", "c00", "c01", "c02", "c03", "c04",
                               "c05", "c06", "c07", "c08", "c09", "c10", "c11",
                               "p-prospect"});
  ASSERT_TRUE(all.ok()) << all.status();
  std::set<int> seen;
  for (const auto& [id, value] : *all) {
    SCOPED_TRACE(id);
    seen.insert(value.tier());
    absl::StatusOr<std::optional<Differentiation::NextTier>> next =
        logic_->NextTierOf(value);
    ASSERT_TRUE(next.ok()) << next.status();
    const Decimal profit = *FromMoney(value.profit(), "");
    switch (value.tier()) {
      case cv1::TIER_LEAD:
        ASSERT_TRUE(next->has_value());
        EXPECT_EQ((*next)->tier, cv1::TIER_IRON);
        EXPECT_FALSE((*next)->more_than);
        EXPECT_EQ((*next)->lacking, -profit);
        break;
      case cv1::TIER_IRON:
        ASSERT_TRUE(next->has_value());
        EXPECT_EQ((*next)->tier, cv1::TIER_GOLD);
        EXPECT_TRUE((*next)->more_than);
        EXPECT_EQ((*next)->profit, gold);
        EXPECT_EQ((*next)->lacking, *gold.CheckedSub(profit));
        EXPECT_GE((*next)->lacking, Decimal());
        break;
      case cv1::TIER_GOLD:
        ASSERT_TRUE(next->has_value());
        EXPECT_EQ((*next)->tier, cv1::TIER_PLATINUM);
        EXPECT_EQ((*next)->lacking, *platinum.CheckedSub(profit));
        break;
      default:
        EXPECT_FALSE(next->has_value());
    }
  }
  EXPECT_EQ(seen.size(), 4u);  // every tier was tried
}

// With Gold's threshold the same as Platinum's, more than it is Platinum:
// an Iron entity's next tier is Platinum, at that threshold.
TEST_F(DifferentiationTest, TheNextTierSkipsAGoldThatSharesPlatinumsThreshold) {
  sv1::ScoreModel model;
  *model.mutable_gold_above() = *ToMoney(Decimal::FromUnits(500), "USD", "m");
  *model.mutable_platinum_above() =
      *ToMoney(Decimal::FromUnits(500), "USD", "m");
  {
    absl::MutexLock l(&store_.mu);
    RefreshJobRecord job;
    job.id = "job-tied";
    job.score_model = model.SerializeAsString();
    store_.jobs[job.id] = job;
  }
  cv1::EntityValue value;
  value.set_model_id("job-tied");
  value.set_tier(cv1::TIER_IRON);
  *value.mutable_profit() = *ToMoney(Decimal::FromUnits(120), "USD", "m");
  absl::StatusOr<std::optional<Differentiation::NextTier>> next =
      logic_->NextTierOf(value);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->tier, cv1::TIER_PLATINUM);
  EXPECT_EQ((*next)->profit, Decimal::FromUnits(500));
  EXPECT_EQ((*next)->lacking, Decimal::FromUnits(380));
  EXPECT_TRUE((*next)->more_than);
}

TEST_F(DifferentiationTest, RefreshWithClvStoresPredictionsForBuyers) {
  AddPopulation();
  // Enough buyers for the models to fit, simulated the way BG/NBD sees them:
  // each buys at its own rate and may drop out after any purchase.
  uint64_t seed = 42;
  auto uniform = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (static_cast<double>(seed >> 11) + 0.5) / 9007199254740992.0;
  };
  for (int i = 0; i < 300; ++i) {
    const std::string id = absl::StrCat("g", 1000 + i);
    store_.AddCustomer(id);
    const double rate =
        0.005 + 0.1 * uniform() * uniform();  // purchases per day
    const double dropout = 0.5 * uniform();
    double day = 365 * uniform();  // days before as_of of the first purchase
    for (;;) {
      store_.AddPurchase(
          id, kAsOf - static_cast<int64_t>(day * kDay),
          absl::StrCat(5 + static_cast<int>(40 * uniform()), ".25").c_str());
      if (uniform() < dropout) break;
      day -= -std::log(uniform()) / rate;
      if (day < 0) break;
    }
  }
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_with_clv(true);
  cv1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  absl::MutexLock l(&store_.mu);
  EXPECT_FALSE(store_.jobs[job.id()].clv_model.empty());
  for (const auto& [id, s] : store_.scores) {
    SCOPED_TRACE(id);
    EXPECT_EQ(s.p_alive.has_value(), s.frequency > 0);
    if (s.p_alive) {
      EXPECT_GT(*s.p_alive, 0.0);
      EXPECT_LE(*s.p_alive, 1.0);
    }
    // Numbers that are not finite (a degenerate fit) are left out, never
    // stored.
    for (const std::optional<double>& x :
         {s.p_alive, s.expected_purchases, s.clv}) {
      if (x.has_value()) {
        EXPECT_TRUE(std::isfinite(*x));
      }
    }
  }
  EXPECT_FALSE(store_.scores["p-prospect"].p_alive.has_value());
  int with_clv = 0;
  for (const auto& [id, s] : store_.scores)
    with_clv += s.clv.has_value() ? 1 : 0;
  EXPECT_GT(with_clv, 250);
}

// Nobody with an event up to as_of: nothing to fit, and the refresh with CLV
// succeeds with everyone a Prospect, as the one without does.
TEST_F(DifferentiationTest, RefreshWithClvOfAPopulationWithoutEventsSucceeds) {
  store_.AddCustomer("a");
  store_.AddCustomer("b");
  store_.AddPurchase("b", kAsOf + kDay, "10.00");  // after as_of: not counted
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_with_clv(true);
  cv1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.scores.size(), 2u);
  for (const auto& [id, s] : store_.scores) {
    EXPECT_EQ(s.frequency, 0) << id;
    EXPECT_FALSE(s.p_alive.has_value()) << id;
  }
}

// The window counts R, F and M; the CLV models see the whole history up to
// as_of (SCORING.md section 7), so the predictions are the same with and
// without one.
TEST_F(DifferentiationTest, ClvSeesTheHistoryBeforeTheWindow) {
  uint64_t seed = 7;
  auto uniform = [&] {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (static_cast<double>(seed >> 11) + 0.5) / 9007199254740992.0;
  };
  for (int i = 0; i < 200; ++i) {
    const std::string id = absl::StrCat("h", 1000 + i);
    store_.AddCustomer(id);
    // Purchases spread over two years before as_of.
    const int n = 1 + static_cast<int>(4 * uniform());
    for (int k = 0; k < n; ++k) {
      store_.AddPurchase(
          id, kAsOf - static_cast<int64_t>(730 * uniform() * kDay), "20.00");
    }
  }
  auto predictions = [&](int window_days) {
    cv1::RefreshSettings request;
    *request.mutable_as_of() = ToTimestamp(kAsOf);
    request.set_with_clv(true);
    request.set_window_days(window_days);
    cv1::RefreshJob job = Refresh(request);
    EXPECT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
    std::map<std::string, std::optional<double>> out;
    absl::MutexLock l(&store_.mu);
    for (const auto& [id, s] : store_.scores) out[id] = s.p_alive;
    return out;
  };
  const auto whole = predictions(0);
  const auto windowed = predictions(90);
  ASSERT_EQ(whole.size(), 200u);
  int predicted = 0;
  for (const auto& [id, p] : whole) {
    ASSERT_TRUE(windowed.contains(id)) << id;
    // Bought only before the window: no counted event, but a prediction
    // from the history all the same when the value set keeps one.
    if (!p.has_value()) continue;
    ++predicted;
    ASSERT_TRUE(windowed.at(id).has_value()) << id;
    EXPECT_DOUBLE_EQ(*windowed.at(id), *p) << id;
  }
  EXPECT_GT(predicted, 50);
}

// An entity without stored values says why: no refresh yet, or it came
// after the last one.
TEST_F(DifferentiationTest, AnEntityWithoutValuesSaysWhy) {
  AddPopulation();
  absl::Status before = logic_->GetValue("c01").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(before)) << before;
  EXPECT_TRUE(absl::StrContains(before.message(), "no refresh has succeeded"))
      << before;
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  ASSERT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
  store_.AddCustomer("c99");
  absl::Status after = logic_->GetValue("c99").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(after)) << after;
  EXPECT_TRUE(absl::StrContains(after.message(), "came after the last refresh"))
      << after;
}

TEST_F(DifferentiationTest, BadRequestsNameTheField) {
  cv1::RefreshSettings request;
  request.set_bins(11);
  request.set_window_days(-1);
  absl::Status s = logic_->StartRefresh(request, "user:test").status();
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolations(s)) fields.insert(v.field);
  EXPECT_EQ(fields, (std::set<std::string>{"bins", "window_days"}));
  request.set_bins(1);
  request.set_window_days(0);
  EXPECT_EQ(FieldViolations(logic_->StartRefresh(request, "user:test").status())
                .at(0)
                .field,
            "bins");
  // Values as of a time still to come (past the clocks' skew) are refused.
  request.set_bins(5);
  *request.mutable_as_of() = ToTimestamp(now_.load() + 3'600'000'000LL);
  EXPECT_EQ(FieldViolations(logic_->StartRefresh(request, "user:test").status())
                .at(0)
                .field,
            "as_of");

  EXPECT_TRUE(absl::IsNotFound(
      logic_->GetRefreshJob("01jd8x4r2c6n7m9p0q1r2s3t4v").status()));
  EXPECT_EQ(FieldViolations(logic_->GetRefreshJob("").status()).at(0).field,
            "id");
  EXPECT_EQ(
      FieldViolations(logic_->GetRefreshJob(std::string(10000, 'x')).status())
          .at(0)
          .field,
      "id");
  EXPECT_TRUE(absl::IsNotFound(logic_->GetValue("nobody").status()));
  EXPECT_EQ(FieldViolations(logic_->GetValue("").status()).at(0).field, "id");
  EXPECT_TRUE(absl::IsNotFound(logic_->Rescore("nobody")));
  EXPECT_TRUE(absl::IsInvalidArgument(
      logic_->Export(std::string(65, 's'), [](const auto&) { return true; })));
}

TEST_F(DifferentiationTest, RescoresQueuedForLaterRunInTheBackgroundOnce) {
  ASSERT_TRUE(RefreshedThenProspectBought());
  store_.AddPurchase("c02", kAsOf + 2 * kDay, "40");
  const size_t rescored_before = store_.upserts.load();
  // Queued twice, and an unknown id: each known entity is scored once.
  logic_->RescoreSoon({"p-prospect", "c02", "p-prospect", "nobody"});
  logic_->WaitForRescores();
  absl::StatusOr<cv1::EntityValue> value = logic_->GetValue("p-prospect");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->frequency(), 1);
  EXPECT_EQ(value->monetary().units(), 500);
  EXPECT_EQ(logic_->GetValue("c02")->recency_days(), 1);
  EXPECT_EQ(store_.upserts.load() - rescored_before, 2u);
}

// One entity of a background batch that cannot be scored (its sums are past
// what Money holds) keeps its error alone: the others of its batch are
// scored all the same.
TEST_F(DifferentiationTest, AnEntityThatCannotBeScoredDoesNotHoldBackItsBatch) {
  ASSERT_TRUE(RefreshedThenProspectBought());
  for (int i = 0; i < 11; ++i)
    store_.AddPurchase("c03", kAsOf + 2 * kDay, "900000000000000000");
  const absl::StatusOr<cv1::EntityValue> c03_before = logic_->GetValue("c03");
  ASSERT_TRUE(c03_before.ok()) << c03_before.status();
  const std::vector<absl::Status> outcome =
      logic_->RescoreEach({"c03", "p-prospect"});
  ASSERT_EQ(outcome.size(), 2u);
  EXPECT_FALSE(outcome[0].ok());
  EXPECT_TRUE(outcome[1].ok()) << outcome[1];
  absl::StatusOr<cv1::EntityValue> value = logic_->GetValue("p-prospect");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->frequency(), 1);
  EXPECT_EQ(value->monetary().units(), 500);
  // The one at fault keeps the value it had.
  EXPECT_EQ(logic_->GetValue("c03")->frequency(), c03_before->frequency());
}

// A score that does not fit the value tables is the scoring service's fault
// (a replica of another version), not the caller's: INTERNAL, and its
// message names no field a caller could mend.
TEST(ScoreMessagesTest, AScoreOutsideTheValueTablesIsInternal) {
  sv1::EntityScore fits;
  fits.set_entity_id("c01");
  fits.set_r(5);
  fits.set_f(1);
  fits.set_m(10);
  fits.set_value_hundredths(10000);
  fits.set_segment("Champions");
  ASSERT_TRUE(FromEntityScore(fits, "job", 1).ok());
  std::vector<sv1::EntityScore> wrong(4, fits);
  wrong[0].set_r(11);
  wrong[1].set_m(-1);
  wrong[2].set_value_hundredths(10001);
  wrong[3].set_segment(std::string(65, 's'));
  for (const sv1::EntityScore& score : wrong) {
    absl::StatusOr<StoredValue> v = FromEntityScore(score, "job", 1);
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal)
        << score.ShortDebugString();
  }
}

// The value of the counter or gauge `name` (its series summed; all
// replicas of the test binary together), -1 when it is not registered.
double MetricTotal(const std::string& name) {
  for (const prometheus::MetricFamily& family : metrics::Registry().Collect()) {
    if (family.name != name) continue;
    double total = 0;
    for (const prometheus::ClientMetric& m : family.metric)
      total += m.counter.value + m.gauge.value;
    return total;
  }
  return -1;
}

// The entities dropped from the re-score queue so far.
double RescoresDropped() {
  return std::max(0.0, MetricTotal("rapport_rescore_dropped_total"));
}

// The entities waiting for a background re-score, as the gauge says.
double RescoreQueueGauge() { return MetricTotal("rapport_rescore_queue"); }

// A replica that stops runs the re-scores still queued before it goes (a
// rolling update would otherwise leave those values stale until the next
// refresh); what its drain time does not cover is counted as dropped.
TEST_F(DifferentiationTest, AStoppingReplicaRunsTheRescoresStillQueued) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  ASSERT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
  now_ = kAsOf + 3 * kDay;
  const std::vector<std::string> ids = {"c01", "c02", "c03", "c04", "c05"};
  for (const std::string& id : ids) {
    store_.AddPurchase(id, kAsOf + 2 * kDay, "40");
  }
  for (const absl::Duration drain : {absl::Seconds(30), absl::ZeroDuration()}) {
    SCOPED_TRACE(absl::FormatDuration(drain));
    DifferentiationOptions options;
    options.rescore_batch = 1;
    options.recover_every = absl::ZeroDuration();
    options.rescore_drain = drain;
    absl::Notification stop_begun;
    options.on_stop = [&] { stop_begun.Notify(); };
    auto replica = std::make_unique<Differentiation>(
        &store_, &store_, client_.get(), &ids_,
        [this] { return absl::FromUnixMicros(now_.load()); }, options);
    // The first re-score's write is held until the replica is stopping.
    absl::Notification written, release;
    store_.after_upsert = [&] {
      if (written.HasBeenNotified()) return;
      written.Notify();
      release.WaitForNotification();
    };
    const size_t upserts_before = store_.upserts.load();
    const double dropped_before = RescoresDropped();
    replica->RescoreSoon(ids);
    ASSERT_TRUE(written.WaitForNotificationWithTimeout(absl::Seconds(30)));
    std::thread stop([&] { replica.reset(); });
    EXPECT_TRUE(stop_begun.WaitForNotificationWithTimeout(absl::Seconds(30)));
    release.Notify();
    stop.join();
    store_.after_upsert = nullptr;
    if (drain > absl::ZeroDuration()) {
      EXPECT_EQ(store_.upserts.load() - upserts_before, ids.size());
      EXPECT_EQ(RescoresDropped() - dropped_before, 0);
      absl::MutexLock l(&store_.mu);
      for (const std::string& id : ids) {
        EXPECT_EQ(store_.scores[id].score_time_us, now_.load()) << id;
      }
    } else {
      EXPECT_EQ(store_.upserts.load() - upserts_before, 1u);
      EXPECT_EQ(RescoresDropped() - dropped_before, ids.size() - 1);
    }
  }
}

// Activity while the first refresh runs, after it read the facts, is scored
// against that refresh's model once it is there, instead of staying unvalued
// until the next refresh. Before any refresh, with none running, nothing is
// queued (the first refresh reads it all).
TEST_F(DifferentiationTest, ActivityDuringTheFirstRefreshIsScoredOnceItEnds) {
  AddPopulation();
  logic_->RescoreSoon({"c01"});
  logic_->WaitForRescores();
  EXPECT_EQ(store_.upserts.load(), 0u);
  ExpectScoredByTheFirstRefresh([&] { logic_->RescoreSoon({"p-prospect"}); });
}

// The same for an entity re-scored at once (a merge's primary): with no
// model yet it is queued for the first refresh's, not passed over as valued.
TEST_F(DifferentiationTest, ARescoreDuringTheFirstRefreshWaitsForItsModel) {
  AddPopulation();
  ExpectScoredByTheFirstRefresh(
      [&] { EXPECT_TRUE(logic_->Rescore("p-prospect").ok()); });
}

// The end of a job is recorded through a short loss of the database: the
// job does not stay RUNNING, refusing the next refresh.
TEST_F(DifferentiationTest, AJobsEndIsRecordedThroughAShortLossOfTheDatabase) {
  AddPopulation();
  store_.finishes_unavailable = 2;
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob job = Refresh(request);
  EXPECT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  EXPECT_LE(store_.finishes_unavailable.load(), 0);
  // An end recorded whose answer was lost: the next try finds it recorded.
  store_.finish_answer_lost = true;
  EXPECT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
  EXPECT_FALSE(store_.finish_answer_lost.load());
  EXPECT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
}

// A re-score that fails for a passing reason (here the store away, three
// times in a row) is tried again until it goes through: the values catch up
// by themselves.
TEST_F(DifferentiationTest,
       BackgroundRescoresThatFailForAPassingReasonRunAgain) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  now_ = kAsOf + 3 * kDay;
  store_.AddPurchase("p-prospect", kAsOf + 2 * kDay, "500");
  const size_t rescored_before = store_.upserts.load();
  store_.upserts_unavailable = 3;
  logic_->RescoreSoon({"p-prospect"});
  logic_->WaitForRescores();
  EXPECT_LE(store_.upserts_unavailable.load(), 0);
  // Nothing waits any more, and the gauge says so.
  EXPECT_EQ(RescoreQueueGauge(), 0);
  absl::StatusOr<cv1::EntityValue> value = logic_->GetValue("p-prospect");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->frequency(), 1);
  EXPECT_EQ(value->monetary().units(), 500);
  EXPECT_EQ(store_.upserts.load() - rescored_before, 1u);

  // One that keeps failing is given up after some tries (the next refresh
  // values it): the worker does not go on with it for ever.
  const int64_t refreshed = logic_->GetValue("c02")->frequency();
  store_.AddPurchase("c02", kAsOf + 2 * kDay, "40");
  store_.upserts_unavailable = 1000000;
  logic_->RescoreSoon({"c02"});
  logic_->WaitForRescores();
  EXPECT_GT(store_.upserts_unavailable.load(), 1000000 - 100);
  EXPECT_LT(store_.upserts_unavailable.load(), 1000000 - 1);  // tried again
  EXPECT_EQ(logic_->GetValue("c02")->frequency(), refreshed);
  EXPECT_EQ(RescoreQueueGauge(), 0);
  store_.upserts_unavailable = 0;
}

// A refresh that finished while a re-score ran may have caught up before
// the re-score's write landed: the re-score then scores again against the
// refresh's model, so that no value is left on the model before it.
TEST_F(DifferentiationTest, ARescoreThatARefreshOvertookScoresAgain) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob first = Refresh(request);
  ASSERT_EQ(first.state(), cv1::RefreshJob::STATE_SUCCEEDED) << first.error();
  now_ = kAsOf + 3 * kDay;
  store_.AddPurchase("c01", kAsOf + 2 * kDay, "40");
  const size_t upserts_before = store_.upserts.load();
  // The first write lands just after a later job succeeded (same models).
  store_.after_upsert = [&] {
    store_.after_upsert = nullptr;
    absl::MutexLock l(&store_.mu);
    RefreshJobRecord later = store_.jobs[first.id()];
    later.id = "later-job";
    later.end_time_us = now_.load();
    store_.jobs[later.id] = later;
  };
  ASSERT_TRUE(logic_->Rescore("c01").ok());
  EXPECT_EQ(store_.upserts.load() - upserts_before, 2u);
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.scores["c01"].model_id, "later-job");
}

TEST_F(DifferentiationTest, APurchaseRescoresTheCustomerAgainstTheStoredModel) {
  AddPopulation();
  // Before any refresh there is nothing to keep current, and no policy.
  EXPECT_TRUE(logic_->Rescore("p-prospect").ok());
  EXPECT_FALSE(logic_->ContactPolicyOf("p-prospect")->has_value());
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_window_days(365);
  cv1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();

  // The prospect buys a lot: scored now (as_of = the clock) against the
  // stored thresholds, as ScoreEntity does.
  now_ = kAsOf + 3 * kDay;
  store_.AddPurchase("p-prospect", kAsOf + 2 * kDay, "500");
  ASSERT_TRUE(logic_->Rescore("p-prospect").ok());
  sv1::ScoreEntityRequest direct;
  ASSERT_TRUE(direct.mutable_model()->ParseFromString(
      store_.GetJob(job.id())->score_model));
  direct.mutable_facts()->set_entity_id("p-prospect");
  direct.mutable_facts()->set_frequency(1);
  *direct.mutable_facts()->mutable_monetary() = *ToMoney(D("500"), "", "");
  *direct.mutable_facts()->mutable_last_event_time() =
      ToTimestamp(kAsOf + 2 * kDay);
  *direct.mutable_as_of() = ToTimestamp(now_.load());
  absl::StatusOr<sv1::ScoreEntityResponse> want = scoring::ScoreOne(direct);
  ASSERT_TRUE(want.ok()) << want.status();

  absl::StatusOr<cv1::EntityValue> value = logic_->GetValue("p-prospect");
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->recency_days(), 1);
  EXPECT_EQ(value->frequency(), 1);
  EXPECT_EQ(value->monetary().units(), 500);
  EXPECT_EQ(value->monetary().currency_code(), "USD");
  EXPECT_EQ(value->m(), want->score().m());
  EXPECT_EQ(value->segment(), want->score().segment());
  EXPECT_NE(value->segment(), "Prospect");
  EXPECT_EQ(value->value_hundredths(), want->score().value_hundredths());
  EXPECT_EQ(value->model_id(), job.id());
  EXPECT_EQ(value->tier(), static_cast<int>(want->score().tier()));
  // The tier's contact policy comes with the value, in the customer API's
  // enums.
  EXPECT_EQ(value->contact_policy().tier(), value->tier());
  ASSERT_EQ(value->contact_policy().channels_size(),
            want->contact_policy().channels_size());
  for (int i = 0; i < value->contact_policy().channels_size(); ++i) {
    EXPECT_EQ(static_cast<int>(value->contact_policy().channels(i)),
              static_cast<int>(want->contact_policy().channels(i)));
  }
  EXPECT_EQ(value->contact_policy().service_level(),
            want->contact_policy().service_level());
  absl::StatusOr<std::optional<cv1::ContactPolicy>> policy =
      logic_->ContactPolicyOf("p-prospect");
  ASSERT_TRUE(policy.ok() && policy->has_value());
  EXPECT_EQ((*policy)->SerializeAsString(),
            value->contact_policy().SerializeAsString());
  // A counterpart that tells its tiers' care in its own words (the
  // financial community: management time) has them as the service level,
  // the rest of the policy as the scoring service said.
  {
    DifferentiationOptions options;
    options.recover_every = absl::ZeroDuration();
    options.tier_service_levels = {{value->tier(), "the CFO, 4 hours a year"}};
    Differentiation worded(
        &store_, &store_, client_.get(), &ids_,
        [this] { return absl::FromUnixMicros(now_.load()); }, options);
    absl::StatusOr<cv1::EntityValue> told = worded.GetValue("p-prospect");
    ASSERT_TRUE(told.ok()) << told.status();
    cv1::ContactPolicy expected = value->contact_policy();
    expected.set_service_level("the CFO, 4 hours a year");
    EXPECT_EQ(told->contact_policy().SerializeAsString(),
              expected.SerializeAsString());
    absl::StatusOr<std::optional<cv1::ContactPolicy>> worded_policy =
        worded.ContactPolicyOf("p-prospect");
    ASSERT_TRUE(worded_policy.ok() && worded_policy->has_value());
    EXPECT_EQ((*worded_policy)->service_level(), "the CFO, 4 hours a year");
  }

  // An entity made since the refresh, never scored, is scored when its
  // policy is asked for: it has one, as everyone scored has.
  store_.AddCustomer("p-new");
  absl::StatusOr<std::optional<cv1::ContactPolicy>> new_policy =
      logic_->ContactPolicyOf("p-new");
  ASSERT_TRUE(new_policy.ok()) << new_policy.status();
  ASSERT_TRUE(new_policy->has_value());
  absl::StatusOr<cv1::EntityValue> new_value = logic_->GetValue("p-new");
  ASSERT_TRUE(new_value.ok()) << new_value.status();
  EXPECT_EQ(new_value->model_id(), job.id());
  EXPECT_EQ((*new_policy)->tier(), new_value->tier());

  // ValuesOf answers only for the entities that have values.
  absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>> values =
      logic_->ValuesOf({"c01", "zz"});
  ASSERT_TRUE(values.ok()) << values.status();
  ASSERT_EQ(values->size(), 1u);
  EXPECT_EQ(values->at("c01").entity_id(), "c01");
  EXPECT_EQ(values->at("c01").model_id(), job.id());
}

// Re-scores from many threads at once share batches; each customer still gets
// exactly what ScoreEntity gives for its own facts, and an unknown id in the
// same batch gets NOT_FOUND without failing the others.
TEST_F(DifferentiationTest, ConcurrentRescoresEachGetTheirOwnScore) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  now_ = kAsOf + 3 * kDay;
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) {
    ids.push_back(absl::StrCat("c", i < 10 ? "0" : "", i));
    store_.AddPurchase(ids.back(), kAsOf + 2 * kDay,
                       absl::StrCat(100 * i + 1).c_str());
  }
  ids.push_back("p-prospect");
  std::vector<absl::Status> results(ids.size() + 1);
  std::vector<std::thread> threads;
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i <= ids.size(); ++i) {
      threads.emplace_back([&, i] {
        results[i] = logic_->Rescore(i < ids.size() ? ids[i] : "nobody");
      });
    }
    for (auto& t : threads) t.join();
    threads.clear();
    for (size_t i = 0; i < ids.size(); ++i)
      EXPECT_TRUE(results[i].ok()) << ids[i] << ": " << results[i];
    EXPECT_TRUE(absl::IsNotFound(results.back())) << results.back();
  }
  for (const std::string& id : ids) {
    absl::StatusOr<sv1::ScoreEntityResponse> want = ScoreNow(job.id(), id);
    ASSERT_TRUE(want.ok()) << want.status();
    absl::MutexLock l(&store_.mu);
    ExpectSameScore(store_.scores[id], want->score());
    EXPECT_EQ(store_.scores[id].model_id, job.id());
  }
}

// A purchase recorded while a refresh runs (after its facts were read) is
// re-scored against the old model into the old set, which the refresh then
// replaces: once the refresh has succeeded, that customer is scored again
// against the new model, with the purchase counted.
TEST_F(DifferentiationTest,
       ACustomerRescoredDuringARefreshIsScoredAgainAfterIt) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob first = Refresh(request);
  ASSERT_EQ(first.state(), cv1::RefreshJob::STATE_SUCCEEDED) << first.error();

  now_ = kAsOf + 2 * kDay;
  store_.before_publish = [&] {
    store_.before_publish = nullptr;
    now_ = kAsOf + 3 * kDay;
    store_.AddPurchase("c02", kAsOf + 2 * kDay, "900");
    ASSERT_TRUE(logic_->Rescore("c02").ok());
  };
  cv1::RefreshJob second = Refresh(request);
  ASSERT_EQ(second.state(), cv1::RefreshJob::STATE_SUCCEEDED) << second.error();

  absl::StatusOr<sv1::ScoreEntityResponse> want = ScoreNow(second.id(), "c02");
  ASSERT_TRUE(want.ok()) << want.status();
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.scores["c02"].model_id, second.id());
  ExpectSameScore(store_.scores["c02"], want->score());
  // The others keep the refresh's own values.
  EXPECT_EQ(store_.scores["c03"].score_time_us,
            second.create_time().seconds() * 1'000'000 +
                second.create_time().nanos() / 1000);
}

TEST_F(DifferentiationTest,
       SummaryAveragesRoundHalfAwayFromZeroAndExportIsInKeyOrder) {
  const std::string job = "01jd8x4r2c6n7m9p0q1r2s3t4v";
  {
    absl::MutexLock l(&store_.mu);
    const int values[] = {3, 4, 1000, 2001, 10};
    const char* ids[] = {"e", "b", "d", "a", "c"};
    for (int i = 0; i < 5; ++i) {
      StoredValue& s = store_.scores[ids[i]];
      s.entity_id = ids[i];
      s.model_id = job;
      s.segment = i < 2 ? "At Risk" : "Champions";
      s.tier = i < 2 ? 2 : 4;
      s.value_hundredths = values[i];
      s.monetary = D("1.005");
    }
    store_.external["shop\nk2"] = "e";
    store_.external["shop\nk1"] = "d";
  }
  absl::StatusOr<Differentiation::Summary> summary = logic_->Summarize();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->segments.size(), 2u);
  EXPECT_EQ(summary->segments[0].name(), "At Risk");
  EXPECT_EQ(summary->segments[0].entities(), 2);
  EXPECT_EQ(summary->segments[0].average_value_hundredths(), 4);  // 3.5 -> 4
  EXPECT_EQ(summary->segments[0].monetary().units(), 2);
  EXPECT_EQ(summary->segments[0].monetary().nanos(), 10'000'000);
  EXPECT_EQ(summary->segments[1].average_value_hundredths(),
            1004);  // 1003.667 -> 1004
  ASSERT_EQ(summary->tiers.size(), 2u);
  EXPECT_EQ(summary->tiers[0].name(), "Iron");
  EXPECT_EQ(summary->tiers[1].name(), "Platinum");
  // All values together, and every live entity, scored or not.
  EXPECT_EQ(summary->total.entities(), 5);
  EXPECT_EQ(summary->total.value_hundredths_sum(), 3018);
  EXPECT_EQ(summary->total.average_value_hundredths(), 604);  // 603.6 -> 604
  EXPECT_EQ(summary->entities, 0);  // the fake has values but no entities

  std::vector<std::string> keys;
  int batches = 0;
  ASSERT_TRUE(
      logic_
          ->Export("",
                   [&](google::protobuf::RepeatedPtrField<cv1::EntityValue>&
                           values) {
                     ++batches;
                     for (const auto& v : values) keys.push_back(v.entity_id());
                     return true;
                   })
          .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(batches, 3);
  keys.clear();
  ASSERT_TRUE(
      logic_
          ->Export("shop",
                   [&](google::protobuf::RepeatedPtrField<cv1::EntityValue>&
                           values) {
                     for (const auto& v : values) {
                       keys.push_back(absl::StrCat(v.entity_id(), "=",
                                                   v.value_hundredths()));
                     }
                     return true;
                   })
          .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"k1=1000", "k2=3"}));
  // A client that goes away stops the export.
  EXPECT_TRUE(
      absl::IsCancelled(logic_->Export("", [](const auto&) { return false; })));
  // A refresh that publishes during an export stops it after the pages of
  // the set it began with: the values are never of two sets.
  batches = 0;
  const absl::Status mixed = logic_->Export("", [&](const auto&) {
    if (++batches == 1) {
      absl::MutexLock l(&store_.mu);
      store_.live_job = "a-later-refresh";
    }
    return true;
  });
  EXPECT_TRUE(absl::IsAborted(mixed)) << mixed;
  EXPECT_EQ(batches, 1);
}

TEST_F(DifferentiationTest,
       UnreachableScoringFailsTheJobWithAReasonAndSyncCallsAreUnavailable) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  ASSERT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);

  server_->Shutdown();
  cv1::RefreshJob failed = Refresh(request);
  EXPECT_EQ(failed.state(), cv1::RefreshJob::STATE_FAILED);
  EXPECT_NE(failed.error().find("UNAVAILABLE"), std::string::npos)
      << failed.error();
  // Readers of the job see no internal detail (addresses, SQL): an error id
  // that finds it in the service's log.
  EXPECT_NE(failed.error().find("(error id "), std::string::npos)
      << failed.error();
  EXPECT_EQ(failed.error().find("127.0.0.1"), std::string::npos)
      << failed.error();
  // Nothing half-written: the values of the first job stand.
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_TRUE(store_.staged.empty());
    EXPECT_EQ(store_.scores.size(), 14u);
    EXPECT_NE(store_.scores["c01"].model_id, failed.id());
  }
  absl::Status rescore = logic_->Rescore("c01");
  EXPECT_TRUE(absl::IsUnavailable(rescore)) << rescore;
  // An entity not scored yet has no policy this time rather than hold up
  // its interaction; a scored one keeps its stored policy.
  store_.AddCustomer("p-new");
  absl::StatusOr<std::optional<cv1::ContactPolicy>> unscored =
      logic_->ContactPolicyOf("p-new");
  ASSERT_TRUE(unscored.ok()) << unscored.status();
  EXPECT_FALSE(unscored->has_value());
  absl::StatusOr<std::optional<cv1::ContactPolicy>> scored =
      logic_->ContactPolicyOf("c01");
  ASSERT_TRUE(scored.ok()) << scored.status();
  EXPECT_TRUE(scored->has_value());
}

// A refresh asked again under its request id (its answer was lost) gets
// the job the first call started, running or ended, and starts no other.
// A job stored by a call whose answer was lost is that call's to run: it
// runs to its end, instead of staying running with no one running it (the
// retry under the same request id would be given it).
TEST_F(DifferentiationTest, AJobStoredWhoseAnswerWasLostStillRuns) {
  AddPopulation();
  for (const char* request_id : {"", "nightly-lost"}) {
    store_.create_answer_lost = true;
    absl::StatusOr<cv1::RefreshJob> job =
        logic_->StartRefresh(cv1::RefreshSettings(), "user:test", request_id);
    ASSERT_TRUE(job.ok()) << request_id << ": " << job.status();
    logic_->WaitForJobs();
    absl::StatusOr<cv1::RefreshJob> ended = logic_->GetRefreshJob(job->id());
    ASSERT_TRUE(ended.ok()) << ended.status();
    EXPECT_EQ(ended->state(), cv1::RefreshJob::STATE_SUCCEEDED) << request_id;
  }
}

// Two calls under one request id racing (sent again before the first
// answer came): the one that finds its twin's job running, after it found
// no job of its request id, gets that job, not a refusal naming it.
TEST_F(DifferentiationTest, TwinRefreshesUnderOneRequestIdGetOneJob) {
  AddPopulation();
  absl::Notification release;
  store_.hold_scan = &release;
  cv1::RefreshSettings settings;
  settings.set_bins(5);
  absl::StatusOr<cv1::RefreshJob> twin;
  store_.before_latest_running = [&] {
    twin = logic_->StartRefresh(settings, "user:test", "nightly-twin");
  };
  absl::StatusOr<cv1::RefreshJob> first =
      logic_->StartRefresh(settings, "user:test", "nightly-twin");
  ASSERT_TRUE(twin.ok()) << twin.status();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(twin->id(), KeyedId("refresh", "nightly-twin"));
  EXPECT_EQ(first->id(), twin->id());
  release.Notify();
  logic_->WaitForJobs();
  EXPECT_EQ(logic_->GetRefreshJob(first->id())->state(),
            cv1::RefreshJob::STATE_SUCCEEDED);
}

TEST_F(DifferentiationTest, ARefreshRetriedUnderItsRequestIdGetsItsFirstJob) {
  AddPopulation();
  absl::Notification release;
  store_.hold_scan = &release;
  cv1::RefreshSettings settings;
  settings.set_bins(5);
  absl::StatusOr<cv1::RefreshJob> first =
      logic_->StartRefresh(settings, "user:test", "nightly-1");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->id(), KeyedId("refresh", "nightly-1"));
  absl::StatusOr<cv1::RefreshJob> running =
      logic_->StartRefresh(settings, "user:test", "nightly-1");
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->id(), first->id());
  EXPECT_EQ(running->state(), cv1::RefreshJob::STATE_RUNNING);
  release.Notify();
  logic_->WaitForJobs();
  store_.hold_scan = nullptr;
  // Ended: the same job, as it stands (bins 0 is the default, 5).
  absl::StatusOr<cv1::RefreshJob> ended =
      logic_->StartRefresh(cv1::RefreshSettings(), "user:test", "nightly-1");
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_EQ(ended->id(), first->id());
  EXPECT_EQ(ended->state(), cv1::RefreshJob::STATE_SUCCEEDED);
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.jobs.size(), 1u);
  }
  // The id for other settings is another request: refused, naming the job.
  cv1::RefreshSettings other;
  other.set_bins(4);
  absl::Status reused =
      logic_->StartRefresh(other, "user:test", "nightly-1").status();
  EXPECT_TRUE(absl::IsInvalidArgument(reused)) << reused;
  EXPECT_NE(reused.message().find("request_id"), std::string::npos) << reused;
  EXPECT_NE(reused.message().find(first->id()), std::string::npos) << reused;
  // Another request id starts another job.
  absl::StatusOr<cv1::RefreshJob> next =
      logic_->StartRefresh(settings, "user:test", "nightly-2");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->id(), first->id());
  logic_->WaitForJobs();
  EXPECT_EQ(
      FieldViolations(
          logic_->StartRefresh(settings, "user:test", std::string(200, 'x'))
              .status())
          .at(0)
          .field,
      "request_id");
}

TEST_F(DifferentiationTest,
       OneJobAtATimeAndAStoppedReplicasJobIsReportedFailed) {
  absl::Notification release;
  absl::StatusOr<cv1::RefreshJob> running = StartHeldRefresh(release);
  ASSERT_TRUE(running.ok()) << running.status();
  absl::Status second =
      logic_->StartRefresh(cv1::RefreshSettings(), "user:test").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
  EXPECT_NE(second.message().find(running->id()), std::string::npos);
  release.Notify();
  logic_->WaitForJobs();
  store_.hold_scan = nullptr;

  // A job whose heartbeat is older than 30 s is FAILED, whoever asks.
  RefreshJobRecord orphan;
  orphan.id = ids_.Next();
  orphan.create_time_us = orphan.heartbeat_time_us = now_.load() - 31'000'000;
  ASSERT_TRUE(store_.CreateJob(orphan, {}).ok());
  absl::StatusOr<cv1::RefreshJob> job = logic_->GetRefreshJob(orphan.id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), cv1::RefreshJob::STATE_FAILED);
  EXPECT_EQ(job->error(),
            "its heartbeat stopped: the replica running it stopped, or lost "
            "the database");
  // And it no longer blocks a new refresh.
  EXPECT_TRUE(logic_->StartRefresh(cv1::RefreshSettings(), "user:test").ok());
}

// A job that another replica's recovery ended (this one was cut off for
// longer than the staleness limit) stops once its heartbeat finds it ended,
// instead of scoring the whole population for a set no one will publish.
TEST_F(DifferentiationTest, AJobEndedElsewhereStopsInsteadOfScoringOn) {
  absl::Notification release;
  absl::StatusOr<cv1::RefreshJob> running = StartHeldRefresh(release);
  ASSERT_TRUE(running.ok()) << running.status();
  // Ended elsewhere once it is under way (held in its scan), not before its
  // thread has begun.
  for (int i = 0; i < 30'000 && store_.scans_begun.load() == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_GT(store_.scans_begun.load(), 0);
  {
    absl::MutexLock l(&store_.mu);
    store_.jobs[running->id()].state = JobState::kFailed;
    // Two heartbeats: the first one's stop is done when the second comes.
    auto twice = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(store_.mu) {
      return store_.heartbeats_not_running >= 2;
    };
    ASSERT_TRUE(
        store_.mu.AwaitWithTimeout(absl::Condition(&twice), absl::Seconds(30)));
  }
  release.Notify();
  logic_->WaitForJobs();
  store_.hold_scan = nullptr;
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.appended_values, 0);
  EXPECT_EQ(store_.jobs[running->id()].state, JobState::kFailed);
}

// The swap happened but its answer was lost (the connection broke just
// after): the job still ends SUCCEEDED, since its values are the live ones.
TEST_F(DifferentiationTest, APublicationWhoseAnswerWasLostStillSucceeds) {
  AddPopulation();
  store_.publish_answer = absl::UnavailableError("lost connection");
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob job = Refresh(request);
  EXPECT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.live_job, job.id());
  EXPECT_EQ(store_.scores["c01"].model_id, job.id());
  EXPECT_TRUE(store_.replaced.empty());  // caught up and kept as previous
}

// The same while the database is still away when the job asks whether it
// published: it asks again until it can tell, and only then records its end
// (recorded FAILED, a published job's values would be re-scored with the
// model before it).
TEST_F(DifferentiationTest, APublicationLostWithTheDatabaseStillSucceeds) {
  AddPopulation();
  store_.publish_answer = absl::UnavailableError("lost connection");
  {
    absl::MutexLock l(&store_.mu);
    store_.live_set_failures = 3;
  }
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::RefreshJob job = Refresh(request);
  EXPECT_EQ(job.state(), cv1::RefreshJob::STATE_SUCCEEDED) << job.error();
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.live_set_failures, 0);
  EXPECT_EQ(store_.live_job, job.id());
}

// A replica stopped at a step: another replica ends its job as the step
// requires, whoever asks first (a GetRefreshJob that finds the job stale),
// and its recovery (in the background; the reader does not wait for it)
// cleans up after it.
TEST_F(DifferentiationTest, RecoveryFinishesOrUndoesAStoppedRefreshByItsStep) {
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  const cv1::RefreshJob first = Refresh(request);
  ASSERT_EQ(first.state(), cv1::RefreshJob::STATE_SUCCEEDED);
  for (const RefreshStep stop :
       {RefreshStep::kValuesStaged, RefreshStep::kPublished}) {
    SCOPED_TRACE(static_cast<int>(stop));
    // A failed assertion below does not leave the stopped job waiting.
    StoppedReplica stopped(*this, stop);
    const int64_t frozen = stopped.frozen;
    absl::StatusOr<cv1::RefreshJob> job =
        stopped.logic->StartRefresh(request, "user:test");
    ASSERT_TRUE(job.ok()) << job.status();
    ASSERT_TRUE(
        stopped.reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
    {
      absl::MutexLock l(&store_.mu);
      if (stop == RefreshStep::kPublished) {
        ASSERT_EQ(store_.live_job, job->id());
      } else {
        ASSERT_EQ(store_.staged[job->id()].size(), 14u);
      }
    }
    // A summary names the job whose values it adds up: the new one as soon
    // as it published, though it has not recorded its success yet.
    absl::StatusOr<Differentiation::Summary> summary = logic_->Summarize();
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->model_id,
              stop == RefreshStep::kPublished ? job->id() : first.id());
    // Another replica, 31 s later.
    now_ = frozen + 31'000'000;
    absl::StatusOr<cv1::RefreshJob> seen = logic_->GetRefreshJob(job->id());
    ASSERT_TRUE(seen.ok()) << seen.status();
    const bool published = stop == RefreshStep::kPublished;
    EXPECT_EQ(seen->state(), published ? cv1::RefreshJob::STATE_SUCCEEDED
                                       : cv1::RefreshJob::STATE_FAILED);
    {
      // The reader ended the job and left the rest to recovery.
      absl::MutexLock l(&store_.mu);
      EXPECT_EQ(store_.staged.size() + store_.replaced.size(), 1u);
    }
    ASSERT_TRUE(logic_->Recover().ok());
    {
      absl::MutexLock l(&store_.mu);
      EXPECT_TRUE(store_.staged.empty());
      EXPECT_TRUE(store_.replaced.empty());
      EXPECT_EQ(store_.live_job, published ? job->id() : first.id());
      EXPECT_EQ(store_.scores["c01"].model_id, store_.live_job);
    }
    EXPECT_EQ(*store_.LatestJobId(JobState::kSucceeded),
              published ? job->id() : first.id());
    stopped.release.Notify();
    stopped.logic->WaitForJobs();
    // The stopped job's late steps change nothing: it is no longer running.
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.jobs[job->id()].state,
              published ? JobState::kSucceeded : JobState::kFailed);
    EXPECT_EQ(store_.live_job, published ? job->id() : first.id());
  }
}

// Recovery that cannot finish (the catch-up after a replica stopped just
// after publishing needs the values written, and the store is away for
// that) fails, but still ends the stopped job for the reader who asks, and
// does not stand in the way of the next refresh; a later recovery finishes
// it.
TEST_F(DifferentiationTest,
       RecoveryThatCannotFinishBlocksNeitherReadersNorRefreshes) {
  StoppedReplica stopped(*this, RefreshStep::kPublished);
  cv1::RefreshJob job;
  ASSERT_NO_FATAL_FAILURE(StopAfterPublishing(stopped, &job));
  // Something was re-scored while the job ran: its catch-up has work to do.
  ASSERT_EQ(RescoredMeanwhile({"c01"}, now_.load()), 1u);
  store_.upserts_unavailable = 1000000;
  absl::StatusOr<cv1::RefreshJob> seen = logic_->GetRefreshJob(job.id());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->state(), cv1::RefreshJob::STATE_SUCCEEDED);
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.replaced.size(), 1u);  // not caught up yet
  }
  // A recovery fails while the store is away, and the replaced set stays.
  const absl::Status failed = logic_->Recover();
  EXPECT_TRUE(absl::IsUnavailable(failed)) << failed;
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_TRUE(store_.replaced.contains(job.id()));
  }
  // A refresh still starts and runs (it values every entity anyway); the
  // recovery it tries first fails again.
  const int unavailable_before = store_.upserts_unavailable.load();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  const cv1::RefreshJob next = Refresh(request);
  EXPECT_EQ(next.state(), cv1::RefreshJob::STATE_SUCCEEDED);
  EXPECT_LT(store_.upserts_unavailable.load(), unavailable_before);
  store_.upserts_unavailable = 0;
  stopped.release.Notify();
  stopped.logic->WaitForJobs();
  // The store is back: the next recovery drops the stopped job's replaced
  // set, whose entities the later refresh valued with its own model.
  now_ = now_.load() + 31'000'000;
  ASSERT_TRUE(logic_->Recover().ok());
  absl::MutexLock l(&store_.mu);
  EXPECT_FALSE(store_.replaced.contains(job.id()));
  EXPECT_EQ(store_.live_job, next.id());
  EXPECT_EQ(store_.scores["c01"].model_id, next.id());
}

// A replica that stops once a refresh's scores are in does not publish them
// (nor wait for their indexes to be built): the job ends FAILED, cancelled,
// and the staged set is discarded.
TEST_F(DifferentiationTest,
       AReplicaStoppingOnceTheScoresAreInPublishesNothing) {
  AddPopulation();
  absl::Notification stop_begun;
  StoppedReplica stopped(*this, RefreshStep::kValuesStaged, 500,
                         [&] { stop_begun.Notify(); });
  std::atomic<int> publishes{0};
  store_.before_publish = [&] { ++publishes; };
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  absl::StatusOr<cv1::RefreshJob> job =
      stopped.logic->StartRefresh(request, "user:test");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(
      stopped.reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
  std::thread stop([&] { stopped.logic.reset(); });
  EXPECT_TRUE(stop_begun.WaitForNotificationWithTimeout(absl::Seconds(30)));
  stopped.release.Notify();
  stop.join();
  store_.before_publish = nullptr;
  EXPECT_EQ(publishes.load(), 0);
  absl::MutexLock l(&store_.mu);
  EXPECT_EQ(store_.jobs[job->id()].state, JobState::kFailed);
  EXPECT_TRUE(absl::StrContains(store_.jobs[job->id()].error, "cancelled"))
      << store_.jobs[job->id()].error;
  EXPECT_FALSE(store_.staged.contains(job->id()));
  EXPECT_TRUE(store_.live_job.empty());
}

// A replica stopped in the catch-up after its refresh goes without scoring
// the rest (the pod's grace period is short): the replaced set stays, and the
// next recovery, here on another replica, catches up.
TEST_F(DifferentiationTest, AStoppingReplicaLeavesItsCatchUpToRecovery) {
  absl::Notification stop_begun;
  auto stopped = std::make_unique<StoppedReplica>(*this, RefreshStep::kFinished,
                                                  /*rescore_batch=*/1,
                                                  [&] { stop_begun.Notify(); });
  AddPopulation();
  cv1::RefreshSettings request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  ASSERT_EQ(Refresh(request).state(), cv1::RefreshJob::STATE_SUCCEEDED);
  absl::StatusOr<cv1::RefreshJob> job =
      stopped->logic->StartRefresh(request, "user:test");
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(
      stopped->reached.WaitForNotificationWithTimeout(absl::Seconds(30)));
  // Every entity was re-scored while the job ran: each is caught up alone.
  const size_t to_catch_up = RescoredMeanwhile({}, now_.load() + 1);
  ASSERT_GT(to_catch_up, 5u);
  // The catch-up (one entity a batch) runs its first write, which waits
  // there; the replica stops; the catch-up stops before its second.
  absl::Notification catching_up;
  store_.after_upsert = [&] {
    if (!catching_up.HasBeenNotified()) catching_up.Notify();
    EXPECT_TRUE(stop_begun.WaitForNotificationWithTimeout(absl::Seconds(30)));
  };
  const size_t upserts_before = store_.upserts.load();
  stopped->release.Notify();
  EXPECT_TRUE(catching_up.WaitForNotificationWithTimeout(absl::Seconds(30)));
  stopped.reset();
  store_.after_upsert = nullptr;
  EXPECT_EQ(store_.upserts.load() - upserts_before, 1u);
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_EQ(store_.replaced.size(), 1u);
  }
  now_ = now_.load() + 31'000'000;  // the job's end is stale
  absl::Status recovered = logic_->Recover();
  EXPECT_TRUE(recovered.ok()) << recovered;
  absl::MutexLock l(&store_.mu);
  EXPECT_TRUE(store_.replaced.empty());
  EXPECT_EQ(store_.live_job, job->id());
}

// An entity that cannot be scored at all does not keep a recovery's
// catch-up from finishing (every later one would stop at it too): it is
// logged and passed, and the replaced set is retired.
TEST_F(DifferentiationTest, AnEntityThatCannotBeScoredDoesNotStopTheCatchUp) {
  StoppedReplica stopped(*this, RefreshStep::kPublished);
  cv1::RefreshJob job;
  ASSERT_NO_FATAL_FAILURE(StopAfterPublishing(stopped, &job));
  // Two entities re-scored while the job ran, caught up in one batch; one
  // of them cannot be stored.
  ASSERT_EQ(RescoredMeanwhile({"c01", "c02"}, now_.load()), 2u);
  {
    absl::MutexLock l(&store_.mu);
    store_.scores["c02"].model_id = "an older model";
    store_.upsert_refused = "c01";
  }
  absl::Status recovered = logic_->Recover();
  EXPECT_TRUE(recovered.ok()) << recovered;
  {
    absl::MutexLock l(&store_.mu);
    EXPECT_TRUE(store_.replaced.empty());
    EXPECT_EQ(store_.live_job, job.id());
    // The other one of its batch was caught up all the same.
    EXPECT_EQ(store_.scores["c02"].model_id, job.id());
    store_.upsert_refused.clear();
  }
  stopped.release.Notify();
  stopped.logic->WaitForJobs();
}

}  // namespace
}  // namespace rapport::differentiation
