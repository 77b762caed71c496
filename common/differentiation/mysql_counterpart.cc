#include "common/differentiation/mysql_counterpart.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/base/status_macros.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"

namespace rapport::differentiation {
namespace {

using Statement = CachedStatement;

// Ids per IN (...) list.
constexpr size_t kInList = 1000;
// The most merges followed from an id to its live entity.
constexpr int kMaxMergeHops = 32;

Statement Prepare(sql::Connection& c, const std::string& query) {
  return PrepareCached(c, query);
}

// " AND (condition)", or nothing.
std::string And(const std::string& condition) {
  return condition.empty() ? "" : absl::StrCat(" AND (", condition, ")");
}

std::string ForceIndex(const EventTable& t) {
  return t.scan_index.empty()
             ? ""
             : absl::StrCat(" FORCE INDEX (", t.scan_index, ")");
}

// One table's aggregate of one entity: count, sum and latest time of its
// counted rows.
struct Aggregate {
  std::string id;
  int64_t count = 0;
  Decimal total;
  int64_t last = 0;
};

// Reads (id, COUNT, SUM, MAX) rows, or (id, SUM) rows when !with_count.
absl::StatusOr<std::vector<Aggregate>> ReadAggregates(sql::ResultSet& rows,
                                                      bool with_count) {
  std::vector<Aggregate> out;
  out.reserve(rows.rowsCount());
  while (rows.next()) {
    Aggregate& a = out.emplace_back();
    a.id = Text(rows.getString(1));
    if (with_count) {
      a.count = rows.getInt64(2);
      RAPPORT_ASSIGN_OR_RETURN(a.total, DecimalColumn(rows, 3));
      a.last = rows.getInt64(4);
    } else {
      RAPPORT_ASSIGN_OR_RETURN(a.total, DecimalColumn(rows, 2));
    }
  }
  return out;
}

void AddEvents(const Aggregate& a, EntityFacts& f) {
  if (a.count == 0) return;
  f.frequency += a.count;
  f.monetary += a.total;
  f.last_event_us = std::max(f.last_event_us.value_or(a.last), a.last);
}

}  // namespace

struct MysqlCounterpart::Queries {
  explicit Queries(const CounterpartTables& t) {
    const std::string live =
        t.live_condition.empty() ? "TRUE" : t.live_condition;
    count =
        absl::StrCat("SELECT COUNT(*) FROM ", t.entities, " c WHERE ", live);
    live_page =
        absl::StrCat("SELECT c.id FROM ", t.entities, " c WHERE c.id > ? AND ",
                     live, " ORDER BY c.id LIMIT ?");
    if (!t.merged_into_column.empty()) {
      resolve = absl::StrCat("SELECT c.", t.merged_into_column, ", ", live,
                             " FROM ", t.entities, " c WHERE c.id = ?");
    } else {
      resolve = absl::StrCat("SELECT NULL FROM ", t.entities,
                             " c WHERE c.id = ? AND ", live);
    }
    for (const EventTable& e : t.events) {
      scan_events.push_back(absl::StrCat(
          "SELECT e.", e.entity_column, ", COUNT(*), SUM(e.", e.amount_column,
          "), MAX(e.", e.time_column, ") FROM ", e.table, " e", ForceIndex(e),
          " WHERE e.", e.entity_column, " > ? AND e.", e.entity_column,
          " <= ? AND e.", e.time_column, " > ? AND e.", e.time_column, " <= ?",
          And(e.condition), " GROUP BY e.", e.entity_column, " ORDER BY e.",
          e.entity_column));
      // DIV truncates toward zero; the MOD term makes it a floor before 1970.
      scan_days.push_back(absl::StrCat(
          "SELECT e.", e.entity_column, ", e.", e.time_column,
          " DIV 86400000000 - (e.", e.time_column,
          " MOD 86400000000 < 0) AS day, SUM(e.", e.amount_column, ") FROM ",
          e.table, " e", ForceIndex(e), " WHERE e.", e.entity_column,
          " > ? AND e.", e.entity_column, " <= ? AND e.", e.time_column,
          " > ? AND e.", e.time_column, " <= ?", And(e.condition),
          " GROUP BY e.", e.entity_column, ", day ORDER BY e.", e.entity_column,
          ", day"));
    }
    for (const EventTable& e : t.costs) {
      scan_costs.push_back(absl::StrCat(
          "SELECT e.", e.entity_column, ", SUM(e.", e.amount_column, ") FROM ",
          e.table, " e", ForceIndex(e), " WHERE e.", e.entity_column,
          " > ? AND e.", e.entity_column, " <= ? AND e.", e.time_column,
          " > ? AND e.", e.time_column, " <= ?", And(e.condition),
          " GROUP BY e.", e.entity_column, " ORDER BY e.", e.entity_column));
    }
    // The facts of listed entities: the live ones with the first event
    // table's aggregate in one statement, then one per further table.
    const EventTable& first = t.events.front();
    facts_of_prefix = absl::StrCat(
        "SELECT c.id, COUNT(e.", first.entity_column, "), SUM(e.",
        first.amount_column, "), MAX(e.", first.time_column, ") FROM ",
        t.entities, " c LEFT JOIN ", first.table, " e ON e.",
        first.entity_column, " = c.id AND e.", first.time_column, " > ? AND e.",
        first.time_column, " <= ?", And(first.condition), " WHERE ", live,
        " AND c.id IN (");
    facts_of_suffix = ") GROUP BY c.id";
    for (size_t i = 1; i < t.events.size(); ++i) {
      const EventTable& e = t.events[i];
      more_events_of_prefix.push_back(absl::StrCat(
          "SELECT e.", e.entity_column, ", COUNT(*), SUM(e.", e.amount_column,
          "), MAX(e.", e.time_column, ") FROM ", e.table, " e WHERE e.",
          e.time_column, " > ? AND e.", e.time_column, " <= ?",
          And(e.condition), " AND e.", e.entity_column, " IN ("));
    }
    for (const EventTable& e : t.costs) {
      costs_of_prefix.push_back(absl::StrCat(
          "SELECT e.", e.entity_column, ", SUM(e.", e.amount_column, ") FROM ",
          e.table, " e WHERE e.", e.time_column, " > ? AND e.", e.time_column,
          " <= ?", And(e.condition), " AND e.", e.entity_column, " IN ("));
    }
    group_suffixes.reserve(t.events.size() + t.costs.size());
    for (const EventTable& e : t.events)
      group_suffixes.push_back(absl::StrCat(") GROUP BY e.", e.entity_column));
    for (const EventTable& e : t.costs)
      cost_group_suffixes.push_back(
          absl::StrCat(") GROUP BY e.", e.entity_column));
  }

