// What every MySQL store of imports (common/import) shares: the table of
// import prefixes, and the fingerprints of rows stored already.
#ifndef RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
#define RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/ids.h"
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

}  // namespace rapport::import

#endif  // RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
