// community_bench: the financial-community service's imports of holdings and
// engagements, its refresh, targets and register, with what the database
// alone does in the same run on the same MariaDB (these machines differ by 3x
// from one day to the next, so a figure means something only as a share of
// its baseline):
//
//   import     --holdings holding rows, then --engagements engagement rows,
//              for --members members (ext:bench:N, created by the holdings
//              import) through ImportHoldings and ImportEngagements on 2
//              streams each
//   refresh    RefreshScores of every member (SCORING.md section 10), to its
//              end
//   targets    ListEngagementTargets as of now, limit 100, timed 5 times
//   register   GetRegister as of 2024-06-30, first page, timed 5 times
//   changes    ListPositionChanges from 2024-03-31 to 2024-06-30, first page,
//              timed 5 times
//   at-risk    ListAtRiskHolders as of now, limit 100, timed 5 times
//   raw insert the same rows into bare copies of the holdings and engagements
//              tables with prepared 1000-row multi-row INSERTs on 2
//              connections
//   sql rfm    the same R, F and M quintiles as one SQL query: engagement
//              counts and recency, and the market value at as_of from the
//              holdings (each security's latest row)
//
//   community_bench --addr 127.0.0.1:50053 --token T --mysql_uri URI/db
//
// --imports_only stops after the imports and their raw INSERTs (to compare
// two builds' imports); --engagements 0 imports no engagements.
//
// Prints rates, times and the ratios the service is judged by.
#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <grpcpp/grpcpp.h>
#include <mysql_driver.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/civil_time.h"
#include "absl/time/clock.h"
#include "common/base/timestamp.h"
#include "common/channel.h"
#include "common/mysql/mysql_pool.h"
#include "common/proto_convert.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50053",
          "the financial-community service");
ABSL_FLAG(std::string, token, "", "bearer token of an admin");
ABSL_FLAG(std::string, mysql_uri, "",
          "the financial-community service's database, for the baselines");
ABSL_FLAG(int64_t, members, 100'000, "members (created by the import)");
ABSL_FLAG(int64_t, holdings, 1'000'000, "holding rows to import");
ABSL_FLAG(int64_t, engagements, 1'000'000, "engagement rows to import");
ABSL_FLAG(bool, imports_only, false,
          "measure the imports and their raw INSERTs only");

namespace rapport {
namespace {

namespace v1 = ::rapport::financial_community::v1;
namespace cv1 = ::rapport::common::v1;

constexpr int64_t kAsOf = 1'719'792'000'000'000;  // 2024-07-01T00:00:00Z
constexpr int kRowsPerMessage = 5000;
constexpr int kStreams = 2;
constexpr int kSecurities = 50;
constexpr int kSecuritiesPerMember = 3;
constexpr int kTimedCalls = 5;

void Die(const std::string& what) {
  std::fflush(stdout);  // what was measured before, in order
  std::fprintf(stderr, "community_bench: %s\n", what.c_str());
  std::exit(1);
}

int64_t Members() { return absl::GetFlag(FLAGS_members); }

// Holding row i of the synthetic register, the same for the import and the
// baseline: member i % members; its k-th row (k = i / members) is security
// k % 3 of the member's three (of 50) at the end of the quarter k / 3 before
// 2024-07-01, as 13F-style quarterly files give them. 5% are sell-outs.
struct Holding {
  int64_t member;
  std::string security;
  std::string date;  // YYYY-MM-DD
  int64_t end_time_us;
  int64_t shares;
  std::string price;
};

Holding HoldingAt(int64_t i) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 7919 + 23);
  Holding h;
  h.member = i % Members();
  const int64_t k = i / Members();
  h.security = absl::StrFormat(
      "SEC%02d", (h.member * 7 + k % kSecuritiesPerMember) % kSecurities);
  const absl::CivilDay end = absl::CivilDay(absl::CivilMonth(2024, 7) -
                                            3 * (k / kSecuritiesPerMember)) -
                             1;
  h.date = absl::FormatCivilTime(end);
  h.end_time_us =
      absl::ToUnixMicros(absl::FromCivil(end + 1, absl::UTCTimeZone())) - 1;
  h.shares = rng() % 20 == 0 ? 0 : 1 + static_cast<int64_t>(rng() % 1'000'000);
  h.price = absl::StrFormat("%d.%02d", 5 + rng() % 500, rng() % 100);
  return h;
}

// Engagement row i: member i % members, within the three years before
// 2024-07-01, each a one-member engagement of its own.
struct Engagement {
  int64_t member;
  int64_t time_us;
  int kind;  // v1::EngagementKind
  std::string cost;
};

constexpr const char* kKindNames[] = {
    "",           "meeting",       "call",       "roadshow",
    "conference", "earnings_call", "report_sent"};

Engagement EngagementAt(int64_t i) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 6007 + 41);
  Engagement e;
  e.member = i % Members();
  e.time_us = kAsOf - static_cast<int64_t>(1 + rng() % (3 * 365 * 86'400ll)) *
                          1'000'000;
  e.kind = 1 + static_cast<int>(rng() % 6);
  e.cost = absl::StrFormat("%d.%02d", rng() % 2000, rng() % 100);
  return e;
}

std::string MemberRef(int64_t member) {
  return absl::StrCat("ext:bench:", member);
}

void Authorize(grpc::ClientContext& c) {
  c.AddMetadata("authorization",
                absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token)));
}