  std::string count, live_page, resolve;
  std::vector<std::string> scan_events, scan_days, scan_costs;
  std::string facts_of_prefix, facts_of_suffix;
  std::vector<std::string> more_events_of_prefix, costs_of_prefix,
      group_suffixes, cost_group_suffixes;
};

MysqlCounterpart::MysqlCounterpart(MysqlPool* pool, CounterpartTables tables,
                                   int scan_threads)
    : pool_(pool),
      tables_(std::move(tables)),
      scan_threads_(std::max(1, scan_threads)),
      q_(std::make_unique<Queries>(tables_)) {}

MysqlCounterpart::~MysqlCounterpart() = default;

namespace {

absl::StatusOr<std::vector<std::string>> LivePage(sql::Connection& c,
                                                  const std::string& query,
                                                  const std::string& after_id,
                                                  int limit) {
  Statement s = Prepare(c, query);
  s->setString(1, after_id);
  s->setInt(2, limit);
  Rows rows(s->executeQuery());
  std::vector<std::string> ids;
  ids.reserve(rows->rowsCount());
  while (rows->next()) ids.push_back(Text(rows->getString(1)));
  return ids;
}

// Runs a scan query of entities in (lo, hi] and the window.
Rows ScanRange(sql::Connection& c, const std::string& query,
               const std::string& lo, const std::string& hi,
               const CountWindow& w) {
  Statement s = Prepare(c, query);
  s->setString(1, lo);
  s->setString(2, hi);
  s->setInt64(3, w.after_us());
  s->setInt64(4, w.as_of_us);
  return Rows(s->executeQuery());
}

}  // namespace

absl::StatusOr<int64_t> MysqlCounterpart::CountEntities() {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
    Statement s = Prepare(c, q_->count);
    Rows rows(s->executeQuery());
    rows->next();
    return static_cast<int64_t>(rows->getInt64(1));
  });
}

