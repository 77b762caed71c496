// A refresh that dies at any step, on the customer service's real tables:
// the process running it is killed there (a forked child that _exits at the
// step), and a later start's Recover() leaves live values, models and job
// states that agree, with nothing left behind. Also: a database that the
// customer service's own migrations created before the shared kit upgrades
// in place, its stored values still readable.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/ids.h"
#include "common/proto_convert.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "rapport/scoring/v1/scoring_service.pb.h"
#include "services/customer/customer_values.h"
#include "services/customer/mysql_customer_store.h"
#include "tests/support/customer_rows.h"
#include "tests/support/database.h"
#include "tests/support/local_scoring.h"

namespace rapport::differentiation {
namespace {

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kAsOf = 1'700'000'000'000'000;  // 2023-11-14T22:13:20Z

const char* StepName(RefreshStep step) {
  switch (step) {
    case RefreshStep::kStarted:
      return "Started";
    case RefreshStep::kValuesStaged:
      return "ValuesStaged";
    case RefreshStep::kModelsStored:
      return "ModelsStored";
    case RefreshStep::kPublished:
      return "Published";
    case RefreshStep::kFinished:
      return "Finished";
    case RefreshStep::kCaughtUp:
      return "CaughtUp";
  }
  return "?";
}

// The customer service's differentiation on one database: what a replica
// runs, with the scoring logic in-process.
struct Replica {
  Replica(MysqlPool* pool, Differentiation::Clock clock,
          std::function<void(RefreshStep)> at_step = nullptr)
      : facts(pool, customer::CustomerCounterpartTables()),
        store(pool, customer::CustomerValueTables()),
        values(&facts, &store, &scoring, &ids, std::move(clock),
               {.batch_size = 7,
                .heartbeat = absl::Milliseconds(50),
                .recover_every = absl::ZeroDuration(),
                .at_step = std::move(at_step)}) {}

  // Starts a refresh as of kAsOf and waits for it; its final state.
  cv1::RefreshJob Refresh() {
    cv1::RefreshSettings settings;
    *settings.mutable_as_of() = ToTimestamp(kAsOf);
    absl::StatusOr<cv1::RefreshJob> started =
        values.StartRefresh(settings, "user:test");
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) return {};
    values.WaitForJobs();
    return *values.GetRefreshJob(started->id());
  }

  MysqlCounterpart facts;
  MysqlValueStore store;
  testing::LocalScoringClient scoring;
  IdGenerator ids;
  Differentiation values;
};

class RefreshRecoveryTest : public ::testing::TestWithParam<RefreshStep> {
 protected:
  RefreshRecoveryTest() : db_(customer::CustomerSchema()) {}

  std::string AddCustomer() { return testing::InsertCustomer(db_, ids_); }
  void AddPurchase(const std::string& customer, int64_t time_us,
                   const std::string& amount) {
    testing::InsertPurchase(db_, ids_, customer, time_us, amount);
  }

  // The value tables besides the live set and the previous set (kept on
  // purpose, for trends), in name order.
  std::vector<std::string> LeftoverTables() {
    return db_.Strings(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA "
        "= DATABASE() AND TABLE_NAME LIKE 'customer\\_scores%' AND "
        "TABLE_NAME <> 'customer_scores_previous' ORDER BY TABLE_NAME");
  }

  IdGenerator ids_;
  testing::MigratedDatabase db_;
};

TEST_P(RefreshRecoveryTest, ALaterStartLeavesValuesModelsAndJobsInAgreement) {
  const RefreshStep crash_at = GetParam();
  std::vector<std::string> customers;
  for (int i = 0; i < 30; ++i) {
    customers.push_back(AddCustomer());
    for (int k = 0; k <= i % 4; ++k) {
      AddPurchase(customers.back(), kAsOf - (i * 5 + k * 11) * kDay,
                  absl::StrCat(3 * i + k, ".25"));
    }
  }
  std::string first_job;
  {
    Replica replica(&db_.pool(), [] { return absl::Now(); });
    cv1::RefreshJob first = replica.Refresh();
    ASSERT_EQ(first.state(), cv1::RefreshJob::STATE_SUCCEEDED) << first.error();
    first_job = first.id();
  }
  // One customer was re-scored while the next refresh ran (its value is
  // newer than that refresh's start): the refresh must catch it up.
  const std::string busy = customers[4];
  db_.Exec(
      "UPDATE customer_scores SET score_time_us = 4102444800000000 WHERE "
      "customer_id = ?",
      {busy});
  AddPurchase(busy, kAsOf - kDay, "500");

  // The replica running the refresh dies at the step: no destructor, no
  // clean-up, its heartbeat stops with it.
  std::fflush(nullptr);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<MysqlOptions> options = MysqlOptions::FromUri(db_.uri());
    std::unique_ptr<MysqlPool> pool = *MysqlPool::Create(*options);
    Replica replica(
        pool.get(), [] { return absl::Now(); },
        [crash_at](RefreshStep step) {
          if (step == crash_at) _exit(0);
        });
    replica.Refresh();
    _exit(3);  // the refresh ended without reaching the step
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0) << "the child did not reach the step";
  const std::vector<std::string> running =
      db_.Strings("SELECT id FROM refresh_jobs WHERE state = 1");
  ASSERT_EQ(running.size(), crash_at < RefreshStep::kFinished ? 1u : 0u);

