#include "services/scoring/scoring_logic.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"

namespace rapport::scoring {
namespace {

// The most bytes of an entity id: a population call keeps every id it is
// sent, and --max_population_records counts records, not bytes.
constexpr size_t kMaxEntityIdBytes = 256;
// The error names "<owner>.entity_id", made only then: a call has millions
// of records.
absl::Status CheckEntityIdSize(absl::string_view id, absl::string_view owner) {
  if (id.size() <= kMaxEntityIdBytes) return absl::OkStatus();
  return InvalidField(
      absl::StrCat(owner, ".entity_id"),
      absl::StrCat("is longer than ", kMaxEntityIdBytes, " bytes"));
}

// The field path an engine message begins with ("costs[0].cost: must not
// be negative" begins with "costs[0].cost"), or "" when it names none.
absl::string_view PathOf(absl::string_view message) {
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos || colon == 0) return "";
  const absl::string_view path = message.substr(0, colon);
  for (char ch : path) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '_' &&
        ch != '.' && ch != '[' && ch != ']') {
      return "";
    }
  }
  return path;
}

// Re-labels an engine error (which names a list and row inside one batch) with
// the batch number, keeping it INVALID_ARGUMENT with a field violation: the
// field is "batch N: " and the path the error names, when it names one.
absl::Status InBatch(const absl::Status& status, int64_t batch) {
  if (status.ok() || !absl::IsInvalidArgument(status)) return status;
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (violations.empty()) {
    const absl::string_view path = PathOf(status.message());
    if (path.empty()) {
      return InvalidField(absl::StrCat("batch ", batch), status.message());
    }
    return InvalidField(absl::StrCat("batch ", batch, ": ", path),
                        status.message().substr(path.size() + 2));
  }
  for (FieldViolation& v : violations)
    v.field = absl::StrCat("batch ", batch, ": ", v.field);
  return InvalidFields(violations);
}

// An engine error without a field violation, turned into one naming `field`
// (its message without the path it begins with, when `field` ends with it).
absl::Status Named(const absl::Status& status, absl::string_view field) {
  if (status.ok() || !FieldViolations(status).empty()) return status;
  if (!absl::IsInvalidArgument(status)) return status;
  absl::string_view message = status.message();
  if (const absl::string_view path = PathOf(message);
      !path.empty() && absl::EndsWith(field, path)) {
    message.remove_prefix(path.size() + 2);
  }
  return InvalidField(field, message);
}

}  // namespace

absl::Status OneCurrency::Check(const google::type::Money& money,
                                absl::string_view field) {
  const std::string& code = money.currency_code();
  if (code.empty() || code == code_) return absl::OkStatus();
  const std::string named = absl::StrCat(field, ".currency_code");
  if (code.size() != 3 ||
      !std::all_of(code.begin(), code.end(), absl::ascii_isupper)) {
    return InvalidField(named,
                        "must be an ISO 4217 code such as USD (or empty)");
  }
  if (!code_.empty()) {
    return InvalidField(named,
                        absl::StrCat("is ", code,
                                     " where the call's amounts before "
                                     "are in ",
                                     code_, "; one call sums one currency"));
  }
  code_ = code;
  return absl::OkStatus();
}

