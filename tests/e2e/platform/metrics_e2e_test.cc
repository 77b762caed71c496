// Metrics through the real binaries: each service's Prometheus endpoint,
// fetched with curl as Prometheus would, shows its counters moving after
// calls: calls by method and code with their latency, the database pool, the
// rows of an import, a refresh job, and the customer service's calls to the
// scoring service (client side) matching what scoring served.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/platform.h"

namespace rapport {
namespace {

using testing::Platform;
using testing::RunResult;

// One scrape: series ("name{labels}" exactly as exposed) -> value.
using Scrape = std::map<std::string, double>;

Scrape Fetch(const std::string& address) {
  RunResult r = testing::Run({"/usr/bin/curl", "--silent", "--show-error",
                              "--fail", "--max-time", "10",
                              absl::StrCat("http://", address, "/metrics")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Scrape out;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "not a sample: " << line;
      continue;
    }
    out[std::string(line.substr(0, space))] = value;
  }
  return out;
}

// The sum of the series named `name` whose labels include every `labels`
// pair (written label="value").
double Sum(const Scrape& scrape, absl::string_view name,
           const std::vector<std::string>& labels = {}) {
  double sum = 0;
  for (const auto& [series, value] : scrape) {
    absl::string_view s = series;
    if (!absl::ConsumePrefix(&s, name) || (!s.empty() && s.front() != '{')) {
      continue;
    }
    bool all = true;
    for (const std::string& label : labels) all &= absl::StrContains(s, label);
    if (all) sum += value;
  }
  return sum;
}

class MetricsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(platform_.Ctl({"health", "--wait", "20s"}).exit_code, 0)
        << platform_.logs();
  }
  Platform platform_;
};

TEST_F(MetricsE2E, CallsByMethodAndCodeMoveWithEachCall) {
  const std::string customer = platform_.customer().metrics_addr();
  const Scrape before = Fetch(customer);
  const std::vector<std::string> create = {
      "grpc_service=\"rapport.customer.v1.CustomerService\"",
      "grpc_method=\"CreateCustomer\""};

  RunResult made = platform_.Ctl(
      {"customers", "create", "--display-name", "Ada", "--output", "csv"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  RunResult missing =
      platform_.Ctl({"customers", "get", "01jd8x4r2c6n7m9p0q1r2s3t4v"});
  EXPECT_NE(missing.exit_code, 0);
  testing::Env anonymous = platform_.CtlEnv();
  anonymous.erase("RAPPORT_TOKEN");
  anonymous.erase("RAPPORT_TOKEN_FILE");
  RunResult refused =
      testing::Run({testing::CtlPath(), "customers", "list"}, anonymous);
  EXPECT_NE(refused.exit_code, 0);

  const Scrape after = Fetch(customer);
  auto moved = [&](absl::string_view name,
                   const std::vector<std::string>& labels) {
    return Sum(after, name, labels) - Sum(before, name, labels);
  };
  std::vector<std::string> ok = create;
  ok.push_back("grpc_code=\"OK\"");
  EXPECT_EQ(moved("grpc_server_handled_total", ok), 1);
  EXPECT_EQ(moved("grpc_server_started_total", create), 1);
  EXPECT_EQ(moved("grpc_server_handling_seconds_count", create), 1);
  EXPECT_GT(moved("grpc_server_handling_seconds_sum", create), 0);
  EXPECT_EQ(moved("grpc_server_handled_total",
                  {"grpc_method=\"GetCustomer\"", "grpc_code=\"NotFound\""}),
            1);
  EXPECT_EQ(
      moved("grpc_server_handled_total",
            {"grpc_method=\"ListCustomers\"", "grpc_code=\"Unauthenticated\""}),
      1);
  EXPECT_EQ(moved("grpc_server_handled_total", {"grpc_type=\"unary\""}),
            moved("grpc_server_started_total", {"grpc_type=\"unary\""}));
  // The pool opened connections and none is leased between calls.
  EXPECT_GE(Sum(after, "rapport_db_pool_connections", {"state=\"open\""}), 1);
  EXPECT_EQ(Sum(after, "rapport_db_pool_connections", {"state=\"in_use\""}), 0);
  EXPECT_GT(Sum(after, "rapport_db_pool_wait_seconds_count"), 0);
}

TEST_F(MetricsE2E, ImportsRefreshesAndCallsToScoringAreCounted) {
  RunResult made = platform_.Ctl(
      {"customers", "create", "--display-name", "Ada", "--output", "csv"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string ada = testing::CsvId(made.out);
  const std::string file = platform_.File(
      "p.csv", absl::StrCat("customer_ref,timestamp,amount\n",     //
                            ada, ",2024-03-01T12:00:00Z,19.99\n",  //
                            ada, ",2024-03-02T12:00:00Z,5\n",      //
                            ada, ",2024-03-03T12:00:00Z,not-money\n"));
  RunResult imported =
      platform_.Ctl({"customers", "import", "purchases", file});
  EXPECT_EQ(imported.exit_code, 1) << imported.out << imported.err;
  RunResult refreshed = platform_.Ctl(
      {"customers", "refresh-scores", "--as-of", "2024-06-30T00:00:00Z"});
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err;

  const Scrape customer = Fetch(platform_.customer().metrics_addr());
  EXPECT_EQ(Sum(customer, "rapport_import_rows_total",
                {"import=\"purchases\"", "outcome=\"accepted\""}),
            2);
  EXPECT_EQ(Sum(customer, "rapport_import_rows_total",
                {"import=\"purchases\"", "outcome=\"rejected\""}),
            1);
  EXPECT_EQ(
      Sum(customer, "rapport_refresh_jobs_total", {"outcome=\"succeeded\""}),
      1);
  EXPECT_EQ(Sum(customer, "rapport_refresh_jobs_running"), 0);
  EXPECT_EQ(Sum(customer, "rapport_refresh_entities_total"), 1);
  EXPECT_EQ(Sum(customer, "rapport_refresh_duration_seconds_count"), 1);

  // Every call the customer service made to scoring, scoring served.
  const std::vector<std::string> to_scoring = {
      "grpc_service=\"rapport.scoring.v1.ScoringService\""};
  const double made_calls =
      Sum(customer, "grpc_client_handled_total", to_scoring);
  EXPECT_GE(made_calls, 1);
  EXPECT_EQ(Sum(customer, "grpc_client_handled_total",
                {to_scoring[0], "grpc_code=\"OK\""}),
            made_calls);
  const Scrape scoring = Fetch(platform_.scoring().metrics_addr());
  EXPECT_EQ(Sum(scoring, "grpc_server_handled_total", to_scoring), made_calls);
}

TEST_F(MetricsE2E, TheEndpointServesOnlyMetrics) {
  RunResult other =
      testing::Run({"/usr/bin/curl", "--silent", "--output", "/dev/null",
                    "--write-out", "%{http_code}", "--max-time", "10",
                    absl::StrCat("http://", platform_.customer().metrics_addr(),
                                 "/anything-else")});
  EXPECT_EQ(other.out, "404") << other.err;
}

}  // namespace
}  // namespace rapport
