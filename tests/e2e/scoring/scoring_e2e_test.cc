// The real rapport-scoring binary over real gRPC, driven through rapportctl and
// a plain gRPC stub: results checked against SCORING.md by an independent,
// deliberately naive implementation, across one and two replicas.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/csv.h"
#include "common/base/decimal.h"
#include "common/base/timestamp.h"
#include "common/channel.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "tests/support/mariadb.h"
#include "tests/support/metrics_scrape.h"
#include "tests/support/process.h"
#include "tests/support/server.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

namespace v1 = ::rapport::scoring::v1;
using testing::BinaryDir;
using testing::Process;
using testing::RunResult;
using testing::TempDir;

class ScoringServer {
 public:
  explicit ScoringServer(const std::vector<std::string>& args = {})
      : server_(BinaryDir() + "/services/scoring/rapport-scoring", {}, args) {}
  std::string addr() const { return server_.addr(); }
  std::string metrics_addr() const { return server_.metrics_addr(); }
  std::unique_ptr<v1::ScoringService::Stub> Stub() const {
    return v1::ScoringService::NewStub(*MakeChannel(addr(), {}));
  }

 private:
  testing::ServerProcess server_;
};

RunResult Ctl(const std::string& addr, std::vector<std::string> args) {
  args.insert(args.begin(), testing::CtlPath());
  args.push_back("--addr");
  args.push_back(addr);
  return testing::Run(
      args,
      {{"RAPPORT_TOKEN", testing::TestAuth::Get().Token("reader", "test")}});
}

// --- An independent reading of SCORING.md, for small inputs only. ----------
// Nothing of the code under test: money in integer cents, days by integer
// division, CSV quoted and times formatted by hand (or by Abseil), so that a
// mistake the service's CSV writer and reader (or Decimal, or FloorDays)
// share cannot cancel out.

struct Row {
  std::string id;
  int64_t time;
  int64_t cents;
};

constexpr int64_t kDayMicros = 86'400'000'000;

// RFC 4180 as SCORING.md section 8 asks: quoted when the field holds a comma,
// a quote, CR or LF, its quotes doubled; rows end with LF.
std::string CsvLine(const std::vector<std::string>& fields) {
  std::string line;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) line += ',';
    const std::string& f = fields[i];
    if (f.find_first_of(",\"\r\n") == std::string::npos) {
      line += f;
      continue;
    }
    line += '"';
    for (char c : f) {
      if (c == '"') line += '"';
      line += c;
    }
    line += '"';
  }
  return line + "\n";
}

// Cents as an exact decimal with 2 places: -550 is "-5.50".
std::string Money(int64_t cents) {
  const int64_t whole = (cents < 0 ? -cents : cents);
  return absl::StrFormat("%s%d.%02d", cents < 0 ? "-" : "", whole / 100,
                         whole % 100);
}

std::string Rfc3339(int64_t micros) {
  return absl::FormatTime(absl::RFC3339_full, absl::FromUnixMicros(micros),
                          absl::UTCTimeZone());
}

std::vector<std::vector<std::string>> ReadCsv(const std::string& text) {
  std::istringstream in(text);
  CsvReader reader(&in);
  std::vector<std::vector<std::string>> rows;
  while (*reader.Next()) {
    rows.emplace_back(reader.fields().begin(), reader.fields().end());
  }
  return rows;
}

std::string Segment(int r, int f) {
  auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  if (r == 5 && in(f, 4, 5)) return "Champions";
  if (in(r, 3, 4) && in(f, 4, 5)) return "Loyal Customers";
  if (in(r, 4, 5) && in(f, 2, 3)) return "Potential Loyalists";
  if (r == 5 && f == 1) return "New Customers";
  if (r == 4 && f == 1) return "Promising";
  if (r == 3 && f == 3) return "Need Attention";
  if (r == 3 && in(f, 1, 2)) return "About to Sleep";
  if (in(r, 1, 2) && f == 5) return "Cannot Lose Them";
  if (in(r, 1, 2) && in(f, 3, 4)) return "At Risk";
  return "Hibernating";
}

// Score of v among `population` by the rank rule: 1 + floor(k * #{< v} / N).
template <typename T>
int RankScore(const std::vector<T>& population, const T& v, int k) {
  int64_t less = 0;
  for (const T& p : population) less += p < v ? 1 : 0;
  return 1 +
         static_cast<int>(k * less / static_cast<int64_t>(population.size()));
}

// The bytes of `scoring rfm --out`.
std::string Reference(const std::vector<Row>& events,
                      const std::vector<Row>& costs,
                      const std::vector<std::string>& known, int64_t as_of,
                      int window_days, int k) {
  auto counts = [&](int64_t t) {
    return t <= as_of &&
           (window_days == 0 || t > as_of - window_days * kDayMicros);
  };
  struct Facts {
    int64_t frequency = 0;
    int64_t monetary = 0, cost = 0;  // cents
    int64_t last = INT64_MIN;
  };
  std::map<std::string, Facts> facts;  // std::string order is byte order
  for (const std::string& id : known) facts[id];
  for (const Row& e : events) {
    Facts& f = facts[e.id];
    if (!counts(e.time)) continue;
    f.frequency++;
    f.monetary += e.cents;
    f.last = std::max(f.last, e.time);
  }
  for (const Row& c : costs) {
    Facts& f = facts[c.id];
    if (counts(c.time)) f.cost += c.cents;
  }
  std::vector<int64_t> rec, freq, mon, profits;
  for (const auto& [id, f] : facts) {
    if (f.frequency > 0) {
      rec.push_back(-((as_of - f.last) / kDayMicros));  // as_of >= last
      freq.push_back(f.frequency);
      mon.push_back(f.monetary);
    }
    if (f.monetary - f.cost >= 0) profits.push_back(f.monetary - f.cost);
  }
  std::string out =
      CsvLine({"entity_id", "recency_days", "frequency", "monetary", "r", "f",
               "m", "segment", "value", "cost_to_serve", "profit", "tier"});
  for (const auto& [id, f] : facts) {
    const int64_t profit = f.monetary - f.cost;
    std::string tier = "Lead";
    if (profit >= 0) {
      int64_t less = 0;
      for (int64_t p : profits) less += p < profit ? 1 : 0;
      const int64_t m = static_cast<int64_t>(profits.size());
      tier = 10 * less >= 9 * m   ? "Platinum"
             : 10 * less >= 7 * m ? "Gold"
                                  : "Iron";
    }
    if (f.frequency == 0) {
      out += CsvLine({id, "", "0", "0.00", "0", "0", "0", "Prospect", "0.00",
                      Money(f.cost), Money(profit), tier});
      continue;
    }
    const int64_t days = (as_of - f.last) / kDayMicros;
    const int r = RankScore(rec, -days, k),
              fr = RankScore(freq, f.frequency, k),
              m = RankScore(mon, f.monetary, k);
    const int r5 = 1 + 5 * (r - 1) / k, f5 = 1 + 5 * (fr - 1) / k;
    const int64_t sum = (r - 1) + (fr - 1) + (m - 1);
    const int64_t cents =
        (20000 * sum + 3 * (k - 1)) / (6 * (k - 1));  // half up, sum >= 0
    out += CsvLine({id, absl::StrCat(days), absl::StrCat(f.frequency),
                    Money(f.monetary), absl::StrCat(r), absl::StrCat(fr),
                    absl::StrCat(m), Segment(r5, f5), Money(cents),
                    Money(f.cost), Money(profit), tier});
  }
  return out;
}

