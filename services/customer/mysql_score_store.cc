#include "services/customer/mysql_score_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <bit>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/ids.h"
#include "common/mysql/statement_cache.h"

namespace rapport::customer {
namespace {

using Statement = CachedStatement;
using Rows = std::unique_ptr<sql::ResultSet>;

// Rows per multi-row INSERT: 17 placeholders each, well under the 65535 limit.
constexpr int kInsertRows = 1000;
// Ids per IN (...) list.
constexpr int kInList = 1000;
// The most merges followed from an id to its live customer.
constexpr int kMaxMergeHops = 32;
// error is VARCHAR(2048).
constexpr size_t kMaxErrorBytes = 2000;

constexpr char kScoreColumns[] =
    "customer_id, model_id, recency_days, frequency, monetary, r, f, m, "
    "segment, "
    "value_hundredths, cost_to_serve, profit, tier, p_alive, "
    "expected_purchases, clv, "
    "score_time_us";
constexpr int kScoreColumnCount = 17;
// The same columns of customer_scores aliased `s`, for joins.
constexpr char kScoreColumnsOfS[] =
    "s.customer_id, s.model_id, s.recency_days, s.frequency, s.monetary, s.r, "
    "s.f, s.m, "
    "s.segment, s.value_hundredths, s.cost_to_serve, s.profit, s.tier, "
    "s.p_alive, "
    "s.expected_purchases, s.clv, s.score_time_us";

constexpr char kJobColumns[] =
    "id, state, done, total, request, create_time_us, end_time_us, "
    "heartbeat_time_us, error, "
    "score_model, clv_model";

// The latest job in a state (bound as the one parameter): for kSucceeded the
// one that ended last, else the one created last.
std::string LatestJobQuery(absl::string_view columns, JobState state) {
  return absl::StrCat(
      "SELECT ", columns, " FROM refresh_jobs WHERE state = ? ORDER BY ",
      state == JobState::kSucceeded ? "end_time_us" : "create_time_us",
      " DESC, id DESC LIMIT 1");
}

// "(?,...,?),(?,...)": placeholders for `rows` rows of scores.
std::string ScoreRowPlaceholders(size_t rows) {
  const std::string one = absl::StrCat(
      "(", absl::StrJoin(std::vector<std::string>(kScoreColumnCount, "?"), ","),
      ")");
  return absl::StrJoin(std::vector<std::string>(rows, one), ",");
}

Statement Prepare(sql::Connection& c, const std::string& query) {
  return PrepareCached(c, query);
}

// For the statements of many parameters whose callers set every one.
Statement PrepareKept(sql::Connection& c, const std::string& query) {
  return PrepareCached(c, query, StatementParameters::kKept);
}

std::string Text(const sql::SQLString& s) {
  return std::string(s.asStdString());
}

absl::StatusOr<Decimal> DecimalColumn(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return Decimal();
  absl::StatusOr<Decimal> d = Decimal::Parse(Text(rows.getString(column)));
  if (!d.ok()) {
    return absl::OutOfRangeError(
        absl::StrCat("stored decimal does not fit: ", d.status().message()));
  }
  return *d;
}

std::optional<double> OptionalDouble(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return std::nullopt;
  return static_cast<double>(rows.getDouble(column));
}

void SetOptionalDouble(sql::PreparedStatement& s, int index,
                       std::optional<double> v) {
  if (v.has_value()) {
    s.setDouble(index, *v);
  } else {
    s.setNull(index, sql::DataType::DOUBLE);
  }
}

// Binds a score's 17 columns (kScoreColumns order) from `first`.
void BindScore(sql::PreparedStatement& s, int first, const StoredScore& v) {
  int i = first;
  s.setString(i++, v.customer_id);
  s.setString(i++, v.model_id);
  if (v.recency_days.has_value()) {
    s.setInt64(i++, *v.recency_days);
  } else {
    s.setNull(i++, sql::DataType::BIGINT);
  }
  s.setInt64(i++, v.frequency);
  s.setString(i++, v.monetary.ToString());
  s.setInt(i++, v.r);
  s.setInt(i++, v.f);
  s.setInt(i++, v.m);
  s.setString(i++, v.segment);
  s.setInt(i++, v.value_hundredths);
  s.setString(i++, v.cost_to_serve.ToString());
  s.setString(i++, v.profit.ToString());
  s.setInt(i++, v.tier);
  SetOptionalDouble(s, i++, v.p_alive);
  SetOptionalDouble(s, i++, v.expected_purchases);
  SetOptionalDouble(s, i++, v.clv);
  s.setInt64(i++, v.score_time_us);
}

// Reads the 17 columns (kScoreColumns order) from `first`.
absl::StatusOr<StoredScore> ReadScore(sql::ResultSet& rows, int first) {
  StoredScore v;
  int i = first;
  v.customer_id = Text(rows.getString(i++));
  v.model_id = Text(rows.getString(i++));
  if (!rows.isNull(i)) v.recency_days = rows.getInt64(i);
  ++i;
  v.frequency = rows.getInt64(i++);
  RAPPORT_ASSIGN_OR_RETURN(v.monetary, DecimalColumn(rows, i++));
  v.r = rows.getInt(i++);
  v.f = rows.getInt(i++);
  v.m = rows.getInt(i++);
  v.segment = Text(rows.getString(i++));
  v.value_hundredths = rows.getInt(i++);
  RAPPORT_ASSIGN_OR_RETURN(v.cost_to_serve, DecimalColumn(rows, i++));
  RAPPORT_ASSIGN_OR_RETURN(v.profit, DecimalColumn(rows, i++));
  v.tier = rows.getInt(i++);
  v.p_alive = OptionalDouble(rows, i++);
  v.expected_purchases = OptionalDouble(rows, i++);
  v.clv = OptionalDouble(rows, i++);
  v.score_time_us = rows.getInt64(i++);
  return v;
}

absl::StatusOr<RefreshJobRecord> ReadJob(sql::ResultSet& rows) {
  RefreshJobRecord j;
  j.id = Text(rows.getString(1));
  j.state = static_cast<JobState>(rows.getInt(2));
  j.done = rows.getInt64(3);
  j.total = rows.getInt64(4);
  j.request = Text(rows.getString(5));
  j.create_time_us = rows.getInt64(6);
  if (!rows.isNull(7)) j.end_time_us = rows.getInt64(7);
  j.heartbeat_time_us = rows.getInt64(8);
  j.error = Text(rows.getString(9));
  if (!rows.isNull(10)) j.score_model = Text(rows.getString(10));
  if (!rows.isNull(11)) j.clv_model = Text(rows.getString(11));
  return j;
}

// The staging table of a job's values. Job ids are ours (26 lower-case
// base32 characters), checked before they become part of a name.
absl::StatusOr<std::string> StagingTable(const std::string& job_id) {
  if (!IsValidId(job_id))
    return absl::InvalidArgumentError(absl::StrCat("bad job id ", job_id));
  return absl::StrCat("customer_scores_staging_", job_id);
}

std::string Truncated(const std::string& text) {
  if (text.size() <= kMaxErrorBytes) return text;
  size_t n = kMaxErrorBytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;  // UTF-8 boundary
  return text.substr(0, n);
}

void Execute(sql::Connection& c, const std::string& query) {
  Statement s = Prepare(c, query);
  s->execute();
}

// Aggregated purchases of customers in (lo, hi], in id order.
struct PurchaseAggregate {
  std::string customer_id;
  int64_t count = 0;
  Decimal total;
  int64_t last = 0;
};

absl::StatusOr<std::vector<PurchaseAggregate>> AggregatePurchases(
    sql::Connection& c, const std::string& lo, const std::string& hi,
    const CountWindow& w) {
  Statement s = Prepare(
      c,
      "SELECT customer_id, COUNT(*), SUM(amount), MAX(purchase_time_us) "
      "FROM purchases FORCE INDEX (purchases_customer_time) "
      "WHERE customer_id > ? AND customer_id <= ? "
      "AND purchase_time_us > ? AND purchase_time_us <= ? "
      "GROUP BY customer_id ORDER BY customer_id");
  s->setString(1, lo);
  s->setString(2, hi);
  s->setInt64(3, w.after_us());
  s->setInt64(4, w.as_of_us);
  Rows rows(s->executeQuery());
  std::vector<PurchaseAggregate> out;
  out.reserve(rows->rowsCount());
  while (rows->next()) {
    PurchaseAggregate& a = out.emplace_back();
    a.customer_id = Text(rows->getString(1));
    a.count = rows->getInt64(2);
    RAPPORT_ASSIGN_OR_RETURN(a.total, DecimalColumn(*rows, 3));
    a.last = rows->getInt64(4);
  }
  return out;
}

// Summed interaction costs of customers in (lo, hi], in id order.
absl::StatusOr<std::vector<std::pair<std::string, Decimal>>> AggregateCosts(
    sql::Connection& c, const std::string& lo, const std::string& hi,
    const CountWindow& w) {
  Statement s =
      Prepare(c,
              "SELECT customer_id, SUM(cost) "
              "FROM interactions FORCE INDEX (interactions_customer_time_cost) "
              "WHERE customer_id > ? AND customer_id <= ? "
              "AND interaction_time_us > ? AND interaction_time_us <= ? "
              "GROUP BY customer_id ORDER BY customer_id");
  s->setString(1, lo);
  s->setString(2, hi);
  s->setInt64(3, w.after_us());
  s->setInt64(4, w.as_of_us);
  Rows rows(s->executeQuery());
  std::vector<std::pair<std::string, Decimal>> out;
  out.reserve(rows->rowsCount());
  while (rows->next()) {
    RAPPORT_ASSIGN_OR_RETURN(Decimal cost, DecimalColumn(*rows, 2));
    out.emplace_back(Text(rows->getString(1)), cost);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> LivePage(sql::Connection& c,
                                                  const std::string& after_id,
                                                  int limit) {
  Statement s =
      Prepare(c,
              "SELECT id FROM customers WHERE id > ? AND merged_into IS NULL "
              "ORDER BY id LIMIT ?");
  s->setString(1, after_id);
  s->setInt(2, limit);
  Rows rows(s->executeQuery());
  std::vector<std::string> ids;
  ids.reserve(rows->rowsCount());
  while (rows->next()) ids.push_back(Text(rows->getString(1)));
  return ids;
}

}  // namespace

// --- Jobs --------------------------------------------------------------------

absl::Status MysqlScoreStore::CreateJob(const RefreshJobRecord& job) {
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    // Replicas take a named lock in turn, so that the check for a running job
    // and the insert of a new one cannot interleave: one refresh at a time.
    {
      Statement lock = Prepare(
          c, "SELECT GET_LOCK(CONCAT('rapport.refresh.', DATABASE()), 10)");
      Rows got(lock->executeQuery());
      if (!got->next() || got->getInt(1) != 1) {
        return absl::AbortedError(
            "another replica is starting a refresh; retry");
      }
    }
    struct Unlock {
      sql::Connection& c;
      ~Unlock() {
        try {
          Statement release = Prepare(
              c, "DO RELEASE_LOCK(CONCAT('rapport.refresh.', DATABASE()))");
          release->execute();
        } catch (const sql::SQLException&) {
          // The lock goes with the connection anyway.
        }
      }
    } unlock{c};
    if (job.state == JobState::kRunning) {
      Statement running =
          Prepare(c, "SELECT id FROM refresh_jobs WHERE state = ? LIMIT 1");
      running->setInt(1, static_cast<int>(JobState::kRunning));
      Rows rows(running->executeQuery());
      if (rows->next()) {
        return absl::FailedPreconditionError(
            absl::StrCat("refresh job ", std::string(rows->getString(1)),
                         " is running; follow it with GetRefreshJob"));
      }
    }
    Statement s =
        Prepare(c, absl::StrCat("INSERT INTO refresh_jobs (", kJobColumns,
                                ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    std::istringstream request(job.request);
    s->setString(1, job.id);
    s->setInt(2, static_cast<int>(job.state));
    s->setInt64(3, job.done);
    s->setInt64(4, job.total);
    s->setBlob(5, &request);
    s->setInt64(6, job.create_time_us);
    if (job.end_time_us.has_value()) {
      s->setInt64(7, *job.end_time_us);
    } else {
      s->setNull(7, sql::DataType::BIGINT);
    }
    s->setInt64(8, job.heartbeat_time_us);
    s->setString(9, Truncated(job.error));
    s->setNull(10, sql::DataType::LONGVARBINARY);
    s->setNull(11, sql::DataType::LONGVARBINARY);
    s->executeUpdate();
    return absl::OkStatus();
  });
}

absl::StatusOr<RefreshJobRecord> MysqlScoreStore::GetJob(
    const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<RefreshJobRecord> {
        Statement s =
            Prepare(c, absl::StrCat("SELECT ", kJobColumns,
                                    " FROM refresh_jobs WHERE id = ?"));
        s->setString(1, id);
        Rows rows(s->executeQuery());
        if (!rows->next())
          return absl::NotFoundError(
              absl::StrCat("refresh job ", id, " not found"));
        return ReadJob(*rows);
      });
}

absl::StatusOr<std::optional<RefreshJobRecord>> MysqlScoreStore::LatestJob(
    JobState state) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::optional<RefreshJobRecord>> {
    Statement s = Prepare(c, LatestJobQuery(kJobColumns, state));
    s->setInt(1, static_cast<int>(state));
    Rows rows(s->executeQuery());
    if (!rows->next()) return std::optional<RefreshJobRecord>();
    RAPPORT_ASSIGN_OR_RETURN(RefreshJobRecord job, ReadJob(*rows));
    return std::optional<RefreshJobRecord>(std::move(job));
  });
}

