// The platform as a newcomer first sees it: `deploy/local/run --demo` starts
// every service on a private MariaDB and loads the demo population, then
//   - `rapportctl overview --output json` has the three counterparts, with
//     counts and figures equal to each service's own summary, and balance
//     shares that add up to 100% per column;
//   - `rapportctl report` writes a page that headless Chromium renders with
//     its headings and charts (tests/support/render-check);
//   - a second `rapportctl demo load` refuses the platform, which holds data.
// The binaries are this build's (RAPPORT_BUILD_DIR); the data under a
// scratch RAPPORT_VAR, stopped and removed at the end.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/process.h"

namespace rapport {
namespace {

using nlohmann::json;
using testing::Env;
using testing::RunResult;

const std::string kSource = RAPPORT_SOURCE_DIR;
const std::string kBuild = RAPPORT_BINARY_DIR;

bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool in_use =
      connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return !in_use;
}

// A block of ports that deploy/local/run may use (base..base+3, metrics at
// base+200.., MariaDB at base+255), below the kernel's ephemeral range and
// below 22200, where the other tests' MariaDBs get theirs (mariadb_free_port).
int FreeBase() {
  srand(static_cast<unsigned>(getpid()));
  for (int attempt = 0; attempt < 50; ++attempt) {
    const int base = 10000 + (rand() % 40) * 300 + 150;
    bool ok = true;
    for (int off : {0, 1, 2, 3, 200, 210, 220, 230, 255}) {
      ok = ok && PortFree(base + off);
    }
    if (ok) return base;
  }
  return 0;
}

// int64 fields come as strings in protobuf's JSON, and as numbers in ours.
int64_t Int(const json& j) {
  if (j.is_number()) return j.get<int64_t>();
  int64_t n = -1;
  if (j.is_string()) (void)absl::SimpleAtoi(j.get<std::string>(), &n);
  return n;
}

// A google.type.Money in protobuf's JSON as cents.
int64_t MoneyCents(const json& m) {
  const int64_t units = m.contains("units") ? Int(m["units"]) : 0;
  const int64_t nanos = m.contains("nanos") ? m["nanos"].get<int64_t>() : 0;
  return units * 100 + nanos / 10'000'000;
}

// "1234.50" as cents.
int64_t TextCents(const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(text, '.');
  int64_t units = 0, cents = 0;
  EXPECT_TRUE(absl::SimpleAtoi(parts[0], &units)) << text;
  if (parts.size() > 1) {
    EXPECT_TRUE(absl::SimpleAtoi(parts[1].substr(0, 2), &cents)) << text;
  }
  return units * 100 + (units < 0 || text[0] == '-' ? -cents : cents);
}

// A group of the overview (our JSON) against the service's GroupSummary
// (protobuf's JSON, field names as in the proto).
void ExpectSameGroup(const json& ours, const json& service) {
  SCOPED_TRACE(service.dump());
  EXPECT_EQ(Int(ours["entities"]), Int(service["entities"]));
  EXPECT_EQ(TextCents(ours["monetary"]), MoneyCents(service["monetary"]));
  EXPECT_EQ(TextCents(ours["cost_to_serve"]),
            MoneyCents(service["cost_to_serve"]));
  EXPECT_EQ(TextCents(ours["profit"]), MoneyCents(service["profit"]));
  EXPECT_EQ(TextCents(ours["value_sum"]),
            service.contains("value_hundredths_sum")
                ? Int(service["value_hundredths_sum"])
                : 0);
  EXPECT_EQ(TextCents(ours["average_value"]),
            service.contains("average_value_hundredths")
                ? Int(service["average_value_hundredths"])
                : 0);
}

class DemoE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    var_ = new testing::TempDir();
    base_ = FreeBase();
    ASSERT_NE(base_, 0) << "no free block of ports";
    env_ =
        new Env{{"RAPPORT_VAR", var_->path()}, {"RAPPORT_BUILD_DIR", kBuild}};
    RunResult run = testing::Run({kSource + "/deploy/local/run", "--detach",
                                  "--base-port", absl::StrCat(base_), "--demo"},
                                 *env_);
    run_out_ = new std::string(run.out + run.err);
    ASSERT_EQ(run.exit_code, 0) << *run_out_;
    // rapportctl as a newcomer uses it: platform.env and the operator token.
    for (absl::string_view line : absl::StrSplit(
             testing::ReadFile(var_->path() + "/run/platform.env"), '\n')) {
      const size_t eq = line.find('=');
      if (eq == absl::string_view::npos || absl::StartsWith(line, "#")) {
        continue;
      }
      (*env_)[std::string(line.substr(0, eq))] =
          std::string(line.substr(eq + 1));
    }
    (*env_)["RAPPORT_TOKEN_FILE"] = var_->path() + "/auth/operator.token";
  }
  static void TearDownTestSuite() {
    if (env_ != nullptr) {
      testing::Run({kSource + "/deploy/local/stop"}, *env_);
    }
    delete var_;
    delete env_;
    delete run_out_;
  }
  void SetUp() override {
    if (HasFatalFailure() || run_out_ == nullptr) GTEST_SKIP();
  }

  static RunResult Ctl(std::vector<std::string> args) {
    args.insert(args.begin(), kBuild + "/tools/rapportctl/rapportctl");
    return testing::Run(args, *env_);
  }
  static json CtlJson(std::vector<std::string> args) {
    args.push_back("--output");
    args.push_back("json");
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  }

  static testing::TempDir* var_;
  static Env* env_;
  static std::string* run_out_;
  static int base_;
};