  // A later start, once the dead replica's heartbeat is old.
  const absl::Time later = absl::Now() + absl::Minutes(1);
  Replica replica(&db_.pool(), [later] { return later; });
  ASSERT_TRUE(replica.values.Recover().ok());

  EXPECT_TRUE(
      db_.Strings("SELECT id FROM refresh_jobs WHERE state = 1").empty());
  const std::vector<std::string> crashed =
      db_.Strings("SELECT id FROM refresh_jobs WHERE id <> ?", {first_job});
  ASSERT_EQ(crashed.size(), 1u);
  const RefreshJobRecord job = *replica.store.GetJob(crashed[0]);
  const bool published = crash_at >= RefreshStep::kPublished;
  EXPECT_EQ(job.state, published ? JobState::kSucceeded : JobState::kFailed);
  if (!published) {
    EXPECT_EQ(job.error,
              "its heartbeat stopped: the replica running it stopped, or lost "
              "the database");
  }
  const std::string live = published ? job.id : first_job;
  // The live values, the model that re-scores, and the job states agree.
  EXPECT_EQ(*replica.store.LiveSetJob(), live);
  EXPECT_EQ(*replica.store.LatestJobId(JobState::kSucceeded), live);
  EXPECT_TRUE(replica.store.ValuedByOtherModels(live)->empty());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM customer_scores"), 30);
  // Nothing is left behind.
  EXPECT_EQ(LeftoverTables(), std::vector<std::string>{"customer_scores"});
  EXPECT_TRUE(replica.store.LeftoverSets()->empty());

  // The customer re-scored meanwhile: once the new set is live, it is scored
  // again against the new model, its new purchase counted.
  const StoredValue value = replica.store.GetValues({busy})->at(0);
  EXPECT_EQ(value.model_id, live);
  if (published) {
    EXPECT_NE(value.score_time_us, job.create_time_us);
    EXPECT_LT(value.score_time_us, int64_t{4102444800000000});
    // 12.25 twenty days before as_of, and the new 500.
    EXPECT_EQ(value.frequency, 2);
    EXPECT_EQ(value.monetary.ToString(), "512.25");
  } else {
    EXPECT_EQ(value.score_time_us, int64_t{4102444800000000});
  }
  // Activity now is scored against the live model.
  AddPurchase(customers[9], kAsOf - kDay, "1.00");
  ASSERT_TRUE(replica.values.Rescore(customers[9]).ok());
  EXPECT_EQ(replica.store.GetValues({customers[9]})->at(0).model_id, live);
  // And the next refresh runs as usual.
  Replica next(&db_.pool(), [] { return absl::Now() + absl::Minutes(2); });
  cv1::RefreshJob after = next.Refresh();
  EXPECT_EQ(after.state(), cv1::RefreshJob::STATE_SUCCEEDED) << after.error();
  EXPECT_EQ(*next.store.LiveSetJob(), after.id());
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, RefreshRecoveryTest,
    ::testing::Values(RefreshStep::kStarted, RefreshStep::kValuesStaged,
                      RefreshStep::kModelsStored, RefreshStep::kPublished,
                      RefreshStep::kFinished, RefreshStep::kCaughtUp),
    [](const ::testing::TestParamInfo<RefreshStep>& info) {
      return std::string(StepName(info.param));
    });