namespace {

google::type::Money Money(const Decimal& d) {
  // Every amount given here was checked by CheckSums, so it fits.
  absl::StatusOr<google::type::Money> m = ToMoney(d, "", "money");
  return m.ok() ? *m : google::type::Money();
}

// OUT_OF_RANGE naming `entity` when its monetary sum, its cost or its profit
// does not fit a Money (SCORING.md section 9: an overflow is an error, never
// a wrapped or made-up number).
absl::Status CheckSums(absl::string_view entity, const Decimal& monetary,
                       const Decimal& cost_to_serve) {
  for (const Decimal* d : {&monetary, &cost_to_serve}) {
    if (!ToMoney(*d, "", "money").ok()) {
      return absl::OutOfRangeError(absl::StrCat(
          "entity ", entity, ": a sum of its amounts is beyond what a ",
          "google.type.Money holds"));
    }
  }
  if (!ToMoney(monetary - cost_to_serve, "", "money").ok()) {
    return absl::OutOfRangeError(absl::StrCat(
        "entity ", entity, ": its profit is beyond what a google.type.Money ",
        "holds"));
  }
  return absl::OkStatus();
}

// The engine's tiers and channels in the shared API's terms. The engine is
// a library without protobuf; these are the one place the two meet.
cv1::Tier ToProtoTier(Tier tier) {
  switch (tier) {
    case Tier::kLead:
      return cv1::TIER_LEAD;
    case Tier::kIron:
      return cv1::TIER_IRON;
    case Tier::kGold:
      return cv1::TIER_GOLD;
    case Tier::kPlatinum:
      return cv1::TIER_PLATINUM;
  }
  return cv1::TIER_UNSPECIFIED;
}

cv1::Channel ToProtoChannel(Channel channel) {
  switch (channel) {
    case Channel::kEmail:
      return cv1::CHANNEL_EMAIL;
    case Channel::kPhone:
      return cv1::CHANNEL_PHONE;
    case Channel::kSms:
      return cv1::CHANNEL_SMS;
    case Channel::kVisit:
      return cv1::CHANNEL_VISIT;
    case Channel::kWeb:
      return cv1::CHANNEL_WEB;
    case Channel::kMail:
      return cv1::CHANNEL_MAIL;
    case Channel::kEvent:
      return cv1::CHANNEL_EVENT;
  }
  return cv1::CHANNEL_UNSPECIFIED;
}

cv1::ContactPolicy ToProtoPolicy(Tier tier, const ContactPolicy& policy) {
  cv1::ContactPolicy out;
  out.set_tier(ToProtoTier(tier));
  for (Channel c : policy.channels) out.add_channels(ToProtoChannel(c));
  out.set_service_level(policy.service_level);
  *out.mutable_cost_ceiling() = Money(policy.cost_ceiling);
  return out;
}

// The bins and weights of `message` ("config" in a request, "model" in a
// model sent back), named as its fields when wrong.
absl::StatusOr<ScoringOptions> OptionsFrom(int32_t bins,
                                           const v1::ValueWeights& weights,
                                           absl::string_view message) {
  ScoringOptions options;
  options.bins = bins == 0 ? 5 : bins;
  if (options.bins < 2 || options.bins > 10) {
    return InvalidField(absl::StrCat(message, ".bins"),
                        absl::StrCat("must be 2..10, not ", bins));
  }
  if (weights.r() != 0 || weights.f() != 0 || weights.m() != 0) {
    options.weights = {weights.r(), weights.f(), weights.m()};
  }
  RAPPORT_RETURN_IF_ERROR(Named(ValidateScoringOptions(options),
                                absl::StrCat(message, ".weights")));
  return options;
}

absl::StatusOr<int> BatchSize(int32_t requested, absl::string_view field) {
  if (requested < 0) return InvalidField(field, "must not be negative");
  if (requested == 0) return kDefaultResponseBatch;
  return std::min(requested, kMaxResponseBatch);
}

absl::StatusOr<TimeUnit> UnitFrom(v1::TimeUnit unit, absl::string_view field) {
  switch (unit) {
    case v1::TIME_UNIT_UNSPECIFIED:
    case v1::TIME_UNIT_DAY:
      return TimeUnit::kDay;
    case v1::TIME_UNIT_WEEK:
      return TimeUnit::kWeek;
    default:
      return InvalidField(field, "must be TIME_UNIT_DAY or TIME_UNIT_WEEK");
  }
}

v1::EntityScore ScoreProto(absl::string_view id,
                           std::optional<int64_t> recency_days,
                           int64_t frequency, const Decimal& monetary, int r,
                           int f, int m, absl::string_view segment,
                           const Decimal& value, const Decimal& cost_to_serve,
                           Tier tier) {
  v1::EntityScore s;
  s.set_entity_id(std::string(id));
  if (recency_days.has_value()) s.set_recency_days(*recency_days);
  s.set_frequency(frequency);
  *s.mutable_monetary() = Money(monetary);
  s.set_r(r);
  s.set_f(f);
  s.set_m(m);
  s.set_segment(std::string(segment));
  s.set_value_hundredths(static_cast<int32_t>(value.raw_nanos() / 10'000'000));
  *s.mutable_cost_to_serve() = Money(cost_to_serve);
  *s.mutable_profit() = Money(monetary - cost_to_serve);
  s.set_tier(ToProtoTier(tier));
  return s;
}

}  // namespace

// --- ScorePopulation -------------------------------------------------------

PopulationRun::PopulationRun(FactsAccumulator accumulator,
                             ScoringOptions options, int response_batch_size)
    : accumulator_(std::move(accumulator)),
      options_(std::move(options)),
      response_batch_size_(response_batch_size) {}

absl::StatusOr<std::unique_ptr<PopulationRun>> PopulationRun::Start(
    const v1::ScoringConfig& config, absl::Time now) {
  FactsOptions facts;
  facts.as_of_micros = absl::ToUnixMicros(now);
  if (config.has_as_of()) {
    RAPPORT_ASSIGN_OR_RETURN(facts.as_of_micros,
                             FromTimestamp(config.as_of(), "config.as_of"));
  }
  if (config.window_days() < 0 || config.window_days() > 1'000'000) {
    return InvalidField("config.window_days",
                        "must be 1 to 1000000 days (0: no window)");
  }
  if (config.window_days() > 0) facts.window_days = config.window_days();
  RAPPORT_ASSIGN_OR_RETURN(
      ScoringOptions options,
      OptionsFrom(config.bins(), config.weights(), "config"));
  RAPPORT_ASSIGN_OR_RETURN(int batch, BatchSize(config.response_batch_size(),
                                                "config.response_batch_size"));
  absl::StatusOr<FactsAccumulator> accumulator =
      FactsAccumulator::Create(facts);
  if (!accumulator.ok()) return Named(accumulator.status(), "config");
  return std::unique_ptr<PopulationRun>(
      new PopulationRun(*std::move(accumulator), std::move(options), batch));
}

