// The balance of `rapportctl overview`, without services: exact shares that
// add up to 100% per column, tiers in order, unavailable counterparts kept,
// and the three output formats.
#include "tools/rapportctl/overview.h"

#include <gtest/gtest.h>

#include <algorithm>
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
                          int64_t monetary_units, int64_t cost_units,
                          int64_t value_hundredths_sum,
                          const std::string& currency = "USD") {
  cv1::GroupSummary g;
  g.set_name(name);
  g.set_entities(entities);
  for (google::type::Money* m :
       {g.mutable_monetary(), g.mutable_cost_to_serve(), g.mutable_profit()}) {
    m->set_currency_code(currency);
  }
  g.mutable_monetary()->set_units(monetary_units);
  g.mutable_cost_to_serve()->set_units(cost_units);
  g.mutable_profit()->set_units(monetary_units - cost_units);
  g.set_value_hundredths_sum(value_hundredths_sum);
  g.set_average_value_hundredths(static_cast<int32_t>(
      value_hundredths_sum / std::max<int64_t>(1, entities)));
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
  EXPECT_EQ(Sum(Shares({D("10.01"), D("-3.3"), D("7.77"), D("0.01")})), 10000);
}

TEST(OverviewShares, PercentTextHasTwoDecimals) {
  EXPECT_EQ(PercentText(1234), "12.34%");
  EXPECT_EQ(PercentText(5), "0.05%");
  EXPECT_EQ(PercentText(-5000), "-50.00%");
  EXPECT_EQ(PercentText(10000), "100.00%");
}

Overview Sample(const std::string& partner_currency = "USD") {
  Counterpart customers =
      FromSummary("customers", "Customers", "customer", 12, "job-1",
                  Summary("", 10, 1000, 100, 42000),
                  {Summary("Gold", 3, 600, 20, 21000),
                   Summary("Platinum", 1, 300, 10, 9000),
                   Summary("Iron", 6, 100, 70, 12000)},
                  {Summary("Champions", 4, 900, 30, 30000)});
  const std::string& pc = partner_currency;
  Counterpart partners =
      FromSummary("partners", "Partners", "partner", 5, "job-2",
                  Summary("", 5, 3000, 300, 17500, pc),
                  {Summary("Platinum", 1, 1200, 9, 9500, pc),
                   Summary("Lead", 4, 1800, 291, 8000, pc)},
                  {});
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
  int64_t value = 0, monetary = 0, cost = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(o.balance[i].counterpart, "customers");
    value += o.balance[i].value_share_bp;
    monetary += o.balance[i].monetary_share_bp;
    cost += o.balance[i].cost_share_bp;
  }
  EXPECT_EQ(value, 10000);
  EXPECT_EQ(monetary, 10000);
  EXPECT_EQ(cost, 10000);
  // Customers' Platinum: 90.00 of 420.00 value points (21.4285...%, and
  // the hundredth left over, its remainder being the largest), 300 of 1000
  // monetary, 10 of 100 cost.
  EXPECT_EQ(o.balance[0].tier, "Platinum");
  EXPECT_EQ(o.balance[0].value_share_bp, 2143);
  EXPECT_EQ(o.balance[1].value_share_bp, 5000);
  EXPECT_EQ(o.balance[2].value_share_bp, 2857);
  EXPECT_EQ(o.balance[0].monetary_share_bp, 3000);
  EXPECT_EQ(o.balance[0].cost_share_bp, 1000);
  // Partners' Platinum brings 40% of the money for 3% of the attention.
  EXPECT_EQ(o.balance[4].counterpart, "partners");
  EXPECT_EQ(o.balance[4].value_share_bp, 5429);
  EXPECT_EQ(o.balance[4].monetary_share_bp, 4000);
  EXPECT_EQ(o.balance[4].cost_share_bp, 300);
}

TEST(OverviewBalance, AcrossCounterpartsLeavesTheUnavailableOut) {
  const Overview o = Sample();
  ASSERT_EQ(o.across.size(), 2u);
  EXPECT_EQ(o.across[0].counterpart, "customers");
  EXPECT_EQ(o.across[0].value_share_bp, 7059);     // 420 of 595 points
  EXPECT_EQ(o.across[0].monetary_share_bp, 2500);  // 1000 of 4000
  EXPECT_EQ(o.across[0].cost_share_bp, 2500);      // 100 of 400
  EXPECT_EQ(o.across[1].value_share_bp, 2941);
  EXPECT_EQ(o.across[1].monetary_share_bp, 7500);
  EXPECT_FALSE(o.counterparts[2].available);
  // The shares are of the two: the note says who is left out, and why.
  EXPECT_EQ(o.across_note,
            "Left out of the shares across counterparts (unavailable: "
            "Financial community)");
  std::ostringstream table;
  Print(Format::kTable, o, table);
  EXPECT_NE(table.str().find("(unavailable: Financial community)"),
            std::string::npos)
      << table.str();
}

