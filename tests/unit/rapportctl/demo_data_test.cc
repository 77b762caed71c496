#include "tools/rapportctl/demo_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "common/base/decimal.h"
#include "common/base/timestamp.h"

namespace rapport::ctl::demo {
namespace {

using ::testing::HasSubstr;

// 2025-06-15T00:00:00Z.
const int64_t kNow = DaysFromCivil(2025, 6, 15) * kMicrosPerDay;

constexpr char kCdnow[] =
    " customer_id  date number_of_cds  dollar_value\r\n"
    " 00001 19970101  1   11.77\r\n"
    " 00002 19970112  1   12.00\r\n"
    " 00002 19970112  5   77.00\r\n"
    " 00003 19970102  2   20.76\r\n"
    " 00003 19980630  1    0.00\r\n"
    "\r\n";

size_t Column(const CsvRows& rows, const std::string& name) {
  for (size_t c = 0; c < rows.header.size(); ++c) {
    if (rows.header[c] == name) return c;
  }
  ADD_FAILURE() << "no column " << name;
  return 0;
}

// Every value of the column parses as a decimal with at most 2 decimals and
// is not negative.
void ExpectAmounts(const CsvRows& rows, const std::string& column) {
  const size_t c = Column(rows, column);
  ASSERT_FALSE(rows.rows.empty()) << column;
  for (const std::vector<std::string>& row : rows.rows) {
    ASSERT_EQ(row.size(), rows.header.size());
    absl::StatusOr<Decimal> d = Decimal::Parse(row[c]);
    ASSERT_TRUE(d.ok()) << column << ": " << row[c];
    EXPECT_GE(*d, Decimal()) << column << ": " << row[c];
    EXPECT_EQ(d->RoundTo2HalfAwayFromZero(), *d) << column << ": " << row[c];
  }
}

// Every value of the column is an RFC 3339 time before `now`.
void ExpectPast(const CsvRows& rows, const std::string& column,
                bool optional = false) {
  const size_t c = Column(rows, column);
  for (const std::vector<std::string>& row : rows.rows) {
    if (optional && row[c].empty()) continue;
    absl::StatusOr<int64_t> t = ParseRfc3339Micros(row[c]);
    ASSERT_TRUE(t.ok()) << column << ": " << row[c];
    EXPECT_LT(*t, kNow) << column << ": " << row[c];
  }
}

// rapportctl in build/dev/tools/rapportctl/ of a checkout finds the log in
// ../shared/data/cdnow/ beside the checkout (the directory with
// deploy/local/run); nothing when it is not there, nor beside a directory
// that is no checkout.
TEST(FindCdnowLog, LooksBesideTheCheckoutThatHoldsEachDirectory) {
  namespace fs = std::filesystem;
  const fs::path top = fs::temp_directory_path() /
                       ("rapport-cdnow-test-" + std::to_string(::getpid()));
  const fs::path checkout = top / "work" / "main";
  const fs::path exe_dir = checkout / "build" / "tools";
  fs::create_directories(exe_dir);
  fs::create_directories(checkout / "deploy" / "local");
  std::ofstream(checkout / "deploy" / "local" / "run") << "#!/bin/sh\n";
  EXPECT_EQ(FindCdnowLog({exe_dir}), std::nullopt);
  // A log beside a directory that is no checkout is not taken.
  fs::create_directories(top / "shared" / "data" / "cdnow");
  std::ofstream(top / "shared" / "data" / "cdnow" / "CDNOW_master.txt")
      << "00001 19970101 1 11.77\n";
  EXPECT_EQ(FindCdnowLog({exe_dir, top / "elsewhere"}), std::nullopt);
  fs::create_directories(top / "work" / "shared" / "data" / "cdnow");
  const fs::path log =
      top / "work" / "shared" / "data" / "cdnow" / "CDNOW_master.txt";
  std::ofstream(log) << "00001 19970101 1 11.77\n";
  EXPECT_EQ(FindCdnowLog({top / "elsewhere", exe_dir}), log.string());
  EXPECT_EQ(FindCdnowLog({checkout}), log.string());
  fs::remove_all(top);
}

TEST(ParseCdnow, ReadsTheMasterLogSkippingItsHeader) {
  absl::StatusOr<std::vector<CdnowPurchase>> log =
      ParseCdnow(kCdnow, "CDNOW_master.txt");
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 5u);
  EXPECT_EQ((*log)[0].customer_id, "00001");
  EXPECT_EQ((*log)[0].day_us, DaysFromCivil(1997, 1, 1) * kMicrosPerDay);
  EXPECT_EQ((*log)[0].cds, 1);
  EXPECT_EQ((*log)[0].amount.ToString(), "11.77");
  EXPECT_EQ((*log)[4].amount.ToString(), "0.00");
}

TEST(ParseCdnow, ABadLineIsNamedByItsNumber) {
  struct Case {
    const char* line;
    const char* message;
  };
  for (const Case& c : {
           Case{" 00004 19970101  1", "CDNOW_master.txt:3: want 4 fields"},
           Case{" 00004 1997011  1 2.00", "CDNOW_master.txt:3: date:"},
           Case{" 00004 19970230  1 2.00", "CDNOW_master.txt:3: date:"},
           Case{" 0000x 19970101  1 2.00", "CDNOW_master.txt:3: customer_id:"},
           Case{" 00004 19970101  x 2.00",
                "CDNOW_master.txt:3: number_of_cds:"},
           Case{" 00004 19970101  1 2,00", "CDNOW_master.txt:3: dollar_value:"},
           Case{" 00004 19970101  1 -2.00",
                "CDNOW_master.txt:3: dollar_value:"},
       }) {
    const std::string text = std::string(" customer_id date n dollars\n") +
                             " 00001 19970101  1   11.77\n" + c.line + "\n";
    absl::StatusOr<std::vector<CdnowPurchase>> log =
        ParseCdnow(text, "CDNOW_master.txt");
    ASSERT_FALSE(log.ok()) << c.line;
    EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(log.status().message()), HasSubstr(c.message))
        << c.line;
  }
}

