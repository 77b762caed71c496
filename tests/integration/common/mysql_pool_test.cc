// The MySQL pool and migrations against a real MariaDB.
#include "common/mysql/mysql_pool.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/metrics/metrics.h"
#include "common/mysql/migrations.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"
#include "tests/support/mariadb.h"

namespace rapport {
namespace {

using testing::TestMariaDb;

std::unique_ptr<MysqlPool> NewPool(
    const std::string& uri, int size = 4,
    absl::Duration idle_check_after = MysqlOptions().idle_check_after) {
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri);
  EXPECT_TRUE(options.ok()) << options.status();
  options->pool_size = size;
  options->acquire_timeout = absl::Seconds(2);
  // Room for a database just restarted or resumed on a loaded machine: a
  // Ping slower than this reads as a server that hangs.
  options->connect_timeout = absl::Seconds(5);
  options->idle_check_after = idle_check_after;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

absl::StatusOr<int64_t> Count(MysqlPool& pool, const std::string& query) {
  return pool.Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    std::unique_ptr<sql::ResultSet> rs(s->executeQuery(query));
    rs->next();
    return rs->getInt64(1);
  });
}

// Kills the server's connection `id` through `killer` (another pool) and
// waits until the server has let it go.
void KillConnection(MysqlPool& killer, int64_t id) {
  EXPECT_TRUE(killer
                  .Run([&](sql::Connection& k) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(k.createStatement());
                    s->execute(absl::StrCat("KILL CONNECTION ", id));
                    return absl::OkStatus();
                  })
                  .ok());
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<int64_t> left =
        Count(killer, absl::StrCat("SELECT COUNT(*) FROM "
                                   "information_schema.PROCESSLIST WHERE ID = ",
                                   id));
    if (left.ok() && *left == 0) return;
    absl::SleepFor(absl::Milliseconds(10));
  }
  // Else the test would go on with a connection that was never lost.
  ADD_FAILURE() << "connection " << id << " outlived its KILL";
}

// The id of the connection `c` has with the server.
int64_t ConnectionId(sql::Connection& c) {
  std::unique_ptr<sql::Statement> s(c.createStatement());
  std::unique_ptr<sql::ResultSet> rs(s->executeQuery("SELECT CONNECTION_ID()"));
  rs->next();
  return rs->getInt64(1);
}

// The value of the pool's series `name` (a counter or a gauge) for
// `database`; -1 when there is none.
double PoolSeries(const std::string& name, const std::string& database) {
  for (const prometheus::MetricFamily& family : metrics::Registry().Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& m : family.metric) {
      for (const prometheus::ClientMetric::Label& label : m.label) {
        if (label.name == "database" && label.value == database) {
          return family.type == prometheus::MetricType::Counter
                     ? m.counter.value
                     : m.gauge.value;
        }
      }
    }
  }
  return -1;
}

const std::vector<Migration> kMigrations = {
    {1, "things",
     "CREATE TABLE things (id INT PRIMARY KEY, name VARCHAR(10) NOT NULL);"},
    {2, "more",
     "ALTER TABLE things ADD COLUMN size INT NULL;\nINSERT INTO things VALUES "
     "(1, 'a', 2);"},
};