absl::StatusOr<std::optional<std::string>> MysqlScoreStore::LatestJobId(
    JobState state) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        Statement s = Prepare(c, LatestJobQuery("id", state));
        s->setInt(1, static_cast<int>(state));
        Rows rows(s->executeQuery());
        if (!rows->next()) return std::optional<std::string>();
        return std::optional<std::string>(Text(rows->getString(1)));
      });
}

absl::Status MysqlScoreStore::UpdateProgress(const std::string& id,
                                             int64_t done, int64_t total,
                                             int64_t now_us) {
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Statement s = Prepare(
        c,
        "UPDATE refresh_jobs SET done = ?, total = ?, heartbeat_time_us = ? "
        "WHERE id = ? AND state = 1");
    s->setInt64(1, done);
    s->setInt64(2, total);
    s->setInt64(3, now_us);
    s->setString(4, id);
    s->executeUpdate();
    return absl::OkStatus();
  });
}

absl::Status MysqlScoreStore::SetModels(const std::string& id,
                                        const std::string& score_model,
                                        const std::string& clv_model) {
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Statement s =
        Prepare(c,
                "UPDATE refresh_jobs SET score_model = ?, clv_model = ? "
                "WHERE id = ? AND state = 1");
    std::istringstream score(score_model);
    std::istringstream clv(clv_model);
    s->setBlob(1, &score);
    if (clv_model.empty()) {
      s->setNull(2, sql::DataType::LONGVARBINARY);
    } else {
      s->setBlob(2, &clv);
    }
    s->setString(3, id);
    if (s->executeUpdate() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("refresh job ", id, " is not running"));
    }
    return absl::OkStatus();
  });
}