absl::Status PopulationRun::Add(const v1::ScorePopulationRequest& batch) {
  const int64_t index = ++batches_;
  if (!accumulator_.has_value())
    return absl::FailedPreconditionError("the run is finished");
  if (batch.entity_ids_size() > 0) {
    for (int i = 0; i < batch.entity_ids_size(); ++i) {
      if (batch.entity_ids(i).size() > kMaxEntityIdBytes) {
        return InBatch(InvalidField(absl::StrCat("entity_ids[", i, "]"),
                                    absl::StrCat("is longer than ",
                                                 kMaxEntityIdBytes, " bytes")),
                       index);
      }
    }
    std::vector<absl::string_view> ids(batch.entity_ids().begin(),
                                       batch.entity_ids().end());
    RAPPORT_RETURN_IF_ERROR(
        InBatch(accumulator_->AddKnownEntities(ids), index));
  }
  if (batch.events_size() > 0) {
    std::vector<ActivityEvent> events(batch.events_size());
    for (int i = 0; i < batch.events_size(); ++i) {
      const v1::ActivityEvent& e = batch.events(i);
      const std::string field = absl::StrCat("events[", i, "]");
      events[i].entity_id = e.entity_id();
      RAPPORT_RETURN_IF_ERROR(
          InBatch(CheckEntityIdSize(e.entity_id(), field), index));
      if (!e.has_time())
        return InBatch(InvalidField(field + ".time", "is required"), index);
      if (!e.has_amount())
        return InBatch(InvalidField(field + ".amount", "is required"), index);
      absl::StatusOr<int64_t> t = FromTimestamp(e.time(), field + ".time");
      if (!t.ok()) return InBatch(t.status(), index);
      absl::StatusOr<Decimal> amount = FromMoney(e.amount(), field + ".amount");
      if (!amount.ok()) return InBatch(amount.status(), index);
      RAPPORT_RETURN_IF_ERROR(
          InBatch(currency_.Check(e.amount(), field + ".amount"), index));
      events[i].time_micros = *t;
      events[i].amount = *amount;
    }
    RAPPORT_RETURN_IF_ERROR(InBatch(accumulator_->AddEvents(events), index));
  }
  if (batch.costs_size() > 0) {
    std::vector<CostEvent> costs(batch.costs_size());
    for (int i = 0; i < batch.costs_size(); ++i) {
      const v1::InteractionCost& c = batch.costs(i);
      const std::string field = absl::StrCat("costs[", i, "]");
      costs[i].entity_id = c.entity_id();
      RAPPORT_RETURN_IF_ERROR(
          InBatch(CheckEntityIdSize(c.entity_id(), field), index));
      if (!c.has_time())
        return InBatch(InvalidField(field + ".time", "is required"), index);
      if (!c.has_cost())
        return InBatch(InvalidField(field + ".cost", "is required"), index);
      absl::StatusOr<int64_t> t = FromTimestamp(c.time(), field + ".time");
      if (!t.ok()) return InBatch(t.status(), index);
      absl::StatusOr<Decimal> cost = FromMoney(c.cost(), field + ".cost");
      if (!cost.ok()) return InBatch(cost.status(), index);
      RAPPORT_RETURN_IF_ERROR(
          InBatch(currency_.Check(c.cost(), field + ".cost"), index));
      costs[i].time_micros = *t;
      costs[i].cost = *cost;
    }
    RAPPORT_RETURN_IF_ERROR(InBatch(accumulator_->AddCosts(costs), index));
  }
  if (batch.facts_size() > 0) {
    std::vector<PartialFacts> facts(batch.facts_size());
    for (int i = 0; i < batch.facts_size(); ++i) {
      const v1::EntityFacts& f = batch.facts(i);
      const std::string field = absl::StrCat("facts[", i, "]");
      facts[i].entity_id = f.entity_id();
      RAPPORT_RETURN_IF_ERROR(
          InBatch(CheckEntityIdSize(f.entity_id(), field), index));
      facts[i].frequency = f.frequency();
      absl::StatusOr<Decimal> monetary =
          FromMoney(f.monetary(), field + ".monetary");
      if (!monetary.ok()) return InBatch(monetary.status(), index);
      absl::StatusOr<Decimal> cost =
          FromMoney(f.cost_to_serve(), field + ".cost_to_serve");
      if (!cost.ok()) return InBatch(cost.status(), index);
      RAPPORT_RETURN_IF_ERROR(
          InBatch(currency_.Check(f.monetary(), field + ".monetary"), index));
      RAPPORT_RETURN_IF_ERROR(InBatch(
          currency_.Check(f.cost_to_serve(), field + ".cost_to_serve"), index));
      facts[i].monetary = *monetary;
      facts[i].cost_to_serve = *cost;
      if (f.has_last_event_time()) {
        absl::StatusOr<int64_t> t =
            FromTimestamp(f.last_event_time(), field + ".last_event_time");
        if (!t.ok()) return InBatch(t.status(), index);
        facts[i].last_event_micros = *t;
      }
    }
    RAPPORT_RETURN_IF_ERROR(
        InBatch(accumulator_->AddPartialFacts(facts), index));
  }
  return absl::OkStatus();
}

absl::Status PopulationRun::Finish() {
  if (!accumulator_.has_value())
    return absl::FailedPreconditionError("the run is finished");
  FactsAccumulator accumulator = *std::move(accumulator_);
  accumulator_.reset();
  RAPPORT_ASSIGN_OR_RETURN(facts_, std::move(accumulator).Finish());
  for (size_t i = 0; i < facts_.size(); ++i) {
    RAPPORT_RETURN_IF_ERROR(
        CheckSums(facts_.id(i), facts_.monetary[i], facts_.cost_to_serve[i]));
  }
  RAPPORT_ASSIGN_OR_RETURN(scores_, ScorePopulation(facts_, options_));
  return absl::OkStatus();
}

