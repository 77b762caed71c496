// Differentiation end to end: the real rapport-customer and rapport-scoring on
// a real MariaDB, driven through rapportctl. The stored values that a refresh
// exports must equal, byte for byte, what `rapportctl scoring rfm` computes
// from the same purchases and interaction costs written as CSV (for ids that
// no spreadsheet would take for a formula, which the export guards).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/decimal.h"
#include "common/base/timestamp.h"
#include "tests/support/mariadb.h"
#include "tests/support/platform.h"
#include "tests/support/process.h"
#include "tests/support/server.h"

namespace rapport {
namespace {

using testing::BinaryDir;
using testing::Lines;
using testing::Process;
using testing::Run;
using testing::RunResult;
using testing::TempDir;
using testing::TestMariaDb;

using Server = testing::ServerProcess;

using testing::Platform;

std::vector<std::string> Fields(const std::string& line) {
  return absl::StrSplit(line, ',');
}

constexpr char kAsOf[] = "2024-06-01T00:00:00Z";

struct Event {
  std::string customer;  // a letter, mapped to the Rapport id
  std::string time;
  std::string amount;
};

class CustomerScoresE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(p_.Ctl({"health", "--wait", "20s"}).exit_code, 0)
        << p_.customer().log();
    ASSERT_EQ(p_.Ctl({"health", "--wait", "20s", "--addr", p_.scoring().addr()})
                  .exit_code,
              0);
  }

  // Customers a..g; all but e have an id from "shop" (in reverse order of
  // theirs, so the two key orders differ).
  void CreateCustomers() {
    const std::string letters = "abcdefg";
    for (size_t i = 0; i < letters.size(); ++i) {
      const std::string name(1, letters[i]);
      std::vector<std::string> args = {
          "customers", "create", "--display-name", name, "--output", "csv"};
      if (name != "e") {
        args.push_back("--external-id");
        args.push_back(absl::StrCat("shop:S-", 9 - i));
      }
      RunResult r = p_.Ctl(args);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      ids_[name] = testing::CsvId(r.out);
      ASSERT_EQ(ids_[name].size(), 26u) << r.out;
      if (name != "e") shop_ids_[ids_[name]] = absl::StrCat("S-", 9 - i);
    }
  }

