// A fresh database on the test MariaDB with a service's migrations applied,
// and a pool on it: what every integration test of a store starts from.
//
//   MigratedDatabase db(customer::CustomerSchema());
//   MysqlCustomerStore store(&db.pool());
//   db.Exec("INSERT INTO customers (id, display_name) VALUES (?, 'c')", {id});
//   EXPECT_EQ(db.Count("SELECT COUNT(*) FROM customers"), 1);
#ifndef RAPPORT_TESTS_SUPPORT_DATABASE_H_
#define RAPPORT_TESTS_SUPPORT_DATABASE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::testing {

class MigratedDatabase {
 public:
  // Aborts the test run when the database cannot be made or migrated (the
  // test MariaDB is broken: no test could say anything).
  explicit MigratedDatabase(const std::vector<Migration>& migrations,
                            int pool_size = 16);
  ~MigratedDatabase();

  MysqlPool& pool() { return *pool_; }
  const std::string& uri() const { return uri_; }
  // Another pool on this database, of `size` connections, whose callers
  // wait at most `acquire_timeout` for one to come free: for tests of a
  // pool that calls fill. Null, and a failed test, when it cannot be made.
  std::unique_ptr<MysqlPool> SmallPool(int size,
                                       absl::Duration acquire_timeout);

  // Runs one statement with string parameters; a failure fails the test.
  void Exec(const std::string& statement,
            const std::vector<std::string>& params = {});
  // The first column of the first row of `query`, as a number (-1 and a
  // failed test on error).
  int64_t Count(const std::string& query,
                const std::vector<std::string>& params = {});
  // The first column of every row of `query`, as text ("" for NULL).
  std::vector<std::string> Strings(const std::string& query,
                                   const std::vector<std::string>& params = {});
  // Waits until a statement of another connection to this database has run
  // for a while (one that waits for a lock a test holds; InnoDB does not
  // report a wait of a prepared statement's primary-key read as a lock
  // wait); fails the test after a minute.
  void AwaitWaitingStatement();

 private:
  std::string uri_;
  std::unique_ptr<MysqlPool> pool_;
};

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_DATABASE_H_
