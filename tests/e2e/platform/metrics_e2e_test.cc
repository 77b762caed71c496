// Metrics through the real binaries: each service's Prometheus endpoint,
// fetched with curl as Prometheus would, shows its counters moving after
// calls: calls by method and code with their latency, the database pool, the
// rows of an import, a refresh job, and the customer service's calls to the
// scoring service (client side) matching what scoring served.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tests/support/mariadb.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/platform.h"
#include "tests/support/raw_call.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

using testing::Platform;
using testing::RunResult;

using testing::FetchMetrics;
using testing::Scrape;
using testing::SumOf;

// A scrape once the refresh the caller saw end has been counted: the job's
// thread counts it just after it stores the job's end, which rapportctl may
// read first (polled for up to 30 s; the last scrape either way).
Scrape FetchAfterRefresh(const std::string& address) {
  Scrape scrape = FetchMetrics(address);
  for (int i = 0; i < 300; ++i) {
    if (SumOf(scrape, "rapport_refresh_jobs_running") == 0 &&
        SumOf(scrape, "rapport_refresh_jobs_total",
              {"outcome=\"succeeded\""}) >= 1) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
    scrape = FetchMetrics(address);
  }
  return scrape;
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
  const Scrape before = FetchMetrics(customer);
  // Every method's series are there from the start, each status code's
  // count at zero until it happens (as go-grpc-prometheus makes them), so
  // that a rate of errors reads 0 rather than nothing.
  // The handled-call series of `method` in `family`, each at zero and of
  // `type`; how many (one per status code).
  auto zero_codes = [&](absl::string_view family, absl::string_view method,
                        absl::string_view type) {
    int codes = 0;
    for (const auto& [series, value] : before) {
      if (absl::StartsWith(series, absl::StrCat(family, "{")) &&
          absl::StrContains(series,
                            absl::StrCat("grpc_method=\"", method, "\""))) {
        ++codes;
        EXPECT_EQ(value, 0) << series;
        EXPECT_TRUE(
            absl::StrContains(series, absl::StrCat("grpc_type=\"", type, "\"")))
            << series;
      }
    }
    return codes;
  };
  EXPECT_EQ(zero_codes("grpc_server_handled_total", "ImportPurchases",
                       "client_stream"),
            17);
  // So are those of the calls it makes to scoring, none made yet.
  EXPECT_EQ(
      zero_codes("grpc_client_handled_total", "ScorePopulation", "bidi_stream"),
      17);
  ASSERT_EQ(before.count("rapport_refresh_jobs_total{outcome=\"failed\"}"), 1);
  EXPECT_EQ(before.at("rapport_refresh_jobs_total{outcome=\"failed\"}"), 0);
  EXPECT_EQ(
      before.count("grpc_server_started_total{grpc_method=\"EraseCustomer\","
                   "grpc_service=\"rapport.customer.v1.CustomerService\","
                   "grpc_type=\"unary\"}"),
      1);
  const std::vector<std::string> create = {
      "grpc_service=\"rapport.customer.v1.CustomerService\"",
      "grpc_method=\"CreateCustomer\""};

  RunResult made = platform_.Ctl(
      {"customers", "create", "--display-name", "Ada", "--output", "csv"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // A call of the callback API answered: its message counts as sent too.
  RunResult got = platform_.Ctl({"customers", "get", testing::CsvId(made.out)});
  ASSERT_EQ(got.exit_code, 0) << got.err;
  RunResult missing =
      platform_.Ctl({"customers", "get", "01jd8x4r2c6n7m9p0q1r2s3t4v"});
  EXPECT_NE(missing.exit_code, 0);
  testing::Env anonymous = platform_.CtlEnv();
  anonymous.erase("RAPPORT_TOKEN");
  anonymous.erase("RAPPORT_TOKEN_FILE");
  RunResult refused =
      testing::Run({testing::CtlPath(), "customers", "list"}, anonymous);
  EXPECT_NE(refused.exit_code, 0);

  const Scrape after = FetchMetrics(customer);
  auto moved = [&](absl::string_view name,
                   const std::vector<std::string>& labels) {
    return SumOf(after, name, labels) - SumOf(before, name, labels);
  };
  std::vector<std::string> ok = create;
  ok.push_back("grpc_code=\"OK\"");
  EXPECT_EQ(moved("grpc_server_handled_total", ok), 1);
  EXPECT_EQ(moved("grpc_server_started_total", create), 1);
  EXPECT_EQ(moved("grpc_server_msg_received_total", create), 1);
  EXPECT_EQ(moved("grpc_server_msg_sent_total", create), 1);
  EXPECT_EQ(
      moved("grpc_server_msg_sent_total", {"grpc_method=\"GetCustomer\""}),
      1);  // the one found; the missing one sent no message
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
  EXPECT_GE(SumOf(after, "rapport_db_pool_connections", {"state=\"open\""}), 1);
  EXPECT_EQ(SumOf(after, "rapport_db_pool_connections", {"state=\"in_use\""}),
            0);
  EXPECT_GT(SumOf(after, "rapport_db_pool_wait_seconds_count"), 0);
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

  const Scrape customer =
      FetchAfterRefresh(platform_.customer().metrics_addr());
  EXPECT_EQ(SumOf(customer, "rapport_import_rows_total",
                  {"import=\"purchases\"", "outcome=\"accepted\""}),
            2);
  EXPECT_EQ(SumOf(customer, "rapport_import_rows_total",
                  {"import=\"purchases\"", "outcome=\"rejected\""}),
            1);
  EXPECT_EQ(
      SumOf(customer, "rapport_refresh_jobs_total", {"outcome=\"succeeded\""}),
      1);
  EXPECT_EQ(SumOf(customer, "rapport_refresh_jobs_running"), 0);
  EXPECT_EQ(SumOf(customer, "rapport_refresh_entities_total"), 1);
  EXPECT_EQ(SumOf(customer, "rapport_refresh_duration_seconds_count"), 1);

  // Every call the customer service made to scoring, scoring served.
  const std::vector<std::string> to_scoring = {
      "grpc_service=\"rapport.scoring.v1.ScoringService\""};
  const double made_calls =
      SumOf(customer, "grpc_client_handled_total", to_scoring);
  EXPECT_GE(made_calls, 1);
  EXPECT_EQ(SumOf(customer, "grpc_client_handled_total",
                  {to_scoring[0], "grpc_code=\"OK\""}),
            made_calls);
  const Scrape scoring = FetchMetrics(platform_.scoring().metrics_addr());
  EXPECT_EQ(SumOf(scoring, "grpc_server_handled_total", to_scoring),
            made_calls);
  // And every message it sent them, they received.
  EXPECT_GE(SumOf(customer, "grpc_client_msg_sent_total", to_scoring), 1);
  EXPECT_EQ(SumOf(customer, "grpc_client_msg_sent_total", to_scoring),
            SumOf(scoring, "grpc_server_msg_received_total", to_scoring));
}

// Every series of Rapport's own that the shipped Grafana dashboard plots
// (deploy/k8s/components/monitoring) is one the services expose, after the
// calls, import and refresh above: a renamed metric would leave a panel
// empty without any error. (The container_ and kube_ series are the
// cluster's.)
TEST_F(MetricsE2E, EverySeriesTheDashboardPlotsIsExposed) {
  std::ifstream in(testing::SourceDir() +
                   "/deploy/k8s/components/monitoring/rapport-dashboard.json");
  ASSERT_TRUE(in.is_open());
  const std::string dashboard((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
  // Names followed by a label selector: rapport_... { and grpc_... {.
  std::set<std::string> plotted;
  auto name_char = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  };
  for (size_t i = 0; i < dashboard.size(); ++i) {
    if ((i > 0 && name_char(dashboard[i - 1])) ||
        (dashboard.compare(i, 8, "rapport_") != 0 &&
         dashboard.compare(i, 5, "grpc_") != 0)) {
      continue;
    }
    size_t end = i;
    while (end < dashboard.size() && name_char(dashboard[end])) ++end;
    if (end < dashboard.size() && dashboard[end] == '{') {
      plotted.insert(dashboard.substr(i, end - i));
    }
    i = end;
  }
  ASSERT_GE(plotted.size(), 10u) << "the dashboard's queries were not found";

  RunResult made = platform_.Ctl(
      {"customers", "create", "--display-name", "Ada", "--output", "csv"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string ada = testing::CsvId(made.out);
  const std::string file = platform_.File(
      "p.csv", absl::StrCat("customer_ref,timestamp,amount\n", ada,
                            ",2024-03-01T12:00:00Z,19.99\n"));
  ASSERT_EQ(platform_.Ctl({"customers", "import", "purchases", file}).exit_code,
            0);
  ASSERT_EQ(platform_
                .Ctl({"customers", "refresh-scores", "--as-of",
                      "2024-06-30T00:00:00Z"})
                .exit_code,
            0);
  std::set<std::string> exposed;
  for (const Scrape& scrape :
       {FetchAfterRefresh(platform_.customer().metrics_addr()),
        FetchMetrics(platform_.scoring().metrics_addr())}) {
    for (const auto& [series, value] : scrape) {
      exposed.insert(series.substr(0, series.find('{')));
    }
  }
  for (const std::string& series : plotted) {
    EXPECT_TRUE(exposed.contains(series))
        << series << " is plotted, not exposed";
  }
}

// The partner and financial-community services count the same things on
// their own endpoints: their calls, imports, refreshes, pool and calls to
// scoring.
class CounterpartMetricsE2E : public ::testing::Test {
 protected:
  static testing::PlatformOptions Options() {
    testing::PlatformOptions o;
    o.customer = false;
    o.partner = true;
    o.community = true;
    return o;
  }
  void SetUp() override {
    for (const std::string& addr :
         {platform_.partner().addr(), platform_.community().addr()}) {
      ASSERT_EQ(
          platform_.Ctl({"health", "--wait", "20s", "--addr", addr}).exit_code,
          0)
          << platform_.logs();
    }
  }
  Platform platform_{Options()};
};

TEST_F(CounterpartMetricsE2E,
       PartnerAndCommunityCountTheirImportsRefreshesAndCalls) {
  RunResult deals = platform_.Ctl(
      {"partners", "import", "deals",
       platform_.File(
           "deals.csv",
           "partner_ref,deal_id,account,amount,registered_at,state,closed_at\n"
           "ext:crm:P1,D1,Globex,1200,2024-01-10T00:00:00Z,won,"
           "2024-02-01T00:00:00Z\n"
           "ext:crm:P2,D2,Initech,300,2024-03-01T00:00:00Z,won,"
           "2024-03-20T00:00:00Z\n"
           "ext:crm:P3,D3,Hooli,12;5,2024-02-01T00:00:00Z,won,"
           "2024-03-01T00:00:00Z\n")});
  EXPECT_EQ(deals.exit_code, 1) << deals.out << deals.err;
  RunResult partners_refreshed = platform_.Ctl(
      {"partners", "refresh-scores", "--as-of", "2024-06-30T00:00:00Z"});
  ASSERT_EQ(partners_refreshed.exit_code, 0) << partners_refreshed.err;

  RunResult holdings =
      platform_.Ctl({"community", "import", "holdings",
                     platform_.File("holdings.csv",
                                    "member_ref,security,date,shares,price\n"
                                    "ext:13f:1,ACME,2024-03-31,100,12\n"
                                    "ext:13f:2,ACME,2024-03-32,100,12\n")});
  EXPECT_EQ(holdings.exit_code, 1) << holdings.out << holdings.err;
  RunResult engagements = platform_.Ctl(
      {"community", "import", "engagements",
       platform_.File("engagements.csv",
                      "member_ref,timestamp,kind,cost\n"
                      "ext:13f:1,2024-04-02T10:00:00Z,meeting,300\n")});
  EXPECT_EQ(engagements.exit_code, 0) << engagements.out << engagements.err;
  RunResult members_refreshed = platform_.Ctl(
      {"community", "refresh-scores", "--as-of", "2024-06-30T00:00:00Z"});
  ASSERT_EQ(members_refreshed.exit_code, 0) << members_refreshed.err;

  const std::vector<std::string> to_scoring = {
      "grpc_service=\"rapport.scoring.v1.ScoringService\""};
  for (const auto& [address, service, rows] :
       std::vector<std::tuple<std::string, std::string,
                              std::vector<std::tuple<std::string, int, int>>>>{
           {platform_.partner().metrics_addr(),
            "rapport.partner.v1.PartnerService",
            {{"deals", 2, 1}}},
           {platform_.community().metrics_addr(),
            "rapport.financial_community.v1.FinancialCommunityService",
            {{"holdings", 1, 1}, {"engagements", 1, 0}}}}) {
    const Scrape scrape = FetchAfterRefresh(address);
    for (const auto& [kind, accepted, rejected] : rows) {
      const std::string import = absl::StrCat("import=\"", kind, "\"");
      EXPECT_EQ(SumOf(scrape, "rapport_import_rows_total",
                      {import, "outcome=\"accepted\""}),
                accepted)
          << service << " " << kind;
      EXPECT_EQ(SumOf(scrape, "rapport_import_rows_total",
                      {import, "outcome=\"rejected\""}),
                rejected)
          << service << " " << kind;
    }
    EXPECT_GE(SumOf(scrape, "grpc_server_handled_total",
                    {absl::StrCat("grpc_service=\"", service, "\""),
                     "grpc_code=\"OK\""}),
              2)
        << service;
    EXPECT_EQ(
        SumOf(scrape, "rapport_refresh_jobs_total", {"outcome=\"succeeded\""}),
        1)
        << service;
    EXPECT_EQ(SumOf(scrape, "rapport_refresh_jobs_running"), 0) << service;
    EXPECT_GE(SumOf(scrape, "rapport_refresh_entities_total"), 1) << service;
    EXPECT_GE(SumOf(scrape, "rapport_db_pool_connections", {"state=\"open\""}),
              1)
        << service;
    EXPECT_GE(SumOf(scrape, "grpc_client_handled_total",
                    {to_scoring[0], "grpc_code=\"OK\""}),
              1)
        << service;
  }
}

// A JWKS file that can no longer be read keeps the keys read before trusted
// (calls go on), and the service says so: in its log, and as a gauge, with
// no call needed to notice. Readable again, the gauge goes back to 0.
TEST(KeysE2E, AnUnreadableKeyFileIsReportedWhileTheOldKeysStayTrusted) {
  testing::TempDir dir;
  const std::string jwks = dir.File("jwks.json");
  testing::WriteFile(jwks,
                     testing::ReadFile(testing::TestAuth::Get().jwks_file()));
  testing::ServerProcess scoring(
      testing::BinaryDir() + "/services/scoring/rapport-scoring", {},
      {"--jwks_file=" + jwks});
  auto stale = [&] {
    return SumOf(FetchMetrics(scoring.metrics_addr()),
                 "rapport_auth_keys_stale");
  };
  EXPECT_EQ(stale(), 0);
  testing::WriteFile(jwks, R"({"keys":[)");  // as if half written
  for (int i = 0; i < 150 && stale() != 1; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(stale(), 1) << scoring.log();
  EXPECT_TRUE(absl::StrContains(scoring.log(), "cannot read the keys again"))
      << scoring.log();
  // The keys read before still let callers in.
  grpc::Status call = testing::CallRaw(
      scoring.addr(), "/rapport.scoring.v1.ScoringService/ScoreEntity",
      testing::TestAuth::Get().Bearer("reader"));
  EXPECT_EQ(call.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << call.error_message();
  testing::WriteFile(jwks,
                     testing::ReadFile(testing::TestAuth::Get().jwks_file()));
  for (int i = 0; i < 150 && stale() != 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(stale(), 0) << scoring.log();
  EXPECT_TRUE(absl::StrContains(scoring.log(), "keys read again"))
      << scoring.log();
}

TEST_F(MetricsE2E, TheEndpointServesOnlyMetrics) {
  RunResult other =
      testing::Run({"/usr/bin/curl", "--silent", "--output", "/dev/null",
                    "--write-out", "%{http_code}", "--max-time", "10",
                    absl::StrCat("http://", platform_.customer().metrics_addr(),
                                 "/anything-else")});
  EXPECT_EQ(other.out, "404") << other.err;
}

// Calls to methods the server does not serve (any path a client makes up)
// are counted under one "unknown" method: a caller cannot add series to the
// metrics, and so grow the server's memory, by inventing paths.
TEST_F(MetricsE2E, MadeUpMethodsAreCountedAsOneUnknownMethod) {
  const std::string customer = platform_.customer().metrics_addr();
  const std::vector<std::string> unknown = {"grpc_service=\"unknown\"",
                                            "grpc_method=\"unknown\""};
  const double before =
      SumOf(FetchMetrics(customer), "grpc_server_handled_total", unknown);
  for (int i = 0; i < 5; ++i) {
    for (const std::string& path :
         {absl::StrCat("/made.up.Service", i, "/Call"),
          absl::StrCat("/rapport.customer.v1.CustomerService/NoSuch", i)}) {
      const grpc::Status s =
          testing::CallRaw(platform_.customer().addr(), path, "");
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << path;
    }
  }
  Scrape after;
  for (int i = 0; i < 50; ++i) {  // counted once each call has ended
    after = FetchMetrics(customer);
    if (SumOf(after, "grpc_server_handled_total", unknown) >= before + 10)
      break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(SumOf(after, "grpc_server_handled_total", unknown), before + 10);
  for (const auto& [series, value] : after) {
    EXPECT_FALSE(absl::StrContains(series, "made.up") ||
                 absl::StrContains(series, "NoSuch"))
        << series;
  }
  // A method it serves keeps its own name.
  EXPECT_GT(
      SumOf(after, "grpc_server_started_total", {"grpc_method=\"Check\""}), 0);
}

// A call that ended before its answer is counted with what its client got,
// not with what the handler answered too late: here the client's deadline
// passed while the database did not answer, and the handler found the
// customer missing once it did.
TEST(CallEndMetricsE2E, ACallPastItsClientsDeadlineCountsAsDeadlineExceeded) {
  std::unique_ptr<testing::TestMariaDb> db =
      testing::TestMariaDb::StartPrivate();
  testing::PlatformOptions options;
  options.customer_database = db->CreateDatabase();
  Platform platform(options);
  ASSERT_EQ(platform.Ctl({"health", "--wait", "20s"}).exit_code, 0)
      << platform.logs();
  namespace v1 = ::rapport::customer::v1;
  std::unique_ptr<v1::CustomerService::Stub> stub =
      v1::CustomerService::NewStub(
          *MakeChannel(platform.customer().addr(), {}));
  const auto get = [&](std::chrono::milliseconds deadline) {
    testing::AuthorizedContext context("reader");
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    v1::GetCustomerRequest request;
    request.set_id("01jd8x4r2c6n7m9p0q1r2s3t4v");
    v1::GetCustomerResponse response;
    return stub->GetCustomer(&context, request, &response);
  };
  ASSERT_EQ(get(std::chrono::seconds(10)).error_code(),
            grpc::StatusCode::NOT_FOUND);
  const std::string metrics = platform.customer().metrics_addr();
  const std::vector<std::string> method = {"grpc_method=\"GetCustomer\""};
  const Scrape before = FetchMetrics(metrics);
  db->Pause();
  const grpc::Status late = get(std::chrono::milliseconds(500));
  db->Resume();
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << late.error_message();
  Scrape after;
  for (int i = 0; i < 100; ++i) {  // counted once the handler has answered
    after = FetchMetrics(metrics);
    if (SumOf(after, "grpc_server_handled_total", method) >=
        SumOf(before, "grpc_server_handled_total", method) + 1) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  auto moved = [&](const std::string& code) {
    std::vector<std::string> labels = method;
    labels.push_back(absl::StrCat("grpc_code=\"", code, "\""));
    return SumOf(after, "grpc_server_handled_total", labels) -
           SumOf(before, "grpc_server_handled_total", labels);
  };
  EXPECT_EQ(moved("DeadlineExceeded"), 1);
  EXPECT_EQ(moved("NotFound"), 0);
}

}  // namespace
}  // namespace rapport
