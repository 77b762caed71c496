#include "common/differentiation/mysql_value_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/ids.h"
#include "common/mysql/named_lock.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"

namespace rapport {
// Generated from migrations/ by rapport_embed_migrations.
const std::vector<Migration>& ValueTableMigrationTemplates();
}  // namespace rapport

namespace rapport::differentiation {
namespace {

using Statement = CachedStatement;

// Rows per multi-row INSERT: 17 placeholders each, well under the 65535 limit.
constexpr int kInsertRows = 1000;
// Ids per IN (...) list.
constexpr size_t kInList = 1000;
// error is VARCHAR(2048).
constexpr size_t kMaxErrorBytes = 2000;
// The live table's comment: this prefix, then the job id.
constexpr absl::string_view kLiveComment = "rapport refresh job ";

constexpr int kValueColumnCount = 17;
constexpr char kJobColumns[] =
    "id, state, done, total, request, create_time_us, end_time_us, "
    "heartbeat_time_us, error, score_model, clv_model";

bool IsIdentifier(absl::string_view name) {
  if (name.empty() || name.size() > 48) return false;
  for (char ch : name) {
    if (!absl::ascii_islower(ch) && !absl::ascii_isdigit(ch) && ch != '_')
      return false;
  }
  return !absl::ascii_isdigit(name[0]);
}

Statement Prepare(sql::Connection& c, const std::string& query) {
  return PrepareCached(c, query);
}

// For the statements of many parameters whose callers set every one.
Statement PrepareKept(sql::Connection& c, const std::string& query) {
  return PrepareCached(c, query, StatementParameters::kKept);
}

// Binds a value's 17 columns (the Queries::columns order) from `first`.
void BindValue(sql::PreparedStatement& s, int first, const StoredValue& v) {
  int i = first;
  s.setString(i++, v.entity_id);
  s.setString(i++, v.model_id);
  SetOptionalInt64(s, i++, v.recency_days);
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

// Reads the 17 columns (the Queries::columns order) from `first`.
absl::StatusOr<StoredValue> ReadValue(sql::ResultSet& rows, int first) {
  StoredValue v;
  int i = first;
  v.entity_id = Text(rows.getString(i++));
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

RefreshJobRecord ReadJob(sql::ResultSet& rows) {
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
  j.score_model = TextOrEmpty(rows, 10);
  j.clv_model = TextOrEmpty(rows, 11);
  return j;
}

std::string Truncated(const std::string& text) {
  if (text.size() <= kMaxErrorBytes) return text;
  size_t n = kMaxErrorBytes;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;  // UTF-8 boundary
  return text.substr(0, n);
}

// The job id a set's table name ends with, after `prefix`; "" when it does
// not name one of ours.
std::string JobIdOf(absl::string_view table, absl::string_view prefix) {
  if (!absl::StartsWith(table, prefix)) return "";
  absl::string_view id = table.substr(prefix.size());
  return IsValidId(id) ? std::string(id) : "";
}

// "foo\_bar": a name as a LIKE pattern that matches only itself.
std::string LikeLiteral(absl::string_view name) {
  return absl::StrReplaceAll(name,
                             {{"\\", "\\\\"}, {"_", "\\_"}, {"%", "\\%"}});
}

// The secondary indexes of `table` as ALTER TABLE clauses, one per index:
// "ADD KEY name (a DESC, b)" when `add`, else "DROP KEY name".
std::vector<std::string> SecondaryIndexClauses(sql::Connection& c,
                                               const std::string& table,
                                               bool add) {
  Statement s = Prepare(
      c,
      "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME, COLLATION FROM "
      "information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND "
      "TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' "
      "ORDER BY INDEX_NAME, SEQ_IN_INDEX");
  s->setString(1, table);
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
    // The value is indexed highest first (migration 1002), also where a set
    // published by an older binary, which copied indexes without their
    // order, lost it: the next refresh puts it back.
    const std::string column = Text(rows->getString(3));
    absl::StrAppend(
        &columns, columns.empty() ? "" : ", ", "`", column, "`",
        Text(rows->getString(4)) == "D" || (add && column == "value_hundredths")
            ? " DESC"
            : "");
  }
  flush();
  return clauses;
}

}  // namespace

absl::Status ValueTables::Validate() const {
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"values", &values},
        {"entity_column", &entity_column},
        {"jobs", &jobs},
        {"entities", &entities}}) {
    if (!IsIdentifier(*value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "value tables: ", name, " \"", *value,
          "\" is not a lower-case SQL identifier of at most 48 bytes"));
    }
  }
  if (!external_ids.empty() && !IsIdentifier(external_ids)) {
    return absl::InvalidArgumentError(
        "value tables: external_ids is not a lower-case SQL identifier");
  }
  return absl::OkStatus();
}