// The server's errors that are a moment's (a killed statement, too many
// transactions), a transaction to run again (a row changed under its
// snapshot) or a full disk come out as such, never as a bug (INTERNAL), and
// none of them reads as a lost connection.
TEST(MysqlPool, MapsTransientAndResourceErrorsByTheirNature) {
  auto status_of = [](int code) {
    return SqlErrorToStatus(sql::SQLException("server text", "HY000", code));
  };
  const absl::Status changed = status_of(1020);
  EXPECT_EQ(changed.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(IsRetryableTransactionError(changed));
  EXPECT_TRUE(IsRetryableTransactionError(status_of(1213)));
  // A snapshot read of a table made since the snapshot was taken.
  EXPECT_EQ(status_of(1412).code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(IsRetryableTransactionError(status_of(1412)));
  EXPECT_EQ(status_of(1317).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status_of(1637).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status_of(1021).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status_of(1114).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsRetryableTransactionError(status_of(1114)));
  EXPECT_EQ(status_of(1064).code(), absl::StatusCode::kInternal);
  for (int code : {1020, 1412, 1317, 1637, 1021, 1114}) {
    EXPECT_FALSE(IsConnectionLost(sql::SQLException("x", "HY000", code)))
        << code;
    // What a client may read of it: no server text.
    EXPECT_FALSE(
        absl::StrContains(Redacted(status_of(code)).message(), "server text"))
        << code;
  }
}

TEST(MysqlPool, MapsDuplicateKeyAndSyntaxErrorsAndRollsBackFailedTransactions) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  absl::Status dup = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("INSERT INTO things VALUES (1, 'again', NULL)");
    return absl::OkStatus();
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  // The log learns the key, not the value (an email, say).
  absl::Status named = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("CREATE UNIQUE INDEX things_name ON things (name)");
    s->execute("INSERT INTO things VALUES (7, 'a', NULL)");
    return absl::OkStatus();
  });
  EXPECT_EQ(named.code(), absl::StatusCode::kAlreadyExists) << named;
  EXPECT_TRUE(absl::StrContains(named.message(), "for key 'things_name'"))
      << named;
  EXPECT_FALSE(absl::StrContains(named.message(), "'a'")) << named;
  absl::Status syntax = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("SELEKT 1");
    return absl::OkStatus();
  });
  EXPECT_EQ(syntax.code(), absl::StatusCode::kInternal);
  EXPECT_NE(syntax.message().find("SQLSTATE"), absl::string_view::npos);
  // A row naming a parent that is not there (deleted after it was checked).
  absl::Status orphan = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute(
        "CREATE TABLE parts (id INT PRIMARY KEY, thing INT NOT NULL, "
        "FOREIGN KEY (thing) REFERENCES things (id)) ENGINE=InnoDB");
    s->execute("INSERT INTO parts VALUES (1, 404)");
    return absl::OkStatus();
  });
  EXPECT_EQ(orphan.code(), absl::StatusCode::kNotFound) << orphan;

  // The first insert succeeds, the second fails: neither may remain.
  absl::Status tx = pool->Transaction([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("INSERT INTO things VALUES (2, 'b', NULL)");
    s->execute("INSERT INTO things VALUES (1, 'dup', NULL)");
    return absl::OkStatus();
  });
  EXPECT_EQ(tx.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things"), 1);

  // A duplicate key runs the transaction once more, whose checks then see
  // the row (here: the second attempt looks before it inserts).
  int attempts = 0;
  absl::StatusOr<std::string> twin =
      pool->Transaction([&](sql::Connection& c) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        if (++attempts > 1) {
          std::unique_ptr<sql::ResultSet> rs(
              s->executeQuery("SELECT name FROM things WHERE id = 1"));
          if (rs->next()) return "found " + std::string(rs->getString(1));
        }
        s->execute("INSERT INTO things VALUES (1, 'twin', NULL)");
        return std::string("inserted");
      });
  ASSERT_TRUE(twin.ok()) << twin.status();
  EXPECT_EQ(*twin, "found a");
  EXPECT_EQ(attempts, 2);
  // Only once: a transaction that keeps hitting the key fails on the second.
  attempts = 0;
  absl::Status again =
      pool->Transaction([&](sql::Connection& c) -> absl::Status {
        ++attempts;
        std::unique_ptr<sql::Statement> s(c.createStatement());
        s->execute("INSERT INTO things VALUES (1, 'dup', NULL)");
        return absl::OkStatus();
      });
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(attempts, 2);
  // A deadlock first (a twin's gap locks) does not use up that run: the
  // duplicate key on the second attempt still gets the third, whose checks
  // see the row.
  attempts = 0;
  absl::StatusOr<std::string> victim =
      pool->Transaction([&](sql::Connection& c) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        ++attempts;
        if (attempts == 1) {
          s->execute(
              "SIGNAL SQLSTATE '40001' SET MYSQL_ERRNO = 1213, "
              "MESSAGE_TEXT = 'Deadlock found when trying to get lock'");
        }
        if (attempts == 3) {
          std::unique_ptr<sql::ResultSet> rs(
              s->executeQuery("SELECT name FROM things WHERE id = 1"));
          if (rs->next()) return "found " + std::string(rs->getString(1));
        }
        s->execute("INSERT INTO things VALUES (1, 'twin', NULL)");
        return std::string("inserted");
      });
  ASSERT_TRUE(victim.ok()) << victim.status();
  EXPECT_EQ(*victim, "found a");
  EXPECT_EQ(attempts, 3);

  // A business error returned (not thrown) also rolls back.
  absl::Status refused =
      pool->Transaction([](sql::Connection& c) -> absl::Status {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        s->execute("INSERT INTO things VALUES (3, 'c', NULL)");
        return absl::FailedPreconditionError("changed my mind");
      });
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things"), 1);
  // And the connection went back to autocommit.
  ASSERT_TRUE(pool->Run([](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(c.createStatement());
                    s->execute("INSERT INTO things VALUES (4, 'd', NULL)");
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things"), 2);
}

TEST(StatementCache, HandsOutOneStatementPerTextClearedOrAsLeft) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase(), 1);
  absl::Status checked = pool->Run([](sql::Connection& c) -> absl::Status {
    const std::string query = "SELECT ? + ?";
    CachedStatement first = PrepareCached(c, query);
    first->setInt(1, 40);
    first->setInt(2, 2);
    {
      std::unique_ptr<sql::ResultSet> rows(first->executeQuery());
      EXPECT_TRUE(rows->next());
      EXPECT_EQ(rows->getInt(1), 42);
    }
    // The same text on the same connection: the same statement, and by
    // default nothing set.
    CachedStatement again = PrepareCached(c, query);
    EXPECT_EQ(again.get(), first.get());
    again->setInt(1, 1);
    EXPECT_THROW(std::unique_ptr<sql::ResultSet>(again->executeQuery()),
                 sql::SQLException);
    // Kept: the values set last stay until replaced.
    again->setInt(2, 5);
    { std::unique_ptr<sql::ResultSet> rows(again->executeQuery()); }
    CachedStatement kept = PrepareCached(c, query, StatementParameters::kKept);
    EXPECT_EQ(kept.get(), first.get());
    kept->setInt(1, 10);
    std::unique_ptr<sql::ResultSet> rows(kept->executeQuery());
    EXPECT_TRUE(rows->next());
    EXPECT_EQ(rows->getInt(1), 15);
    return absl::OkStatus();
  });
  EXPECT_TRUE(checked.ok()) << checked;
}

TEST(Migrations, ReplicasStartingAtOnceApplyEachMigrationOnce) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  std::vector<std::thread> replicas;
  std::vector<absl::StatusOr<int>> results(6, 0);
  for (int i = 0; i < 6; ++i) {
    replicas.emplace_back([&, i] {
      auto pool = NewPool(uri, 1);
      results[i] = ApplyMigrations(*pool, kMigrations);
    });
  }
  for (auto& t : replicas) t.join();
  int applied = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    applied += *r;
  }
  EXPECT_EQ(applied, 2);  // each migration applied by exactly one replica
  auto pool = NewPool(uri);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM schema_migrations"), 2);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things"), 1);
  EXPECT_EQ(*ApplyMigrations(*pool, kMigrations), 0);
}