std::string ToCsv(const std::vector<std::string>& header,
                  const std::vector<Row>& rows, bool with_time = true) {
  std::string out = CsvLine(header);
  for (const Row& r : rows) {
    out += with_time ? CsvLine({r.id, Rfc3339(r.time), Money(r.cents)})
                     : CsvLine({r.id});
  }
  return out;
}

TEST(ScoringE2E, RfmFollowsTheSpecAndTwoReplicasGiveTheSameBytesAsOne) {
  ScoringServer one, two;
  std::mt19937_64 rng(20261124);
  const int64_t as_of = *ParseRfc3339Micros("2024-06-30T12:00:00Z");
  // Ids with commas, quotes, spaces, upper/lower case and UTF-8, so CSV quoting
  // and byte ordering are exercised.
  std::vector<std::string> ids;
  for (int i = 0; i < 150; ++i) {
    std::string id = absl::StrCat("c", rng() % 1000);
    if (i % 17 == 0) id += ", \"Ltd\"";
    if (i % 13 == 0) id = "Ünal " + id;
    if (i % 11 == 0) id = " C" + id;
    ids.push_back(id);
  }
  std::vector<Row> events, costs;
  for (int i = 0; i < 1500; ++i) {
    const std::string& id = ids[rng() % ids.size()];
    // Days back from as_of, some exactly on the window edge, some after as_of.
    int64_t t = as_of - static_cast<int64_t>(rng() % 400) * 86'400'000'000 +
                static_cast<int64_t>(rng() % 3) * 1'000'000;
    if (i % 97 == 0)
      t = as_of - 90 * int64_t{86'400'000'000};  // exactly at the edge: out
    if (i % 89 == 0) t = as_of + 1;              // after as_of: never
    int64_t cents = static_cast<int64_t>(rng() % 20000) - 2000;  // refunds too
    if (i % 10 == 0) cents = 1999;                               // ties
    events.push_back({id, t, cents});
  }
  for (int i = 0; i < 200; ++i) {
    costs.push_back({ids[rng() % ids.size()],
                     as_of - static_cast<int64_t>(rng() % 200) * 3'600'000'000,
                     static_cast<int64_t>(rng() % 3000)});
  }
  std::vector<std::string> known = {"prospect-only", "zz-known", ids[0]};

  TempDir dir;
  testing::WriteFile(dir.File("t.csv"),
                     ToCsv({"entity_id", "timestamp", "amount"}, events));
  testing::WriteFile(dir.File("i.csv"),
                     ToCsv({"entity_id", "timestamp", "cost"}, costs));
  std::vector<Row> known_rows;
  for (const std::string& id : known) known_rows.push_back({id, 0, 0});
  testing::WriteFile(dir.File("e.csv"),
                     ToCsv({"entity_id"}, known_rows, false));

  for (int window : {0, 90}) {
    for (int k : {5, 3, 10}) {
      std::vector<std::string> args = {"scoring",        "rfm",
                                       "--transactions", dir.File("t.csv"),
                                       "--entities",     dir.File("e.csv"),
                                       "--interactions", dir.File("i.csv"),
                                       "--as-of",        "2024-06-30T12:00:00Z",
                                       "--bins",         absl::StrCat(k),
                                       "--out",          dir.File("out.csv")};
      if (window > 0) {
        args.push_back("--window-days");
        args.push_back(absl::StrCat(window));
      }
      RunResult single = Ctl(one.addr(), args);
      ASSERT_EQ(single.exit_code, 0) << single.err;
      const std::string single_out = testing::ReadFile(dir.File("out.csv"));
      EXPECT_EQ(single_out, Reference(events, costs, known, as_of, window, k))
          << "window " << window << " bins " << k;

      // Written anew: a file left from the run above proves nothing.
      ASSERT_EQ(std::remove(dir.File("out.csv").c_str()), 0);
      RunResult both =
          Ctl(absl::StrCat("ipv4:", one.addr(), ",", two.addr()), args);
      ASSERT_EQ(both.exit_code, 0) << both.err;
      EXPECT_EQ(testing::ReadFile(dir.File("out.csv")), single_out);
    }
  }
}

TEST(ScoringE2E, ABadRowStopsTheRunNamingFileLineAndFieldAndWritesNoOutput) {
  ScoringServer server;
  TempDir dir;
  testing::WriteFile(dir.File("t.csv"),
                     "entity_id,timestamp,amount\na,2024-01-01T00:00:00Z,1.00\n"
                     "b,2024-01-02T00:00:00Z,12,50\n");
  RunResult fields =
      Ctl(server.addr(), {"scoring", "rfm", "--transactions", dir.File("t.csv"),
                          "--out", dir.File("out.csv")});
  EXPECT_EQ(fields.exit_code, 1);
  EXPECT_NE(fields.err.find("t.csv:3: expected 3 fields"), std::string::npos)
      << fields.err;
  EXPECT_FALSE(std::filesystem::exists(dir.File("out.csv")));

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a,2024-01-01,1", "t.csv:2: timestamp:"},
      {"a,2024-01-01T00:00:00,1", "t.csv:2: timestamp:"},
      {"a,2024-06-30T23:59:60Z,1", "t.csv:2: timestamp:"},
      {"a,2024-01-01T00:00:00.1234567Z,1", "t.csv:2: timestamp:"},
      {"a,2024-01-01T00:00:00Z,1e3", "t.csv:2: amount:"},
      {"a,2024-01-01T00:00:00Z,1 000", "t.csv:2: amount:"},
      {"a,2024-01-01T00:00:00Z,NaN", "t.csv:2: amount:"},
      {",2024-01-01T00:00:00Z,1", "t.csv:2: entity_id: is empty"},
      {"M\xfcller,2024-01-01T00:00:00Z,1",
       "t.csv:2: entity_id: is not valid UTF-8"},
      // Written empty (quoted), not a blank line to skip.
      {"\"\",,", "t.csv:2: entity_id: is empty"},
  };
  for (const auto& [row, expected] : cases) {
    testing::WriteFile(dir.File("t.csv"),
                       "entity_id,timestamp,amount\n" + row + "\n");
    RunResult r =
        Ctl(server.addr(), {"scoring", "rfm", "--transactions",
                            dir.File("t.csv"), "--out", dir.File("out.csv")});
    EXPECT_EQ(r.exit_code, 1) << row;
    EXPECT_NE(r.err.find(expected), std::string::npos)
        << row << " -> " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir.File("out.csv"))) << row;
  }
  testing::WriteFile(dir.File("t.csv"),
                     "entity_id,timestamp,amount\na,2024-01-01T00:00:00Z,1\n");
  testing::WriteFile(dir.File("i.csv"),
                     "entity_id,timestamp,cost\na,2024-01-01T00:00:00Z,-1\n");
  RunResult cost =
      Ctl(server.addr(), {"scoring", "rfm", "--transactions", dir.File("t.csv"),
                          "--interactions", dir.File("i.csv")});
  EXPECT_EQ(cost.exit_code, 1);
  EXPECT_NE(cost.err.find("i.csv:2: cost: must not be negative"),
            std::string::npos)
      << cost.err;
  // Refused by the service (a sum beyond a Money), with nothing written to
  // stdout, not even the header.
  std::string large = "entity_id,timestamp,amount\n";
  for (int day = 1; day <= 10; ++day) {
    absl::StrAppend(&large, "a,2024-01-", 10 + day,
                    "T00:00:00Z,999999999999999999\n");
  }
  testing::WriteFile(dir.File("t.csv"), large);
  RunResult sum =
      Ctl(server.addr(), {"scoring", "rfm", "--transactions", dir.File("t.csv"),
                          "--as-of", "2024-06-30T00:00:00Z"});
  EXPECT_EQ(sum.exit_code, 1) << sum.err;
  EXPECT_NE(sum.err.find("beyond what a google.type.Money holds"),
            std::string::npos)
      << sum.err;
  EXPECT_EQ(sum.out, "");
  testing::WriteFile(dir.File("t.csv"), "entity,timestamp,amount\n");
  RunResult header = Ctl(
      server.addr(), {"scoring", "rfm", "--transactions", dir.File("t.csv")});
  EXPECT_NE(header.err.find("no column entity_id"), std::string::npos)
      << header.err;
  RunResult bins = Ctl(server.addr(), {"scoring", "rfm", "--transactions",
                                       dir.File("t.csv"), "--bins", "1"});
  EXPECT_EQ(bins.exit_code, 2);
  EXPECT_NE(bins.err.find("--bins"), std::string::npos);
  // Periods that no time holds, or no number: refused naming the flag.
  testing::WriteFile(dir.File("t.csv"),
                     "entity_id,timestamp,amount\na,2024-01-01T00:00:00Z,1\n");
  for (const auto& [flag, value] :
       std::vector<std::pair<std::string, std::string>>{
           {"--holdout-periods", "2000000000"}, {"--predict-periods", "inf"}}) {
    RunResult r =
        Ctl(server.addr(),
            {"scoring", "clv", "--transactions", dir.File("t.csv"), "--as-of",
             "2024-06-30T00:00:00Z", "--unit", "week", flag, value});
    EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.err;
    EXPECT_NE(r.err.find(flag + ": must"), std::string::npos) << r.err;
  }
}

