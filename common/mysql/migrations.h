// Versioned SQL migrations, applied at start-up.
//
// Each service keeps its schema as files migrations/NNNN_name.sql; the build
// embeds them (rapport_embed_migrations in CMake) as a list of Migration. At
// start-up ApplyMigrations brings the database up to date. It is safe when
// several replicas start at once: they take a named server lock in turn, and
// each applies only what the schema_migrations table does not list yet. A file
// that was applied and changed since is an error (FAILED_PRECONDITION).
//
//   RAPPORT_RETURN_IF_ERROR(ApplyMigrations(*pool, CustomerSchema()));
#ifndef RAPPORT_COMMON_MYSQL_MIGRATIONS_H_
#define RAPPORT_COMMON_MYSQL_MIGRATIONS_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/mysql/mysql_pool.h"

namespace rapport {

struct Migration {
  int version;       // NNNN of the file name; applied in increasing order
  std::string name;  // the rest of the file name
  std::string sql;   // statements separated by ';' at the end of a line
  // What SQL cannot do (keys computed by the service's code), run on the
  // same connection after the statements, under the same lock; `sql` then
  // says what it does, and its checksum stands for it. Throws on failure,
  // as a statement does.
  std::function<void(sql::Connection&)> code = nullptr;
};

// Applies the migrations that the database lacks, in increasing version
// whatever their order in the list; returns how many it applied.
// INVALID_ARGUMENT when two share a version.
// DEADLINE_EXCEEDED when another replica held the migration lock for 120 s
// (it may be migrating a large table: wait and call again). The pool's
// io_timeout must outlast the longest statement of a migration.
absl::StatusOr<int> ApplyMigrations(MysqlPool& pool,
                                    const std::vector<Migration>& migrations);

// Splits a migration into statements at ';' that ends a line; drops "--"
// comment lines.
std::vector<std::string> SplitSqlStatements(const std::string& sql);

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_MIGRATIONS_H_
