// Differentiation's stored values: reading them with their contact policy,
// summaries, exports, and re-scoring single entities against the stored
// model (the refresh jobs are in refresh_job.cc).
#include "common/differentiation/differentiation.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/api_names.h"
#include "common/base/status_macros.h"
#include "common/differentiation/score_messages.h"
#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/proto_convert.h"
#include "common/status.h"

namespace rapport::differentiation {
namespace {

namespace sv1 = ::rapport::scoring::v1;

constexpr int kMaxSourceBytes = 64;
// The most entities the scoring service takes in one ScoreEntities call.
constexpr size_t kScoreEntitiesPerCall = 10000;

// Average of `count` values summing to `sum`, rounded half away from zero.
int32_t RoundedAverage(int64_t sum, int64_t count) {
  if (count <= 0) return 0;
  const int64_t magnitude = (2 * (sum < 0 ? -sum : sum) + count) / (2 * count);
  return static_cast<int32_t>(sum < 0 ? -magnitude : magnitude);
}

absl::StatusOr<cv1::GroupSummary> ToGroup(const GroupTotals& g,
                                          std::string name,
                                          const std::string& currency) {
  cv1::GroupSummary out;
  out.set_name(std::move(name));
  out.set_entities(g.entities);
  RAPPORT_ASSIGN_OR_RETURN(*out.mutable_monetary(),
                           ToMoney(g.monetary, currency, "monetary"));
  RAPPORT_ASSIGN_OR_RETURN(*out.mutable_cost_to_serve(),
                           ToMoney(g.cost_to_serve, currency, "cost_to_serve"));
  RAPPORT_ASSIGN_OR_RETURN(*out.mutable_profit(),
                           ToMoney(g.profit, currency, "profit"));
  out.set_value_hundredths_sum(g.value_hundredths_sum);
  out.set_average_value_hundredths(
      RoundedAverage(g.value_hundredths_sum, g.entities));
  return out;
}

absl::StatusOr<std::optional<cv1::ContactPolicy>> PolicyFor(
    const sv1::ScoreModel* model, int tier,
    const DifferentiationOptions& options) {
  if (model == nullptr) return std::optional<cv1::ContactPolicy>();
  for (const cv1::ContactPolicy& p : model->contact_policies()) {
    if (p.tier() != tier) continue;
    cv1::ContactPolicy out = p;
    RAPPORT_ASSIGN_OR_RETURN(Decimal ceiling,
                             FromMoney(p.cost_ceiling(), "cost_ceiling"));
    RAPPORT_ASSIGN_OR_RETURN(
        *out.mutable_cost_ceiling(),
        ToMoney(ceiling, options.currency, "cost_ceiling"));
    if (auto level = options.tier_service_levels.find(tier);
        level != options.tier_service_levels.end()) {
      out.set_service_level(level->second);
    }
    return std::optional<cv1::ContactPolicy>(std::move(out));
  }
  return std::optional<cv1::ContactPolicy>();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Differentiation::ScoreModel>>
Differentiation::ModelOf(const std::string& job_id) {
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

absl::StatusOr<cv1::EntityValue> Differentiation::ToValue(
    const StoredValue& s) {
  const std::string& currency = options_.currency;
  cv1::EntityValue v;
  v.set_entity_id(s.entity_id);
  if (s.recency_days.has_value()) v.set_recency_days(*s.recency_days);
  v.set_frequency(s.frequency);
  RAPPORT_ASSIGN_OR_RETURN(*v.mutable_monetary(),
                           ToMoney(s.monetary, currency, "monetary"));
  v.set_r(s.r);
  v.set_f(s.f);
  v.set_m(s.m);
  v.set_segment(s.segment);
  v.set_value_hundredths(s.value_hundredths);
  RAPPORT_ASSIGN_OR_RETURN(*v.mutable_cost_to_serve(),
                           ToMoney(s.cost_to_serve, currency, "cost_to_serve"));
  RAPPORT_ASSIGN_OR_RETURN(*v.mutable_profit(),
                           ToMoney(s.profit, currency, "profit"));
  v.set_tier(cv1::Tier_IsValid(s.tier) ? static_cast<cv1::Tier>(s.tier)
                                       : cv1::TIER_UNSPECIFIED);
  RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const ScoreModel> model,
                           ModelOf(s.model_id));
  RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::ContactPolicy> policy,
                           PolicyFor(model.get(), s.tier, options_));
  if (policy.has_value()) *v.mutable_contact_policy() = *std::move(policy);
  if (s.p_alive.has_value()) v.set_p_alive(*s.p_alive);
  if (s.expected_purchases.has_value())
    v.set_expected_purchases(*s.expected_purchases);
  if (s.clv.has_value()) v.set_clv(*s.clv);
  v.set_model_id(s.model_id);
  *v.mutable_score_time() = ToTimestamp(s.score_time_us);
  return v;
}

absl::StatusOr<cv1::EntityValue> Differentiation::GetValue(
    const std::string& id) {
  if (id.empty()) return InvalidField("id", "is required");
  RAPPORT_ASSIGN_OR_RETURN(std::string live, counterpart_->ResolveEntity(id));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredValue> values,
                           store_->GetValues({live}));
  if (values.empty()) {
    // Refreshed since? Then the entity came after it.
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> refreshed,
                             store_->LatestJobId(JobState::kSucceeded));
    return absl::FailedPreconditionError(absl::StrCat(
        options_.entity, " ", live, " has no stored values yet; ",
        refreshed.has_value()
            ? "it came after the last refresh: its first activity or the "
              "next refresh scores it"
            : "no refresh has succeeded: refresh the scores first"));
  }
  return ToValue(values.front());
}

absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>>
Differentiation::PreviousValuesOf(const std::vector<std::string>& ids) {
  absl::flat_hash_map<std::string, cv1::EntityValue> out;
  if (ids.empty()) return out;
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredValue> values,
                           store_->GetPreviousValues(ids));
  for (const StoredValue& s : values) {
    RAPPORT_ASSIGN_OR_RETURN(cv1::EntityValue v, ToValue(s));
    out.emplace(s.entity_id, std::move(v));
  }
  return out;
}

absl::StatusOr<Differentiation::Trend> Differentiation::TrendOf(
    const std::string& id) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> before,
                             store_->LiveSetJob());
    Trend trend;
    RAPPORT_ASSIGN_OR_RETURN(auto now, ValuesOf({id}));
    if (auto it = now.find(id); it != now.end()) trend.now = it->second;
    RAPPORT_ASSIGN_OR_RETURN(auto previous, PreviousValuesOf({id}));
    if (auto it = previous.find(id); it != previous.end()) {
      trend.previous = it->second;
    }
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> after,
                             store_->LiveSetJob());
    if (before == after) return trend;
  }
  return absl::AbortedError(
      "refreshes kept publishing new values while the trend was read; retry");
}

absl::StatusOr<std::optional<Differentiation::NextTier>>
Differentiation::NextTierOf(const cv1::EntityValue& value) {
  RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const ScoreModel> model,
                           ModelOf(value.model_id()));
  RAPPORT_ASSIGN_OR_RETURN(Decimal profit, FromMoney(value.profit(), "profit"));
  NextTier next;
  switch (value.tier()) {
    case cv1::TIER_LEAD:
      next.tier = cv1::TIER_IRON;
      next.profit = Decimal();
      break;
    case cv1::TIER_IRON:
    case cv1::TIER_GOLD: {
      const bool to_gold = value.tier() == cv1::TIER_IRON;
      if (model == nullptr ||
          !(to_gold ? model->has_gold_above() : model->has_platinum_above())) {
        return std::nullopt;
      }
      next.tier = to_gold ? cv1::TIER_GOLD : cv1::TIER_PLATINUM;
      RAPPORT_ASSIGN_OR_RETURN(
          next.profit,
          FromMoney(to_gold ? model->gold_above() : model->platinum_above(),
                    "threshold"));
      next.more_than = true;
      // Gold's threshold the same as Platinum's (few entities, or ties at
      // it): more than it is Platinum, and Gold is never held on the way.
      if (to_gold && model->has_platinum_above()) {
        RAPPORT_ASSIGN_OR_RETURN(
            Decimal platinum, FromMoney(model->platinum_above(), "threshold"));
        if (platinum == next.profit) next.tier = cv1::TIER_PLATINUM;
      }
      break;
    }
    default:
      return std::nullopt;
  }
  RAPPORT_ASSIGN_OR_RETURN(next.lacking, next.profit.CheckedSub(profit));
  return next;
}