namespace {

// The sets an entity's values may stand in: the live one, and the previous
// one from the second refresh on (publishing swaps it in whole, so it never
// goes missing once made).
std::vector<std::string> EntityValueSets(sql::Connection& c,
                                         const ValueTables& t) {
  const std::string previous = absl::StrCat(t.values, "_previous");
  std::vector<std::string> sets = {t.values};
  Statement s = PrepareCached(
      c,
      "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema "
      "= DATABASE() AND table_name = ?");
  s->setString(1, previous);
  Rows rows(s->executeQuery());
  if (rows->next() && rows->getInt64(1) > 0) sets.push_back(previous);
  return sets;
}

// Deletes the rows of `ids` from the value set `set`.
void DeleteFromSet(sql::Connection& c, const ValueTables& t,
                   const std::string& set,
                   const std::vector<std::string>& ids) {
  ForChunks(ids.size(), [&](size_t begin, size_t n) {
    Statement s = PrepareCached(
        c, absl::StrCat("DELETE FROM ", set, " WHERE ", t.entity_column,
                        " IN (", Placeholders(n), ")"));
    for (size_t i = 0; i < n; ++i) {
      s->setString(static_cast<int>(i) + 1, ids[begin + i]);
    }
    s->executeUpdate();
  });
}

}  // namespace

void DeleteEntityValues(sql::Connection& c, const ValueTables& t,
                        const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  for (const std::string& set : EntityValueSets(c, t)) {
    DeleteFromSet(c, t, set, ids);
  }
}

void ClearValuesOfReusedIds(sql::Connection& c, const ValueTables& t,
                            const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  for (const std::string& set : EntityValueSets(c, t)) {
    std::vector<std::string> found;
    SelectInLists(c,
                  absl::StrCat("SELECT ", t.entity_column, " FROM ", set,
                               " WHERE ", t.entity_column),
                  ids, kInList, [&](sql::ResultSet& row) {
                    found.push_back(row.getString(1));
                  });
    if (found.empty()) continue;
    std::sort(found.begin(), found.end());
    found.erase(std::unique(found.begin(), found.end()), found.end());
    DeleteFromSet(c, t, set, found);
  }
}

std::vector<Migration> ValueTableMigrations(const ValueTables& tables) {
  std::vector<Migration> out;
  for (const Migration& m : ValueTableMigrationTemplates()) {
    out.push_back(
        {m.version, m.name,
         absl::StrReplaceAll(m.sql, {{"{jobs}", tables.jobs},
                                     {"{values}", tables.values},
                                     {"{entity_id}", tables.entity_column}})});
  }
  return out;
}