TEST(CustomersFromCdnow, NamesEachCustomerAndTakesScoresAfterTheLastDay) {
  absl::StatusOr<std::vector<CdnowPurchase>> log = ParseCdnow(kCdnow, "log");
  ASSERT_TRUE(log.ok());
  const CustomerPopulation p = CustomersFromCdnow(*log, 1, 0);
  ASSERT_EQ(p.customers.size(), 3u);
  EXPECT_EQ(p.customers[1].external_source, "cdnow");
  EXPECT_EQ(p.customers[1].external_id, "00002");
  EXPECT_FALSE(p.customers[1].display_name.empty());
  EXPECT_THAT(p.customers[1].email, HasSubstr(".00002@"));
  ASSERT_EQ(p.purchases.rows.size(), 5u);
  EXPECT_EQ(p.purchases.rows[1],
            (std::vector<std::string>{"ext:cdnow:00002", "1997-01-12T00:00:00Z",
                                      "12.00"}));
  EXPECT_EQ(p.as_of_us, DaysFromCivil(1998, 7, 1) * kMicrosPerDay);
  ExpectAmounts(p.purchases, "amount");
  // Each customer was welcomed the day after its first purchase.
  ASSERT_GE(p.interactions.rows.size(), 3u);
  EXPECT_EQ(p.interactions.rows[0],
            (std::vector<std::string>{"ext:cdnow:00001", "1997-01-02T10:00:00Z",
                                      "email", "0.10", "welcome"}));
  ExpectAmounts(p.interactions, "cost");

  const CustomerPopulation first_two = CustomersFromCdnow(*log, 1, 2);
  EXPECT_EQ(first_two.customers.size(), 2u);
  EXPECT_EQ(first_two.purchases.rows.size(), 3u);
  EXPECT_EQ(first_two.customers[1].display_name, p.customers[1].display_name);
}