absl::Status PopulationRun::FillScores(
    size_t begin, size_t end,
    google::protobuf::RepeatedPtrField<v1::EntityScore>* out) const {
  out->Reserve(static_cast<int>(end - begin));
  for (size_t i = begin; i < end; ++i) {
    *out->Add() =
        ScoreProto(facts_.id(i), facts_.recency_days(i), facts_.frequency[i],
                   facts_.monetary[i], scores_.r[i], scores_.f[i], scores_.m[i],
                   scores_.segment_name(i), scores_.value(i),
                   facts_.cost_to_serve[i], scores_.tier[i]);
  }
  return absl::OkStatus();
}

v1::ScoreModel PopulationRun::model() const {
  const ScoreModel& m = scores_.model;
  v1::ScoreModel out;
  out.set_bins(m.bins);
  *out.mutable_as_of() = ToTimestamp(m.as_of_micros);
  out.set_window_days(facts_.window_days.has_value()
                          ? static_cast<int32_t>(*facts_.window_days)
                          : 0);
  out.set_scored_population(m.scored_population);
  for (int64_t v : m.recency_thresholds) out.add_recency_thresholds(v);
  for (int64_t v : m.frequency_thresholds) out.add_frequency_thresholds(v);
  for (const Decimal& v : m.monetary_thresholds)
    *out.add_monetary_thresholds() = Money(v);
  out.set_profitable_population(m.profitable_population);
  if (m.gold_above.has_value())
    *out.mutable_gold_above() = Money(*m.gold_above);
  if (m.platinum_above.has_value())
    *out.mutable_platinum_above() = Money(*m.platinum_above);
  out.mutable_weights()->set_r(options_.weights.r);
  out.mutable_weights()->set_f(options_.weights.f);
  out.mutable_weights()->set_m(options_.weights.m);
  for (Tier t : {Tier::kLead, Tier::kIron, Tier::kGold, Tier::kPlatinum}) {
    *out.add_contact_policies() =
        ToProtoPolicy(t, options_.tier_policies.For(t));
  }
  return out;
}

// --- ScoreEntity -----------------------------------------------------------