TEST(Migrations, AnEditedAppliedMigrationIsRefused) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  std::vector<Migration> edited = kMigrations;
  edited[0].sql += "\n-- edited";
  absl::StatusOr<int> r = ApplyMigrations(*pool, edited);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("1_things"), absl::string_view::npos)
      << r.status();
}

// A migration's code commits with the record that it ran, or not at all: one
// that fails halfway leaves none of its rows (nor their audit), and its
// next run starts from the beginning and is recorded.
TEST(Migrations, CodeThatFailsHalfwayLeavesNothingAndRunsAgainWhole) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  bool fail = true;
  std::vector<Migration> with_code = kMigrations;
  with_code.push_back(
      {3, "named", "-- Things 10 and 11, by code.\n",
       [&fail](sql::Connection& c) {
         std::unique_ptr<sql::Statement> s(c.createStatement());
         s->execute("INSERT INTO things VALUES (10, 'ten', NULL)");
         if (fail) throw sql::SQLException("made to fail", "HY000", 1064);
         s->execute("INSERT INTO things VALUES (11, 'eleven', NULL)");
       }});
  absl::StatusOr<int> failed = ApplyMigrations(*pool, with_code);
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things WHERE id >= 10"), 0);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM schema_migrations"), 2);
  fail = false;
  absl::StatusOr<int> applied = ApplyMigrations(*pool, with_code);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things WHERE id >= 10"), 2);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

// Lists joined in any order apply by version; two of one version are an
// error, before anything is applied.
TEST(Migrations, ApplyInVersionOrderAndRefuseARepeatedVersion) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase());
  std::vector<Migration> repeated = kMigrations;
  repeated.push_back({2, "again", "CREATE TABLE again (id INT);"});
  absl::StatusOr<int> r = ApplyMigrations(*pool, repeated);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("more and again"),
            absl::string_view::npos)
      << r.status();
  EXPECT_EQ(*Count(*pool,
                   "SELECT COUNT(*) FROM information_schema.tables WHERE "
                   "table_schema = DATABASE()"),
            0);
  // Migration 2 alters the table 1 creates: reversed, it would fail.
  const std::vector<Migration> reversed(kMigrations.rbegin(),
                                        kMigrations.rend());
  r = ApplyMigrations(*pool, reversed);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, 2);
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM things WHERE size = 2"), 1);
}

// A binary older than its database's schema starts, and says so.
TEST(Migrations, ASchemaNewerThanTheBinaryIsLogged) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("does not know"),
            std::string::npos);
  std::vector<Migration> older(kMigrations.begin(), kMigrations.end() - 1);
  ::testing::internal::CaptureStderr();
  absl::StatusOr<int> r = ApplyMigrations(*pool, older);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.ok()) << r.status();
  EXPECT_NE(log.find("the database has migrations this binary does not know"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(absl::StrCat(R"("migrations":")",
                                  kMigrations.back().version, R"(")")),
            std::string::npos)
      << log;
}

// A transaction whose connection died before it gave up (its callback
// returned an error, the rollback then failed) does not hand that connection
// to the next caller.
TEST(MysqlPool, AConnectionLostInAFailedTransactionIsNotPooled) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto pool = NewPool(uri, 1);
  auto killer = NewPool(uri, 1);
  absl::Status refused = pool->Transaction([&](sql::Connection& c) {
    std::unique_ptr<sql::Statement> query(c.createStatement());
    std::unique_ptr<sql::ResultSet> rs(
        query->executeQuery("SELECT CONNECTION_ID()"));
    EXPECT_TRUE(rs->next());
    // Gone for good before the transaction gives up.
    KillConnection(*killer, rs->getInt64(1));
    return absl::NotFoundError("the thing is not there");
  });
  // The lost connection is what the caller hears (its rollback failed).
  EXPECT_TRUE(absl::IsUnavailable(refused)) << refused;
  // The next caller gets a working connection at once.
  absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

// A call that fails in the program (an exception that is no server's) closes
// its own connection only: the server is there, so the idle ones stay in the
// pool and nothing is counted as lost.
TEST(MysqlPool, AProgramErrorClosesItsOwnConnectionOnly) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto pool = NewPool(uri, 2);
  // Two connections, both idle afterwards.
  int64_t outer_id = 0, inner_id = 0;
  ASSERT_TRUE(pool->Run([&](sql::Connection& outer) -> absl::Status {
                    outer_id = ConnectionId(outer);
                    return pool->Run([&](sql::Connection& inner) {
                      inner_id = ConnectionId(inner);
                      return absl::OkStatus();
                    });
                  })
                  .ok());
  ASSERT_NE(outer_id, inner_id);
  const std::string database = MysqlOptions::FromUri(uri)->database;
  const double lost =
      PoolSeries("rapport_db_pool_connections_lost_total", database);
  ASSERT_GE(lost, 0) << "no such series";
  int64_t failed_id = 0;
  absl::Status failed = pool->Run([&](sql::Connection& c) -> absl::Status {
    failed_id = ConnectionId(c);
    throw std::out_of_range("a bug");
  });
  EXPECT_EQ(failed.code(), absl::StatusCode::kInternal) << failed;
  // The other idle connection serves the next call; the failed one is gone.
  absl::StatusOr<int64_t> next = Count(*pool, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(*next, failed_id == outer_id ? inner_id : outer_id);
  EXPECT_EQ(PoolSeries("rapport_db_pool_connections_lost_total", database),
            lost);
  // One its user closed (a named lock it could not release) is not pooled
  // either.
  ASSERT_TRUE(pool->Run([&](sql::Connection& c) -> absl::Status {
                    c.close();
                    return absl::OkStatus();
                  })
                  .ok());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
    ASSERT_TRUE(one.ok()) << one.status();
  }
  EXPECT_EQ(PoolSeries("rapport_db_pool_connections_lost_total", database),
            lost);
}

