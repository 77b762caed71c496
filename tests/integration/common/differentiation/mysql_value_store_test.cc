// The differentiation kit's MySQL stores against a real MariaDB, on the
// customer service's tables: which facts count (the window rule, merged and
// erased customers), value sets that replace each other at once and name
// their job, jobs and their heartbeats, summaries and exports.
#include "common/differentiation/mysql_value_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/differentiation/mysql_counterpart.h"
#include "common/ids.h"
#include "common/mysql/mysql_options.h"
#include "common/mysql/named_lock.h"
#include "common/mysql/sql.h"
#include "services/customer/customer_values.h"
#include "tests/support/customer_rows.h"
#include "tests/support/database.h"

namespace rapport::differentiation {
namespace {

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kAsOf = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

Decimal D(const char* text) { return *Decimal::Parse(text); }

class ValueStoreTest : public ::testing::Test {
 protected:
  ValueStoreTest()
      : db_(customer::CustomerSchema()),
        facts_(&db_.pool(), customer::CustomerCounterpartTables()),
        store_(&db_.pool(), customer::CustomerValueTables()) {}

  void Exec(const std::string& query,
            const std::vector<std::string>& params = {}) {
    db_.Exec(query, params);
  }

  // "name(col,col)" of each secondary index of `table`, in name order.
  std::vector<std::string> SecondaryIndexes(const std::string& table) {
    return db_.Strings(
        "SELECT CONCAT(INDEX_NAME, '(', GROUP_CONCAT(COLUMN_NAME ORDER BY "
        "SEQ_IN_INDEX), ')') FROM information_schema.STATISTICS WHERE "
        "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND INDEX_NAME <> "
        "'PRIMARY' GROUP BY INDEX_NAME ORDER BY INDEX_NAME",
        {table});
  }
  // The tables of the database whose names start with `prefix`.
  std::vector<std::string> Tables(const std::string& prefix) {
    return db_.Strings(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA "
        "= DATABASE() AND LEFT(TABLE_NAME, LENGTH(?)) = ? ORDER BY TABLE_NAME",
        {prefix, prefix});
  }

  std::string AddCustomer() { return testing::InsertCustomer(db_, ids_); }
  // Stores `job` as a refresh started at kAsOf by user:a, under a new id.
  void StartJob(RefreshJobRecord* job) {
    job->id = ids_.Next();
    job->create_time_us = job->heartbeat_time_us = kAsOf;
    ASSERT_TRUE(store_
                    .CreateJob(*job, {.time_us = kAsOf,
                                      .actor = "user:a",
                                      .rpc = "RefreshScores",
                                      .resource = "refreshJobs/" + job->id,
                                      .outcome = "started"})
                    .ok());
  }
  void AddPurchase(const std::string& customer, int64_t time_us,
                   const std::string& amount) {
    testing::InsertPurchase(db_, ids_, customer, time_us, amount);
  }
  void AddCost(const std::string& customer, int64_t time_us,
               const std::string& cost) {
    testing::InsertInteractionCost(db_, ids_, customer, time_us, cost);
  }

  // A running job's row, written directly (several may run here, as for
  // jobs from before the one-at-a-time check).
  std::string RunningJob(int64_t heartbeat_us = kAsOf) {
    const std::string id = ids_.Next();
    Exec(
        "INSERT INTO refresh_jobs (id, state, done, total, request, "
        "create_time_us, heartbeat_time_us) VALUES (?, 1, 0, 7, '', ?, ?)",
        {id, absl::StrCat(kAsOf), absl::StrCat(heartbeat_us)});
    return id;
  }

