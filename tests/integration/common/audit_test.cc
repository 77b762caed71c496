// The audit log against a real MariaDB: events written many to a statement
// are all stored, each with its own fields, long text cut at its limit.
#include "common/audit/audit.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mysql/migrations.h"
#include "tests/support/mariadb.h"

namespace rapport::audit {
namespace {

using testing::TestMariaDb;

TEST(Audit, EventsWrittenManyToAStatementAreEachStored) {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(options.ok()) << options.status();
  options->pool_size = 1;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_TRUE(ApplyMigrations(**pool, Migrations()).ok());

  // More than one statement's worth (1024), in chunks of several sizes.
  std::vector<Event> events;
  for (int i = 0; i < 1201; ++i) {
    events.push_back({.time_us = 1000 + i,
                      .actor = "user:ada",
                      .rpc = "ImportThings",
                      .resource = absl::StrCat("things/", i),
                      .details = i == 1200 ? std::string(1500, 'x')
                                           : absl::StrCat("row ", i)});
  }
  ASSERT_TRUE((*pool)
                  ->Run([&](sql::Connection& c) -> absl::Status {
                    Write(c, events);
                    return absl::OkStatus();
                  })
                  .ok());
  absl::StatusOr<std::vector<Event>> stored =
      List(**pool, {.actor = "user:ada"}, std::nullopt, 2000);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 1201u);
  // Newest first: the last event written, cut at 1000 bytes, then the rest.
  EXPECT_EQ(stored->front().resource, "things/1200");
  EXPECT_EQ(stored->front().details.size(), 1000u);
  EXPECT_EQ((*stored)[1].resource, "things/1199");
  EXPECT_EQ((*stored)[1].details, "row 1199");
  EXPECT_EQ(stored->back().time_us, 1000);
  EXPECT_EQ(stored->back().rpc, "ImportThings");
}

}  // namespace
}  // namespace rapport::audit
