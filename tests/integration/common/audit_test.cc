// The audit log against a real MariaDB: events written many to a statement
// are all stored, each with its own fields, long text cut at its limit.
#include "common/audit/audit.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/audit/audit_rpcs.h"
#include "common/mysql/migrations.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "rapport/partner/v1/partner_service.pb.h"
#include "tests/support/mariadb.h"

namespace rapport::audit {
namespace {

using testing::TestMariaDb;

// A pool of one connection on a new database with the audit log's schema;
// null (and a failed test) when it cannot be made.
std::unique_ptr<MysqlPool> LogOnAFreshDatabase() {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(TestMariaDb::Shared().CreateDatabase());
  EXPECT_TRUE(options.ok()) << options.status();
  if (!options.ok()) return nullptr;
  options->pool_size = 1;
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options);
  EXPECT_TRUE(pool.ok()) << pool.status();
  if (!pool.ok()) return nullptr;
  absl::StatusOr<int> migrated = ApplyMigrations(**pool, Migrations());
  EXPECT_TRUE(migrated.ok()) << migrated.status();
  return migrated.ok() ? *std::move(pool) : nullptr;
}

// Writes `events` as the services do, many to a statement.
absl::Status WriteAll(MysqlPool& pool, const std::vector<Event>& events) {
  return pool.Run([&](sql::Connection& c) -> absl::Status {
    Write(c, events);
    return absl::OkStatus();
  });
}

TEST(Audit, EventsWrittenManyToAStatementAreEachStored) {
  std::unique_ptr<MysqlPool> pool = LogOnAFreshDatabase();
  ASSERT_NE(pool, nullptr);

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
  ASSERT_TRUE(WriteAll(*pool, events).ok());
  absl::StatusOr<std::vector<Event>> stored =
      List(*pool, {.actor = "user:ada"}, std::nullopt, 2000);
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

// Actors and resources are names: a filter finds the one spelled so, not
// another that differs by case or accent.
TEST(Audit, FiltersMatchNamesByteForByte) {
  std::unique_ptr<MysqlPool> pool = LogOnAFreshDatabase();
  ASSERT_NE(pool, nullptr);
  std::vector<Event> events;
  for (const char* actor : {"svc:Alice", "svc:alice", "svc:alicé"}) {
    for (const char* resource : {"imports/Q1", "imports/q1"}) {
      events.push_back({.time_us = 1,
                        .actor = actor,
                        .rpc = "Import",
                        .resource = resource});
    }
  }
  ASSERT_TRUE(WriteAll(*pool, events).ok());
  absl::StatusOr<std::vector<Event>> by_actor =
      List(*pool, {.actor = "svc:alice"}, std::nullopt, 100);
  ASSERT_TRUE(by_actor.ok()) << by_actor.status();
  EXPECT_EQ(by_actor->size(), 2u);
  for (const Event& e : *by_actor) EXPECT_EQ(e.actor, "svc:alice");
  absl::StatusOr<std::vector<Event>> by_resource =
      List(*pool, {.actor = "svc:Alice", .resource = "imports/Q1"},
           std::nullopt, 100);
  ASSERT_TRUE(by_resource.ok()) << by_resource.status();
  ASSERT_EQ(by_resource->size(), 1u);
  EXPECT_EQ(by_resource->front().resource, "imports/Q1");
}

// ListAuditEvents, as every service answers it, on a real log: pages of
// the newest first that end, a filter by actor and time, and each bad
// request refused naming its field.
TEST(Audit, ListEventsPagesFiltersAndNamesBadFields) {
  std::unique_ptr<MysqlPool> pool = LogOnAFreshDatabase();
  ASSERT_NE(pool, nullptr);
  std::vector<Event> events;
  for (int i = 0; i < 7; ++i) {
    events.push_back({.time_us = 1'700'000'000'000'000 + i * 1'000'000,
                      .actor = i % 2 == 0 ? "user:ada" : "user:bob",
                      .rpc = "UpdateThing",
                      .resource = absl::StrCat("things/", i)});
  }
  ASSERT_TRUE(WriteAll(*pool, events).ok());
  const Lister list = [&](const Filter& f, const std::optional<Cursor>& after,
                          int limit) { return List(*pool, f, after, limit); };
  using Request = ::rapport::customer::v1::ListAuditEventsRequest;
  using Response = ::rapport::customer::v1::ListAuditEventsResponse;

  // Ada's four events, two to a page, newest first.
  Request request;
  request.set_actor("user:ada");
  request.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  for (; pages < 3; ++pages) {
    absl::StatusOr<Response> r = ListEvents<Response>(request, list);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& e : r->events()) seen.push_back(e.resource());
    if (r->next_page_token().empty()) break;
    request.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"things/6", "things/4", "things/2",
                                            "things/0"}));
  EXPECT_EQ(pages, 1);  // the second page (index 1) has no token: they end
  // From the third second on, before the sixth.
  Request window;
  *window.mutable_start_time() = ToTimestamp(events[2].time_us);
  *window.mutable_end_time() = ToTimestamp(events[5].time_us);
  absl::StatusOr<Response> r = ListEvents<Response>(window, list);
  ASSERT_TRUE(r.ok()) << r.status();
  std::vector<std::string> in_window;
  for (const auto& e : r->events()) in_window.push_back(e.resource());
  EXPECT_EQ(in_window,
            (std::vector<std::string>{"things/4", "things/3", "things/2"}));

  auto field_of = [&](const Request& bad) {
    const absl::Status s = ListEvents<Response>(bad, list).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    return FieldViolations(s).empty() ? std::string(s.message())
                                      : FieldViolations(s)[0].field;
  };
  Request backwards = window;
  *backwards.mutable_end_time() = ToTimestamp(events[1].time_us);
  EXPECT_EQ(field_of(backwards), "end_time");
  // A page token of Ada's listing does not page Bob's.
  Request first;
  first.set_actor("user:ada");
  first.set_page_size(1);
  absl::StatusOr<Response> ada = ListEvents<Response>(first, list);
  ASSERT_TRUE(ada.ok()) << ada.status();
  ASSERT_FALSE(ada->next_page_token().empty());
  Request other = first;
  other.set_actor("user:bob");
  other.set_page_token(ada->next_page_token());
  EXPECT_EQ(field_of(other), "page_token");
  // Nor does it page another service's log, whose request is another
  // message with the same fields.
  {
    ::rapport::partner::v1::ListAuditEventsRequest partner;
    partner.set_actor("user:ada");
    partner.set_page_size(1);
    partner.set_page_token(ada->next_page_token());
    const absl::Status s =
        ListEvents<::rapport::partner::v1::ListAuditEventsResponse>(partner,
                                                                    list)
            .status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    ASSERT_FALSE(FieldViolations(s).empty()) << s;
    EXPECT_EQ(FieldViolations(s)[0].field, "page_token");
  }
  Request garbage;
  garbage.set_page_token("not-a-token");
  EXPECT_EQ(field_of(garbage), "page_token");
  Request negative;
  negative.set_page_size(-1);
  EXPECT_EQ(field_of(negative), "page_size");
}

}  // namespace
}  // namespace rapport::audit