struct MysqlValueStore::Queries {
  explicit Queries(const ValueTables& t) {
    const std::string& e = t.entity_column;
    columns = absl::StrCat(
        e,
        ", model_id, recency_days, frequency, monetary, r, f, m, segment, "
        "value_hundredths, cost_to_serve, profit, tier, p_alive, "
        "expected_purchases, clv, score_time_us");
    std::string columns_of_s;
    for (absl::string_view c : absl::StrSplit(columns, ", ")) {
      absl::StrAppend(&columns_of_s, columns_of_s.empty() ? "" : ", ", "s.", c);
    }
    const std::string live =
        t.live_condition.empty() ? "TRUE" : t.live_condition;
    create_job = absl::StrCat("INSERT INTO ", t.jobs, " (", kJobColumns,
                              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    running_job =
        absl::StrCat("SELECT id FROM ", t.jobs, " WHERE state = 1 LIMIT 1");
    get_job =
        absl::StrCat("SELECT ", kJobColumns, " FROM ", t.jobs, " WHERE id = ?");
    for (const bool id_only : {false, true}) {
      for (const JobState state :
           {JobState::kRunning, JobState::kSucceeded, JobState::kFailed}) {
        latest_job[id_only][static_cast<int>(state)] = absl::StrCat(
            "SELECT ", id_only ? "id" : kJobColumns, " FROM ", t.jobs,
            " WHERE state = ? ORDER BY ",
            state == JobState::kSucceeded ? "end_time_us" : "create_time_us",
            " DESC, id DESC LIMIT 1");
      }
    }
    stale_jobs = absl::StrCat("SELECT ", kJobColumns, " FROM ", t.jobs,
                              " WHERE state = 1 AND heartbeat_time_us < ?");
    job_lock_free = "SELECT IS_FREE_LOCK(?)";
    // Taken once per connection (a second GET_LOCK would count it twice).
    take_job_lock =
        "SELECT IF(IS_USED_LOCK(?) <=> CONNECTION_ID(), 1, GET_LOCK(?, 0))";
    end_stale_job =
        absl::StrCat("UPDATE ", t.jobs,
                     " SET state = ?, error = ?, done = ?, end_time_us = ?, "
                     "heartbeat_time_us = ? WHERE id = ? AND state = 1 AND "
                     "heartbeat_time_us < ?");
    job_running = absl::StrCat("SELECT state FROM ", t.jobs, " WHERE id = ?");
    update_progress =
        absl::StrCat("UPDATE ", t.jobs,
                     " SET done = ?, total = ?, heartbeat_time_us = ? "
                     "WHERE id = ? AND state = 1");
    set_models = absl::StrCat("UPDATE ", t.jobs,
                              " SET score_model = ?, clv_model = ? "
                              "WHERE id = ? AND state = 1");
    finish_job = absl::StrCat(
        "UPDATE ", t.jobs,
        " SET state = ?, error = ?, done = ?, total = ?, end_time_us = ?, "
        "heartbeat_time_us = ? WHERE id = ? AND state = 1");
    // A value scored from older facts than the stored one (two re-scores of
    // one entity, the later one's answer stored first) changes nothing:
    // each column takes the new value only when its score time is not
    // older, and score_time_us goes last, since MariaDB's later assignments
    // see the earlier ones' results.
    upsert_suffix = " ON DUPLICATE KEY UPDATE ";
    auto newer = [](absl::string_view column, absl::string_view value) {
      return absl::StrCat(column,
                          " = IF(VALUES(score_time_us) >= score_time_us, ",
                          value, ", ", column, "), ");
    };
    for (const char* column :
         {"model_id", "recency_days", "frequency", "monetary", "r", "f", "m",
          "segment", "value_hundredths", "cost_to_serve", "profit", "tier"}) {
      absl::StrAppend(&upsert_suffix,
                      newer(column, absl::StrCat("VALUES(", column, ")")));
    }
    // A value without them keeps the stored p_alive, expected purchases and
    // CLV.
    for (const char* column : {"p_alive", "expected_purchases", "clv"}) {
      absl::StrAppend(&upsert_suffix,
                      newer(column, absl::StrCat("COALESCE(VALUES(", column,
                                                 "), ", column, ")")));
    }
    absl::StrAppend(&upsert_suffix,
                    "score_time_us = GREATEST(score_time_us, "
                    "VALUES(score_time_us))");
    other_models =
        absl::StrCat("SELECT ", e, " FROM ", t.values, " WHERE model_id <> ?");
    gone = absl::StrCat("SELECT s.", e, " FROM ", t.values, " s LEFT JOIN ",
                        t.entities, " c ON c.id = s.", e,
                        " WHERE c.id IS NULL OR NOT (", live, ")");
    get_values_prefix = absl::StrCat("SELECT ", columns, " FROM ", t.values,
                                     " WHERE ", e, " IN (");
    previous_set = absl::StrCat(t.values, "_previous");
    get_previous_prefix = absl::StrCat("SELECT ", columns, " FROM ",
                                       previous_set, " WHERE ", e, " IN (");
    for (const bool by_tier : {false, true}) {
      const char* key = by_tier ? "s.tier" : "s.segment";
      summarize[by_tier] =
          absl::StrCat("SELECT ", key,
                       ", COUNT(*), SUM(s.monetary), SUM(s.value_hundredths), "
                       "SUM(s.cost_to_serve), SUM(s.profit) FROM ",
                       t.values, " s JOIN ", t.entities, " c ON c.id = s.", e,
                       " WHERE ", live, " GROUP BY ", key, " ORDER BY ", key);
    }
    export_by_id =
        absl::StrCat("SELECT ", columns_of_s, " FROM ", t.values, " s JOIN ",
                     t.entities, " c ON c.id = s.", e, " WHERE s.", e,
                     " > ? AND ", live, " ORDER BY s.", e, " LIMIT ?");
    if (!t.external_ids.empty()) {
      // One row per entity: an entity with several ids of the source is
      // keyed by the first of them in byte order.
      export_by_external_id = absl::StrCat(
          "SELECT x.external_id, ", columns_of_s, " FROM ", t.external_ids,
          " x JOIN ", t.values, " s ON s.", e, " = x.", e, " JOIN ", t.entities,
          " c ON c.id = x.", e,
          " WHERE x.source = ? AND x.external_id > ? AND ", live,
          " AND NOT EXISTS (SELECT 1 FROM ", t.external_ids, " y WHERE y.", e,
          " = x.", e,
          " AND y.source = x.source AND y.external_id < x.external_id)"
          " ORDER BY x.external_id LIMIT ?");
    }
    live_set =
        "SELECT TABLE_COMMENT FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?";
    staging_prefix = absl::StrCat(t.values, "_staging_");
    replaced_prefix = absl::StrCat(t.values, "_old_");
    leftovers = absl::StrCat(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = DATABASE() AND (TABLE_NAME LIKE '",
        LikeLiteral(staging_prefix), "%' OR TABLE_NAME LIKE '",
        LikeLiteral(replaced_prefix), "%')");
  }

  std::string columns;
  std::string create_job, running_job, get_job, latest_job[2][4], stale_jobs,
      job_lock_free, take_job_lock, end_stale_job, job_running, update_progress,
      set_models, finish_job;
  std::string upsert_suffix, other_models, gone, get_values_prefix,
      summarize[2], export_by_id, export_by_external_id;
  std::string live_set, staging_prefix, replaced_prefix, leftovers;
  std::string previous_set, get_previous_prefix;
};

MysqlValueStore::MysqlValueStore(MysqlPool* pool, ValueTables tables)
    : pool_(pool),
      tables_(std::move(tables)),
      q_(std::make_shared<Queries>(tables_)) {}

absl::StatusOr<std::string> MysqlValueStore::StagingTable(
    const std::string& job_id) const {
  // Job ids are ours (26 lower-case base32 characters), checked before they
  // become part of a name.
  if (!IsValidId(job_id))
    return absl::InvalidArgumentError(absl::StrCat("bad job id ", job_id));
  return absl::StrCat(q_->staging_prefix, job_id);
}

absl::StatusOr<std::string> MysqlValueStore::ReplacedTable(
    const std::string& job_id) const {
  if (!IsValidId(job_id))
    return absl::InvalidArgumentError(absl::StrCat("bad job id ", job_id));
  return absl::StrCat(q_->replaced_prefix, job_id);
}

namespace {

// The named lock that serialises starting, publishing and ending refreshes
// of one database's `jobs` table across replicas.
std::string RefreshLockName(const MysqlPool& pool, const ValueTables& tables) {
  return absl::StrCat("rapport.refresh.", pool.options().database, ".",
                      tables.jobs);
}
// The lock a job's replica holds on its heartbeats' connection while the job
// runs. The server frees it when that connection goes, as it does at once
// when the process dies, so that other replicas need not wait out
// stale_after to know that the job stopped.
std::string JobLockName(const MysqlPool& pool, const ValueTables& tables,
                        const std::string& id) {
  return KeyedLockName("rapport.job.", pool.options().database, tables.jobs,
                       id);
}
// How long after a late job's lock is first found free it must be found so
// again before the job ends: longer than its replica takes to connect again
// and beat (a beat a second) after a passing loss of its connection.
constexpr int64_t kGoneConfirmUs = 3'000'000;
// How long publishing a set waits for the live values' readers.
constexpr int kSwapWaitSeconds = 20;
// How many times publishing waits NamedLock::kWaitSeconds for the refresh
// lock.
constexpr int kPublishLockAttempts = 6;

constexpr absl::string_view kRefreshBusy =
    "another replica is starting or publishing a refresh; retry";

absl::StatusOr<std::optional<std::string>> ReadLiveSetJob(
    sql::Connection& c, const std::string& query, const std::string& table) {
  Statement s = Prepare(c, query);
  s->setString(1, table);
  Rows rows(s->executeQuery());
  if (!rows->next()) {
    // The table's name is for the log, not for the caller.
    return MarkInternal(absl::FailedPreconditionError(
        absl::StrCat("table ", table, " is missing; migrations not applied?")));
  }
  const std::string comment = TextOrEmpty(*rows, 1);
  if (!absl::StartsWith(comment, kLiveComment))
    return std::optional<std::string>();
  return std::optional<std::string>(comment.substr(kLiveComment.size()));
}

}  // namespace

// --- Jobs --------------------------------------------------------------------

absl::Status MysqlValueStore::CreateJob(const RefreshJobRecord& job,
                                        const audit::Event& event) {
  // The check for a running job and the insert of a new one cannot
  // interleave across replicas: one refresh at a time.
  return pool_->TransactionUnderLock(
      RefreshLockName(*pool_, tables_), kRefreshBusy,
      [&](sql::Connection& c) -> absl::Status {
        if (job.state == JobState::kRunning) {
          Statement running = Prepare(c, q_->running_job);
          Rows rows(running->executeQuery());
          if (rows->next()) {
            return absl::FailedPreconditionError(
                absl::StrCat("refresh job ", Text(rows->getString(1)),
                             " is running; follow it with GetRefreshJob"));
          }
        }
        Statement s = Prepare(c, q_->create_job);
        std::istringstream request(job.request);
        std::istringstream score(job.score_model);
        std::istringstream clv(job.clv_model);
        s->setString(1, job.id);
        s->setInt(2, static_cast<int>(job.state));
        s->setInt64(3, job.done);
        s->setInt64(4, job.total);
        s->setBlob(5, &request);
        s->setInt64(6, job.create_time_us);
        SetOptionalInt64(*s, 7, job.end_time_us);
        s->setInt64(8, job.heartbeat_time_us);
        s->setString(9, Truncated(job.error));
        if (job.score_model.empty()) {
          s->setNull(10, sql::DataType::LONGVARBINARY);
        } else {
          s->setBlob(10, &score);
        }
        if (job.clv_model.empty()) {
          s->setNull(11, sql::DataType::LONGVARBINARY);
        } else {
          s->setBlob(11, &clv);
        }
        s->executeUpdate();
        audit::Write(c, event);
        return absl::OkStatus();
      });
}

absl::StatusOr<RefreshJobRecord> MysqlValueStore::GetJob(
    const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<RefreshJobRecord> {
        Statement s = Prepare(c, q_->get_job);
        s->setString(1, id);
        Rows rows(s->executeQuery());
        if (!rows->next())
          return absl::NotFoundError(
              absl::StrCat("refresh job ", id, " not found"));
        return ReadJob(*rows);
      });
}

absl::StatusOr<std::optional<RefreshJobRecord>> MysqlValueStore::LatestJob(
    JobState state) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::optional<RefreshJobRecord>> {
    Statement s = Prepare(c, q_->latest_job[0][static_cast<int>(state)]);
    s->setInt(1, static_cast<int>(state));
    Rows rows(s->executeQuery());
    if (!rows->next()) return std::optional<RefreshJobRecord>();
    return std::optional<RefreshJobRecord>(ReadJob(*rows));
  });
}