// `scoring clv --summary`: a summary file fits and predicts; a row the
// service would refuse is refused first, naming the file's line and column.
TEST(ScoringE2E, ClvFromASummaryFileNamesItsBadRowsByLine) {
  ScoringServer server;
  TempDir dir;
  std::string good = "entity_id,frequency,recency,T,monetary_value\n";
  for (int i = 0; i < 40; ++i) {
    const int x = i % 4;
    absl::StrAppend(&good, "c", i, ",", x, ",", x == 0 ? 0 : 5 + i % 7, ",",
                    20 + i % 9, ",", x == 0 ? 0 : 10 + i, "\n");
  }
  testing::WriteFile(dir.File("s.csv"), good);
  RunResult fitted =
      Ctl(server.addr(), {"scoring", "clv", "--summary", dir.File("s.csv"),
                          "--out", dir.File("p.csv")});
  ASSERT_EQ(fitted.exit_code, 0) << fitted.err;
  EXPECT_EQ(ReadCsv(testing::ReadFile(dir.File("p.csv"))).size(), 41u);
  // A model file that cannot be made is refused before the fit, and leaves
  // no predictions behind either.
  RunResult no_model = Ctl(
      server.addr(), {"scoring", "clv", "--summary", dir.File("s.csv"), "--out",
                      dir.File("q.csv"), "--model-out", dir.File("no/m.json")});
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find("--model-out: cannot create the file"),
            std::string::npos)
      << no_model.err;
  EXPECT_FALSE(std::filesystem::exists(dir.File("q.csv")));
  // Predictions that cannot be written (a full disk) leave no model either:
  // both files are whole before either takes its name.
  RunResult full = Ctl(
      server.addr(), {"scoring", "clv", "--summary", dir.File("s.csv"), "--out",
                      "/dev/full", "--model-out", dir.File("m.json")});
  EXPECT_EQ(full.exit_code, 1) << full.err;
  EXPECT_NE(full.err.find("cannot write /dev/full: No space left on device"),
            std::string::npos)
      << full.err;
  EXPECT_FALSE(std::filesystem::exists(dir.File("m.json")));
  // The same command with somewhere to write makes both.
  RunResult room = Ctl(
      server.addr(), {"scoring", "clv", "--summary", dir.File("s.csv"), "--out",
                      dir.File("q.csv"), "--model-out", dir.File("m.json")});
  EXPECT_EQ(room.exit_code, 0) << room.err;
  EXPECT_TRUE(std::filesystem::exists(dir.File("m.json")));
  EXPECT_TRUE(std::filesystem::exists(dir.File("q.csv")));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"c1,0,5,10,0", "s.csv:3: recency: must be 0 when frequency is 0"},
      {"c1,1,inf,10,5", "s.csv:3: recency: must be a finite number"},
      {"c1,1,2,1e999,5", "s.csv:3: T: must be a finite number"},
      {"c0,1,2,10,5", "s.csv:3: entity_id: is given twice"},
  };
  for (const auto& [row, expected] : cases) {
    testing::WriteFile(dir.File("s.csv"),
                       "entity_id,frequency,recency,T,monetary_value\n"
                       "c0,1,2,10,5\n" +
                           row + "\n");
    RunResult r =
        Ctl(server.addr(), {"scoring", "clv", "--summary", dir.File("s.csv")});
    EXPECT_EQ(r.exit_code, 1) << row;
    EXPECT_NE(r.err.find(expected), std::string::npos)
        << row << " -> " << r.err;
  }
}

