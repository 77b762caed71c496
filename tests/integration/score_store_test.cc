// MysqlScoreStore against a real MariaDB: which facts count (the window rule,
// merged and erased customers), stored value sets that replace each other at
// once, jobs and their heartbeats, summaries and exports.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "common/ids.h"
#include "services/customer/mysql_customer_store.h"
#include "services/customer/mysql_score_store.h"
#include "tests/support/mariadb.h"

namespace rapport::customer {
namespace {

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kAsOf = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

Decimal D(const char* text) { return *Decimal::Parse(text); }

class ScoreStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MysqlOptions> options =
        MysqlOptions::FromUri(testing::TestMariaDb::Shared().CreateDatabase());
    ASSERT_TRUE(options.ok());
    pool_ = *MysqlPool::Create(*options);
    ASSERT_TRUE(ApplyMigrations(*pool_, CustomerMigrations()).ok());
    store_ = std::make_unique<MysqlScoreStore>(pool_.get());
  }

  // Runs one prepared statement with string parameters.
  void Exec(const std::string& query, const std::vector<std::string>& params) {
    absl::Status s = pool_->Run([&](sql::Connection& c) -> absl::Status {
      std::unique_ptr<sql::PreparedStatement> st(c.prepareStatement(query));
      for (size_t i = 0; i < params.size(); ++i)
        st->setString(static_cast<int>(i + 1), params[i]);
      st->execute();
      return absl::OkStatus();
    });
    ASSERT_TRUE(s.ok()) << s << " in " << query;
  }