  void Record(const std::vector<Event>& purchases,
              const std::vector<Event>& costs) {
    for (const Event& e : purchases) {
      RunResult r =
          p_.Ctl({"purchases", "record", "--customer", ids_[e.customer],
                  "--amount", e.amount, "--time", e.time});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      purchases_.push_back(e);
    }
    for (const Event& e : costs) {
      RunResult r = p_.Ctl({"customers", "interactions", "log", "--customer",
                            ids_[e.customer], "--channel", "email", "--cost",
                            e.amount, "--time", e.time, "--force"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      costs_.push_back(e);
    }
  }

  // `rapportctl scoring rfm` on the same data, written as CSV.
  std::string ScoringRfm(const std::vector<std::string>& flags) {
    std::string t = "entity_id,timestamp,amount\n", e = "entity_id\n",
                i = "entity_id,timestamp,cost\n";
    for (const Event& x : purchases_)
      absl::StrAppend(&t, ids_[x.customer], ",", x.time, ",", x.amount, "\n");
    for (const auto& [letter, id] : ids_) absl::StrAppend(&e, id, "\n");
    for (const Event& x : costs_)
      absl::StrAppend(&i, ids_[x.customer], ",", x.time, ",", x.amount, "\n");
    testing::WriteFile(dir_.File("T.csv"), t);
    testing::WriteFile(dir_.File("E.csv"), e);
    testing::WriteFile(dir_.File("I.csv"), i);
    std::vector<std::string> args = {"scoring",        "rfm",
                                     "--transactions", dir_.File("T.csv"),
                                     "--entities",     dir_.File("E.csv"),
                                     "--interactions", dir_.File("I.csv"),
                                     "--out",          dir_.File("rfm.csv"),
                                     "--addr",         p_.scoring().addr()};
    args.insert(args.end(), flags.begin(), flags.end());
    RunResult r = p_.Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::ReadFile(dir_.File("rfm.csv"));
  }

  std::string Export(const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"customers", "export", "scores", "--out",
                                     dir_.File("export.csv")};
    args.insert(args.end(), flags.begin(), flags.end());
    RunResult r = p_.Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return testing::ReadFile(dir_.File("export.csv"));
  }

  Platform p_;
  TempDir dir_;
  std::map<std::string, std::string> ids_;       // letter -> Rapport id
  std::map<std::string, std::string> shop_ids_;  // Rapport id -> shop id
  std::vector<Event> purchases_;
  std::vector<Event> costs_;
};

TEST_F(CustomerScoresE2E,
       ExportEqualsScoringRfmOnTheSameDataAndAPurchaseRescores) {
  CreateCustomers();
  // Repeat buyers, a refund, a zero amount, identical rows, a purchase
  // before the window and one after as_of; f is a Prospect, g costs money
  // without buying (a Lead), a costs more than nothing.
  Record({{"a", "2024-05-30T10:00:00Z", "120.50"},
          {"a", "2024-05-01T10:00:00Z", "80"},
          {"a", "2024-04-01T10:00:00Z", "-20.25"},
          {"b", "2024-05-31T23:59:59.5Z", "15.005"},
          {"b", "2024-05-31T23:59:59.5Z", "15.005"},
          {"c", "2023-01-01T00:00:00Z", "999"},
          {"c", "2024-02-01T00:00:00+02:00", "40"},
          {"d", "2024-06-01T00:00:00Z", "0"},
          {"d", "2024-06-02T00:00:00Z", "500"},
          {"e", "2024-01-15T12:00:00Z", "60"},
          {"e", "2023-09-15T12:00:00Z", "75.10"}},
         {{"a", "2024-05-02T00:00:00Z", "12.5"},
          {"g", "2024-05-20T00:00:00Z", "3.75"},
          {"c", "2022-01-01T00:00:00Z", "1000"}});

  for (const auto& [window, bins] :
       {std::pair{"365", "4"}, std::pair{"", "5"}}) {
    SCOPED_TRACE(absl::StrCat("window ", window, " bins ", bins));
    std::vector<std::string> flags = {"--as-of", kAsOf, "--bins", bins};
    if (*window != '\0') {
      flags.push_back("--window-days");
      flags.push_back(window);
    }
    const std::string want = ScoringRfm(flags);
    ASSERT_EQ(Lines(want).size(), 8u) << want;

    std::vector<std::string> refresh = {"customers", "refresh-scores",
                                        "--output", "csv"};
    refresh.insert(refresh.end(), flags.begin(), flags.end());
    RunResult r = p_.Ctl(refresh);
    ASSERT_EQ(r.exit_code, 0) << r.err << p_.customer().log();
    EXPECT_NE(r.out.find(",SUCCEEDED,7,7,"), std::string::npos) << r.out;
    EXPECT_EQ(Export({}), want);
  }

  // Keyed by the shop's ids: the same values, e left out, in the shop ids'
  // order.
  const std::string by_id = Export({});
  std::map<std::string, std::string> expected_rows;
  for (const std::string& line : Lines(by_id)) {
    std::vector<std::string> f = Fields(line);
    if (f[0] == "entity_id" || shop_ids_.count(f[0]) == 0) continue;
    expected_rows[shop_ids_[f[0]]] = line.substr(f[0].size());
  }
  std::string want_by_shop = absl::StrCat(Lines(by_id)[0], "\n");
  for (const auto& [key, rest] : expected_rows)
    absl::StrAppend(&want_by_shop, key, rest, "\n");
  EXPECT_EQ(Export({"--key", "ext:shop"}), want_by_shop);

  // --output json: the same values as JSON Lines, one object a line, in
  // the same order.
  const std::vector<std::string> json_lines =
      Lines(Export({"--output", "json"}));
  const std::vector<std::string> csv_lines = Lines(by_id);
  ASSERT_EQ(json_lines.size() + 1, csv_lines.size()) << by_id;
  for (size_t i = 0; i < json_lines.size(); ++i) {
    std::vector<std::string> f = Fields(csv_lines[i + 1]);
    EXPECT_TRUE(absl::StartsWith(json_lines[i], "{") &&
                absl::EndsWith(json_lines[i], "}"))
        << json_lines[i];
    EXPECT_NE(json_lines[i].find(absl::StrCat("\"entity_id\":\"", f[0], "\"")),
              std::string::npos)
        << json_lines[i];
    EXPECT_NE(json_lines[i].find(absl::StrCat("\"segment\":\"", f[7], "\"")),
              std::string::npos)
        << json_lines[i];
  }

  // The summary agrees with the rfm output: counts, revenue, average value.
  struct Totals {
    int64_t count = 0;
    Decimal revenue;
    int64_t value = 0;
  };
  std::map<std::string, Totals> segments, tiers;
  int64_t top_value = -1;
  std::set<std::string> leads;
  for (const std::string& line : Lines(by_id)) {
    std::vector<std::string> f = Fields(line);
    if (f[0] == "entity_id") continue;
    int64_t units = 0, cents = 0;
    ASSERT_TRUE(absl::SimpleAtoi(f[8].substr(0, f[8].find('.')), &units));
    ASSERT_TRUE(absl::SimpleAtoi(f[8].substr(f[8].find('.') + 1), &cents));
    const int64_t value = units * 100 + cents;
    for (Totals* t : {&segments[f[7]], &tiers[f[11]]}) {
      ++t->count;
      t->revenue += *Decimal::Parse(f[3]);
      t->value += value;
    }
    top_value = std::max(top_value, value);
    if (f[11] == "Lead") leads.insert(f[0]);
  }
  RunResult summary = p_.Ctl({"customers", "summarize", "--output", "csv"});
  ASSERT_EQ(summary.exit_code, 0) << summary.err;
  std::vector<std::string> rows = Lines(summary.out);
  ASSERT_EQ(rows.size(), 1 + segments.size() + tiers.size()) << summary.out;
  for (size_t i = 1; i < rows.size(); ++i) {
    std::vector<std::string> f = Fields(rows[i]);
    const Totals& t = (f[0] == "segment" ? segments : tiers)[f[1]];
    SCOPED_TRACE(rows[i]);
    EXPECT_EQ(f[2], absl::StrCat(t.count));
    EXPECT_EQ(f[3], t.revenue.ToString());
    const int64_t average = (2 * t.value + t.count) / (2 * t.count);
    EXPECT_EQ(f[4], absl::StrFormat("%d.%02d", average / 100, average % 100));
  }

  // Listing by tier and by value uses the stored values.
  RunResult lead_list =
      p_.Ctl({"customers", "list", "--tier", "lead", "--output", "csv"});
  ASSERT_EQ(lead_list.exit_code, 0) << lead_list.err;
  std::set<std::string> listed;
  for (const std::string& line : Lines(lead_list.out))
    listed.insert(Fields(line)[0]);
  listed.erase("id");
  EXPECT_EQ(listed, leads);
  EXPECT_EQ(leads.count(ids_["g"]), 1u);
  RunResult by_value =
      p_.Ctl({"customers", "list", "--order-by", "value", "--output", "csv"});
  ASSERT_EQ(by_value.exit_code, 0) << by_value.err;
  ASSERT_GE(Lines(by_value.out).size(), 2u);
  EXPECT_EQ(Fields(Lines(by_value.out)[1])[8],
            absl::StrFormat("%d.%02d", top_value / 100, top_value % 100))
      << by_value.out;

  // The value comes with its tier's policy; a channel the policy does not
  // allow is refused unless forced.
  RunResult value =
      p_.Ctl({"customers", "value", ids_["g"], "--output", "json"});
  ASSERT_EQ(value.exit_code, 0) << value.err;
  EXPECT_NE(value.out.find("\"TIER_LEAD\""), std::string::npos) << value.out;
  const size_t policy = value.out.find("contact_policy");
  ASSERT_NE(policy, std::string::npos) << value.out;
  std::string refused_channel;
  for (const char* c :
       {"visit", "event", "phone", "mail", "sms", "web", "email"}) {
    if (value.out.find(absl::StrCat("CHANNEL_", absl::AsciiStrToUpper(c)),
                       policy) == std::string::npos) {
      refused_channel = c;
      break;
    }
  }
  ASSERT_FALSE(refused_channel.empty()) << value.out;
  std::vector<std::string> log = {"customers",     "interactions", "log",
                                  "--customer",    ids_["g"],      "--channel",
                                  refused_channel, "--cost",       "1"};
  RunResult refused = p_.Ctl(log);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("FAILED_PRECONDITION"), std::string::npos)
      << refused.err;
  log.push_back("--force");
  RunResult forced = p_.Ctl(log);
  EXPECT_EQ(forced.exit_code, 0) << forced.err;