namespace {

// A model from ScorePopulation, back in the engine's terms.
struct ParsedModel {
  ScoreModel model;
  ScoringOptions options;
  int32_t window_days = 0;  // 0: none
};

absl::StatusOr<ParsedModel> ParseModel(const v1::ScoreModel& in,
                                       OneCurrency* currency) {
  ParsedModel out;
  RAPPORT_ASSIGN_OR_RETURN(out.options,
                           OptionsFrom(in.bins(), in.weights(), "model"));
  ScoreModel& model = out.model;
  model.bins = out.options.bins;
  // Every model ScorePopulation returns has one; without it the model would
  // read as of 1970.
  if (!in.has_as_of()) return InvalidField("model.as_of", "is required");
  RAPPORT_ASSIGN_OR_RETURN(model.as_of_micros,
                           FromTimestamp(in.as_of(), "model.as_of"));
  if (in.window_days() < 0 || in.window_days() > 1'000'000) {
    return InvalidField("model.window_days",
                        "must be 1 to 1000000 days (0: no window)");
  }
  out.window_days = in.window_days();
  model.scored_population = in.scored_population();
  model.recency_thresholds.assign(in.recency_thresholds().begin(),
                                  in.recency_thresholds().end());
  model.frequency_thresholds.assign(in.frequency_thresholds().begin(),
                                    in.frequency_thresholds().end());
  for (int i = 0; i < in.monetary_thresholds_size(); ++i) {
    const std::string field =
        absl::StrCat("model.monetary_thresholds[", i, "]");
    RAPPORT_ASSIGN_OR_RETURN(Decimal d,
                             FromMoney(in.monetary_thresholds(i), field));
    RAPPORT_RETURN_IF_ERROR(currency->Check(in.monetary_thresholds(i), field));
    model.monetary_thresholds.push_back(d);
  }
  const size_t cuts = static_cast<size_t>(model.bins - 1);
  if (model.scored_population > 0 &&
      (model.recency_thresholds.size() != cuts ||
       model.frequency_thresholds.size() != cuts ||
       model.monetary_thresholds.size() != cuts)) {
    return InvalidField(
        "model", absl::StrCat("needs ", cuts, " thresholds per metric for ",
                              model.bins, " bins"));
  }
  // A model ScorePopulation made: a population counted from 0, thresholds
  // taken from one sorted population (so in order), the Gold cut at or
  // below the Platinum one. Anything else would score nonsense, not fail.
  if (model.scored_population < 0) {
    return InvalidField("model.scored_population", "must not be negative");
  }
  if (in.profitable_population() < 0) {
    return InvalidField("model.profitable_population", "must not be negative");
  }
  const auto descending_at = [](const auto& thresholds) -> int {
    for (size_t i = 1; i < thresholds.size(); ++i) {
      if (thresholds[i] < thresholds[i - 1]) return static_cast<int>(i);
    }
    return -1;
  };
  for (const auto& [name, at] :
       {std::pair<const char*, int>{"recency_thresholds",
                                    descending_at(model.recency_thresholds)},
        {"frequency_thresholds", descending_at(model.frequency_thresholds)},
        {"monetary_thresholds", descending_at(model.monetary_thresholds)}}) {
    if (at >= 0) {
      return InvalidField(absl::StrCat("model.", name, "[", at, "]"),
                          "is below the threshold before it (thresholds "
                          "ascend)");
    }
  }
  model.profitable_population = in.profitable_population();
  if (in.has_gold_above()) {
    RAPPORT_ASSIGN_OR_RETURN(model.gold_above,
                             FromMoney(in.gold_above(), "model.gold_above"));
    RAPPORT_RETURN_IF_ERROR(
        currency->Check(in.gold_above(), "model.gold_above"));
  }
  if (in.has_platinum_above()) {
    RAPPORT_ASSIGN_OR_RETURN(
        model.platinum_above,
        FromMoney(in.platinum_above(), "model.platinum_above"));
    RAPPORT_RETURN_IF_ERROR(
        currency->Check(in.platinum_above(), "model.platinum_above"));
  }
  if (in.has_gold_above() && in.has_platinum_above() &&
      *model.platinum_above < *model.gold_above) {
    return InvalidField("model.platinum_above",
                        "is below model.gold_above (Platinum is the top "
                        "tier)");
  }
  return out;
}

// Scores one entity's facts; errors name fields under `field` ("facts" or
// "facts[3]").
absl::StatusOr<std::pair<EntityScore, EntityFacts>> ScoreFacts(
    const ParsedModel& parsed, const v1::EntityFacts& f, int64_t as_of,
    absl::string_view field, OneCurrency* currency) {
  // An id, as ScorePopulation takes them (SCORING.md section 9).
  if (f.entity_id().empty()) {
    return InvalidField(absl::StrCat(field, ".entity_id"), "is empty");
  }
  RAPPORT_RETURN_IF_ERROR(CheckEntityIdSize(f.entity_id(), field));
  EntityFacts facts;
  facts.entity_id = f.entity_id();
  facts.frequency = f.frequency();
  RAPPORT_ASSIGN_OR_RETURN(
      facts.monetary,
      FromMoney(f.monetary(), absl::StrCat(field, ".monetary")));
  RAPPORT_ASSIGN_OR_RETURN(
      facts.cost_to_serve,
      FromMoney(f.cost_to_serve(), absl::StrCat(field, ".cost_to_serve")));
  RAPPORT_RETURN_IF_ERROR(
      currency->Check(f.monetary(), absl::StrCat(field, ".monetary")));
  RAPPORT_RETURN_IF_ERROR(currency->Check(
      f.cost_to_serve(), absl::StrCat(field, ".cost_to_serve")));
  if (f.has_last_event_time()) {
    RAPPORT_ASSIGN_OR_RETURN(
        facts.last_event_micros,
        FromTimestamp(f.last_event_time(),
                      absl::StrCat(field, ".last_event_time")));
  }
  // The facts ScorePopulation would count (SCORING.md sections 1 and 3):
  // events at or before as_of, and none for a Prospect.
  if (facts.frequency < 0) {
    return InvalidField(absl::StrCat(field, ".frequency"),
                        "must not be negative");
  }
  if (facts.frequency > 0 && !facts.last_event_micros.has_value()) {
    return InvalidField(absl::StrCat(field, ".last_event_time"),
                        "is required when frequency > 0");
  }
  if (facts.frequency == 0 && facts.last_event_micros.has_value()) {
    return InvalidField(absl::StrCat(field, ".last_event_time"),
                        "must be empty when frequency is 0");
  }
  if (facts.frequency == 0 && !facts.monetary.is_zero()) {
    return InvalidField(absl::StrCat(field, ".monetary"),
                        "must be 0 when frequency is 0");
  }
  if (facts.last_event_micros.has_value() && *facts.last_event_micros > as_of) {
    return InvalidField(absl::StrCat(field, ".last_event_time"),
                        "is after as_of; events after as_of never count");
  }
  // Nor events the model's window leaves out (as_of - window_days, as_of].
  if (facts.last_event_micros.has_value() && parsed.window_days > 0 &&
      *facts.last_event_micros <=
          as_of - int64_t{parsed.window_days} * kMicrosPerDay) {
    return InvalidField(absl::StrCat(field, ".last_event_time"),
                        "is outside the model's window ending at as_of; "
                        "events before it never count");
  }
  RAPPORT_RETURN_IF_ERROR(
      CheckSums(facts.entity_id, facts.monetary, facts.cost_to_serve));
  absl::StatusOr<EntityScore> score =
      ScoreEntity(parsed.model, facts, as_of, parsed.options);
  if (!score.ok()) return Named(score.status(), field);
  return std::make_pair(*std::move(score), std::move(facts));
}

v1::EntityScore ToProto(const EntityScore& score, const EntityFacts& facts) {
  return ScoreProto(facts.entity_id, score.recency_days, facts.frequency,
                    facts.monetary, score.r, score.f, score.m, score.segment,
                    score.value, facts.cost_to_serve, score.tier);
}

// The request's as_of, else the model's.
absl::StatusOr<int64_t> AsOf(const ParsedModel& parsed, bool has_as_of,
                             const google::protobuf::Timestamp& as_of) {
  if (!has_as_of) return parsed.model.as_of_micros;
  return FromTimestamp(as_of, "as_of");
}

}  // namespace