absl::StatusOr<std::optional<std::string>> MysqlValueStore::LatestJobId(
    JobState state) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        Statement s = Prepare(c, q_->latest_job[1][static_cast<int>(state)]);
        s->setInt(1, static_cast<int>(state));
        Rows rows(s->executeQuery());
        if (!rows->next()) return std::optional<std::string>();
        return std::optional<std::string>(Text(rows->getString(1)));
      });
}

absl::StatusOr<std::vector<RefreshJobRecord>> MysqlValueStore::EndStaleJobs(
    int64_t stale_before_us, int64_t gone_before_us, const std::string& error,
    int64_t now_us) {
  // Under the refresh lock, so that no job's set goes live between the look
  // at the live set and the end of the job.
  return pool_->TransactionUnderLock(
      RefreshLockName(*pool_, tables_), kRefreshBusy,
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<RefreshJobRecord>> {
        std::vector<RefreshJobRecord> jobs;
        {
          Statement s = Prepare(c, q_->stale_jobs);
          s->setInt64(1, std::max(stale_before_us, gone_before_us));
          Rows rows(s->executeQuery());
          while (rows->next()) jobs.push_back(ReadJob(*rows));
        }
        // A job whose heartbeat is late but not stale ends only when no
        // connection holds its lock (its replica's is gone), twice in a row
        // kGoneConfirmUs apart by this process's clock, read here, under the
        // refresh lock (now_us was read before the wait for it).
        std::vector<int64_t> before;  // each job's bound, for the update
        {
          Statement free = Prepare(c, q_->job_lock_free);
          std::vector<RefreshJobRecord> late;
          const int64_t looked_us = absl::ToUnixMicros(absl::Now());
          absl::MutexLock seen(&gone_mu_);
          absl::erase_if(gone_seen_, [&](const auto& entry) {
            return std::none_of(jobs.begin(), jobs.end(), [&](const auto& j) {
              return j.id == entry.first;
            });
          });
          for (RefreshJobRecord& job : jobs) {
            if (job.heartbeat_time_us < stale_before_us) {
              gone_seen_.erase(job.id);
              before.push_back(stale_before_us);
              late.push_back(std::move(job));
              continue;
            }
            free->setString(1, JobLockName(*pool_, tables_, job.id));
            Rows rows(free->executeQuery());
            if (!rows->next() || rows->isNull(1) || rows->getInt(1) != 1) {
              gone_seen_.erase(job.id);
              continue;
            }
            const std::pair<int64_t, int64_t> now_seen = {job.heartbeat_time_us,
                                                          looked_us};
            auto [first, inserted] = gone_seen_.try_emplace(job.id, now_seen);
            if (!inserted && first->second.first != job.heartbeat_time_us) {
              first->second = now_seen;  // it beat meanwhile: seen anew
              continue;
            }
            if (inserted || looked_us - first->second.second < kGoneConfirmUs) {
              continue;
            }
            gone_seen_.erase(first);
            before.push_back(gone_before_us);
            late.push_back(std::move(job));
          }
          jobs = std::move(late);
        }
        if (jobs.empty()) return jobs;
        RAPPORT_ASSIGN_OR_RETURN(
            std::optional<std::string> live,
            ReadLiveSetJob(c, q_->live_set, tables_.values));
        // Only those still stale: a replica that was slow, not stopped, may
        // have sent its heartbeat meanwhile.
        Statement u = Prepare(c, q_->end_stale_job);
        std::vector<RefreshJobRecord> ended;
        for (size_t i = 0; i < jobs.size(); ++i) {
          RefreshJobRecord& job = jobs[i];
          const bool published = live == job.id;
          job.state = published ? JobState::kSucceeded : JobState::kFailed;
          job.error = published ? "" : Truncated(error);
          if (published) job.done = job.total;
          job.end_time_us = now_us;
          job.heartbeat_time_us = now_us;
          u->setInt(1, static_cast<int>(job.state));
          u->setString(2, job.error);
          u->setInt64(3, job.done);
          u->setInt64(4, now_us);
          u->setInt64(5, now_us);
          u->setString(6, job.id);
          u->setInt64(7, before[i]);
          if (u->executeUpdate() == 0) continue;
          audit::Write(c, {.time_us = now_us,
                           .actor = "system:recovery",
                           .rpc = "RefreshScores",
                           .resource = absl::StrCat("refreshJobs/", job.id),
                           .outcome = published ? "succeeded" : "failed",
                           .details = published ? "published before its "
                                                  "replica stopped"
                                                : job.error});
          ended.push_back(std::move(job));
        }
        return ended;
      });
}

