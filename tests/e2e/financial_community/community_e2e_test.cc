// The financial-community service through the real binaries and rapportctl:
// holdings, engagements (one with two members) and coverage imported (bad
// rows rejected by line and column, a retry storing nothing twice, unknown
// external ids creating members), a refresh, and the exported scores equal
// to what SCORING.md section 10 gives, worked out here and scored by
// `rapportctl scoring rfm`: each counted engagement an event of amount 0,
// the member's market value at as_of added to its latest one, the
// engagements' costs as costs. Then the register, the changes, the
// consensus, targets and at-risk holders on the command line, and the audit
// log.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
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

class CommunityE2E : public ::testing::Test {
 protected:
  static testing::PlatformOptions Options() {
    testing::PlatformOptions o;
    o.customer = false;
    o.community = true;
    return o;
  }
  void SetUp() override {
    ASSERT_EQ(
        p_.Ctl({"health", "--wait", "20s", "--addr", p_.community().addr()})
            .exit_code,
        0)
        << p_.logs();
  }
  RunResult Ctl(std::vector<std::string> args) { return p_.Ctl(args); }
  // The member an external id names.
  std::string Id(const std::string& external) {
    RunResult r = Ctl({"community", "identify", "--external-id", external,
                       "--output", "csv"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::CsvId(r.out);
  }
  Platform p_{Options()};
};

TEST_F(CommunityE2E, ImportedRegisterAndEngagementsScoreAsSection10Says) {
  // Rows 2..14; 8, 9, 10, 11, 13 and 14 are bad.
  const std::string holdings =
      p_.File("holdings.csv",
              "member_ref,security,date,shares,price\n"
              "ext:13f:A,ACME,2024-06-30,1000,12.50\n"  // 2
              "ext:13f:A,ACME,2024-09-30,800,15\n"      // 3: A holds 12,000
              "ext:13f:B,ACME,2024-09-30,500,15\n"      // 4
              "ext:13f:B,BETA,2024-09-30,100,7.25\n"    // 5: B holds 8,225
              "ext:13f:C,ACME,2024-09-30,2000,15\n"     // 6: C never met
              "ext:13f:D,ACME,2025-03-31,100,20\n"      // 7: after as_of
              "ext:13f:D,ACME,2024-13-01,100,20\n"      // 8
              "ext:13f:D,ACME,2024-12-01,abc,20\n"      // 9
              "ext:13f:D,ACME,2024-12-01,10,\n"         // 10
              "nope,ACME,2024-12-01,10,1\n"             // 11
              "ext:13f:E,ACME,2024-06-30,300,12.50\n"   // 12
              "ext:13f:D,ACME,2024-12-01,+10,20\n"      // 13
              "ext:13f:D,ACME,2024-12-01,-10,20\n");    // 14
  RunResult imported = Ctl({"community", "import", "holdings", holdings});
  EXPECT_EQ(imported.exit_code, 1) << imported.out << imported.err;
  EXPECT_EQ(Summary(imported.out, "accepted"), 7) << imported.out;
  EXPECT_EQ(Summary(imported.out, "rejected"), 6) << imported.out;
  EXPECT_EQ(Summary(imported.out, "created members"), 5) << imported.out;
  for (const char* where :
       {":8: date: ", ":9: shares: ", ":10: price: ", ":11: member_ref: ",
        ":13: shares: must be a whole number",
        ":14: shares: must not be negative"}) {
    EXPECT_TRUE(absl::StrContains(imported.err, holdings + where))
        << where << "\n"
        << imported.err;
  }
  RunResult again = Ctl({"community", "import", "holdings", holdings});
  EXPECT_EQ(Summary(again.out, "accepted"), 0) << again.out;
  EXPECT_EQ(Summary(again.out, "duplicates"), 7) << again.out;
  EXPECT_EQ(Summary(again.out, "created members"), 0) << again.out;

  const std::string engagements =
      p_.File("engagements.csv",
              "member_ref,timestamp,kind,cost,outcome,note,request_id\n"
              "ext:13f:A,2024-03-01T10:00:00Z,meeting,200,,,m-1\n"
              "ext:13f:A,2024-10-15T09:00:00Z,roadshow,150,,,rs-9/a\n"
              "ext:13f:B,2024-10-15T09:00:00Z,roadshow,150,,,rs-9/b\n"
              "ext:13f:B,2024-11-20T16:00:00Z,call,50,positive,,c-3\n"
              "ext:13f:D,2024-12-01T12:00:00Z,earnings_call,80,,,e-4\n"
              "ext:13f:E,2025-01-15T12:00:00Z,meeting,60,,,m-5\n"
              "ext:13f:E,2024-12-02T12:00:00Z,lunch,60,,,m-6\n"
              "ext:13f:E,yesterday,meeting,60,,,m-7\n");
  RunResult logged = Ctl({"community", "import", "engagements", engagements});
  EXPECT_EQ(Summary(logged.out, "accepted"), 6) << logged.out << logged.err;
  EXPECT_TRUE(absl::StrContains(logged.err, engagements + ":8: kind: "))
      << logged.err;
  EXPECT_TRUE(absl::StrContains(logged.err, engagements + ":9: timestamp: "))
      << logged.err;

  const std::string coverage =
      p_.File("coverage.csv",
              "member_ref,security,date,rating,target_price\n"
              "ext:broker:G,ACME,2024-05-01,buy,16\n"
              "ext:broker:G,ACME,2024-10-01,Underweight,11\n"
              "ext:broker:H,ACME,2024-11-01,Outperform,18\n"
              "ext:broker:H,ACME,2024-11-02,moon,18\n"                  // 5
              "ext:broker:H,ACME,2024-11-03,dropped,18\n"               // 6
              "ext:broker:H,ACME,,hold,18\n"                            // 7
              "01jd8x4r2c6n7m9p0q1r2s3t4v,ACME,2024-11-04,hold,18\n");  // 8
  RunResult rated = Ctl({"community", "import", "coverage", coverage});
  EXPECT_EQ(rated.exit_code, 1) << rated.out << rated.err;
  EXPECT_EQ(Summary(rated.out, "accepted"), 3) << rated.out << rated.err;
  EXPECT_EQ(Summary(rated.out, "rejected"), 4) << rated.out;
  for (const char* where :
       {":5: rating: ",
        ":6: target_price: must be empty when the rating is dropped",
        ":7: date: is required", ":8: member_ref: "}) {
    EXPECT_TRUE(absl::StrContains(rated.err, coverage + where)) << where << "\n"
                                                                << rated.err;
  }
  EXPECT_TRUE(absl::StrContains(rated.err, "does not exist")) << rated.err;

  // Before any refresh a member has no value to read; an unknown one is
  // not found.
  EXPECT_TRUE(testing::NotValuedYet(p_, "community", Id("13f:A")));
  // What is not an id is refused as such, not looked for (and not quoted).
  EXPECT_TRUE(testing::RefusesWhatIsNotAnId(p_, "community"));

  const std::string as_of = "2024-12-31T00:00:00Z";
  RunResult refreshed = Ctl({"community", "refresh-scores", "--as-of", as_of});
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err << p_.logs();
  const std::string exported = p_.Path("export.csv");
  ASSERT_EQ(Ctl({"community", "export", "scores", "--out", exported}).exit_code,
            0);

  // Section 10, worked out here: A met twice (latest 2024-10-15) holding
  // 800 * 15; B met twice (latest 2024-11-20) holding 500 * 15 + 100 * 7.25;
  // D met once, holding nothing yet; C, E and the analysts are prospects (E
  // is met only after as_of).
  std::map<std::string, std::string> id;
  for (const char* x :
       {"13f:A", "13f:B", "13f:C", "13f:D", "13f:E", "broker:G", "broker:H"}) {
    id[x] = Id(x);
  }
  const std::string t = p_.File(
      "T.csv", absl::StrCat("entity_id,timestamp,amount\n",  //
                            id["13f:A"], ",2024-03-01T10:00:00Z,0\n",
                            id["13f:A"], ",2024-10-15T09:00:00Z,12000\n",
                            id["13f:B"], ",2024-10-15T09:00:00Z,0\n",
                            id["13f:B"], ",2024-11-20T16:00:00Z,8225\n",
                            id["13f:D"], ",2024-12-01T12:00:00Z,0\n"));
  std::string e = "entity_id\n";
  for (const auto& [x, mid] : id) absl::StrAppend(&e, mid, "\n");
  const std::string entities = p_.File("E.csv", e);
  const std::string costs =
      p_.File("I.csv", absl::StrCat("entity_id,timestamp,cost\n",  //
                                    id["13f:A"], ",2024-03-01T10:00:00Z,200\n",
                                    id["13f:A"], ",2024-10-15T09:00:00Z,150\n",
                                    id["13f:B"], ",2024-10-15T09:00:00Z,150\n",
                                    id["13f:B"], ",2024-11-20T16:00:00Z,50\n",
                                    id["13f:D"], ",2024-12-01T12:00:00Z,80\n"));
  const std::string rfm = p_.Path("rfm.csv");
  RunResult scored = Ctl({"scoring", "rfm", "--transactions", t, "--entities",
                          entities, "--interactions", costs, "--out", rfm,
                          "--as-of", as_of, "--addr", p_.scoring().addr()});
  ASSERT_EQ(scored.exit_code, 0) << scored.err;
  EXPECT_EQ(testing::ReadFile(exported), testing::ReadFile(rfm));
  EXPECT_EQ(testing::Lines(testing::ReadFile(exported)).size(), 8u);
  // One member's value, read alone, is the one exported.
  EXPECT_TRUE(testing::ValueAsExported(p_, "community", id["13f:B"], exported));
  EXPECT_TRUE(testing::ValueAsExported(p_, "community", id["13f:C"], exported));
  // B's tier's contact policy says the management time B deserves, in the
  // service's default words (not the scoring service's "dedicated" and
  // the like).
  RunResult got = Ctl({"community", "get", id["13f:B"], "--output", "json"});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  EXPECT_TRUE(absl::StrContains(got.out, "\"service_level\": \"") &&
              (absl::StrContains(got.out, " a year\"") ||
               absl::StrContains(got.out, "the investor website\"")))
      << got.out;

  // The register at the end of 2024: C, A, B's ACME, B's BETA (E holds 300
  // since June); D only in 2025.
  std::vector<std::vector<std::string>> reg =
      p_.CsvCtl({"community", "register", "--as-of", "2024-12-31"});
  ASSERT_EQ(reg.size(), 6u);
  EXPECT_EQ(reg[1][0], id["13f:C"]);
  EXPECT_EQ(reg[2][0], id["13f:A"]);
  // Changes from June to September, the largest trade first: C's new
  // position (2,000 shares at 15), B's (500 at 15), A's sale (200 at 15)
  // and B's BETA (100 at 7.25); E's did not change.
  std::vector<std::vector<std::string>> changes = p_.CsvCtl(
      {"community", "changes", "--from", "2024-06-30", "--to", "2024-09-30"});
  ASSERT_EQ(changes.size(), 5u);  // a header and four changes
  ASSERT_EQ(changes[0].size(), 9u);
  EXPECT_EQ(changes[0][8], "traded_value");
  std::vector<std::string> seen;
  for (size_t i = 1; i < changes.size(); ++i) {
    seen.push_back(absl::StrCat(changes[i][0], " ", changes[i][2], " ",
                                changes[i][3], " ", changes[i][8]));
  }
  EXPECT_EQ(seen, (std::vector<std::string>{id["13f:C"] + " ACME new 30000.00",
                                            id["13f:B"] + " ACME new 7500.00",
                                            id["13f:A"] + " ACME sold 3000.00",
                                            id["13f:B"] + " BETA new 725.00"}));
  // G went from buy to underweight (sell); H says outperform (buy).
  RunResult consensus = Ctl({"community", "consensus", "--security", "ACME",
                             "--as-of", "2024-12-31", "--output", "json"});
  ASSERT_EQ(consensus.exit_code, 0) << consensus.err;
  EXPECT_TRUE(absl::StrContains(consensus.out, "\"buy\": \"1\""))
      << consensus.out;
  EXPECT_TRUE(absl::StrContains(consensus.out, "\"sell\": \"1\""))
      << consensus.out;
  // Whom to meet: C holds the most and was never met.
  std::vector<std::vector<std::string>> targets =
      p_.CsvCtl({"community", "targets", "--as-of", as_of, "--limit", "2"});
  ASSERT_EQ(targets.size(), 3u);
  EXPECT_EQ(targets[1][0], id["13f:C"]);
  // A sold 200 ACME between June and September and was met after: not at
  // risk; as of October 1st it was.
  std::vector<std::vector<std::string>> risk =
      p_.CsvCtl({"community", "at-risk", "--as-of", "2024-10-01T00:00:00Z"});
  ASSERT_EQ(risk.size(), 2u);
  EXPECT_EQ(risk[1][0], id["13f:A"]);
  EXPECT_EQ(p_.CsvCtl({"community", "at-risk", "--as-of", as_of}).size(), 1u);

  // The imports and the refresh are in the service's audit log.
  RunResult audit = Ctl(
      {"audit", "list", "--service", "community", "--output", "csv", "--all"});
  ASSERT_EQ(audit.exit_code, 0) << audit.err;
  EXPECT_TRUE(absl::StrContains(audit.out, "ImportHoldings")) << audit.out;
  EXPECT_TRUE(absl::StrContains(audit.out, "RefreshScores")) << audit.out;
}

// A CRM's export gives every engagement an id, and names members not met
// yet: an import of such rows on two streams (rapportctl's default) goes
// through. Rows go to a stream by request id, not by member, so both streams'
// batches made the same new members (and, under repeatable read, locked gaps
// the other inserted into): one kept losing to the other until it gave up,
// and the import with it. Grouped rows (one engagement, several members)
// likewise.
TEST_F(CommunityE2E, EngagementsWithRequestIdsImportOnTwoStreams) {
  std::string csv = "member_ref,timestamp,kind,cost,outcome,note,request_id\n";
  for (int i = 0; i < 60000; ++i) {
    const std::string time = absl::StrCat("2024-0", 1 + i % 6, "-1", i % 10,
                                          "T10:", 10 + i % 50, ":00Z");
    if (i % 2 == 0) {
      absl::StrAppend(&csv, "ext:crm:", i % 19997, ",", time,
                      ",meeting,10,,,e-", i, "\n");
    } else {
      for (const char* who : {"a", "b"}) {
        absl::StrAppend(&csv, "ext:crm:", (i + (who[0] - 'a')) % 19997, ",",
                        time, ",call,5,,,g-", i, "/", who, "\n");
      }
    }
  }
  const std::string file = p_.File("crm.csv", csv);
  RunResult imported = Ctl({"community", "import", "engagements", file,
                            "--streams", "2", "--batch-rows", "5000"});
  EXPECT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  EXPECT_EQ(Summary(imported.out, "accepted"), 90000) << imported.out;
}

// Callers are who they say they are: a reader reads but cannot record.
TEST_F(CommunityE2E, ReadersReadAndOnlyWritersRecord) {
  RunResult made =
      p_.CtlAs("writer", "user:wren",
               {"community", "create", "--display-name", "North Fund", "--kind",
                "investor", "--output", "csv"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string member = testing::CsvId(made.out);
  EXPECT_EQ(
      p_.CtlAs("reader", "user:rae", {"community", "get", member}).exit_code,
      0);
  RunResult refused = p_.CtlAs(
      "reader", "user:rae",
      {"community", "holdings", "record", "--member", member, "--security",
       "ACME", "--date", "2024-06-30", "--shares", "10", "--price", "1"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "PERMISSION_DENIED"))
      << refused.err;
  RunResult deleted =
      p_.CtlAs("writer", "user:wren", {"community", "delete", member});
  EXPECT_EQ(deleted.exit_code, 1) << "only admins delete";
  EXPECT_TRUE(absl::StrContains(deleted.err, "PERMISSION_DENIED"))
      << deleted.err;
  // The member is still there.
  EXPECT_EQ(Ctl({"community", "get", member}).exit_code, 0);
}

}  // namespace
}  // namespace rapport