std::unique_ptr<v1::FinancialCommunityService::Stub> NewStub() {
  return v1::FinancialCommunityService::NewStub(
      *MakeChannel(absl::GetFlag(FLAGS_addr), {}));
}

// Every kStreams-th row from `stream` on through one import call; with
// kStreams dividing the members, each stream carries members of its own.
// `open` starts the call, `fill` adds row i to a request. Returns the
// members the call created.
template <typename Request, typename Response, typename Open, typename Fill>
int64_t ImportStream(const char* what, int stream, int64_t rows, Open open,
                     Fill fill) {
  auto stub = NewStub();
  grpc::ClientContext context;
  Authorize(context);
  Response response;
  auto writer = open(*stub, &context, &response);
  Request request;
  request.set_import_id(absl::StrCat("bench-", what, "-", stream));
  for (int64_t i = stream; i < rows; i += kStreams) {
    fill(i, request);
    if (request.rows_size() == kRowsPerMessage) {
      if (!writer->Write(request)) break;
      request.Clear();
    }
  }
  if (request.rows_size() > 0) writer->Write(request);
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) Die(absl::StrCat("import ", what, ": ", s.error_message()));
  if (response.rejected_size() > 0) {
    Die(absl::StrCat(what, ": ", response.rejected_size(),
                     " rows rejected, first: row ", response.rejected(0).row(),
                     " ", response.rejected(0).field(), ": ",
                     response.rejected(0).message()));
  }
  if (response.accepted() + response.duplicates() !=
      (rows - stream + kStreams - 1) / kStreams) {
    Die(absl::StrCat(what, ": ", response.accepted(), " accepted and ",
                     response.duplicates(), " duplicates of ",
                     (rows - stream + kStreams - 1) / kStreams, " rows"));
  }
  return response.created_members();
}

// Runs the kStreams streams of one import and prints its rate.
template <typename Request, typename Response, typename Open, typename Fill>
double Import(const char* what, int64_t rows, Open open, Fill fill) {
  std::vector<int64_t> created(kStreams, 0);
  const absl::Time start = absl::Now();
  std::vector<std::thread> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.emplace_back([&, i] {
      created[i] = ImportStream<Request, Response>(what, i, rows, open, fill);
    });
  }
  for (auto& t : streams) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double rate = static_cast<double>(rows) / seconds;
  int64_t members = 0;
  for (int64_t c : created) members += c;
  std::printf(
      "%-22s %10.0f rows/s  (%lld rows, %lld members created, %.1f s, "
      "%d streams)\n",
      absl::StrCat("import ", what).c_str(), rate, static_cast<long long>(rows),
      static_cast<long long>(members), seconds, kStreams);
  return rate;
}