v1::EntityFacts Facts(const std::string& id, int64_t frequency, int64_t cents,
                      int64_t last, int64_t cost_cents) {
  v1::EntityFacts f;
  f.set_entity_id(id);
  f.set_frequency(frequency);
  *f.mutable_monetary() = *ToMoney(Decimal::FromCents(cents), "", "m");
  *f.mutable_cost_to_serve() =
      *ToMoney(Decimal::FromCents(cost_cents), "", "c");
  if (frequency > 0) *f.mutable_last_event_time() = ToTimestamp(last);
  return f;
}

TEST(ScoringE2E, ScoringOneEntityAgainstTheModelAgreesWithThePopulationRun) {
  ScoringServer server;
  auto stub = server.Stub();
  std::mt19937_64 rng(7);
  const int64_t as_of = *ParseRfc3339Micros("2024-01-01T00:00:00Z");
  testing::AuthorizedContext context;
  auto stream = stub->ScorePopulation(&context);
  std::vector<v1::EntityFacts> all;
  for (int batch = 0; batch < 4; ++batch) {
    v1::ScorePopulationRequest request;
    request.mutable_config()->mutable_as_of()->set_seconds(as_of / 1'000'000);
    request.mutable_config()->set_response_batch_size(37);
    for (int i = 0; i < 100; ++i) {
      const int64_t frequency = static_cast<int64_t>(rng() % 6);
      all.push_back(
          Facts(absl::StrCat("e", batch * 100 + i), frequency,
                frequency == 0 ? 0 : static_cast<int64_t>(rng() % 50000) - 1000,
                as_of - static_cast<int64_t>(rng() % 300) * 86'400'000'000,
                static_cast<int64_t>(rng() % 4000)));
      *request.add_facts() = all.back();
    }
    if (!stream->Write(request)) break;  // Finish tells why
  }
  stream->WritesDone();
  std::vector<v1::EntityScore> scores;
  v1::ScoreModel model;
  v1::ScorePopulationResponse response;
  int messages = 0;
  while (stream->Read(&response)) {
    ++messages;
    scores.insert(scores.end(), response.scores().begin(),
                  response.scores().end());
    if (response.has_model()) model = response.model();
    EXPECT_EQ(response.total(), 400);
  }
  grpc::Status finished = stream->Finish();
  ASSERT_TRUE(finished.ok()) << finished.error_message();
  EXPECT_EQ(messages, 11);  // 400 scores in batches of 37
  ASSERT_EQ(scores.size(), 400u);
  EXPECT_EQ(model.bins(), 5);
  EXPECT_EQ(model.contact_policies_size(), 4);
  std::map<std::string, v1::EntityFacts> by_id;
  for (const auto& f : all) by_id[f.entity_id()] = f;
  for (const v1::EntityScore& s : scores) {
    testing::AuthorizedContext one;
    v1::ScoreEntityRequest request;
    *request.mutable_model() = model;
    *request.mutable_facts() = by_id[s.entity_id()];
    v1::ScoreEntityResponse single;
    ASSERT_TRUE(stub->ScoreEntity(&one, request, &single).ok());
    EXPECT_EQ(single.score().r(), s.r()) << s.entity_id();
    EXPECT_EQ(single.score().f(), s.f()) << s.entity_id();
    EXPECT_EQ(single.score().m(), s.m()) << s.entity_id();
    EXPECT_EQ(single.score().segment(), s.segment()) << s.entity_id();
    EXPECT_EQ(single.score().value_hundredths(), s.value_hundredths())
        << s.entity_id();
    EXPECT_EQ(single.score().tier(), s.tier()) << s.entity_id();
    EXPECT_EQ(single.contact_policy().tier(), s.tier());
  }

  // ScoreEntities: the same, many at a time, in the order asked.
  v1::ScoreEntitiesRequest many;
  *many.mutable_model() = model;
  for (auto it = scores.rbegin(); it != scores.rend(); ++it)
    *many.add_facts() = by_id[it->entity_id()];
  testing::AuthorizedContext call;
  v1::ScoreEntitiesResponse batch;
  grpc::Status scored = stub->ScoreEntities(&call, many, &batch);
  ASSERT_TRUE(scored.ok()) << scored.error_message();
  ASSERT_EQ(batch.scores_size(), 400);
  for (int i = 0; i < 400; ++i) {
    const v1::EntityScore& want = scores[399 - i];
    EXPECT_EQ(batch.scores(i).SerializeAsString(), want.SerializeAsString())
        << want.entity_id();
  }

  // Its bad input names the entity.
  many.mutable_facts(7)->mutable_monetary()->set_units(5);
  many.mutable_facts(7)->mutable_monetary()->set_nanos(-5);
  testing::AuthorizedContext bad_call;
  absl::Status bad =
      FromGrpcStatus(stub->ScoreEntities(&bad_call, many, &batch));
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  ASSERT_FALSE(FieldViolations(bad).empty()) << bad;
  EXPECT_EQ(FieldViolations(bad)[0].field.rfind("facts[7].monetary", 0), 0u)
      << FieldViolations(bad)[0].field;
  testing::AuthorizedContext empty_call;
  absl::Status empty = FromGrpcStatus(
      stub->ScoreEntities(&empty_call, v1::ScoreEntitiesRequest(), &batch));
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument) << empty;
  ASSERT_FALSE(FieldViolations(empty).empty()) << empty;
  EXPECT_EQ(FieldViolations(empty)[0].field, "model");
  v1::ScoreEntitiesRequest too_many;
  *too_many.mutable_model() = model;
  for (int i = 0; i < 10001; ++i) *too_many.add_facts() = all[0];
  testing::AuthorizedContext too_many_call;
  absl::Status limit =
      FromGrpcStatus(stub->ScoreEntities(&too_many_call, too_many, &batch));
  EXPECT_EQ(limit.code(), absl::StatusCode::kInvalidArgument) << limit;
  ASSERT_FALSE(FieldViolations(limit).empty()) << limit;
  EXPECT_EQ(FieldViolations(limit)[0].field, "facts");
}

