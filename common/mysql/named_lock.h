// A server-wide named lock (MariaDB's GET_LOCK), held by one connection: what
// serialises a check and the write that depends on it across replicas when
// no row exists yet to lock (starting a refresh, creating the entity that an
// identity names). Taken before the transaction and released after its
// commit, so that the next holder sees what the holder wrote
// (MysqlPool::TransactionUnderLock).
//
//   RAPPORT_ASSIGN_OR_RETURN(std::unique_ptr<NamedLock> lock,
//                            NamedLock::Take(c, name, "busy; retry"));
//   ... // released when `lock` goes
#ifndef RAPPORT_COMMON_MYSQL_NAMED_LOCK_H_
#define RAPPORT_COMMON_MYSQL_NAMED_LOCK_H_

#include <cppconn/connection.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

class NamedLock {
 public:
  // How long a taker waits for another holder.
  static constexpr int kWaitSeconds = 10;

  // ABORTED with `busy` when another connection keeps the lock past
  // kWaitSeconds. `name` has at most 64 characters (the server's limit).
  static absl::StatusOr<std::unique_ptr<NamedLock>> Take(
      sql::Connection& c, const std::string& name, absl::string_view busy);
  ~NamedLock();

  NamedLock(const NamedLock&) = delete;
  NamedLock& operator=(const NamedLock&) = delete;

 private:
  NamedLock(sql::Connection& c, std::string name)
      : c_(c), name_(std::move(name)) {}
  sql::Connection& c_;
  std::string name_;
};

// A lock name for any `key`, however long: `prefix` and a digest of the
// database, `scope` and `key` (the same on every replica).
std::string KeyedLockName(absl::string_view prefix, absl::string_view database,
                          absl::string_view scope, absl::string_view key);

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_NAMED_LOCK_H_
