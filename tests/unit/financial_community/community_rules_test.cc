// The financial-community rules that need no storage: analysts' scales,
// dates as the end of their day, exact shares of a cost and values of a
// position, and the targeting score of docs/TARGETING.md (its worked
// example, each factor, and when a member is no target), the tiers'
// management time. The roles table names every RPC.
#include "services/financial_community/community_rules.h"

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/timestamp.h"
#include "common/status.h"
#include "services/financial_community/community_service.h"
#include "tests/support/names_field.h"

namespace rapport::community {
namespace {

namespace cv1 = ::rapport::common::v1;

Decimal D(const char* text) { return *Decimal::Parse(text); }

TEST(ParseRating, MapsAnalystsScalesToBuyHoldSell) {
  EXPECT_EQ(ParseRating("BUY"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("Strong-Buy"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating(" outperform "), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("Equal_Weight"), v1::RATING_HOLD);
  // A separator at either end is a space there, and goes with the others.
  EXPECT_EQ(ParseRating("Buy-"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("_outperform_"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("hold -"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("market\tperform"), v1::RATING_HOLD);
  EXPECT_FALSE(ParseRating("-").has_value());
  EXPECT_EQ(ParseRating("in-line"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("Market Perform"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("underweight"), v1::RATING_SELL);
  EXPECT_EQ(ParseRating("strong sell"), v1::RATING_SELL);
  // The sector- and market-relative scales, and the softer words.
  EXPECT_EQ(ParseRating("Sector Outperform"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("moderate-buy"), v1::RATING_BUY);
  EXPECT_EQ(ParseRating("Sector Perform"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("perform"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("Sector Weight"), v1::RATING_HOLD);
  EXPECT_EQ(ParseRating("market underperform"), v1::RATING_SELL);
  EXPECT_EQ(ParseRating("Negative"), v1::RATING_SELL);
  EXPECT_EQ(ParseRating("Not Rated"), v1::RATING_DROPPED);
  EXPECT_EQ(ParseRating("coverage-dropped"), v1::RATING_DROPPED);
  EXPECT_FALSE(ParseRating("to the moon").has_value());
  EXPECT_FALSE(ParseRating("").has_value());
}

TEST(Dates, AreHeldAsTheLastMicrosecondOfTheirDay) {
  EXPECT_EQ(*ParseDateEnd("2024-06-30", "date"),
            *ParseRfc3339Micros("2024-06-30T23:59:59.999999Z"));
  EXPECT_EQ(DateText(*ParseDateEnd("2024-02-29", "date")), "2024-02-29");
  // Each refusal names the field given.
  for (const char* text :
       {"2023-02-29", "2024-6-30", "2024-06-3 ", "+999-01-01", "2024-6 -30",
        " 024-06-30", "2024-06- 3", "2024-+6-30", "30/06/2024"}) {
    EXPECT_TRUE(testing::NamesField(ParseDateEnd(text, "holding.date").status(),
                                    "holding.date"))
        << text;
  }
  // A day its month does not have is said so; a year out of range is not.
  EXPECT_TRUE(
      absl::StrContains(ParseDateEnd("2026-02-30", "date").status().message(),
                        "not a day of its month"));
  EXPECT_TRUE(
      absl::StrContains(ParseDateEnd("0000-01-01", "date").status().message(),
                        "0001-01-01 to 9999-12-31"));
  const google::type::Date d = DateOf(*ParseDateEnd("1999-12-31", "date"));
  EXPECT_EQ(d.year(), 1999);
  EXPECT_EQ(d.month(), 12);
  EXPECT_EQ(d.day(), 31);
}

TEST(ShareEqually, GivesWhatDoesNotDivideToTheFirst) {
  const std::vector<Decimal> s = ShareEqually(D("100"), 3);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].ToString(), "33.333333334");
  EXPECT_EQ(s[1].ToString(), "33.333333333");
  EXPECT_EQ((s[0] + s[1] + s[2]).ToString(), "100.00");
}

TEST(PositionValue, IsExactAndRefusesOverflow) {
  EXPECT_EQ(PositionValue(1500, D("12.345678901"))->ToString(),
            "18518.5183515");
  EXPECT_EQ(PositionValue(0, D("12"))->ToString(), "0.00");
  EXPECT_TRUE(absl::IsOutOfRange(
      PositionValue(std::numeric_limits<int64_t>::max(),
                    Decimal::FromUnits(1'000'000'000'000'000))
          .status()));
  // A stored one (rows from before positions were limited) names its row.
  absl::Status stored =
      StoredPositionValue("m1", "ACME", std::numeric_limits<int64_t>::max(),
                          Decimal::FromUnits(1'000'000'000'000'000))
          .status();
  EXPECT_TRUE(absl::IsOutOfRange(stored));
  EXPECT_EQ(stored.message(),
            "the position of member m1 in ACME is worth more than the "
            "largest amount");
  EXPECT_EQ(StoredPositionValue("m1", "ACME", 2, D("1.5"))->ToString(), "3.00");
}

TEST(ScoreTarget, FollowsTheWorkedExampleOfTargetingMd) {
  // 1,000 ACME at 10.00 (1,500 before), last met 120 days ago.
  TargetFacts f{.own_value = D("10000"),
                .days_since_engagement = 120,
                .shares_last = 1000,
                .shares_previous = 1500};
  std::optional<TargetScore> s = ScoreTarget(f, "USD");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->score.ToString(), "7448.63");
  EXPECT_DOUBLE_EQ(s->recency_factor, 725.0 / 1460.0);
  EXPECT_DOUBLE_EQ(s->trend_factor, 1.5);
  EXPECT_EQ(s->reason,
            "holds 10,000.00 USD of our securities; last met 120 days ago; "
            "position shrinking (1500 -> 1000 shares)");
}

TEST(ScoreTarget, RecencyRisesFromAQuarterToOneAndNeverMetIsOne) {
  TargetFacts f{.own_value = D("1000"), .shares_last = 5, .shares_previous = 5};
  f.days_since_engagement = 0;
  EXPECT_EQ(ScoreTarget(f, "USD")->score.ToString(), "250.00");
  f.days_since_engagement = 365;
  EXPECT_EQ(ScoreTarget(f, "USD")->score.ToString(), "1000.00");
  f.days_since_engagement = 4000;  // capped at a year
  EXPECT_EQ(ScoreTarget(f, "USD")->score.ToString(), "1000.00");
  f.days_since_engagement.reset();
  std::optional<TargetScore> never = ScoreTarget(f, "USD");
  EXPECT_EQ(never->score.ToString(), "1000.00");
  EXPECT_EQ(never->reason, "holds 1,000.00 USD of our securities; never met");
}

TEST(ScoreTarget, GrowingCountsSixFifthsAndRoundsHalfUpOnce) {
  // 0.05 * 1 * 6/5 = 0.06; 0.0125 * 6/5 = 0.015 -> 0.02 (half up, once).
  TargetFacts f{
      .own_value = D("0.0125"), .shares_last = 2, .shares_previous = 1};
  std::optional<TargetScore> s = ScoreTarget(f, "USD");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->score.ToString(), "0.02");
  EXPECT_DOUBLE_EQ(s->trend_factor, 1.2);
}

TEST(ScoreTarget, PeersCountAtHalfAndNothingHeldIsNoTarget) {
  TargetFacts peer{.peer_value = D("20000")};
  std::optional<TargetScore> s = ScoreTarget(peer, "USD");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->base.ToString(), "10000.00");
  EXPECT_EQ(s->reason,
            "holds none of ours but 20,000.00 USD of peers' (counted at half); "
            "never met");
  // Own value wins over peers'.
  TargetFacts both{.own_value = D("10"), .peer_value = D("1000000")};
  EXPECT_EQ(ScoreTarget(both, "USD")->base.ToString(), "10.00");
  EXPECT_FALSE(ScoreTarget(TargetFacts{}, "USD").has_value());
}

TEST(ParseTierTexts, ReadsEachTiersWordsAndNamesTheFlagOfABadOne) {
  absl::StatusOr<absl::flat_hash_map<int, std::string>> texts =
      ParseTierTexts(kDefaultManagementTime, "f");
  ASSERT_TRUE(texts.ok()) << texts.status();
  EXPECT_EQ(texts->size(), 4u);
  EXPECT_TRUE(absl::StrContains(texts->at(cv1::TIER_PLATINUM), "8 hours"));
  EXPECT_TRUE(absl::StartsWith(texts->at(cv1::TIER_LEAD), "no management"));
  texts = ParseTierTexts(" Gold = the CFO ", "f");
  ASSERT_TRUE(texts.ok()) << texts.status();
  ASSERT_EQ(texts->size(), 1u);
  EXPECT_EQ(texts->at(cv1::TIER_GOLD), "the CFO");
  texts = ParseTierTexts(" ", "f");  // the scoring service's words
  ASSERT_TRUE(texts.ok()) << texts.status();
  EXPECT_TRUE(texts->empty());
  for (const char* bad : {"gold", "bronze=x", "gold=", "gold=a;gold=b",
                          "gold=a;", "unspecified=x"}) {
    absl::Status s = ParseTierTexts(bad, "tier_management_time").status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad;
    EXPECT_TRUE(absl::StartsWith(s.message(), "tier_management_time: "))
        << bad << ": " << s;
  }
  EXPECT_FALSE(
      ParseTierTexts(absl::StrCat("iron=", std::string(201, 'x')), "f").ok());
}

TEST(MoneyWords, GroupsThousandsAndRoundsToTheCent) {
  EXPECT_EQ(MoneyWords(D("1200000")), "1,200,000.00");
  EXPECT_EQ(MoneyWords(D("999.995")), "1,000.00");
  EXPECT_EQ(MoneyWords(D("-1234.5")), "-1,234.50");
  EXPECT_EQ(MoneyWords(D("0")), "0.00");
}

TEST(CommunityMethodRoles, NamesEveryRpcOfTheServiceAndNothingElse) {
  absl::Status check = CommunityMethodRoles().Check();
  EXPECT_TRUE(check.ok()) << check;
  const MethodRoles& roles = CommunityMethodRoles();
  for (const char* m : {"GetRegister", "ListEngagementTargets",
                        "ListAtRiskHolders", "GetConsensus", "ExportScores"}) {
    EXPECT_EQ(roles.Of(m), auth::Role::kReader) << m;
  }
  for (const char* m : {"CreateMember", "RecordHolding", "ImportHoldings",
                        "LogEngagement", "RecordCoverage", "RefreshScores"}) {
    EXPECT_EQ(roles.Of(m), auth::Role::kWriter) << m;
  }
  EXPECT_EQ(roles.Of("DeleteMember"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("ListAuditEvents"), auth::Role::kAdmin);
}

}  // namespace
}  // namespace rapport::community
