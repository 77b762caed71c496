// StoredScoreLogic on a fake ScoreStore and the real scoring service,
// in-process on a loopback port: a refresh stores exactly what the scoring
// service computes from the raw events, a purchase re-scores one customer
// against the stored model, policies come with the values, and failures end
// jobs with a reason.
#include "services/customer/stored_scores.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/base/status_macros.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "services/scoring/scoring_logic.h"
#include "services/scoring/scoring_service.h"

namespace rapport::customer {
namespace {

namespace sv1 = ::rapport::scoring::v1;

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kAsOf = 1'700'000'000'000'000;

Decimal D(const char* text) { return *Decimal::Parse(text); }

// Raw purchases and costs in memory; facts computed the way SQL would.
class FakeScoreStore final : public ScoreStore {
 public:
  struct Event {
    std::string customer_id;
    int64_t time_us;
    Decimal amount;
  };

  // --- test data ---
  absl::Mutex mu;
  std::map<std::string, bool> customers ABSL_GUARDED_BY(mu);  // id -> live
  std::vector<Event> purchases ABSL_GUARDED_BY(mu);
  std::vector<Event> costs ABSL_GUARDED_BY(mu);
  std::map<std::string, RefreshJobRecord> jobs ABSL_GUARDED_BY(mu);
  std::map<std::string, StoredScore> scores ABSL_GUARDED_BY(mu);
  std::map<std::string, std::map<std::string, StoredScore>> staged
      ABSL_GUARDED_BY(mu);
  std::map<std::string, std::string> external
      ABSL_GUARDED_BY(mu);  // "source\nkey" -> id
  // When set, ScanFacts waits for it (to hold a job running).
  absl::Notification* hold_scan = nullptr;
  // When set, runs as PublishScoreSet begins (outside the lock).
  std::function<void()> before_publish;

  void AddCustomer(const std::string& id, bool live = true) {
    absl::MutexLock l(&mu);
    customers[id] = live;
  }
  void AddPurchase(const std::string& id, int64_t t, const char* amount) {
    absl::MutexLock l(&mu);
    purchases.push_back({id, t, D(amount)});
  }
  void AddCost(const std::string& id, int64_t t, const char* cost) {
    absl::MutexLock l(&mu);
    costs.push_back({id, t, D(cost)});
  }