absl::StatusOr<Differentiation::Summary> Differentiation::Summarize() {
  // Its statements read the live set one after another: a refresh that
  // publishes in between would give totals of two sets (and the next job's
  // id). Read again then.
  for (int attempt = 0; attempt < 3; ++attempt) {
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> before,
                             store_->LiveSetJob());
    RAPPORT_ASSIGN_OR_RETURN(Summary summary, SummarizeOnce());
    // The job whose values are live: it published before it recorded its
    // success, and may not have recorded it yet. A set from before sets
    // named their job (an upgraded database) is the latest success's.
    if (before.has_value()) {
      summary.model_id = *before;
    } else {
      RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> latest,
                               store_->LatestJobId(JobState::kSucceeded));
      summary.model_id = latest.value_or("");
    }
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> after,
                             store_->LiveSetJob());
    if (before == after) return summary;
  }
  return absl::AbortedError(
      "refreshes kept publishing new values while the summary was read; "
      "retry");
}

absl::StatusOr<Differentiation::Summary> Differentiation::SummarizeOnce() {
  RAPPORT_ASSIGN_OR_RETURN(ValueTotals totals, store_->Summarize());
  Summary out;
  RAPPORT_ASSIGN_OR_RETURN(out.entities, counterpart_->CountEntities());
  for (const GroupTotals& g : totals.segments) {
    RAPPORT_ASSIGN_OR_RETURN(cv1::GroupSummary group,
                             ToGroup(g, g.segment, options_.currency));
    out.segments.push_back(std::move(group));
  }
  for (const GroupTotals& g : totals.tiers) {
    RAPPORT_ASSIGN_OR_RETURN(
        cv1::GroupSummary group,
        ToGroup(g, TierName(static_cast<cv1::Tier>(g.tier)),
                options_.currency));
    out.tiers.push_back(std::move(group));
  }
  RAPPORT_ASSIGN_OR_RETURN(out.total,
                           ToGroup(totals.all, "", options_.currency));
  return out;
}

absl::Status Differentiation::Export(const std::string& source,
                                     const ExportWriter& write) {
  if (source.size() > kMaxSourceBytes) {
    return InvalidField("external_id_source", "must be at most 64 bytes");
  }
  // Page by page, each read on its own: a refresh that publishes meanwhile
  // would make the pages after it another set's, with another model. The
  // export then stops (ABORTED: export again) rather than mix them.
  RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> live,
                           store_->LiveSetJob());
  std::string after;
  for (;;) {
    RAPPORT_ASSIGN_OR_RETURN(
        std::vector<StoredValue> page,
        store_->ExportPage(source, after, options_.export_batch_size));
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> still,
                             store_->LiveSetJob());
    if (still != live) {
      return absl::AbortedError(
          "a refresh published new values during the export; export again "
          "for one set of values");
    }
    if (page.empty()) return absl::OkStatus();
    google::protobuf::RepeatedPtrField<cv1::EntityValue> values;
    values.Reserve(static_cast<int>(page.size()));
    for (const StoredValue& s : page) {
      RAPPORT_ASSIGN_OR_RETURN(*values.Add(), ToValue(s));
    }
    if (!write(values)) return absl::CancelledError("the client went away");
    if (static_cast<int>(page.size()) < options_.export_batch_size)
      return absl::OkStatus();
    after = page.back().entity_id;
  }
}

absl::Status Differentiation::Rescore(const std::string& id) {
  if (id.empty()) return InvalidField("id", "is required");
  // No model yet, but the first refresh, running, may have read the entity
  // before this activity: it waits for that model, as RescoreSoon's do
  // (scored now, there would be nothing to score against).
  absl::StatusOr<bool> first_running = FirstRefreshRunning();
  if (first_running.ok() && *first_running) {
    RescoreSoon({id});
    return absl::OkStatus();
  }
  return rescores_.Submit(id);
}

namespace {
// Tries of one background re-score that failed for a passing reason before
// it is dropped (the next refresh values it): some minutes at the longest
// pause, enough for a database or scoring service to come back.
constexpr int kRescoreTries = 20;

prometheus::Gauge& RescoreQueue() {
  static auto& queued = prometheus::BuildGauge()
                            .Name("rapport_rescore_queue")
                            .Help("Entities waiting for a background re-score")
                            .Register(metrics::Registry())
                            .Add({});
  return queued;
}

prometheus::Counter& RescoresDropped() {
  static auto& dropped =
      prometheus::BuildCounter()
          .Name("rapport_rescore_dropped_total")
          .Help(
              "Entities not re-scored after their activity because the "
              "queue was full or the replica stopped first (the next "
              "refresh values them)")
          .Register(metrics::Registry())
          .Add({});
  return dropped;
}
}  // namespace

