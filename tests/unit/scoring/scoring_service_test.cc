// The scoring service's table of who may call what names every RPC; and what
// its calls do at the edges of what they can compute.
#include "services/scoring/scoring_service.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "services/scoring/scoring_logic.h"

namespace rapport::scoring {
namespace {

// Adds an event of `units` dollars at `seconds` for `entity` to `batch` (of
// ScorePopulation or PredictClv).
template <typename Batch>
void AddEvent(Batch& batch, const std::string& entity, int64_t seconds,
              int64_t units) {
  v1::ActivityEvent* e = batch.add_events();
  e->set_entity_id(entity);
  e->mutable_time()->set_seconds(seconds);
  e->mutable_amount()->set_units(units);
}

// Adds 40 customers' summaries (c100..c139) to `batch`: frequencies 0 to 3,
// and one repeat buyer who spent (c101, 25 a purchase).
void AddSummaries(v1::PredictClvRequest& batch) {
  for (int i = 0; i < 40; ++i) {
    v1::CustomerSummary* c = batch.add_summaries();
    c->set_entity_id(absl::StrCat("c", 100 + i));
    c->set_frequency(i % 4);
    c->set_recency(i % 4 == 0 ? 0 : 10 + i);
    c->set_age(80 + i);
    c->set_monetary_value(i == 1 ? 25.0 : 0.0);
  }
}

// A population run as of 2027-01-15 with `batch` added.
std::unique_ptr<PopulationRun> RunWith(
    const v1::ScorePopulationRequest& batch) {
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      PopulationRun::Start({}, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return nullptr;
  absl::Status added = (*run)->Add(batch);
  EXPECT_TRUE(added.ok()) << added;
  return *std::move(run);
}

TEST(ScoringMethodRoles, NamesEveryRpcOfTheServiceEachOpenToReaders) {
  absl::Status check = ScoringMethodRoles().Check();
  EXPECT_TRUE(check.ok()) << check;
  EXPECT_EQ(ScoringMethodRoles().Of("ScorePopulation"), auth::Role::kReader);
  EXPECT_EQ(ScoringMethodRoles().Of("PredictClv"), auth::Role::kReader);
}

// PredictClv fitting its own model with fit_spend, on customers of whom only
// one repeat buyer spent: no Gamma-Gamma part (the API's promise), not a
// failed call.
TEST(PredictClv, TooFewRepeatSpendersLeaveTheModelWithoutSpend) {
  v1::PredictionConfig config;
  config.mutable_fit()->set_fit_spend(true);
  absl::StatusOr<std::unique_ptr<ClvPrediction>> run =
      ClvPrediction::Start(config);
  ASSERT_TRUE(run.ok()) << run.status();
  v1::PredictClvRequest batch;
  AddSummaries(batch);
  ASSERT_TRUE((*run)->Add(batch).ok());
  absl::Status finished = (*run)->Finish();
  ASSERT_TRUE(finished.ok()) << finished;
  EXPECT_TRUE((*run)->model().has_bgnbd());
  EXPECT_FALSE((*run)->model().has_gamma_gamma());
  v1::PredictClvResponse response;
  (*run)->Fill(0, (*run)->size(), response.mutable_predictions());
  ASSERT_EQ(response.predictions_size(), 40);
  EXPECT_EQ(response.predictions(1).clv(), 0.0);
  EXPECT_EQ(response.predictions(1).expected_avg_spend(), 0.0);
}

// A prediction that fits its model, as of 2001-09-09 (before the events the
// tests below add).
absl::StatusOr<std::unique_ptr<ClvPrediction>> FitAsOf2001() {
  v1::PredictionConfig config;
  config.mutable_fit();
  config.mutable_as_of()->set_seconds(1'000'000'000);
  return ClvPrediction::Start(config);
}

// Events all after as_of leave no customer: the error says so, naming the
// events (not the summaries, which were not given).
TEST(PredictClv, EventsAllAfterAsOfAreNamedAsSuch) {
  absl::StatusOr<std::unique_ptr<ClvPrediction>> run = FitAsOf2001();
  ASSERT_TRUE(run.ok()) << run.status();
  v1::PredictClvRequest batch;
  AddEvent(batch, "c1", 1'700'000'000, 10);
  ASSERT_TRUE((*run)->Add(batch).ok());
  absl::Status finished = (*run)->Finish();
  EXPECT_EQ(finished.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(finished.message(),
            "events: none is at or before config.as_of, so there is no "
            "customer to fit or predict");
}

// With summaries given too, events all after as_of add no customer and are
// no error: the summaries are fitted.
TEST(PredictClv, EventsAfterAsOfBesideSummariesAreNoError) {
  absl::StatusOr<std::unique_ptr<ClvPrediction>> run = FitAsOf2001();
  ASSERT_TRUE(run.ok()) << run.status();
  v1::PredictClvRequest batch;
  AddSummaries(batch);
  AddEvent(batch, "late", 1'700'000'000, 10);
  ASSERT_TRUE((*run)->Add(batch).ok());
  absl::Status finished = (*run)->Finish();
  ASSERT_TRUE(finished.ok()) << finished;
  EXPECT_EQ((*run)->size(), 40u);
}

// The population's expected purchases (SCORING.md section 7) are the
// model's E[X(t)] for the predicted periods: at the CDNOW estimates, t = 32
// weeks, 1.0437 (Hardie's figure; 1.04373754701 exactly).
TEST(PredictClv, GivesThePopulationsExpectedPurchases) {
  v1::PredictionConfig config;
  v1::ClvModel* model = config.mutable_model();
  model->set_unit(v1::TIME_UNIT_WEEK);
  model->mutable_bgnbd()->set_r(0.242593);
  model->mutable_bgnbd()->set_alpha(4.413532);
  model->mutable_bgnbd()->set_a(0.792886);
  model->mutable_bgnbd()->set_b(2.425753);
  config.set_predict_periods(32);
  absl::StatusOr<std::unique_ptr<ClvPrediction>> run =
      ClvPrediction::Start(config);
  ASSERT_TRUE(run.ok()) << run.status();
  v1::PredictClvRequest batch;
  v1::CustomerSummary* c = batch.add_summaries();
  c->set_entity_id("0001");
  c->set_frequency(2);
  c->set_recency(30.43);
  c->set_age(38.86);
  ASSERT_TRUE((*run)->Add(batch).ok());
  ASSERT_TRUE((*run)->Finish().ok());
  EXPECT_NEAR((*run)->population_expected_purchases() / 1.04373754701, 1.0,
              1e-9);
}

// Eleven amounts just under the largest one accepted add up past what a
// Money holds: the call fails naming the entity, and never answers with a
// wrapped or zeroed sum.
TEST(ScorePopulation, ASumBeyondMoneyIsAnErrorNamingTheEntity) {
  v1::ScorePopulationRequest batch;
  for (int i = 0; i < 11; ++i)
    AddEvent(batch, "whale", 1'700'000'000 + i, 900'000'000'000'000'000);
  AddEvent(batch, "minnow", 1'700'000'000, 5);
  std::unique_ptr<PopulationRun> run = RunWith(batch);
  ASSERT_NE(run, nullptr);
  absl::Status finished = run->Finish();
  EXPECT_EQ(finished.code(), absl::StatusCode::kOutOfRange) << finished;
  EXPECT_NE(finished.message().find("whale"), std::string::npos) << finished;
}

// A single entity is scored on the facts ScorePopulation would count: an
// event after as_of, or a Prospect with an amount, is refused naming the
// field (it gave a negative recency, or a tier from money never counted);
// a model without as_of is refused rather than read as of 1970.
TEST(ScoreEntity, FactsThatCouldNotBeCountedAreRefusedNamingTheField) {
  v1::ScorePopulationRequest batch;
  for (int i = 0; i < 10; ++i)
    AddEvent(batch, absl::StrCat("e", i), 1'700'000'000 + 86'400 * i,
             10 * (i + 1));
  std::unique_ptr<PopulationRun> run = RunWith(batch);
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(run->Finish().ok());
  v1::ScoreEntityRequest request;
  *request.mutable_model() = run->model();
  v1::EntityFacts* f = request.mutable_facts();
  f->set_entity_id("new");
  f->set_frequency(1);
  f->mutable_monetary()->set_units(5);
  f->mutable_last_event_time()->set_seconds(1'750'000'000);
  ASSERT_TRUE(ScoreOne(request).ok());

  auto field_of = [&](const v1::ScoreEntityRequest& r) {
    absl::Status s = ScoreOne(r).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    std::vector<FieldViolation> v = FieldViolations(s);
    return v.empty() ? std::string() : v[0].field;
  };
  v1::ScoreEntityRequest later = request;
  later.mutable_facts()->mutable_last_event_time()->set_seconds(1'900'000'000);
  EXPECT_EQ(field_of(later), "facts.last_event_time");
  v1::ScoreEntityRequest prospect = request;
  prospect.mutable_facts()->set_frequency(0);
  prospect.mutable_facts()->clear_last_event_time();
  EXPECT_EQ(field_of(prospect), "facts.monetary");
  v1::ScoreEntityRequest no_time = request;
  no_time.mutable_facts()->clear_last_event_time();
  EXPECT_EQ(field_of(no_time), "facts.last_event_time");
  v1::ScoreEntityRequest no_as_of = request;
  no_as_of.mutable_model()->clear_as_of();
  EXPECT_EQ(field_of(no_as_of), "model.as_of");
  // The model's bins and weights are named as the model's (the request has
  // no config).
  v1::ScoreEntityRequest bins = request;
  bins.mutable_model()->set_bins(11);
  EXPECT_EQ(field_of(bins), "model.bins");
  v1::ScoreEntityRequest weights = request;
  weights.mutable_model()->mutable_weights()->set_r(-1);
  EXPECT_EQ(field_of(weights), "model.weights");
  // Facts the model's window leaves out, as a population's would be.
  v1::ScoreEntityRequest windowed = request;
  windowed.mutable_model()->set_window_days(30);
  windowed.mutable_facts()->mutable_last_event_time()->set_seconds(
      request.model().as_of().seconds() - 30 * 86'400);
  EXPECT_EQ(field_of(windowed), "facts.last_event_time");
  windowed.mutable_facts()->mutable_last_event_time()->set_seconds(
      request.model().as_of().seconds() - 29 * 86'400);
  EXPECT_TRUE(ScoreOne(windowed).ok());
  // An id, as a population's (SCORING.md section 9).
  v1::ScoreEntityRequest no_id = request;
  no_id.mutable_facts()->clear_entity_id();
  EXPECT_EQ(field_of(no_id), "facts.entity_id");
  v1::ScoreEntityRequest long_id = request;
  long_id.mutable_facts()->set_entity_id(std::string(257, 'x'));
  EXPECT_EQ(field_of(long_id), "facts.entity_id");
  // A model no population gives (edited by hand, or from another version)
  // is refused naming what is wrong with it, not scored into nonsense.
  ASSERT_EQ(request.model().frequency_thresholds_size(), 4);
  v1::ScoreEntityRequest unordered = request;
  unordered.mutable_model()->set_frequency_thresholds(2, -1);
  EXPECT_EQ(field_of(unordered), "model.frequency_thresholds[2]");
  v1::ScoreEntityRequest money_unordered = request;
  *money_unordered.mutable_model()->mutable_monetary_thresholds(3) =
      request.model().monetary_thresholds(0);
  money_unordered.mutable_model()->mutable_monetary_thresholds(3)->set_units(
      request.model().monetary_thresholds(0).units() - 1);
  EXPECT_EQ(field_of(money_unordered), "model.monetary_thresholds[3]");
  v1::ScoreEntityRequest negative = request;
  negative.mutable_model()->set_scored_population(-1);
  EXPECT_EQ(field_of(negative), "model.scored_population");
  ASSERT_TRUE(request.model().has_gold_above());
  ASSERT_TRUE(request.model().has_platinum_above());
  v1::ScoreEntityRequest tiers = request;
  *tiers.mutable_model()->mutable_gold_above() =
      request.model().platinum_above();
  tiers.mutable_model()->mutable_gold_above()->set_units(
      request.model().platinum_above().units() + 1);
  EXPECT_EQ(field_of(tiers), "model.platinum_above");
}

// A window past what the engine takes is refused naming it.
TEST(ScorePopulation, AWindowPastAMillionDaysIsRefusedNamingIt) {
  v1::ScoringConfig config;
  config.set_window_days(1'000'001);
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      PopulationRun::Start(config, absl::FromUnixSeconds(1'800'000'000));
  ASSERT_EQ(run.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_EQ(FieldViolations(run.status()).size(), 1u);
  EXPECT_EQ(FieldViolations(run.status())[0].field, "config.window_days");
}

// A population call keeps every id it is sent: one longer than 256 bytes
// is refused naming its field, so that memory follows the record count.
TEST(ScorePopulation, AnEntityIdPastItsBytesIsRefusedNamingTheField) {
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      PopulationRun::Start({}, absl::FromUnixSeconds(1'800'000'000));
  ASSERT_TRUE(run.ok()) << run.status();
  v1::ScorePopulationRequest batch;
  AddEvent(batch, std::string(256, 'a'), 1'700'000'000, 5);
  ASSERT_TRUE((*run)->Add(batch).ok());
  v1::ScorePopulationRequest next;
  AddEvent(next, "b", 1'700'000'000, 5);
  AddEvent(next, std::string(257, 'c'), 1'700'000'000, 5);
  absl::Status refused = (*run)->Add(next);
  ASSERT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  ASSERT_EQ(FieldViolations(refused).size(), 1u);
  EXPECT_EQ(FieldViolations(refused)[0].field, "batch 2: events[1].entity_id");
}

// An engine error names its path as the field ("batch N: " and the path),
// with the rest as its description; a config error names the config field
// without saying it twice.
TEST(ScorePopulation, EngineErrorsNameTheirPathAsTheField) {
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      PopulationRun::Start({}, absl::FromUnixSeconds(1'800'000'000));
  ASSERT_TRUE(run.ok()) << run.status();
  v1::ScorePopulationRequest batch;
  v1::InteractionCost* cost = batch.add_costs();
  cost->set_entity_id("a");
  cost->mutable_time()->set_seconds(1'700'000'000);
  cost->mutable_cost()->set_units(-1);
  absl::Status refused = (*run)->Add(batch);
  ASSERT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  ASSERT_EQ(FieldViolations(refused).size(), 1u);
  EXPECT_EQ(FieldViolations(refused)[0].field, "batch 1: costs[0].cost");
  EXPECT_TRUE(absl::StartsWith(FieldViolations(refused)[0].description,
                               "must not be negative"))
      << FieldViolations(refused)[0].description;

  v1::ScoringConfig config;
  config.mutable_weights()->set_r(2'000'000);
  absl::Status weights =
      PopulationRun::Start(config, absl::FromUnixSeconds(1'800'000'000))
          .status();
  ASSERT_EQ(FieldViolations(weights).size(), 1u) << weights;
  EXPECT_EQ(FieldViolations(weights)[0].field, "config.weights");
  EXPECT_EQ(FieldViolations(weights)[0].description,
            "each must be at most 1000000");
}

// Scoring sums amounts whatever their currency, so one call's amounts are
// in one: an amount in another currency than those before it, or a code
// that is none, is refused naming the field; amounts without a code go with
// any.
TEST(ScorePopulation, AmountsInTwoCurrenciesAreRefusedNamingTheField) {
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      PopulationRun::Start({}, absl::FromUnixSeconds(1'800'000'000));
  ASSERT_TRUE(run.ok()) << run.status();
  v1::ScorePopulationRequest batch;
  AddEvent(batch, "a", 1'700'000'000, 5);
  AddEvent(batch, "b", 1'700'000'000, 7);
  AddEvent(batch, "c", 1'700'000'000, 9);
  batch.mutable_events(1)->mutable_amount()->set_currency_code("EUR");
  ASSERT_TRUE((*run)->Add(batch).ok());
  v1::ScorePopulationRequest next;
  AddEvent(next, "d", 1'700'000'000, 5);
  next.mutable_events(0)->mutable_amount()->set_currency_code("USD");
  absl::Status mixed = (*run)->Add(next);
  ASSERT_EQ(mixed.code(), absl::StatusCode::kInvalidArgument) << mixed;
  ASSERT_EQ(FieldViolations(mixed).size(), 1u);
  EXPECT_EQ(FieldViolations(mixed)[0].field,
            "batch 2: events[0].amount.currency_code");
  EXPECT_NE(mixed.message().find("EUR"), std::string::npos) << mixed;

  v1::ScoreEntitiesRequest request;
  v1::ScorePopulationRequest population;
  for (int i = 0; i < 10; ++i)
    AddEvent(population, absl::StrCat("e", i), 1'700'000'000, 10 * (i + 1));
  std::unique_ptr<PopulationRun> scored = RunWith(population);
  ASSERT_NE(scored, nullptr);
  ASSERT_TRUE(scored->Finish().ok());
  *request.mutable_model() = scored->model();
  for (const char* code : {"USD", "usd"}) {
    request.clear_facts();
    v1::EntityFacts* f = request.add_facts();
    f->set_entity_id("x");
    f->set_frequency(1);
    f->mutable_monetary()->set_units(5);
    f->mutable_monetary()->set_currency_code("EUR");
    f->mutable_last_event_time()->set_seconds(1'750'000'000);
    *request.add_facts() = *f;
    request.mutable_facts(1)->mutable_monetary()->set_currency_code(code);
    absl::Status s = ScoreMany(request).status();
    ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(FieldViolations(s).at(0).field,
              "facts[1].monetary.currency_code");
  }
  request.mutable_facts(1)->mutable_monetary()->set_currency_code("EUR");
  EXPECT_TRUE(ScoreMany(request).ok());
}

}  // namespace
}  // namespace rapport::scoring