TEST(DemoData, TheSameSeedGivesTheSamePopulation) {
  const CustomerPopulation a = GenerateCustomers(7, 300, kNow);
  const CustomerPopulation b = GenerateCustomers(7, 300, kNow);
  ASSERT_EQ(a.customers.size(), b.customers.size());
  for (size_t i = 0; i < a.customers.size(); ++i) {
    EXPECT_EQ(a.customers[i].display_name, b.customers[i].display_name);
    EXPECT_EQ(a.customers[i].email, b.customers[i].email);
  }
  EXPECT_EQ(a.purchases.rows, b.purchases.rows);
  EXPECT_EQ(a.interactions.rows, b.interactions.rows);
  EXPECT_NE(a.purchases.rows, GenerateCustomers(8, 300, kNow).purchases.rows);

  const PartnerPopulation p = GeneratePartners(7, kNow);
  const PartnerPopulation q = GeneratePartners(7, kNow);
  EXPECT_EQ(p.deals.rows, q.deals.rows);
  EXPECT_EQ(p.orders.rows, q.orders.rows);
  EXPECT_EQ(p.interactions.rows, q.interactions.rows);
  EXPECT_NE(p.deals.rows, GeneratePartners(8, kNow).deals.rows);

  const CommunityPopulation c = GenerateCommunity(7, kNow);
  const CommunityPopulation d = GenerateCommunity(7, kNow);
  EXPECT_EQ(c.holdings.rows, d.holdings.rows);
  EXPECT_EQ(c.engagements.rows, d.engagements.rows);
  EXPECT_EQ(c.coverage.rows, d.coverage.rows);
}

TEST(GenerateCustomers, FewBuyOftenAndManyBuyOnce) {
  const CustomerPopulation p = GenerateCustomers(1, 2000, kNow);
  ASSERT_EQ(p.customers.size(), 2000u);
  EXPECT_EQ(p.as_of_us, kNow);
  EXPECT_GT(p.purchases.rows.size(), 8000u);
  EXPECT_LT(p.purchases.rows.size(), 12000u);
  std::map<std::string, int> per_customer;
  for (const auto& row : p.purchases.rows) ++per_customer[row[0]];
  int once = 0, often = 0;
  for (const auto& [ref, n] : per_customer) {
    once += n == 1;
    often += n >= 10;
  }
  EXPECT_GT(once, 700);
  EXPECT_GT(often, 100);
  EXPECT_LT(often, once);
  std::set<std::string> emails;
  for (const Customer& c : p.customers) emails.insert(c.email);
  EXPECT_EQ(emails.size(), p.customers.size());
  ExpectAmounts(p.purchases, "amount");
  ExpectPast(p.purchases, "timestamp");
  // What it cost to keep them: more contacts than customers.
  EXPECT_GT(p.interactions.rows.size(), p.customers.size());
  ExpectAmounts(p.interactions, "cost");
  ExpectPast(p.interactions, "timestamp");
}

TEST(GeneratePartners, DealsIncludeConflictsWithinTheProtectionWindow) {
  const PartnerPopulation p = GeneratePartners(1, kNow);
  const CsvRows& deals = p.deals;
  const size_t partner = Column(deals, "partner_ref"),
               state = Column(deals, "state"),
               registered = Column(deals, "registered_at"),
               closed = Column(deals, "closed_at"),
               domain = Column(deals, "account_domain");
  // Open registrations by account domain: (time, partner).
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> open;
  int64_t previous = 0;
  for (const std::vector<std::string>& row : deals.rows) {
    const int64_t at = *ParseRfc3339Micros(row[registered]);
    EXPECT_GE(at, previous) << "deals come in order of registration";
    previous = at;
    if (row[state] == "won" || row[state] == "lost") {
      ASSERT_FALSE(row[closed].empty());
      EXPECT_GT(*ParseRfc3339Micros(row[closed]), at);
    } else {
      EXPECT_TRUE(row[closed].empty());
    }
    if (row[state] == "submitted" || row[state] == "approved") {
      open[row[domain]].push_back({at, row[partner]});
    }
  }
  int conflicts = 0;
  for (const auto& [account, claims] : open) {
    for (size_t k = 1; k < claims.size(); ++k) {
      const bool rival = claims[k].second != claims[0].second;
      const bool within =
          claims[k].first - claims[0].first <= 90 * kMicrosPerDay;
      conflicts += rival && within;
    }
  }
  EXPECT_GE(p.conflicts, 3);
  EXPECT_EQ(conflicts, p.conflicts);
  ExpectAmounts(deals, "amount");
  ExpectPast(deals, "registered_at");
  ExpectPast(deals, "closed_at", /*optional=*/true);
}