absl::Status MysqlValueStore::UpdateProgress(const std::string& id,
                                             int64_t done, int64_t total,
                                             int64_t now_us) {
  return pool_->RunKept(heartbeats_, [&](sql::Connection& c) -> absl::Status {
    {
      const std::string lock = JobLockName(*pool_, tables_, id);
      Statement take = Prepare(c, q_->take_job_lock);
      take->setString(1, lock);
      take->setString(2, lock);
      Rows taken(take->executeQuery());
    }
    Statement s = Prepare(c, q_->update_progress);
    s->setInt64(1, done);
    s->setInt64(2, total);
    s->setInt64(3, now_us);
    s->setString(4, id);
    if (s->executeUpdate() == 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("refresh job ", id, " is not running any more"));
    }
    return absl::OkStatus();
  });
}

void MysqlValueStore::HeartbeatsStopped() { pool_->Close(heartbeats_); }

absl::Status MysqlValueStore::SetModels(const std::string& id,
                                        const std::string& score_model,
                                        const std::string& clv_model) {
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Statement s = Prepare(c, q_->set_models);
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

absl::Status MysqlValueStore::FinishJob(const RefreshJobRecord& job,
                                        const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    Statement s = Prepare(c, q_->finish_job);
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
    audit::Write(c, event);
    return absl::OkStatus();
  });
}

// --- Value sets --------------------------------------------------------------