  std::vector<EntityFacts> Scan(const CountWindow& window, int batch_size) {
    std::vector<EntityFacts> all;
    absl::Status s =
        facts_.ScanFacts(window, batch_size, [&](std::vector<EntityFacts>& b) {
          EXPECT_LE(static_cast<int>(b.size()), batch_size);
          for (size_t i = 1; i < b.size(); ++i)
            EXPECT_LT(b[i - 1].entity_id, b[i].entity_id);
          all.insert(all.end(), b.begin(), b.end());
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    // Batches come in any order (several connections scan at once).
    std::sort(all.begin(), all.end(),
              [](const EntityFacts& x, const EntityFacts& y) {
                return x.entity_id < y.entity_id;
              });
    return all;
  }

  StoredValue Score(const std::string& id, const std::string& model, int value,
                    int tier, const char* segment) {
    StoredValue s;
    s.entity_id = id;
    s.model_id = model;
    s.recency_days = 3;
    s.frequency = 2;
    s.monetary = D("10.25");
    s.r = s.f = s.m = 3;
    s.segment = segment;
    s.value_hundredths = value;
    s.cost_to_serve = D("1.5");
    s.profit = D("8.75");
    s.tier = tier;
    s.score_time_us = kAsOf;
    return s;
  }

  IdGenerator ids_;
  testing::MigratedDatabase db_;
  MysqlCounterpart facts_;
  MysqlValueStore store_;
};

TEST_F(ValueStoreTest,
       FactsFollowTheWindowRuleAndSkipMergedAndErasedCustomers) {
  const std::string a = AddCustomer(), b = AddCustomer(),
                    prospect = AddCustomer(), merged = AddCustomer(),
                    costs_only = AddCustomer(), erased = AddCustomer();
  // a: one purchase exactly at as_of (counts), one exactly at the window's
  // start (does not), one inside, one after as_of (never counts), a refund.
  AddPurchase(a, kAsOf, "10.10");
  AddPurchase(a, kAsOf - 30 * kDay, "99");
  AddPurchase(a, kAsOf - 30 * kDay + 1, "5.000000001");
  AddPurchase(a, kAsOf + 1, "1000");
  AddPurchase(a, kAsOf - kDay, "-2.5");
  AddPurchase(b, kAsOf - 400 * kDay, "7");  // outside a 30-day window
  AddCost(a, kAsOf - 2 * kDay, "0.75");
  AddCost(a, kAsOf - 31 * kDay, "100");  // outside the window
  AddCost(costs_only, kAsOf, "3");
  AddPurchase(merged, kAsOf - kDay, "50");
  Exec("UPDATE customers SET merged_into = ? WHERE id = ?", {a, merged});
  // An erased customer (its purchases kept, anonymous) is scored no more.
  AddPurchase(erased, kAsOf - kDay, "70");
  Exec("UPDATE customers SET erased_time_us = 1 WHERE id = ?", {erased});

  const CountWindow window{kAsOf, 30};
  std::vector<EntityFacts> facts = Scan(window, 2);
  ASSERT_EQ(facts.size(), 4u);
  ASSERT_EQ(*facts_.CountEntities(), 4);
  std::map<std::string, EntityFacts> by_id;
  for (size_t i = 0; i < facts.size(); ++i) {
    if (i > 0) {
      EXPECT_NE(facts[i - 1].entity_id,
                facts[i].entity_id);  // each customer once
    }
    by_id[facts[i].entity_id] = facts[i];
  }
  EXPECT_EQ(by_id.count(merged), 0u);
  EXPECT_EQ(by_id.count(erased), 0u);
  // Asked for, it is said to be erased, not unknown.
  absl::StatusOr<std::string> resolved = facts_.ResolveEntity(erased);
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(resolved.status().message(),
            absl::StrCat("customer ", erased, " was erased"));
  EXPECT_EQ(*facts_.ResolveEntity(merged), a);
  EXPECT_EQ(by_id[a].frequency, 3);
  EXPECT_EQ(by_id[a].monetary, D("12.600000001"));
  EXPECT_EQ(by_id[a].last_event_us, kAsOf);
  EXPECT_EQ(by_id[a].cost_to_serve, D("0.75"));
  EXPECT_EQ(by_id[b].frequency, 0);
  EXPECT_FALSE(by_id[b].last_event_us.has_value());
  EXPECT_EQ(by_id[prospect].frequency, 0);
  EXPECT_TRUE(by_id[prospect].cost_to_serve.is_zero());
  EXPECT_EQ(by_id[costs_only].cost_to_serve, D("3"));

  // Without a window the old purchase and cost count; the page size does not
  // matter.
  std::vector<EntityFacts> all = Scan(CountWindow{kAsOf, std::nullopt}, 1000);
  ASSERT_EQ(all.size(), 4u);
  std::map<std::string, EntityFacts> all_by_id;
  for (const EntityFacts& f : all) all_by_id[f.entity_id] = f;
  ASSERT_TRUE(all_by_id.contains(a) && all_by_id.contains(b));
  EXPECT_EQ(all_by_id[a].frequency, 4);
  EXPECT_EQ(all_by_id[a].monetary, D("111.600000001"));
  EXPECT_EQ(all_by_id[a].cost_to_serve, D("100.75"));
  EXPECT_EQ(all_by_id[b].last_event_us, kAsOf - 400 * kDay);

  // Facts of chosen customers equal their rows of the scan; merged and
  // unknown ids are left out, and an id asked twice comes once.
  absl::StatusOr<std::vector<EntityFacts>> some =
      facts_.FactsOf({prospect, a, merged, "01jd8x4r2c6n7m9p0q1r2s3t4v",
                      costs_only, a, erased},
                     window);
  ASSERT_TRUE(some.ok()) << some.status();
  std::map<std::string, EntityFacts> chosen;
  for (const EntityFacts& f : *some) chosen[f.entity_id] = f;
  ASSERT_EQ(some->size(), 3u);
  ASSERT_EQ(chosen.size(), 3u);
  for (const std::string& id : {a, prospect, costs_only}) {
    ASSERT_EQ(chosen.count(id), 1u) << id;
    EXPECT_EQ(chosen[id].frequency, by_id[id].frequency) << id;
    EXPECT_EQ(chosen[id].monetary, by_id[id].monetary) << id;
    EXPECT_EQ(chosen[id].last_event_us, by_id[id].last_event_us) << id;
    EXPECT_EQ(chosen[id].cost_to_serve, by_id[id].cost_to_serve) << id;
  }
  EXPECT_EQ(chosen[prospect].frequency, 0);
  EXPECT_TRUE(chosen[prospect].monetary.is_zero());
  EXPECT_EQ(chosen[costs_only].cost_to_serve, D("3"));
}

TEST_F(ValueStoreTest, EventDaysSumADayAndFloorBeforeTheEpoch) {
  const std::string a = AddCustomer(), b = AddCustomer();
  AddPurchase(a, 3 * kDay + 5, "1.5");
  AddPurchase(a, 4 * kDay - 1, "2.25");  // the same UTC day
  AddPurchase(a, 4 * kDay, "4");
  AddPurchase(b, -1, "3");  // 1969-12-31
  std::vector<EventDay> days;
  ASSERT_TRUE(facts_
                  .ScanEventDays(CountWindow{10 * kDay, std::nullopt}, 1,
                                 [&](std::vector<EventDay>& batch) {
                                   days.insert(days.end(), batch.begin(),
                                               batch.end());
                                   return absl::OkStatus();
                                 })
                  .ok());
  std::map<std::pair<std::string, int64_t>, Decimal> got;
  for (const EventDay& d : days) got[{d.entity_id, d.day}] = d.amount;
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ((got[{a, 3}]), D("3.75"));
  EXPECT_EQ((got[{a, 4}]), D("4"));
  EXPECT_EQ((got[{b, -1}]), D("3"));
}

TEST_F(ValueStoreTest, APublishedSetReplacesTheOldOneAndADiscardedOneLeavesIt) {
  const std::string a = AddCustomer(), b = AddCustomer();
  const std::string job1 = RunningJob(), job2 = RunningJob(),
                    job3 = RunningJob();
  const std::vector<std::string> indexes = SecondaryIndexes("customer_scores");
  ASSERT_EQ(indexes.size(), 3u);
  ASSERT_TRUE(store_.BeginValueSet(job1).ok());
  std::vector<StoredValue> first = {Score(a, job1, 5000, 2, "At Risk"),
                                    Score(b, job1, 100, 1, "Hibernating")};
  first[0].p_alive = 0.5;
  first[0].clv = 12.5;
  ASSERT_TRUE(store_.AppendValues(job1, first).ok());
  // Not visible before it is published.
  EXPECT_TRUE(store_.GetValues({a, b})->empty());
  EXPECT_FALSE(store_.LiveSetJob()->has_value());
  EXPECT_EQ(Tables("customer_scores_staging_"),
            std::vector<std::string>{"customer_scores_staging_" + job1});
  ASSERT_TRUE(store_.PublishValueSet(job1).ok());
  // The set was loaded without secondary indexes; published, it has them all,
  // and names its job.
  EXPECT_EQ(SecondaryIndexes("customer_scores"), indexes);
  EXPECT_EQ(*store_.LiveSetJob(), job1);
  EXPECT_TRUE(Tables("customer_scores_staging_").empty());
  // The set it replaced is kept until its job drops it.
  EXPECT_EQ(Tables("customer_scores_old_"),
            std::vector<std::string>{"customer_scores_old_" + job1});
  std::vector<LeftoverSet> leftovers = *store_.LeftoverSets();
  ASSERT_EQ(leftovers.size(), 1u);
  EXPECT_EQ(leftovers[0].job_id, job1);
  EXPECT_EQ(leftovers[0].kind, LeftoverSet::Kind::kReplaced);
  ASSERT_TRUE(store_.DropReplacedSet(job1).ok());
  ASSERT_TRUE(store_.DropReplacedSet(job1).ok());  // already gone: fine
  EXPECT_TRUE(store_.LeftoverSets()->empty());
  absl::StatusOr<std::vector<StoredValue>> got = store_.GetValues({a, b});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);

  // A second set without b: b's old values go.
  ASSERT_TRUE(store_.BeginValueSet(job2).ok());
  std::vector<StoredValue> many;
  for (int i = 0; i < 2500; ++i)
    many.push_back(Score(ids_.Next(), job2, i % 10001, 3, "Loyal"));
  many.push_back(Score(a, job2, 7000, 4, "Champions"));
  ASSERT_TRUE(store_.AppendValues(job2, many).ok());
  // b is re-scored (against job1's model) while job2 runs: publishing names
  // it, as its new value goes with the old set.
  StoredValue rescored_b = Score(b, job1, 200, 1, "Hibernating");
  rescored_b.score_time_us = kAsOf + 5;
  ASSERT_TRUE(store_.UpsertValues({rescored_b}).ok());
  // The live set as an older binary published it, its value index ascending.
  db_.Exec(
      "ALTER TABLE customer_scores DROP KEY customer_scores_value, ADD KEY "
      "customer_scores_value (value_hundredths, customer_id)");
  ASSERT_TRUE(store_.PublishValueSet(job2).ok());
  // The published set has the live set's indexes, the value's descending
  // (listings by value read the best first) even so.
  EXPECT_EQ(db_.Strings("SELECT CONCAT(COLUMN_NAME, ' ', COLLATION) FROM "
                        "information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                        "DATABASE() AND TABLE_NAME = 'customer_scores' AND "
                        "INDEX_NAME = 'customer_scores_value' ORDER BY "
                        "SEQ_IN_INDEX"),
            (std::vector<std::string>{"value_hundredths D", "customer_id A"}));
  absl::StatusOr<std::vector<std::string>> meanwhile =
      store_.RescoredInReplacedSet(job2, kAsOf);
  ASSERT_TRUE(meanwhile.ok()) << meanwhile.status();
  EXPECT_EQ(*meanwhile, std::vector<std::string>{b});
  // The values before job2, with b as re-scored meanwhile, are the previous
  // ones from the moment job2 is live: read from the replaced set before it
  // is retired (the catch-up still runs), from the previous set after. A
  // second retirement changes nothing.
  for (const bool retired : {false, true}) {
    if (retired) {
      ASSERT_TRUE(store_.RetireReplacedSet(job2).ok());
      ASSERT_TRUE(store_.RetireReplacedSet(job2).ok());
    }
    absl::StatusOr<std::vector<StoredValue>> previous =
        store_.GetPreviousValues({a, b, ids_.Next()});
    ASSERT_TRUE(previous.ok()) << previous.status();
    ASSERT_EQ(previous->size(), 2u) << retired;
    for (const StoredValue& v : *previous) {
      EXPECT_EQ(v.model_id, job1);
      EXPECT_EQ(v.value_hundredths, v.entity_id == a ? 5000 : 200);
    }
  }
  EXPECT_TRUE(store_.LeftoverSets()->empty());
  EXPECT_TRUE(store_.RescoredInReplacedSet(job2, kAsOf)->empty());
  EXPECT_TRUE(store_.ValuedByOtherModels(job2)->empty());
  // A set replaced by a refresh that a later one has replaced since (its
  // catch-up was slow) is dropped when retired: the previous set stays the
  // one the live refresh replaced.
  {
    const std::string slow = ids_.Next();
    Exec(absl::StrCat("CREATE TABLE customer_scores_old_", slow,
                      " LIKE customer_scores_previous"));
    Exec(absl::StrCat("INSERT INTO customer_scores_old_", slow,
                      " SELECT * FROM customer_scores_previous"));
    Exec(absl::StrCat("UPDATE customer_scores_old_", slow,
                      " SET value_hundredths = 2"));
    ASSERT_TRUE(store_.RetireReplacedSet(slow).ok());
    EXPECT_TRUE(Tables("customer_scores_old_").empty());
    absl::StatusOr<std::vector<StoredValue>> kept =
        store_.GetPreviousValues({a, b});
    ASSERT_TRUE(kept.ok()) << kept.status();
    ASSERT_EQ(kept->size(), 2u);
    for (const StoredValue& v : *kept)
      EXPECT_EQ(v.value_hundredths, v.entity_id == a ? 5000 : 200);
  }
  // A later retirement swaps the previous set for its own in one RENAME
  // (readers always find one) and leaves no other table behind.
  {
    const std::string later = ids_.Next();
    // (Its refresh is the live one.)
    Exec(
        absl::StrCat("ALTER TABLE customer_scores COMMENT = "
                     "'rapport refresh job ",
                     later, "'"));
    Exec(absl::StrCat("CREATE TABLE customer_scores_old_", later,
                      " LIKE customer_scores_previous"));
    Exec(absl::StrCat("INSERT INTO customer_scores_old_", later,
                      " SELECT * FROM customer_scores_previous"));
    Exec(absl::StrCat("UPDATE customer_scores_old_", later,
                      " SET value_hundredths = 1"));
    ASSERT_TRUE(store_.RetireReplacedSet(later).ok());
    EXPECT_EQ(Tables("customer_scores_previous"),
              std::vector<std::string>{"customer_scores_previous"});
    EXPECT_TRUE(Tables("customer_scores_old_").empty());
    absl::StatusOr<std::vector<StoredValue>> swapped =
        store_.GetPreviousValues({a, b});
    ASSERT_TRUE(swapped.ok()) << swapped.status();
    ASSERT_EQ(swapped->size(), 2u);
    for (const StoredValue& v : *swapped) EXPECT_EQ(v.value_hundredths, 1);
    Exec(
        absl::StrCat("ALTER TABLE customer_scores COMMENT = "
                     "'rapport refresh job ",
                     job2, "'"));
  }
  // One re-scored against job1's model just after the swap is found too.
  const std::string racing = AddCustomer();
  ASSERT_TRUE(
      store_.UpsertValues({Score(racing, job1, 300, 2, "Hibernating")}).ok());
  EXPECT_EQ(*store_.ValuedByOtherModels(job2),
            std::vector<std::string>{racing});
  got = store_.GetValues({a, b});
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].model_id, job2);
  EXPECT_EQ((*got)[0].value_hundredths, 7000);
  EXPECT_EQ((*got)[0].monetary, D("10.25"));
  EXPECT_FALSE((*got)[0].p_alive.has_value());