// A customer database as the service's own migrations left it before the
// shared kit (a refresh job with its request and model, stored values):
// upgraded in place, its values, policies, job and summaries read as before.
TEST(ValueTablesUpgrade, ACustomerDatabaseFromBeforeTheKitKeepsItsValues) {
  testing::MigratedDatabase db(rapport::CustomerMigrations());
  IdGenerator ids;
  const std::string customer_id = ids.Next(), job_id = ids.Next();
  db.Exec(
      "INSERT INTO customers (id, display_name, create_time_us, "
      "update_time_us) VALUES (?, 'Ada', 0, 0)",
      {customer_id});
  // The bytes the customer service stored: its own request message and the
  // scoring service's model, whose enums were its own then.
  customer::v1::RefreshScoresRequest request;
  *request.mutable_as_of() = ToTimestamp(kAsOf);
  request.set_bins(5);
  request.set_window_days(365);
  scoring::v1::ScoreModel model;
  model.set_bins(5);
  *model.mutable_as_of() = ToTimestamp(kAsOf);
  cv1::ContactPolicy* gold = model.add_contact_policies();
  gold->set_tier(cv1::TIER_GOLD);
  gold->add_channels(cv1::CHANNEL_EMAIL);
  gold->add_channels(cv1::CHANNEL_EVENT);
  gold->set_service_level("priority");
  gold->mutable_cost_ceiling()->set_units(100);
  db.Exec(
      "INSERT INTO refresh_jobs (id, state, done, total, request, "
      "create_time_us, end_time_us, heartbeat_time_us, score_model) VALUES "
      "(?, 2, 1, 1, ?, ?, ?, ?, ?)",
      {job_id, request.SerializeAsString(), absl::StrCat(kAsOf),
       absl::StrCat(kAsOf + 5), absl::StrCat(kAsOf + 5),
       model.SerializeAsString()});
  db.Exec(
      "INSERT INTO customer_scores (customer_id, model_id, recency_days, "
      "frequency, monetary, r, f, m, segment, value_hundredths, "
      "cost_to_serve, profit, tier, p_alive, score_time_us) VALUES "
      "(?, ?, 3, 2, 19.990000000, 4, 3, 5, 'Loyal Customers', 7500, "
      "1.5, 18.49, 3, 0.75, ?)",
      {customer_id, job_id, absl::StrCat(kAsOf)});

  ASSERT_TRUE(ApplyMigrations(db.pool(), customer::CustomerSchema()).ok());
  Replica replica(&db.pool(), [] { return absl::Now(); });
  ASSERT_TRUE(replica.values.Recover().ok());

  absl::StatusOr<cv1::EntityValue> value = replica.values.GetValue(customer_id);
  ASSERT_TRUE(value.ok()) << value.status();
  EXPECT_EQ(value->entity_id(), customer_id);
  EXPECT_EQ(value->segment(), "Loyal Customers");
  EXPECT_EQ(value->value_hundredths(), 7500);
  EXPECT_EQ(value->monetary().units(), 19);
  EXPECT_EQ(value->monetary().nanos(), 990'000'000);
  EXPECT_EQ(value->tier(), cv1::TIER_GOLD);
  EXPECT_EQ(value->p_alive(), 0.75);
  EXPECT_EQ(value->model_id(), job_id);
  ASSERT_EQ(value->contact_policy().channels_size(), 2);
  EXPECT_EQ(value->contact_policy().channels(1), cv1::CHANNEL_EVENT);
  EXPECT_EQ(value->contact_policy().service_level(), "priority");
  absl::StatusOr<cv1::RefreshJob> job = replica.values.GetRefreshJob(job_id);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), cv1::RefreshJob::STATE_SUCCEEDED);
  EXPECT_EQ(job->request().window_days(), 365);
  EXPECT_EQ(job->request().as_of().seconds(), kAsOf / 1'000'000);
  absl::StatusOr<Differentiation::Summary> summary = replica.values.Summarize();
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_EQ(summary->tiers.size(), 1u);
  EXPECT_EQ(summary->tiers[0].name(), "Gold");
  EXPECT_EQ(summary->model_id, job_id);
  // The first refresh after the upgrade publishes a set that names its job.
  db.Exec(
      "INSERT INTO purchases (id, customer_id, purchase_time_us, amount, "
      "currency, create_time_us) VALUES (?, ?, ?, 5, 'USD', 0)",
      {ids.Next(), customer_id, absl::StrCat(kAsOf - kDay)});
  cv1::RefreshJob refreshed = replica.Refresh();
  ASSERT_EQ(refreshed.state(), cv1::RefreshJob::STATE_SUCCEEDED)
      << refreshed.error();
  EXPECT_EQ(*replica.store.LiveSetJob(), refreshed.id());
  EXPECT_EQ(replica.values.GetValue(customer_id)->model_id(), refreshed.id());
}

}  // namespace
}  // namespace rapport::differentiation