absl::Status MysqlValueStore::BeginValueSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", table));
    Execute(c, absl::StrCat("CREATE TABLE ", table, " LIKE ", tables_.values));
    // Named after its job (the name moves with the table when it goes live),
    // and loaded without its secondary indexes, which PublishValueSet builds
    // in one sorted pass: faster than keeping them up to date row by row.
    std::vector<std::string> clauses =
        SecondaryIndexClauses(c, tables_.values, false);
    clauses.push_back(absl::StrCat("COMMENT = '", kLiveComment, job_id, "'"));
    Execute(c, absl::StrCat("ALTER TABLE ", table, " ",
                            absl::StrJoin(clauses, ", ")));
    return absl::OkStatus();
  });
}

absl::Status MysqlValueStore::AppendValues(
    const std::string& job_id, const std::vector<StoredValue>& values) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  if (values.empty()) return absl::OkStatus();
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    auto insert = [&](int rows) {
      // The staging table is new for every job: not worth caching.
      return std::unique_ptr<sql::PreparedStatement>(c.prepareStatement(
          absl::StrCat("INSERT INTO ", table, " (", q_->columns, ") VALUES ",
                       RowPlaceholders(rows, kValueColumnCount))));
    };
    std::unique_ptr<sql::PreparedStatement> full;
    for (size_t begin = 0; begin < values.size(); begin += kInsertRows) {
      const int n = static_cast<int>(
          std::min<size_t>(kInsertRows, values.size() - begin));
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
        BindValue(*s, 1 + i * kValueColumnCount, values[begin + i]);
      s->executeUpdate();
    }
    return absl::OkStatus();
  });
}

absl::Status MysqlValueStore::PublishValueSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  RAPPORT_ASSIGN_OR_RETURN(std::string old, ReplacedTable(job_id));
  // Building the indexes of millions of values may take longer than the
  // pool lets one statement run.
  return pool_->RunUnbounded([&](sql::Connection& c) -> absl::Status {
    std::vector<std::string> add =
        SecondaryIndexClauses(c, tables_.values, true);
    if (!add.empty()) {
      Execute(c, absl::StrCat("ALTER TABLE ", table, " ",
                              absl::StrJoin(add, ", ")));
    }
    // A set staged and indexed is worth a few waits for the lock (a replica
    // retiring a large replaced set holds it for a while): a refresh is not
    // thrown away for one busy moment.
    absl::StatusOr<std::unique_ptr<NamedLock>> taken;
    for (int attempt = 0; attempt < kPublishLockAttempts; ++attempt) {
      taken =
          NamedLock::Take(c, RefreshLockName(*pool_, tables_), kRefreshBusy);
      if (!absl::IsAborted(taken.status())) break;
    }
    RAPPORT_ASSIGN_OR_RETURN(std::unique_ptr<NamedLock> lock, std::move(taken));
    {
      Statement s = Prepare(c, q_->job_running);
      s->setString(1, job_id);
      Rows rows(s->executeQuery());
      if (!rows->next() ||
          rows->getInt(1) != static_cast<int>(JobState::kRunning)) {
        return absl::FailedPreconditionError(
            absl::StrCat("refresh job ", job_id, " is no longer running"));
      }
    }
    // The swap waits for the readers of the live values to finish, and every
    // reader that comes after waits behind it: a reader that does not finish
    // (a long export, a dump) fails the swap after kSwapWaitSeconds rather
    // than hold up every read of the values for the server's day-long
    // default.
    Execute(c,
            absl::StrCat("SET SESSION lock_wait_timeout = ", kSwapWaitSeconds));
    try {
      Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", old));
      // One statement: readers see the old table or the new one, never
      // neither.
      Execute(c, absl::StrCat("RENAME TABLE ", tables_.values, " TO ", old,
                              ", ", table, " TO ", tables_.values));
    } catch (const sql::SQLException&) {
      Execute(c, "SET SESSION lock_wait_timeout = DEFAULT");
      throw;
    }
    Execute(c, "SET SESSION lock_wait_timeout = DEFAULT");
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> MysqlValueStore::RescoredInReplacedSet(
    const std::string& job_id, int64_t since_us) {
  RAPPORT_ASSIGN_OR_RETURN(std::string old, ReplacedTable(job_id));
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> out;
        {
          Statement exists = Prepare(c, q_->live_set);
          exists->setString(1, old);
          Rows rows(exists->executeQuery());
          if (!rows->next()) return out;  // dropped already
        }
        std::unique_ptr<sql::PreparedStatement> s(c.prepareStatement(
            absl::StrCat("SELECT ", tables_.entity_column, " FROM ", old,
                         " WHERE score_time_us > ?")));
        s->setInt64(1, since_us);
        Rows rows(s->executeQuery());
        while (rows->next()) out.push_back(Text(rows->getString(1)));
        return out;
      });
}

absl::Status MysqlValueStore::DropReplacedSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string old, ReplacedTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", old));
    return absl::OkStatus();
  });
}