TEST(ScoringE2E, InvalidConfigurationIsInvalidArgumentNamingTheField) {
  ScoringServer server;
  auto stub = server.Stub();
  auto population_error = [&](const v1::ScoringConfig& config) {
    testing::AuthorizedContext context;
    auto stream = stub->ScorePopulation(&context);
    v1::ScorePopulationRequest request;
    *request.mutable_config() = config;
    request.add_entity_ids("x");
    stream->Write(request);
    stream->WritesDone();
    v1::ScorePopulationResponse ignored;
    while (stream->Read(&ignored)) {
    }
    absl::Status s = FromGrpcStatus(stream->Finish());
    if (s.code() != absl::StatusCode::kInvalidArgument) return s.ToString();
    return FieldViolations(s).empty() ? std::string(s.message())
                                      : FieldViolations(s)[0].field;
  };
  v1::ScoringConfig bins;
  bins.set_bins(11);
  EXPECT_EQ(population_error(bins), "config.bins");
  v1::ScoringConfig window;
  window.set_window_days(-1);
  EXPECT_EQ(population_error(window), "config.window_days");

  v1::ScorePopulationRequest bad_event;
  bad_event.add_events()->set_entity_id("a");
  {
    testing::AuthorizedContext context;
    auto stream = stub->ScorePopulation(&context);
    stream->Write(bad_event);
    stream->WritesDone();
    v1::ScorePopulationResponse ignored;
    while (stream->Read(&ignored)) {
    }
    absl::Status s = FromGrpcStatus(stream->Finish());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    ASSERT_FALSE(FieldViolations(s).empty()) << s;
    EXPECT_EQ(FieldViolations(s)[0].field, "batch 1: events[0].time");
  }

  auto predict_error = [&](const v1::PredictionConfig& config) {
    testing::AuthorizedContext context;
    auto stream = stub->PredictClv(&context);
    v1::PredictClvRequest request;
    *request.mutable_config() = config;
    stream->Write(request);
    stream->WritesDone();
    v1::PredictClvResponse ignored;
    while (stream->Read(&ignored)) {
    }
    absl::Status s = FromGrpcStatus(stream->Finish());
    if (s.code() != absl::StatusCode::kInvalidArgument) return s.ToString();
    return FieldViolations(s).empty() ? std::string(s.message())
                                      : FieldViolations(s)[0].field;
  };
  v1::PredictionConfig good;
  good.mutable_model()->mutable_bgnbd()->set_r(0.24);
  good.mutable_model()->mutable_bgnbd()->set_alpha(4.4);
  good.mutable_model()->mutable_bgnbd()->set_a(0.79);
  good.mutable_model()->mutable_bgnbd()->set_b(2.4);
  v1::PredictionConfig discount = good;
  discount.set_discount_monthly(1.0);
  EXPECT_EQ(predict_error(discount), "config.discount_monthly");
  v1::PredictionConfig horizon = good;
  horizon.set_horizon_months(121);
  EXPECT_EQ(predict_error(horizon), "config.horizon_months");
  v1::PredictionConfig no_model;
  EXPECT_EQ(predict_error(no_model), "config.model.bgnbd");
}