double ImportHoldings() {
  return Import<v1::ImportHoldingsRequest, v1::ImportHoldingsResponse>(
      "holdings", absl::GetFlag(FLAGS_holdings),
      [](v1::FinancialCommunityService::Stub& stub,
         grpc::ClientContext* context, v1::ImportHoldingsResponse* response) {
        return stub.ImportHoldings(context, response);
      },
      [](int64_t i, v1::ImportHoldingsRequest& request) {
        const Holding h = HoldingAt(i);
        v1::HoldingRow* row = request.add_rows();
        row->set_row(i + 1);
        row->set_member_ref(MemberRef(h.member));
        row->set_security(h.security);
        row->set_date(h.date);
        row->set_shares(absl::StrCat(h.shares));
        row->set_price(h.price);
      });
}

double ImportEngagements() {
  return Import<v1::ImportEngagementsRequest, v1::ImportEngagementsResponse>(
      "engagements", absl::GetFlag(FLAGS_engagements),
      [](v1::FinancialCommunityService::Stub& stub,
         grpc::ClientContext* context,
         v1::ImportEngagementsResponse* response) {
        return stub.ImportEngagements(context, response);
      },
      [](int64_t i, v1::ImportEngagementsRequest& request) {
        const Engagement e = EngagementAt(i);
        v1::EngagementRow* row = request.add_rows();
        row->set_row(i + 1);
        row->set_member_ref(MemberRef(e.member));
        row->set_timestamp(FormatRfc3339Micros(e.time_us));
        row->set_kind(kKindNames[e.kind]);
        row->set_cost(e.cost);
      });
}

double Refresh() {
  auto stub = NewStub();
  v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  v1::RefreshScoresResponse started;
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  Authorize(context);
  grpc::Status s = stub->RefreshScores(&context, request, &started);
  if (!s.ok()) Die(absl::StrCat("refresh: ", s.error_message()));
  for (;;) {
    absl::SleepFor(absl::Milliseconds(100));
    grpc::ClientContext poll;
    Authorize(poll);
    v1::GetRefreshJobRequest get;
    get.set_id(started.job().id());
    v1::GetRefreshJobResponse job;
    s = stub->GetRefreshJob(&poll, get, &job);
    if (!s.ok()) Die(absl::StrCat("refresh job: ", s.error_message()));
    if (job.job().state() == cv1::RefreshJob::STATE_RUNNING) continue;
    if (job.job().state() != cv1::RefreshJob::STATE_SUCCEEDED) {
      Die(absl::StrCat("refresh failed: ", job.job().error()));
    }
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    std::printf("%-22s %10.2f s  (%lld members)\n", "refresh", seconds,
                static_cast<long long>(job.job().total()));
    return seconds;
  }
}

// Times `call` kTimedCalls times, each with a fresh authorized context that
// allows five minutes; prints the fastest, median and slowest and what the
// last call answered (`call` returns a description of it).
void Timed(const char* what,
           const std::function<std::string(v1::FinancialCommunityService::Stub&,
                                           grpc::ClientContext&)>& call) {
  auto stub = NewStub();
  std::vector<double> seconds;
  std::string answered;
  for (int i = 0; i < kTimedCalls; ++i) {
    grpc::ClientContext context;
    Authorize(context);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::minutes(5));
    const absl::Time start = absl::Now();
    answered = call(*stub, context);
    seconds.push_back(absl::ToDoubleSeconds(absl::Now() - start));
  }
  std::sort(seconds.begin(), seconds.end());
  std::printf(
      "%-22s %10.3f s  (median; fastest %.3f s, slowest %.3f s of %d "
      "calls; %s)\n",
      what, seconds[seconds.size() / 2], seconds.front(), seconds.back(),
      kTimedCalls, answered.c_str());
}