absl::StatusOr<v1::ScoreEntityResponse> ScoreOne(
    const v1::ScoreEntityRequest& request) {
  if (!request.has_model()) return InvalidField("model", "is required");
  if (!request.has_facts()) return InvalidField("facts", "is required");
  OneCurrency currency;
  RAPPORT_ASSIGN_OR_RETURN(ParsedModel parsed,
                           ParseModel(request.model(), &currency));
  RAPPORT_ASSIGN_OR_RETURN(int64_t as_of,
                           AsOf(parsed, request.has_as_of(), request.as_of()));
  RAPPORT_ASSIGN_OR_RETURN(auto scored, ScoreFacts(parsed, request.facts(),
                                                   as_of, "facts", &currency));
  v1::ScoreEntityResponse response;
  *response.mutable_score() = ToProto(scored.first, scored.second);
  *response.mutable_contact_policy() = ToProtoPolicy(
      scored.first.tier, parsed.options.tier_policies.For(scored.first.tier));
  return response;
}

absl::StatusOr<v1::ScoreEntitiesResponse> ScoreMany(
    const v1::ScoreEntitiesRequest& request) {
  if (!request.has_model()) return InvalidField("model", "is required");
  if (request.facts().empty()) return InvalidField("facts", "is required");
  if (request.facts_size() > kMaxScoreEntities) {
    return InvalidField("facts", absl::StrCat("has ", request.facts_size(),
                                              " entities; at most ",
                                              kMaxScoreEntities, " per call"));
  }
  OneCurrency currency;
  RAPPORT_ASSIGN_OR_RETURN(ParsedModel parsed,
                           ParseModel(request.model(), &currency));
  RAPPORT_ASSIGN_OR_RETURN(int64_t as_of,
                           AsOf(parsed, request.has_as_of(), request.as_of()));
  v1::ScoreEntitiesResponse response;
  response.mutable_scores()->Reserve(request.facts_size());
  for (int i = 0; i < request.facts_size(); ++i) {
    RAPPORT_ASSIGN_OR_RETURN(
        auto scored, ScoreFacts(parsed, request.facts(i), as_of,
                                absl::StrCat("facts[", i, "]"), &currency));
    *response.add_scores() = ToProto(scored.first, scored.second);
  }
  return response;
}

// --- CLV inputs ------------------------------------------------------------

absl::Status ClvInput::AddSummaries(
    const google::protobuf::RepeatedPtrField<v1::CustomerSummary>& rows,
    int64_t batch) {
  std::vector<CustomerSummary> added;
  added.reserve(rows.size());
  for (const v1::CustomerSummary& r : rows) {
    added.push_back({r.frequency(), r.recency(), r.age(), r.monetary_value()});
  }
  absl::Status valid = ValidateSummaries(added);
  if (!valid.ok()) return InBatch(Named(valid, "summaries"), batch);
  for (int i = 0; i < rows.size(); ++i) {
    if (rows[i].entity_id().empty()) {
      return InBatch(InvalidField(absl::StrCat("summaries[", i, "].entity_id"),
                                  "is empty"),
                     batch);
    }
    if (rows[i].entity_id().size() > kMaxEntityIdBytes) {
      return InBatch(CheckEntityIdSize(rows[i].entity_id(),
                                       absl::StrCat("summaries[", i, "]")),
                     batch);
    }
    ids_.push_back(rows[i].entity_id());
  }
  rows_.insert(rows_.end(), added.begin(), added.end());
  return absl::OkStatus();
}

absl::Status ClvInput::AddEvents(
    const google::protobuf::RepeatedPtrField<v1::ActivityEvent>& events,
    int64_t batch) {
  for (int i = 0; i < events.size(); ++i) {
    const v1::ActivityEvent& e = events[i];
    const std::string field = absl::StrCat("events[", i, "]");
    if (e.entity_id().empty())
      return InBatch(InvalidField(field + ".entity_id", "is empty"), batch);
    RAPPORT_RETURN_IF_ERROR(
        InBatch(CheckEntityIdSize(e.entity_id(), field), batch));
    if (!e.has_time())
      return InBatch(InvalidField(field + ".time", "is required"), batch);
    if (!e.has_amount())
      return InBatch(InvalidField(field + ".amount", "is required"), batch);
    absl::StatusOr<int64_t> t = FromTimestamp(e.time(), field + ".time");
    if (!t.ok()) return InBatch(t.status(), batch);
    absl::StatusOr<Decimal> amount = FromMoney(e.amount(), field + ".amount");
    if (!amount.ok()) return InBatch(amount.status(), batch);
    RAPPORT_RETURN_IF_ERROR(
        InBatch(currency_.Check(e.amount(), field + ".amount"), batch));
    event_ids_.append(e.entity_id());
    event_id_ends_.push_back(event_ids_.size());
    event_times_.push_back(*t);
    event_amounts_.push_back(*amount);
  }
  return absl::OkStatus();
}