// A row that refers to one deleted meanwhile (a foreign key) is NOT_FOUND in
// words a client may read: nothing of the server's message, which names
// tables and keys.
TEST(MysqlPool, AReferenceToARowDeletedMeanwhileIsNotFoundInPlainWords) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto pool = NewPool(uri, 1);
  absl::Status made = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("CREATE TABLE parents (id INT PRIMARY KEY) ENGINE=InnoDB");
    s->execute(
        "CREATE TABLE children (id INT PRIMARY KEY, parent INT NOT NULL, "
        "FOREIGN KEY (parent) REFERENCES parents (id)) ENGINE=InnoDB");
    return absl::OkStatus();
  });
  ASSERT_TRUE(made.ok()) << made;
  absl::Status orphan = pool->Transaction([](sql::Connection& c) {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute("INSERT INTO children VALUES (1, 42)");
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsNotFound(orphan)) << orphan;
  EXPECT_EQ(Redacted(orphan).message(), orphan.message());
  EXPECT_EQ(orphan.message().find("parents"), absl::string_view::npos)
      << orphan;
  EXPECT_EQ(*Count(*pool, "SELECT COUNT(*) FROM children"), 0);
}

// An error on a connection that turns out closed is a lost database
// (UNAVAILABLE), whatever its code, and so are the server's own network
// errors; the connection is not handed out again.
TEST(MysqlPool, AnyErrorOnAClosedConnectionIsUnavailable) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto pool = NewPool(uri, 1);
  absl::Status closed = pool->Run([](sql::Connection& c) -> absl::Status {
    c.close();
    throw sql::SQLException("You have an error in your SQL syntax", "42000",
                            1064);
  });
  EXPECT_TRUE(absl::IsUnavailable(closed)) << closed;
  // Closed by the server, not by us.
  auto killer = NewPool(uri, 1);
  absl::Status killed = pool->Run([&](sql::Connection& c) -> absl::Status {
    KillConnection(*killer, ConnectionId(c));
    throw sql::SQLException("You have an error in your SQL syntax", "42000",
                            1064);
  });
  EXPECT_TRUE(absl::IsUnavailable(killed)) << killed;
  absl::Status network = pool->Run([](sql::Connection& c) -> absl::Status {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    s->execute(
        "SIGNAL SQLSTATE '08S01' SET MYSQL_ERRNO = 1159, MESSAGE_TEXT = "
        "'Got timeout reading communication packets'");
    return absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsUnavailable(network)) << network;
  absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

// A caller that finds every connection taken waits acquire_timeout, then is
// told the service is busy (RESOURCE_EXHAUSTED, not a database that is
// down); the health check's Ping, on a connection of its own, still answers.
TEST(MysqlPool, ExhaustedPoolAnswersResourceExhaustedInsteadOfBlockingForever) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase(), 1);
  absl::Status inner;
  absl::Status pinged;
  absl::Status outer = pool->Run([&](sql::Connection&) -> absl::Status {
    // Needs a second connection while the only one is held.
    inner = Count(*pool, "SELECT 1").status();
    pinged = pool->Ping();
    return absl::OkStatus();
  });
  EXPECT_TRUE(outer.ok());
  EXPECT_EQ(inner.code(), absl::StatusCode::kResourceExhausted) << inner;
  EXPECT_TRUE(pinged.ok()) << pinged;
  EXPECT_TRUE(Count(*pool, "SELECT 1").ok());
}