absl::Status MysqlValueStore::RetireReplacedSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string old, ReplacedTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    // Under the refresh lock: two replicas catching up after the same job
    // (one of them recovering it) retire its set once, not twice.
    RAPPORT_ASSIGN_OR_RETURN(
        std::unique_ptr<NamedLock> lock,
        NamedLock::Take(c, RefreshLockName(*pool_, tables_), kRefreshBusy));
    {
      Statement exists = Prepare(c, q_->live_set);
      exists->setString(1, old);
      Rows rows(exists->executeQuery());
      if (!rows->next()) return absl::OkStatus();  // retired already
    }
    // A later refresh published since (this catch-up was slow): the set it
    // replaced is newer than this one, which is dropped, so that the previous
    // set is never more than one refresh old.
    RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> live,
                             ReadLiveSetJob(c, q_->live_set, tables_.values));
    if (live.has_value() && *live != job_id) {
      Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", old));
      return absl::OkStatus();
    }
    // The previous set is swapped for the replaced one in one RENAME, so that
    // a reader (a scorecard's trend) always finds one; the one it replaces is
    // dropped after. A crash before the RENAME leaves the replaced set,
    // which recovery retires again; one after it leaves the "_gone" table,
    // which the next retirement drops first.
    const std::string gone = absl::StrCat(q_->previous_set, "_gone");
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", gone));
    bool had_previous = false;
    {
      Statement exists = Prepare(c, q_->live_set);
      exists->setString(1, q_->previous_set);
      Rows rows(exists->executeQuery());
      had_previous = rows->next();
    }
    Execute(c,
            had_previous
                ? absl::StrCat("RENAME TABLE ", q_->previous_set, " TO ", gone,
                               ", ", old, " TO ", q_->previous_set)
                : absl::StrCat("RENAME TABLE ", old, " TO ", q_->previous_set));
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", gone));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<StoredValue>> MysqlValueStore::GetPreviousValues(
    const std::vector<std::string>& ids) {
  // Until the live refresh's catch-up retires the set it replaced, the
  // previous set is the one before that: the replaced set is read instead.
  // It may be retired (renamed) at any moment, so it is read as it is
  // (no table: retired, the previous set has it now).
  RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> live, LiveSetJob());
  if (live.has_value()) {
    RAPPORT_ASSIGN_OR_RETURN(std::string replaced, ReplacedTable(*live));
    bool retired = false;
    RAPPORT_ASSIGN_OR_RETURN(
        std::vector<StoredValue> out,
        ReadValues(absl::StrCat("SELECT ", q_->columns, " FROM ", replaced,
                                " WHERE ", tables_.entity_column, " IN ("),
                   "", ids, &retired));
    if (!retired) return out;
  }
  return ReadValues(q_->get_previous_prefix, q_->previous_set, ids);
}

absl::Status MysqlValueStore::DiscardValueSet(const std::string& job_id) {
  RAPPORT_ASSIGN_OR_RETURN(std::string table, StagingTable(job_id));
  return pool_->Run([&](sql::Connection& c) -> absl::Status {
    Execute(c, absl::StrCat("DROP TABLE IF EXISTS ", table));
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<std::string>> MysqlValueStore::LiveSetJob() {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        return ReadLiveSetJob(c, q_->live_set, tables_.values);
      });
}

absl::StatusOr<std::optional<std::string>>
MysqlValueStore::SettledLiveSetJob() {
  // A publisher swaps the sets holding the refresh lock: once this
  // connection has it, no swap is pending.
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        RAPPORT_ASSIGN_OR_RETURN(
            std::unique_ptr<NamedLock> lock,
            NamedLock::Take(c, RefreshLockName(*pool_, tables_), kRefreshBusy));
        return ReadLiveSetJob(c, q_->live_set, tables_.values);
      });
}

absl::StatusOr<std::vector<LeftoverSet>> MysqlValueStore::LeftoverSets() {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<LeftoverSet>> {
        Statement s = Prepare(c, q_->leftovers);
        Rows rows(s->executeQuery());
        std::vector<LeftoverSet> out;
        while (rows->next()) {
          const std::string table = Text(rows->getString(1));
          if (std::string id = JobIdOf(table, q_->staging_prefix);
              !id.empty()) {
            out.push_back({id, LeftoverSet::Kind::kStaged});
          } else if (std::string id = JobIdOf(table, q_->replaced_prefix);
                     !id.empty()) {
            out.push_back({id, LeftoverSet::Kind::kReplaced});
          }
        }
        return out;
      });
}

// --- Live values -------------------------------------------------------------

absl::Status MysqlValueStore::UpsertValues(
    const std::vector<StoredValue>& values) {
  if (values.empty()) return absl::OkStatus();
  auto write = [&](sql::Connection& c) -> absl::Status {
    for (size_t begin = 0; begin < values.size(); begin += kInsertRows) {
      const size_t n = std::min<size_t>(kInsertRows, values.size() - begin);
      // Padded to a power of two by repeating the last row (which updates
      // it to the same values), so that a few statement texts serve all.
      const size_t padded = PaddedCount(n, kInsertRows);
      Statement s = PrepareKept(
          c,
          absl::StrCat("INSERT INTO ", tables_.values, " (", q_->columns,
                       ") VALUES ", RowPlaceholders(padded, kValueColumnCount),
                       q_->upsert_suffix));
      for (size_t i = 0; i < padded; ++i)
        BindValue(*s, 1 + static_cast<int>(i) * kValueColumnCount,
                  values[begin + std::min(i, n - 1)]);
      s->executeUpdate();
    }
    return absl::OkStatus();
  };
  // One statement is atomic by itself; more need a transaction.
  if (values.size() <= static_cast<size_t>(kInsertRows))
    return pool_->Run(write);
  return pool_->Transaction(write);
}

