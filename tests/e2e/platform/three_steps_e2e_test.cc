// The three steps of a relationship-marketing program, end to end through the
// real binaries (rapport-customer, rapport-scoring, MariaDB) and rapportctl:
// import purchases and interactions from CSV (with bad rows), identify and
// merge duplicates, refresh scores, and check the exported values against
// `rapportctl scoring rfm` on the same data.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "tests/support/mariadb.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/server.h"

namespace rapport {
namespace {

using testing::BinaryDir;
using testing::RunResult;
using testing::ServerProcess;
using testing::TestMariaDb;

constexpr char kAsOf[] = "2024-07-01T00:00:00Z";

class ThreeStepsE2E : public ::testing::Test {
 protected:
  RunResult Ctl(std::vector<std::string> args) const {
    return platform_.Ctl(std::move(args));
  }
  std::string File(const std::string& name, const std::string& content) const {
    return platform_.File(name, content);
  }

  testing::Platform platform_;
};

TEST_F(ThreeStepsE2E, ImportIdentifyMergeRefreshAndExportEqualsScoringRfm) {
  ASSERT_EQ(Ctl({"health", "--wait", "20s"}).exit_code, 0) << platform_.logs();
  std::mt19937_64 rng(4);
  // Customers crm:0..59 buy; crm:60..64 only cost money (Prospects with costs);
  // "dup" is customer crm:7 again under another identity, merged later.
  std::string purchases = "customer_ref,timestamp,amount\n";
  std::string interactions = "customer_ref,timestamp,channel,cost\n";
  // The reference's inputs: every event under the crm id that ends up owning
  // it.
  std::string t_csv = "entity_id,timestamp,amount\n";
  std::string i_csv = "entity_id,timestamp,cost\n";
  std::string e_csv = "entity_id\n";
  for (int c = 0; c < 65; ++c) absl::StrAppend(&e_csv, "c", c, "\n");
  for (int i = 0; i < 400; ++i) {
    const int c =
        i < 60 ? i
               : static_cast<int>(rng() % 60);  // everyone buys at least once
    const std::string when =
        absl::StrFormat("2024-%02d-%02dT%02d:00:00Z", 1 + rng() % 9,
                        1 + rng() % 28, rng() % 24);
    const std::string amount =
        absl::StrFormat("%d.%02d", rng() % 300, rng() % 100);
    absl::StrAppend(&purchases, "ext:crm:c", c, ",", when, ",", amount, "\n");
    absl::StrAppend(&t_csv, "c", c, ",", when, ",", amount, "\n");
  }
  // The duplicate's purchases arrive under its email, before anyone knows.
  for (const char* when : {"2024-06-20T10:00:00Z", "2024-06-29T09:30:00Z"}) {
    absl::StrAppend(&purchases, "email:Cee.Seven+shop@gmail.com,", when,
                    ",42.00\n");
    absl::StrAppend(&t_csv, "c7,", when, ",42.00\n");
  }
  for (int i = 0; i < 80; ++i) {
    const int c =
        i < 5 ? 60 + i : static_cast<int>(rng() % 65);  // c60..64 only cost
    const std::string when =
        absl::StrFormat("2024-%02d-15T12:00:00Z", 1 + rng() % 6);
    const std::string cost =
        absl::StrFormat("%d.%02d", rng() % 40, rng() % 100);
    absl::StrAppend(&interactions, "ext:crm:c", c, ",", when, ",email,", cost,
                    "\n");
    absl::StrAppend(&i_csv, "c", c, ",", when, ",", cost, "\n");
  }
  // Bad rows: each rejected with its line, none stopping the good ones.
  absl::StrAppend(&purchases,
                  "ext:crm:c1,2024-02-30T00:00:00Z,1.00\n");  // no Feb 30
  absl::StrAppend(&purchases,
                  "ext:crm:c2,2024-02-01T00:00:00Z,\"12,5\"\n");  // a comma
  absl::StrAppend(&purchases,
                  "nobody,2024-02-01T00:00:00Z,1.00\n");  // not a ref
  absl::StrAppend(&interactions,
                  "ext:crm:c3,2024-02-01T00:00:00Z,pigeon,1.00\n");
  absl::StrAppend(&interactions, "ext:crm:c4,2024-02-01T00:00:00Z,email,-3\n");

  // Step 1: identify. Import, with rejects reported by line.
  RunResult imported =
      Ctl({"customers", "import", "purchases", File("p.csv", purchases)});
  EXPECT_EQ(imported.exit_code, 1) << imported.err;
  EXPECT_NE(imported.err.find("p.csv:404: timestamp"), std::string::npos)
      << imported.err;
  EXPECT_NE(imported.err.find("p.csv:405: amount"), std::string::npos)
      << imported.err;
  EXPECT_NE(imported.err.find("p.csv:406: customer_ref"), std::string::npos)
      << imported.err;
  RunResult costs =
      Ctl({"customers", "import", "interactions", File("i.csv", interactions)});
  EXPECT_EQ(costs.exit_code, 1) << costs.err;
  EXPECT_NE(costs.err.find("i.csv:82: channel"), std::string::npos)
      << costs.err;
  EXPECT_NE(costs.err.find("i.csv:83: cost"), std::string::npos) << costs.err;
  // A retry of the same files stores nothing twice.
  RunResult again =
      Ctl({"customers", "import", "purchases", platform_.Path("p.csv")});
  EXPECT_EQ(again.exit_code, 1);  // the same rejects
  EXPECT_TRUE(absl::StrContains(again.out, "accepted: 0  duplicates: 402  "))
      << again.out;
  RunResult costs_again =
      Ctl({"customers", "import", "interactions", platform_.Path("i.csv")});
  EXPECT_TRUE(
      absl::StrContains(costs_again.out, "accepted: 0  duplicates: 80  "))
      << costs_again.out;

  // The customer known as crm:c7 gets the email that the duplicate's purchases
  // used (in another form), so the two are found as likely duplicates and
  // merged.
  auto id_of = [&](const std::vector<std::string>& identify) {
    std::vector<std::string> args = {"customers", "identify", "--output",
                                     "csv"};
    args.insert(args.end(), identify.begin(), identify.end());
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> lines =
        absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    if (lines.size() != 2) return std::string();
    std::vector<std::string> fields = absl::StrSplit(lines[1], ',');
    return fields[0];
  };
  const std::string c7 = id_of({"--external-id", "crm:c7"});
  const std::string dup = id_of({"--email", "cee.seven+shop@gmail.com"});
  ASSERT_EQ(c7.size(), 26u);
  ASSERT_EQ(dup.size(), 26u);
  ASSERT_NE(c7, dup);
  ASSERT_EQ(Ctl({"customers", "update", c7, "--email", "ceeseven@gmail.com"})
                .exit_code,
            0);
  RunResult groups = Ctl({"customers", "duplicates", "--output", "csv"});
  // Both, oldest first: created in one import batch, so either may come first.
  EXPECT_TRUE(groups.out.find("email,ceeseven@gmail.com," + c7 + " " + dup) !=
                  std::string::npos ||
              groups.out.find("email,ceeseven@gmail.com," + dup + " " + c7) !=
                  std::string::npos)
      << groups.out;
  RunResult merged = Ctl({"customers", "merge", c7, dup});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  EXPECT_NE(merged.err.find("moved 2 purchases"), std::string::npos)
      << merged.err;

  // Step 2: differentiate, through the scoring service.
  RunResult refreshed = Ctl({"customers", "refresh-scores", "--as-of", kAsOf,
                             "--window-days", "200", "--bins", "5"});
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err << platform_.logs();
  RunResult exported = Ctl({"customers", "export", "scores", "--key", "ext:crm",
                            "--out", platform_.Path("export.csv")});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  RunResult reference =
      Ctl({"scoring", "rfm", "--transactions", File("T.csv", t_csv),
           "--entities", File("E.csv", e_csv), "--interactions",
           File("I.csv", i_csv), "--as-of", kAsOf, "--window-days", "200",
           "--bins", "5", "--out", platform_.Path("rfm.csv")});
  ASSERT_EQ(reference.exit_code, 0) << reference.err;
  const std::string expected = testing::ReadFile(platform_.Path("rfm.csv"));
  EXPECT_EQ(testing::ReadFile(platform_.Path("export.csv")), expected);
  EXPECT_EQ(std::count(expected.begin(), expected.end(), '\n'),
            66);  // header + 65

  // Step 3: interact. The values come with a tier and its contact policy.
  RunResult value = Ctl({"customers", "value", c7, "--output", "json"});
  ASSERT_EQ(value.exit_code, 0) << value.err;
  EXPECT_NE(value.out.find("contact_policy"), std::string::npos) << value.out;
  RunResult summary = Ctl({"customers", "summarize", "--output", "csv"});
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_NE(summary.out.find("Prospect"), std::string::npos) << summary.out;
}

}  // namespace
}  // namespace rapport
