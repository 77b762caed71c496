#include "tests/support/database.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "absl/time/clock.h"
#include "common/mysql/sql.h"
#include "tests/support/mariadb.h"

namespace rapport::testing {
namespace {

void Bind(sql::PreparedStatement& s, const std::vector<std::string>& params) {
  for (size_t i = 0; i < params.size(); ++i)
    s.setString(static_cast<int>(i + 1), params[i]);
}

}  // namespace

MigratedDatabase::MigratedDatabase(const std::vector<Migration>& migrations,
                                   int pool_size)
    : uri_(TestMariaDb::Shared().CreateDatabase()) {
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri_);
  absl::Status failed;
  if (options.ok()) {
    options->pool_size = pool_size;
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(*options);
    if (pool.ok()) {
      pool_ = *std::move(pool);
      failed = ApplyMigrations(*pool_, migrations).status();
    } else {
      failed = pool.status();
    }
  } else {
    failed = options.status();
  }
  if (!failed.ok()) {
    std::fprintf(stderr, "cannot make a migrated test database: %s\n",
                 failed.ToString().c_str());
    std::abort();
  }
}

MigratedDatabase::~MigratedDatabase() = default;

std::unique_ptr<MysqlPool> MigratedDatabase::SmallPool(
    int size, absl::Duration acquire_timeout) {
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri_);
  if (!options.ok()) {
    ADD_FAILURE() << options.status();
    return nullptr;
  }
  options->pool_size = size;
  options->acquire_timeout = acquire_timeout;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  if (!pool.ok()) {
    ADD_FAILURE() << pool.status();
    return nullptr;
  }
  return *std::move(pool);
}

void MigratedDatabase::Exec(const std::string& statement,
                            const std::vector<std::string>& params) {
  absl::Status s = pool_->Run([&](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::PreparedStatement> st(c.prepareStatement(statement));
    Bind(*st, params);
    st->execute();
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s << " in " << statement;
}

int64_t MigratedDatabase::Count(const std::string& query,
                                const std::vector<std::string>& params) {
  absl::StatusOr<int64_t> n =
      pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
        std::unique_ptr<sql::PreparedStatement> st(c.prepareStatement(query));
        Bind(*st, params);
        Rows rows(st->executeQuery());
        if (!rows->next()) return absl::NotFoundError("no row");
        return static_cast<int64_t>(rows->getInt64(1));
      });
  EXPECT_TRUE(n.ok()) << n.status() << " in " << query;
  return n.value_or(-1);
}

std::vector<std::string> MigratedDatabase::Strings(
    const std::string& query, const std::vector<std::string>& params) {
  std::vector<std::string> out;
  absl::Status s = pool_->Run([&](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::PreparedStatement> st(c.prepareStatement(query));
    Bind(*st, params);
    Rows rows(st->executeQuery());
    while (rows->next()) out.push_back(TextOrEmpty(*rows, 1));
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s << " in " << query;
  return out;
}

void MigratedDatabase::AwaitWaitingStatement() {
  const absl::Time give_up = absl::Now() + absl::Minutes(1);
  while (Count("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
               "WHERE DB = DATABASE() AND ID <> CONNECTION_ID() "
               "AND INFO IS NOT NULL AND TIME_MS > 300") == 0) {
    if (absl::Now() > give_up) {
      ADD_FAILURE() << "no statement waited";
      return;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
}

}  // namespace rapport::testing