void Targets() {
  Timed("targets", [](v1::FinancialCommunityService::Stub& stub,
                      grpc::ClientContext& context) {
    v1::ListEngagementTargetsRequest request;
    *request.mutable_as_of() = ToTimestamp(absl::ToUnixMicros(absl::Now()));
    request.set_limit(100);
    v1::ListEngagementTargetsResponse response;
    grpc::Status s = stub.ListEngagementTargets(&context, request, &response);
    if (!s.ok()) Die(absl::StrCat("targets: ", s.error_message()));
    return absl::StrCat(response.targets_size(),
                        " targets, as of now, limit 100");
  });
}

void Register() {
  Timed("register", [](v1::FinancialCommunityService::Stub& stub,
                       grpc::ClientContext& context) {
    v1::GetRegisterRequest request;
    request.mutable_as_of()->set_year(2024);
    request.mutable_as_of()->set_month(6);
    request.mutable_as_of()->set_day(30);
    v1::GetRegisterResponse response;
    grpc::Status s = stub.GetRegister(&context, request, &response);
    if (!s.ok()) Die(absl::StrCat("register: ", s.error_message()));
    return absl::StrCat(response.positions_size(), " positions of ",
                        response.holders(),
                        " on the first page, as of 2024-06-30");
  });
}

void Changes() {
  Timed("changes", [](v1::FinancialCommunityService::Stub& stub,
                      grpc::ClientContext& context) {
    v1::ListPositionChangesRequest request;
    request.mutable_from()->set_year(2024);
    request.mutable_from()->set_month(3);
    request.mutable_from()->set_day(31);
    request.mutable_to()->set_year(2024);
    request.mutable_to()->set_month(6);
    request.mutable_to()->set_day(30);
    v1::ListPositionChangesResponse response;
    grpc::Status s = stub.ListPositionChanges(&context, request, &response);
    if (!s.ok()) Die(absl::StrCat("changes: ", s.error_message()));
    return absl::StrCat(response.changes_size(),
                        " changes on the first page, 2024-03-31 to 2024-06-30");
  });
}

void AtRisk() {
  Timed("at-risk", [](v1::FinancialCommunityService::Stub& stub,
                      grpc::ClientContext& context) {
    v1::ListAtRiskHoldersRequest request;
    *request.mutable_as_of() = ToTimestamp(absl::ToUnixMicros(absl::Now()));
    request.set_limit(100);
    v1::ListAtRiskHoldersResponse response;
    grpc::Status s = stub.ListAtRiskHolders(&context, request, &response);
    if (!s.ok()) Die(absl::StrCat("at-risk: ", s.error_message()));
    return absl::StrCat(response.holders_size(),
                        " holders at risk, as of now, limit 100");
  });
}

std::unique_ptr<sql::Connection> Connect(const MysqlOptions& o) {
  sql::ConnectOptionsMap props;
  props["hostName"] = sql::SQLString(absl::StrCat("tcp://", o.host));
  props["port"] = o.port;
  props["userName"] = sql::SQLString(o.user);
  props["password"] = sql::SQLString(o.password);
  props["schema"] = sql::SQLString(o.database);
  props["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  return std::unique_ptr<sql::Connection>(
      sql::mysql::get_mysql_driver_instance()->connect(props));
}

// A bare copy of one of the service's tables to insert into.
struct RawTable {
  const char* table;        // the service's table, copied with LIKE
  const char* foreign_key;  // dropped from the copy
  const char* columns;      // of the INSERT
  int column_count;
  int64_t rows;
  // Binds row i at parameters from + 1 on.
  std::function<void(int64_t i, sql::PreparedStatement& s, int from)> bind;
};

