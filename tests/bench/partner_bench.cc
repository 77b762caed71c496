// partner_bench: the partner service's import of deals and refresh, with what
// the database alone does in the same run on the same MariaDB (these
// machines differ by 3x from one day to the next, so a figure means something
// only as a share of its baseline):
//
//   import     --deals rows for --partners partners (ext:bench:N, created by
//              the import) through ImportDeals on 2 streams
//   refresh    RefreshScores of every partner, to its end
//   raw insert the same rows into a bare copy of the deals table with
//              prepared 1000-row multi-row INSERTs on 2 connections
//   sql rfm    the same R, F and M quintiles as one SQL query (window
//              functions) over the won deals
//
//   partner_bench --addr 127.0.0.1:50052 --token T --mysql_uri URI/db
//
// Prints rates, times and the two ratios the service is judged by.
#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <grpcpp/grpcpp.h>
#include <mysql_driver.h>

#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/base/timestamp.h"
#include "common/channel.h"
#include "common/mysql/mysql_pool.h"
#include "common/proto_convert.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"

ABSL_FLAG(std::string, addr, "127.0.0.1:50052", "the partner service");
ABSL_FLAG(std::string, token, "", "bearer token of an admin");
ABSL_FLAG(std::string, mysql_uri, "",
          "the partner service's database, for the baselines");