// A statement past statement_timeout is ended by the server: the caller
// gets DEADLINE_EXCEEDED and the connection serves the next caller (a lost
// connection would be dropped). A row lock held past lock_wait_timeout
// gives ABORTED, which transactions retry.
TEST(MysqlPool, TheServerEndsSlowStatementsAndLongLockWaits) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri);
  ASSERT_TRUE(options.ok()) << options.status();
  options->pool_size = 2;
  options->io_timeout = absl::Seconds(10);
  options->statement_timeout = absl::Seconds(2);
  options->lock_wait_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  ASSERT_TRUE(pool.ok()) << pool.status();

  auto connection_id = [&]() -> absl::StatusOr<int64_t> {
    return Count(**pool, "SELECT CONNECTION_ID()");
  };
  absl::StatusOr<int64_t> before = connection_id();
  ASSERT_TRUE(before.ok()) << before.status();
  absl::StatusOr<int64_t> slept = Count(**pool, "SELECT SLEEP(4)");
  EXPECT_EQ(slept.status().code(), absl::StatusCode::kDeadlineExceeded)
      << slept.status();
  absl::StatusOr<int64_t> after = connection_id();
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, *before);

  ASSERT_TRUE(ApplyMigrations(**pool, kMigrations).ok());
  absl::Status waited;
  absl::Status holder =
      (*pool)->Transaction([&](sql::Connection& c) -> absl::Status {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(
            s->executeQuery("SELECT id FROM things WHERE id = 1 FOR UPDATE"));
        waited = (*pool)->Run([](sql::Connection& other) -> absl::Status {
          std::unique_ptr<sql::Statement> u(other.createStatement());
          u->execute("UPDATE things SET size = 3 WHERE id = 1");
          return absl::OkStatus();
        });
        return absl::OkStatus();
      });
  EXPECT_TRUE(holder.ok()) << holder;
  EXPECT_EQ(waited.code(), absl::StatusCode::kAborted) << waited;
  EXPECT_TRUE(IsRetryableTransactionError(waited));

  // Statements that may run long go on a connection of their own, without
  // the limit.
  absl::StatusOr<int64_t> long_sleep =
      (*pool)->RunUnbounded([](sql::Connection& c) -> absl::StatusOr<int64_t> {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(s->executeQuery("SELECT SLEEP(3)"));
        rs->next();
        return rs->getInt64(1);
      });
  ASSERT_TRUE(long_sleep.ok()) << long_sleep.status();
  EXPECT_EQ(*long_sleep, 0);  // slept to the end

  // The client must not give up before the server does, nor a lock wait
  // end as a slow statement.
  options->lock_wait_timeout = options->statement_timeout;
  EXPECT_EQ(MysqlPool::Create(*options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options->lock_wait_timeout = absl::Seconds(1);
  options->statement_timeout = options->io_timeout;
  EXPECT_EQ(MysqlPool::Create(*options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// A one-connection pool that migrates, waiting at most 1 s for a table's
// metadata lock.
std::unique_ptr<MysqlPool> BoundedMigrator(const std::string& uri) {
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri);
  EXPECT_TRUE(options.ok()) << options.status();
  options->pool_size = 1;
  options->metadata_lock_wait_timeout = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

// A schema change that finds its table in use by an open transaction gives
// up after metadata_lock_wait_timeout (ABORTED, to run again) rather than
// hold every later statement on that table behind it, and applies once the
// table is free; the migration is recorded once.
TEST(Migrations, AChangeOfATableInUseGivesUpAndRunsAgainOnceItIsFree) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto serving = NewPool(uri);
  ASSERT_TRUE(ApplyMigrations(*serving, kMigrations).ok());
  std::unique_ptr<MysqlPool> migrator = BoundedMigrator(uri);
  std::vector<Migration> more = kMigrations;
  more.push_back(
      {3, "wider", "ALTER TABLE things ADD COLUMN colour INT NULL;"});

  absl::StatusOr<int> busy;
  absl::Status holder =
      serving->Transaction([&](sql::Connection& c) -> absl::Status {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(
            s->executeQuery("SELECT COUNT(*) FROM things"));
        busy = ApplyMigrations(*migrator, more);
        return absl::OkStatus();
      });
  ASSERT_TRUE(holder.ok()) << holder;
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kAborted) << busy.status();
  EXPECT_TRUE(IsRetryableTransactionError(busy.status()));
  EXPECT_EQ(*Count(*serving, "SELECT COUNT(*) FROM schema_migrations"), 2);

  absl::StatusOr<int> applied = ApplyMigrations(*migrator, more);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  EXPECT_EQ(*Count(*serving, "SELECT COUNT(colour) + 1 FROM things"), 1);
  EXPECT_EQ(*Count(*serving, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

// Once a migration has changed something, its later statements wait for
// their table as long as they must: giving up there would leave it half
// done, and not every migration can run again from its middle.
TEST(Migrations, AMigrationThatChangedSomethingWaitsForItsNextTable) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  auto serving = NewPool(uri);
  ASSERT_TRUE(ApplyMigrations(*serving, kMigrations).ok());
  std::unique_ptr<MysqlPool> migrator = BoundedMigrator(uri);
  std::vector<Migration> more = kMigrations;
  more.push_back({3, "two_tables",
                  "CREATE TABLE IF NOT EXISTS shades (id INT PRIMARY KEY);\n"
                  "ALTER TABLE things ADD COLUMN IF NOT EXISTS shade INT "
                  "NULL;"});

  // The table is held (an open transaction that read it) until the
  // migration's ALTER has waited past the bound: seen waiting for 3 s in the
  // server's process list, looked for during at most 60 s.
  absl::Notification holding;
  absl::StatusOr<int> applied;
  std::thread migrate([&] {
    holding.WaitForNotification();
    applied = ApplyMigrations(*migrator, more);
  });
  bool waited_past_the_bound = false;
  absl::Status holder =
      serving->Transaction([&](sql::Connection& c) -> absl::Status {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(
            s->executeQuery("SELECT COUNT(*) FROM things"));
        holding.Notify();
        const absl::Time give_up = absl::Now() + absl::Seconds(60);
        while (!waited_past_the_bound && absl::Now() < give_up) {
          absl::SleepFor(absl::Milliseconds(100));
          absl::StatusOr<int64_t> waiting = Count(
              *serving,
              "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
              "INFO LIKE 'ALTER TABLE things ADD COLUMN IF NOT EXISTS shade%' "
              "AND TIME_MS > 3000");
          waited_past_the_bound = waiting.ok() && *waiting > 0;
        }
        return absl::OkStatus();
      });
  migrate.join();
  ASSERT_TRUE(holder.ok()) << holder;
  EXPECT_TRUE(waited_past_the_bound);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 1);
  EXPECT_EQ(*Count(*serving, "SELECT COUNT(shade) + 1 FROM things"), 1);
}

// A database reached with --mysql_ssl_ca: over TLS, its certificate checked
// against that CA, never in plaintext instead. The server offers TLS and
// plaintext both; one account of it accepts TLS only.
TEST(MysqlPool, ACertificateAuthorityMakesConnectionsTlsAndVerifiesTheServer) {
  testing::TempDir certs;
  const std::string certs_tool =
      testing::SourceDir() + "/tests/support/test-certs";
  constexpr char kMake[] = R"sh(
set -euo pipefail
"$0" ca "$1" ca
"$0" ca "$1" other
"$0" issue "$1" server ca serverAuth IP:127.0.0.1
)sh";
  testing::RunResult made =
      testing::Run({"/bin/bash", "-c", kMake, certs_tool, certs.path()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate(certs.path());
  const std::string uri = db->CreateDatabase();
  const std::string database = uri.substr(uri.rfind('/') + 1);
  auto admin = NewPool(uri, 1);
  ASSERT_TRUE(admin
                  ->Run([&](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(c.createStatement());
                    s->execute(
                        "CREATE USER 'tls_only'@'127.0.0.1' IDENTIFIED BY "
                        "'secret' REQUIRE SSL");
                    s->execute(absl::StrCat("GRANT ALL ON ", database,
                                            ".* TO 'tls_only'@'127.0.0.1'"));
                    return absl::OkStatus();
                  })
                  .ok());
  auto pool_of = [&](const std::string& user_uri, const std::string& ca) {
    absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(user_uri);
    EXPECT_TRUE(options.ok()) << options.status();
    options->pool_size = 1;
    options->connect_timeout = absl::Seconds(5);
    options->ssl_ca = ca;
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(*options);
    EXPECT_TRUE(pool.ok()) << pool.status();
    return *std::move(pool);
  };
  const std::string port =
      uri.substr(uri.rfind(':') + 1, uri.rfind('/') - uri.rfind(':') - 1);
  const std::string tls_only =
      absl::StrCat("mysql://tls_only:secret@127.0.0.1:", port, "/", database);

  auto verified = pool_of(tls_only, certs.File("ca.crt"));
  absl::StatusOr<std::string> cipher =
      verified->Run([](sql::Connection& c) -> absl::StatusOr<std::string> {
        std::unique_ptr<sql::Statement> s(c.createStatement());
        std::unique_ptr<sql::ResultSet> rs(
            s->executeQuery("SHOW SESSION STATUS LIKE 'Ssl_cipher'"));
        rs->next();
        return std::string(rs->getString(2));
      });
  ASSERT_TRUE(cipher.ok()) << cipher.status();
  EXPECT_FALSE(cipher->empty());
  // Without the CA, the connection is plaintext, which the account refuses.
  EXPECT_FALSE(pool_of(tls_only, "")->Ping().ok());
  // A server whose certificate another CA signed is not talked to, in
  // plaintext or otherwise, though its account would take plaintext.
  absl::Status other = pool_of(uri, certs.File("other.crt"))->Ping();
  EXPECT_EQ(other.code(), absl::StatusCode::kUnavailable) << other;
  // Nor one whose certificate, from the right CA, names another host.
  db->Stop();

  made = testing::Run({certs_tool, "issue", certs.path(), "server", "ca",
                       "serverAuth", "DNS:elsewhere.example"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  db->Start();
  ASSERT_TRUE(pool_of(uri, "")->Ping().ok());  // the server is back
  absl::Status renamed = pool_of(uri, certs.File("ca.crt"))->Ping();
  EXPECT_EQ(renamed.code(), absl::StatusCode::kUnavailable) << renamed;
  // Nor a server that offers no TLS at all, though its account would take
  // plaintext: there is no falling back to it.
  std::unique_ptr<TestMariaDb> plain = TestMariaDb::StartPrivate();
  const std::string plain_uri = plain->CreateDatabase();
  ASSERT_TRUE(pool_of(plain_uri, "")->Ping().ok());
  absl::Status no_tls = pool_of(plain_uri, certs.File("ca.crt"))->Ping();
  EXPECT_EQ(no_tls.code(), absl::StatusCode::kUnavailable) << no_tls;
}

TEST(MysqlPool, SurvivesTheDatabaseGoingAwayAndComingBack) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  auto pool = NewPool(db->CreateDatabase());
  ASSERT_TRUE(pool->Ping().ok());
  // An idle connection, which the outage leaves behind closed: it must not
  // fail the first call once the server is back.
  ASSERT_TRUE(Count(*pool, "SELECT 1").ok());
  db->Stop();
  absl::Status down = pool->Ping();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_EQ(pool->Ping().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Count(*pool, "SELECT 1").status().code(),
            absl::StatusCode::kUnavailable);
  db->Start();
  EXPECT_TRUE(pool->Ping().ok());  // the same pool, no restart
  absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

// A server that takes no more connections of the service (too many
// connections, or, as here, the account's limit) while the pool holds none
// fails every call: health says so (UNAVAILABLE) and counts the failed
// attempts, and once the server takes connections again, the health check
// opens one, which serves the next call.
TEST(MysqlPool, ServerRefusingNewConnectionsFailsTheHealthCheck) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  const std::string uri = db->CreateDatabase();
  const std::string database = uri.substr(uri.rfind('/') + 1);
  auto admin = NewPool(uri, 1);
  const auto run = [&](const std::string& statement) {
    ASSERT_TRUE(admin
                    ->Run([&](sql::Connection& c) -> absl::Status {
                      std::unique_ptr<sql::Statement> s(c.createStatement());
                      s->execute(statement);
                      return absl::OkStatus();
                    })
                    .ok())
        << statement;
  };
  // One connection for the account: the health check's own.
  run("CREATE USER 'one_only'@'%' IDENTIFIED BY 'secret' WITH "
      "MAX_USER_CONNECTIONS 1");
  run(absl::StrCat("GRANT ALL ON ", database, ".* TO 'one_only'@'%'"));
  absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(uri);
  ASSERT_TRUE(options.ok()) << options.status();
  options->user = "one_only";
  options->password = "secret";
  options->pool_size = 2;
  options->acquire_timeout = absl::Seconds(2);
  options->connect_timeout = absl::Seconds(5);
  absl::StatusOr<std::unique_ptr<MysqlPool>> made = MysqlPool::Create(*options);
  ASSERT_TRUE(made.ok()) << made.status();
  MysqlPool& pool = **made;
  ASSERT_TRUE(pool.Ping().ok());  // holds the account's one connection
  const double failures_before =
      PoolSeries("rapport_db_pool_connect_failures_total", database);
  EXPECT_EQ(Count(pool, "SELECT 1").status().code(),
            absl::StatusCode::kUnavailable);
  absl::Status refused = pool.Ping();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_GE(PoolSeries("rapport_db_pool_connect_failures_total", database),
            failures_before + 2);
  // The server takes more again: the next health check finds so.
  run("ALTER USER 'one_only'@'%' WITH MAX_USER_CONNECTIONS 3");
  EXPECT_TRUE(pool.Ping().ok());
  absl::StatusOr<int64_t> one = Count(pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

// A server restarted between two health checks leaves every kept connection
// closed. The next health check finds its own connection so, and drops the
// idle ones with it: the next call, even one outside a transaction, gets a
// new connection instead of failing on a closed one.
TEST(MysqlPool, ARestartBetweenHealthChecksCostsNoCall) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  auto pool = NewPool(db->CreateDatabase());
  ASSERT_TRUE(pool->Ping().ok());
  ASSERT_TRUE(Count(*pool, "SELECT 1").ok());  // leaves an idle connection
  db->Stop();
  db->Start();
  EXPECT_TRUE(pool->Ping().ok());
  absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

// A connection left unused, in the pool or kept (a refresh's heartbeat), may
// have been closed by the server since: its wait_timeout, a restart, or a
// KILL as here. Past idle_check_after it is checked before it is used, and
// made anew, so no call fails on it. Within that time nothing checks it:
// the Run that finds it closed is UNAVAILABLE (a Transaction would run again
// on a new one), and the next gets a new one.
TEST(MysqlPool, AnIdleConnectionIsCheckedBeforeUseAndMadeAnewWhenClosed) {
  const std::string uri = TestMariaDb::Shared().CreateDatabase();
  std::unique_ptr<MysqlPool> killer = NewPool(uri, 1);
  auto connection_id = [](MysqlPool& pool, MysqlPool::Kept* kept) {
    auto fn = [](sql::Connection& c) -> absl::StatusOr<int64_t> {
      return ConnectionId(c);
    };
    return kept == nullptr ? pool.Run(fn) : pool.RunKept(*kept, fn);
  };
  for (bool use_kept : {false, true}) {
    for (absl::Duration check_after : {absl::ZeroDuration(), absl::Hours(1)}) {
      SCOPED_TRACE(absl::StrCat(use_kept ? "kept" : "pooled",
                                " connection, checked after ",
                                absl::FormatDuration(check_after)));
      std::unique_ptr<MysqlPool> pool = NewPool(uri, 1, check_after);
      MysqlPool::Kept kept;
      MysqlPool::Kept* k = use_kept ? &kept : nullptr;
      absl::StatusOr<int64_t> first = connection_id(*pool, k);
      ASSERT_TRUE(first.ok()) << first.status();
      KillConnection(*killer, *first);
      absl::StatusOr<int64_t> next = connection_id(*pool, k);
      if (check_after > absl::ZeroDuration()) {
        EXPECT_EQ(next.status().code(), absl::StatusCode::kUnavailable)
            << next.status();
        next = connection_id(*pool, k);
      }
      ASSERT_TRUE(next.ok()) << next.status();
      EXPECT_NE(*next, *first);
    }
  }
}

// A pool of one connection over a new table `t (id INT PRIMARY KEY)`, with a
// second pool to kill the first one's connections.
struct PoolOverTable {
  PoolOverTable()
      : uri(TestMariaDb::Shared().CreateDatabase()),
        pool(NewPool(uri, 1)),
        killer(NewPool(uri, 1)) {
    EXPECT_TRUE(pool->Run([](sql::Connection& c) -> absl::Status {
                      Execute(c, "CREATE TABLE t (id INT PRIMARY KEY)");
                      return absl::OkStatus();
                    })
                    .ok());
  }
  // A transaction that inserts row 1, then runs then(c, run), where run
  // counts its runs from 1 (in `runs`).
  absl::Status InsertOne(
      const std::function<void(sql::Connection&, int)>& then) {
    return pool->Transaction([&](sql::Connection& c) {
      ++runs;
      Execute(c, "INSERT INTO t VALUES (1)");
      then(c, runs);
      return absl::OkStatus();
    });
  }
  int64_t Rows() { return Count(*pool, "SELECT COUNT(*) FROM t").value_or(-1); }

  const std::string uri;
  std::unique_ptr<MysqlPool> pool;
  std::unique_ptr<MysqlPool> killer;
  int runs = 0;
};

// A transaction handed a kept connection that the server has closed since
// (killed here, as a restart of the server leaves it) finds out before fn
// runs, and runs on a new connection.
TEST(MysqlPool, ATransactionOnAClosedKeptConnectionRunsOnANewOne) {
  PoolOverTable t;
  absl::StatusOr<int64_t> id = Count(*t.pool, "SELECT CONNECTION_ID()");
  ASSERT_TRUE(id.ok()) << id.status();
  KillConnection(*t.killer, *id);
  absl::Status stored = t.InsertOne([](sql::Connection&, int) {});
  EXPECT_TRUE(stored.ok()) << stored;
  EXPECT_EQ(t.runs, 1);
  EXPECT_EQ(t.Rows(), 1);
}

// A transaction whose connection is lost before its COMMIT was sent
// committed nothing, and runs again on a new connection: the caller gets
// its answer, and the row is stored once.
TEST(MysqlPool, ATransactionLostBeforeItsCommitRunsAgainOnANewConnection) {
  PoolOverTable t;
  absl::Status stored = t.InsertOne([&](sql::Connection& c, int run) {
    if (run > 1) return;
    KillConnection(*t.killer, ConnectionId(c));
    Execute(c, "INSERT INTO t VALUES (2)");  // throws: the connection is lost
  });
  EXPECT_TRUE(stored.ok()) << stored;
  EXPECT_EQ(t.runs, 2);
  EXPECT_EQ(t.Rows(), 1);
}

// A connection lost between fn's statements and its COMMIT: nothing was
// stored, and the caller is told UNAVAILABLE, not OK (the connector's own
// commit() would have said nothing), and not answered by a second run,
// since a COMMIT that was sent may have been done.
TEST(MysqlPool, ACommitOnALostConnectionIsUnavailable) {
  PoolOverTable t;
  absl::Status stored = t.InsertOne([&](sql::Connection& c, int) {
    KillConnection(*t.killer, ConnectionId(c));
  });
  EXPECT_EQ(stored.code(), absl::StatusCode::kUnavailable) << stored;
  // The client is told the change may be stored, and how to find out
  // (not just "retry later", which without a request id stores it twice).
  const std::string told(Redacted(stored).message());
  EXPECT_TRUE(absl::StrContains(told, "may be stored")) << told;
  EXPECT_TRUE(absl::StrContains(told, "read it before")) << told;
  EXPECT_TRUE(absl::StrContains(told, "same request_id")) << told;
  EXPECT_EQ(t.runs, 1);
  EXPECT_EQ(t.Rows(), 0);
}

// An UPDATE counts the rows it found, also one that holds the values written
// already: callers read 0 as "no such row" (a refresh job no longer
// running, say).
TEST(MysqlPool, AnUpdateCountsTheRowsItFound) {
  PoolOverTable t;
  absl::StatusOr<int> found =
      t.pool->Run([](sql::Connection& c) -> absl::StatusOr<int> {
        Execute(c, "INSERT INTO t VALUES (1)");
        std::unique_ptr<sql::PreparedStatement> s(
            c.prepareStatement("UPDATE t SET id = ? WHERE id = ?"));
        s->setInt(1, 1);
        s->setInt(2, 1);
        return s->executeUpdate();
      });
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(*found, 1);
}

// A server that hangs (paused: it takes connections and answers nothing) is
// found out by Ping within the time to connect, not io_timeout; until a Ping
// answers again, calls are UNAVAILABLE at once instead of each hanging on a
// connection until io_timeout. Then the same pool serves again.
TEST(MysqlPool, AServerThatHangsIsUnavailableAtOnceUntilAPingAnswers) {
  std::unique_ptr<TestMariaDb> db = TestMariaDb::StartPrivate();
  // A pool that waited for its io_timeout on the hung server would hang this
  // test until ctest's own timeout ends it.
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(db->CreateDatabase());
  ASSERT_TRUE(options.ok()) << options.status();
  options->pool_size = 2;
  options->acquire_timeout = absl::Seconds(2);
  options->connect_timeout = absl::Seconds(1);
  options->io_timeout = absl::Hours(1);
  absl::StatusOr<std::unique_ptr<MysqlPool>> created =
      MysqlPool::Create(*options);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<MysqlPool> pool = *std::move(created);
  ASSERT_TRUE(pool->Ping().ok());
  ASSERT_TRUE(Count(*pool, "SELECT 1").ok());  // leaves an idle connection

  db->Pause();
  absl::Status down = pool->Ping();
  absl::StatusOr<int64_t> refused = Count(*pool, "SELECT 1");
  db->Resume();

  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  const std::string database = pool->options().database;
  EXPECT_EQ(PoolSeries("rapport_db_pool_unanswered", database), 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable)
      << refused.status();
  // Refused by the pool, which tells a client no more than the code.
  EXPECT_EQ(Redacted(refused.status()).message().find("health"),
            std::string::npos);

  // The first Ping after the resume may itself find a server still waking
  // (on a loaded machine): asked again, as the health thread does.
  bool answered = false;
  for (int i = 0; i < 20 && !answered; ++i) answered = pool->Ping().ok();
  EXPECT_TRUE(answered);
  EXPECT_EQ(PoolSeries("rapport_db_pool_unanswered", database), 0);
  absl::StatusOr<int64_t> one = Count(*pool, "SELECT 1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 1);
}

}  // namespace
}  // namespace rapport

namespace rapport {
namespace {

// A READ COMMITTED transaction's statements see what another committed
// after the transaction's first read; a default one keeps its snapshot. And
// the level is the transaction's only: the connection's next one is back to
// its snapshot.
TEST(MysqlPool, ReadCommittedSeesWhatOthersCommitMeanwhile) {
  auto pool = NewPool(TestMariaDb::Shared().CreateDatabase(), 2);
  ASSERT_TRUE(ApplyMigrations(*pool, kMigrations).ok());
  int next_id = 1;
  // Counts things, has another connection add one, counts again.
  auto seen = [&](MysqlPool::Isolation isolation) {
    absl::StatusOr<std::pair<int64_t, int64_t>> counts = pool->Transaction(
        [&](sql::Connection& c) -> absl::StatusOr<std::pair<int64_t, int64_t>> {
          auto count = [&c] {
            std::unique_ptr<sql::Statement> s(c.createStatement());
            std::unique_ptr<sql::ResultSet> rs(
                s->executeQuery("SELECT COUNT(*) FROM things"));
            rs->next();
            return rs->getInt64(1);
          };
          const int64_t before = count();
          const int id = 100 + next_id++;
          EXPECT_TRUE(Count(*pool, absl::StrCat(
                                       "INSERT INTO things (id, name) VALUES (",
                                       id, ", 'x') RETURNING 1"))
                          .ok());
          return std::make_pair(before, count());
        },
        isolation);
    EXPECT_TRUE(counts.ok()) << counts.status();
    return counts.ok() ? counts->second - counts->first : -1;
  };
  EXPECT_EQ(seen(MysqlPool::Isolation::kRepeatableRead), 0);
  EXPECT_EQ(seen(MysqlPool::Isolation::kReadCommitted), 1);
  EXPECT_EQ(seen(MysqlPool::Isolation::kRepeatableRead), 0);
}

}  // namespace
}  // namespace rapport