// The same rows into a bare copy of the table: 1000-row prepared INSERTs, on
// as many connections as the import has streams.
double RawInsert(const MysqlOptions& options, const RawTable& raw) {
  const std::string copy = absl::StrCat("baseline_", raw.table);
  {
    auto c = Connect(options);
    std::unique_ptr<sql::Statement> s(c->createStatement());
    s->execute(absl::StrCat("DROP TABLE IF EXISTS ", copy));
    // Same columns and indexes.
    s->execute(absl::StrCat("CREATE TABLE ", copy, " LIKE ", raw.table));
    s->execute(absl::StrCat("ALTER TABLE ", copy,
                            " DROP FOREIGN KEY IF EXISTS ", raw.foreign_key));
  }
  constexpr int kRows = 1000;
  auto statement = [&](int rows) {
    std::string insert =
        absl::StrCat("INSERT INTO ", copy, " (", raw.columns, ") VALUES ");
    std::string row = "(";
    for (int k = 0; k < raw.column_count; ++k)
      absl::StrAppend(&row, k ? ",?" : "?");
    row += ")";
    for (int r = 0; r < rows; ++r) absl::StrAppend(&insert, r ? "," : "", row);
    return insert;
  };
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kStreams; ++t) {
    threads.emplace_back([&, t] {
      auto c = Connect(options);
      std::unique_ptr<sql::PreparedStatement> full(
          c->prepareStatement(statement(kRows)));
      std::vector<int64_t> batch;
      auto flush = [&] {
        std::unique_ptr<sql::PreparedStatement> partial;
        sql::PreparedStatement* s = full.get();
        if (static_cast<int>(batch.size()) != kRows) {
          partial.reset(
              c->prepareStatement(statement(static_cast<int>(batch.size()))));
          s = partial.get();
        }
        for (size_t k = 0; k < batch.size(); ++k) {
          raw.bind(batch[k], *s, static_cast<int>(k) * raw.column_count);
        }
        s->executeUpdate();
        batch.clear();
      };
      for (int64_t i = t; i < raw.rows; i += kStreams) {
        batch.push_back(i);
        if (static_cast<int>(batch.size()) == kRows) flush();
      }
      if (!batch.empty()) flush();
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double rate = static_cast<double>(raw.rows) / seconds;
  std::printf(
      "%-22s %10.0f rows/s  (%lld rows, %.1f s, %d connections, %d-row "
      "statements)\n",
      absl::StrCat("raw insert ", raw.table).c_str(), rate,
      static_cast<long long>(raw.rows), seconds, kStreams, kRows);
  auto c = Connect(options);
  std::unique_ptr<sql::Statement> s(c->createStatement());
  s->execute(absl::StrCat("DROP TABLE ", copy));
  return rate;
}

std::string MemberId(int64_t member) {
  return absl::StrFormat("m%025d", member);
}

double RawHoldings(const MysqlOptions& options) {
  return RawInsert(
      options,
      {.table = "holdings",
       .foreign_key = "holdings_member_fk",
       .columns = "id, member_id, security, end_time_us, shares, price, "
                  "create_time_us, recorded_by, fingerprint",
       .column_count = 9,
       .rows = absl::GetFlag(FLAGS_holdings),
       .bind = [](int64_t i, sql::PreparedStatement& s, int b) {
         const Holding h = HoldingAt(i);
         s.setString(b + 1, absl::StrFormat("h%025d", i));
         s.setString(b + 2, MemberId(h.member));
         s.setString(b + 3, h.security);
         s.setInt64(b + 4, h.end_time_us);
         s.setInt64(b + 5, h.shares);
         s.setString(b + 6, h.price);
         s.setInt64(b + 7, kAsOf);
         s.setString(b + 8, "bench");
         s.setString(b + 9, "0123456789abcdef");
       }});
}

double RawEngagements(const MysqlOptions& options) {
  return RawInsert(
      options,
      {.table = "engagements",
       .foreign_key = "engagements_member_fk",
       .columns = "id, engagement_id, member_id, kind, engagement_time_us, "
                  "cost, outcome, note, recorded_by, fingerprint",
       .column_count = 10,
       .rows = absl::GetFlag(FLAGS_engagements),
       .bind = [](int64_t i, sql::PreparedStatement& s, int b) {
         const Engagement e = EngagementAt(i);
         const std::string id = absl::StrFormat("e%025d", i);
         s.setString(b + 1, id);
         s.setString(b + 2, id);
         s.setString(b + 3, MemberId(e.member));
         s.setInt(b + 4, e.kind);
         s.setInt64(b + 5, e.time_us);
         s.setString(b + 6, e.cost);
         s.setString(b + 7, "");
         s.setString(b + 8, "");
         s.setString(b + 9, "bench");
         s.setString(b + 10, "0123456789abcdef");
       }});
}

// R, F and M quintiles of every member with an engagement by as_of, as one
// query: frequency and recency from the engagements, monetary the market
// value at as_of (each security's latest holding row at or before it).
double SqlRfm(const MysqlOptions& options) {
  auto c = Connect(options);
  std::unique_ptr<sql::Statement> s(c->createStatement());
  const absl::Time start = absl::Now();
  std::unique_ptr<sql::ResultSet> rows(s->executeQuery(absl::StrCat(
      "SELECT COUNT(*) FROM (SELECT member_id, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY -recency_days) - 1) / COUNT(*) "
      "OVER ()) AS r, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY frequency) - 1) / COUNT(*) OVER "
      "()) AS f, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY monetary) - 1) / COUNT(*) OVER "
      "()) AS m FROM (SELECT e.member_id, FLOOR((",
      kAsOf,
      " - e.last_us) / 86400000000) AS recency_days, e.frequency, "
      "COALESCE(v.value, 0) AS monetary FROM (SELECT member_id, "
      "MAX(engagement_time_us) AS last_us, COUNT(*) AS frequency FROM "
      "engagements WHERE engagement_time_us <= ",
      kAsOf,
      " GROUP BY member_id) e LEFT JOIN (SELECT member_id, SUM(shares * "
      "price) AS value FROM (SELECT member_id, shares, price, ROW_NUMBER() "
      "OVER (PARTITION BY member_id, security ORDER BY end_time_us DESC) AS "
      "n FROM holdings WHERE end_time_us <= ",
      kAsOf,
      ") latest WHERE n = 1 GROUP BY member_id) v ON v.member_id = "
      "e.member_id) facts) scored")));
  rows->next();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("%-22s %10.2f s  (%lld members scored)\n", "sql rfm", seconds,
              static_cast<long long>(rows->getInt64(1)));
  return seconds;
}

int Main() {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(absl::GetFlag(FLAGS_mysql_uri));
  if (!options.ok()) Die(std::string(options.status().message()));
  if (Members() <= 0 || Members() % kStreams != 0) {
    Die(absl::StrCat("--members must be a positive multiple of ", kStreams));
  }
  const bool engagements = absl::GetFlag(FLAGS_engagements) > 0;
  const bool imports_only = absl::GetFlag(FLAGS_imports_only);
  const double holdings_rate = ImportHoldings();
  const double engagements_rate = engagements ? ImportEngagements() : 0;
  double refresh = 0;
  if (!imports_only) {
    refresh = Refresh();
    Targets();
    Register();
    Changes();
    AtRisk();
  }
  try {
    const double raw_holdings = RawHoldings(*options);
    std::printf(
        "holdings import at %.0f%% of the raw INSERT's rows/s (at least "
        "50%%)\n",
        100 * holdings_rate / raw_holdings);
    if (engagements) {
      const double raw_engagements = RawEngagements(*options);
      std::printf(
          "engagements import at %.0f%% of the raw INSERT's rows/s (at least "
          "50%%)\n",
          100 * engagements_rate / raw_engagements);
    }
    if (!imports_only) {
      const double sql = SqlRfm(*options);
      std::printf("refresh in %.0f%% of the SQL query's time (at most 20%%)\n",
                  100 * refresh / sql);
    }
  } catch (const sql::SQLException& e) {
    Die(absl::StrCat("database: ", e.what()));
  }
  return 0;
}

}  // namespace
}  // namespace rapport

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return rapport::Main();
}