testing::TempDir* DemoE2E::var_ = nullptr;
Env* DemoE2E::env_ = nullptr;
std::string* DemoE2E::run_out_ = nullptr;
int DemoE2E::base_ = 0;

TEST_F(DemoE2E, TheRunPrintsTheOverviewOfThreeCounterparts) {
  EXPECT_TRUE(absl::StrContains(*run_out_, "Balance by tier")) << *run_out_;
  EXPECT_TRUE(absl::StrContains(*run_out_, "Financial community"));
}

TEST_F(DemoE2E, OverviewAgreesWithEachServicesSummary) {
  const json o = CtlJson({"overview"});
  ASSERT_FALSE(o.is_discarded());
  ASSERT_EQ(o["counterparts"].size(), 3u);
  const std::vector<std::pair<std::string, std::string>> services = {
      {"customers", "customers"},
      {"partners", "partners"},
      {"community", "community"}};
  for (size_t i = 0; i < services.size(); ++i) {
    const json& c = o["counterparts"][i];
    SCOPED_TRACE(services[i].first);
    EXPECT_EQ(c["counterpart"], services[i].first);
    ASSERT_TRUE(c["available"].get<bool>()) << c.dump();
    const json s = CtlJson({services[i].second, "summarize"});
    ASSERT_FALSE(s.is_discarded());
    EXPECT_GT(Int(c["entities"]), 0);
    EXPECT_EQ(Int(c["entities"]), Int(s["entities"]));
    EXPECT_GT(Int(c["scored"]), 0);
    EXPECT_EQ(Int(c["scored"]), Int(s["total"]["entities"]));
    // The refresh the figures are of, and as of when (the demo's customers
    // are scored as of the end of their log, the others as of today).
    EXPECT_EQ(c["model_id"], s["model_id"]);
    EXPECT_TRUE(absl::EndsWith(c["as_of"].get<std::string>(), "Z")) << c.dump();
    ExpectSameGroup(c["total"], s["total"]);
    // Each tier and segment the service names, with the same figures.
    for (const char* groups : {"tiers", "segments"}) {
      for (const json& t : s[groups]) {
        bool found = false;
        for (const json& ct : c[groups]) {
          if (ct["name"] != t["name"]) continue;
          found = true;
          ExpectSameGroup(ct, t);
        }
        EXPECT_TRUE(found) << t.dump();
      }
    }
  }
  if (access((kSource + "/../shared/data/cdnow/CDNOW_master.txt").c_str(),
             R_OK) == 0) {
    // The customers are the CDNOW log's.
    EXPECT_EQ(Int(o["counterparts"][0]["entities"]), 23570);
  }
}

// Percentages with two decimals, "12.34", as hundredths.
int64_t Hundredths(const json& text) { return TextCents(text); }

TEST_F(DemoE2E, BalanceSharesAddUpToOneHundredPercentPerColumn) {
  const json o = CtlJson({"overview"});
  ASSERT_FALSE(o.is_discarded());
  const std::vector<std::string> columns = {
      "value_share_percent", "monetary_share_percent", "cost_share_percent"};
  // counterpart -> column -> sum of its tiers' shares
  std::map<std::string, std::map<std::string, int64_t>> sums;
  for (const json& row : o["balance"]) {
    for (const std::string& column : columns) {
      sums[row["counterpart"]][column] += Hundredths(row[column]);
    }
  }
  EXPECT_EQ(sums.size(), 3u);
  for (const auto& [name, by_column] : sums) {
    for (const std::string& column : columns) {
      EXPECT_EQ(by_column.at(column), 10000) << name << " " << column;
    }
  }
  EXPECT_EQ(o["across"].size(), 3u);
  for (const std::string& column : columns) {
    int64_t sum = 0;
    for (const json& row : o["across"]) sum += Hundredths(row[column]);
    EXPECT_EQ(sum, 10000) << column;
  }
}