TEST(GeneratePartners, EveryKindWithProgramsOrdersAndFunds) {
  const PartnerPopulation p = GeneratePartners(1, kNow);
  EXPECT_GE(p.partners.size(), 140u);
  std::set<int> kinds;
  std::set<std::string> regions, names;
  for (const Partner& partner : p.partners) {
    kinds.insert(partner.kind);
    regions.insert(partner.region);
    names.insert(partner.display_name);
  }
  EXPECT_EQ(kinds.size(), 5u);
  EXPECT_GE(regions.size(), 3u);
  EXPECT_EQ(names.size(), p.partners.size());
  EXPECT_EQ(p.programs.size(), 2u);
  EXPECT_GT(p.agreements.size(), 100u);
  ExpectAmounts(p.orders, "amount");
  ExpectPast(p.orders, "timestamp");
  ExpectAmounts(p.interactions, "cost");
  ExpectPast(p.interactions, "timestamp");

  EXPECT_GE(p.funds.size(), 15u);
  std::map<int, int> by_state;
  for (const Fund& f : p.funds) {
    ++by_state[f.state];
    EXPECT_GT(f.requested, Decimal());
    EXPECT_LE(f.claimed, f.requested);
    EXPECT_GT(f.claimed, Decimal());
    EXPECT_LT(f.claim_us, f.paid_us);
    EXPECT_LT(f.paid_us, kNow);
  }
  EXPECT_GE(by_state[partner::v1::FUND_REQUEST_STATE_PAID], 10);
  EXPECT_GE(by_state[partner::v1::FUND_REQUEST_STATE_REJECTED], 2);
}

TEST(GenerateCommunity, HoldingsGrowShrinkAndSellOut) {
  const CommunityPopulation c = GenerateCommunity(1, kNow);
  EXPECT_GE(c.members.size(), 100u);
  const CsvRows& h = c.holdings;
  const size_t member = Column(h, "member_ref"),
               security = Column(h, "security"), shares = Column(h, "shares");
  // Each position's shares, quarter after quarter (rows come in date order).
  std::map<std::pair<std::string, std::string>, std::vector<int64_t>> positions;
  std::set<std::string> dates;
  for (const std::vector<std::string>& row : h.rows) {
    int64_t n = 0;
    ASSERT_TRUE(absl::SimpleAtoi(row[shares], &n)) << row[shares];
    EXPECT_GE(n, 0);
    positions[{row[member], row[security]}].push_back(n);
    dates.insert(row[Column(h, "date")]);
  }
  EXPECT_EQ(dates.size(), 8u);
  EXPECT_LT(*dates.rbegin(), "2025-06-15");
  int growing = 0, shrinking = 0, exited = 0;
  for (const auto& [key, series] : positions) {
    if (series.back() == 0) {
      ++exited;
    } else if (series.back() > series.front()) {
      ++growing;
    } else if (series.back() < series.front()) {
      ++shrinking;
    }
  }
  EXPECT_GE(growing, 5);
  EXPECT_GE(shrinking, 5);
  EXPECT_GE(exited, 3);
  // Some investors hold only peers: whom to win over.
  std::map<std::string, std::set<std::string>> held;
  for (const auto& [key, series] : positions)
    held[key.first].insert(key.second);
  int only_peers = 0;
  for (const auto& [ref, securities] : held) {
    only_peers += securities.count(c.our_security) == 0;
  }
  EXPECT_GE(only_peers, 5);
  ExpectAmounts(h, "price");
}

TEST(GenerateCommunity, EngagementsWithSeveralMembersAndCoverage) {
  const CommunityPopulation c = GenerateCommunity(1, kNow);
  const CsvRows& e = c.engagements;
  const size_t request_id = Column(e, "request_id"), kind = Column(e, "kind");
  std::map<std::string, int> groups;
  std::set<std::string> kinds;
  for (const std::vector<std::string>& row : e.rows) {
    kinds.insert(row[kind]);
    const size_t slash = row[request_id].rfind('/');
    if (slash != std::string::npos) ++groups[row[request_id].substr(0, slash)];
  }
  EXPECT_EQ(kinds,
            (std::set<std::string>{"call", "conference", "earnings_call",
                                   "meeting", "report_sent", "roadshow"}));
  int shared = 0;
  for (const auto& [group, members] : groups) shared += members > 1;
  EXPECT_GE(shared, 8);
  ExpectAmounts(e, "cost");
  ExpectPast(e, "timestamp");

  const CsvRows& coverage = c.coverage;
  ASSERT_GE(coverage.rows.size(), 25u);
  std::set<std::string> ratings;
  for (const auto& row : coverage.rows)
    ratings.insert(row[Column(coverage, "rating")]);
  EXPECT_GE(ratings.size(), 3u);
  ExpectAmounts(coverage, "target_price");
}

}  // namespace
}  // namespace rapport::ctl::demo