absl::Status MysqlScoreStore::FinishJob(const RefreshJobRecord& job) {
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Statement s = Prepare(
        c,
        "UPDATE refresh_jobs SET state = ?, error = ?, done = ?, total = ?, "
        "end_time_us = ?, heartbeat_time_us = ? WHERE id = ? AND state = 1");
    const int64_t end = job.end_time_us.value_or(job.heartbeat_time_us);
    s->setInt(1, static_cast<int>(job.state));
    s->setString(2, Truncated(job.error));
    s->setInt64(3, job.done);
    s->setInt64(4, job.total);
    s->setInt64(5, end);
    s->setInt64(6, end);
    s->setString(7, job.id);
    if (s->executeUpdate() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("refresh job ", job.id, " is no longer running"));
    }
    return absl::OkStatus();
  });
}

absl::Status MysqlScoreStore::FailStaleJobs(int64_t stale_before_us,
                                            const std::string& error,
                                            int64_t now_us) {
  absl::StatusOr<std::vector<std::string>> failed = pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        Statement s = Prepare(c,
                              "SELECT id FROM refresh_jobs WHERE state = 1 "
                              "AND heartbeat_time_us < ? FOR UPDATE");
        s->setInt64(1, stale_before_us);
        Rows rows(s->executeQuery());
        std::vector<std::string> ids;
        while (rows->next()) ids.push_back(Text(rows->getString(1)));
        Statement u = Prepare(
            c,
            "UPDATE refresh_jobs SET state = 3, error = ?, end_time_us = ? "
            "WHERE id = ? AND state = 1");
        for (const std::string& id : ids) {
          u->setString(1, Truncated(error));
          u->setInt64(2, now_us);
          u->setString(3, id);
          u->executeUpdate();
        }
        return ids;
      });
  if (!failed.ok()) return failed.status();
  for (const std::string& id : *failed) {
    RAPPORT_RETURN_IF_ERROR(DiscardScoreSet(id));
  }
  return absl::OkStatus();
}