TEST_F(DemoE2E, TheReportRendersInHeadlessChromium) {
  testing::TempDir out;
  const std::string page = out.File("report.html");
  RunResult r = Ctl({"report", "--out", page});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string html = testing::ReadFile(page);
  EXPECT_FALSE(absl::StrContains(html, "<script"));
  // The demo's deal conflicts and engagement targets are on the page.
  EXPECT_TRUE(absl::StrContains(html, "class=\"conflict\"")) << html;
  EXPECT_FALSE(absl::StrContains(html, "Deal conflicts: none"));
  EXPECT_FALSE(absl::StrContains(html, "Deal conflicts: unavailable"));
  const json targets = CtlJson({"community", "targets", "--limit", "3"});
  ASSERT_FALSE(targets.is_discarded());
  ASSERT_FALSE(targets["targets"].empty());
  EXPECT_TRUE(absl::StrContains(
      html, targets["targets"][0]["member_id"].get<std::string>()));
  RunResult check = testing::Run(
      {kSource + "/tests/support/render-check", page, out.path(),
       "--expect-heading", "Balance across counterparts", "--expect-heading",
       "Customers", "--expect-heading", "Partners", "--expect-heading",
       "Financial community", "--expect-heading", "Whom to meet next",
       "--expect-heading", "Deal conflicts to review", "--min-charts", "10"});
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;

  // With the peer securities named, the page's targets are those of
  // `community targets` with the same peers: the peers' holders count.
  const std::string with_peers = out.File("peers.html");
  RunResult p = Ctl({"report", "--out", with_peers, "--peer", "KNDL", "--peer",
                     "LYLT", "--targets", "3"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::string peers_html = testing::ReadFile(with_peers);
  const json peer_targets = CtlJson({"community", "targets", "--limit", "3",
                                     "--peer", "KNDL", "--peer", "LYLT"});
  ASSERT_FALSE(peer_targets.is_discarded());
  ASSERT_FALSE(peer_targets["targets"].empty());
  for (const json& t : peer_targets["targets"]) {
    EXPECT_TRUE(
        absl::StrContains(peers_html, t["member_id"].get<std::string>()))
        << t;
  }
  // And a target of the list without peers that the peers push out is not
  // on the page (so the page did not ignore --peer).
  std::set<std::string> with_peers_ids;
  for (const json& t : peer_targets["targets"])
    with_peers_ids.insert(t["member_id"].get<std::string>());
  std::string pushed_out;
  for (const json& t : targets["targets"]) {
    if (with_peers_ids.count(t["member_id"].get<std::string>()) == 0) {
      pushed_out = t["member_id"].get<std::string>();
      break;
    }
  }
  ASSERT_FALSE(pushed_out.empty()) << "the peers changed no target";
  EXPECT_FALSE(absl::StrContains(peers_html, pushed_out)) << pushed_out;
}

TEST_F(DemoE2E, AServiceThatDoesNotAnswerIsShownAsUnavailable) {
  // Nothing listens on the port below the platform's base port.
  RunResult r = Ctl({"overview", "--output", "json", "--community-addr",
                     absl::StrCat("127.0.0.1:", base_ - 1)});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const json o = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(o.is_discarded()) << r.out;
  ASSERT_EQ(o["counterparts"].size(), 3u);
  EXPECT_TRUE(o["counterparts"][0]["available"].get<bool>());
  EXPECT_TRUE(o["counterparts"][1]["available"].get<bool>());
  EXPECT_FALSE(o["counterparts"][2]["available"].get<bool>());
  EXPECT_TRUE(absl::StartsWith(o["counterparts"][2]["error"].get<std::string>(),
                               "UNAVAILABLE"));
  // The balance of the other two still adds up.
  EXPECT_EQ(o["across"].size(), 2u);
  EXPECT_TRUE(absl::StrContains(r.err, "Financial community unavailable"));
}

// A port that takes connections and never answers: a service frozen
// (SIGSTOP, a hung host), as its callers see it.
class SilentListener {
 public:
  SilentListener() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(a);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&a), size), 0);
    EXPECT_EQ(listen(fd_, 64), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &size), 0);
    address_ = absl::StrCat("127.0.0.1:", ntohs(a.sin_port));
  }
  ~SilentListener() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  const int fd_;
  std::string address_;
};