  // A purchase after the refresh re-scores that customer (as of now, same
  // window rule) against the stored model: the Prospect is one no more.
  RunResult before =
      p_.Ctl({"customers", "value", ids_["f"], "--output", "csv"});
  ASSERT_EQ(before.exit_code, 0) << before.err;
  EXPECT_EQ(Fields(Lines(before.out)[1])[7], "Prospect");
  RunResult bought = p_.Ctl(
      {"purchases", "record", "--customer", ids_["f"], "--amount", "250"});
  ASSERT_EQ(bought.exit_code, 0) << bought.err;
  // The purchase is answered once stored; the customer is scored again in
  // the background, within moments.
  std::vector<std::string> f;
  for (int i = 0; i < 100; ++i) {
    RunResult after =
        p_.Ctl({"customers", "value", ids_["f"], "--output", "csv"});
    ASSERT_EQ(after.exit_code, 0) << after.err;
    f = Fields(Lines(after.out)[1]);
    if (f[2] == "1") break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(f[1], "0");  // recency_days
  EXPECT_EQ(f[2], "1");  // frequency
  EXPECT_EQ(f[3], "250.00");
  EXPECT_NE(f[7], "Prospect");
  EXPECT_NE(f[8], "0.00");

  // So does an imported one: e bought twice before, a third time a day ago.
  const std::string file =
      p_.File("late.csv",
              absl::StrCat("customer_ref,timestamp,amount\n", ids_["e"], ",",
                           absl::FormatTime(absl::RFC3339_sec,
                                            absl::Now() - absl::Hours(24),
                                            absl::UTCTimeZone()),
                           ",30\n"));
  RunResult imported = p_.Ctl({"customers", "import", "purchases", file});
  ASSERT_EQ(imported.exit_code, 0) << imported.out << imported.err;
  for (int i = 0; i < 100; ++i) {
    RunResult after =
        p_.Ctl({"customers", "value", ids_["e"], "--output", "csv"});
    ASSERT_EQ(after.exit_code, 0) << after.err;
    f = Fields(Lines(after.out)[1]);
    if (f[2] == "3") break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(f[1], "1");  // recency_days
  EXPECT_EQ(f[2], "3");  // frequency
}

TEST_F(CustomerScoresE2E,
       RefreshAgainstAStoppedScoringServiceFailsTheJobWithAReason) {
  CreateCustomers();
  Record({{"a", "2024-05-30T10:00:00Z", "10"}}, {});
  EXPECT_TRUE(testing::NotValuedYet(p_, "customers", ids_["a"]));
  RunResult bad = p_.Ctl({"customers", "refresh-scores", "--bins", "11"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--bins"), std::string::npos) << bad.err;

  p_.scoring().process().Stop();
  RunResult started =
      p_.Ctl({"customers", "refresh-scores", "--no-wait", "--output", "csv"});
  ASSERT_EQ(started.exit_code, 0) << started.err;
  const std::string job = Fields(Lines(started.out).at(1))[0];
  std::string state;
  RunResult shown;
  for (int i = 0; i < 100 && state != "FAILED"; ++i) {
    shown = p_.Ctl({"customers", "refresh-job", job, "--output", "csv"});
    ASSERT_EQ(shown.exit_code, 0) << shown.err;
    state = Fields(Lines(shown.out).at(1))[1];
    if (state == "RUNNING") absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(state, "FAILED") << shown.out;
  EXPECT_NE(shown.out.find("UNAVAILABLE: scoring service"), std::string::npos)
      << shown.out;

  // Under a request id, asked again, the same job (failed here) and no
  // second one.
  std::vector<std::string> keyed = {
      "customers", "refresh-scores", "--request-id", "nightly-1",
      "--no-wait", "--output",       "csv"};
  RunResult keyed_first = p_.Ctl(keyed);
  ASSERT_EQ(keyed_first.exit_code, 0) << keyed_first.err;
  const std::string keyed_job = Fields(Lines(keyed_first.out).at(1))[0];
  for (int i = 0; i < 100; ++i) {
    shown = p_.Ctl({"customers", "refresh-job", keyed_job, "--output", "csv"});
    if (Fields(Lines(shown.out).at(1))[1] != "RUNNING") break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  RunResult keyed_again = p_.Ctl(keyed);
  ASSERT_EQ(keyed_again.exit_code, 0) << keyed_again.err;
  EXPECT_EQ(Fields(Lines(keyed_again.out).at(1))[0], keyed_job);
  EXPECT_EQ(Fields(Lines(keyed_again.out).at(1))[1], "FAILED");
  // ... which the command says, and how to refresh again.
  EXPECT_NE(keyed_again.err.find(absl::StrCat(
                "request id nightly-1 names refresh job ", keyed_job,
                ", which failed; give another --request-id")),
            std::string::npos)
      << keyed_again.err;

  // Followed, the same failure is the command's exit status.
  RunResult followed = p_.Ctl({"customers", "refresh-scores"});
  EXPECT_EQ(followed.exit_code, 1);
  EXPECT_NE(followed.err.find("failed: UNAVAILABLE"), std::string::npos)
      << followed.err;
  // A purchase still stands while scoring is away.
  RunResult bought =
      p_.Ctl({"purchases", "record", "--customer", ids_["a"], "--amount", "5"});
  EXPECT_EQ(bought.exit_code, 0) << bought.err;
}

// An import cannot bypass the tier's contact policy: an interaction dated
// within the last day that the customer's tier does not allow is rejected,
// naming its line and column, as LogInteraction refuses it without force;
// older rows are history and go in.
TEST_F(CustomerScoresE2E, ImportedRecentInteractionsKeepToTheTiersPolicy) {
  const int64_t now = absl::ToUnixMicros(absl::Now());
  const int64_t day = 86'400'000'000;
  const auto at = [&](int64_t ago) { return FormatRfc3339Micros(now - ago); };
  // Ada spent 10 and cost 50 to serve: a Lead (email, web and mail; at
  // most 2.00 an interaction).
  RunResult created = p_.Ctl(
      {"customers", "create", "--display-name", "Ada", "--output", "csv"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const std::string ada = testing::CsvId(created.out);
  ASSERT_EQ(p_.Ctl({"purchases", "record", "--customer", ada, "--amount", "10",
                    "--time", at(30 * day)})
                .exit_code,
            0);
  ASSERT_EQ(
      p_.Ctl({"customers", "interactions", "log", "--customer", ada,
              "--channel", "visit", "--cost", "50", "--time", at(20 * day)})
          .exit_code,
      0);
  RunResult refreshed = p_.Ctl({"customers", "refresh-scores"});
  ASSERT_EQ(refreshed.exit_code, 0) << refreshed.err << p_.logs();
  RunResult value = p_.Ctl({"customers", "value", ada, "--output", "json"});
  ASSERT_TRUE(absl::StrContains(value.out, "TIER_LEAD")) << value.out;

  const std::string file =
      p_.File("recent.csv",
              absl::StrCat("customer_ref,timestamp,channel,cost\n",    // 1
                           ada, ",", at(day / 24), ",visit,1\n",       // 2
                           ada, ",", at(day / 24), ",email,3\n",       // 3
                           ada, ",", at(10 * day), ",visit,30\n",      // 4
                           ada, ",", at(day / 24), ",email,1.50\n"));  // 5
  RunResult imported = p_.Ctl({"customers", "import", "interactions", file});
  EXPECT_EQ(imported.exit_code, 1) << imported.out << imported.err;
  EXPECT_TRUE(absl::StrContains(imported.out, "accepted: 2")) << imported.out;
  EXPECT_TRUE(absl::StrContains(
      imported.err,
      absl::StrCat(file,
                   ":2: channel: the Lead tier's contact policy does not "
                   "allow the visit channel for customer ",
                   ada, " (allowed: email, web, mail)")))
      << imported.err;
  EXPECT_TRUE(absl::StrContains(
      imported.err, absl::StrCat(file, ":3: cost: 3.00 is more than the 2.00")))
      << imported.err;
  // A writer may not force an import; an admin's import with --force
  // records the refused rows under their own keys (the others are
  // duplicates), audited as forced.
  RunResult writer =
      p_.CtlAs("writer", "user:wes",
               {"customers", "import", "interactions", file, "--force"});
  EXPECT_EQ(writer.exit_code, 1) << writer.err;
  EXPECT_TRUE(absl::StrContains(writer.err, "PERMISSION_DENIED")) << writer.err;
  RunResult forced =
      p_.Ctl({"customers", "import", "interactions", file, "--force"});
  EXPECT_EQ(forced.exit_code, 0) << forced.out << forced.err;
  EXPECT_TRUE(absl::StrContains(forced.out, "accepted: 2  duplicates: 2"))
      << forced.out;
  RunResult audited = p_.Ctl({"audit", "list", "--output", "csv"});
  ASSERT_EQ(audited.exit_code, 0) << audited.err;
  int forced_events = 0;
  for (const std::string& line : Lines(audited.out)) {
    forced_events += absl::StrContains(line, "ImportInteractions") &&
                     absl::StrContains(line, "force");
  }
  EXPECT_EQ(forced_events, 4) << audited.out;  // start and end, two streams
}

}  // namespace
}  // namespace rapport
