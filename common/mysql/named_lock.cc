#include "common/mysql/named_lock.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/mysql/statement_cache.h"

namespace rapport {

absl::StatusOr<std::unique_ptr<NamedLock>> NamedLock::Take(
    sql::Connection& c, const std::string& name, absl::string_view busy) {
  CachedStatement lock = PrepareCached(c, "SELECT GET_LOCK(?, ?)");
  lock->setString(1, name);
  lock->setInt(2, kWaitSeconds);
  std::unique_ptr<sql::ResultSet> got(lock->executeQuery());
  if (!got->next() || got->isNull(1) || got->getInt(1) != 1) {
    return absl::AbortedError(busy);
  }
  return std::unique_ptr<NamedLock>(new NamedLock(c, name));
}

NamedLock::~NamedLock() {
  // Once more should the first try be interrupted (KILL QUERY).
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      CachedStatement release = PrepareCached(c_, "DO RELEASE_LOCK(?)");
      release->setString(1, name_);
      release->execute();
      return;
    } catch (const sql::SQLException&) {
    }
  }
  // Still held, the connection may be alive: it closes, and the lock goes
  // with it, rather than back to the pool holding it (every taker after
  // would wait for it in vain).
  try {
    c_.close();
  } catch (const sql::SQLException&) {
  }
}

std::string KeyedLockName(absl::string_view prefix, absl::string_view database,
                          absl::string_view scope, absl::string_view key) {
  // KeyedId's 26 characters keep any prefix up to 38 within the limit.
  return absl::StrCat(prefix, KeyedId(absl::StrCat(database, ".", scope), key));
}

}  // namespace rapport