void Differentiation::RescoreSoon(const std::vector<std::string>& ids) {
  prometheus::Gauge& queued = RescoreQueue();
  prometheus::Counter& dropped = RescoresDropped();
  // Before the first refresh there is no model to keep values current with,
  // so nothing is queued (an import names every entity it stores), unless
  // that refresh runs now: it may have read these entities' facts before
  // this activity, so they wait for its model. Once a refresh has succeeded,
  // on any replica, that stays so.
  if (!ever_refreshed_.load(std::memory_order_relaxed)) {
    absl::StatusOr<bool> waiting = FirstRefreshRunning();
    if (waiting.ok() && !*waiting && !ever_refreshed_.load()) return;
  }
  absl::MutexLock lock(&soon_mu_);
  for (const std::string& id : ids) {
    if (id.empty() || soon_queued_.contains(id)) continue;
    if (soon_.size() >= static_cast<size_t>(options_.rescore_queue)) {
      dropped.Increment();
      continue;
    }
    soon_queued_.insert(id);
    soon_.push_back(id);
  }
  queued.Set(static_cast<double>(soon_.size()));
}

absl::StatusOr<bool> Differentiation::FirstRefreshRunning() {
  if (ever_refreshed_.load(std::memory_order_relaxed)) return false;
  // Running first: a first refresh that ends between the two looks is then
  // seen as succeeded, where the other order would see none.
  RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> running,
                           store_->LatestJobId(JobState::kRunning));
  RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> latest,
                           store_->LatestJobId(JobState::kSucceeded));
  if (latest.has_value()) {
    ever_refreshed_.store(true, std::memory_order_relaxed);
    return false;
  }
  return running.has_value();
}

void Differentiation::WaitForRescores() {
  absl::MutexLock lock(&soon_mu_);
  soon_mu_.Await(absl::Condition(
      +[](Differentiation* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->soon_mu_) {
        return (d->soon_.empty() && !d->soon_busy_) || d->soon_stop_;
      },
      this));
}