// --- Counted facts -----------------------------------------------------------

absl::StatusOr<int64_t> MysqlScoreStore::CountLiveCustomers() {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
    Statement s =
        Prepare(c, "SELECT COUNT(*) FROM customers WHERE merged_into IS NULL");
    Rows rows(s->executeQuery());
    rows->next();
    return static_cast<int64_t>(rows->getInt64(1));
  });
}

absl::StatusOr<std::vector<std::string>> MysqlScoreStore::LiveCustomerPage(
    const std::string& after_id, int limit) {
  return pool_->Run(
      [&](sql::Connection& c) { return LivePage(c, after_id, limit); });
}

absl::Status MysqlScoreStore::ScanFacts(const CountWindow& window,
                                        int batch_size,
                                        const Sink<CustomerFacts>& sink) {
  // Workers, each on its own connection, take the next page of live ids in
  // turn (a cheap primary-key range) and aggregate its facts concurrently
  // (the expensive part, which MariaDB then runs on several cores).
  absl::Mutex mu;  // guards the next three
  std::string after;
  bool exhausted = false;
  absl::Status first_error;
  absl::Mutex sink_mu;  // one sink call at a time
  auto work = [&](sql::Connection& c) -> absl::Status {
    std::vector<CustomerFacts> batch;
    for (;;) {
      std::string lo;
      std::vector<std::string> ids;
      {
        absl::MutexLock lock(&mu);
        if (exhausted || !first_error.ok()) return absl::OkStatus();
        lo = after;
        RAPPORT_ASSIGN_OR_RETURN(ids, LivePage(c, lo, batch_size));
        if (ids.empty()) {
          exhausted = true;
          return absl::OkStatus();
        }
        after = ids.back();
        if (static_cast<int>(ids.size()) < batch_size) exhausted = true;
      }
      RAPPORT_ASSIGN_OR_RETURN(std::vector<PurchaseAggregate> purchases,
                               AggregatePurchases(c, lo, ids.back(), window));
      RAPPORT_ASSIGN_OR_RETURN(auto costs,
                               AggregateCosts(c, lo, ids.back(), window));
      // Merge three id-ordered lists; rows of customers that are not live
      // (merged away) are skipped.
      batch.assign(ids.size(), CustomerFacts());
      size_t p = 0, k = 0;
      for (size_t i = 0; i < ids.size(); ++i) {
        CustomerFacts& f = batch[i];
        f.customer_id = std::move(ids[i]);
        while (p < purchases.size() && purchases[p].customer_id < f.customer_id)
          ++p;
        if (p < purchases.size() && purchases[p].customer_id == f.customer_id) {
          f.frequency = purchases[p].count;
          f.monetary = purchases[p].total;
          f.last_event_us = purchases[p].last;
        }
        while (k < costs.size() && costs[k].first < f.customer_id) ++k;
        if (k < costs.size() && costs[k].first == f.customer_id)
          f.cost_to_serve = costs[k].second;
      }
      absl::MutexLock lock(&sink_mu);
      RAPPORT_RETURN_IF_ERROR(sink(batch));
    }
  };
  auto run = [&] {
    absl::Status s = pool_->Run(work);
    if (!s.ok()) {
      absl::MutexLock lock(&mu);
      if (first_error.ok()) first_error = s;
    }
  };
  std::vector<std::thread> workers;
  for (int i = 1; i < scan_threads_; ++i) workers.emplace_back(run);
  run();
  for (std::thread& t : workers) t.join();
  absl::MutexLock lock(&mu);
  return first_error;
}

