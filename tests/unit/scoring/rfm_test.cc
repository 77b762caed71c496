#include "services/scoring/engine/rfm.h"

#include <random>
#include <string>
#include <vector>

#include "common/base/timestamp.h"
#include "gtest/gtest.h"

namespace rapport::scoring {
namespace {

constexpr int64_t kDay = kMicrosPerDay;
const int64_t kAsOf = 1'700'000'000LL * 1'000'000;

// A population with the given facts; ids "e000", "e001", ... keep the order.
FactsTable Table(const std::vector<int64_t>& frequency,
                 const std::vector<int64_t>& recency_days,
                 const std::vector<int64_t>& monetary_cents,
                 const std::vector<int64_t>& cost_cents = {}) {
  FactsTable t;
  t.as_of_micros = kAsOf;
  for (size_t i = 0; i < frequency.size(); ++i) {
    EntityFacts f;
    char id[32];
    std::snprintf(id, sizeof(id), "e%03zu", i);
    f.entity_id = id;
    f.frequency = frequency[i];
    f.monetary = Decimal::FromCents(monetary_cents[i]);
    if (frequency[i] > 0) f.last_event_micros = kAsOf - recency_days[i] * kDay;
    if (!cost_cents.empty())
      f.cost_to_serve = Decimal::FromCents(cost_cents[i]);
    t.Append(f);
  }
  return t;
}

PopulationScores Score(const FactsTable& t, int bins = 5) {
  ScoringOptions o;
  o.bins = bins;
  absl::StatusOr<PopulationScores> s = ScorePopulation(t, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : PopulationScores{};
}

TEST(RfmScorer, TiesShareAScoreAndUseStrictlyLessCounts) {
  // Frequencies 1,1,1,2,5 over N = 5, k = 5: L = 0,0,0,3,4.
  PopulationScores s =
      Score(Table({1, 1, 1, 2, 5}, {0, 0, 0, 0, 0}, {100, 100, 100, 100, 100}));
  EXPECT_EQ(s.f, (std::vector<uint8_t>{1, 1, 1, 4, 5}));
  // Equal recency and monetary everywhere: everyone scores 1.
  EXPECT_EQ(s.r, (std::vector<uint8_t>{1, 1, 1, 1, 1}));
  EXPECT_EQ(s.m, (std::vector<uint8_t>{1, 1, 1, 1, 1}));
}

TEST(RfmScorer, RecencyScoresMoreRecentHigher) {
  PopulationScores s =
      Score(Table({1, 1, 1, 1}, {0, 10, 10, 400}, {1, 1, 1, 1}), 4);
  // v = -recency: -400 < -10 = -10 < 0. L = 3, 1, 1, 0.
  EXPECT_EQ(s.r, (std::vector<uint8_t>{4, 2, 2, 1}));
}

TEST(RfmScorer, OneEntityScoresOne) {
  PopulationScores s = Score(Table({3}, {2}, {500}));
  EXPECT_EQ(s.r[0], 1);
  EXPECT_EQ(s.f[0], 1);
  EXPECT_EQ(s.m[0], 1);
  EXPECT_EQ(s.segment_name(0), "Hibernating");
  EXPECT_EQ(s.value(0).ToString(), "0.00");
  EXPECT_EQ(s.model.frequency_thresholds, (std::vector<int64_t>(4, 3)));
}

TEST(RfmScorer, NegativeMonetaryRanksBelowPositive) {
  PopulationScores s = Score(Table({1, 1, 1}, {0, 0, 0}, {-500, 0, 700}), 3);
  EXPECT_EQ(s.m, (std::vector<uint8_t>{1, 2, 3}));
}

TEST(RfmScorer, ProspectsScoreZeroAndDoNotCountInN) {
  PopulationScores s =
      Score(Table({0, 2, 0, 4}, {0, 5, 0, 1}, {0, 100, 0, 300}), 2);
  EXPECT_EQ(s.model.scored_population, 2);
  EXPECT_EQ(s.r, (std::vector<uint8_t>{0, 1, 0, 2}));
  EXPECT_EQ(s.f, (std::vector<uint8_t>{0, 1, 0, 2}));
  EXPECT_EQ(s.segment_name(0), "Prospect");
  EXPECT_EQ(s.value_cents[0], 0);
  EXPECT_EQ(s.value(3).ToString(), "100.00");
}

TEST(RfmScorer, ThresholdsModelAgreesWithRankRuleOnRandomPopulations) {
  std::mt19937_64 rng(1234);
  for (int k = 2; k <= 10; ++k) {
    for (int trial = 0; trial < 6; ++trial) {
      const size_t n = 1 + rng() % (trial < 3 ? 40 : 3000);
      const int spread = 1 + static_cast<int>(rng() % 50);  // many ties
      std::vector<int64_t> freq(n), rec(n), mon(n), cost(n);
      for (size_t i = 0; i < n; ++i) {
        freq[i] =
            (rng() % 5 == 0) ? 0 : 1 + static_cast<int64_t>(rng() % spread);
        rec[i] = static_cast<int64_t>(rng() % spread);
        mon[i] = static_cast<int64_t>(rng() % (spread * 100)) - 500;
        cost[i] = static_cast<int64_t>(rng() % 300);
      }
      FactsTable t = Table(freq, rec, mon, cost);
      PopulationScores s = Score(t, k);
      std::vector<Int128> fv, rv, mv;
      std::vector<size_t> scored;
      for (size_t i = 0; i < n; ++i) {
        if (freq[i] == 0) continue;
        scored.push_back(i);
        fv.push_back(freq[i]);
        rv.push_back(-rec[i]);
        mv.push_back(t.monetary[i].raw_nanos());
      }
      std::vector<int> fr = RankScores(fv, k), rr = RankScores(rv, k),
                       mr = RankScores(mv, k);
      ScoringOptions o;
      o.bins = k;
      for (size_t j = 0; j < scored.size(); ++j) {
        const size_t i = scored[j];
        ASSERT_EQ(s.f[i], fr[j]) << "k=" << k << " n=" << n;
        ASSERT_EQ(s.r[i], rr[j]) << "k=" << k << " n=" << n;
        ASSERT_EQ(s.m[i], mr[j]) << "k=" << k << " n=" << n;
      }
      // Every entity scored alone against the model agrees with the batch.
      for (size_t i = 0; i < n; ++i) {
        absl::StatusOr<EntityScore> one =
            ScoreEntity(s.model, t.Row(i), kAsOf, o);
        ASSERT_TRUE(one.ok()) << one.status();
        ASSERT_EQ(one->r, s.r[i]);
        ASSERT_EQ(one->f, s.f[i]);
        ASSERT_EQ(one->m, s.m[i]);
        ASSERT_EQ(one->segment, s.segment_name(i));
        ASSERT_EQ(one->value, s.value(i));
        ASSERT_EQ(one->tier, s.tier[i]) << "k=" << k << " i=" << i;
      }
    }
  }
}

TEST(Segments, DefaultTableForFiveBins) {
  SegmentMap m = SegmentMap::Default();
  auto seg = [&](int r, int f) {
    return std::string(m.name(m.Lookup(r, f, 5)));
  };
  EXPECT_EQ(seg(5, 5), "Champions");
  EXPECT_EQ(seg(5, 4), "Champions");
  EXPECT_EQ(seg(4, 5), "Loyal Customers");
  EXPECT_EQ(seg(3, 4), "Loyal Customers");
  EXPECT_EQ(seg(5, 3), "Potential Loyalists");
  EXPECT_EQ(seg(4, 2), "Potential Loyalists");
  EXPECT_EQ(seg(5, 1), "New Customers");
  EXPECT_EQ(seg(4, 1), "Promising");
  EXPECT_EQ(seg(3, 3), "Need Attention");
  EXPECT_EQ(seg(3, 2), "About to Sleep");
  EXPECT_EQ(seg(3, 1), "About to Sleep");
  EXPECT_EQ(seg(2, 5), "Cannot Lose Them");
  EXPECT_EQ(seg(1, 5), "Cannot Lose Them");
  EXPECT_EQ(seg(1, 4), "At Risk");
  EXPECT_EQ(seg(2, 3), "At Risk");
  EXPECT_EQ(seg(2, 2), "Hibernating");
  EXPECT_EQ(seg(1, 1), "Hibernating");
}

TEST(Segments, OtherBinCountsMapToTheFivePointScale) {
  SegmentMap m = SegmentMap::Default();
  auto seg = [&](int r, int f, int k) {
    return std::string(m.name(m.Lookup(r, f, k)));
  };
  // k = 10: 1 + floor(5 (s - 1) / 10): 10 -> 5, 9 -> 5, 8 -> 4, 1 -> 1, 2 -> 1.
  EXPECT_EQ(seg(10, 9, 10), "Champions");
  EXPECT_EQ(seg(8, 10, 10), "Loyal Customers");
  EXPECT_EQ(seg(2, 2, 10), "Hibernating");
  // k = 3: 1 -> 1, 2 -> 2, 3 -> 4.
  EXPECT_EQ(seg(3, 3, 3), "Loyal Customers");
  EXPECT_EQ(seg(3, 1, 3), "Promising");
  EXPECT_EQ(seg(2, 3, 3), "At Risk");  // R 2, F 4
  // k = 2: 1 -> 1, 2 -> 3.
  EXPECT_EQ(seg(1, 2, 2), "At Risk");
  EXPECT_EQ(seg(2, 2, 2), "Need Attention");
}

TEST(Segments, CustomMapMustCoverEveryCell) {
  EXPECT_TRUE(SegmentMap::Create({{"All", 1, 5, 1, 5}}).ok());
  absl::StatusOr<SegmentMap> partial =
      SegmentMap::Create({{"Top", 5, 5, 1, 5}});
  EXPECT_EQ(partial.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(SegmentMap::Create({{"", 1, 5, 1, 5}}).ok());
  EXPECT_FALSE(SegmentMap::Create({{"X", 0, 5, 1, 5}}).ok());
}

TEST(Value, ExactTwoDecimalsHalfAwayFromZero) {
  ValueWeights equal;
  EXPECT_EQ(ValueCents(5, 5, 5, 5, equal), 10000);
  EXPECT_EQ(ValueCents(1, 1, 1, 5, equal), 0);
  EXPECT_EQ(ValueCents(3, 3, 3, 5, equal), 5000);
  EXPECT_EQ(ValueCents(1, 1, 2, 5, equal), 833);   // 8.333...
  EXPECT_EQ(ValueCents(2, 1, 1, 3, equal), 1667);  // 16.666...
  EXPECT_EQ(ValueCents(2, 1, 1, 7, equal), 556);   // 5.555...
  // 100 * 1 / 32 = 3.125 exactly: rounds away from zero to 3.13.
  EXPECT_EQ(ValueCents(1, 2, 1, 9, ValueWeights{2, 1, 1}), 313);
  EXPECT_EQ(ValueCents(2, 1, 1, 9, ValueWeights{2, 1, 1}), 625);
}

TEST(Tiers, PlatinumGoldIronByProfitRankAndLeadBelowZero) {
  // Ten entities with profits 0..9 (one with events), plus two Leads.
  std::vector<int64_t> freq, rec, mon, cost;
  for (int i = 0; i < 10; ++i) {
    freq.push_back(i == 0 ? 0 : 1);
    rec.push_back(0);
    mon.push_back(i * 100);
    cost.push_back(0);
  }
  freq.push_back(0);  // a prospect that cost money: Lead
  rec.push_back(0);
  mon.push_back(0);
  cost.push_back(1);
  freq.push_back(2);  // a buyer whose service cost more than he spent
  rec.push_back(0);
  mon.push_back(500);
  cost.push_back(501);
  PopulationScores s = Score(Table(freq, rec, mon, cost));
  EXPECT_EQ(s.model.profitable_population, 10);
  std::vector<Tier> want = {Tier::kIron,     Tier::kIron, Tier::kIron,
                            Tier::kIron,     Tier::kIron, Tier::kIron,
                            Tier::kIron,     Tier::kGold, Tier::kGold,
                            Tier::kPlatinum, Tier::kLead, Tier::kLead};
  EXPECT_EQ(s.tier, want);
  EXPECT_EQ(s.segment_name(10), "Prospect");
  EXPECT_EQ(*s.model.gold_above, Decimal::FromUnits(6));
  EXPECT_EQ(*s.model.platinum_above, Decimal::FromUnits(8));
  // Ties at the top share the tier: profits 0,0,5,5,5,5,5,5,5,5 -> L = 0 or 2.
  PopulationScores tied =
      Score(Table({1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, std::vector<int64_t>(10, 0),
                  {0, 0, 5, 5, 5, 5, 5, 5, 5, 5}));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(tied.tier[i], Tier::kIron);
}

TEST(Tiers, DefaultContactPolicies) {
  TierPolicies p = TierPolicies::Default();
  EXPECT_EQ(p.For(Tier::kPlatinum).channels.size(), 7u);
  EXPECT_EQ(p.For(Tier::kPlatinum).service_level, "dedicated");
  EXPECT_EQ(p.For(Tier::kLead).service_level, "self-service");
  EXPECT_EQ(
      p.For(Tier::kLead).channels,
      (std::vector<Channel>{Channel::kEmail, Channel::kWeb, Channel::kMail}));
  EXPECT_LT(p.For(Tier::kLead).cost_ceiling, p.For(Tier::kIron).cost_ceiling);
  EXPECT_LT(p.For(Tier::kGold).cost_ceiling,
            p.For(Tier::kPlatinum).cost_ceiling);
  EXPECT_EQ(*ParseChannel("sms"), Channel::kSms);
  EXPECT_FALSE(ParseChannel("fax").ok());
  EXPECT_STREQ(TierName(Tier::kGold), "Gold");
}

TEST(Validation, OptionsErrorsNameTheField) {
  FactsTable t = Table({1}, {0}, {1});
  for (int bins : {0, 1, 11}) {
    ScoringOptions o;
    o.bins = bins;
    absl::StatusOr<PopulationScores> s = ScorePopulation(t, o);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(s.status().message(),
              "bins: must be in 2..10, got " + std::to_string(bins));
  }
  ScoringOptions o;
  o.weights = {0, 0, 0};
  EXPECT_NE(ValidateScoringOptions(o).message().find("weights"),
            absl::string_view::npos);
  o = ScoringOptions{};
  o.tier_policies.gold.channels = {Channel::kEmail, Channel::kEmail};
  EXPECT_NE(
      ValidateScoringOptions(o).message().find("tier_policies.gold.channels"),
      absl::string_view::npos);
  o = ScoringOptions{};
  o.tier_policies.lead.cost_ceiling = Decimal::FromCents(-1);
  EXPECT_NE(ValidateScoringOptions(o).message().find(
                "tier_policies.lead.cost_ceiling"),
            absl::string_view::npos);
  // A stored model with other bins is refused.
  PopulationScores s = Score(t, 5);
  ScoringOptions four;
  four.bins = 4;
  EXPECT_FALSE(ScoreEntity(s.model, t.Row(0), kAsOf, four).ok());
  EntityFacts bad = t.Row(0);
  bad.cost_to_serve = Decimal::FromCents(-5);
  EXPECT_NE(ScoreEntity(s.model, bad, kAsOf, ScoringOptions{})
                .status()
                .message()
                .find("cost_to_serve"),
            absl::string_view::npos);
}

TEST(RfmScorer, NewPurchaseScoredAgainstStoredModel) {
  PopulationScores s = Score(
      Table({1, 2, 3, 4, 5}, {50, 40, 30, 20, 10}, {100, 200, 300, 400, 500}));
  EntityFacts newcomer;
  newcomer.entity_id = "new";
  newcomer.frequency = 9;
  newcomer.monetary = Decimal::FromUnits(1000);
  newcomer.last_event_micros = kAsOf;
  absl::StatusOr<EntityScore> e =
      ScoreEntity(s.model, newcomer, kAsOf, ScoringOptions{});
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->r, 5);
  EXPECT_EQ(e->f, 5);
  EXPECT_EQ(e->m, 5);
  EXPECT_EQ(e->segment, "Champions");
  EXPECT_EQ(e->value.ToString(), "100.00");
  EXPECT_EQ(e->tier, Tier::kPlatinum);
  EXPECT_EQ(*e->recency_days, 0);
}

}  // namespace
}  // namespace rapport::scoring
