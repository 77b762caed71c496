// The partner service through the real binaries and rapportctl: deals,
// orders and interactions imported (bad rows rejected by line and column, a
// retry storing nothing twice, unknown external ids creating partners),
// funds paid, a refresh, and the exported scores equal to `rapportctl
// scoring rfm` on the won deals and orders as transactions and the
// interactions and paid claims as costs; then deal conflicts with
// scorecards, the trend against the previous refresh, and the audit log.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/base/timestamp.h"
#include "tests/support/platform.h"

namespace rapport {
namespace {

using testing::Platform;
using testing::RunResult;

// The number after "NAME: " in an import summary ("accepted: 3").
int64_t Summary(const std::string& out, const std::string& name) {
  const size_t at = out.find(name + ": ");
  if (at == std::string::npos) return -1;
  int64_t n = -1;
  const std::string rest = out.substr(at + name.size() + 2);
  (void)absl::SimpleAtoi(rest.substr(0, rest.find_first_of(" \n")), &n);
  return n;
}

class PartnerE2E : public ::testing::Test {
 protected:
  static testing::PlatformOptions Options() {
    testing::PlatformOptions o;
    o.customer = false;
    o.partner = true;
    return o;
  }
  void SetUp() override {
    ASSERT_EQ(p_.Ctl({"health", "--wait", "20s", "--addr", p_.partner().addr()})
                  .exit_code,
              0)
        << p_.logs();
  }
  RunResult Ctl(std::vector<std::string> args) { return p_.Ctl(args); }
  // The partner an external id names.
  std::string Id(const std::string& external) {
    RunResult r = Ctl(
        {"partners", "identify", "--external-id", external, "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::CsvId(r.out);
  }
  Platform p_{Options()};
};

TEST_F(PartnerE2E, ImportedDealsOrdersAndCostsScoreExactlyAsScoringRfm) {
  // Rows 2..13 of the file; 5, 7, 9 and 11 are bad.
  const std::string deals = p_.File(
      "deals.csv",
      "partner_ref,deal_id,account,amount,registered_at,state,closed_at,"
      "account_domain\n"
      "ext:crm:P1,D1,Globex,1200.50,2024-01-10T00:00:00Z,won,"
      "2024-02-01T00:00:00Z,globex.example\n"  // 2
      "ext:crm:P1,D2,Initech,300,2024-03-01T00:00:00Z,lost,"
      "2024-03-20T00:00:00Z,\n"  // 3
      "ext:crm:P2,D3,Umbrella,5000,2024-02-01T00:00:00Z,won,"
      "2024-06-15T12:00:00Z,umbrella.example\n"  // 4
      "ext:crm:P2,D4,Hooli,12;5,2024-02-01T00:00:00Z,won,"
      "2024-06-15T12:00:00Z,\n"  // 5
      "ext:crm:P3,D5,Stark,750,2024-04-01T00:00:00Z,won,"
      "2024-09-01T00:00:00Z,\n"                               // 6
      "ext:crm:P3,D6,Wayne,100,2024-04-01T00:00:00Z,won,,\n"  // 7
      "ext:crm:P4,D7,Acme,80,2024-05-01T00:00:00Z,submitted,,acme.example\n"
      "ext:crm:P4,D8,Acme,80,2024-05-01T00:00:00Z,pending,,\n"  // 9
      "ext:crm:P5,D9,Soylent,2000,2024-01-05T00:00:00Z,won,"
      "2024-01-31T00:00:00Z,\n"  // 10
      "01jd8x4r2c6n7m9p0q1r2s3t4v,D10,Vandelay,10,2024-01-05T00:00:00Z,lost,"
      "2024-01-31T00:00:00Z,\n"  // 11
      "ext:crm:P5,D11,Tyrell,40,2024-07-01T00:00:00Z,won,"
      "2024-10-01T00:00:00Z,\n"  // 12
      "ext:crm:P6,D12,Cyberdyne,60,2024-07-01T00:00:00Z,lost,"
      "2024-08-01T00:00:00Z,\n");  // 13
  RunResult imported = Ctl({"partners", "import", "deals", deals});
  EXPECT_EQ(imported.exit_code, 1) << imported.out << imported.err;
  EXPECT_EQ(Summary(imported.out, "accepted"), 8) << imported.out;
  EXPECT_EQ(Summary(imported.out, "rejected"), 4) << imported.out;
  EXPECT_EQ(Summary(imported.out, "created partners"), 6) << imported.out;
  EXPECT_TRUE(absl::StrContains(imported.err, deals + ":5: amount: "))
      << imported.err;
  EXPECT_TRUE(absl::StrContains(imported.err, deals + ":7: closed_at: "))
      << imported.err;
  EXPECT_TRUE(absl::StrContains(imported.err, deals + ":9: state: "))
      << imported.err;
  EXPECT_TRUE(absl::StrContains(imported.err, deals + ":11: partner_ref: "))
      << imported.err;
  // Run again: nothing is stored twice.
  RunResult again = Ctl({"partners", "import", "deals", deals});
  EXPECT_EQ(Summary(again.out, "accepted"), 0) << again.out;
  EXPECT_EQ(Summary(again.out, "duplicates"), 8) << again.out;
  EXPECT_EQ(Summary(again.out, "created partners"), 0) << again.out;

  const std::string orders =
      p_.File("orders.csv",
              "partner_ref,timestamp,amount,request_id\n"
              "ext:crm:P1,2024-05-01T10:00:00Z,99.99,o-1\n"
              "ext:crm:P1,2024-11-01T10:00:00Z,-20,o-2\n"
              "ext:crm:P4,2024-08-08T08:00:00Z,450,o-3\n"
              "ext:crm:P6,yesterday,10,o-4\n"
              "ext:crm:P7,2024-03-03T00:00:00Z,33,o-5\n"
              "01jd8x4r2c6n7m9p0q1r2s3t4v,2024-03-03T00:00:00Z,5,o-6\n");
  RunResult o = Ctl({"partners", "import", "orders", orders});
  EXPECT_EQ(Summary(o.out, "accepted"), 4) << o.out << o.err;
  EXPECT_EQ(Summary(o.out, "rejected"), 2) << o.out;
  EXPECT_EQ(Summary(o.out, "created partners"), 1) << o.out;
  EXPECT_TRUE(absl::StrContains(o.err, orders + ":5: timestamp: ")) << o.err;
  // A partner id nobody made is not a partner to create.
  EXPECT_TRUE(absl::StrContains(
      o.err, orders + ":7: partner_ref: partner 01jd8x4r2c6n7m9p0q1r2s3t4v "
                      "does not exist"))
      << o.err;

  const std::string interactions =
      p_.File("interactions.csv",
              "partner_ref,timestamp,channel,cost,kind\n"
              "ext:crm:P1,2024-06-01T00:00:00Z,visit,150,business review\n"
              "ext:crm:P2,2024-06-02T00:00:00Z,event,75.25,training\n"
              "ext:crm:P6,2024-06-03T00:00:00Z,email,1,newsletter\n"
              "ext:crm:P3,2024-06-04T00:00:00Z,pigeon,1,\n");
  RunResult i = Ctl({"partners", "import", "interactions", interactions});
  EXPECT_EQ(Summary(i.out, "accepted"), 3) << i.out << i.err;
  EXPECT_TRUE(absl::StrContains(i.err, interactions + ":5: channel: "))
      << i.err;

  // Funds for P2: requested, approved, claimed and paid (a cost).
  const std::string p2 = Id("crm:P2");
  RunResult fund =
      Ctl({"partners", "funds", "request", "--partner", p2, "--activity",
           "webinars", "--amount", "600", "--output", "csv"});
  ASSERT_EQ(fund.exit_code, 0) << fund.err;
  const std::string fund_id = testing::CsvId(fund.out);
  // Who requested the funds does not approve them, nor pay their own claim:
  // another writer does.
  RunResult own = Ctl({"partners", "funds", "approve", fund_id});
  EXPECT_EQ(own.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(own.err, "PERMISSION_DENIED")) << own.err;
  EXPECT_TRUE(absl::StrContains(own.err, "another person")) << own.err;
  // Force is an admin's: a writer's is refused, before anything is looked at.
  RunResult writer_force = p_.CtlAs(
      "writer", "wanda", {"partners", "funds", "approve", fund_id, "--force"});
  EXPECT_EQ(writer_force.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(writer_force.err, "PERMISSION_DENIED"))
      << writer_force.err;
  EXPECT_TRUE(absl::StrContains(writer_force.err, "admin")) << writer_force.err;
  ASSERT_EQ(
      p_.CtlAs("writer", "wanda", {"partners", "funds", "approve", fund_id})
          .exit_code,
      0);
  ASSERT_EQ(Ctl({"partners", "funds", "claim", fund_id, "--amount", "550.5",
                 "--time", "2024-07-01T00:00:00Z"})
                .exit_code,
            0);
  RunResult own_claim = Ctl({"partners", "funds", "pay", fund_id});
  EXPECT_EQ(own_claim.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(own_claim.err, "claimed by")) << own_claim.err;
  RunResult paid = p_.CtlAs(
      "writer", "wanda",
      {"partners", "funds", "pay", fund_id, "--time", "2024-07-15T00:00:00Z"});
  ASSERT_EQ(paid.exit_code, 0) << paid.err;
  // A second claim is rejected with the same verb that rejects a request:
  // no cost.
  RunResult refused_fund =
      Ctl({"partners", "funds", "request", "--partner", p2, "--activity",
           "booth", "--amount", "300", "--output", "csv"});
  ASSERT_EQ(refused_fund.exit_code, 0) << refused_fund.err;
  const std::string refused_id = testing::CsvId(refused_fund.out);
  ASSERT_EQ(
      Ctl({"partners", "funds", "approve", refused_id, "--force"}).exit_code,
      0);
  ASSERT_EQ(Ctl({"partners", "funds", "claim", refused_id, "--amount", "300"})
                .exit_code,
            0);
  RunResult claim_rejected = Ctl({"partners", "funds", "reject", refused_id});
  ASSERT_EQ(claim_rejected.exit_code, 0) << claim_rejected.err;
  EXPECT_TRUE(absl::StrContains(claim_rejected.out, "claim_rejected"))
      << claim_rejected.out;
  // A program whose partners keep a margin instead of earning commission.
  std::vector<std::vector<std::string>> margin =
      p_.CsvCtl({"partners", "programs", "create", "--name", "Distribution",
                 "--margin", "20", "--tier-margin", "gold=25"});
  ASSERT_EQ(margin.size(), 2u);
  EXPECT_EQ(margin[0][2], "basis");
  EXPECT_EQ(margin[1][2], "margin");
  EXPECT_EQ(margin[1][3], "default=20% gold=25%");
  EXPECT_EQ(Ctl({"partners", "programs", "create", "--name", "Both", "--margin",
                 "20", "--commission", "5"})
                .exit_code,
            2);

  // Before any refresh a partner has no value to read; an unknown one is
  // not found.
  const std::string p1 = Id("crm:P1");
  EXPECT_TRUE(testing::NotValuedYet(p_, "partners", p1));

  const std::vector<std::string> as_of = {"--as-of", "2024-12-31T00:00:00Z"};
  std::vector<std::string> refresh = {"partners", "refresh-scores"};
  refresh.insert(refresh.end(), as_of.begin(), as_of.end());
  RunResult refreshed = Ctl(refresh);
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err << p_.logs();
  const std::string exported = p_.Path("export.csv");
  ASSERT_EQ(Ctl({"partners", "export", "scores", "--out", exported}).exit_code,
            0);

  // The same through the scoring service directly.
  std::map<std::string, std::string> id;
  for (const char* x : {"P1", "P2", "P3", "P4", "P5", "P6", "P7"}) {
    id[x] = Id(absl::StrCat("crm:", x));
  }
  const std::string t =
      p_.File("T.csv", absl::StrCat("entity_id,timestamp,amount\n",  //
                                    id["P1"], ",2024-02-01T00:00:00Z,1200.50\n",
                                    id["P2"], ",2024-06-15T12:00:00Z,5000\n",
                                    id["P3"], ",2024-09-01T00:00:00Z,750\n",
                                    id["P5"], ",2024-01-31T00:00:00Z,2000\n",
                                    id["P5"], ",2024-10-01T00:00:00Z,40\n",
                                    id["P1"], ",2024-05-01T10:00:00Z,99.99\n",
                                    id["P1"], ",2024-11-01T10:00:00Z,-20\n",
                                    id["P4"], ",2024-08-08T08:00:00Z,450\n",
                                    id["P7"], ",2024-03-03T00:00:00Z,33\n"));
  std::string e = "entity_id\n";
  for (const auto& [x, pid] : id) absl::StrAppend(&e, pid, "\n");
  const std::string entities = p_.File("E.csv", e);
  const std::string costs =
      p_.File("I.csv", absl::StrCat("entity_id,timestamp,cost\n",  //
                                    id["P1"], ",2024-06-01T00:00:00Z,150\n",
                                    id["P2"], ",2024-06-02T00:00:00Z,75.25\n",
                                    id["P6"], ",2024-06-03T00:00:00Z,1\n",
                                    id["P2"], ",2024-07-15T00:00:00Z,550.5\n"));
  const std::string rfm = p_.Path("rfm.csv");
  std::vector<std::string> direct = {
      "scoring",    "rfm",    "--transactions", t,
      "--entities", entities, "--interactions", costs,
      "--out",      rfm,      "--addr",         p_.scoring().addr()};
  direct.insert(direct.end(), as_of.begin(), as_of.end());
  RunResult scored = Ctl(direct);
  ASSERT_EQ(scored.exit_code, 0) << scored.err;
  EXPECT_EQ(testing::ReadFile(exported), testing::ReadFile(rfm));
  EXPECT_EQ(testing::Lines(testing::ReadFile(exported)).size(), 8u);
  // One partner's value, read alone, is the one exported.
  EXPECT_TRUE(testing::ValueAsExported(p_, "partners", p1, exported));
  EXPECT_TRUE(testing::ValueAsExported(p_, "partners", id["P6"], exported));

  // The scorecard: win rate, paid funds and their return, and after a second
  // refresh the trend against the first.
  RunResult card = Ctl({"partners", "scorecard", id["P1"], "--output", "json"});
  ASSERT_EQ(card.exit_code, 0) << card.err;
  EXPECT_TRUE(absl::StrContains(card.out, "\"deals_won\": \"1\"")) << card.out;
  EXPECT_TRUE(absl::StrContains(card.out, "\"win_rate\": 0.5")) << card.out;
  RunResult card2 = Ctl({"partners", "scorecard", p2, "--output", "json"});
  EXPECT_TRUE(absl::StrContains(card2.out, "\"units\": \"550\"")) << card2.out;
  EXPECT_TRUE(absl::StrContains(card2.out, "\"fund_return\":")) << card2.out;
  EXPECT_FALSE(absl::StrContains(card2.out, "\"previous\"")) << card2.out;
  ASSERT_EQ(Ctl({"partners", "orders", "record", "--partner", id["P6"],
                 "--amount", "5000", "--time", "2024-12-01T00:00:00Z"})
                .exit_code,
            0);
  ASSERT_EQ(Ctl(refresh).exit_code, 0);
  RunResult trend =
      Ctl({"partners", "scorecard", id["P6"], "--output", "json"});
  EXPECT_TRUE(absl::StrContains(trend.out, "\"previous\"")) << trend.out;
  EXPECT_TRUE(absl::StrContains(trend.out, "\"value_change_hundredths\""))
      << trend.out;
  // P6, Gold now, needs more than the profit shown to reach Platinum (above
  // its threshold).
  EXPECT_TRUE(absl::StrContains(trend.out, "\"next_tier\": \"TIER_PLATINUM\""))
      << trend.out;
  EXPECT_TRUE(absl::StrContains(trend.out, "\"profit_must_exceed\": true"))
      << trend.out;

  // The import and the refreshes are in the partner service's audit log.
  RunResult audit = Ctl(
      {"audit", "list", "--service", "partner", "--output", "csv", "--all"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(absl::StrContains(audit.out, "ImportDeals")) << audit.out;
  EXPECT_TRUE(absl::StrContains(audit.out, "RefreshScores")) << audit.out;
  EXPECT_TRUE(absl::StrContains(audit.out, "TransitionFundRequest"))
      << audit.out;
}

TEST_F(PartnerE2E, ConflictsNeedForceAndShowEveryClaimantsScorecard) {
  auto create = [&](const std::string& name) {
    RunResult r = Ctl({"partners", "create", "--display-name", name, "--kind",
                       "distributor", "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::CsvId(r.out);
  };
  const std::string a = create("Alpha"), b = create("Beta");
  RunResult first =
      Ctl({"partners", "deals", "register", "--partner", a, "--account",
           "Globex Corp", "--domain", "globex.example", "--amount", "900",
           "--output", "csv"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  RunResult second =
      Ctl({"partners", "deals", "register", "--partner", b, "--account",
           "Globex", "--domain", "https://www.globex.example", "--amount",
           "1000", "--output", "csv"});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::string later = testing::CsvId(second.out);
  EXPECT_TRUE(absl::StrContains(second.out, testing::CsvId(first.out)))
      << second.out;
  // A writer cannot force; without force, approval is refused.
  RunResult refused = Ctl({"partners", "deals", "approve", later});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "FAILED_PRECONDITION"))
      << refused.err;
  RunResult writer = p_.CtlAs(
      "writer", "wanda", {"partners", "deals", "approve", later, "--force"});
  EXPECT_TRUE(absl::StrContains(writer.err, "PERMISSION_DENIED")) << writer.err;
  RunResult still = Ctl({"partners", "deals", "get", later, "--output", "csv"});
  ASSERT_EQ(still.exit_code, 0) << still.err;
  EXPECT_TRUE(absl::StrContains(still.out, ",submitted,")) << still.out;
  RunResult conflicts =
      Ctl({"partners", "deals", "conflicts", "--output", "csv"});
  ASSERT_EQ(conflicts.exit_code, 0) << conflicts.err;
  const auto rows = testing::CsvRows(conflicts.out);
  ASSERT_EQ(rows.size(), 3u) << conflicts.out;
  EXPECT_EQ(rows[1][3], "Alpha");
  EXPECT_EQ(rows[2][3], "Beta");
  RunResult forced = Ctl({"partners", "deals", "approve", later, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  // Win needs the close time; then the deal is won.
  RunResult no_time = Ctl({"partners", "deals", "win", later});
  EXPECT_EQ(no_time.exit_code, 2) << no_time.err;
  RunResult ahead = Ctl({"partners", "deals", "win", later, "--closed-at",
                         "2099-01-01T00:00:00Z"});
  EXPECT_EQ(ahead.exit_code, 1) << ahead.err;
  EXPECT_TRUE(absl::StrContains(ahead.err,
                                "close_time: must not be in the "
                                "future"))
      << ahead.err;
  RunResult won = Ctl({"partners", "deals", "win", later, "--closed-at",
                       FormatRfc3339Micros(absl::ToUnixMicros(absl::Now())),
                       "--output", "csv"});
  ASSERT_EQ(won.exit_code, 0) << won.err;
  EXPECT_TRUE(absl::StrContains(won.out, ",won,")) << won.out;
  // A reader lists but deletes nothing.
  RunResult listed = p_.CtlAs("reader", "rita", {"partners", "list"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  RunResult deleted =
      p_.CtlAs("reader", "rita", {"partners", "delete", a, "--force"});
  EXPECT_TRUE(absl::StrContains(deleted.err, "PERMISSION_DENIED"))
      << deleted.err;
  EXPECT_EQ(Ctl({"partners", "get", a}).exit_code, 0);

  // Imported registrations of one account by two partners: the later one is
  // a conflict however the partners' rows would hash to streams (deals go
  // on one stream by default).
  const std::string deals = p_.File(
      "conflicting.csv",
      "partner_ref,deal_id,account,amount,registered_at,state,closed_at,"
      "account_domain\n"
      "ext:crm:G1,G1,Initech,10,2024-01-10T00:00:00Z,submitted,,"
      "initech.example\n"
      "ext:crm:G2,G2,Initech Inc,20,2024-01-11T00:00:00Z,submitted,,"
      "initech.example\n"
      "ext:crm:G3,G3,Initech,30,2024-01-12T00:00:00Z,submitted,,"
      "initech.example\n");
  RunResult imported = Ctl({"partners", "import", "deals", deals});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  RunResult after = Ctl({"partners", "deals", "conflicts", "--output", "csv"});
  ASSERT_EQ(after.exit_code, 0) << after.err;
  // account, deal_id, partner_id, display_name, state, register_time,
  // amount, conflict_with, ...: G2 and G3 conflict with G1's registration.
  std::string g1_deal;
  std::map<std::string, std::string> conflict_of;
  for (const auto& row : testing::CsvRows(after.out)) {
    if (row.size() < 8) continue;
    if (row[3] == "crm:G1") g1_deal = row[1];
    if (!row[7].empty()) conflict_of[row[3]] = row[7];
  }
  ASSERT_FALSE(g1_deal.empty()) << after.out;
  EXPECT_EQ(conflict_of["crm:G2"], g1_deal) << after.out;
  EXPECT_EQ(conflict_of["crm:G3"], g1_deal) << after.out;
}

// What the command line refuses before any call: words it does not take,
// flags of the wrong shape, an --out it cannot create; and with no command,
// the usage on stderr.
TEST_F(PartnerE2E, TheCommandLineRefusesWhatItCannotRead) {
  RunResult extra = Ctl({"partners", "create", "Extra", "--display-name", "X",
                         "--kind", "channel"});
  EXPECT_EQ(extra.exit_code, 2) << extra.err;
  EXPECT_EQ(Ctl({"partners", "list", "extra"}).exit_code, 2);
  // Every command of words and flags alone, with a word too many: refused
  // before any call, the word quoted (it used to be dropped, and a listing
  // or a registration went ahead).
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{
           {"partners", "identify", "extra", "--external-id", "crm:X"},
           {"partners", "duplicates", "extra"},
           {"partners", "deals", "register", "extra", "--partner", "p",
            "--account", "A", "--amount", "1"},
           {"partners", "deals", "list", "extra"},
           {"partners", "deals", "conflicts", "extra"},
           {"partners", "funds", "request", "extra", "--partner", "p",
            "--activity", "a", "--amount", "1"},
           {"partners", "funds", "list", "extra"},
           {"partners", "programs", "create", "extra", "--name", "n",
            "--commission", "1"},
           {"partners", "programs", "list", "extra"},
           {"partners", "agreements", "create", "extra", "--partner", "p",
            "--program", "q", "--start", "2024-01-01T00:00:00Z"},
           {"partners", "agreements", "list", "extra"},
           {"partners", "orders", "record", "extra", "--partner", "p",
            "--amount", "1", "--time", "2024-01-01T00:00:00Z"},
           {"partners", "orders", "list", "extra"},
           {"partners", "interactions", "log", "extra", "--partner", "p",
            "--channel", "email", "--cost", "0"},
           {"partners", "interactions", "list", "extra"},
           {"customers", "identify", "extra", "--email", "x@example.com"},
           {"customers", "duplicates", "extra"},
           {"health", "extra"}}) {
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << absl::StrJoin(args, " ") << ": " << r.err;
    EXPECT_TRUE(absl::StrContains(r.err, "unexpected argument \"extra\""))
        << absl::StrJoin(args, " ") << ": " << r.err;
  }
  RunResult attribute = Ctl({"partners", "create", "--display-name", "X",
                             "--kind", "channel", "--attribute", "tier"});
  EXPECT_EQ(attribute.exit_code, 2) << attribute.err;
  EXPECT_TRUE(absl::StrContains(attribute.err, "--attribute: want KEY=VALUE"))
      << attribute.err;
  RunResult listed = Ctl({"partners", "list", "--output", "csv"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(testing::CsvRows(listed.out).size(), 1u) << listed.out;
  RunResult out = Ctl({"partners", "export", "scores", "--out",
                       "/nonexistent-directory/scores.csv"});
  EXPECT_EQ(out.exit_code, 1) << out.err;
  EXPECT_TRUE(absl::StrContains(out.err, "--out: cannot create")) << out.err;
  RunResult none = Ctl({});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(none.out.empty()) << none.out;
  EXPECT_TRUE(absl::StrContains(none.err, "partners import deals")) << none.err;
  // What is not an id is refused as such, not looked for (and not quoted).
  EXPECT_TRUE(testing::RefusesWhatIsNotAnId(p_, "partners"));

  // A rejected row fixed in the file, which is run again under the import
  // id the first run printed: the fixed row is stored, the other is not
  // stored twice (the file's bytes, and so its derived id, changed).
  const std::string header = "partner_ref,timestamp,amount\n";
  const std::string good = "ext:fix:Q1,2024-05-01T10:00:00Z,10\n";
  const std::string orders = p_.File(
      "fix.csv", header + good + "ext:fix:Q1,2024-05-02T10:00:00Z,ten\n");
  RunResult first = Ctl({"partners", "import", "orders", orders});
  EXPECT_EQ(first.exit_code, 1) << first.err;
  EXPECT_EQ(Summary(first.out, "accepted"), 1) << first.out;
  const std::string hint = "run again with --import-id ";
  const size_t at = first.err.find(hint);
  ASSERT_NE(at, std::string::npos) << first.err;
  const size_t from = at + hint.size();
  const std::string import_id =
      first.err.substr(from, first.err.find(':', from) - from);
  EXPECT_TRUE(absl::StartsWith(import_id, "csv-")) << first.err;
  p_.File("fix.csv", header + good + "ext:fix:Q1,2024-05-02T10:00:00Z,12\n");
  RunResult second =
      Ctl({"partners", "import", "orders", orders, "--import-id", import_id});
  EXPECT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(Summary(second.out, "accepted"), 1) << second.out;
  EXPECT_EQ(Summary(second.out, "duplicates"), 1) << second.out;
  RunResult listed_orders = Ctl({"partners", "orders", "list", "--partner",
                                 Id("fix:Q1"), "--output", "csv"});
  ASSERT_EQ(listed_orders.exit_code, 0) << listed_orders.err;
  EXPECT_EQ(testing::CsvRows(listed_orders.out).size(), 3u)
      << listed_orders.out;  // a header and two orders
}

}  // namespace
}  // namespace rapport