absl::StatusOr<std::vector<CustomerFacts>> MysqlScoreStore::FactsOf(
    const std::vector<std::string>& customer_ids, const CountWindow& window) {
  std::vector<CustomerFacts> out;
  for (size_t begin = 0; begin < customer_ids.size(); begin += kInList) {
    const size_t n = std::min<size_t>(kInList, customer_ids.size() - begin);
    // Lists padded to a power of two (repeating the last id), so that a few
    // statement texts serve every batch size.
    const size_t padded = std::min<size_t>(kInList, std::bit_ceil(n));
    auto bind_ids = [&](sql::PreparedStatement& s, int first) {
      for (size_t i = 0; i < padded; ++i) {
        s.setString(first + static_cast<int>(i),
                    customer_ids[begin + std::min(i, n - 1)]);
      }
    };
    const std::string in =
        absl::StrJoin(std::vector<std::string>(padded, "?"), ",");
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      Statement s = PrepareKept(
          c, absl::StrCat("SELECT c.id, COUNT(p.customer_id), SUM(p.amount), "
                          "MAX(p.purchase_time_us) FROM customers c LEFT JOIN "
                          "purchases p ON p.customer_id = c.id AND "
                          "p.purchase_time_us > ? AND p.purchase_time_us <= ? "
                          "WHERE c.merged_into IS NULL AND c.id IN (",
                          in, ") GROUP BY c.id"));
      s->setInt64(1, window.after_us());
      s->setInt64(2, window.as_of_us);
      bind_ids(*s, 3);
      absl::flat_hash_map<std::string, size_t> index;
      {
        Rows rows(s->executeQuery());
        while (rows->next()) {
          CustomerFacts f;
          f.customer_id = Text(rows->getString(1));
          f.frequency = rows->getInt64(2);
          if (f.frequency > 0) {
            RAPPORT_ASSIGN_OR_RETURN(f.monetary, DecimalColumn(*rows, 3));
            f.last_event_us = rows->getInt64(4);
          }
          index[f.customer_id] = out.size();
          out.push_back(std::move(f));
        }
      }
      Statement k = PrepareKept(
          c, absl::StrCat("SELECT customer_id, SUM(cost) FROM interactions "
                          "WHERE interaction_time_us > ? AND "
                          "interaction_time_us <= ? AND customer_id IN (",
                          in, ") GROUP BY customer_id"));
      k->setInt64(1, window.after_us());
      k->setInt64(2, window.as_of_us);
      bind_ids(*k, 3);
      Rows costs(k->executeQuery());
      while (costs->next()) {
        auto it = index.find(Text(costs->getString(1)));
        if (it == index.end()) continue;  // merged meanwhile
        RAPPORT_ASSIGN_OR_RETURN(out[it->second].cost_to_serve,
                                 DecimalColumn(*costs, 2));
      }
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
  }
  return out;
}