absl::Status ClvInput::Build(std::optional<int64_t> as_of_micros,
                             absl::string_view as_of_field, TimeUnit unit) {
  if (!event_times_.empty()) {
    if (!as_of_micros.has_value()) {
      return InvalidField(as_of_field, "is required when events are given");
    }
    std::vector<ActivityEvent> events(event_times_.size());
    size_t begin = 0;
    for (size_t i = 0; i < events.size(); ++i) {
      events[i].entity_id = absl::string_view(event_ids_)
                                .substr(begin, event_id_ends_[i] - begin);
      begin = event_id_ends_[i];
      events[i].time_micros = event_times_[i];
      events[i].amount = event_amounts_[i];
    }
    absl::StatusOr<SummaryTable> table =
        BuildSummaries(events, *as_of_micros, unit);
    if (!table.ok()) return Named(table.status(), "events");
    if (table->size() == 0 && ids_.empty()) {
      return InvalidField(
          "events",
          absl::StrCat("none is at or before ", as_of_field,
                       ", so there is no customer to fit or predict"));
    }
    for (size_t i = 0; i < table->size(); ++i) {
      ids_.emplace_back(table->id(i));
      rows_.push_back(table->rows[i]);
    }
  }
  // Sort by id bytes and refuse duplicates.
  std::vector<size_t> order(ids_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return ids_[a] < ids_[b]; });
  std::vector<std::string> ids(ids_.size());
  std::vector<CustomerSummary> rows(rows_.size());
  for (size_t i = 0; i < order.size(); ++i) {
    ids[i] = std::move(ids_[order[i]]);
    rows[i] = rows_[order[i]];
    if (i > 0 && ids[i] == ids[i - 1]) {
      return InvalidField("summaries", absl::StrCat("customer \"", ids[i],
                                                    "\" is given twice"));
    }
  }
  ids_ = std::move(ids);
  rows_ = std::move(rows);
  return absl::OkStatus();
}

// --- FitClvModel -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<ClvFit>> ClvFit::Start(
    const v1::ClvConfig& config) {
  RAPPORT_RETURN_IF_ERROR(UnitFrom(config.unit(), "config.unit").status());
  if (config.has_as_of()) {
    RAPPORT_RETURN_IF_ERROR(
        FromTimestamp(config.as_of(), "config.as_of").status());
  }
  return std::unique_ptr<ClvFit>(new ClvFit(config));
}

absl::Status ClvFit::Add(const v1::FitClvModelRequest& batch) {
  const int64_t index = ++batches_;
  RAPPORT_RETURN_IF_ERROR(input_.AddSummaries(batch.summaries(), index));
  return input_.AddEvents(batch.events(), index);
}

namespace {

// How FitModels treats Gamma-Gamma.
enum class Spend { kNone, kRequired, kIfPossible };

// BG/NBD on `rows`, and Gamma-Gamma as `spend` says: kIfPossible leaves it
// out when the repeat buyers do not allow a fit. Errors name `field`.
absl::StatusOr<v1::ClvModel> FitModels(const std::vector<CustomerSummary>& rows,
                                       TimeUnit unit, Spend spend,
                                       absl::string_view field) {
  if (rows.empty()) return InvalidField(field, "no customers were given");
  absl::StatusOr<BgNbdFit> bg = FitBgNbd(rows);
  if (!bg.ok()) return Named(bg.status(), field);
  v1::ClvModel model;
  model.set_unit(unit == TimeUnit::kWeek ? v1::TIME_UNIT_WEEK
                                         : v1::TIME_UNIT_DAY);
  v1::BgNbdModel* b = model.mutable_bgnbd();
  b->set_r(bg->params.r);
  b->set_alpha(bg->params.alpha);
  b->set_a(bg->params.a);
  b->set_b(bg->params.b);
  b->set_log_likelihood(bg->log_likelihood);
  b->set_customers(bg->customers);
  if (spend == Spend::kNone) return model;
  absl::StatusOr<GammaGammaFit> gg = FitGammaGamma(rows);
  if (!gg.ok()) {
    // Too few repeat buyers with positive spend (FAILED_PRECONDITION) or a
    // fit that finds nothing: the model has no Gamma-Gamma part, as the API
    // promises, rather than the call failing.
    if (spend == Spend::kIfPossible &&
        (absl::IsInvalidArgument(gg.status()) ||
         absl::IsFailedPrecondition(gg.status()))) {
      return model;
    }
    return Named(gg.status(), absl::StrCat(field, ".monetary_value"));
  }
  v1::GammaGammaModel* g = model.mutable_gamma_gamma();
  g->set_p(gg->params.p);
  g->set_q(gg->params.q);
  g->set_gamma(gg->params.gamma);
  g->set_log_likelihood(gg->log_likelihood);
  g->set_customers(gg->customers);
  return model;
}

}  // namespace

absl::StatusOr<v1::FitClvModelResponse> ClvFit::Finish() {
  RAPPORT_ASSIGN_OR_RETURN(TimeUnit unit,
                           UnitFrom(config_.unit(), "config.unit"));
  std::optional<int64_t> as_of;
  if (config_.has_as_of()) {
    RAPPORT_ASSIGN_OR_RETURN(as_of,
                             FromTimestamp(config_.as_of(), "config.as_of"));
  }
  RAPPORT_RETURN_IF_ERROR(input_.Build(as_of, "config.as_of", unit));
  v1::FitClvModelResponse response;
  RAPPORT_ASSIGN_OR_RETURN(
      *response.mutable_model(),
      FitModels(input_.rows(), unit,
                config_.fit_spend() ? Spend::kRequired : Spend::kNone,
                "summaries"));
  return response;
}

// --- PredictClv ------------------------------------------------------------