absl::Status MysqlCounterpart::ScanFacts(const CountWindow& window,
                                         int batch_size,
                                         const Sink<EntityFacts>& sink) {
  // Workers, each on a connection of its own, take the next page of live ids
  // in turn (a cheap primary-key range) and aggregate its facts concurrently
  // (the expensive part, which MariaDB then runs on several cores). A worker
  // gives its connection back before it hands the batch on, so that a sink
  // may use the pool (a counterpart adding facts of its own) without a
  // scan holding a connection per worker meanwhile.
  absl::Mutex mu;  // guards the next three
  std::string after;
  bool exhausted = false;
  absl::Status first_error;
  absl::Mutex sink_mu;  // one sink call at a time
  // Reads the next batch into `batch`; leaves it empty at the end.
  auto read = [&](sql::Connection& c,
                  std::vector<EntityFacts>& batch) -> absl::Status {
    batch.clear();
    std::string lo;
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&mu);
      if (exhausted || !first_error.ok()) return absl::OkStatus();
      lo = after;
      RAPPORT_ASSIGN_OR_RETURN(ids, LivePage(c, q_->live_page, lo, batch_size));
      if (ids.empty()) {
        exhausted = true;
        return absl::OkStatus();
      }
      after = ids.back();
      if (static_cast<int>(ids.size()) < batch_size) exhausted = true;
    }
    batch.assign(ids.size(), EntityFacts());
    for (size_t i = 0; i < ids.size(); ++i)
      batch[i].entity_id = std::move(ids[i]);
    const std::string& hi = batch.back().entity_id;
    // Merge id-ordered lists into the batch; rows of entities that are not
    // live (merged away) are skipped.
    auto merge = [&](const std::vector<Aggregate>& rows, bool events) {
      size_t k = 0;
      for (EntityFacts& f : batch) {
        while (k < rows.size() && rows[k].id < f.entity_id) ++k;
        if (k == rows.size()) break;
        if (rows[k].id != f.entity_id) continue;
        if (events) {
          AddEvents(rows[k], f);
        } else {
          f.cost_to_serve += rows[k].total;
        }
      }
    };
    for (const std::string& query : q_->scan_events) {
      Rows rows = ScanRange(c, query, lo, hi, window);
      RAPPORT_ASSIGN_OR_RETURN(std::vector<Aggregate> events,
                               ReadAggregates(*rows, true));
      merge(events, true);
    }
    for (const std::string& query : q_->scan_costs) {
      Rows rows = ScanRange(c, query, lo, hi, window);
      RAPPORT_ASSIGN_OR_RETURN(std::vector<Aggregate> costs,
                               ReadAggregates(*rows, false));
      merge(costs, false);
    }
    return absl::OkStatus();
  };
  auto work = [&]() -> absl::Status {
    std::vector<EntityFacts> batch;
    for (;;) {
      RAPPORT_RETURN_IF_ERROR(pool_->Run(
          [&](sql::Connection& c) -> absl::Status { return read(c, batch); }));
      if (batch.empty()) return absl::OkStatus();
      absl::MutexLock lock(&sink_mu);
      RAPPORT_RETURN_IF_ERROR(sink(batch));
    }
  };
  auto run = [&] {
    absl::Status s = work();
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

absl::StatusOr<std::vector<EntityFacts>> MysqlCounterpart::FactsOf(
    const std::vector<std::string>& ids, const CountWindow& window) {
  std::vector<EntityFacts> out;
  for (size_t begin = 0; begin < ids.size(); begin += kInList) {
    const size_t n = std::min(kInList, ids.size() - begin);
    // Lists padded to a power of two (repeating the last id), so that a few
    // statement texts serve every batch size.
    const size_t padded = PaddedCount(n, kInList);
    const std::string in = Placeholders(padded);
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      auto prepare = [&](const std::string& prefix, const std::string& suffix) {
        Statement s = PrepareCached(c, absl::StrCat(prefix, in, suffix),
                                    StatementParameters::kKept);
        s->setInt64(1, window.after_us());
        s->setInt64(2, window.as_of_us);
        BindPadded(*s, 3, ids, begin, n, padded);
        return s;
      };
      absl::flat_hash_map<std::string, size_t> index;
      {
        Statement s = prepare(q_->facts_of_prefix, q_->facts_of_suffix);
        Rows rows(s->executeQuery());
        while (rows->next()) {
          EntityFacts f;
          f.entity_id = Text(rows->getString(1));
          f.frequency = rows->getInt64(2);
          if (f.frequency > 0) {
            RAPPORT_ASSIGN_OR_RETURN(f.monetary, DecimalColumn(*rows, 3));
            f.last_event_us = rows->getInt64(4);
          }
          index[f.entity_id] = out.size();
          out.push_back(std::move(f));
        }
      }
      for (size_t t = 0; t < q_->more_events_of_prefix.size(); ++t) {
        Statement s =
            prepare(q_->more_events_of_prefix[t], q_->group_suffixes[t + 1]);
        Rows rows(s->executeQuery());
        RAPPORT_ASSIGN_OR_RETURN(std::vector<Aggregate> events,
                                 ReadAggregates(*rows, true));
        for (const Aggregate& a : events) {
          auto it = index.find(a.id);
          if (it != index.end()) AddEvents(a, out[it->second]);
        }
      }
      for (size_t t = 0; t < q_->costs_of_prefix.size(); ++t) {
        Statement s =
            prepare(q_->costs_of_prefix[t], q_->cost_group_suffixes[t]);
        Rows rows(s->executeQuery());
        RAPPORT_ASSIGN_OR_RETURN(std::vector<Aggregate> costs,
                                 ReadAggregates(*rows, false));
        for (const Aggregate& a : costs) {
          auto it = index.find(a.id);
          if (it == index.end()) continue;  // not live (merged meanwhile)
          out[it->second].cost_to_serve += a.total;
        }
      }
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
  }
  return out;
}

absl::Status MysqlCounterpart::ScanEventDays(const CountWindow& window,
                                             int batch_size,
                                             const Sink<EventDay>& sink) {
  std::string after;
  std::vector<EventDay> batch;
  for (;;) {
    size_t entities = 0;
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      RAPPORT_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                               LivePage(c, q_->live_page, after, batch_size));
      batch.clear();
      entities = ids.size();
      if (ids.empty()) return absl::OkStatus();
      // (id, day) -> amount, summed over the event tables when there are
      // several; in id then day order either way.
      std::map<std::pair<std::string, int64_t>, Decimal> merged;
      for (const std::string& query : q_->scan_days) {
        Rows rows = ScanRange(c, query, after, ids.back(), window);
        size_t i = 0;
        while (rows->next()) {
          std::string id = Text(rows->getString(1));
          while (i < ids.size() && ids[i] < id) ++i;
          if (i == ids.size() || ids[i] != id) continue;  // not live
          RAPPORT_ASSIGN_OR_RETURN(Decimal amount, DecimalColumn(*rows, 3));
          const int64_t day = rows->getInt64(2);
          if (q_->scan_days.size() == 1) {
            batch.push_back({std::move(id), day, amount});
          } else {
            merged[{std::move(id), day}] += amount;
          }
        }
      }
      for (auto& [key, amount] : merged)
        batch.push_back({key.first, key.second, amount});
      after = ids.back();
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
    if (entities == 0) return absl::OkStatus();
    if (!batch.empty()) RAPPORT_RETURN_IF_ERROR(sink(batch));
    if (static_cast<int>(entities) < batch_size) return absl::OkStatus();
  }
}

absl::StatusOr<std::string> MysqlCounterpart::ResolveEntity(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    Statement s = Prepare(c, q_->resolve);
    std::string current = id;
    for (int hop = 0; hop < kMaxMergeHops; ++hop) {
      s->setString(1, current);
      Rows rows(s->executeQuery());
      if (!rows->next()) {
        return absl::NotFoundError(
            absl::StrCat(tables_.noun, " ", id, " not found"));
      }
      if (rows->isNull(1)) {
        // Neither merged nor live (erased): nothing to value.
        if (!tables_.merged_into_column.empty() && !rows->getBoolean(2)) {
          return absl::FailedPreconditionError(absl::StrCat(
              tables_.noun, " ", current, " ", tables_.not_live_reason));
        }
        return current;
      }
      current = Text(rows->getString(1));
    }
    return absl::NotFoundError(
        absl::StrCat(tables_.noun, " ", id, " not found (merge loop)"));
  });
}

}  // namespace rapport::differentiation