absl::StatusOr<std::vector<std::string>> MysqlValueStore::ValuedByOtherModels(
    const std::string& job_id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        Statement s = Prepare(c, q_->other_models);
        s->setString(1, job_id);
        Rows rows(s->executeQuery());
        std::vector<std::string> out;
        while (rows->next()) out.push_back(Text(rows->getString(1)));
        return out;
      });
}

absl::StatusOr<std::vector<std::string>>
MysqlValueStore::DropValuesOfEntitiesGone() {
  // Found with a plain read (no row is locked for the scan), then deleted
  // by id, from the live set and the previous one: usually there is none.
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        std::vector<std::string> ids;
        {
          Statement s = Prepare(c, q_->gone);
          Rows rows(s->executeQuery());
          while (rows->next()) ids.push_back(Text(rows->getString(1)));
        }
        DeleteEntityValues(c, tables_, ids);
        return ids;
      });
}

absl::StatusOr<std::vector<StoredValue>> MysqlValueStore::GetValues(
    const std::vector<std::string>& ids) {
  return ReadValues(q_->get_values_prefix, "", ids);
}

absl::StatusOr<std::vector<StoredValue>> MysqlValueStore::ReadValues(
    const std::string& prefix, const std::string& table,
    const std::vector<std::string>& ids, bool* missing) {
  constexpr int kNoSuchTable = 1146;  // ER_NO_SUCH_TABLE
  std::vector<StoredValue> out;
  for (size_t begin = 0; begin < ids.size(); begin += kInList) {
    const size_t n = std::min(kInList, ids.size() - begin);
    absl::Status read = pool_->Run([&](sql::Connection& c) -> absl::Status {
      if (!table.empty()) {
        Statement exists = Prepare(c, q_->live_set);
        exists->setString(1, table);
        Rows rows(exists->executeQuery());
        if (!rows->next()) return absl::OkStatus();  // no such set (yet)
      }
      const std::string query = absl::StrCat(prefix, Placeholders(n), ")");
      try {
        Statement s =
            missing != nullptr ? Prepare(c, query) : PrepareKept(c, query);
        for (size_t i = 0; i < n; ++i)
          s->setString(static_cast<int>(i + 1), ids[begin + i]);
        Rows rows(s->executeQuery());
        while (rows->next()) {
          RAPPORT_ASSIGN_OR_RETURN(StoredValue v, ReadValue(*rows, 1));
          out.push_back(std::move(v));
        }
      } catch (const sql::SQLException& e) {
        if (missing == nullptr || e.getErrorCode() != kNoSuchTable) throw;
        *missing = true;
      }
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
    if (missing != nullptr && *missing) break;
  }
  return out;
}

absl::StatusOr<ValueTotals> MysqlValueStore::Summarize() {
  // One snapshot for both statements (repeatable read): re-scores write into
  // the live set all the time, and the segments must add up to the tiers.
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<ValueTotals> {
        ValueTotals out;
        for (const bool by_tier : {false, true}) {
          Statement s = Prepare(c, q_->summarize[by_tier]);
          Rows rows(s->executeQuery());
          while (rows->next()) {
            GroupTotals g;
            if (by_tier) {
              g.tier = rows->getInt(1);
            } else {
              g.segment = Text(rows->getString(1));
            }
            g.entities = rows->getInt64(2);
            RAPPORT_ASSIGN_OR_RETURN(g.monetary, DecimalColumn(*rows, 3));
            g.value_hundredths_sum = rows->getInt64(4);
            RAPPORT_ASSIGN_OR_RETURN(g.cost_to_serve, DecimalColumn(*rows, 5));
            RAPPORT_ASSIGN_OR_RETURN(g.profit, DecimalColumn(*rows, 6));
            if (by_tier) {
              // Every value has one tier: the tiers add up to all.
              out.all.entities += g.entities;
              out.all.monetary += g.monetary;
              out.all.cost_to_serve += g.cost_to_serve;
              out.all.profit += g.profit;
              out.all.value_hundredths_sum += g.value_hundredths_sum;
            }
            (by_tier ? out.tiers : out.segments).push_back(std::move(g));
          }
        }
        return out;
      });
}

absl::StatusOr<std::vector<StoredValue>> MysqlValueStore::ExportPage(
    const std::string& source, const std::string& after_key, int limit) {
  if (!source.empty() && q_->export_by_external_id.empty()) {
    return InvalidField("external_id_source",
                        "these entities have no external ids");
  }
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<StoredValue>> {
        std::vector<StoredValue> out;
        if (source.empty()) {
          Statement s = Prepare(c, q_->export_by_id);
          s->setString(1, after_key);
          s->setInt(2, limit);
          Rows rows(s->executeQuery());
          out.reserve(rows->rowsCount());
          while (rows->next()) {
            RAPPORT_ASSIGN_OR_RETURN(StoredValue v, ReadValue(*rows, 1));
            out.push_back(std::move(v));
          }
          return out;
        }
        Statement s = Prepare(c, q_->export_by_external_id);
        s->setString(1, source);
        s->setString(2, after_key);
        s->setInt(3, limit);
        Rows rows(s->executeQuery());
        out.reserve(rows->rowsCount());
        while (rows->next()) {
          RAPPORT_ASSIGN_OR_RETURN(StoredValue v, ReadValue(*rows, 2));
          v.entity_id = Text(rows->getString(1));
          out.push_back(std::move(v));
        }
        return out;
      });
}

}  // namespace rapport::differentiation