absl::StatusOr<std::unique_ptr<ClvPrediction>> ClvPrediction::Start(
    const v1::PredictionConfig& config) {
  std::unique_ptr<ClvPrediction> p(new ClvPrediction());
  p->config_ = config;
  if (config.has_fit()) {
    if (config.has_model()) {
      return InvalidField("config.model",
                          "must be absent when config.fit is given");
    }
    RAPPORT_ASSIGN_OR_RETURN(p->options_.unit,
                             UnitFrom(config.fit().unit(), "config.fit.unit"));
  } else {
    if (!config.has_model() || !config.model().has_bgnbd()) {
      return InvalidField("config.model.bgnbd", "is required");
    }
    RAPPORT_RETURN_IF_ERROR(p->UseModel(config.model()));
    RAPPORT_ASSIGN_OR_RETURN(
        p->options_.unit, UnitFrom(config.model().unit(), "config.model.unit"));
  }
  p->options_.horizon_months =
      config.horizon_months() == 0 ? 12 : config.horizon_months();
  p->options_.monthly_discount =
      config.has_discount_monthly() ? config.discount_monthly() : 0.01;
  p->options_.purchases_horizon =
      config.predict_periods() == 0 ? 1 : config.predict_periods();
  if (!(config.predict_periods() >= 0) ||
      !std::isfinite(config.predict_periods())) {
    return InvalidField("config.predict_periods",
                        "must be finite and not negative");
  }
  absl::Status valid = ValidateClvOptions(p->options_);
  if (!valid.ok()) {
    if (p->options_.horizon_months < 1 || p->options_.horizon_months > 120) {
      return InvalidField("config.horizon_months", "must be 1..120");
    }
    if (!(p->options_.monthly_discount >= 0 &&
          p->options_.monthly_discount < 1)) {
      return InvalidField("config.discount_monthly", "must be in [0, 1)");
    }
    return Named(valid, "config");
  }
  RAPPORT_ASSIGN_OR_RETURN(
      p->response_batch_size_,
      BatchSize(config.response_batch_size(), "config.response_batch_size"));
  if (config.has_as_of()) {
    RAPPORT_RETURN_IF_ERROR(
        FromTimestamp(config.as_of(), "config.as_of").status());
  }
  return p;
}

absl::Status ClvPrediction::UseModel(const v1::ClvModel& model) {
  const v1::BgNbdModel& b = model.bgnbd();
  bgnbd_ = {b.r(), b.alpha(), b.a(), b.b()};
  RAPPORT_RETURN_IF_ERROR(
      Named(ValidateBgNbdParams(bgnbd_), "config.model.bgnbd"));
  has_gamma_gamma_ = model.has_gamma_gamma();
  if (has_gamma_gamma_) {
    const v1::GammaGammaModel& g = model.gamma_gamma();
    gamma_gamma_ = {g.p(), g.q(), g.gamma()};
    RAPPORT_RETURN_IF_ERROR(Named(ValidateGammaGammaParams(gamma_gamma_),
                                  "config.model.gamma_gamma"));
  }
  model_ = model;
  return absl::OkStatus();
}

absl::Status ClvPrediction::Add(const v1::PredictClvRequest& batch) {
  const int64_t index = ++batches_;
  RAPPORT_RETURN_IF_ERROR(input_.AddSummaries(batch.summaries(), index));
  return input_.AddEvents(batch.events(), index);
}

absl::Status ClvPrediction::Finish() {
  std::optional<int64_t> as_of;
  if (config_.has_as_of()) {
    RAPPORT_ASSIGN_OR_RETURN(as_of,
                             FromTimestamp(config_.as_of(), "config.as_of"));
  }
  RAPPORT_RETURN_IF_ERROR(input_.Build(as_of, "config.as_of", options_.unit));
  if (config_.has_fit()) {
    RAPPORT_ASSIGN_OR_RETURN(
        v1::ClvModel fitted,
        FitModels(input_.rows(), options_.unit,
                  config_.fit().fit_spend() ? Spend::kIfPossible : Spend::kNone,
                  "events"));
    RAPPORT_RETURN_IF_ERROR(UseModel(fitted));
  }
  if (has_gamma_gamma_) {
    RAPPORT_ASSIGN_OR_RETURN(
        predictions_,
        PredictCustomers(bgnbd_, gamma_gamma_, input_.rows(), options_));
    return absl::OkStatus();
  }
  predictions_.resize(input_.rows().size());
  for (size_t i = 0; i < predictions_.size(); ++i) {
    const CustomerSummary& c = input_.rows()[i];
    predictions_[i].probability_alive = ProbabilityAlive(bgnbd_, c);
    predictions_[i].expected_purchases =
        ConditionalExpectedPurchases(bgnbd_, options_.purchases_horizon, c);
  }
  return absl::OkStatus();
}

void ClvPrediction::Fill(
    size_t begin, size_t end,
    google::protobuf::RepeatedPtrField<v1::CustomerPrediction>* out) const {
  out->Reserve(static_cast<int>(end - begin));
  for (size_t i = begin; i < end; ++i) {
    v1::CustomerPrediction* p = out->Add();
    const CustomerSummary& c = input_.rows()[i];
    p->set_entity_id(input_.ids()[i]);
    p->set_frequency(c.x);
    p->set_recency(c.t_x);
    p->set_age(c.T);
    p->set_p_alive(predictions_[i].probability_alive);
    p->set_expected_purchases(predictions_[i].expected_purchases);
    if (has_gamma_gamma_) {
      p->set_expected_avg_spend(predictions_[i].expected_spend);
      p->set_clv(predictions_[i].clv);
    }
  }
}

}  // namespace rapport::scoring