absl::Status MysqlScoreStore::ScanPurchaseDays(const CountWindow& window,
                                               int batch_size,
                                               const Sink<PurchaseDay>& sink) {
  std::string after;
  std::vector<PurchaseDay> batch;
  for (;;) {
    size_t customers = 0;
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                               LivePage(c, after, batch_size));
      batch.clear();
      customers = ids.size();
      if (ids.empty()) return absl::OkStatus();
      // DIV truncates toward zero; the MOD term makes it a floor before 1970.
      Statement s =
          Prepare(c,
                  "SELECT customer_id, purchase_time_us DIV 86400000000 - "
                  "(purchase_time_us MOD 86400000000 < 0) AS day, SUM(amount) "
                  "FROM purchases FORCE INDEX (purchases_customer_time) "
                  "WHERE customer_id > ? AND customer_id <= ? "
                  "AND purchase_time_us > ? AND purchase_time_us <= ? "
                  "GROUP BY customer_id, day ORDER BY customer_id, day");
      s->setString(1, after);
      s->setString(2, ids.back());
      s->setInt64(3, window.after_us());
      s->setInt64(4, window.as_of_us);
      Rows rows(s->executeQuery());
      size_t i = 0;
      while (rows->next()) {
        std::string id = Text(rows->getString(1));
        while (i < ids.size() && ids[i] < id) ++i;
        if (i == ids.size() || ids[i] != id) continue;  // not live
        RAPPORT_ASSIGN_OR_RETURN(Decimal amount, DecimalColumn(*rows, 3));
        batch.push_back({std::move(id), rows->getInt64(2), amount});
      }
      after = ids.back();
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
    if (customers == 0) return absl::OkStatus();
    if (!batch.empty()) RAPPORT_RETURN_IF_ERROR(sink(batch));
    if (static_cast<int>(customers) < batch_size) return absl::OkStatus();
  }
}

// --- Stored values -----------------------------------------------------------

namespace {

// The secondary indexes of customer_scores as ALTER TABLE clauses, one per
// index: "ADD KEY name (a, b)" when `add`, else "DROP KEY name".
std::vector<std::string> SecondaryIndexClauses(sql::Connection& c, bool add) {
  std::unique_ptr<sql::PreparedStatement> s(c.prepareStatement(
      "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM "
      "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
      "TABLE_NAME = 'customer_scores' AND INDEX_NAME <> 'PRIMARY' "
      "ORDER BY INDEX_NAME, SEQ_IN_INDEX"));
  Rows rows(s->executeQuery());
  std::vector<std::string> clauses;
  std::string name, columns;
  bool unique = false;
  auto flush = [&] {
    if (name.empty()) return;
    clauses.push_back(add ? absl::StrCat("ADD ", unique ? "UNIQUE " : "",
                                         "KEY `", name, "` (", columns, ")")
                          : absl::StrCat("DROP KEY `", name, "`"));
  };
  while (rows->next()) {
    std::string index = Text(rows->getString(1));
    if (index != name) {
      flush();
      name = index;
      unique = rows->getInt(2) == 0;
      columns.clear();
    }
    absl::StrAppend(&columns, columns.empty() ? "" : ", ", "`",
                    Text(rows->getString(3)), "`");
  }
  flush();
  return clauses;
}

}  // namespace

absl::Status MysqlScoreStore::BeginScoreSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", table));
    Execute(c, absl::StrCat("CREATE TABLE ", table, " LIKE customer_scores"));
    // Loaded without its secondary indexes, which PublishScoreSet builds in
    // one sorted pass: faster than keeping them up to date row by row.
    std::vector<std::string> drop = SecondaryIndexClauses(c, false);
    if (!drop.empty()) {
      Execute(c, absl::StrCat("ALTER TABLE ", table, " ",
                              absl::StrJoin(drop, ", ")));
    }
    return absl::OkStatus();
  });
}

