#include "common/import/mysql_import.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"

namespace rapport {
const std::vector<Migration>& ImportMigrationFiles();
}

namespace rapport::import {

std::vector<Migration> Migrations() { return ImportMigrationFiles(); }

absl::StatusOr<std::string> ImportPrefix(MysqlPool& pool, IdGenerator& ids,
                                         const std::string& kind,
                                         const std::string& import_id,
                                         int64_t now_us) {
  const std::string fresh = ids.Next().substr(0, kRowIdPrefixSize);
  return pool.Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    {
      CachedStatement s = PrepareCached(
          c,
          "INSERT IGNORE INTO import_prefixes (kind, import_id, prefix, "
          "create_time_us) VALUES (?, ?, ?, ?)");
      s->setString(1, kind);
      s->setString(2, import_id);
      s->setString(3, fresh);
      s->setInt64(4, now_us);
      s->executeUpdate();
    }
    CachedStatement s = PrepareCached(
        c,
        "SELECT prefix FROM import_prefixes WHERE kind = ? AND import_id = ?");
    s->setString(1, kind);
    s->setString(2, import_id);
    Rows rows(s->executeQuery());
    if (!rows->next()) {
      return absl::InternalError("the import's prefix was not stored");
    }
    return Text(rows->getString(1));
  });
}

absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
StoredFingerprints(MysqlPool& pool, const std::string& table,
                   const std::string& fingerprint_column,
                   const std::vector<std::string>& ids) {
  absl::flat_hash_map<std::string, std::string> out;
  constexpr size_t kInList = 1000;
  for (size_t begin = 0; begin < ids.size(); begin += kInList) {
    const size_t n = std::min(kInList, ids.size() - begin);
    const size_t slots = PaddedCount(n, kInList);
    absl::Status read = pool.Run([&](sql::Connection& c) -> absl::Status {
      CachedStatement s = PrepareCached(
          c, absl::StrCat("SELECT id, ", fingerprint_column, " FROM ", table,
                          " WHERE id IN (", Placeholders(slots), ")"));
      BindPadded(*s, 1, ids, begin, n, slots);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        out[Text(rows->getString(1))] = TextOrEmpty(*rows, 2);
      }
      return absl::OkStatus();
    });
    if (!read.ok()) return read;
  }
  return out;
}

}  // namespace rapport::import