// Two services that hang cost the overview one timeout, not one each, and
// the report asks them nothing more after their summaries: asked one after
// another, the overview would take two timeouts (10 s here) and the report
// four.
TEST_F(DemoE2E, ServicesThatHangCostOneTimeoutNotOneEach) {
  const SilentListener partner, community;
  const std::vector<std::string> hanging = {
      "--timeout",        "5s",
      "--partner-addr",   partner.address(),
      "--community-addr", community.address()};
  std::vector<std::string> overview = {"overview", "--output", "json"};
  overview.insert(overview.end(), hanging.begin(), hanging.end());
  absl::Time start = absl::Now();
  RunResult r = Ctl(overview);
  const absl::Duration overview_took = absl::Now() - start;
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const json o = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(o.is_discarded()) << r.out;
  ASSERT_EQ(o["counterparts"].size(), 3u);
  EXPECT_TRUE(o["counterparts"][0]["available"].get<bool>());
  for (int i : {1, 2}) {
    EXPECT_FALSE(o["counterparts"][i]["available"].get<bool>());
    EXPECT_TRUE(absl::StartsWith(
        o["counterparts"][i]["error"].get<std::string>(), "DEADLINE_EXCEEDED"))
        << o["counterparts"][i]["error"];
  }
  EXPECT_LT(overview_took, absl::Seconds(9));

  const std::string page = var_->path() + "/hanging.html";
  std::vector<std::string> report = {"report", "--out", page};
  report.insert(report.end(), hanging.begin(), hanging.end());
  start = absl::Now();
  RunResult written = Ctl(report);
  const absl::Duration report_took = absl::Now() - start;
  EXPECT_EQ(written.exit_code, 1) << written.err;
  EXPECT_TRUE(absl::StrContains(
      written.err,
      "the financial community's targets unavailable: its service did not "
      "answer"))
      << written.err;
  EXPECT_TRUE(absl::StrContains(
      written.err,
      "the partner deal conflicts unavailable: their service did not answer"))
      << written.err;
  EXPECT_TRUE(absl::StrContains(testing::ReadFile(page), "Customers"));
  EXPECT_LT(report_took, absl::Seconds(9));
}

TEST_F(DemoE2E, TheDemoRefusesAPlatformThatHoldsData) {
  const json before = CtlJson({"overview"});
  RunResult r = Ctl({"demo", "load"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "FAILED_PRECONDITION")) << r.err;
  // Refused by the emptiness check, naming what each service holds (not
  // by a later step that happened to fail on data already there).
  EXPECT_TRUE(absl::StrContains(r.err, "the demo loads into an empty platform"))
      << r.err;
  for (const char* holds :
       {"already holds customers", "already holds partners",
        "already holds members", "already holds programs"}) {
    EXPECT_TRUE(absl::StrContains(r.err, holds)) << holds << ": " << r.err;
  }
  // Nothing was added, and no refresh was run.
  const json after = CtlJson({"overview"});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Int(after["counterparts"][i]["entities"]),
              Int(before["counterparts"][i]["entities"]));
    EXPECT_EQ(after["counterparts"][i]["model_id"],
              before["counterparts"][i]["model_id"]);
  }
}

// The demo decides the funds it requests itself, which takes force: a
// writer's token is refused before anything is looked at or written.
TEST_F(DemoE2E, TheDemoRefusesATokenWithoutTheAdminRole) {
  RunResult token =
      Ctl({"auth", "token", "--key", var_->path() + "/auth/signing-key.pem",
           "--role", "writer", "--subject", "demo-writer"});
  ASSERT_EQ(token.exit_code, 0) << token.err;
  const json before = CtlJson({"overview"});
  RunResult r = Ctl({"demo", "load", "--token",
                     std::string(absl::StripAsciiWhitespace(token.out))});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "PERMISSION_DENIED")) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "admin")) << r.err;
  const json after = CtlJson({"overview"});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Int(after["counterparts"][i]["entities"]),
              Int(before["counterparts"][i]["entities"]));
  }
}

}  // namespace
}  // namespace rapport