absl::Status MysqlScoreStore::AppendScores(
    const std::string& job_id, const std::vector<StoredScore>& scores) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  if (scores.empty()) return absl::OkStatus();
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    auto insert = [&](int rows) {
      // The staging table is new for every job: not worth caching.
      return std::unique_ptr<sql::PreparedStatement>(c.prepareStatement(
          absl::StrCat("INSERT INTO ", table, " (", kScoreColumns, ") VALUES ",
                       ScoreRowPlaceholders(rows))));
    };
    std::unique_ptr<sql::PreparedStatement> full;
    for (size_t begin = 0; begin < scores.size(); begin += kInsertRows) {
      const int n = static_cast<int>(
          std::min<size_t>(kInsertRows, scores.size() - begin));
      std::unique_ptr<sql::PreparedStatement> partial;
      sql::PreparedStatement* s = nullptr;
      if (n == kInsertRows) {
        if (!full) full = insert(n);
        s = full.get();
      } else {
        partial = insert(n);
        s = partial.get();
      }
      for (int i = 0; i < n; ++i)
        BindScore(*s, 1 + i * kScoreColumnCount, scores[begin + i]);
      s->executeUpdate();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> MysqlScoreStore::PublishScoreSet(
    const std::string& job_id, int64_t rescored_since_us) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  const std::string old = absl::StrCat("customer_scores_old_", job_id);
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> add = SecondaryIndexClauses(c, true);
        if (!add.empty()) {
          Execute(c, absl::StrCat("ALTER TABLE ", table, " ",
                                  absl::StrJoin(add, ", ")));
        }
        Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", old));
        // One statement: readers see the old table or the new one, never
        // neither.
        Execute(c, absl::StrCat("RENAME TABLE customer_scores TO ", old, ", ",
                                table, " TO customer_scores"));
        std::vector<std::string> rescored;
        {
          std::unique_ptr<sql::PreparedStatement> s(
              c.prepareStatement(absl::StrCat("SELECT customer_id FROM ", old,
                                              " WHERE score_time_us > ?")));
          s->setInt64(1, rescored_since_us);
          Rows rows(s->executeQuery());
          while (rows->next()) rescored.push_back(Text(rows->getString(1)));
        }
        Execute(c, absl::StrCat("DROP TABLE ", old));
        return rescored;
      });
}

absl::StatusOr<std::vector<std::string>> MysqlScoreStore::ScoredByOtherModels(
    const std::string& job_id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        Statement s = Prepare(
            c, "SELECT customer_id FROM customer_scores WHERE model_id <> ?");
        s->setString(1, job_id);
        Rows rows(s->executeQuery());
        std::vector<std::string> out;
        while (rows->next()) out.push_back(Text(rows->getString(1)));
        return out;
      });
}

absl::Status MysqlScoreStore::DiscardScoreSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", table));
    return absl::OkStatus();
  });
}

absl::Status MysqlScoreStore::UpsertScores(
    const std::vector<StoredScore>& scores) {
  if (scores.empty()) return absl::OkStatus();
  constexpr char kUpdate[] =
      " ON DUPLICATE KEY UPDATE model_id = VALUES(model_id), "
      "recency_days = VALUES(recency_days), frequency = VALUES(frequency), "
      "monetary = VALUES(monetary), r = VALUES(r), f = VALUES(f), "
      "m = VALUES(m), segment = VALUES(segment), "
      "value_hundredths = VALUES(value_hundredths), "
      "cost_to_serve = VALUES(cost_to_serve), profit = VALUES(profit), "
      "tier = VALUES(tier), p_alive = COALESCE(VALUES(p_alive), p_alive), "
      "expected_purchases = COALESCE(VALUES(expected_purchases), "
      "expected_purchases), clv = COALESCE(VALUES(clv), clv), "
      "score_time_us = VALUES(score_time_us)";
  auto write = [&](sql::Connection& c) -> absl::Status {
    for (size_t begin = 0; begin < scores.size(); begin += kInsertRows) {
      const size_t n = std::min<size_t>(kInsertRows, scores.size() - begin);
      // Padded to a power of two by repeating the last row (which updates
      // it to the same values), so that a few statement texts serve all.
      const size_t padded = std::min<size_t>(kInsertRows, std::bit_ceil(n));
      Statement s = PrepareKept(
          c, absl::StrCat("INSERT INTO customer_scores (", kScoreColumns,
                          ") VALUES ", ScoreRowPlaceholders(padded), kUpdate));
      for (size_t i = 0; i < padded; ++i)
        BindScore(*s, 1 + static_cast<int>(i) * kScoreColumnCount,
                  scores[begin + std::min(i, n - 1)]);
      s->executeUpdate();
    }
    return absl::OkStatus();
  };
  // One statement is atomic by itself; more need a transaction.
  if (scores.size() <= static_cast<size_t>(kInsertRows))
    return pool_->Run(write);
  return pool_->Transaction(write);
}