  // A discarded set changes nothing.
  ASSERT_TRUE(store_.BeginValueSet(job3).ok());
  ASSERT_TRUE(
      store_.AppendValues(job3, {Score(a, job3, 1, 1, "Hibernating")}).ok());
  ASSERT_TRUE(store_.DiscardValueSet(job3).ok());
  EXPECT_EQ(store_.GetValues({a})->at(0).model_id, job2);
  EXPECT_EQ(*store_.LiveSetJob(), job2);
  EXPECT_TRUE(store_.LeftoverSets()->empty());
  // A job that no longer runs cannot publish (its staged set stays for
  // recovery to drop).
  ASSERT_TRUE(store_.BeginValueSet(job3).ok());
  Exec("UPDATE refresh_jobs SET state = 3 WHERE id = ?", {job3});
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.PublishValueSet(job3)));
  EXPECT_EQ(*store_.LiveSetJob(), job2);
  ASSERT_EQ(store_.LeftoverSets()->size(), 1u);
  EXPECT_EQ(store_.LeftoverSets()->at(0).kind, LeftoverSet::Kind::kStaged);

  // An upsert replaces the values but keeps CLV figures it does not carry.
  StoredValue with_clv = Score(a, job2, 7100, 4, "Champions");
  with_clv.clv = 99.5;
  ASSERT_TRUE(store_.UpsertValues({with_clv}).ok());
  StoredValue rescored = Score(a, job2, 7200, 3, "Loyal Customers");
  rescored.recency_days.reset();
  ASSERT_TRUE(store_.UpsertValues({rescored}).ok());
  StoredValue after = store_.GetValues({a})->at(0);
  EXPECT_EQ(after.value_hundredths, 7200);
  EXPECT_EQ(after.segment, "Loyal Customers");
  EXPECT_FALSE(after.recency_days.has_value());
  EXPECT_EQ(after.clv, 99.5);
  // Customers without stored values get their first, several at once
  // (three rows, padded to a statement for four).
  const std::string c = AddCustomer();
  ASSERT_TRUE(store_
                  .UpsertValues({Score(b, job2, 10, 1, "Hibernating"),
                                 Score(c, job2, 20, 2, "Hibernating"),
                                 Score(a, job2, 7300, 4, "Champions")})
                  .ok());
  EXPECT_EQ(store_.GetValues({b})->at(0).value_hundredths, 10);
  EXPECT_EQ(store_.GetValues({c})->at(0).value_hundredths, 20);
  EXPECT_EQ(store_.GetValues({a})->at(0).value_hundredths, 7300);
  EXPECT_EQ(store_.GetValues({a})->at(0).clv, 99.5);
  // Two re-scores stored out of order: the one scored earlier (from older
  // facts) changes nothing, not even the CLV it carries; a later one does.
  StoredValue late = Score(a, job2, 7400, 4, "Champions");
  late.score_time_us = kAsOf + 2000;
  ASSERT_TRUE(store_.UpsertValues({late}).ok());
  StoredValue early = Score(a, job1, 100, 1, "Hibernating");
  early.score_time_us = kAsOf + 1000;
  early.clv = 1.5;
  ASSERT_TRUE(
      store_.UpsertValues({early, Score(b, job2, 11, 1, "Hibernating")}).ok());
  after = store_.GetValues({a})->at(0);
  EXPECT_EQ(after.value_hundredths, 7400);
  EXPECT_EQ(after.model_id, job2);
  EXPECT_EQ(after.segment, "Champions");
  EXPECT_EQ(after.clv, 99.5);
  EXPECT_EQ(after.score_time_us, kAsOf + 2000);
  EXPECT_EQ(store_.GetValues({b})->at(0).value_hundredths, 11);  // same time
  StoredValue later = Score(a, job2, 7500, 4, "Champions");
  later.score_time_us = kAsOf + 3000;
  ASSERT_TRUE(store_.UpsertValues({later}).ok());
  EXPECT_EQ(store_.GetValues({a})->at(0).value_hundredths, 7500);
  EXPECT_EQ(store_.GetValues({a})->at(0).score_time_us, kAsOf + 3000);
}

