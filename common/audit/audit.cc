#include "common/audit/audit.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"

namespace rapport {
// Generated from migrations/ by rapport_embed_migrations.
const std::vector<Migration>& AuditMigrationFiles();
}  // namespace rapport

namespace rapport::audit {
namespace {

constexpr size_t kMaxDetailsBytes = 1000;

std::string Truncated(const std::string& text, size_t most) {
  if (text.size() <= most) return text;
  size_t n = most;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;  // UTF-8 boundary
  return text.substr(0, n);
}

constexpr char kInsert[] =
    "INSERT INTO audit_events (time_us, actor, rpc, resource, request_id, "
    "outcome, details) VALUES ";
constexpr size_t kEventColumns = 7;

// Binds `e` to the kEventColumns parameters from `first`.
void BindEvent(sql::PreparedStatement& s, int first, const Event& e) {
  int i = first;
  s.setInt64(i++, e.time_us);
  s.setString(i++, Truncated(e.actor, 256));
  s.setString(i++, Truncated(e.rpc, 64));
  s.setString(i++, Truncated(e.resource, 256));
  s.setString(i++, Truncated(e.request_id, 256));
  s.setString(i++, Truncated(e.outcome, 32));
  s.setString(i++, Truncated(e.details, kMaxDetailsBytes));
}

}  // namespace

std::vector<Migration> Migrations() { return AuditMigrationFiles(); }

void Write(sql::Connection& c, const Event& e) {
  CachedStatement s = PrepareCached(
      c, absl::StrCat(kInsert, RowPlaceholders(1, kEventColumns)));
  BindEvent(*s, 1, e);
  s->executeUpdate();
}

Event MigrationEvent(int64_t time_us, int version, std::string resource,
                     absl::string_view what) {
  return {.time_us = time_us,
          .actor = "system:migration",
          .rpc = "Migrate",
          .resource = std::move(resource),
          .details = absl::StrCat(what, " (migration ", version, ")")};
}

void Write(sql::Connection& c, const std::vector<Event>& events) {
  ForChunks(events.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c, absl::StrCat(kInsert, RowPlaceholders(n, kEventColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      BindEvent(*s, 1 + static_cast<int>(k * kEventColumns), events[begin + k]);
    }
    s->executeUpdate();
  });
}

absl::Status Write(MysqlPool& pool, const Event& event) {
  return pool.Run([&](sql::Connection& c) -> absl::Status {
    Write(c, event);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<Event>> List(MysqlPool& pool, const Filter& filter,
                                        const std::optional<Cursor>& after,
                                        int limit) {
  return pool.Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<Event>> {
        // One statement text per combination of filters, each served by an
        // index: by actor, by resource, or by time alone.
        std::string query =
            "SELECT id, time_us, actor, rpc, resource, request_id, outcome, "
            "details FROM audit_events";
        std::vector<std::string> where;
        if (!filter.actor.empty()) where.push_back("actor = ?");
        if (!filter.resource.empty()) where.push_back("resource = ?");
        if (filter.since_us.has_value()) where.push_back("time_us >= ?");
        if (filter.before_us.has_value()) where.push_back("time_us < ?");
        if (after.has_value())
          where.push_back("(time_us < ? OR (time_us = ? AND id < ?))");
        for (size_t i = 0; i < where.size(); ++i)
          absl::StrAppend(&query, i == 0 ? " WHERE " : " AND ", where[i]);
        absl::StrAppend(&query, " ORDER BY time_us DESC, id DESC LIMIT ?");
        CachedStatement s = PrepareCached(c, query);
        int i = 1;
        if (!filter.actor.empty()) s->setString(i++, filter.actor);
        if (!filter.resource.empty()) s->setString(i++, filter.resource);
        if (filter.since_us.has_value()) s->setInt64(i++, *filter.since_us);
        if (filter.before_us.has_value()) s->setInt64(i++, *filter.before_us);
        if (after.has_value()) {
          s->setInt64(i++, after->time_us);
          s->setInt64(i++, after->time_us);
          s->setInt64(i++, after->id);
        }
        s->setInt(i++, limit);
        Rows rows(s->executeQuery());
        std::vector<Event> out;
        while (rows->next()) {
          Event& e = out.emplace_back();
          e.id = rows->getInt64(1);
          e.time_us = rows->getInt64(2);
          e.actor = Text(rows->getString(3));
          e.rpc = Text(rows->getString(4));
          e.resource = Text(rows->getString(5));
          e.request_id = Text(rows->getString(6));
          e.outcome = Text(rows->getString(7));
          e.details = Text(rows->getString(8));
        }
        return out;
      });
}

}  // namespace rapport::audit