ABSL_FLAG(int64_t, partners, 100'000, "partners (created by the import)");
ABSL_FLAG(int64_t, deals, 1'000'000, "deals to import");

namespace rapport {
namespace {

namespace v1 = ::rapport::partner::v1;
namespace cv1 = ::rapport::common::v1;

constexpr int64_t kAsOf = 1'719'792'000'000'000;  // 2024-07-01T00:00:00Z
constexpr int kRowsPerMessage = 5000;
constexpr int kStreams = 2;

void Die(const std::string& what) {
  std::fprintf(stderr, "partner_bench: %s\n", what.c_str());
  std::exit(1);
}

// Deal i of the synthetic flow, the same for the import and the baseline:
// partner i % partners, 60% won, 30% lost, 10% still submitted.
struct Deal {
  std::string partner;
  std::string reference;
  std::string account;
  std::string amount;
  int64_t registered_us;
  const char* state;
  int state_number;
  int64_t closed_us;  // 0 when open
};

Deal DealAt(int64_t i) {
  std::mt19937_64 rng(static_cast<uint64_t>(i) * 7919 + 17);
  Deal d;
  d.partner = absl::StrCat("ext:bench:", i % absl::GetFlag(FLAGS_partners));
  d.reference = absl::StrCat("D", i);
  d.account = absl::StrCat("Account ", rng() % 200'000);
  d.amount = absl::StrFormat("%d.%02d", 100 + rng() % 20'000, rng() % 100);
  d.registered_us =
      kAsOf - static_cast<int64_t>(rng() % (3 * 365 * 86'400ll)) * 1'000'000;
  const uint64_t roll = rng() % 10;
  if (roll < 6) {
    d.state = "won";
    d.state_number = v1::DEAL_STATE_WON;
  } else if (roll < 9) {
    d.state = "lost";
    d.state_number = v1::DEAL_STATE_LOST;
  } else {
    d.state = "submitted";
    d.state_number = v1::DEAL_STATE_SUBMITTED;
  }
  d.closed_us =
      d.state_number == v1::DEAL_STATE_SUBMITTED
          ? 0
          : std::min(kAsOf, d.registered_us + static_cast<int64_t>(rng() % 60) *
                                                  86'400'000'000);
  return d;
}

void Authorize(grpc::ClientContext& c) {
  c.AddMetadata("authorization",
                absl::StrCat("Bearer ", absl::GetFlag(FLAGS_token)));
}

std::unique_ptr<v1::PartnerService::Stub> NewStub() {
  return v1::PartnerService::NewStub(
      *MakeChannel(absl::GetFlag(FLAGS_addr), {}));
}

// Every kStreams-th deal from `stream` on; with kStreams dividing the
// partners, each stream carries partners of its own.
void Import(int stream) {
  auto stub = NewStub();
  grpc::ClientContext context;
  Authorize(context);
  v1::ImportDealsResponse response;
  auto writer = stub->ImportDeals(&context, &response);
  v1::ImportDealsRequest request;
  request.set_import_id(absl::StrCat("bench-", stream));
  for (int64_t i = stream; i < absl::GetFlag(FLAGS_deals); i += kStreams) {
    const Deal d = DealAt(i);
    v1::DealRow* row = request.add_rows();
    row->set_row(i + 1);
    row->set_partner_ref(d.partner);
    row->set_deal_id(d.reference);
    row->set_account(d.account);
    row->set_amount(d.amount);
    row->set_registered_at(FormatRfc3339Micros(d.registered_us));
    row->set_state(d.state);
    if (d.closed_us != 0) row->set_closed_at(FormatRfc3339Micros(d.closed_us));
    if (request.rows_size() == kRowsPerMessage) {
      if (!writer->Write(request)) break;
      request.Clear();
    }
  }
  if (request.rows_size() > 0) writer->Write(request);
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) Die(absl::StrCat("import: ", s.error_message()));
  if (response.rejected_size() > 0) {
    Die(absl::StrCat(response.rejected_size(), " rows rejected, first: ",
                     response.rejected(0).message()));
  }
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
    std::printf("%-12s %10.2f s  (%lld partners)\n", "refresh", seconds,
                static_cast<long long>(job.job().total()));
    return seconds;
  }
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

// The same rows into a bare copy of the deals table: 1000-row prepared
// INSERTs, on as many connections as the import has streams.
double RawInsert(const MysqlOptions& options) {
  {
    auto c = Connect(options);
    std::unique_ptr<sql::Statement> s(c->createStatement());
    s->execute("DROP TABLE IF EXISTS baseline_deals");
    s->execute(
        "CREATE TABLE baseline_deals LIKE deals");  // same columns, indexes
    s->execute(
        "ALTER TABLE baseline_deals DROP FOREIGN KEY IF EXISTS "
        "deals_partner_fk");
  }
  constexpr int kRows = 1000;
  constexpr int kColumns = 12;
  auto statement = [](int rows) {
    std::string insert =
        "INSERT INTO baseline_deals (id, partner_id, reference, account_name, "
        "name_key, amount, register_time_us, close_time_us, state, "
        "create_time_us, update_time_us, fingerprint) VALUES ";
    for (int r = 0; r < rows; ++r) {
      absl::StrAppend(&insert, r ? "," : "", "(?,?,?,?,?,?,?,?,?,?,?,?)");
    }
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
          const int64_t i = batch[k];
          const Deal d = DealAt(i);
          const int b = static_cast<int>(k) * kColumns;
          s->setString(b + 1, absl::StrFormat("b%025d", i));
          s->setString(b + 2, absl::StrFormat(
                                  "p%025d", i % absl::GetFlag(FLAGS_partners)));
          s->setString(b + 3, d.reference);
          s->setString(b + 4, d.account);
          s->setString(b + 5, d.account);
          s->setString(b + 6, d.amount);
          s->setInt64(b + 7, d.registered_us);
          if (d.closed_us != 0) {
            s->setInt64(b + 8, d.closed_us);
          } else {
            s->setNull(b + 8, 0);
          }
          s->setInt(b + 9, d.state_number);
          s->setInt64(b + 10, kAsOf);
          s->setInt64(b + 11, kAsOf);
          s->setString(b + 12, "0123456789abcdef");
        }
        s->executeUpdate();
        batch.clear();
      };
      const int64_t n = absl::GetFlag(FLAGS_deals);
      for (int64_t i = t; i < n; i += kStreams) {
        batch.push_back(i);
        if (static_cast<int>(batch.size()) == kRows) flush();
      }
      if (!batch.empty()) flush();
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double rate = static_cast<double>(absl::GetFlag(FLAGS_deals)) / seconds;
  std::printf(
      "%-12s %10.0f rows/s  (%lld rows, %.1f s, %d connections, %d-row "
      "statements)\n",
      "raw insert", rate, static_cast<long long>(absl::GetFlag(FLAGS_deals)),
      seconds, kStreams, kRows);
  auto c = Connect(options);
  std::unique_ptr<sql::Statement> s(c->createStatement());
  s->execute("DROP TABLE baseline_deals");
  return rate;
}

// R, F and M quintiles of every partner with won deals, as one query.
double SqlRfm(const MysqlOptions& options) {
  auto c = Connect(options);
  std::unique_ptr<sql::Statement> s(c->createStatement());
  const absl::Time start = absl::Now();
  std::unique_ptr<sql::ResultSet> rows(s->executeQuery(absl::StrCat(
      "SELECT COUNT(*) FROM (SELECT partner_id, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY -recency_days) - 1) / COUNT(*) "
      "OVER ()) AS r, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY frequency) - 1) / COUNT(*) OVER "
      "()) AS f, "
      "1 + FLOOR(5 * (RANK() OVER (ORDER BY monetary) - 1) / COUNT(*) OVER "
      "()) AS m FROM (SELECT partner_id, FLOOR((",
      kAsOf,
      " - MAX(close_time_us)) / 86400000000) AS recency_days, "
      "COUNT(*) AS frequency, SUM(amount) AS monetary FROM deals WHERE state "
      "= 4 AND close_time_us <= ",
      kAsOf, " GROUP BY partner_id) facts) scored")));
  rows->next();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("%-12s %10.2f s  (%lld partners scored)\n", "sql rfm", seconds,
              static_cast<long long>(rows->getInt64(1)));
  return seconds;
}

int Main() {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(absl::GetFlag(FLAGS_mysql_uri));
  if (!options.ok()) Die(std::string(options.status().message()));
  const int64_t deals = absl::GetFlag(FLAGS_deals);
  const absl::Time start = absl::Now();
  std::vector<std::thread> streams;
  for (int i = 0; i < kStreams; ++i) streams.emplace_back(Import, i);
  for (auto& t : streams) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double import_rate = static_cast<double>(deals) / seconds;
  std::printf(
      "%-12s %10.0f rows/s  (%lld deals, %lld partners created, %.1f "
      "s, %d streams)\n",
      "import", import_rate, static_cast<long long>(deals),
      static_cast<long long>(absl::GetFlag(FLAGS_partners)), seconds, kStreams);
  const double refresh = Refresh();
  try {
    const double raw = RawInsert(*options);
    const double sql = SqlRfm(*options);
    std::printf("import at %.0f%% of the raw INSERT's rows/s (at least 50%%)\n",
                100 * import_rate / raw);
    std::printf("refresh in %.0f%% of the SQL query's time (at most 20%%)\n",
                100 * refresh / sql);
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