// A reader of the live values that does not finish (a transaction left
// open, a dump) holds up a publication only so long: the swap fails, the set
// that was live stays live, and the next publication goes through.
TEST_F(ValueStoreTest, APublicationWaitsForAReaderOnlySoLong) {
  const std::string a = AddCustomer();
  const std::string job1 = RunningJob(), job2 = RunningJob(),
                    job3 = RunningJob();
  for (const std::string& job : {job1, job2}) {
    ASSERT_TRUE(store_.BeginValueSet(job).ok());
    ASSERT_TRUE(
        store_.AppendValues(job, {Score(a, job, 100, 1, "Hibernating")}).ok());
  }
  ASSERT_TRUE(store_.PublishValueSet(job1).ok());
  absl::Notification reading, done;
  std::thread reader([&] {
    absl::Status s = db_.pool().Run([&](sql::Connection& c) -> absl::Status {
      Execute(c, "START TRANSACTION");
      std::unique_ptr<sql::Statement> read(c.createStatement());
      std::unique_ptr<sql::ResultSet> rows(
          read->executeQuery("SELECT COUNT(*) FROM customer_scores"));
      EXPECT_TRUE(rows->next());
      reading.Notify();
      done.WaitForNotification();
      Execute(c, "COMMIT");
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  reading.WaitForNotification();
  absl::Status held = store_.PublishValueSet(job2);
  EXPECT_FALSE(held.ok());
  EXPECT_EQ(*store_.LiveSetJob(), job1);
  done.Notify();
  reader.join();
  EXPECT_EQ(*store_.SettledLiveSetJob(), job1);
  ASSERT_TRUE(store_.DiscardValueSet(job2).ok());
  ASSERT_TRUE(store_.BeginValueSet(job3).ok());
  ASSERT_TRUE(
      store_.AppendValues(job3, {Score(a, job3, 200, 1, "Hibernating")}).ok());
  absl::Status published = store_.PublishValueSet(job3);
  EXPECT_TRUE(published.ok()) << published;
  EXPECT_EQ(*store_.SettledLiveSetJob(), job3);
}

// A publication that finds the refresh lock held past one wait (another
// replica retiring a large replaced set) waits again, and publishes once it
// is free, rather than throw the staged set away.
TEST_F(ValueStoreTest, APublicationWaitsAgainForABusyRefreshLock) {
  const std::string a = AddCustomer();
  const std::string job = RunningJob();
  ASSERT_TRUE(store_.BeginValueSet(job).ok());
  ASSERT_TRUE(
      store_.AppendValues(job, {Score(a, job, 100, 1, "Hibernating")}).ok());
  const std::string lock = absl::StrCat(
      "rapport.refresh.", db_.pool().options().database, ".refresh_jobs");
  absl::Notification held, release;
  std::atomic<bool> returned{false}, returned_while_held{false},
      waited_again{false};
  std::thread holder([&] {
    absl::Status s = db_.pool().Run([&](sql::Connection& c) -> absl::Status {
      std::unique_ptr<sql::Statement> st(c.createStatement());
      std::unique_ptr<sql::ResultSet> got(
          st->executeQuery(absl::StrCat("SELECT GET_LOCK('", lock, "', 0)")));
      EXPECT_TRUE(got->next() && got->getInt(1) == 1);
      held.Notify();
      // Held until the publication's first wait (NamedLock::kWaitSeconds)
      // has run out and it waits again: another GET_LOCK of its connection,
      // seen as the time of its statement starting over. Bounded, so that a
      // publication that gives up after one wait fails the test below rather
      // than hang it.
      std::unique_ptr<sql::PreparedStatement> waiting(c.prepareStatement(
          "SELECT TIME_MS FROM information_schema.PROCESSLIST WHERE ID <> "
          "CONNECTION_ID() AND DB = DATABASE() AND INFO LIKE '%GET_LOCK%'"));
      double last_ms = -1;
      const absl::Time give_up = absl::Now() + absl::Seconds(60);
      while (!waited_again && !release.HasBeenNotified() &&
             absl::Now() < give_up) {
        std::unique_ptr<sql::ResultSet> row(waiting->executeQuery());
        if (row->next()) {
          const double ms = row->getDouble(1);
          if (ms < last_ms) waited_again = true;
          last_ms = ms;
        }
        absl::SleepFor(absl::Milliseconds(50));
      }
      returned_while_held = returned.load();
      std::unique_ptr<sql::ResultSet> freed(
          st->executeQuery(absl::StrCat("SELECT RELEASE_LOCK('", lock, "')")));
      EXPECT_TRUE(freed->next());
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  held.WaitForNotification();
  absl::Status published = store_.PublishValueSet(job);
  returned = true;
  release.Notify();
  holder.join();
  // It waited for the lock, twice: it had not returned while the lock was
  // held.
  EXPECT_TRUE(waited_again.load());
  EXPECT_FALSE(returned_while_held.load());
  EXPECT_TRUE(published.ok()) << published;
  EXPECT_EQ(*store_.LiveSetJob(), job);
}

// An entity deleted (or merged away) leaves no values behind, in the live
// set or in the previous one (a scorecard's trend), whether or not there is
// a previous set yet.
TEST_F(ValueStoreTest, ADeletedEntityLeavesNoValuesInEitherSet) {
  const std::string a = AddCustomer(), b = AddCustomer(), c = AddCustomer();
  auto forget = [&](const std::vector<std::string>& ids) {
    return db_.pool().Run([&](sql::Connection& connection) {
      DeleteEntityValues(connection, customer::CustomerValueTables(), ids);
      return absl::OkStatus();
    });
  };
  const std::string job1 = RunningJob(), job2 = RunningJob();
  ASSERT_TRUE(store_.BeginValueSet(job1).ok());
  ASSERT_TRUE(store_
                  .AppendValues(job1, {Score(a, job1, 5000, 2, "At Risk"),
                                       Score(b, job1, 100, 1, "Hibernating"),
                                       Score(c, job1, 300, 1, "Hibernating")})
                  .ok());
  ASSERT_TRUE(store_.PublishValueSet(job1).ok());
  ASSERT_TRUE(store_.DropReplacedSet(job1).ok());
  ASSERT_TRUE(Tables("customer_scores_previous").empty());
  ASSERT_TRUE(forget({a}).ok());
  EXPECT_EQ(store_.GetValues({a, b, c})->size(), 2u);

  ASSERT_TRUE(store_.BeginValueSet(job2).ok());
  ASSERT_TRUE(store_
                  .AppendValues(job2, {Score(b, job2, 200, 1, "Hibernating"),
                                       Score(c, job2, 400, 1, "Hibernating")})
                  .ok());
  ASSERT_TRUE(store_.PublishValueSet(job2).ok());
  ASSERT_TRUE(store_.RetireReplacedSet(job2).ok());
  ASSERT_EQ(store_.GetPreviousValues({b, c})->size(), 2u);
  ASSERT_TRUE(forget({b}).ok());
  absl::StatusOr<std::vector<StoredValue>> live = store_.GetValues({a, b, c});
  absl::StatusOr<std::vector<StoredValue>> previous =
      store_.GetPreviousValues({a, b, c});
  ASSERT_TRUE(live.ok() && previous.ok());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].entity_id, c);
  ASSERT_EQ(previous->size(), 1u);
  EXPECT_EQ((*previous)[0].entity_id, c);
}

// A refresh that valued entities deleted, merged or erased while it ran
// published their values again: its catch-up finds them (a plain read) and
// deletes them, and leaves the live entities' values alone.
TEST_F(ValueStoreTest, ValuesOfEntitiesGoneDuringARefreshAreDropped) {
  const std::string live = AddCustomer(), merged = AddCustomer(),
                    erased = AddCustomer(), deleted = AddCustomer();
  const std::string job = RunningJob();
  ASSERT_TRUE(store_.BeginValueSet(job).ok());
  ASSERT_TRUE(
      store_
          .AppendValues(job, {Score(live, job, 100, 1, "Hibernating"),
                              Score(merged, job, 200, 1, "Hibernating"),
                              Score(erased, job, 300, 1, "Hibernating"),
                              Score(deleted, job, 400, 1, "Hibernating")})
          .ok());
  // Gone while the set was staged.
  Exec("UPDATE customers SET merged_into = ? WHERE id = ?", {live, merged});
  Exec("UPDATE customers SET erased_time_us = 1 WHERE id = ?", {erased});
  Exec("DELETE FROM customers WHERE id = ?", {deleted});
  ASSERT_TRUE(store_.PublishValueSet(job).ok());

  absl::StatusOr<std::vector<std::string>> gone =
      store_.DropValuesOfEntitiesGone();
  ASSERT_TRUE(gone.ok()) << gone.status();
  std::vector<std::string> sorted_gone = *gone;
  std::sort(sorted_gone.begin(), sorted_gone.end());
  std::vector<std::string> expected = {merged, erased, deleted};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(sorted_gone, expected);
  absl::StatusOr<std::vector<StoredValue>> left =
      store_.GetValues({live, merged, erased, deleted});
  ASSERT_TRUE(left.ok()) << left.status();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].entity_id, live);
  // Nothing more the second time.
  EXPECT_TRUE(store_.DropValuesOfEntitiesGone()->empty());
}

// A running job's heartbeat does not wait behind calls that hold every
// connection of the pool (for longer than a job may go without one, other
// replicas would end it as stopped): it has a connection of its own.
TEST_F(ValueStoreTest, AHeartbeatGoesThroughAPoolThatCallsHoldWhole) {
  RefreshJobRecord job;
  ASSERT_NO_FATAL_FAILURE(StartJob(&job));
  std::unique_ptr<MysqlPool> pool = db_.SmallPool(1, absl::Milliseconds(200));
  ASSERT_NE(pool, nullptr);
  MysqlValueStore small(pool.get(), customer::CustomerValueTables());
  absl::Notification held, release;
  std::thread call([&] {
    EXPECT_TRUE(pool->Run([&](sql::Connection&) {
                      held.Notify();
                      release.WaitForNotification();
                      return absl::OkStatus();
                    })
                    .ok());
  });
  held.WaitForNotification();
  const absl::Status busy = small.GetJob(job.id).status();
  const absl::Status beat = small.UpdateProgress(job.id, 3, 10, kAsOf + 5);
  release.Notify();
  call.join();
  EXPECT_TRUE(absl::IsResourceExhausted(busy)) << busy;  // the pool is full
  EXPECT_TRUE(beat.ok()) << beat;
  absl::StatusOr<RefreshJobRecord> got = store_.GetJob(job.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->heartbeat_time_us, kAsOf + 5);
  EXPECT_EQ(got->done, 3);
}

TEST_F(ValueStoreTest, JobsRecordProgressEndOnceAndGoStaleWithoutHeartbeat) {
  RefreshJobRecord job;
  job.request = std::string("\x0a\x00\x01", 3);  // bytes, not text
  ASSERT_NO_FATAL_FAILURE(StartJob(&job));
  EXPECT_TRUE(absl::IsNotFound(store_.GetJob(ids_.Next()).status()));
  ASSERT_TRUE(store_.UpdateProgress(job.id, 5, 10, kAsOf + 1).ok());
  RefreshJobRecord got = *store_.GetJob(job.id);
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_EQ(got.done, 5);
  EXPECT_EQ(got.total, 10);
  EXPECT_EQ(got.heartbeat_time_us, kAsOf + 1);
  EXPECT_EQ(got.request, job.request);
  EXPECT_EQ((*store_.LatestJob(JobState::kRunning))->id, job.id);
  EXPECT_FALSE(store_.LatestJob(JobState::kSucceeded)->has_value());
  EXPECT_FALSE(store_.LatestJobId(JobState::kSucceeded)->has_value());

  const std::string model("\x08\x05\x00\xff", 4);
  ASSERT_TRUE(store_.SetModels(job.id, model, "").ok());
  RefreshJobRecord end = job;
  end.state = JobState::kSucceeded;
  end.done = end.total = 10;
  end.end_time_us = kAsOf + 2;
  const audit::Event finished{.time_us = kAsOf + 2,
                              .actor = "user:a",
                              .rpc = "RefreshScores",
                              .resource = "refreshJobs/" + job.id,
                              .outcome = "succeeded"};
  ASSERT_TRUE(store_.FinishJob(end, finished).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.FinishJob(end, finished)));
  // Start and end are in the audit log, the refused second end is not.
  EXPECT_EQ(db_.Strings("SELECT outcome FROM audit_events WHERE resource = ? "
                        "ORDER BY id",
                        {"refreshJobs/" + job.id}),
            (std::vector<std::string>{"started", "succeeded"}));
  got = *store_.GetJob(job.id);
  EXPECT_EQ(got.state, JobState::kSucceeded);
  EXPECT_EQ(got.score_model, model);
  EXPECT_EQ(got.end_time_us, kAsOf + 2);
  EXPECT_EQ((*store_.LatestJob(JobState::kSucceeded))->id, job.id);
  EXPECT_EQ(*store_.LatestJobId(JobState::kSucceeded), job.id);

  // A running job whose heartbeat stopped ends FAILED, unless its set went
  // live (its replica stopped after publishing): then SUCCEEDED.
  RefreshJobRecord stale;
  stale.id = ids_.Next();
  stale.create_time_us = stale.heartbeat_time_us = kAsOf;
  stale.total = 7;
  ASSERT_TRUE(store_.CreateJob(stale, {.time_us = kAsOf}).ok());
  ASSERT_TRUE(store_.BeginValueSet(stale.id).ok());
  RefreshJobRecord fresh = stale;
  fresh.id = ids_.Next();
  fresh.heartbeat_time_us = kAsOf + 100;
  // One refresh at a time: a second running job is refused...
  EXPECT_TRUE(absl::IsFailedPrecondition(store_.CreateJob(fresh, {})));
  // ...so write the other running rows directly, as for two replicas' jobs
  // from before the check existed, to see that only stale ones end.
  const std::string fresh_id = RunningJob(kAsOf + 100);
  const std::string published = RunningJob(kAsOf);
  ASSERT_TRUE(store_.BeginValueSet(published).ok());
  ASSERT_TRUE(store_.PublishValueSet(published).ok());
  absl::StatusOr<std::vector<RefreshJobRecord>> ended = store_.EndStaleJobs(
      kAsOf + 50, kAsOf + 50, "the replica running it stopped", kAsOf + 60);
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->size(), 2u);
  got = *store_.GetJob(stale.id);
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_EQ(got.error, "the replica running it stopped");
  EXPECT_EQ(got.end_time_us, kAsOf + 60);
  got = *store_.GetJob(published);
  EXPECT_EQ(got.state, JobState::kSucceeded);
  EXPECT_EQ(got.error, "");
  EXPECT_EQ(got.done, 7);
  EXPECT_EQ(store_.GetJob(fresh_id)->state, JobState::kRunning);
  EXPECT_TRUE(
      store_.EndStaleJobs(kAsOf + 50, kAsOf + 50, "x", kAsOf + 70)->empty());
  // Each end by recovery is audited.
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE actor = "
                      "'system:recovery' AND rpc = 'RefreshScores'"),
            2);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE resource = ? "
                      "AND outcome = 'succeeded'",
                      {"refreshJobs/" + published}),
            1);
  // What the ended job staged is left for Differentiation::Recover to drop.
  std::vector<LeftoverSet> leftovers = *store_.LeftoverSets();
  EXPECT_EQ(leftovers.size(), 2u);  // stale's staged set, published's old one
}