// A counterpart whose service answers but has stored no values yet (no
// refresh) is said to be so, and is in no share: its zeros would read as
// figures.
TEST(OverviewBalance, ACounterpartNeverRefreshedIsInNoShare) {
  Counterpart customers =
      FromSummary("customers", "Customers", "customer", 12, "job-1",
                  Summary("", 10, 1000, 100, 42000),
                  {Summary("Gold", 10, 1000, 100, 42000)}, {});
  Counterpart partners = FromSummary("partners", "Partners", "partner", 5, "",
                                     Summary("", 0, 0, 0, 0), {}, {});
  const Overview o = Balance({customers, partners});
  ASSERT_EQ(o.across.size(), 1u);
  EXPECT_EQ(o.across[0].counterpart, "customers");
  EXPECT_EQ(o.across[0].value_share_bp, 10000);
  for (const BalanceRow& r : o.balance) EXPECT_EQ(r.counterpart, "customers");
  EXPECT_EQ(o.across_note,
            "Left out of the shares across counterparts (no refresh yet: "
            "Partners)");
  std::ostringstream table;
  Print(Format::kTable, o, table);
  EXPECT_NE(table.str().find("available, no refresh yet"), std::string::npos)
      << table.str();
}

TEST(OverviewBalance, MoneyInAnotherCurrencyIsNotAddedAcross) {
  const Overview o = Sample("EUR");
  ASSERT_EQ(o.across.size(), 1u);
  EXPECT_EQ(o.across[0].counterpart, "customers");
  EXPECT_EQ(o.across[0].monetary_share_bp, 10000);
  EXPECT_EQ(o.across_note,
            "Left out of the shares across counterparts (unavailable: "
            "Financial community; money not in USD: Partners (EUR))");
  // Within the partners, the shares still stand.
  EXPECT_EQ(o.balance[4].monetary_share_bp, 4000);
}

TEST(OverviewBalance, AnInvalidAmountMakesTheCounterpartUnavailable) {
  cv1::GroupSummary total = Summary("", 1, 5, 1, 100);
  total.mutable_monetary()->set_nanos(-1);  // units > 0, nanos < 0
  const Counterpart c =
      FromSummary("partners", "Partners", "partner", 1, "job", total, {}, {});
  EXPECT_FALSE(c.available);
  EXPECT_NE(c.error.find("invalid amount"), std::string::npos);
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
  EXPECT_EQ(j["counterparts"][0]["currency"], "USD");
  EXPECT_EQ(j["balance"][4]["tier"], "Platinum");
  EXPECT_EQ(j["balance"][4]["value_sum"], "95.00");
  EXPECT_EQ(j["balance"][4]["value_share_percent"], "54.29");
  EXPECT_EQ(j["balance"][4]["monetary_share_percent"], "40.00");
  EXPECT_EQ(j["across"][1]["cost_share_percent"], "75.00");
}

TEST(OverviewPrint, CsvIsOneTableWithASectionColumn) {
  std::ostringstream out;
  Print(Format::kCsv, Sample(), out);
  const std::string csv = out.str();
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "section,counterpart,group,status,entities,scored,value_sum,"
            "average_value,monetary,cost_to_serve,profit,value_share_percent,"
            "monetary_share_percent,cost_share_percent,model_id,as_of");
  EXPECT_NE(csv.find("balance,partners,Platinum,available,1,,95.00,,1200.00,"
                     "9.00,,54.29,40.00,3.00,,"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("total,customers,,available,12,10,420.00,42.00,1000.00,"
                     "100.00,900.00,,,,job-1,"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("total,community,,unavailable: UNAVAILABLE"),
            std::string::npos);
  // Who the shares across counterparts leave out, and why.
  EXPECT_NE(csv.find("note,,,Left out of the shares across counterparts "
                     "(unavailable: Financial community)"),
            std::string::npos)
      << csv;
}

TEST(OverviewPrint, TablesNameTheUnavailableAndShowPercentages) {
  std::ostringstream out;
  Print(Format::kTable, Sample(), out);
  const std::string text = out.str();
  EXPECT_NE(text.find("unavailable (UNAVAILABLE: connection refused)"),
            std::string::npos);
  EXPECT_NE(text.find("54.29%"), std::string::npos);
  EXPECT_NE(text.find("40.00%"), std::string::npos);
  EXPECT_NE(text.find("Champions"), std::string::npos);
}

}  // namespace
}  // namespace rapport::ctl::overview
