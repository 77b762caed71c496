// The balance of `rapportctl overview`, without services: exact shares that
// add up to 100% per column, tiers in order, unavailable counterparts kept,
// and the three output formats.
#include "tools/rapportctl/overview.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>

namespace rapport::ctl::overview {
namespace {

namespace cv1 = ::rapport::common::v1;

Decimal D(const char* text) { return *Decimal::Parse(text); }

int64_t Sum(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{0});
}

cv1::GroupSummary Summary(const std::string& name, int64_t entities,
                          int64_t monetary_units, int64_t cost_units) {
  cv1::GroupSummary g;
  g.set_name(name);
  g.set_entities(entities);
  g.mutable_monetary()->set_units(monetary_units);
  g.mutable_cost_to_serve()->set_units(cost_units);
  g.mutable_profit()->set_units(monetary_units - cost_units);
  g.set_average_value_hundredths(4250);
  return g;
}

TEST(OverviewShares, ExactSharesAreKeptAsTheyAre) {
  EXPECT_EQ(Shares({D("1"), D("1"), D("2")}),
            (std::vector<int64_t>{2500, 2500, 5000}));
  EXPECT_EQ(Shares({D("0.03"), D("0.97")}), (std::vector<int64_t>{300, 9700}));
}

TEST(OverviewShares, ThirdsAddUpToExactlyOneHundredPercent) {
  // 3333.33... each: the hundredth left over goes to the first of equals.
  const std::vector<int64_t> s = Shares({D("1"), D("1"), D("1")});
  EXPECT_EQ(s, (std::vector<int64_t>{3334, 3333, 3333}));
  EXPECT_EQ(Sum(s), 10000);
}

TEST(OverviewShares, LargestRemaindersGetTheHundredthsLeftOver) {
  // 1/7, 2/7, 4/7: 1428.57, 2857.14, 5714.28 -> floors 1428, 2857, 5714
  // (9999); the largest remainder (.57) gets the last hundredth.
  EXPECT_EQ(Shares({D("1"), D("2"), D("4")}),
            (std::vector<int64_t>{1429, 2857, 5714}));
}

TEST(OverviewShares, ZeroTotalGivesZeroSharesAndNegativePartsStillAddUp) {
  EXPECT_EQ(Shares({D("0"), D("0")}), (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(Shares({}), std::vector<int64_t>{});
  // A tier with net refunds: 150 + (-50) = 100.
  const std::vector<int64_t> s = Shares({D("150"), D("-50")});
  EXPECT_EQ(s, (std::vector<int64_t>{15000, -5000}));
  EXPECT_EQ(Sum(Shares({D("10.01"), D("-3.3"), D("7.77"), D("0.01")})),
            10000);
}

TEST(OverviewShares, PercentTextHasTwoDecimals) {
  EXPECT_EQ(PercentText(1234), "12.34%");
  EXPECT_EQ(PercentText(5), "0.05%");
  EXPECT_EQ(PercentText(-5000), "-50.00%");
  EXPECT_EQ(PercentText(10000), "100.00%");
}

Overview Sample() {
  Counterpart customers = FromSummary(
      "customers", "Customers", "customer", 12, "job-1",
      Summary("", 10, 1000, 100),
      {Summary("Gold", 3, 600, 20), Summary("Platinum", 1, 300, 10),
       Summary("Iron", 6, 100, 70)},
      {Summary("Champions", 4, 900, 30)});
  Counterpart partners = FromSummary(
      "partners", "Partners", "partner", 5, "job-2", Summary("", 5, 3000, 300),
      {Summary("Platinum", 1, 1200, 9), Summary("Lead", 4, 1800, 291)}, {});
  Counterpart community;
  community.key = "community";
  community.title = "Financial community";
  community.service = "financial-community";
  community.error = "UNAVAILABLE: connection refused";
  return Balance({customers, partners, community});
}

TEST(OverviewBalance, TiersComeInOrderAndEachCounterpartsColumnsAddUp) {
  const Overview o = Sample();
  ASSERT_EQ(o.counterparts.size(), 3u);
  const Counterpart& c = o.counterparts[0];
  ASSERT_EQ(c.tiers.size(), 4u);
  EXPECT_EQ(c.tiers[0].name, "Platinum");
  EXPECT_EQ(c.tiers[1].name, "Gold");
  EXPECT_EQ(c.tiers[2].name, "Iron");
  EXPECT_EQ(c.tiers[3].name, "Lead");
  EXPECT_EQ(c.tiers[3].entities, 0);  // absent: a zero row
  // 4 tiers each for the two available counterparts; none for the other.
  ASSERT_EQ(o.balance.size(), 8u);
  int64_t value = 0, cost = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(o.balance[i].counterpart, "customers");
    value += o.balance[i].value_share_bp;
    cost += o.balance[i].cost_share_bp;
  }
  EXPECT_EQ(value, 10000);
  EXPECT_EQ(cost, 10000);
  // Customers' Platinum: 300 of 1000 monetary, 10 of 100 cost.
  EXPECT_EQ(o.balance[0].tier, "Platinum");
  EXPECT_EQ(o.balance[0].value_share_bp, 3000);
  EXPECT_EQ(o.balance[0].cost_share_bp, 1000);
  // Partners' Platinum brings 40% of the value for 3% of the attention.
  EXPECT_EQ(o.balance[4].counterpart, "partners");
  EXPECT_EQ(o.balance[4].value_share_bp, 4000);
  EXPECT_EQ(o.balance[4].cost_share_bp, 300);
}

TEST(OverviewBalance, AcrossCounterpartsLeavesTheUnavailableOut) {
  const Overview o = Sample();
  ASSERT_EQ(o.across.size(), 2u);
  EXPECT_EQ(o.across[0].counterpart, "customers");
  EXPECT_EQ(o.across[0].value_share_bp, 2500);  // 1000 of 4000
  EXPECT_EQ(o.across[0].cost_share_bp, 2500);   // 100 of 400
  EXPECT_EQ(o.across[1].value_share_bp, 7500);
  EXPECT_FALSE(o.counterparts[2].available);
}

TEST(OverviewPrint, JsonHasEveryCounterpartAndSharesAsNumbersInText) {
  std::ostringstream out;
  Print(Format::kJson, Sample(), out);
  const nlohmann::json j = nlohmann::json::parse(out.str());
  ASSERT_EQ(j["counterparts"].size(), 3u);
  EXPECT_EQ(j["counterparts"][0]["counterpart"], "customers");
  EXPECT_EQ(j["counterparts"][0]["entities"], 12);
  EXPECT_EQ(j["counterparts"][0]["scored"], 10);
  EXPECT_EQ(j["counterparts"][0]["total"]["monetary"], "1000.00");
  EXPECT_EQ(j["counterparts"][2]["available"], false);
  EXPECT_EQ(j["counterparts"][2]["error"], "UNAVAILABLE: connection refused");
  EXPECT_EQ(j["balance"][4]["tier"], "Platinum");
  EXPECT_EQ(j["balance"][4]["value_share_percent"], "40.00");
  EXPECT_EQ(j["across"][1]["cost_share_percent"], "75.00");
}

TEST(OverviewPrint, CsvIsOneTableWithASectionColumn) {
  std::ostringstream out;
  Print(Format::kCsv, Sample(), out);
  const std::string csv = out.str();
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "section,counterpart,group,status,entities,scored,average_value,"
            "monetary,cost_to_serve,profit,value_share_percent,"
            "cost_share_percent");
  EXPECT_NE(csv.find("balance,partners,Platinum,available,1,,,1200.00,9.00,,"
                     "40.00,3.00"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("total,community,,unavailable: UNAVAILABLE"),
            std::string::npos);
}

TEST(OverviewPrint, TablesNameTheUnavailableAndShowPercentages) {
  std::ostringstream out;
  Print(Format::kTable, Sample(), out);
  const std::string text = out.str();
  EXPECT_NE(text.find("unavailable (UNAVAILABLE: connection refused)"),
            std::string::npos);
  EXPECT_NE(text.find("40.00%"), std::string::npos);
  EXPECT_NE(text.find("Champions"), std::string::npos);
}

}  // namespace
}  // namespace rapport::ctl::overview
