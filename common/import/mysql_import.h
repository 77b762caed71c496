// What every MySQL store of imports (common/import) shares: the table of
// import prefixes, the fingerprints of rows stored already, and the entities
// that rows' references name.
#ifndef RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
#define RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/import/row_import.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::import {

// The schema of import_prefixes (migrations numbered from 1201), to apply
// with the service's own.
std::vector<Migration> Migrations();

// The prefix of `import_id`'s rows of `kind`: a new one from `ids` for the
// first call, the stored one afterwards (also for a concurrent first call).
absl::StatusOr<std::string> ImportPrefix(MysqlPool& pool, IdGenerator& ids,
                                         const std::string& kind,
                                         const std::string& import_id,
                                         int64_t now_us);

// The `fingerprint_column` of the rows of `table` whose `id` is one of
// `ids`, by id. `table` and `fingerprint_column` are the caller's constants.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
StoredFingerprints(MysqlPool& pool, const std::string& table,
                   const std::string& fingerprint_column,
                   const std::vector<std::string>& ids);

// Where a counterpart keeps its entities and their external ids. The names
// are the caller's constants.
struct EntityTables {
  std::string noun;           // "partner", in errors
  std::string entities;       // "partners", primary key `id`
  std::string external_ids;   // "partner_external_ids": (source, external_id)
  std::string entity_column;  // "partner_id", in `external_ids`
  // The KeyedId scope of entities created for unknown external ids, so that
  // every stream and retry makes the same id for one external id.
  std::string created_scope;  // "partner-ext"
};

// What each of `refs` names (Store::Resolve), `parse` reading a reference:
// ids that exist, external ids that are stored, and an entity to create for
// an unknown external id; other references carry their error. A few
// statements per batch, whatever its size.
absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> ResolveRefs(
    MysqlPool& pool, const EntityTables& tables,
    const std::vector<std::string>& refs,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse);

// The entities a batch of rows asks to create (each once), with the external
// id that made each, in row order.
template <typename Record>
std::vector<std::pair<std::string, EntityRef::External>> EntitiesToCreate(
    const std::vector<Row<Record>>& rows,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse) {
  std::vector<std::pair<std::string, EntityRef::External>> out;
  absl::flat_hash_map<std::string, bool> seen;
  for (const Row<Record>& r : rows) {
    if (!r.entity.create || !seen.emplace(r.entity.id_to_create, true).second) {
      continue;
    }
    absl::StatusOr<EntityRef> ref = parse(r.ref);
    if (ref.ok() && ref->external.has_value()) {
      out.emplace_back(r.entity.id_to_create, *ref->external);
    }
  }
  return out;
}

// Stores the external ids of `created` (entity id, external id) in large
// statements, on `c` (in the caller's transaction).
void InsertExternalIds(
    sql::Connection& c, const EntityTables& tables,
    const std::vector<std::pair<std::string, EntityRef::External>>& created);

// Runs `fn(begin, n)` over [0, n) in chunks of at most 256, in counts of
// powers of two, so that a few statement texts serve every batch.
template <typename Fn>
void ForChunks(size_t n, Fn fn) {
  size_t begin = 0;
  for (size_t size = 256; size >= 1; size /= 2) {
    while (n - begin >= size) {
      fn(begin, size);
      begin += size;
    }
  }
}

}  // namespace rapport::import

#endif  // RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