  // --- ScoreStore ---
  absl::Status CreateJob(const RefreshJobRecord& job) override {
    absl::MutexLock l(&mu);
    jobs[job.id] = job;
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
  absl::Status UpdateProgress(const std::string& id, int64_t done,
                              int64_t total, int64_t now_us) override {
    absl::MutexLock l(&mu);
    RefreshJobRecord& j = jobs[id];
    if (j.state != JobState::kRunning) return absl::OkStatus();
    j.done = done;
    j.total = total;
    j.heartbeat_time_us = now_us;
    return absl::OkStatus();
  }
  absl::Status SetModels(const std::string& id, const std::string& score_model,
                         const std::string& clv_model) override {
    absl::MutexLock l(&mu);
    jobs[id].score_model = score_model;
    jobs[id].clv_model = clv_model;
    return absl::OkStatus();
  }
  absl::Status FinishJob(const RefreshJobRecord& job) override {
    absl::MutexLock l(&mu);
    RefreshJobRecord& j = jobs[job.id];
    if (j.state != JobState::kRunning)
      return absl::FailedPreconditionError("not running");
    j.state = job.state;
    j.error = job.error;
    j.done = job.done;
    j.total = job.total;
    j.end_time_us = job.end_time_us;
    return absl::OkStatus();
  }
  absl::Status FailStaleJobs(int64_t stale_before_us, const std::string& error,
                             int64_t now_us) override {
    absl::MutexLock l(&mu);
    for (auto& [id, j] : jobs) {
      if (j.state == JobState::kRunning &&
          j.heartbeat_time_us < stale_before_us) {
        j.state = JobState::kFailed;
        j.error = error;
        j.end_time_us = now_us;
        staged.erase(id);
      }
    }
    return absl::OkStatus();
  }
  absl::StatusOr<int64_t> CountLiveCustomers() override {
    absl::MutexLock l(&mu);
    return static_cast<int64_t>(
        std::count_if(customers.begin(), customers.end(),
                      [](const auto& c) { return c.second; }));
  }
  static bool Counts(const CountWindow& w, int64_t t) {
    return t > w.after_us() && t <= w.as_of_us;
  }
  CustomerFacts FactsLocked(const std::string& id, const CountWindow& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    CustomerFacts f;
    f.customer_id = id;
    for (const Event& e : purchases) {
      if (e.customer_id != id || !Counts(w, e.time_us)) continue;
      ++f.frequency;
      f.monetary += e.amount;
      f.last_event_us =
          std::max(f.last_event_us.value_or(INT64_MIN), e.time_us);
    }
    for (const Event& e : costs) {
      if (e.customer_id == id && Counts(w, e.time_us))
        f.cost_to_serve += e.amount;
    }
    return f;
  }
  absl::Status ScanFacts(const CountWindow& window, int batch_size,
                         const Sink<CustomerFacts>& sink) override {
    if (hold_scan != nullptr) hold_scan->WaitForNotification();
    std::vector<CustomerFacts> all;
    {
      absl::MutexLock l(&mu);
      for (const auto& [id, live] : customers) {
        if (live) all.push_back(FactsLocked(id, window));
      }
    }
    for (size_t i = 0; i < all.size(); i += batch_size) {
      std::vector<CustomerFacts> batch(
          all.begin() + i, all.begin() + std::min(all.size(), i + batch_size));
      RAPPORT_RETURN_IF_ERROR(sink(batch));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<CustomerFacts>> FactsOf(
      const std::vector<std::string>& ids, const CountWindow& window) override {
    absl::MutexLock l(&mu);
    std::vector<CustomerFacts> out;
    for (const std::string& id : ids) {
      auto it = customers.find(id);
      if (it != customers.end() && it->second)
        out.push_back(FactsLocked(id, window));
    }
    return out;
  }
  absl::Status ScanPurchaseDays(const CountWindow& window, int batch_size,
                                const Sink<PurchaseDay>& sink) override {
    std::map<std::pair<std::string, int64_t>, Decimal> days;
    {
      absl::MutexLock l(&mu);
      for (const Event& e : purchases) {
        if (customers[e.customer_id] && Counts(window, e.time_us)) {
          days[{e.customer_id, FloorDays(e.time_us)}] += e.amount;
        }
      }
    }
    std::vector<PurchaseDay> batch;
    for (const auto& [key, amount] : days)
      batch.push_back({key.first, key.second, amount});
    return batch.empty() ? absl::OkStatus() : sink(batch);
  }
  static int64_t FloorDays(int64_t t) {
    return t >= 0 ? t / kDay : -((-t + kDay - 1) / kDay);
  }

  absl::Status BeginScoreSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    staged[job_id].clear();
    return absl::OkStatus();
  }
  absl::Status AppendScores(const std::string& job_id,
                            const std::vector<StoredScore>& batch) override {
    absl::MutexLock l(&mu);
    for (const StoredScore& s : batch) staged[job_id][s.customer_id] = s;
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> PublishScoreSet(
      const std::string& job_id, int64_t rescored_since_us) override {
    if (before_publish) before_publish();
    absl::MutexLock l(&mu);
    std::vector<std::string> rescored;
    for (const auto& [id, s] : scores) {
      if (s.score_time_us > rescored_since_us) rescored.push_back(id);
    }
    scores = std::move(staged[job_id]);
    staged.erase(job_id);
    return rescored;
  }
  absl::StatusOr<std::vector<std::string>> ScoredByOtherModels(
      const std::string& job_id) override {
    absl::MutexLock l(&mu);
    std::vector<std::string> out;
    for (const auto& [id, s] : scores) {
      if (s.model_id != job_id) out.push_back(id);
    }
    return out;
  }
  absl::Status DiscardScoreSet(const std::string& job_id) override {
    absl::MutexLock l(&mu);
    staged.erase(job_id);
    return absl::OkStatus();
  }
  absl::Status UpsertScores(const std::vector<StoredScore>& batch) override {
    absl::MutexLock l(&mu);
    for (const StoredScore& score : batch) {
      StoredScore& s = scores[score.customer_id];
      StoredScore old = s;
      s = score;
      if (!s.clv) s.clv = old.clv;
      if (!s.p_alive) s.p_alive = old.p_alive;
      if (!s.expected_purchases) s.expected_purchases = old.expected_purchases;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<StoredScore>> GetScores(
      const std::vector<std::string>& ids) override {
    absl::MutexLock l(&mu);
    std::vector<StoredScore> out;
    for (const std::string& id : ids) {
      if (auto it = scores.find(id); it != scores.end())
        out.push_back(it->second);
    }
    return out;
  }
  absl::StatusOr<std::string> ResolveLiveCustomer(
      const std::string& id) override {
    absl::MutexLock l(&mu);
    auto it = customers.find(id);
    if (it == customers.end() || !it->second)
      return absl::NotFoundError("no such customer");
    return id;
  }
  absl::StatusOr<ScoreSummary> Summarize() override {
    absl::MutexLock l(&mu);
    std::map<std::string, GroupTotals> segments;
    std::map<int, GroupTotals> tiers;
    for (const auto& [id, s] : scores) {
      for (GroupTotals* g : {&segments[s.segment], &tiers[s.tier]}) {
        g->segment = s.segment;
        g->tier = s.tier;
        ++g->customers;
        g->revenue += s.monetary;
        g->value_hundredths_sum += s.value_hundredths;
      }
    }
    ScoreSummary out;
    for (auto& [k, g] : segments) out.segments.push_back(g);
    for (auto& [k, g] : tiers) out.tiers.push_back(g);
    return out;
  }
  absl::StatusOr<std::vector<StoredScore>> ExportPage(
      const std::string& source, const std::string& after_key,
      int limit) override {
    absl::MutexLock l(&mu);
    std::vector<StoredScore> out;
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
      out.back().customer_id = it->first.substr(source.size() + 1);
    }
    return out;
  }
};

class StoredScoresTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scoring_ = std::make_unique<scoring::ScoringServiceImpl>(
        [] { return absl::Now(); });
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

  std::unique_ptr<StoredScoreLogic> NewLogic(const std::string& address) {
    StoredScoreOptions options;
    options.batch_size = 3;  // several batches with a handful of customers
    options.export_batch_size = 2;
    options.heartbeat = absl::Milliseconds(20);
    options.call_timeout = absl::Seconds(5);
    return std::make_unique<StoredScoreLogic>(
        &store_,
        sv1::ScoringService::NewStub(
            grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
        &ids_, [this] { return absl::FromUnixMicros(now_.load()); }, options);
  }

  // Starts a refresh and waits for it to end.
  v1::RefreshJob Refresh(v1::RefreshScoresRequest request) {
    absl::StatusOr<v1::RefreshJob> started = logic_->StartRefresh(request);
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return {};
    EXPECT_EQ(started->state(), v1::RefreshJob::STATE_RUNNING);
    logic_->WaitForJobs();
    v1::GetRefreshJobRequest get;
    get.set_id(started->id());
    absl::StatusOr<v1::RefreshJob> job = logic_->GetRefreshJob(get);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::RefreshJob();
  }

  // The scoring service's own answer from the raw events and costs.
  std::map<std::string, sv1::EntityScore> Expected(int64_t as_of,
                                                   int window_days, int bins) {
    sv1::ScorePopulationRequest request;
    *request.mutable_config()->mutable_as_of() = ToTimestamp(as_of);
    request.mutable_config()->set_window_days(window_days);
    request.mutable_config()->set_bins(bins);
    absl::MutexLock l(&store_.mu);
    for (const auto& [id, live] : store_.customers) {
      if (live) request.add_entity_ids(id);
    }
    for (const auto& e : store_.purchases) {
      sv1::ActivityEvent* a = request.add_events();
      a->set_entity_id(e.customer_id);
      *a->mutable_time() = ToTimestamp(e.time_us);
      *a->mutable_amount() = *ToMoney(e.amount, "", "");
    }
    for (const auto& e : store_.costs) {
      sv1::InteractionCost* c = request.add_costs();
      c->set_entity_id(e.customer_id);
      *c->mutable_time() = ToTimestamp(e.time_us);
      *c->mutable_cost() = *ToMoney(e.amount, "", "");
    }
    auto run = scoring::PopulationRun::Start(request.config(), absl::Now());
    EXPECT_TRUE(run.ok());
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
    CustomerFacts facts;
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

  std::atomic<int64_t> now_{kAsOf + kDay};
  FakeScoreStore store_;
  IdGenerator ids_;
  std::unique_ptr<scoring::ScoringServiceImpl> scoring_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<StoredScoreLogic> logic_;
};

void ExpectSameScore(const StoredScore& got, const sv1::EntityScore& want) {
  SCOPED_TRACE(want.entity_id());
  EXPECT_EQ(got.recency_days.has_value(), want.has_recency_days());
  if (want.has_recency_days()) {
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

TEST_F(StoredScoresTest,
       RefreshStoresExactlyWhatTheScoringServiceComputesFromRawEvents) {
  AddPopulation();
  for (const auto& [window, bins] : {std::pair{0, 5}, std::pair{60, 3}}) {
    v1::RefreshScoresRequest request;
    *request.mutable_as_of() = ToTimestamp(kAsOf);
    request.set_window_days(window);
    request.set_bins(bins);
    v1::RefreshJob job = Refresh(request);
    ASSERT_EQ(job.state(), v1::RefreshJob::STATE_SUCCEEDED) << job.error();
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
    EXPECT_EQ(store_.scores["p-lead"].tier, v1::TIER_LEAD);
    EXPECT_EQ(store_.scores["p-prospect"].segment, "Prospect");
    // The model that produced the values is stored with the job.
    sv1::ScoreModel model;
    ASSERT_TRUE(model.ParseFromString(store_.jobs[job.id()].score_model));
    EXPECT_EQ(model.bins(), bins);
    EXPECT_EQ(model.window_days(), window);
  }
}

TEST_F(StoredScoresTest, RefreshWithClvStoresPredictionsForBuyers) {
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
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_with_clv(true);
  v1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), v1::RefreshJob::STATE_SUCCEEDED) << job.error();
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

TEST_F(StoredScoresTest, BadRequestsNameTheField) {
  v1::RefreshScoresRequest request;
  request.set_bins(11);
  request.set_window_days(-1);
  absl::Status s = logic_->StartRefresh(request).status();
  ASSERT_TRUE(absl::IsInvalidArgument(s)) << s;
  std::set<std::string> fields;
  for (const FieldViolation& v : FieldViolations(s)) fields.insert(v.field);
  EXPECT_EQ(fields, (std::set<std::string>{"bins", "window_days"}));
  request.set_bins(1);
  request.set_window_days(0);
  EXPECT_EQ(FieldViolations(logic_->StartRefresh(request).status()).at(0).field,
            "bins");

  v1::GetRefreshJobRequest get;
  get.set_id("01jd8x4r2c6n7m9p0q1r2s3t4v");
  EXPECT_TRUE(absl::IsNotFound(logic_->GetRefreshJob(get).status()));
  v1::GetCustomerValueRequest value;
  value.set_id("nobody");
  EXPECT_TRUE(absl::IsNotFound(logic_->GetCustomerValue(value).status()));
  EXPECT_TRUE(absl::IsNotFound(logic_->Rescore("nobody")));
  v1::ExportScoresRequest export_request;
  export_request.set_external_id_source(std::string(65, 's'));
  EXPECT_TRUE(absl::IsInvalidArgument(
      logic_->ExportScores(export_request, [](const auto&) { return true; })));
}

TEST_F(StoredScoresTest, APurchaseRescoresTheCustomerAgainstTheStoredModel) {
  AddPopulation();
  // Before any refresh there is nothing to keep current, and no policy.
  EXPECT_TRUE(logic_->Rescore("p-prospect").ok());
  EXPECT_FALSE(logic_->ContactPolicyOf("p-prospect")->has_value());
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_window_days(365);
  v1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), v1::RefreshJob::STATE_SUCCEEDED) << job.error();

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

  v1::GetCustomerValueRequest get;
  get.set_id("p-prospect");
  absl::StatusOr<v1::CustomerValue> value = logic_->GetCustomerValue(get);
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
  absl::StatusOr<std::optional<v1::ContactPolicy>> policy =
      logic_->ContactPolicyOf("p-prospect");
  ASSERT_TRUE(policy.ok() && policy->has_value());
  EXPECT_EQ((*policy)->SerializeAsString(),
            value->contact_policy().SerializeAsString());

  // AttachValues fills only the customers that have values.
  v1::Customer scored, unknown;
  scored.set_id("c01");
  unknown.set_id("zz");
  ASSERT_TRUE(logic_->AttachValues({&scored, &unknown}).ok());
  EXPECT_TRUE(scored.has_value());
  EXPECT_EQ(scored.value().customer_id(), "c01");
  EXPECT_FALSE(unknown.has_value());
}

// Re-scores from many threads at once share batches; each customer still gets
// exactly what ScoreEntity gives for its own facts, and an unknown id in the
// same batch gets NOT_FOUND without failing the others.
TEST_F(StoredScoresTest, ConcurrentRescoresEachGetTheirOwnScore) {
  AddPopulation();
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  v1::RefreshJob job = Refresh(request);
  ASSERT_EQ(job.state(), v1::RefreshJob::STATE_SUCCEEDED) << job.error();
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
TEST_F(StoredScoresTest, ACustomerRescoredDuringARefreshIsScoredAgainAfterIt) {
  AddPopulation();
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  v1::RefreshJob first = Refresh(request);
  ASSERT_EQ(first.state(), v1::RefreshJob::STATE_SUCCEEDED) << first.error();

  now_ = kAsOf + 2 * kDay;
  store_.before_publish = [&] {
    store_.before_publish = nullptr;
    now_ = kAsOf + 3 * kDay;
    store_.AddPurchase("c02", kAsOf + 2 * kDay, "900");
    ASSERT_TRUE(logic_->Rescore("c02").ok());
  };
  v1::RefreshJob second = Refresh(request);
  ASSERT_EQ(second.state(), v1::RefreshJob::STATE_SUCCEEDED) << second.error();

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

TEST_F(StoredScoresTest,
       SummaryAveragesRoundHalfAwayFromZeroAndExportIsInKeyOrder) {
  const std::string job = "01jd8x4r2c6n7m9p0q1r2s3t4v";
  {
    absl::MutexLock l(&store_.mu);
    const int values[] = {3, 4, 1000, 2001, 10};
    const char* ids[] = {"e", "b", "d", "a", "c"};
    for (int i = 0; i < 5; ++i) {
      StoredScore& s = store_.scores[ids[i]];
      s.customer_id = ids[i];
      s.model_id = job;
      s.segment = i < 2 ? "At Risk" : "Champions";
      s.tier = i < 2 ? 2 : 4;
      s.value_hundredths = values[i];
      s.monetary = D("1.005");
    }
    store_.external["shop\nk2"] = "e";
    store_.external["shop\nk1"] = "d";
  }
  absl::StatusOr<v1::SummarizeSegmentsResponse> summary =
      logic_->SummarizeSegments(v1::SummarizeSegmentsRequest());
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->segments_size(), 2);
  EXPECT_EQ(summary->segments(0).name(), "At Risk");
  EXPECT_EQ(summary->segments(0).customers(), 2);
  EXPECT_EQ(summary->segments(0).average_value_hundredths(), 4);  // 3.5 -> 4
  EXPECT_EQ(summary->segments(0).revenue().units(), 2);
  EXPECT_EQ(summary->segments(0).revenue().nanos(), 10'000'000);
  EXPECT_EQ(summary->segments(1).average_value_hundredths(),
            1004);  // 1003.667 -> 1004
  ASSERT_EQ(summary->tiers_size(), 2);
  EXPECT_EQ(summary->tiers(0).name(), "Iron");
  EXPECT_EQ(summary->tiers(1).name(), "Platinum");

  std::vector<std::string> keys;
  int batches = 0;
  ASSERT_TRUE(logic_
                  ->ExportScores(v1::ExportScoresRequest(),
                                 [&](const v1::ExportScoresResponse& r) {
                                   ++batches;
                                   for (const auto& v : r.values())
                                     keys.push_back(v.customer_id());
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_EQ(batches, 3);
  keys.clear();
  v1::ExportScoresRequest by_shop;
  by_shop.set_external_id_source("shop");
  ASSERT_TRUE(logic_
                  ->ExportScores(by_shop,
                                 [&](const v1::ExportScoresResponse& r) {
                                   for (const auto& v : r.values()) {
                                     keys.push_back(
                                         absl::StrCat(v.customer_id(), "=",
                                                      v.value_hundredths()));
                                   }
                                   return true;
                                 })
                  .ok());
  EXPECT_EQ(keys, (std::vector<std::string>{"k1=1000", "k2=3"}));
  // A client that goes away stops the export.
  EXPECT_TRUE(absl::IsCancelled(logic_->ExportScores(
      v1::ExportScoresRequest(), [](const auto&) { return false; })));
}

TEST_F(StoredScoresTest,
       UnreachableScoringFailsTheJobWithAReasonAndSyncCallsAreUnavailable) {
  AddPopulation();
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  ASSERT_EQ(Refresh(request).state(), v1::RefreshJob::STATE_SUCCEEDED);

  server_->Shutdown();
  v1::RefreshJob failed = Refresh(request);
  EXPECT_EQ(failed.state(), v1::RefreshJob::STATE_FAILED);
  EXPECT_NE(failed.error().find("UNAVAILABLE"), std::string::npos)
      << failed.error();
  EXPECT_NE(failed.error().find("scoring service"), std::string::npos)
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
}

TEST_F(StoredScoresTest, OneJobAtATimeAndAStoppedReplicasJobIsReportedFailed) {
  AddPopulation();
  absl::Notification release;
  store_.hold_scan = &release;
  absl::StatusOr<v1::RefreshJob> running =
      logic_->StartRefresh(v1::RefreshScoresRequest());
  ASSERT_TRUE(running.ok()) << running.status();
  absl::Status second =
      logic_->StartRefresh(v1::RefreshScoresRequest()).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(second)) << second;
  EXPECT_NE(second.message().find(running->id()), std::string::npos);
  release.Notify();
  logic_->WaitForJobs();
  store_.hold_scan = nullptr;

  // A job whose heartbeat is older than 30 s is FAILED, whoever asks.
  RefreshJobRecord orphan;
  orphan.id = ids_.Next();
  orphan.create_time_us = orphan.heartbeat_time_us = now_.load() - 31'000'000;
  ASSERT_TRUE(store_.CreateJob(orphan).ok());
  v1::GetRefreshJobRequest get;
  get.set_id(orphan.id);
  absl::StatusOr<v1::RefreshJob> job = logic_->GetRefreshJob(get);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), v1::RefreshJob::STATE_FAILED);
  EXPECT_EQ(job->error(), "the replica running it stopped");
  // And it no longer blocks a new refresh.
  EXPECT_TRUE(logic_->StartRefresh(v1::RefreshScoresRequest()).ok());
}

}  // namespace
}  // namespace rapport::customer
