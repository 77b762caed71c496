#include "common/audit/audit.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

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

}  // namespace

std::vector<Migration> Migrations() { return AuditMigrationFiles(); }

void Write(sql::Connection& c, const Event& e) {
  CachedStatement s = PrepareCached(
      c,
      "INSERT INTO audit_events (time_us, actor, rpc, resource, request_id, "
      "outcome, details) VALUES (?, ?, ?, ?, ?, ?, ?)");
  s->setInt64(1, e.time_us);
  s->setString(2, Truncated(e.actor, 256));
  s->setString(3, Truncated(e.rpc, 64));
  s->setString(4, Truncated(e.resource, 256));
  s->setString(5, Truncated(e.request_id, 256));
  s->setString(6, Truncated(e.outcome, 32));
  s->setString(7, Truncated(e.details, kMaxDetailsBytes));
  s->executeUpdate();
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