// A population call that waits for its slot reads nothing meanwhile, so a
// wait as long as the server's bound on a silent stream is refused as the
// replica starts, naming both settings.
TEST(ScoringE2E, APopulationWaitPastTheSilentStreamBoundIsRefusedAtStart) {
  const RunResult r =
      testing::Run({BinaryDir() + "/services/scoring/rapport-scoring",
                    "--listen=127.0.0.1:0",
                    "--jwks_file=" + testing::TestAuth::Get().jwks_file(),
                    "--population_wait=10m"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("population_wait: must be shorter than "
                       "--max_stream_idle_time (10m)"),
            std::string::npos)
      << r.err;
}

// A caller is bounded: a message over --max_message_bytes is refused with
// RESOURCE_EXHAUSTED, and a stream left open past --max_stream_time is
// ended by the server with DEADLINE_EXCEEDED whatever deadline its client
// set (none here), and counted so in the server's metrics.
TEST(ScoringE2E, ALargeMessageAndAStreamPastItsTimeAreRefused) {
  ScoringServer server({"--max_message_bytes=65536", "--max_stream_time=1s"});
  auto stub = server.Stub();
  {
    testing::AuthorizedContext context;
    auto stream = stub->ScorePopulation(&context);
    v1::ScorePopulationRequest request;
    for (int i = 0; i < 10000; ++i)
      request.add_entity_ids(absl::StrCat("entity-", i));
    ASSERT_GT(request.ByteSizeLong(), 65536u);
    stream->Write(request);
    stream->WritesDone();
    v1::ScorePopulationResponse ignored;
    while (stream->Read(&ignored)) {
    }
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
  }
  {
    testing::AuthorizedContext context;
    // Sends nothing and never ends its side: the server's deadline ends it.
    auto stream = stub->ScorePopulation(&context);
    v1::ScorePopulationResponse ignored;
    while (stream->Read(&ignored)) {
    }
    const grpc::Status s = stream->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << s.error_message();
    EXPECT_TRUE(absl::StrContains(s.error_message(), "server's deadline of 1s"))
        << s.error_message();
    // The server's metrics count what the client got, once the handler has
    // seen the call end (soon after the client did).
    double counted = 0;
    for (int i = 0; i < 100 && counted == 0; ++i) {
      if (i > 0) absl::SleepFor(absl::Milliseconds(100));
      counted = testing::SumOf(testing::FetchMetrics(server.metrics_addr()),
                               "grpc_server_handled_total",
                               {"grpc_code=\"DeadlineExceeded\"",
                                "grpc_method=\"ScorePopulation\""});
    }
    EXPECT_EQ(counted, 1);
  }
  // The server goes on serving.
  RunResult health = Ctl(server.addr(), {"health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
}

// Reads a population call's answers to the end, and its status.
template <typename Stream>
grpc::Status FinishPopulation(Stream& stream) {
  v1::ScorePopulationResponse ignored;
  while (stream.Read(&ignored)) {
  }
  return stream.Finish();
}

// A population call that holds a slot of the replica (its initial metadata
// come once it does) until Finish.
class SlotHolder {
 public:
  SlotHolder(v1::ScoringService::Stub& stub,
             const v1::ScorePopulationRequest& request)
      : call_(stub.ScorePopulation(&context_)) {
    wrote_ = call_->Write(request);
    call_->WaitForInitialMetadata();
  }
  bool wrote() const { return wrote_; }
  grpc::Status Finish() {
    call_->WritesDone();
    return FinishPopulation(*call_);
  }

 private:
  testing::AuthorizedContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ScorePopulationRequest,
                                           v1::ScorePopulationResponse>>
      call_;
  bool wrote_ = false;
};

// Population calls hold their whole input in memory: beyond
// --max_population_calls_by_people at once (these callers are not the
// services) a call waits for a slot, and past --population_wait it is
// refused with RESOURCE_EXHAUSTED; once the slot is free the next call runs.
TEST(ScoringE2E, PopulationCallsBeyondTheLimitWaitThenAreRefused) {
  ScoringServer server(
      {"--max_population_calls_by_people=1", "--population_wait=1s"});
  auto stub = server.Stub();
  v1::ScorePopulationRequest request;
  request.add_entity_ids("a");
  auto finish = [](auto& stream) { return FinishPopulation(*stream); };
  SlotHolder first(*stub, request);
  ASSERT_TRUE(first.wrote());
  {
    testing::AuthorizedContext context;
    auto second = stub->ScorePopulation(&context);
    second->Write(request);
    second->WritesDone();
    const grpc::Status s = finish(second);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
  }
  const grpc::Status done = first.Finish();
  EXPECT_TRUE(done.ok()) << done.error_message();
  testing::AuthorizedContext third_context;
  auto third = stub->ScorePopulation(&third_context);
  third->Write(request);
  third->WritesDone();
  const grpc::Status next = finish(third);
  EXPECT_TRUE(next.ok()) << next.error_message();
}

// The services' population calls (refreshes) have slots of their own: a
// person's token holding every slot people may take (a stream left open, fed
// a message now and then) stands in no refresh's way. A person's call also
// carries fewer records (its memory comes on top of a refresh's).
TEST(ScoringE2E, APersonHoldingAPopulationSlotBlocksNoServiceCall) {
  ScoringServer server(
      {"--max_population_calls=1", "--max_population_calls_by_people=1",
       "--max_population_records_by_people=1", "--population_wait=1s"});
  auto stub = server.Stub();
  v1::ScorePopulationRequest request;
  request.add_entity_ids("a");
  v1::ScorePopulationRequest two = request;
  two.add_entity_ids("b");
  auto finish = [](auto& stream) { return FinishPopulation(*stream); };
  SlotHolder person(*stub, request);
  ASSERT_TRUE(person.wrote());
  {
    grpc::ClientContext context;
    context.AddMetadata("authorization",
                        testing::TestAuth::Get().ServiceBearer("partner"));
    auto service = stub->ScorePopulation(&context);
    service->Write(two);
    service->WritesDone();
    const grpc::Status s = finish(service);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
  {
    testing::AuthorizedContext context;  // another person: waits, refused
    auto other = stub->ScorePopulation(&context);
    other->Write(request);
    other->WritesDone();
    const grpc::Status s = finish(other);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_NE(s.error_message().find("for callers other than the services"),
              std::string::npos)
        << s.error_message();
  }
  EXPECT_TRUE(person.Finish().ok());
  {
    testing::AuthorizedContext context;  // two records: past a person's one
    auto large = stub->ScorePopulation(&context);
    large->Write(two);
    large->WritesDone();
    const grpc::Status s = finish(large);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.error_message();
    EXPECT_NE(s.error_message().find("more than 1"), std::string::npos)
        << s.error_message();
  }
}

// Calls waiting for a slot each hold a serving thread: past
// --max_population_waiting of them, one more is refused at once (busy), so
// that waiters cannot take the threads that other calls need. Of two calls
// behind a running one with room for one waiter, one waits and then runs,
// the other is refused saying that one waits already.
TEST(ScoringE2E, PastTheWaitingRoomAPopulationCallIsRefusedAtOnce) {
  ScoringServer server({"--max_population_calls_by_people=1",
                        "--population_wait=60s", "--max_population_waiting=1"});
  auto stub = server.Stub();
  v1::ScorePopulationRequest request;
  request.add_entity_ids("a");
  auto finish = [](auto& stream) { return FinishPopulation(*stream); };
  SlotHolder first(*stub, request);
  ASSERT_TRUE(first.wrote());
  testing::AuthorizedContext second_context, third_context;
  auto second = stub->ScorePopulation(&second_context);
  auto third = stub->ScorePopulation(&third_context);
  // Each read to its end on a thread of its own; the first call holds its
  // slot until one of them has been answered (the refused one: the other
  // waits for the slot), so that both meet a full waiting room.
  std::vector<grpc::Status> got(2);
  absl::Mutex mu;
  int answered = 0;
  std::vector<std::thread> readers;
  for (int i = 0; i < 2; ++i) {
    auto& stream = i == 0 ? second : third;
    stream->Write(request);
    stream->WritesDone();
    readers.emplace_back([&, i] {
      grpc::Status s = finish(i == 0 ? second : third);
      absl::MutexLock lock(&mu);
      got[i] = s;
      ++answered;
    });
  }
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(
        +[](int* n) { return *n >= 1; }, &answered));
  }
  ASSERT_TRUE(first.Finish().ok());
  for (std::thread& t : readers) t.join();
  int refused = 0, served = 0;
  for (const grpc::Status& s : got) {
    if (s.ok()) {
      ++served;
    } else {
      ++refused;
      EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_NE(s.error_message().find("1 more wait for one already"),
                std::string::npos)
          << s.error_message();
    }
  }
  EXPECT_EQ(served, 1);
  EXPECT_EQ(refused, 1);
}

// FitClvModel through the real binary, without the CDNOW data: a synthetic
// population fits both models (every parameter positive and finite, the
// customers counted), and each bad input is refused naming its field.
// PredictClv with a model and nobody to predict for still answers the
// population's expected purchases (one message, no predictions).
TEST(ScoringE2E, PredictClvWithAModelAndNoCustomersAnswersThePopulation) {
  ScoringServer server;
  auto stub = server.Stub();
  testing::AuthorizedContext context;
  auto predict = stub->PredictClv(&context);
  v1::PredictClvRequest request;
  v1::ClvModel* model = request.mutable_config()->mutable_model();
  model->set_unit(v1::TIME_UNIT_WEEK);
  model->mutable_bgnbd()->set_r(0.242593);
  model->mutable_bgnbd()->set_alpha(4.413532);
  model->mutable_bgnbd()->set_a(0.792886);
  model->mutable_bgnbd()->set_b(2.425753);
  request.mutable_config()->set_predict_periods(32);
  ASSERT_TRUE(predict->Write(request));
  predict->WritesDone();
  std::vector<v1::PredictClvResponse> got;
  v1::PredictClvResponse response;
  while (predict->Read(&response)) got.push_back(response);
  const grpc::Status done = predict->Finish();
  ASSERT_TRUE(done.ok()) << done.error_message();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].predictions_size(), 0);
  EXPECT_NEAR(got[0].population_expected_purchases(), 1.0437, 1e-4);
}

