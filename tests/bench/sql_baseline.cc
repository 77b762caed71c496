// sql_baseline: what the database alone does, measured next to the service
// in the same run on the same MariaDB (tests/bench/run), because these
// machines differ by 3x from one day to the next: a service's figure means
// something only as a share of its baseline.
//
//   insert    single-row prepared INSERTs with autocommit into a bare copy of
//             the purchases table (what RecordPurchase stores), from
//             --connections connections, for --duration
//   select    point SELECTs of a customer by primary key (what GetCustomer
//             reads), likewise
//
// Prints one line per measure, like customer_bench: rate, p50 and p99.
#include <cppconn/connection.h>
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <mysql_driver.h>

#include <algorithm>
#include <atomic>
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
#include "absl/time/time.h"
#include "common/mysql/mysql_pool.h"

ABSL_FLAG(std::string, mysql_uri, "",
          "mysql://user:password@host:port/database of the benchmark's data");
ABSL_FLAG(std::vector<std::string>, what,
          std::vector<std::string>({"insert", "select"}),
          "the measures to run: insert, select");
ABSL_FLAG(int, connections, 64, "connections, one thread each");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long each runs");

namespace {

void Fail(const std::string& what) {
  std::fprintf(stderr, "sql_baseline: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<sql::Connection> Connect(const rapport::MysqlOptions& o) {
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

// Runs `op(connection, thread, i)` on every connection until the duration is
// up; prints rate and latency percentiles under `name`.
template <typename Prepare, typename Op>
void Measure(const std::string& name, const rapport::MysqlOptions& options,
             Prepare prepare, Op op) {
  const int n = absl::GetFlag(FLAGS_connections);
  std::vector<std::unique_ptr<sql::Connection>> connections;
  for (int t = 0; t < n; ++t) connections.push_back(Connect(options));
  std::vector<std::vector<double>> ms(n);
  std::atomic<int64_t> errors{0};
  const absl::Time begin = absl::Now();
  const absl::Time end = begin + absl::GetFlag(FLAGS_duration);
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<sql::PreparedStatement> statement =
          prepare(*connections[t]);
      std::mt19937_64 rng(7 + t);
      for (int64_t i = 0;; ++i) {
        const absl::Time start = absl::Now();
        if (start >= end) break;
        try {
          op(*statement, t, i, rng);
        } catch (const sql::SQLException& e) {
          ++errors;
        }
        ms[t].push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - begin);
  std::vector<double> all;
  for (const auto& m : ms) all.insert(all.end(), m.begin(), m.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0 : all[static_cast<size_t>(p * (all.size() - 1))];
  };
  std::printf(
      "%-16s %10.0f calls/s  p50 %6.2f ms  p99 %6.2f ms  (%zu calls, %d "
      "connections, %lld errors)\n",
      name.c_str(), all.size() / seconds, pct(0.50), pct(0.99), all.size(), n,
      static_cast<long long>(errors.load()));
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<rapport::MysqlOptions> options =
      rapport::MysqlOptions::FromUri(absl::GetFlag(FLAGS_mysql_uri));
  if (!options.ok()) Fail(std::string(options.status().message()));
  try {
    std::unique_ptr<sql::Connection> admin = Connect(*options);
    std::unique_ptr<sql::Statement> s(admin->createStatement());
    // Some customers' ids, for the rows' customer and for the point reads.
    std::vector<std::string> ids;
    std::unique_ptr<sql::ResultSet> rs(
        s->executeQuery("SELECT id FROM customers ORDER BY id LIMIT 100000"));
    while (rs->next()) ids.push_back(rs->getString(1));
    if (ids.empty()) Fail("no customers: run the customer benchmark first");

    for (const std::string& what : absl::GetFlag(FLAGS_what)) {
      if (what == "insert") {
        // A bare copy: the same columns and indexes, no foreign key, no
        // service in between.
        s->execute("DROP TABLE IF EXISTS baseline_purchases");
        s->execute("CREATE TABLE baseline_purchases LIKE purchases");
        const int64_t now = absl::ToUnixMicros(absl::Now());
        Measure(
            "sql insert", *options,
            [](sql::Connection& c) {
              return std::unique_ptr<sql::PreparedStatement>(c.prepareStatement(
                  "INSERT INTO baseline_purchases (id, customer_id, "
                  "purchase_time_us, amount, currency, description, "
                  "create_time_us) VALUES (?, ?, ?, ?, 'USD', '', ?)"));
            },
            [&](sql::PreparedStatement& p, int t, int64_t i,
                std::mt19937_64& rng) {
              p.setString(1, absl::StrFormat("B%03d%022d", t, i));
              p.setString(2, ids[rng() % ids.size()]);
              p.setInt64(3, now - static_cast<int64_t>(rng() % 1'000'000'000));
              p.setString(4, absl::StrCat(1 + rng() % 500, ".25"));
              p.setInt64(5, now);
              p.executeUpdate();
            });
        s->execute("DROP TABLE baseline_purchases");
      } else if (what == "select") {
        Measure(
            "sql select", *options,
            [](sql::Connection& c) {
              return std::unique_ptr<sql::PreparedStatement>(c.prepareStatement(
                  "SELECT id, display_name, email, phone, create_time_us, "
                  "update_time_us, version FROM customers WHERE id = ?"));
            },
            [&](sql::PreparedStatement& p, int, int64_t, std::mt19937_64& rng) {
              p.setString(1, ids[rng() % ids.size()]);
              std::unique_ptr<sql::ResultSet> row(p.executeQuery());
              if (!row->next()) throw sql::SQLException("no row");
            });
      } else {
        Fail(absl::StrCat("--what: unknown measure \"", what, "\""));
      }
    }
  } catch (const sql::SQLException& e) {
    Fail(absl::StrCat("database: ", e.what()));
  }
  return 0;
}