void Differentiation::RescoreInBackground() {
  static auto& rescored = prometheus::BuildCounter()
                              .Name("rapport_rescores_total")
                              .Help("Background re-scores, by outcome")
                              .Register(metrics::Registry());
  static auto& ok = rescored.Add({{"outcome", "ok"}});
  static auto& failed = rescored.Add({{"outcome", "failed"}});
  prometheus::Counter& dropped = RescoresDropped();
  // Once stopping, what is not re-scored by the end of the drain.
  auto give_up = [&](size_t entities, absl::string_view error) {
    dropped.Increment(static_cast<double>(entities));
    LogLine(
        "warn", ProcessService(),
        "stopping with re-scores not run; the next refresh values "
        "these entities",
        {{"entities", absl::StrCat(entities)}, {"error", std::string(error)}});
  };
  absl::Duration backoff = absl::ZeroDuration();
  // The tries of those queued again, by id.
  absl::flat_hash_map<std::string, int> tries;
  for (;;) {
    std::vector<std::string> batch;
    bool stopping = false;
    {
      absl::MutexLock lock(&soon_mu_);
      soon_busy_ = false;
      soon_mu_.Await(absl::Condition(
          +[](Differentiation* d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(d->soon_mu_) {
            return !d->soon_.empty() || d->soon_stop_;
          },
          this));
      stopping = soon_stop_;
      if (stopping && (soon_.empty() || absl::Now() >= soon_drain_until_)) {
        if (!soon_.empty()) {
          give_up(soon_.size(), "no time left to run them");
          soon_.clear();
          soon_queued_.clear();
          RescoreQueue().Set(0);
        }
        return;
      }
      const size_t n =
          std::min(soon_.size(),
                   static_cast<size_t>(std::max(1, options_.rescore_batch)));
      for (size_t i = 0; i < n; ++i) {
        soon_queued_.erase(soon_.front());
        batch.push_back(std::move(soon_.front()));
        soon_.pop_front();
      }
      // Taken off the queue: what waits is what is left.
      RescoreQueue().Set(static_cast<double>(soon_.size()));
      soon_busy_ = true;
    }
    std::vector<std::string> again;
    absl::Status passing;  // the first failure tried again, for the log
    // Entities active during the first refresh wait for its model, without
    // counting a try (a first refresh of millions takes minutes).
    absl::StatusOr<bool> first_running = FirstRefreshRunning();
    const bool wait_for_model = first_running.ok() && *first_running;
    std::vector<absl::Status> outcome;
    if (wait_for_model) {
      again = std::move(batch);
      batch.clear();
    } else {
      outcome = RescoreEach(batch);
    }
    for (size_t i = 0; i < outcome.size(); ++i) {
      if (outcome[i].ok() || absl::IsNotFound(outcome[i])) {
        ok.Increment();
        tries.erase(batch[i]);
        continue;
      }
      failed.Increment();
      if (IsPassing(outcome[i]) &&
          (stopping || ++tries[batch[i]] < kRescoreTries)) {
        if (passing.ok()) passing = outcome[i];
        again.push_back(batch[i]);
        continue;
      }
      tries.erase(batch[i]);
      LogLine("warn", ProcessService(), "re-scoring after activity failed",
              {{"id", batch[i]}, {"error", std::string(outcome[i].message())}});
    }
    if (stopping && !again.empty()) {
      // Not tried again once stopping (nor kept waiting for the first
      // refresh's model): given up, like the rest left at the end.
      give_up(again.size(),
              wait_for_model ? "no model yet" : passing.message());
      again.clear();
    }
    if (again.empty()) {
      backoff = absl::ZeroDuration();
      continue;
    }
    // Queued again (behind what came meanwhile), after a pause that grows
    // while the failures go on, so that a peer that is away is not called
    // in a tight loop; the values catch up once it is back.
    backoff = std::max(std::min(std::max(backoff * 2, options_.rescore_backoff),
                                options_.rescore_backoff_most),
                       absl::Milliseconds(1));
    if (!wait_for_model) {
      LogLine("warn", ProcessService(),
              "re-scoring after activity failed; trying again",
              {{"entities", absl::StrCat(again.size())},
               {"error", std::string(passing.message())},
               {"retry_in", absl::FormatDuration(backoff)}});
    }
    absl::MutexLock lock(&soon_mu_);
    for (std::string& id : again) {
      if (soon_queued_.contains(id)) continue;
      if (soon_.size() >= static_cast<size_t>(options_.rescore_queue)) {
        dropped.Increment();
        tries.erase(id);
        continue;
      }
      soon_queued_.insert(id);
      soon_.push_back(std::move(id));
    }
    RescoreQueue().Set(static_cast<double>(soon_.size()));
    soon_mu_.AwaitWithTimeout(
        absl::Condition(
            +[](bool* stop) { return *stop; }, &soon_stop_),
        backoff);
  }
}

std::vector<absl::Status> Differentiation::RescoreEach(
    const std::vector<std::string>& ids) {
  // An id may come more than once; each entity is scored once.
  std::vector<std::string> unique = ids;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  absl::flat_hash_map<std::string, absl::Status> outcome;
  absl::Status batch = [&]() -> absl::Status {
    // A refresh that finishes while this scores may have caught up with
    // the re-scores of its run before this write lands, which then holds
    // the model before it: scored again against the new one (twice more at
    // most; a later refresh's catch-up sees what is left).
    for (int round = 0;; ++round) {
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
      RAPPORT_ASSIGN_OR_RETURN(std::vector<EntityFacts> facts,
                               FactsOfLive(unique, window, &outcome));
      if (model == nullptr || facts.empty())
        return absl::OkStatus();  // never refreshed: nothing to keep current
      std::vector<StoredValue> values;
      for (size_t begin = 0; begin < facts.size();
           begin += kScoreEntitiesPerCall) {
        const size_t end =
            std::min(facts.size(), begin + kScoreEntitiesPerCall);
        sv1::ScoreEntitiesRequest request;
        *request.mutable_model() = *model;
        *request.mutable_as_of() = ToTimestamp(now);
        for (size_t i = begin; i < end; ++i)
          RAPPORT_RETURN_IF_ERROR(SetFacts(facts[i], request.add_facts()));
        RAPPORT_ASSIGN_OR_RETURN(sv1::ScoreEntitiesResponse response,
                                 scoring_->ScoreEntities(request));
        for (const sv1::EntityScore& s : response.scores()) {
          RAPPORT_ASSIGN_OR_RETURN(StoredValue value,
                                   FromEntityScore(s, *latest, now));
          values.push_back(std::move(value));
        }
      }
      RAPPORT_RETURN_IF_ERROR(store_->UpsertValues(values));
      RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> after,
                               store_->LatestJobId(JobState::kSucceeded));
      if (after == latest || round == 2) return absl::OkStatus();
    }
  }();
  // (The scoring service's own code: its INVALID_ARGUMENT reaches here as
  // INTERNAL, see ScoringError.)
  const absl::StatusCode code = ScoringCode(batch);
  if ((code == absl::StatusCode::kInvalidArgument ||
       code == absl::StatusCode::kOutOfRange) &&
      unique.size() > 1) {
    // One entity's facts that cannot be sent or scored (sums past what
    // Money holds) must not hold back the others of its batch: each is
    // scored alone, and only the one at fault keeps the error. Failures of
    // the call as a whole (the peer away, refusing this service) are the
    // batch's, and are not made once per entity.
    absl::flat_hash_map<std::string, absl::Status> alone;
    for (const std::string& id : unique) alone[id] = RescoreEach({id})[0];
    std::vector<absl::Status> out;
    out.reserve(ids.size());
    for (const std::string& id : ids) out.push_back(alone[id]);
    return out;
  }
  std::vector<absl::Status> out;
  out.reserve(ids.size());
  for (const std::string& id : ids) {
    auto it = outcome.find(id);
    out.push_back(it != outcome.end() && !it->second.ok() ? it->second : batch);
  }
  return out;
}