TEST(ScoringE2E, FitClvModelFitsASyntheticPopulationAndNamesBadFields) {
  ScoringServer server;
  auto stub = server.Stub();
  auto fit = [&](const std::vector<v1::FitClvModelRequest>& messages)
      -> absl::StatusOr<v1::FitClvModelResponse> {
    testing::AuthorizedContext context;
    v1::FitClvModelResponse response;
    auto stream = stub->FitClvModel(&context, &response);
    for (const v1::FitClvModelRequest& m : messages) stream->Write(m);
    stream->WritesDone();
    const absl::Status s = FromGrpcStatus(stream->Finish());
    if (!s.ok()) return s;
    return response;
  };
  auto field_of = [&](const std::vector<v1::FitClvModelRequest>& messages) {
    const absl::Status s = fit(messages).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    return FieldViolations(s).empty() ? std::string(s.message())
                                      : FieldViolations(s)[0].field;
  };
  // 300 customers over 52 weeks: a third bought once, the others came back
  // 1 to 9 times, spending 10 to 60.
  v1::FitClvModelRequest population;
  population.mutable_config()->set_unit(v1::TIME_UNIT_WEEK);
  population.mutable_config()->set_fit_spend(true);
  for (int i = 0; i < 300; ++i) {
    v1::CustomerSummary* c = population.add_summaries();
    c->set_entity_id(absl::StrCat("c", i));
    const int repeats = i % 3 == 0 ? 0 : 1 + i % 9;
    c->set_frequency(repeats);
    c->set_age(52);
    c->set_recency(repeats == 0 ? 0 : 52 - (i % 40));
    c->set_monetary_value(repeats == 0 ? 0 : 10 + (i * 7) % 50);
  }
  absl::StatusOr<v1::FitClvModelResponse> fitted = fit({population});
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  const v1::BgNbdModel& bg = fitted->model().bgnbd();
  for (double p : {bg.r(), bg.alpha(), bg.a(), bg.b()}) {
    EXPECT_TRUE(std::isfinite(p) && p > 0) << fitted->model().DebugString();
  }
  EXPECT_EQ(bg.customers(), 300);
  EXPECT_EQ(fitted->model().unit(), v1::TIME_UNIT_WEEK);
  ASSERT_TRUE(fitted->model().has_gamma_gamma());
  EXPECT_EQ(fitted->model().gamma_gamma().customers(), 200);
  // The same customers split over two messages fit the same model.
  v1::FitClvModelRequest first = population;
  v1::FitClvModelRequest second;
  first.mutable_summaries()->DeleteSubrange(150, 150);
  second.mutable_summaries()->CopyFrom(population.summaries());
  second.mutable_summaries()->DeleteSubrange(0, 150);
  absl::StatusOr<v1::FitClvModelResponse> split = fit({first, second});
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ(split->model().bgnbd().r(), bg.r());

  v1::FitClvModelRequest empty;
  empty.mutable_config()->set_unit(v1::TIME_UNIT_DAY);
  EXPECT_EQ(field_of({empty}), "summaries");
  v1::FitClvModelRequest twice = population;
  *twice.add_summaries() = population.summaries(7);
  EXPECT_EQ(field_of({twice}), "summaries");
  v1::FitClvModelRequest unit = population;
  unit.mutable_config()->set_unit(static_cast<v1::TimeUnit>(99));
  EXPECT_EQ(field_of({unit}), "config.unit");
  v1::FitClvModelRequest events;
  events.mutable_config()->set_unit(v1::TIME_UNIT_DAY);
  v1::ActivityEvent* e = events.add_events();
  e->set_entity_id("a");
  e->mutable_time()->set_seconds(1'700'000'000);
  e->mutable_amount()->set_units(5);
  EXPECT_EQ(field_of({events}), "config.as_of");
  v1::FitClvModelRequest spenders = population;
  for (v1::CustomerSummary& c : *spenders.mutable_summaries()) {
    if (c.entity_id() != "c1") c.set_monetary_value(0);
  }
  // Spend asked for, with one repeat buyer who spent: nothing to fit it on.
  const absl::Status no_spend = fit({spenders}).status();
  EXPECT_EQ(no_spend.code(), absl::StatusCode::kFailedPrecondition) << no_spend;
  EXPECT_TRUE(absl::StrContains(no_spend.message(), "repeat buyers"))
      << no_spend;
}

// One population call is bounded in records: past
// --max_population_records (a service's call) it is refused with
// RESOURCE_EXHAUSTED, whatever the call (scores or CLV); at the bound it
// runs. (Others' calls have a bound of their own: see above.)
TEST(ScoringE2E, APopulationPastItsRecordBoundIsRefused) {
  ScoringServer server({"--max_population_records=1000"});
  auto stub = server.Stub();
  const std::string service =
      testing::TestAuth::Get().ServiceBearer("customer");
  auto score = [&](int entities) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", service);
    auto stream = stub->ScorePopulation(&context);
    // Two messages: the bound counts the call, not one message.
    for (int half = 0; half < 2; ++half) {
      v1::ScorePopulationRequest request;
      for (int i = half; i < entities; i += 2)
        request.add_entity_ids(absl::StrCat("e", i));
      stream->Write(request);
    }
    stream->WritesDone();
    v1::ScorePopulationResponse ignored;
    while (stream->Read(&ignored)) {
    }
    return stream->Finish();
  };
  const grpc::Status at_bound = score(1000);
  EXPECT_TRUE(at_bound.ok()) << at_bound.error_message();
  const grpc::Status past = score(1001);
  EXPECT_EQ(past.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << past.error_message();
  EXPECT_TRUE(absl::StrContains(past.error_message(), "more than 1000 records"))
      << past.error_message();

  grpc::ClientContext context;
  context.AddMetadata("authorization", service);
  auto predict = stub->PredictClv(&context);
  v1::PredictClvRequest request;
  request.mutable_config()->mutable_fit()->set_unit(v1::TIME_UNIT_DAY);
  for (int i = 0; i < 1001; ++i) {
    v1::ActivityEvent* e = request.add_events();
    e->set_entity_id(absl::StrCat("e", i % 10));
    e->mutable_time()->set_seconds(1'700'000'000 + i * 86400);
    e->mutable_amount()->set_units(1);
  }
  predict->Write(request);
  predict->WritesDone();
  v1::PredictClvResponse ignored;
  while (predict->Read(&ignored)) {
  }
  const grpc::Status clv = predict->Finish();
  EXPECT_EQ(clv.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << clv.error_message();
}

TEST(ScoringE2E, ClvFromTheCdnowLogReproducesThePublishedFigures) {
  const std::string data =
      testing::SourceDir() + "/../shared/data/cdnow/CDNOW_sample.txt";
  if (!std::filesystem::exists(data)) {
    GTEST_SKIP() << "needs ../shared/data/cdnow (the shared reference data) "
                    "beside the checkout";
  }
  // CDNOW_sample.txt: master id, sample id, YYYYMMDD, CDs, dollars.
  std::ostringstream csv;
  csv << "entity_id,timestamp,amount\n";
  std::istringstream in(testing::ReadFile(data));
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f =
        absl::StrSplit(line, ' ', absl::SkipWhitespace());
    if (f.size() < 5) continue;
    const std::string& d = f[2];
    csv << f[1] << "," << d.substr(0, 4) << "-" << d.substr(4, 2) << "-"
        << d.substr(6, 2) << "T00:00:00Z," << absl::StripAsciiWhitespace(f[4])
        << "\n";
  }
  TempDir dir;
  testing::WriteFile(dir.File("cdnow.csv"), csv.str());
  ScoringServer server;
  RunResult r =
      Ctl(server.addr(),
          {"scoring", "clv", "--transactions", dir.File("cdnow.csv"), "--as-of",
           "1998-06-30T00:00:00Z", "--holdout-periods", "39", "--unit", "week",
           "--out", dir.File("p.csv"), "--model-out", dir.File("m.json")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, double> model;
  for (absl::string_view l :
       absl::StrSplit(testing::ReadFile(dir.File("m.json")), '\n')) {
    std::vector<std::string> kv = absl::StrSplit(l, ':');
    if (kv.size() != 2) continue;
    double v = 0;
    std::string key(absl::StripAsciiWhitespace(kv[0]));
    key = key.substr(1, key.size() - 2);
    if (absl::SimpleAtod(
            absl::StripSuffix(absl::StripAsciiWhitespace(kv[1]), ","), &v)) {
      model[key] = v;
    }
  }
  EXPECT_NEAR(model["r"], 0.243, 5e-4);
  EXPECT_NEAR(model["alpha"], 4.414, 5e-4);
  EXPECT_NEAR(model["a"], 0.793, 5e-4);
  EXPECT_NEAR(model["b"], 2.426, 5e-4);
  EXPECT_NEAR(model["log_likelihood"], -9582.4, 0.1);
  EXPECT_NEAR(model["p"], 6.25, 5e-3);
  EXPECT_NEAR(model["q"], 3.74, 5e-3);
  EXPECT_NEAR(model["gamma"], 15.44, 5e-3);
  EXPECT_NEAR(model["gg_log_likelihood"], -4055.92, 0.1);
  EXPECT_EQ(model["customers"], 2357);
  EXPECT_EQ(model["gg_customers"], 946);
  EXPECT_EQ(model["holdout_actual_purchases"], 1882);
  // E[X(39)] lies between the published E[X(32)] = 1.0437 and E[X(78)] =
  // 1.8576 (it grows with t).
  EXPECT_GT(model["population_expected_purchases"], 1.0437);
  EXPECT_LT(model["population_expected_purchases"], 1.8576);

  std::vector<std::vector<std::string>> rows =
      ReadCsv(testing::ReadFile(dir.File("p.csv")));
  ASSERT_EQ(rows.size(), 2358u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{
                         "entity_id", "frequency", "recency", "T", "p_alive",
                         "expected_purchases", "expected_avg_spend", "clv"}));
  // Customer 0001: x = 2, t_x = 30.43, T = 38.86 weeks; E[Y(39)] = 1.226;
  // spend 24.65.
  EXPECT_EQ(rows[1][0], "0001");
  EXPECT_EQ(rows[1][1], "2");
  double t_x = 0, T = 0, expected = 0, spend = 0;
  ASSERT_TRUE(absl::SimpleAtod(rows[1][2], &t_x) &&
              absl::SimpleAtod(rows[1][3], &T) &&
              absl::SimpleAtod(rows[1][5], &expected) &&
              absl::SimpleAtod(rows[1][6], &spend));
  EXPECT_NEAR(t_x, 30.43, 0.005);
  EXPECT_NEAR(T, 38.86, 0.005);
  EXPECT_NEAR(expected, 1.226, 0.001);
  EXPECT_NEAR(spend, 24.65, 0.01);
}

}  // namespace
}  // namespace rapport
