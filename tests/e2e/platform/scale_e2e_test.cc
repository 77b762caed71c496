// Several replicas of each service, as an admin scales them: customer
// replicas share one database, so an import through one, a refresh through
// the other, and its job read from both agree; clients given every replica's
// address spread their calls over all of them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/platform.h"

namespace rapport {
namespace {

using testing::Platform;
using testing::PlatformOptions;
using testing::RunResult;

// The calls a server has handled, from its metrics endpoint (a failed
// scrape fails the test).
int64_t Handled(const std::string& metrics_addr, const std::string& service) {
  return static_cast<int64_t>(
      testing::SumOf(testing::FetchMetrics(metrics_addr),
                     "grpc_server_handled_total", {service}));
}

std::string Field(const std::vector<std::vector<std::string>>& rows,
                  const std::string& column) {
  if (rows.size() < 2) return "";
  for (size_t c = 0; c < rows[0].size(); ++c) {
    if (rows[0][c] == column && c < rows[1].size()) return rows[1][c];
  }
  return "";
}

class ScaleE2E : public ::testing::Test {
 protected:
  static PlatformOptions Options() {
    PlatformOptions o;
    o.customer_replicas = 2;
    o.scoring_replicas = 2;
    return o;
  }
  void SetUp() override {
    for (int r = 0; r < 2; ++r) {
      ASSERT_EQ(On(r, {"health", "--wait", "20s"}).exit_code, 0)
          << platform_.logs();
    }
  }
  // rapportctl against one customer replica.
  RunResult On(int replica, std::vector<std::string> args) {
    args.insert(args.begin(), testing::CtlPath());
    args.push_back("--addr");
    args.push_back(platform_.customer(replica).addr());
    return testing::Run(args, platform_.CtlEnv());
  }
  Platform platform_{Options()};
};

TEST_F(ScaleE2E,
       ImportThroughOneReplicaRefreshThroughTheOtherAndReadTheJobFromBoth) {
  std::string csv = "customer_ref,timestamp,amount\n";
  for (int c = 0; c < 200; ++c) {
    for (int p = 0; p < 3; ++p) {
      absl::StrAppend(&csv, "ext:shop:", c, ",2024-0", 1 + (c + p) % 9, "-1", p,
                      "T08:00:00Z,", 5 + (c * 3 + p) % 40, "\n");
    }
  }
  RunResult imported =
      On(0, {"customers", "import", "purchases", platform_.File("p.csv", csv)});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  EXPECT_TRUE(absl::StrContains(imported.out, "accepted: 600")) << imported.out;

  RunResult started =
      On(1, {"customers", "refresh-scores", "--no-wait", "--as-of",
             "2024-12-31T00:00:00Z", "--output", "csv"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string job = testing::CsvId(started.out);
  ASSERT_FALSE(job.empty()) << started.out;

  // Both replicas know the job; it ends once, and both say how.
  std::string state;
  for (int i = 0; i < 300 && state != "SUCCEEDED" && state != "FAILED"; ++i) {
    RunResult seen =
        On(0, {"customers", "refresh-job", job, "--output", "csv"});
    ASSERT_EQ(seen.exit_code, 0) << seen.err;
    state = Field(testing::CsvRows(seen.out), "state");
    if (state == "RUNNING") absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(state, "SUCCEEDED") << platform_.logs();
  for (int r = 0; r < 2; ++r) {
    RunResult seen =
        On(r, {"customers", "refresh-job", job, "--output", "csv"});
    ASSERT_EQ(seen.exit_code, 0) << seen.err;
    const auto rows = testing::CsvRows(seen.out);
    EXPECT_EQ(Field(rows, "id"), job);
    EXPECT_EQ(Field(rows, "state"), "SUCCEEDED");
    EXPECT_EQ(Field(rows, "total"), "200");
  }
  // The values the refresh stored are the same through either replica.
  RunResult from0 = On(0, {"customers", "summarize", "--output", "csv"});
  RunResult from1 = On(1, {"customers", "summarize", "--output", "csv"});
  ASSERT_EQ(from0.exit_code, 0) << from0.err;
  EXPECT_EQ(from0.out, from1.out);
}

TEST_F(ScaleE2E, ClientsGivenEveryReplicaSpreadTheirCallsOverThem) {
  const std::string customer_service = "rapport.customer.v1.CustomerService";
  const int64_t before[2] = {
      Handled(platform_.customer(0).metrics_addr(), customer_service),
      Handled(platform_.customer(1).metrics_addr(), customer_service)};
  testing::Env env = platform_.CtlEnv();
  env["RAPPORT_CUSTOMER_ADDR"] = absl::StrCat(platform_.customer(0).addr(), ",",
                                              platform_.customer(1).addr());
  // One rapportctl process makes one call: each starts on a replica of its
  // own choosing (common/channel.cc shuffles the list).
  for (int i = 0; i < 20; ++i) {
    RunResult r = testing::Run({testing::CtlPath(), "customers", "list"}, env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const int64_t after[2] = {
      Handled(platform_.customer(0).metrics_addr(), customer_service),
      Handled(platform_.customer(1).metrics_addr(), customer_service)};
  EXPECT_EQ((after[0] - before[0]) + (after[1] - before[1]), 20);
  EXPECT_GT(after[0] - before[0], 0);
  EXPECT_GT(after[1] - before[1], 0);

  // An import's streams each go to another replica, whichever connected
  // first: four streams, two on each.
  std::string rows = "customer_ref,timestamp,amount\n";
  for (int c = 0; c < 40; ++c) {
    absl::StrAppend(&rows, "ext:spread:", c, ",2024-01-02T00:00:00Z,", c + 1,
                    "\n");
  }
  const std::string spread = platform_.File("spread.csv", rows);
  for (int streams : {2, 4}) {
    const auto imports = [&](int r) {
      return static_cast<int64_t>(testing::SumOf(
          testing::FetchMetrics(platform_.customer(r).metrics_addr()),
          "grpc_server_handled_total", {"grpc_method=\"ImportPurchases\""}));
    };
    const int64_t imports_before[2] = {imports(0), imports(1)};
    RunResult imported =
        testing::Run({testing::CtlPath(), "customers", "import", "purchases",
                      spread, "--streams", absl::StrCat(streams), "--import-id",
                      absl::StrCat("spread-", streams)},
                     env);
    ASSERT_EQ(imported.exit_code, 0) << imported.err;
    int64_t served[2] = {0, 0};
    for (int i = 0; i < 50; ++i) {
      for (int r = 0; r < 2; ++r) served[r] = imports(r) - imports_before[r];
      if (served[0] + served[1] >= streams) break;
      absl::SleepFor(absl::Milliseconds(100));
    }
    EXPECT_EQ(served[0], streams / 2) << streams << " streams";
    EXPECT_EQ(served[1], streams / 2) << streams << " streams";
  }

  // The customer service's own calls to scoring spread over both scoring
  // replicas. round_robin sends calls only to replicas it has connected to,
  // and it connects to the second in the background: refresh until both
  // have served some (a handful of refreshes; at most 20).
  const std::string scoring_service = "rapport.scoring.v1.ScoringService";
  const int64_t scored_before[2] = {
      Handled(platform_.scoring(0).metrics_addr(), scoring_service),
      Handled(platform_.scoring(1).metrics_addr(), scoring_service)};
  ASSERT_EQ(On(0, {"customers", "import", "purchases",
                   platform_.File("few.csv",
                                  "customer_ref,timestamp,amount\n"
                                  "ext:shop:1,2024-01-02T00:00:00Z,10\n"
                                  "ext:shop:2,2024-02-02T00:00:00Z,20\n")})
                .exit_code,
            0);
  bool both = false;
  for (int i = 0; i < 20 && !both; ++i) {
    RunResult refreshed =
        On(i % 2, {"customers", "refresh-scores", "--as-of",
                   "2024-12-31T00:00:00Z", "--output", "csv"});
    ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err << platform_.logs();
    both = Handled(platform_.scoring(0).metrics_addr(), scoring_service) >
               scored_before[0] &&
           Handled(platform_.scoring(1).metrics_addr(), scoring_service) >
               scored_before[1];
    if (!both) absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_TRUE(both) << "the customer service's calls reached one scoring "
                       "replica only";

  // The scoring replicas likewise, for rapportctl's scoring calls.
  const std::string t = platform_.File(
      "t.csv", "entity_id,timestamp,amount\na,2024-01-02T00:00:00Z,10\n");
  testing::Env scoring_env = platform_.CtlEnv();
  scoring_env["RAPPORT_SCORING_ADDR"] = absl::StrCat(
      platform_.scoring(0).addr(), ",", platform_.scoring(1).addr());
  const int64_t ctl_before[2] = {
      Handled(platform_.scoring(0).metrics_addr(), scoring_service),
      Handled(platform_.scoring(1).metrics_addr(), scoring_service)};
  for (int i = 0; i < 20; ++i) {
    RunResult r =
        testing::Run({testing::CtlPath(), "scoring", "rfm", "--transactions", t,
                      "--as-of", "2024-06-30T00:00:00Z"},
                     scoring_env);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Each run is one call, to a replica of its shuffled list: both served
  // some (all 20 on one has odds of 1 in 2^19), and together at least all
  // of them (the customer service may call scoring meanwhile too).
  // The counts are read once each server has counted every call it ended.
  int64_t served[2] = {0, 0};
  for (int i = 0; i < 50; ++i) {
    for (int r = 0; r < 2; ++r) {
      served[r] =
          Handled(platform_.scoring(r).metrics_addr(), scoring_service) -
          ctl_before[r];
    }
    if (served[0] + served[1] >= 20) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GT(served[0], 0);
  EXPECT_GT(served[1], 0);
  EXPECT_GE(served[0] + served[1], 20);
}

}  // namespace
}  // namespace rapport
