// StoredFingerprints against a real MariaDB: ids read as ranges and as lists
// answer exactly the ids asked for that are stored.
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/import/mysql_import.h"
#include "common/mysql/migrations.h"
#include "tests/support/mariadb.h"

namespace rapport::imports {
namespace {

using testing::TestMariaDb;

std::unique_ptr<MysqlPool> NewPool() {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(TestMariaDb::Shared().CreateDatabase());
  EXPECT_TRUE(options.ok()) << options.status();
  options->pool_size = 2;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return *std::move(pool);
}

TEST(StoredFingerprints, RangesAndListsAnswerOnlyTheStoredIdsAskedFor) {
  auto pool = NewPool();
  ASSERT_TRUE(ApplyMigrations(*pool, {{1, "rows",
                                       "CREATE TABLE t (id CHAR(26) "
                                       "CHARACTER SET ascii COLLATE ascii_bin "
                                       "PRIMARY KEY, fp CHAR(16) NULL)"}})
                  .ok());
  IdGenerator ids;
  const std::string p = ids.Next().substr(0, kRowIdPrefixSize);
  const std::string q = ids.Next().substr(0, kRowIdPrefixSize);
  ASSERT_NE(p, q);
  // Stored: rows 1-100 of p but 50, row 500 of p, rows 1-3 of q, one keyed
  // id; fingerprints name their row.
  std::vector<std::string> stored;
  for (int row = 1; row <= 100; ++row) {
    if (row != 50) stored.push_back(RowId(p, row));
  }
  stored.push_back(RowId(p, 500));
  for (int row = 1; row <= 3; ++row) stored.push_back(RowId(q, row));
  const std::string keyed = KeyedId("deals", "d-1");
  stored.push_back(keyed);
  ASSERT_TRUE(pool->Run([&](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(c.createStatement());
                    for (const std::string& id : stored) {
                      s->execute(absl::StrCat("INSERT INTO t VALUES ('", id,
                                              "', 'fp-", id.substr(20), "')"));
                    }
                    return absl::OkStatus();
                  })
                  .ok());

  // Asked for: rows 1-60 of p but 30 and 31 (one range, which holds the
  // stored rows 30 and 31), rows 400-1000 of p by 100 (too far apart for a
  // range), rows 1-3 of q (too few), the keyed id and one never stored.
  std::vector<std::string> asked;
  for (int row = 1; row <= 60; ++row) {
    if (row != 30 && row != 31) asked.push_back(RowId(p, row));
  }
  for (int row = 400; row <= 1000; row += 100) asked.push_back(RowId(p, row));
  for (int row = 1; row <= 3; ++row) asked.push_back(RowId(q, row));
  asked.push_back(keyed);
  asked.push_back(KeyedId("deals", "d-2"));
  asked.push_back(asked.front());  // asked twice, answered once

  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> found =
      StoredFingerprints(*pool, {"t"}, "fp", asked);
  ASSERT_TRUE(found.ok()) << found.status();
  std::vector<std::string> expected;
  for (int row = 1; row <= 60; ++row) {
    if (row != 30 && row != 31 && row != 50) expected.push_back(RowId(p, row));
  }
  expected.push_back(RowId(p, 500));
  for (int row = 1; row <= 3; ++row) expected.push_back(RowId(q, row));
  expected.push_back(keyed);
  EXPECT_EQ(found->size(), expected.size());
  for (const std::string& id : expected) {
    auto it = found->find(id);
    ASSERT_NE(it, found->end()) << id;
    EXPECT_EQ(it->second, absl::StrCat("fp-", id.substr(20)));
  }
  EXPECT_FALSE(found->contains(RowId(p, 30)));
  EXPECT_FALSE(found->contains(RowId(p, 31)));

  // A new import's batch: nothing stored under its prefix.
  const std::string fresh = ids.Next().substr(0, kRowIdPrefixSize);
  std::vector<std::string> batch;
  for (int row = 1; row <= 5000; ++row) batch.push_back(RowId(fresh, row));
  found = StoredFingerprints(*pool, {"t"}, "fp", batch);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_TRUE(found->empty());
}

// Rows that corrected a stored row keep their ids in a second table: a retry
// finds them there, and an id in both answers the first table's fingerprint.
TEST(StoredFingerprints, IdsAreFoundInEveryTableNamed) {
  auto pool = NewPool();
  ASSERT_TRUE(
      ApplyMigrations(*pool, {{1, "rows",
                               "CREATE TABLE t (id CHAR(26) CHARACTER SET "
                               "ascii COLLATE ascii_bin PRIMARY KEY, fp "
                               "CHAR(16) NULL);\nCREATE TABLE u (id CHAR(26) "
                               "CHARACTER SET ascii COLLATE ascii_bin PRIMARY "
                               "KEY, fp CHAR(16) NULL)"}})
          .ok());
  IdGenerator ids;
  const std::string p = ids.Next().substr(0, kRowIdPrefixSize);
  ASSERT_TRUE(pool->Run([&](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(c.createStatement());
                    s->execute(absl::StrCat("INSERT INTO t VALUES ('",
                                            RowId(p, 1), "', 'in-t'), ('",
                                            RowId(p, 3), "', 'in-t')"));
                    s->execute(absl::StrCat("INSERT INTO u VALUES ('",
                                            RowId(p, 2), "', 'in-u'), ('",
                                            RowId(p, 3), "', 'in-u')"));
                    return absl::OkStatus();
                  })
                  .ok());
  std::vector<std::string> batch;
  for (int row = 1; row <= 4; ++row) batch.push_back(RowId(p, row));
  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> found =
      StoredFingerprints(*pool, {"t", "u"}, "fp", batch);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->size(), 3u);
  EXPECT_EQ(found->at(RowId(p, 1)), "in-t");
  EXPECT_EQ(found->at(RowId(p, 2)), "in-u");
  EXPECT_EQ(found->at(RowId(p, 3)), "in-t");
  EXPECT_FALSE(found->contains(RowId(p, 4)));
}

}  // namespace
}  // namespace rapport::imports