  // "name(col,col)" of each secondary index of `table`, in name order.
  std::vector<std::string> SecondaryIndexes(const std::string& table) {
    std::vector<std::string> out;
    absl::Status s = pool_->Run([&](sql::Connection& c) -> absl::Status {
      std::unique_ptr<sql::PreparedStatement> st(c.prepareStatement(
          "SELECT INDEX_NAME, GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) "
          "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
          "AND TABLE_NAME = ? AND INDEX_NAME <> 'PRIMARY' GROUP BY INDEX_NAME "
          "ORDER BY INDEX_NAME"));
      st->setString(1, table);
      std::unique_ptr<sql::ResultSet> rows(st->executeQuery());
      while (rows->next()) {
        out.push_back(absl::StrCat(std::string(rows->getString(1)), "(",
                                   std::string(rows->getString(2)), ")"));
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }

  std::string AddCustomer() {
    const std::string id = ids_.Next();
    Exec(
        "INSERT INTO customers (id, display_name, create_time_us, "
        "update_time_us) "
        "VALUES (?, 'c', 0, 0)",
        {id});
    return id;
  }
  void AddPurchase(const std::string& customer, int64_t time_us,
                   const std::string& amount) {
    Exec(
        "INSERT INTO purchases (id, customer_id, purchase_time_us, amount, "
        "currency, "
        "create_time_us) VALUES (?, ?, ?, ?, 'USD', 0)",
        {ids_.Next(), customer, std::to_string(time_us), amount});
  }
  void AddCost(const std::string& customer, int64_t time_us,
               const std::string& cost) {
    Exec(
        "INSERT INTO interactions (id, customer_id, channel, "
        "interaction_time_us, cost, "
        "create_time_us) VALUES (?, ?, 1, ?, ?, 0)",
        {ids_.Next(), customer, std::to_string(time_us), cost});
  }

  std::vector<CustomerFacts> Scan(const CountWindow& window, int batch_size) {
    std::vector<CustomerFacts> all;
    absl::Status s = store_->ScanFacts(
        window, batch_size, [&](std::vector<CustomerFacts>& b) {
          EXPECT_LE(static_cast<int>(b.size()), batch_size);
          for (size_t i = 1; i < b.size(); ++i)
            EXPECT_LT(b[i - 1].customer_id, b[i].customer_id);
          all.insert(all.end(), b.begin(), b.end());
          return absl::OkStatus();
        });
    EXPECT_TRUE(s.ok()) << s;
    // Batches come in any order (several connections scan at once).
    std::sort(all.begin(), all.end(),
              [](const CustomerFacts& x, const CustomerFacts& y) {
                return x.customer_id < y.customer_id;
              });
    return all;
  }

  StoredScore Score(const std::string& id, const std::string& model, int value,
                    int tier, const char* segment) {
    StoredScore s;
    s.customer_id = id;
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
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<MysqlScoreStore> store_;
};

TEST_F(ScoreStoreTest, FactsFollowTheWindowRuleAndSkipMergedCustomers) {
  const std::string a = AddCustomer(), b = AddCustomer(),
                    prospect = AddCustomer(), merged = AddCustomer(),
                    costs_only = AddCustomer();
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

  const CountWindow window{kAsOf, 30};
  std::vector<CustomerFacts> facts = Scan(window, 2);
  ASSERT_EQ(facts.size(), 4u);
  ASSERT_EQ(*store_->CountLiveCustomers(), 4);
  std::map<std::string, CustomerFacts> by_id;
  for (size_t i = 0; i < facts.size(); ++i) {
    if (i > 0) {
      EXPECT_NE(facts[i - 1].customer_id,
                facts[i].customer_id);  // each customer once
    }
    by_id[facts[i].customer_id] = facts[i];
  }
  EXPECT_EQ(by_id.count(merged), 0u);
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
  std::vector<CustomerFacts> all = Scan(CountWindow{kAsOf, std::nullopt}, 1000);
  ASSERT_EQ(all.size(), 4u);
  for (const CustomerFacts& f : all) {
    if (f.customer_id == a) {
      EXPECT_EQ(f.frequency, 4);
      EXPECT_EQ(f.monetary, D("111.600000001"));
      EXPECT_EQ(f.cost_to_serve, D("100.75"));
    }
    if (f.customer_id == b) {
      EXPECT_EQ(f.last_event_us, kAsOf - 400 * kDay);
    }
  }

  // Facts of chosen customers equal their rows of the scan; merged and
  // unknown ids are left out, and an id asked twice comes once.
  absl::StatusOr<std::vector<CustomerFacts>> some = store_->FactsOf(
      {prospect, a, merged, "01jd8x4r2c6n7m9p0q1r2s3t4v", costs_only, a},
      window);
  ASSERT_TRUE(some.ok()) << some.status();
  std::map<std::string, CustomerFacts> chosen;
  for (const CustomerFacts& f : *some) chosen[f.customer_id] = f;
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

TEST_F(ScoreStoreTest, PurchaseDaysSumADayAndFloorBeforeTheEpoch) {
  const std::string a = AddCustomer(), b = AddCustomer();
  AddPurchase(a, 3 * kDay + 5, "1.5");
  AddPurchase(a, 4 * kDay - 1, "2.25");  // the same UTC day
  AddPurchase(a, 4 * kDay, "4");
  AddPurchase(b, -1, "3");  // 1969-12-31
  std::vector<PurchaseDay> days;
  ASSERT_TRUE(store_
                  ->ScanPurchaseDays(CountWindow{10 * kDay, std::nullopt}, 1,
                                     [&](std::vector<PurchaseDay>& batch) {
                                       days.insert(days.end(), batch.begin(),
                                                   batch.end());
                                       return absl::OkStatus();
                                     })
                  .ok());
  std::map<std::pair<std::string, int64_t>, Decimal> got;
  for (const PurchaseDay& d : days) got[{d.customer_id, d.day}] = d.amount;
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ((got[{a, 3}]), D("3.75"));
  EXPECT_EQ((got[{a, 4}]), D("4"));
  EXPECT_EQ((got[{b, -1}]), D("3"));
}

TEST_F(ScoreStoreTest, APublishedSetReplacesTheOldOneAndADiscardedOneLeavesIt) {
  const std::string a = AddCustomer(), b = AddCustomer();
  const std::string job1 = ids_.Next(), job2 = ids_.Next(), job3 = ids_.Next();
  const std::vector<std::string> indexes = SecondaryIndexes("customer_scores");
  ASSERT_EQ(indexes.size(), 3u);
  ASSERT_TRUE(store_->BeginScoreSet(job1).ok());
  std::vector<StoredScore> first = {Score(a, job1, 5000, 2, "At Risk"),
                                    Score(b, job1, 100, 1, "Hibernating")};
  first[0].p_alive = 0.5;
  first[0].clv = 12.5;
  ASSERT_TRUE(store_->AppendScores(job1, first).ok());
  // Not visible before it is published.
  EXPECT_TRUE(store_->GetScores({a, b})->empty());
  ASSERT_TRUE(store_->PublishScoreSet(job1, kAsOf).ok());
  // The set was loaded without secondary indexes; published, it has them all.
  EXPECT_EQ(SecondaryIndexes("customer_scores"), indexes);
  absl::StatusOr<std::vector<StoredScore>> got = store_->GetScores({a, b});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);

  // A second set without b: b's old values go.
  ASSERT_TRUE(store_->BeginScoreSet(job2).ok());
  std::vector<StoredScore> many;
  for (int i = 0; i < 2500; ++i)
    many.push_back(Score(ids_.Next(), job2, i % 10001, 3, "Loyal"));
  many.push_back(Score(a, job2, 7000, 4, "Champions"));
  ASSERT_TRUE(store_->AppendScores(job2, many).ok());
  // b is re-scored (against job1's model) while job2 runs: publishing names
  // it, as its new value goes with the old set.
  StoredScore rescored_b = Score(b, job1, 200, 1, "Hibernating");
  rescored_b.score_time_us = kAsOf + 5;
  ASSERT_TRUE(store_->UpsertScores({rescored_b}).ok());
  absl::StatusOr<std::vector<std::string>> meanwhile =
      store_->PublishScoreSet(job2, kAsOf);
  ASSERT_TRUE(meanwhile.ok()) << meanwhile.status();
  EXPECT_EQ(*meanwhile, std::vector<std::string>{b});
  EXPECT_TRUE(store_->ScoredByOtherModels(job2)->empty());
  // One re-scored against job1's model just after the swap is found too.
  const std::string racing = AddCustomer();
  ASSERT_TRUE(
      store_->UpsertScores({Score(racing, job1, 300, 2, "Hibernating")}).ok());
  EXPECT_EQ(*store_->ScoredByOtherModels(job2),
            std::vector<std::string>{racing});
  got = store_->GetScores({a, b});
  ASSERT_EQ(got->size(), 1u);
  EXPECT_EQ((*got)[0].model_id, job2);
  EXPECT_EQ((*got)[0].value_hundredths, 7000);
  EXPECT_EQ((*got)[0].monetary, D("10.25"));
  EXPECT_FALSE((*got)[0].p_alive.has_value());

  // A discarded set changes nothing.
  ASSERT_TRUE(store_->BeginScoreSet(job3).ok());
  ASSERT_TRUE(
      store_->AppendScores(job3, {Score(a, job3, 1, 1, "Hibernating")}).ok());
  ASSERT_TRUE(store_->DiscardScoreSet(job3).ok());
  EXPECT_EQ(store_->GetScores({a})->at(0).model_id, job2);

  // An upsert replaces the values but keeps CLV figures it does not carry.
  StoredScore with_clv = Score(a, job2, 7100, 4, "Champions");
  with_clv.clv = 99.5;
  ASSERT_TRUE(store_->UpsertScores({with_clv}).ok());
  StoredScore rescored = Score(a, job2, 7200, 3, "Loyal Customers");
  rescored.recency_days.reset();
  ASSERT_TRUE(store_->UpsertScores({rescored}).ok());
  StoredScore after = store_->GetScores({a})->at(0);
  EXPECT_EQ(after.value_hundredths, 7200);
  EXPECT_EQ(after.segment, "Loyal Customers");
  EXPECT_FALSE(after.recency_days.has_value());
  EXPECT_EQ(after.clv, 99.5);
  // Customers without stored values get their first, several at once
  // (three rows, padded to a statement for four).
  const std::string c = AddCustomer();
  ASSERT_TRUE(store_
                  ->UpsertScores({Score(b, job2, 10, 1, "Hibernating"),
                                  Score(c, job2, 20, 2, "Hibernating"),
                                  Score(a, job2, 7300, 4, "Champions")})
                  .ok());
  EXPECT_EQ(store_->GetScores({b})->at(0).value_hundredths, 10);
  EXPECT_EQ(store_->GetScores({c})->at(0).value_hundredths, 20);
  EXPECT_EQ(store_->GetScores({a})->at(0).value_hundredths, 7300);
  EXPECT_EQ(store_->GetScores({a})->at(0).clv, 99.5);
}

TEST_F(ScoreStoreTest, JobsRecordProgressEndOnceAndGoStaleWithoutHeartbeat) {
  RefreshJobRecord job;
  job.id = ids_.Next();
  job.request = std::string("\x0a\x00\x01", 3);  // bytes, not text
  job.create_time_us = job.heartbeat_time_us = kAsOf;
  ASSERT_TRUE(store_->CreateJob(job).ok());
  EXPECT_TRUE(absl::IsNotFound(store_->GetJob(ids_.Next()).status()));
  ASSERT_TRUE(store_->UpdateProgress(job.id, 5, 10, kAsOf + 1).ok());
  RefreshJobRecord got = *store_->GetJob(job.id);
  EXPECT_EQ(got.state, JobState::kRunning);
  EXPECT_EQ(got.done, 5);
  EXPECT_EQ(got.total, 10);
  EXPECT_EQ(got.heartbeat_time_us, kAsOf + 1);
  EXPECT_EQ(got.request, job.request);
  EXPECT_EQ((*store_->LatestJob(JobState::kRunning))->id, job.id);
  EXPECT_FALSE(store_->LatestJob(JobState::kSucceeded)->has_value());
  EXPECT_FALSE(store_->LatestJobId(JobState::kSucceeded)->has_value());

  const std::string model("\x08\x05\x00\xff", 4);
  ASSERT_TRUE(store_->SetModels(job.id, model, "").ok());
  RefreshJobRecord end = job;
  end.state = JobState::kSucceeded;
  end.done = end.total = 10;
  end.end_time_us = kAsOf + 2;
  ASSERT_TRUE(store_->FinishJob(end).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->FinishJob(end)));
  got = *store_->GetJob(job.id);
  EXPECT_EQ(got.state, JobState::kSucceeded);
  EXPECT_EQ(got.score_model, model);
  EXPECT_EQ(got.end_time_us, kAsOf + 2);
  EXPECT_EQ((*store_->LatestJob(JobState::kSucceeded))->id, job.id);
  EXPECT_EQ(*store_->LatestJobId(JobState::kSucceeded), job.id);

  // A running job whose heartbeat stopped fails, and its staging table goes.
  RefreshJobRecord stale;
  stale.id = ids_.Next();
  stale.create_time_us = stale.heartbeat_time_us = kAsOf;
  ASSERT_TRUE(store_->CreateJob(stale).ok());
  ASSERT_TRUE(store_->BeginScoreSet(stale.id).ok());
  RefreshJobRecord fresh = stale;
  fresh.id = ids_.Next();
  fresh.heartbeat_time_us = kAsOf + 100;
  // One refresh at a time: a second running job is refused...
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->CreateJob(fresh)));
  // ...so write the second running row directly, as for two replicas' jobs
  // from before the check existed, to see that only the stale one fails.
  Exec(
      "INSERT INTO refresh_jobs (id, state, done, total, request, "
      "create_time_us, heartbeat_time_us) VALUES (?, 1, 0, 0, '', ?, ?)",
      {fresh.id, absl::StrCat(kAsOf), absl::StrCat(kAsOf + 100)});
  ASSERT_TRUE(store_
                  ->FailStaleJobs(kAsOf + 50, "the replica running it stopped",
                                  kAsOf + 60)
                  .ok());
  got = *store_->GetJob(stale.id);
  EXPECT_EQ(got.state, JobState::kFailed);
  EXPECT_EQ(got.error, "the replica running it stopped");
  EXPECT_EQ(store_->GetJob(fresh.id)->state, JobState::kRunning);
  EXPECT_FALSE(
      store_->AppendScores(stale.id, {Score(ids_.Next(), stale.id, 1, 1, "x")})
          .ok());
}

TEST_F(ScoreStoreTest, SummaryAndExportCoverLiveCustomersInKeyOrder) {
  const std::string a = AddCustomer(), b = AddCustomer(), c = AddCustomer(),
                    merged = AddCustomer();
  Exec(
      "INSERT INTO customer_external_ids (source, external_id, customer_id) "
      "VALUES "
      "('shop', 'z-1', ?), ('shop', 'a-2', ?), ('crm', 'q', ?)",
      {a, b, c});
  const std::string job = ids_.Next();
  ASSERT_TRUE(store_->BeginScoreSet(job).ok());
  ASSERT_TRUE(
      store_
          ->AppendScores(job, {Score(a, job, 5001, 4, "Champions"),
                               Score(b, job, 4000, 4, "Champions"),
                               Score(c, job, 100, 1, "Hibernating"),
                               Score(merged, job, 9999, 4, "Champions")})
          .ok());
  ASSERT_TRUE(store_->PublishScoreSet(job, kAsOf).ok());
  Exec("UPDATE customers SET merged_into = ? WHERE id = ?", {a, merged});

  absl::StatusOr<ScoreSummary> summary = store_->Summarize();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->segments.size(), 2u);
  EXPECT_EQ(summary->segments[0].segment, "Champions");
  EXPECT_EQ(summary->segments[0].customers, 2);
  EXPECT_EQ(summary->segments[0].revenue, D("20.5"));
  EXPECT_EQ(summary->segments[0].value_hundredths_sum, 9001);
  ASSERT_EQ(summary->tiers.size(), 2u);
  EXPECT_EQ(summary->tiers[0].tier, 1);
  EXPECT_EQ(summary->tiers[1].tier, 4);
  EXPECT_EQ(summary->tiers[1].customers, 2);