absl::StatusOr<std::vector<StoredScore>> MysqlScoreStore::GetScores(
    const std::vector<std::string>& customer_ids) {
  std::vector<StoredScore> out;
  for (size_t begin = 0; begin < customer_ids.size(); begin += kInList) {
    const size_t n = std::min<size_t>(kInList, customer_ids.size() - begin);
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      Statement s = PrepareKept(
          c, absl::StrCat("SELECT ", kScoreColumns,
                          " FROM customer_scores WHERE customer_id IN (",
                          absl::StrJoin(std::vector<std::string>(n, "?"), ","),
                          ")"));
      for (size_t i = 0; i < n; ++i)
        s->setString(static_cast<int>(i + 1), customer_ids[begin + i]);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        RAPPORT_ASSIGN_OR_RETURN(StoredScore v, ReadScore(*rows, 1));
        out.push_back(std::move(v));
      }
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
  }
  return out;
}

absl::StatusOr<std::string> MysqlScoreStore::ResolveLiveCustomer(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    Statement s = Prepare(c, "SELECT merged_into FROM customers WHERE id = ?");
    std::string current = id;
    for (int hop = 0; hop < kMaxMergeHops; ++hop) {
      s->setString(1, current);
      Rows rows(s->executeQuery());
      if (!rows->next())
        return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
      if (rows->isNull(1)) return current;
      current = Text(rows->getString(1));
    }
    return absl::NotFoundError(
        absl::StrCat("customer ", id, " not found (merge loop)"));
  });
}

absl::StatusOr<ScoreSummary> MysqlScoreStore::Summarize() {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<ScoreSummary> {
    ScoreSummary out;
    for (const bool by_tier : {false, true}) {
      const char* key = by_tier ? "s.tier" : "s.segment";
      Statement s = Prepare(
          c,
          absl::StrCat(
              "SELECT ", key,
              ", COUNT(*), SUM(s.monetary), SUM(s.value_hundredths) "
              "FROM customer_scores s JOIN customers c ON c.id = s.customer_id "
              "WHERE c.merged_into IS NULL GROUP BY ",
              key, " ORDER BY ", key));
      Rows rows(s->executeQuery());
      while (rows->next()) {
        GroupTotals g;
        if (by_tier) {
          g.tier = rows->getInt(1);
        } else {
          g.segment = Text(rows->getString(1));
        }
        g.customers = rows->getInt64(2);
        RAPPORT_ASSIGN_OR_RETURN(g.revenue, DecimalColumn(*rows, 3));
        g.value_hundredths_sum = rows->getInt64(4);
        (by_tier ? out.tiers : out.segments).push_back(std::move(g));
      }
    }
    return out;
  });
}

absl::StatusOr<std::vector<StoredScore>> MysqlScoreStore::ExportPage(
    const std::string& source, const std::string& after_key, int limit) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<StoredScore>> {
        std::vector<StoredScore> out;
        if (source.empty()) {
          Statement s = Prepare(
              c,
              absl::StrCat("SELECT ", kScoreColumnsOfS,
                           " FROM customer_scores s JOIN customers c ON c.id = "
                           "s.customer_id "
                           "WHERE s.customer_id > ? AND c.merged_into IS NULL "
                           "ORDER BY s.customer_id LIMIT ?"));
          s->setString(1, after_key);
          s->setInt(2, limit);
          Rows rows(s->executeQuery());
          out.reserve(rows->rowsCount());
          while (rows->next()) {
            RAPPORT_ASSIGN_OR_RETURN(StoredScore v, ReadScore(*rows, 1));
            out.push_back(std::move(v));
          }
          return out;
        }
        Statement s = Prepare(
            c, absl::StrCat(
                   "SELECT e.external_id, ", kScoreColumnsOfS,
                   " FROM customer_external_ids e "
                   "JOIN customer_scores s ON s.customer_id = e.customer_id "
                   "JOIN customers c ON c.id = e.customer_id "
                   "WHERE e.source = ? AND e.external_id > ? AND c.merged_into "
                   "IS NULL "
                   "ORDER BY e.external_id LIMIT ?"));
        s->setString(1, source);
        s->setString(2, after_key);
        s->setInt(3, limit);
        Rows rows(s->executeQuery());
        out.reserve(rows->rowsCount());
        while (rows->next()) {
          RAPPORT_ASSIGN_OR_RETURN(StoredScore v, ReadScore(*rows, 2));
          v.customer_id = Text(rows->getString(1));
          out.push_back(std::move(v));
        }
        return out;
      });
}

}  // namespace rapport::customer