// A job whose heartbeat is late but not stale ends only once its replica's
// hold on it is gone: the lock its heartbeats took, which the server frees
// when their connection closes (as at once when the process dies), so that
// a new refresh need not wait out stale_after.
TEST_F(ValueStoreTest, AJobWhoseReplicaLetGoEndsBeforeItIsStale) {
  RefreshJobRecord job;
  ASSERT_NO_FATAL_FAILURE(StartJob(&job));
  ASSERT_TRUE(store_.UpdateProgress(job.id, 2, 7, kAsOf + 10).ok());
  // A second replica's recovery: the heartbeat is older than the short
  // bound, but the job is held.
  MysqlValueStore other(&db_.pool(), customer::CustomerValueTables());
  absl::StatusOr<std::vector<RefreshJobRecord>> ended =
      other.EndStaleJobs(kAsOf, kAsOf + 20, "stopped", kAsOf + 21);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->empty());
  EXPECT_EQ(store_.GetJob(job.id)->state, JobState::kRunning);
  // Its replica lets go (its heartbeats' connection closes; the server
  // frees the lock as it notices, a moment later)...
  store_.HeartbeatsStopped();
  // ...but a heartbeat newer than the short bound still keeps it.
  ended = other.EndStaleJobs(kAsOf, kAsOf + 5, "stopped", kAsOf + 21);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->empty());
  // Older, the job ends once its lock has been found free twice, 3 s apart
  // (a replica that lost its connection for a moment takes it again).
  constexpr int64_t kSecond = 1'000'000;
  int64_t now = kAsOf + 22;
  const absl::Time let_go = absl::Now();
  for (int calls = 0; calls < 200; ++calls, now += kSecond) {
    ended = other.EndStaleJobs(kAsOf, kAsOf + 20, "stopped", now);
    ASSERT_TRUE(ended.ok()) << ended.status();
    if (!ended->empty()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(ended->size(), 1u);
  // Found free, then found free again 3 s later (by the clock).
  EXPECT_GE(absl::Now() - let_go, absl::Seconds(3));
  RefreshJobRecord got = *store_.GetJob(job.id);
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_EQ(got.error, "stopped");
  EXPECT_EQ(got.end_time_us, now);
  // Its replica, back, finds it ended.
  EXPECT_TRUE(
      absl::IsFailedPrecondition(store_.UpdateProgress(job.id, 3, 7, now + 1)));

  // A replica that beats again between the two looks keeps its job.
  RefreshJobRecord second;
  second.id = ids_.Next();
  second.create_time_us = second.heartbeat_time_us = now;
  ASSERT_TRUE(store_.CreateJob(second, {.time_us = now}).ok());
  ASSERT_TRUE(store_.UpdateProgress(second.id, 1, 7, now + 1).ok());
  store_.HeartbeatsStopped();
  const int64_t late = now + 30 * kSecond;  // heartbeat 29 s old: late
  for (int i = 0; i < 100; ++i) {           // until the lock is seen free
    ASSERT_TRUE(
        other.EndStaleJobs(now, late - 10 * kSecond, "stopped", late)->empty());
    if (db_.Count("SELECT IS_FREE_LOCK(?)",
                  {KeyedLockName("rapport.job.", db_.pool().options().database,
                                 "refresh_jobs", second.id)}) == 1) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(
      other.EndStaleJobs(now, late - 10 * kSecond, "stopped", late)->empty());
  // Its replica connects again and beats (its heartbeat still late).
  ASSERT_TRUE(store_.UpdateProgress(second.id, 2, 7, now + 2).ok());
  ended = other.EndStaleJobs(now, late - 10 * kSecond, "stopped",
                             late + 4 * kSecond);
  ASSERT_TRUE(ended.ok()) << ended.status();
  EXPECT_TRUE(ended->empty());
  EXPECT_EQ(store_.GetJob(second.id)->state, JobState::kRunning);

  // A job that beats without the lock (as a replica of an earlier version
  // does) between two looks is seen anew: it ends only once its heartbeat
  // has stood still between two looks 3 s apart.
  Exec("UPDATE refresh_jobs SET state = 3 WHERE id = ?", {second.id});
  const std::string unlocked = RunningJob(now + kSecond);
  const int64_t bound = now + 10 * kSecond;
  ASSERT_TRUE(other.EndStaleJobs(now, bound, "stopped", late)->empty());
  absl::SleepFor(absl::Milliseconds(3100));
  Exec("UPDATE refresh_jobs SET heartbeat_time_us = ? WHERE id = ?",
       {absl::StrCat(now + 2 * kSecond), unlocked});
  ASSERT_TRUE(other.EndStaleJobs(now, bound, "stopped", late)->empty());
  absl::SleepFor(absl::Milliseconds(3100));
  ended = other.EndStaleJobs(now, bound, "stopped", late);
  ASSERT_TRUE(ended.ok()) << ended.status();
  ASSERT_EQ(ended->size(), 1u);
  EXPECT_EQ((*ended)[0].id, unlocked);
}

// Two replicas asked to refresh at the same moment: one job runs, the other
// is refused, every time (the lock is held until the new job is committed).
TEST_F(ValueStoreTest, ReplicasStartingRefreshesTogetherStartOneJob) {
  for (int round = 0; round < 400; ++round) {
    Exec("UPDATE refresh_jobs SET state = 3 WHERE state = 1");
    absl::Status results[2];
    absl::Notification go;
    std::vector<std::thread> replicas;
    for (int r = 0; r < 2; ++r) {
      replicas.emplace_back([&, r] {
        MysqlValueStore replica(&db_.pool(), customer::CustomerValueTables());
        RefreshJobRecord job;
        job.id = ids_.Next();
        job.create_time_us = job.heartbeat_time_us = kAsOf;
        go.WaitForNotification();
        results[r] =
            replica.CreateJob(job, {.time_us = kAsOf,
                                    .actor = "user:a",
                                    .rpc = "RefreshScores",
                                    .resource = "refreshJobs/" + job.id,
                                    .outcome = "started"});
      });
    }
    go.Notify();
    for (std::thread& t : replicas) t.join();
    ASSERT_EQ(db_.Count("SELECT COUNT(*) FROM refresh_jobs WHERE state = 1"), 1)
        << "round " << round << ": " << results[0] << " / " << results[1];
    EXPECT_NE(results[0].ok(), results[1].ok())
        << results[0] << " / " << results[1];
    for (const absl::Status& s : results) {
      EXPECT_TRUE(s.ok() || absl::IsFailedPrecondition(s)) << s;
    }
  }
}

TEST_F(ValueStoreTest, SummaryAndExportCoverLiveCustomersInKeyOrder) {
  const std::string a = AddCustomer(), b = AddCustomer(), c = AddCustomer(),
                    merged = AddCustomer();
  Exec(
      "INSERT INTO customer_external_ids (source, external_id, customer_id) "
      "VALUES "
      "('shop', 'z-1', ?), ('shop', 'a-2', ?), ('crm', 'q', ?), "
      "('shop', 'zz-2', ?)",
      {a, b, c, a});
  const std::string job = RunningJob();
  ASSERT_TRUE(store_.BeginValueSet(job).ok());
  ASSERT_TRUE(store_
                  .AppendValues(job, {Score(a, job, 5001, 4, "Champions"),
                                      Score(b, job, 4000, 4, "Champions"),
                                      Score(c, job, 100, 1, "Hibernating"),
                                      Score(merged, job, 9999, 4, "Champions")})
                  .ok());
  ASSERT_TRUE(store_.PublishValueSet(job).ok());
  Exec("UPDATE customers SET merged_into = ? WHERE id = ?", {a, merged});

  absl::StatusOr<ValueTotals> summary = store_.Summarize();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->segments.size(), 2u);
  EXPECT_EQ(summary->segments[0].segment, "Champions");
  EXPECT_EQ(summary->segments[0].entities, 2);
  EXPECT_EQ(summary->segments[0].monetary, D("20.5"));
  EXPECT_EQ(summary->segments[0].value_hundredths_sum, 9001);
  ASSERT_EQ(summary->tiers.size(), 2u);
  EXPECT_EQ(summary->tiers[0].tier, 1);
  EXPECT_EQ(summary->tiers[1].tier, 4);
  EXPECT_EQ(summary->tiers[1].entities, 2);
  // All live values: the tiers' sum.
  EXPECT_EQ(summary->all.entities, 3);
  EXPECT_EQ(summary->all.monetary, D("30.75"));
  EXPECT_EQ(summary->all.cost_to_serve, D("4.5"));
  EXPECT_EQ(summary->all.profit, D("26.25"));
  EXPECT_EQ(summary->all.value_hundredths_sum, 9101);

  // By Rapport id, two at a time.
  std::vector<std::string> keys;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<StoredValue>> page =
        store_.ExportPage("", after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const StoredValue& s : *page) keys.push_back(s.entity_id);
    if (page->size() < 2) break;
    after = page->back().entity_id;
  }
  std::vector<std::string> live = {a, b, c};
  std::sort(live.begin(), live.end());
  EXPECT_EQ(keys, live);

  // By the shop's ids: only customers that have one, by those ids, each
  // customer once (by its first id: a holds z-1 and zz-2).
  absl::StatusOr<std::vector<StoredValue>> shop =
      store_.ExportPage("shop", "", 10);
  ASSERT_TRUE(shop.ok()) << shop.status();
  ASSERT_EQ(shop->size(), 2u);
  EXPECT_EQ((*shop)[0].entity_id, "a-2");
  EXPECT_EQ((*shop)[0].value_hundredths, 4000);
  EXPECT_EQ((*shop)[1].entity_id, "z-1");
  EXPECT_EQ((*shop)[1].value_hundredths, 5001);
  EXPECT_EQ(store_.ExportPage("shop", "a-2", 10)->size(), 1u);

  EXPECT_EQ(*facts_.ResolveEntity(merged), a);
  EXPECT_TRUE(absl::IsNotFound(facts_.ResolveEntity(ids_.Next()).status()));
}

}  // namespace
}  // namespace rapport::differentiation