  // By Rapport id, two at a time.
  std::vector<std::string> keys;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<StoredScore>> page =
        store_->ExportPage("", after, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const StoredScore& s : *page) keys.push_back(s.customer_id);
    if (page->size() < 2) break;
    after = page->back().customer_id;
  }
  std::vector<std::string> live = {a, b, c};
  std::sort(live.begin(), live.end());
  EXPECT_EQ(keys, live);

  // By the shop's ids: only customers that have one, by those ids.
  absl::StatusOr<std::vector<StoredScore>> shop =
      store_->ExportPage("shop", "", 10);
  ASSERT_TRUE(shop.ok()) << shop.status();
  ASSERT_EQ(shop->size(), 2u);
  EXPECT_EQ((*shop)[0].customer_id, "a-2");
  EXPECT_EQ((*shop)[0].value_hundredths, 4000);
  EXPECT_EQ((*shop)[1].customer_id, "z-1");
  EXPECT_EQ((*shop)[1].value_hundredths, 5001);
  EXPECT_EQ(store_->ExportPage("shop", "a-2", 10)->size(), 1u);

  EXPECT_EQ(*store_->ResolveLiveCustomer(merged), a);
  EXPECT_TRUE(
      absl::IsNotFound(store_->ResolveLiveCustomer(ids_.Next()).status()));
}

}  // namespace
}  // namespace rapport::customer