absl::StatusOr<std::vector<EntityFacts>> Differentiation::FactsOfLive(
    const std::vector<std::string>& ids, const CountWindow& window,
    absl::flat_hash_map<std::string, absl::Status>* outcome) {
  // Most ids name live entities; the others are followed through their
  // merges one by one.
  RAPPORT_ASSIGN_OR_RETURN(std::vector<EntityFacts> facts,
                           counterpart_->FactsOf(ids, window));
  absl::flat_hash_map<std::string, bool> found;
  for (const EntityFacts& f : facts) found[f.entity_id] = true;
  std::vector<std::string> followed;
  for (const std::string& id : ids) {
    if (found.contains(id)) continue;
    absl::StatusOr<std::string> live = counterpart_->ResolveEntity(id);
    // Not valued any more (erased): nothing to score, and nothing wrong.
    if (absl::IsFailedPrecondition(live.status())) continue;
    if (!live.ok()) {
      (*outcome)[id] = live.status();
    } else if (!found.contains(*live)) {
      found[*live] = true;
      followed.push_back(*live);
    }
  }
  if (!followed.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(std::vector<EntityFacts> more,
                             counterpart_->FactsOf(followed, window));
    for (EntityFacts& f : more) facts.push_back(std::move(f));
  }
  return facts;
}

absl::StatusOr<std::optional<cv1::ContactPolicy>>
Differentiation::ContactPolicyOf(const std::string& id) {
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredValue> values,
                           store_->GetValues({id}));
  if (values.empty()) {
    // Not scored yet (made since the last refresh, and no activity since):
    // scored now against the live model, so that its tier's policy holds for
    // it as for everyone scored. Before any refresh there is no policy.
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> live,
                             store_->LatestJobId(JobState::kSucceeded));
    if (!live.has_value()) return std::optional<cv1::ContactPolicy>();
    if (absl::Status s = Rescore(id); !s.ok()) {
      // The scoring service away or slow holds up no interaction (as it
      // holds up no purchase): no policy for it this time, scored later.
      LogLine("warn", ProcessService(),
              "cannot score an entity for its contact policy now",
              {{"entity", id}, {"error", std::string(s.message())}});
      RescoreSoon({id});
      return std::optional<cv1::ContactPolicy>();
    }
    RAPPORT_ASSIGN_OR_RETURN(values, store_->GetValues({id}));
    if (values.empty()) return std::optional<cv1::ContactPolicy>();
  }
  RAPPORT_ASSIGN_OR_RETURN(std::shared_ptr<const ScoreModel> model,
                           ModelOf(values.front().model_id));
  return PolicyFor(model.get(), values.front().tier, options_);
}

absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>>
Differentiation::ValuesOf(const std::vector<std::string>& ids) {
  absl::flat_hash_map<std::string, cv1::EntityValue> out;
  if (ids.empty()) return out;
  RAPPORT_ASSIGN_OR_RETURN(std::vector<StoredValue> values,
                           store_->GetValues(ids));
  for (const StoredValue& s : values) {
    RAPPORT_ASSIGN_OR_RETURN(cv1::EntityValue v, ToValue(s));
    out.emplace(s.entity_id, std::move(v));
  }
  return out;
}

}  // namespace rapport::differentiation
