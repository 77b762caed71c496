// The audit log every service keeps in its own database: who changed what,
// when, through which call, and how it ended. An event is written in the same
// transaction as the change it records, so there is never a change without
// its event (nor an event without its change); the table refuses updates and
// deletes. High-volume rows (purchases, orders, interactions, holdings,
// engagements, coverage, imported rows) carry who recorded them on the row
// itself instead, and the entities an import creates who created them
// (created_by).
//
//   return pool->Transaction([&](sql::Connection& c) -> absl::Status {
//     ... the change ...
//     audit::Write(c, {.time_us = now, .actor = caller.subject,
//                      .rpc = "EraseCustomer",
//                      .resource = "customers/" + id});
//     return absl::OkStatus();
//   });
#ifndef RAPPORT_COMMON_AUDIT_AUDIT_H_
#define RAPPORT_COMMON_AUDIT_AUDIT_H_

#include <cppconn/connection.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::audit {

// One change, as the log keeps it.
struct Event {
  int64_t id = 0;  // output only: the log's own order
  int64_t time_us = 0;
  std::string actor;       // the subject of the caller's token
  std::string rpc;         // e.g. "EraseCustomer"
  std::string resource;    // e.g. "customers/01jd8x4r2c6n7m9p0q1r2s3t4v"
  std::string request_id;  // the request's id, when it has one
  // "ok" for a change made; for the end of a job or an import, how it ended
  // ("succeeded", "failed", "partial").
  std::string outcome = "ok";
  std::string details;  // short facts, e.g. "force" or "accepted=9 rejected=1"
};

// The schema of audit_events (migrations numbered from 1101), to apply with
// the service's own.
std::vector<Migration> Migrations();

// The event of a change that migration `version` made to `resource`'s data
// (an email trimmed, say): by "system:migration", rpc "Migrate", details
// "<what> (migration <version>)".
Event MigrationEvent(int64_t time_us, int version, std::string resource,
                     absl::string_view what);

// Writes `event` on `c`; call inside the transaction of the change.
void Write(sql::Connection& c, const Event& event);
// Writes every one of `events` on `c`, up to 1024 to a statement (a change
// of many rows audited row by row).
void Write(sql::Connection& c, const std::vector<Event>& events);
// Writes `event` in a transaction of its own (the start and end of a long
// job, whose changes are many transactions).
absl::Status Write(MysqlPool& pool, const Event& event);

struct Filter {
  std::string actor;                 // empty: any
  std::string resource;              // empty: any
  std::optional<int64_t> since_us;   // at or after
  std::optional<int64_t> before_us;  // before
};

// Events matching `filter`, newest first, after the event (time, id) `after`
// in that order, at most `limit`.
struct Cursor {
  int64_t time_us = 0;
  int64_t id = 0;
};
absl::StatusOr<std::vector<Event>> List(MysqlPool& pool, const Filter& filter,
                                        const std::optional<Cursor>& after,
                                        int limit);

}  // namespace rapport::audit

#endif  // RAPPORT_COMMON_AUDIT_AUDIT_H_
