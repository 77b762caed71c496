// MysqlCustomerStore against a real MariaDB: what is stored, what is refused,
// what a retry returns, and that nothing half-written stays behind.
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/identity.h"
#include "common/ids.h"
#include "services/customer/customer_values.h"
#include "services/customer/mysql_customer_store.h"
#include "tests/support/at_once.h"
#include "tests/support/customer_rows.h"
#include "tests/support/database.h"
#include "tests/support/mariadb.h"

namespace rapport::customer {
namespace {

using testing::Ev;

class CustomerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = std::make_unique<testing::MigratedDatabase>(CustomerSchema());
    pool_ = &db_->pool();
    store_ = std::make_unique<MysqlCustomerStore>(pool_);
  }

  CustomerRecord NewCustomer(const std::string& name) {
    CustomerRecord r;
    r.id = ids_.Next();
    r.display_name = name;
    r.create_time_us = r.update_time_us = 1'700'000'000'000'000;
    return r;
  }

  PurchaseRecord NewPurchase(const std::string& customer,
                             const std::string& amount, int64_t time_us) {
    PurchaseRecord p;
    p.id = ids_.Next();
    p.customer_id = customer;
    p.amount = *Decimal::Parse(amount);
    p.currency = "USD";
    p.purchase_time_us = time_us;
    p.create_time_us = time_us;
    return p;
  }

  // `p` recorded under `request_id`, with the id the logic gives it.
  static CustomerStore::NewPurchase Keyed(PurchaseRecord p,
                                          const std::string& request_id) {
    p.id = KeyedId(kPurchaseRequestScope, request_id);
    return {std::move(p), {request_id, "h"}};
  }

  // RecordPurchase of `p` under `request_id`, as the logic would call it.
  absl::StatusOr<PurchaseRecord> RecordKeyed(PurchaseRecord p,
                                             const std::string& request_id) {
    CustomerStore::NewPurchase keyed = Keyed(std::move(p), request_id);
    return store_->RecordPurchase(keyed.purchase, keyed.request);
  }

  int64_t Count(const std::string& table) {
    return *pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
      std::unique_ptr<sql::Statement> s(c.createStatement());
      std::unique_ptr<sql::ResultSet> rs(
          s->executeQuery("SELECT COUNT(*) FROM " + table));
      rs->next();
      return rs->getInt64(1);
    });
  }

  IdGenerator ids_;
  std::unique_ptr<testing::MigratedDatabase> db_;
  MysqlPool* pool_ = nullptr;
  std::unique_ptr<MysqlCustomerStore> store_;
};

TEST_F(CustomerStoreTest, CreateThenGetReturnsEverythingStored) {
  CustomerRecord r = NewCustomer("Zoë Ünal");
  r.email = "Zoe@Example.com";
  r.phone = "+14155550100";
  r.external_ids = {{"crm", "42"}, {"shop", "a-7"}};
  r.attributes = {{"tier", "vip"}, {"lang", "fr"}};
  r.created_by = "user:ada";
  ASSERT_TRUE(store_->CreateCustomer(r, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<CustomerRecord> got = store_->GetCustomer(r.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name, "Zoë Ünal");
  EXPECT_EQ(got->email, "Zoe@Example.com");
  EXPECT_EQ(got->phone, "+14155550100");
  EXPECT_EQ(got->external_ids, r.external_ids);
  EXPECT_EQ(got->attributes, r.attributes);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->created_by, "user:ada");
  EXPECT_EQ(store_->GetCustomer(ids_.Next()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CustomerStoreTest,
       TakenIdentitiesAreAlreadyExistsNamingTheHolderAndLeaveNothing) {
  CustomerRecord first = NewCustomer("First");
  first.email = "same@example.com";
  first.phone = "+14155550100";
  first.external_ids = {{"crm", "1"}};
  ASSERT_TRUE(store_->CreateCustomer(first, {}, Ev("CreateCustomer")).ok());

  CustomerRecord by_email = NewCustomer("Second");
  by_email.email =
      "  SAME@example.COM";  // the same address, other case and spaces
  absl::Status s =
      store_->CreateCustomer(by_email, {}, Ev("CreateCustomer")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find(first.id), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("email"), absl::string_view::npos) << s;

  CustomerRecord by_phone = NewCustomer("Third");
  by_phone.phone = "+14155550100";
  EXPECT_NE(store_->CreateCustomer(by_phone, {}, Ev("CreateCustomer"))
                .status()
                .message()
                .find("phone"),
            absl::string_view::npos);

  // The row insert succeeds, the external id insert fails: the row must go too.
  CustomerRecord by_ext = NewCustomer("Fourth");
  by_ext.external_ids = {{"crm", "2"}, {"crm", "1"}};
  absl::Status ext =
      store_->CreateCustomer(by_ext, {}, Ev("CreateCustomer")).status();
  EXPECT_EQ(ext.code(), absl::StatusCode::kAlreadyExists);
  // Named by its source and holder, not by its (personal) id.
  EXPECT_EQ(ext.message(),
            "an external id from crm is already used by customer " + first.id);
  EXPECT_EQ(Count("customers"), 1);
  EXPECT_EQ(Count("customer_external_ids"), 1);
}

TEST_F(CustomerStoreTest,
       RetriedCreateReturnsTheFirstCustomerAndOtherContentIsRefused) {
  CustomerRecord r = NewCustomer("Ada");
  absl::StatusOr<CustomerRecord> first =
      store_->CreateCustomer(r, {"req-1", "hash-a"}, Ev("CreateCustomer"));
  ASSERT_TRUE(first.ok());
  CustomerRecord retry =
      NewCustomer("Ada");  // a retry computes a new id: it must not be used
  absl::StatusOr<CustomerRecord> again =
      store_->CreateCustomer(retry, {"req-1", "hash-a"}, Ev("CreateCustomer"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, r.id);
  absl::Status other =
      store_
          ->CreateCustomer(NewCustomer("Bob"), {"req-1", "hash-b"},
                           Ev("CreateCustomer"))
          .status();
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("customers"), 1);
  EXPECT_EQ(*store_->CustomerCreatedBy({"req-1", "hash-a"}), r.id);
  EXPECT_EQ(store_->CustomerCreatedBy({"req-1", "hash-b"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*store_->CustomerCreatedBy({"req-2", "hash-a"}), std::nullopt);
  // A customer created without a request id leaves no request behind.
  ASSERT_TRUE(
      store_->CreateCustomer(NewCustomer("Cy"), {}, Ev("CreateCustomer")).ok());
  EXPECT_EQ(Count("customers"), 2);
  EXPECT_EQ(Count("customer_create_requests"), 1);
}

// Retries of one creation racing each other, for a customer without any
// identity (no unique index of customers tells them apart): one is stored,
// and every retry answers with it.
TEST_F(CustomerStoreTest, ConcurrentRetriesOfOneCreationStoreItOnce) {
  const std::vector<std::string> ids = testing::AtOnce(8, [&](size_t) {
    absl::StatusOr<CustomerRecord> c = store_->CreateCustomer(
        NewCustomer("Ada"), {"create-1", "h"}, Ev("CreateCustomer"));
    return c.ok() ? c->id : std::string(c.status().message());
  });
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Count("customers"), 1);
  EXPECT_EQ(*store_->CustomerCreatedBy({"create-1", "h"}), ids[0]);
}

TEST_F(CustomerStoreTest, ConcurrentRetriesOfOnePurchaseStoreItOnce) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  const std::vector<std::string> ids = testing::AtOnce(8, [&](size_t) {
    CustomerStore::NewPurchase p0 =
        Keyed(NewPurchase(c.id, "10.00", 1'700'000'000'000'000), "purchase-1");
    absl::StatusOr<PurchaseRecord> p =
        store_->RecordPurchase(p0.purchase, p0.request);
    return p.ok() ? p->id : std::string(p.status().message());
  });
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Count("purchases"), 1);
}

// A merge that waits for an update of one of its customers reads that
// customer's attributes as the update left them: the merge brings back
// nothing the update removed.
TEST_F(CustomerStoreTest, AMergeReadsWhatAnUpdateItWaitedForLeft) {
  CustomerRecord one = NewCustomer("One"), two = NewCustomer("Two");
  // The merge locks in id order: the later id is the one it waits for,
  // after its first read.
  CustomerRecord& later = one.id > two.id ? one : two;
  CustomerRecord& earlier = one.id > two.id ? two : one;
  later.attributes = {{"x", "1"}, {"z", "2"}};
  earlier.attributes = {{"w", "3"}};
  for (const CustomerRecord& c : {one, two})
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  std::thread merger;
  absl::StatusOr<MergeResult> merged;
  ASSERT_TRUE(pool_
                  ->Transaction([&](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> st(c.createStatement());
                    std::unique_ptr<sql::ResultSet> locked(st->executeQuery(
                        absl::StrCat("SELECT id FROM customers WHERE id = '",
                                     later.id, "' FOR UPDATE")));
                    st->execute(absl::StrCat(
                        "DELETE FROM customer_attributes WHERE customer_id = '",
                        later.id, "' AND name = 'x'"));
                    merger = std::thread([&] {
                      merged = store_->MergeCustomers(
                          later.id, {earlier.id}, Ev("MergeCustomers", "t", 1),
                          false);
                    });
                    db_->AwaitWaitingStatement();
                    return absl::OkStatus();
                  })
                  .ok());
  merger.join();
  ASSERT_TRUE(merged.ok()) << merged.status();
  const std::map<std::string, std::string> want = {{"w", "3"}, {"z", "2"}};
  EXPECT_EQ(merged->primary.attributes, want);
  absl::StatusOr<CustomerRecord> stored = store_->GetCustomer(later.id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->attributes, want);
}

// An erasure that reaches a record merged since the caller read it erases
// nothing: the person's data moved with the merge, so the record left behind
// is refused, naming the customer to erase instead.
TEST_F(CustomerStoreTest, ErasingARecordMergedMeanwhileIsRefused) {
  CustomerRecord kept = NewCustomer("Ann"), dup = NewCustomer("Ann B");
  dup.email = "ann@example.com";
  for (const CustomerRecord& c : {kept, dup})
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_
                  ->MergeCustomers(kept.id, {dup.id},
                                   Ev("MergeCustomers", "t", 1), false)
                  .ok());
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  absl::Status erased = store_->EraseCustomer(dup.id, {"hash-dup"}, accept,
                                              Ev("EraseCustomer", "t", 2));
  EXPECT_EQ(erased.code(), absl::StatusCode::kFailedPrecondition) << erased;
  EXPECT_EQ(erased.message(),
            absl::StrCat("customer ", dup.id, " was merged into ", kept.id,
                         "; erase that one instead"));
  absl::StatusOr<CustomerRecord> after = store_->GetCustomer(kept.id);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->erased);
  EXPECT_EQ(after->email, "ann@example.com");
  EXPECT_EQ(Count("audit_events WHERE rpc = 'EraseCustomer'"), 0);
  EXPECT_EQ(Count("suppressed_identities"), 0);
}

// A batch of purchases: those of live customers go in together, every other
// one gets exactly the answer it would get alone, nothing is stored twice.
TEST_F(CustomerStoreTest, ABatchOfPurchasesAnswersEachAsAloneAndStoresOnce) {
  CustomerRecord a = NewCustomer("Ada"), b = NewCustomer("Bob"),
                 gone = NewCustomer("Gone"), dup = NewCustomer("Dup");
  for (const CustomerRecord& c : {a, b, gone, dup})
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(
      store_
          ->MergeCustomers(a.id, {dup.id}, Ev("MergeCustomers", "t", 1), false)
          .ok());
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  ASSERT_TRUE(
      store_->EraseCustomer(gone.id, {}, accept, Ev("EraseCustomer", "t", 2))
          .ok());

  // Seven new purchases of live customers, one each for an unknown, a merged
  // and an erased customer: one chunk of ten (padded to sixteen rows) where
  // the seven go in and the other three, nor any padding, do not.
  std::vector<CustomerStore::NewPurchase> batch;
  for (int i = 0; i < 7; ++i) {
    batch.push_back(Keyed(NewPurchase(i % 2 ? a.id : b.id, absl::StrCat(i), i),
                          absl::StrCat("batch-", i)));
  }
  batch.push_back({NewPurchase(ids_.Next(), "1", 1), {}});
  batch.push_back({NewPurchase(dup.id, "1", 1), {}});
  batch.push_back({NewPurchase(gone.id, "1", 1), {}});
  std::vector<absl::StatusOr<PurchaseRecord>> got =
      store_->RecordPurchases(batch);
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(got[i].ok()) << i << ": " << got[i].status();
    EXPECT_EQ(got[i]->id, batch[i].purchase.id);
  }
  EXPECT_EQ(got[7].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(got[8].status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(got[9].status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("purchases"), 7);

  // Retries of three of them in a batch with two new ones: the retries
  // answer with the purchases first recorded, the new ones go in.
  std::vector<CustomerStore::NewPurchase> again;
  for (int i : {0, 3, 6}) {
    again.push_back(
        Keyed(NewPurchase(batch[i].purchase.customer_id, absl::StrCat(i), i),
              batch[i].request.id));
  }
  again.push_back(Keyed(NewPurchase(a.id, "9", 9), "batch-new-1"));
  again.push_back(Keyed(NewPurchase(b.id, "9", 9), "batch-new-2"));
  got = store_->RecordPurchases(again);
  ASSERT_EQ(got.size(), 5u);
  EXPECT_EQ(got[0]->id, batch[0].purchase.id);
  EXPECT_EQ(got[1]->id, batch[3].purchase.id);
  EXPECT_EQ(got[2]->id, batch[6].purchase.id);
  EXPECT_EQ(got[3]->id, again[3].purchase.id);
  EXPECT_EQ(got[4]->id, again[4].purchase.id);
  EXPECT_EQ(Count("purchases"), 9);
  // The same request id twice in one batch is stored once.
  got = store_->RecordPurchases({Keyed(NewPurchase(a.id, "5", 5), "twice"),
                                 Keyed(NewPurchase(a.id, "5", 5), "twice")});
  ASSERT_TRUE(got[0].ok() && got[1].ok());
  EXPECT_EQ(got[0]->id, got[1]->id);
  EXPECT_EQ(Count("purchases"), 10);

  // A request id used before for a customer merged since, again with other
  // content, in a batch with a new purchase: the batch leaves the merged
  // customer's purchase out and finds its id stored, which must not count
  // as inserted; it is refused as alone, and the first content stays.
  CustomerRecord later = NewCustomer("Later");
  ASSERT_TRUE(store_->CreateCustomer(later, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(RecordKeyed(NewPurchase(later.id, "7", 7), "before-merge").ok());
  ASSERT_TRUE(store_
                  ->MergeCustomers(a.id, {later.id},
                                   Ev("MergeCustomers", "t", 3), false)
                  .ok());
  CustomerStore::NewPurchase changed =
      Keyed(NewPurchase(later.id, "700", 7), "before-merge");
  changed.request.hash = "other";
  got = store_->RecordPurchases(
      {changed, Keyed(NewPurchase(b.id, "3", 3), "after-merge")});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].status().code(), absl::StatusCode::kInvalidArgument)
      << got[0].status();
  ASSERT_TRUE(got[1].ok()) << got[1].status();
  EXPECT_EQ(Count("purchases"), 12);
  absl::StatusOr<PurchaseRecord> kept = store_->RecordPurchase(
      Keyed(NewPurchase(later.id, "7", 7), "before-merge").purchase,
      {"before-merge", "h"});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->amount.ToString(), "7.00");
}

TEST_F(CustomerStoreTest, PurchasesKeepExactAmountsAndPageInTimeOrder) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  const std::vector<std::string> amounts = {"0.000000001", "-12.50",
                                            "99999999999.99", "0"};
  for (size_t i = 0; i < amounts.size(); ++i) {
    ASSERT_TRUE(
        store_
            ->RecordPurchase(NewPurchase(c.id, amounts[i], 1000 * (4 - i)), {})
            .ok());
  }
  CustomerStore::PurchaseQuery q;
  q.customer_id = c.id;
  q.limit = 3;
  absl::StatusOr<std::vector<PurchaseRecord>> page = store_->ListPurchases(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].amount.ToString(),
            "0.00");  // the latest recorded is the oldest
  EXPECT_EQ((*page)[1].amount.ToString(), "99999999999.99");
  EXPECT_EQ((*page)[2].amount.ToString(), "-12.50");
  q.after = std::make_pair((*page)[2].purchase_time_us, (*page)[2].id);
  absl::StatusOr<std::vector<PurchaseRecord>> rest = store_->ListPurchases(q);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].amount.ToString(), "0.000000001");

  CustomerStore::PurchaseQuery range;
  range.customer_id = c.id;
  range.start_time_us = 2000;
  range.end_time_us = 4000;  // end is exclusive
  EXPECT_EQ(store_->ListPurchases(range)->size(), 2u);

  CustomerStore::PurchaseQuery unknown;
  unknown.customer_id = ids_.Next();
  EXPECT_EQ(store_->ListPurchases(unknown).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->RecordPurchase(NewPurchase(unknown.customer_id, "1", 1), {})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CustomerStoreTest,
       UpdateRewritesIdentitiesAndAFailedMutationChangesNothing) {
  CustomerRecord c = NewCustomer("Ada");
  c.external_ids = {{"crm", "1"}};
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<CustomerRecord> updated = store_->UpdateCustomer(
      c.id,
      [](CustomerRecord& r) {
        r.display_name = "Ada K";
        r.external_ids = {{"shop", "9"}};
        return absl::OkStatus();
      },
      Ev("UpdateCustomer"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  absl::StatusOr<CustomerRecord> got = store_->GetCustomer(c.id);
  EXPECT_EQ(got->display_name, "Ada K");
  EXPECT_EQ(got->external_ids, (std::vector<ExternalIdRecord>{{"shop", "9"}}));

  absl::Status refused = store_
                             ->UpdateCustomer(
                                 c.id,
                                 [](CustomerRecord& r) {
                                   r.display_name = "Nope";
                                   return absl::AbortedError("etag");
                                 },
                                 Ev("UpdateCustomer"))
                             .status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->GetCustomer(c.id)->display_name, "Ada K");
}

// Migration 0008 moves create request ids out of customers: a database from
// before it keeps recognizing the requests that created its customers.
TEST_F(CustomerStoreTest, UpgradeTo0008KeepsTheRequestsThatCreatedCustomers) {
  absl::StatusOr<MysqlOptions> options =
      MysqlOptions::FromUri(testing::TestMariaDb::Shared().CreateDatabase());
  ASSERT_TRUE(options.ok());
  std::unique_ptr<MysqlPool> pool = *MysqlPool::Create(*options);
  std::vector<Migration> before;
  for (const Migration& m : CustomerMigrations()) {
    if (m.version < 8) before.push_back(m);
  }
  ASSERT_TRUE(ApplyMigrations(*pool, before).ok());
  const std::string with = ids_.Next(), without = ids_.Next();
  ASSERT_TRUE(pool->Run([&](sql::Connection& c) -> absl::Status {
                    std::unique_ptr<sql::Statement> s(c.createStatement());
                    s->execute(absl::StrCat(
                        "INSERT INTO customers (id, display_name, "
                        "create_time_us, update_time_us, create_request_id, "
                        "create_request_hash) VALUES ('",
                        with, "', 'A', 1, 1, 'req-old', 'hash-old'), ('",
                        without, "', 'B', 1, 1, NULL, NULL)"));
                    return absl::OkStatus();
                  })
                  .ok());
  absl::StatusOr<int> applied = ApplyMigrations(*pool, CustomerMigrations());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied,
            static_cast<int>(CustomerMigrations().size() - before.size()));
  MysqlCustomerStore store(pool.get());
  EXPECT_EQ(*store.CustomerCreatedBy({"req-old", "hash-old"}), with);
  // A retry of the old request answers with its customer; other content is
  // refused as before.
  CustomerRecord retry = NewCustomer("A");
  absl::StatusOr<CustomerRecord> again = store.CreateCustomer(
      retry, {"req-old", "hash-old"}, Ev("CreateCustomer"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, with);
  EXPECT_EQ(store
                .CreateCustomer(NewCustomer("C"), {"req-old", "other"},
                                Ev("CreateCustomer"))
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.GetCustomer(without)->display_name, "B");
}

// Consents are the proof of what a customer agreed to: a customer whose only
// records are consents (here on a duplicate merged into it) is not deleted
// with them unless asked.
TEST_F(CustomerStoreTest, DeleteNeedsForceWhenThereAreConsents) {
  CustomerRecord c = NewCustomer("Ada");
  CustomerRecord dup = NewCustomer("Ada L.");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(dup, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_
                  ->SetConsent(dup.id, {"marketing", 1, true, 100, "web"},
                               Ev("SetConsent"))
                  .ok());
  ASSERT_TRUE(
      store_
          ->MergeCustomers(c.id, {dup.id}, Ev("MergeCustomers", "t", 1), false)
          .ok());
  const int64_t history = Count("consent_history");
  ASSERT_GT(history, 0);
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  const absl::Status refused =
      store_->DeleteCustomer(c.id, false, accept, Ev("DeleteCustomer"));
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("has consent records; set force"),
            std::string::npos)
      << refused;
  EXPECT_EQ(Count("consent_history"), history);
  EXPECT_EQ(Count("customers"), 2);
  ASSERT_TRUE(
      store_->DeleteCustomer(c.id, true, accept, Ev("DeleteCustomer")).ok());
  EXPECT_EQ(Count("consent_history"), 0);
  EXPECT_EQ(Count("consents"), 0);
  EXPECT_EQ(Count("customers"), 0);
}

TEST_F(CustomerStoreTest, DeleteNeedsForceWhenThereArePurchases) {
  CustomerRecord c = NewCustomer("Ada");
  c.external_ids = {{"crm", "1"}};
  c.attributes = {{"k", "v"}};
  ASSERT_TRUE(
      store_->CreateCustomer(c, {"req-c", "h"}, Ev("CreateCustomer")).ok());
  // A duplicate merged into it goes with it, with the request that made it.
  CustomerRecord dup = NewCustomer("Ada L.");
  ASSERT_TRUE(
      store_->CreateCustomer(dup, {"req-dup", "h"}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(
      store_
          ->MergeCustomers(c.id, {dup.id}, Ev("MergeCustomers", "t", 1), false)
          .ok());
  ASSERT_TRUE(store_->RecordPurchase(NewPurchase(c.id, "5", 1), {}).ok());
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  EXPECT_EQ(
      store_->DeleteCustomer(c.id, false, accept, Ev("DeleteCustomer")).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("purchases"), 1);
  ASSERT_TRUE(
      store_->DeleteCustomer(c.id, true, accept, Ev("DeleteCustomer")).ok());
  EXPECT_EQ(Count("purchases"), 0);
  EXPECT_EQ(Count("customers"), 0);
  EXPECT_EQ(Count("customer_external_ids"), 0);
  EXPECT_EQ(Count("customer_attributes"), 0);
  EXPECT_EQ(Count("customer_create_requests"), 0);
  EXPECT_EQ(
      store_->DeleteCustomer(c.id, true, accept, Ev("DeleteCustomer")).code(),
      absl::StatusCode::kNotFound);
}

// Erasing or deleting a customer reads and locks its own records (and those
// merged into it) by key: a transaction holding another customer's row does
// not hold either up. Each audits the records merged into theirs too.
TEST_F(CustomerStoreTest, EraseAndDeleteLockOnlyTheirOwnRecords) {
  std::vector<CustomerRecord> made;
  // Bob first: his rows come before the others' in every index (ids of one
  // prefix sort by row; ids made within a millisecond need not), so that
  // only a read of rows that are not theirs reaches his.
  const std::string prefix = ids_.Next().substr(0, kRowIdPrefixSize);
  for (const char* name : {"Bob", "Ada", "Ada L.", "Cy", "Cy D."}) {
    made.push_back(NewCustomer(name));
    made.back().id = RowId(prefix, static_cast<int64_t>(made.size()));
    made.back().attributes = {{"k", "v"}};
    ASSERT_TRUE(store_
                    ->CreateCustomer(made.back(),
                                     {absl::StrCat("req-", made.size()), "h"},
                                     Ev("CreateCustomer"))
                    .ok());
  }
  const std::string& bob = made[0].id;
  const std::string& ada = made[1].id;
  const std::string& cy = made[3].id;
  ASSERT_TRUE(store_
                  ->MergeCustomers(ada, {made[2].id},
                                   Ev("MergeCustomers", "t", 1), false)
                  .ok());
  ASSERT_TRUE(store_
                  ->MergeCustomers(cy, {made[4].id},
                                   Ev("MergeCustomers", "t", 1), false)
                  .ok());
  // Many more customers, with attributes and create requests, after them
  // in every index: the tables are large enough for their indexes to be
  // what the optimizer reads (it scans a table of a few rows whole).
  db_->Exec(
      "INSERT INTO customers (id, display_name, create_time_us, "
      "update_time_us) SELECT CONCAT('z', LPAD(seq, 25, '0')), 'f', 1, 1 "
      "FROM seq_1_to_2000");
  db_->Exec(
      "INSERT INTO customer_attributes (customer_id, name, value) SELECT "
      "CONCAT('z', LPAD(seq, 25, '0')), 'k', 'v' FROM seq_1_to_2000");
  db_->Exec(
      "INSERT INTO customer_create_requests (request_id, request_hash, "
      "customer_id) SELECT CONCAT('f', seq), 'h', CONCAT('z', LPAD(seq, 25, "
      "'0')) FROM seq_1_to_2000");
  db_->Exec(
      "ANALYZE TABLE customers, customer_attributes, "
      "customer_create_requests, consent_history");
  // Each merged record's own audit trail says where it went.
  EXPECT_EQ(
      Count(absl::StrCat("audit_events WHERE rpc = 'MergeCustomers' AND "
                         "resource = 'customers/",
                         made[4].id, "' AND details = 'merged into ", cy, "'")),
      1);
  absl::Notification locked, release;
  std::thread holder([&] {
    absl::StatusOr<int> held =
        pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int> {
          std::unique_ptr<sql::Statement> s(c.createStatement());
          s->execute("START TRANSACTION");
          // Bob's row and his child rows of the tables an erasure and a
          // delete clear for the records merged into theirs.
          for (const char* table :
               {"customers WHERE id", "customer_attributes WHERE customer_id",
                "customer_create_requests WHERE customer_id"}) {
            std::unique_ptr<sql::ResultSet> rows(s->executeQuery(absl::StrCat(
                "SELECT 1 FROM ", table, " = '", bob, "' FOR UPDATE")));
            EXPECT_TRUE(rows->next()) << table;
          }
          locked.Notify();
          release.WaitForNotification();
          s->execute("ROLLBACK");
          return 0;
        });
    EXPECT_TRUE(held.ok()) << held.status();
  });
  locked.WaitForNotification();
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  absl::Status erased = store_->EraseCustomer(ada, {"hash-1"}, accept,
                                              Ev("EraseCustomer", "t", 9));
  absl::Status deleted =
      store_->DeleteCustomer(cy, true, accept, Ev("DeleteCustomer"));
  release.Notify();
  holder.join();
  EXPECT_TRUE(erased.ok()) << erased;
  EXPECT_TRUE(deleted.ok()) << deleted;
  EXPECT_EQ(Count("customers WHERE display_name = '(erased)'"), 2);
  // Ada and her duplicate, erased; Bob; the others.
  EXPECT_EQ(Count("customers"), 2003);
  EXPECT_EQ(Count("customer_attributes"), 2001);  // Bob's and the others'
  // And each merged record's audit trail says what became of it.
  EXPECT_EQ(Count(absl::StrCat("audit_events WHERE rpc = 'EraseCustomer' AND "
                               "resource = 'customers/",
                               made[2].id, "' AND details = 'erased with ", ada,
                               "'")),
            1);
  EXPECT_EQ(Count(absl::StrCat("audit_events WHERE rpc = 'DeleteCustomer' AND "
                               "resource = 'customers/",
                               made[4].id, "' AND details = 'deleted with ", cy,
                               "'")),
            1);
}

TEST_F(CustomerStoreTest, ListCustomersIsKeysetPagedById) {
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) {
    CustomerRecord c = NewCustomer(absl::StrCat("c", i));
    // Each with its own identities and attributes (none for the first).
    for (int k = 0; k < i; ++k) {
      c.external_ids.push_back(
          {absl::StrCat("src", k), absl::StrCat(i, "-", k)});
      c.attributes[absl::StrCat("a", k)] = absl::StrCat("v", i, k);
    }
    made.push_back(c.id);
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  }
  std::sort(made.begin(), made.end());
  auto first = store_->ListCustomers({}, std::nullopt, 3);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 3u);
  auto rest = store_->ListCustomers(
      {}, CustomerStore::ListCursor{first->back().first.id, 0}, 3);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].first.id, made.back());
  // A page holds each customer whole, as GetCustomer reads it.
  for (const auto* page : {&*first, &*rest}) {
    for (const auto& [listed, value] : *page) {
      absl::StatusOr<CustomerRecord> got = store_->GetCustomer(listed.id);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(listed.display_name, got->display_name);
      EXPECT_TRUE(listed.external_ids == got->external_ids);
      // Customer ci's identities are (srck, "i-k"): none of another's.
      for (const ExternalIdRecord& e : listed.external_ids)
        EXPECT_EQ(e.id.substr(0, 1), listed.display_name.substr(1, 1));
      EXPECT_EQ(listed.attributes, got->attributes);
      EXPECT_EQ(listed.attributes.size(), listed.external_ids.size());
      EXPECT_EQ(value, -1);  // not scored
    }
  }
}

// Stores a value row as a refresh would (the scores side owns the writing).
void StoreValue(MysqlPool& pool, const std::string& id,
                const std::string& segment, int tier, int value) {
  ASSERT_TRUE(
      pool.Run([&](sql::Connection& c) -> absl::Status {
            std::unique_ptr<sql::PreparedStatement> s(
                c.prepareStatement("INSERT INTO customer_scores (customer_id, "
                                   "model_id, frequency, monetary, "
                                   "r, f, m, segment, value_hundredths, "
                                   "cost_to_serve, profit, tier, "
                                   "score_time_us) VALUES (?, 'm', 1, 1, 1, 1, "
                                   "1, ?, ?, 0, 1, ?, 0)"));
            s->setString(1, id);
            s->setString(2, segment);
            s->setInt(3, value);
            s->setInt(4, tier);
            s->executeUpdate();
            return absl::OkStatus();
          })
          .ok());
}

TEST_F(CustomerStoreTest,
       ListCustomersFiltersBySegmentTierValueAndOrdersByValue) {
  std::vector<std::string> ids;
  const std::vector<std::tuple<std::string, int, int>> values = {
      {"Champions", 4, 9000},
      {"Champions", 3, 8000},
      {"At Risk", 2, 4000},
      {"Champions", 4, 9000},
      {"Hibernating", 1, 0}};
  for (const auto& [segment, tier, value] : values) {
    CustomerRecord c = NewCustomer("c");
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
    StoreValue(*pool_, c.id, segment, tier, value);
    ids.push_back(c.id);
  }
  CustomerRecord unscored = NewCustomer("unscored");
  ASSERT_TRUE(store_->CreateCustomer(unscored, {}, Ev("CreateCustomer")).ok());

  CustomerFilter champions;
  champions.segment = "Champions";
  EXPECT_EQ(store_->ListCustomers(champions, std::nullopt, 10)->size(), 3u);
  CustomerFilter gold;
  gold.tier = 3;
  ASSERT_EQ(store_->ListCustomers(gold, std::nullopt, 10)->size(), 1u);
  EXPECT_EQ(store_->ListCustomers(gold, std::nullopt, 10)->front().first.id,
            ids[1]);
  CustomerFilter range;
  range.min_value_hundredths = 4000;
  range.max_value_hundredths = 8000;
  EXPECT_EQ(store_->ListCustomers(range, std::nullopt, 10)->size(), 2u);
  EXPECT_EQ(store_->ListCustomers({}, std::nullopt, 10)->size(),
            6u);  // unscored included

  // By value, highest first, ties by id, paged with the (value, id) cursor.
  CustomerFilter by_value;
  by_value.by_value_desc = true;
  std::vector<int> seen;
  std::optional<CustomerStore::ListCursor> after;
  for (int page = 0; page < 5; ++page) {
    auto rows = store_->ListCustomers(by_value, after, 2);
    ASSERT_TRUE(rows.ok()) << rows.status();
    if (rows->empty()) break;
    for (const auto& [r, v] : *rows) seen.push_back(v);
    after =
        CustomerStore::ListCursor{rows->back().first.id, rows->back().second};
  }
  EXPECT_EQ(seen, (std::vector<int>{9000, 9000, 8000, 4000, 0}));
}

// A page by value reads the page's rows, not every scored customer: the
// values' index gives the order (value highest first, then id). One
// connection, so that its own counters say what the listing read.
TEST_F(CustomerStoreTest, APageByValueReadsOnlyItsRows) {
  testing::MigratedDatabase one(CustomerSchema(), /*pool_size=*/1);
  MysqlCustomerStore store(&one.pool());
  one.Exec(
      "INSERT INTO customers (id, display_name, create_time_us, "
      "update_time_us) SELECT LPAD(seq, 26, '0'), 'c', 1, 1 FROM "
      "seq_1_to_20000");
  one.Exec(
      "INSERT INTO customer_scores (customer_id, model_id, frequency, "
      "monetary, r, f, m, segment, value_hundredths, cost_to_serve, profit, "
      "tier, score_time_us) SELECT LPAD(seq, 26, '0'), 'm', 1, 1, 1, 1, 1, "
      "'s', seq % 5000, 0, 1, 1, 0 FROM seq_1_to_20000");
  one.Exec("ANALYZE TABLE customers, customer_scores");
  CustomerFilter by_value;
  by_value.by_value_desc = true;
  std::optional<CustomerStore::ListCursor> after;
  std::vector<std::pair<int, std::string>> seen;
  for (int page = 0; page < 2; ++page) {
    one.Exec("FLUSH STATUS");
    auto rows = store.ListCustomers(by_value, after, 10);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_EQ(rows->size(), 10u);
    EXPECT_LT(one.Count("SELECT VARIABLE_VALUE FROM "
                        "information_schema.SESSION_STATUS WHERE "
                        "VARIABLE_NAME = 'HANDLER_READ_NEXT'"),
              1000);
    for (const auto& [customer, value] : *rows)
      seen.emplace_back(-value, customer.id);
    after =
        CustomerStore::ListCursor{rows->back().first.id, rows->back().second};
  }
  // The best first (4999, four of them, down to 4995), ties by id.
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(seen.front().first, -4999);
  EXPECT_EQ(seen.back().first, -4995);
}

InteractionRecord NewInteraction(IdGenerator& ids, const std::string& customer,
                                 int64_t t) {
  InteractionRecord i;
  i.id = ids.Next();
  i.customer_id = customer;
  i.channel = 1;
  i.kind = "call";
  i.interaction_time_us = t;
  i.cost = *Decimal::Parse("2.50");
  i.note = "personal note";
  return i;
}

// More customers than one statement reads (256), ids repeated (also far
// apart) and unknown: each known customer comes back once, whole, with its
// external ids sorted by source and id whatever order they were given in.
TEST_F(CustomerStoreTest, GetCustomersReadsManyAtOnceEachWhole) {
  std::vector<std::string> asked;
  std::map<std::string, CustomerRecord> want;
  for (int i = 0; i < 300; ++i) {
    CustomerRecord c = NewCustomer(absl::StrCat("c", i));
    if (i % 3 == 0) {
      c.external_ids = {{"zeta", absl::StrCat(i)},
                        {"alpha", absl::StrCat("b", i)},
                        {"alpha", absl::StrCat("a", i)}};
      c.attributes = {{"k", absl::StrCat("v", i)}};
    }
    ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
    std::sort(c.external_ids.begin(), c.external_ids.end(),
              [](const ExternalIdRecord& a, const ExternalIdRecord& b) {
                return std::tie(a.source, a.id) < std::tie(b.source, b.id);
              });
    ASSERT_TRUE(c.external_ids.empty() || c.external_ids[0].id[0] == 'a');
    want[c.id] = c;
    asked.push_back(c.id);
    if (i % 50 == 0) asked.push_back(c.id);         // asked twice
    if (i % 70 == 0) asked.push_back(ids_.Next());  // unknown
  }
  asked.push_back(asked.front());  // in another statement than its first
  absl::StatusOr<std::vector<CustomerRecord>> got = store_->GetCustomers(asked);
  ASSERT_TRUE(got.ok()) << got.status();
  std::set<std::string> seen;
  for (const CustomerRecord& r : *got) {
    EXPECT_TRUE(seen.insert(r.id).second) << r.id << " came twice";
    ASSERT_EQ(want.count(r.id), 1u) << r.id;
    const CustomerRecord& w = want[r.id];
    EXPECT_EQ(r.display_name, w.display_name);
    EXPECT_EQ(r.version, 1);
    EXPECT_TRUE(r.external_ids == w.external_ids) << r.id;
    EXPECT_EQ(r.attributes, w.attributes);
  }
  EXPECT_EQ(seen.size(), want.size());
  EXPECT_TRUE(store_->GetCustomers({ids_.Next()})->empty());
}

TEST_F(CustomerStoreTest, MergeMovesEverythingInOneGoAndTheMergedIdResolves) {
  CustomerRecord primary = NewCustomer("Ada");
  primary.external_ids = {{"crm", "1"}};
  CustomerRecord dup = NewCustomer("Ada L.");
  dup.email = "ada@example.com";
  dup.phone = "+14155550100";
  dup.external_ids = {{"shop", "9"}};
  dup.attributes = {{"lang", "fr"}};
  ASSERT_TRUE(store_->CreateCustomer(primary, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(dup, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->RecordPurchase(NewPurchase(dup.id, "10", 1), {}).ok());
  ASSERT_TRUE(store_->RecordPurchase(NewPurchase(dup.id, "5", 2), {}).ok());
  ASSERT_TRUE(store_
                  ->LogInteraction(NewInteraction(ids_, dup.id, 3), {},
                                   std::nullopt, nullptr)
                  .ok());
  ASSERT_TRUE(store_
                  ->SetConsent(dup.id, {"marketing", 1, true, 100, "web"},
                               Ev("SetConsent"))
                  .ok());
  ASSERT_TRUE(store_
                  ->SetConsent(primary.id, {"marketing", 1, false, 50, "call"},
                               Ev("SetConsent"))
                  .ok());

  // A dry run reports the same counts and changes nothing.
  absl::StatusOr<MergeResult> dry = store_->MergeCustomers(
      primary.id, {dup.id}, Ev("MergeCustomers", "tester", 7), true);
  ASSERT_TRUE(dry.ok()) << dry.status();
  EXPECT_EQ(dry->moved_purchases, 2);
  EXPECT_EQ(dry->primary.email, "ada@example.com");
  EXPECT_EQ(*store_->ResolveCustomerId(dup.id), dup.id);
  EXPECT_EQ(store_->GetCustomer(primary.id)->email, "");
  EXPECT_EQ(Count("customer_merges"), 0);

  absl::StatusOr<MergeResult> merged = store_->MergeCustomers(
      primary.id, {dup.id}, Ev("MergeCustomers", "tester", 7), false);
  ASSERT_TRUE(merged.ok()) << merged.status();
  // A purchase for the merged id is refused as ABORTED, for the caller to
  // resolve the id and try again; nothing is written.
  EXPECT_EQ(RecordKeyed(NewPurchase(dup.id, "1", 9), "m1").status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(Count("purchases"), 2);
  // So is a consent: written to the merged record, no one would read it.
  EXPECT_EQ(store_
                ->SetConsent(dup.id, {"marketing", 1, false, 200, "call"},
                             Ev("SetConsent"))
                .code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(merged->moved_purchases, 2);
  EXPECT_EQ(merged->moved_interactions, 1);
  EXPECT_EQ(merged->moved_consents, 1);
  EXPECT_EQ(merged->moved_identities, 3);  // email, phone, shop:9
  EXPECT_EQ(*store_->ResolveCustomerId(dup.id), primary.id);
  absl::StatusOr<CustomerRecord> p = store_->GetCustomer(primary.id);
  EXPECT_EQ(p->email, "ada@example.com");
  EXPECT_EQ(p->phone, "+14155550100");
  EXPECT_EQ(p->external_ids.size(), 2u);
  EXPECT_EQ(p->attributes.at("lang"), "fr");
  CustomerStore::PurchaseQuery q;
  q.customer_id = primary.id;
  EXPECT_EQ(store_->ListPurchases(q)->size(), 2u);
  // The newer consent (granted at 100) won over the primary's (withdrawn at
  // 50).
  std::vector<ConsentRecord> consents = *store_->ListConsents(primary.id);
  ASSERT_EQ(consents.size(), 1u);
  EXPECT_TRUE(consents[0].granted);
  EXPECT_EQ(Count("customer_merges"), 1);
  // The identities now name the primary only.
  IdentityQuery by_email;
  by_email.email = "ADA@example.com";
  EXPECT_EQ(*store_->FindByIdentities(by_email),
            std::vector<std::string>{primary.id});
  // The same merge again (a retry whose answer was lost) answers with the
  // counts it recorded, and writes and audits nothing.
  const int64_t audited = Count("audit_events");
  absl::StatusOr<MergeResult> again = store_->MergeCustomers(
      primary.id, {dup.id}, Ev("MergeCustomers", "tester", 8), false);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->moved_purchases, 2);
  EXPECT_EQ(again->moved_interactions, 1);
  EXPECT_EQ(again->moved_consents, 1);
  EXPECT_EQ(again->moved_identities, 3);
  EXPECT_EQ(again->primary.version, p->version);
  EXPECT_EQ(store_->GetCustomer(primary.id)->version, p->version);
  EXPECT_EQ(Count("customer_merges"), 1);
  EXPECT_EQ(Count("audit_events"), audited);
  // A merged customer cannot be merged into another, nor merged again with
  // others.
  CustomerRecord third = NewCustomer("Third");
  ASSERT_TRUE(store_->CreateCustomer(third, {}, Ev("CreateCustomer")).ok());
  EXPECT_EQ(store_
                ->MergeCustomers(third.id, {dup.id},
                                 Ev("MergeCustomers", "t", 8), false)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_
                ->MergeCustomers(primary.id, {dup.id, third.id},
                                 Ev("MergeCustomers", "t", 8), false)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_
                ->MergeCustomers(primary.id, {ids_.Next()},
                                 Ev("MergeCustomers", "t", 8), false)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

// The email and phone of a duplicate whose primary keeps its own go on
// naming the primary: one record, whatever identity the person arrives with.
TEST_F(CustomerStoreTest,
       AMergedDuplicatesOwnEmailAndPhoneStillNameThePrimary) {
  CustomerRecord primary = NewCustomer("Ann");
  primary.email = "ann@home.example";
  primary.phone = "+14155550101";
  CustomerRecord dup = NewCustomer("Ann at work");
  dup.email = "ann@work.example";
  dup.phone = "+14155550102";
  ASSERT_TRUE(store_->CreateCustomer(primary, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(dup, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<MergeResult> merged = store_->MergeCustomers(
      primary.id, {dup.id}, Ev("MergeCustomers", "t", 1), false);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->primary.email, "ann@home.example");
  EXPECT_EQ(merged->moved_identities, 0);

  auto find = [&](const std::string& email, const std::string& phone) {
    IdentityQuery q;
    q.email = email;
    q.phone = phone;
    absl::StatusOr<std::vector<std::string>> ids = store_->FindByIdentities(q);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<std::string>{"(error)"};
  };
  const std::vector<std::string> just_primary = {primary.id};
  EXPECT_EQ(find("ANN@work.example", ""), just_primary);
  EXPECT_EQ(find("", "+14155550102"), just_primary);
  EXPECT_EQ(find("ann@home.example", "+14155550102"), just_primary);

  // No one else may take them; the refusal names the primary, not the
  // merged record.
  CustomerRecord other = NewCustomer("Other");
  other.email = "ann@work.example";
  absl::Status taken =
      store_->CreateCustomer(other, {}, Ev("CreateCustomer")).status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.message(), "email is already used by customer " + primary.id);
  other.email = "";
  other.phone = "+14155550102";
  taken = store_->CreateCustomer(other, {}, Ev("CreateCustomer")).status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(taken.message(), "phone is already used by customer " + primary.id);

  // The primary may make them its own; the email and phone it gives up are
  // free again.
  absl::StatusOr<CustomerRecord> updated = store_->UpdateCustomer(
      primary.id,
      [](CustomerRecord& r) {
        r.email = "Ann@Work.example";
        r.phone = "+14155550102";
        return absl::OkStatus();
      },
      Ev("UpdateCustomer"));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(store_->GetCustomer(primary.id)->email, "Ann@Work.example");
  EXPECT_EQ(find("ann@work.example", "+14155550102"), just_primary);
  EXPECT_TRUE(find("ann@home.example", "").empty());
  EXPECT_TRUE(find("", "+14155550101").empty());
  other.phone = "+14155550101";
  EXPECT_TRUE(store_->CreateCustomer(other, {}, Ev("CreateCustomer")).ok());

  // Erasing the person frees the merged record's identities with hers.
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  absl::StatusOr<std::vector<IdentityQuery>> kept =
      store_->MergedIdentities(primary.id);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].email, "ann@work.example");
  EXPECT_EQ((*kept)[0].phone, "+14155550102");
  ASSERT_TRUE(store_
                  ->EraseCustomer(primary.id, {"hash-ann"}, accept,
                                  Ev("EraseCustomer", "t", 2))
                  .ok());
  EXPECT_TRUE(find("ann@work.example", "+14155550102").empty());
}

// Emails stored before invisible characters at their ends were trimmed are
// trimmed, keys and all, so that the address as now normalised finds them,
// and audited; one whose trimmed address another customer holds stays as it
// was, and so does one with such a character inside.
TEST_F(CustomerStoreTest, StoredEmailsWithInvisibleEndsAreTrimmed) {
  struct Stored {
    const char* email;
    bool keyed;
  };
  const std::vector<Stored> stored = {{"Ada@Example.com\u00a0", true},
                                      {"bob@example.com\u200b", true},
                                      {"bob@example.com", true},
                                      {"\ufeffcy@example.com", false},
                                      {"d\u00a0d@example.com", true}};
  std::vector<std::string> ids;
  for (const Stored& s : stored) {
    ids.push_back(ids_.Next());
    db_->Exec(
        "INSERT INTO customers (id, display_name, email, email_key, "
        "email_match_key, create_time_us, update_time_us) VALUES (?, 'c', ?, "
        "IF(? = '1', LOWER(?), NULL), ?, 1, 1)",
        {ids.back(), s.email, s.keyed ? "1" : "0", s.email, s.email});
  }
  ASSERT_TRUE(ApplyMigrations(*pool_, {TrimmedEmailsMigration(9002)}).ok());
  auto row = [&](const std::string& id) {
    return db_->Strings(
        "SELECT CONCAT_WS('|', email, IFNULL(email_key, '-'), "
        "email_match_key) FROM customers WHERE id = ?",
        {id});
  };
  EXPECT_EQ(row(ids[0]), std::vector<std::string>{
                             absl::StrCat("Ada@Example.com|ada@example.com|",
                                          EmailMatchKey("Ada@Example.com"))});
  // Bob's trimmed address is another's: his email stays, his match key
  // shows the two as duplicates to merge.
  EXPECT_EQ(row(ids[1]), std::vector<std::string>{absl::StrCat(
                             "bob@example.com\u200b|bob@example.com\u200b|",
                             EmailMatchKey("bob@example.com"))});
  EXPECT_EQ(row(ids[3]),
            std::vector<std::string>{absl::StrCat(
                "cy@example.com|-|", EmailMatchKey("cy@example.com"))});
  EXPECT_EQ(row(ids[4]),
            std::vector<std::string>{"d\u00a0d@example.com|d\u00a0d@example."
                                     "com|d\u00a0d@example.com"});
  // The address as typed now finds her.
  EXPECT_EQ(db_->Strings("SELECT id FROM customers WHERE email_key = ?",
                         {"ada@example.com"}),
            std::vector<std::string>{ids[0]});
  // The customers whose email changed (Ada, Cy) have a new version, and an
  // audit event each, by the migration; the others neither. Ids made in one
  // millisecond do not sort in the order they were made.
  std::vector<std::string> changed = {ids[0], ids[3]};
  std::sort(changed.begin(), changed.end());
  EXPECT_EQ(db_->Strings("SELECT id FROM customers WHERE version = 2 ORDER BY "
                         "id"),
            changed);
  EXPECT_EQ(
      db_->Strings("SELECT CONCAT_WS('|', actor, rpc, resource, details) FROM "
                   "audit_events ORDER BY resource"),
      (std::vector<std::string>{
          absl::StrCat("system:migration|Migrate|customers/", changed[0],
                       "|email trimmed (migration 9002)"),
          absl::StrCat("system:migration|Migrate|customers/", changed[1],
                       "|email trimmed (migration 9002)")}));
}

// An email a merged record had, which the person gave up after the merge
// and someone else took, is the someone's: erasing the person does not
// suppress it. And an update is refused only for identities it adds.
TEST_F(CustomerStoreTest, AnIdentityGivenUpAfterAMergeIsNotTheErasedPersons) {
  store_->RefuseSuppressedIdentities([](const CustomerRecord& r) {
    std::vector<std::string> hashes;
    if (!r.email.empty()) hashes.push_back("email:" + r.email);
    return hashes;
  });
  CustomerRecord person = NewCustomer("Pat"), old = NewCustomer("Pat L");
  old.email = "pat@old.example";
  ASSERT_TRUE(store_->CreateCustomer(person, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(old, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<MergeResult> merged = store_->MergeCustomers(
      person.id, {old.id}, Ev("MergeCustomers", "t", 1), false);
  ASSERT_TRUE(merged.ok()) << merged.status();
  ASSERT_EQ(merged->primary.email, "pat@old.example");
  ASSERT_TRUE(store_
                  ->UpdateCustomer(
                      person.id,
                      [](CustomerRecord& r) {
                        r.email = "pat@new.example";
                        return absl::OkStatus();
                      },
                      Ev("UpdateCustomer"))
                  .ok());
  CustomerRecord next = NewCustomer("Next owner");
  next.email = "pat@old.example";
  ASSERT_TRUE(store_->CreateCustomer(next, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<std::vector<IdentityQuery>> kept =
      store_->MergedIdentities(person.id);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].email, "");

  // Suppressed all the same (as before this was fixed): the holder may still
  // change everything else; another customer may not take it.
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  ASSERT_TRUE(store_
                  ->EraseCustomer(person.id, {"email:pat@old.example"}, accept,
                                  Ev("EraseCustomer", "t", 2))
                  .ok());
  absl::StatusOr<CustomerRecord> renamed = store_->UpdateCustomer(
      next.id,
      [](CustomerRecord& r) {
        r.display_name = "Next owner, renamed";
        return absl::OkStatus();
      },
      Ev("UpdateCustomer"));
  EXPECT_TRUE(renamed.ok()) << renamed.status();
  CustomerRecord third = NewCustomer("Third");
  ASSERT_TRUE(store_->CreateCustomer(third, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_
                  ->UpdateCustomer(
                      next.id,
                      [](CustomerRecord& r) {
                        r.email = "";
                        return absl::OkStatus();
                      },
                      Ev("UpdateCustomer"))
                  .ok());
  absl::Status taken = store_
                           ->UpdateCustomer(
                               third.id,
                               [](CustomerRecord& r) {
                                 r.email = "pat@old.example";
                                 return absl::OkStatus();
                               },
                               Ev("UpdateCustomer"))
                           .status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kFailedPrecondition) << taken;
}

// Migration 2001 gives records merged before merges kept their identities
// their email and phone back, where no one has taken them since.
TEST_F(CustomerStoreTest, UpgradeTo2001GivesMergedRecordsTheirIdentities) {
  std::vector<Migration> before;
  for (const Migration& m : CustomerSchema()) {
    if (m.version < 2001) before.push_back(m);
  }
  testing::MigratedDatabase db(before);
  const std::string primary = ids_.Next(), merged = ids_.Next(),
                    taken = ids_.Next(), other = ids_.Next();
  db.Exec(
      "INSERT INTO customers (id, display_name, create_time_us, "
      "update_time_us) VALUES (?, 'P', 1, 1)",
      {primary});
  // As a merge left them: the email kept as text, the phone as merged_phone.
  for (const auto& [id, email, phone] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {merged, "Ann@Work.example", "+14155550102"},
           {taken, "bob@example.com", "+14155550103"}}) {
    db.Exec(
        "INSERT INTO customers (id, display_name, email, merged_phone, "
        "merged_into, create_time_us, update_time_us) VALUES (?, 'M', ?, "
        "?, ?, 1, 1)",
        {id, email, phone, primary});
  }
  // Since taken by someone else: left with them.
  db.Exec(
      "INSERT INTO customers (id, display_name, email, email_key, phone, "
      "create_time_us, update_time_us) VALUES (?, 'B', 'bob@example.com', "
      "'bob@example.com', '+14155550103', 1, 1)",
      {other});
  absl::StatusOr<int> applied = ApplyMigrations(db.pool(), CustomerSchema());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 2);  // and 2002, which finds no email to trim
  MysqlCustomerStore store(&db.pool());
  IdentityQuery by_email;
  by_email.email = "ann@work.example";
  EXPECT_EQ(*store.FindByIdentities(by_email),
            std::vector<std::string>{primary});
  IdentityQuery by_phone;
  by_phone.phone = "+14155550102";
  EXPECT_EQ(*store.FindByIdentities(by_phone),
            std::vector<std::string>{primary});
  IdentityQuery bob;
  bob.email = "bob@example.com";
  bob.phone = "+14155550103";
  EXPECT_EQ(*store.FindByIdentities(bob), std::vector<std::string>{other});
}

// A part of an earlier merge is not a retry of it: refused, and nothing
// written; the whole of it is.
TEST_F(CustomerStoreTest, APartOfAnEarlierMergeIsNotItsRetry) {
  CustomerRecord a = NewCustomer("A"), b = NewCustomer("B"),
                 c = NewCustomer("C");
  for (CustomerRecord* r : {&a, &b, &c}) {
    ASSERT_TRUE(store_->CreateCustomer(*r, {}, Ev("CreateCustomer")).ok());
  }
  ASSERT_TRUE(store_
                  ->MergeCustomers(a.id, {b.id, c.id},
                                   Ev("MergeCustomers", "t", 7), false)
                  .ok());
  const int64_t audited = Count("audit_events");
  EXPECT_EQ(
      store_->MergeCustomers(a.id, {b.id}, Ev("MergeCustomers", "t", 8), false)
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_
                  ->MergeCustomers(a.id, {c.id, b.id},
                                   Ev("MergeCustomers", "t", 9), false)
                  .ok());
  EXPECT_EQ(Count("audit_events"), audited);
  EXPECT_EQ(Count("customer_merges"), 2);
}

// A merge whose customer would hold more external ids than one customer may
// is refused, and changes nothing.
TEST_F(CustomerStoreTest, AMergePastTheLimitsIsRefused) {
  CustomerRecord primary = NewCustomer("Primary"), dup = NewCustomer("Dup");
  for (int i = 0; i < 15; ++i) {
    primary.external_ids.push_back({"crm", absl::StrCat("p", i)});
    dup.external_ids.push_back({"crm", absl::StrCat("d", i)});
  }
  ASSERT_TRUE(store_->CreateCustomer(primary, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(dup, {}, Ev("CreateCustomer")).ok());
  absl::Status refused =
      store_
          ->MergeCustomers(primary.id, {dup.id}, Ev("MergeCustomers", "t", 1),
                           false)
          .status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_NE(refused.message().find("30 external ids"), std::string::npos)
      << refused;
  EXPECT_EQ(*store_->ResolveCustomerId(dup.id), dup.id);
  EXPECT_EQ(store_->GetCustomer(primary.id)->external_ids.size(), 15u);
  EXPECT_EQ(Count("customer_merges"), 0);
}

// A name and postal code match whatever their spacing and case, and a ZIP+4
// matches its ZIP; another postal code does not.
TEST_F(CustomerStoreTest,
       NamePostalCodeDuplicatesIgnoreSpacingCaseAndZipPlus4) {
  const std::vector<std::pair<std::string, std::string>> people = {
      {"gina lee", "sw1a 1aa"}, {"Gina  Lee", "SW1A1AA"},
      {"Hank Moe", "94105"},    {"hank moe ", "94105-1234"},
      {"Hank Moe", "94107"},    {"Ivy Chen", "  "},
      {"Ivy Chen", ""}};
  std::vector<std::string> ids;
  for (const auto& [name, postal] : people) {
    CustomerRecord r = NewCustomer(name);
    r.postal_code = postal;
    ASSERT_TRUE(store_->CreateCustomer(r, {}, Ev("CreateCustomer")).ok());
    ids.push_back(r.id);
  }
  absl::StatusOr<std::vector<DuplicateGroupRecord>> groups =
      store_->FindDuplicates("", 10);
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 2u);
  std::map<std::string, std::set<std::string>> by_key;
  for (const DuplicateGroupRecord& g : *groups) {
    EXPECT_EQ(g.reason, "name_postal_code");
    by_key[g.key] = {g.customer_ids.begin(), g.customer_ids.end()};
  }
  EXPECT_EQ(by_key["gina lee|SW1A1AA"],
            (std::set<std::string>{ids[0], ids[1]}));
  EXPECT_EQ(by_key["hank moe|94105"], (std::set<std::string>{ids[2], ids[3]}));
}

TEST_F(CustomerStoreTest, FindDuplicatesGroupsMatchingEmailsAndNamePostalCode) {
  CustomerRecord a = NewCustomer("Ann Lee");
  a.email = "a.nn+news@gmail.com";
  a.postal_code = "12345";
  CustomerRecord b = NewCustomer("ann lee ");
  b.email = "ann@googlemail.com";
  b.postal_code = "12345";
  CustomerRecord c = NewCustomer("Someone Else");
  c.postal_code = "12345";
  for (CustomerRecord* r : {&a, &b, &c})
    ASSERT_TRUE(store_->CreateCustomer(*r, {}, Ev("CreateCustomer")).ok());
  absl::StatusOr<std::vector<DuplicateGroupRecord>> groups =
      store_->FindDuplicates("", 10);
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].reason, "email");
  EXPECT_EQ((*groups)[0].key, "ann@gmail.com");
  EXPECT_EQ((*groups)[1].reason, "name_postal_code");
  EXPECT_EQ((*groups)[1].customer_ids.size(), 2u);
  EXPECT_EQ(store_->FindDuplicates("email|ann@gmail.com", 10)->size(), 1u);

  // Two groups may show one key ("bo|7" in "1" and "bo" in "7|1" are not
  // the same people): a page that ends between them skips neither.
  std::vector<std::string> first, second;
  for (const auto& [name, postal] :
       std::vector<std::pair<std::string, std::string>>{
           {"Bo|7", "1"}, {"bo|7", "1"}, {"Bo", "7|1"}, {"bo", "7|1"}}) {
    CustomerRecord r = NewCustomer(name);
    r.postal_code = postal;
    ASSERT_TRUE(store_->CreateCustomer(r, {}, Ev("CreateCustomer")).ok());
    (postal == "1" ? first : second).push_back(r.id);
  }
  groups = store_->FindDuplicates("name_postal_code|ann lee|12345", 10);
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 2u);
  EXPECT_EQ((*groups)[0].key, "bo|7|1");
  EXPECT_EQ((*groups)[1].key, "bo|7|1");
  std::sort(first.begin(), first.end());  // same create time: by id
  std::sort(second.begin(), second.end());
  std::set<std::vector<std::string>> both = {(*groups)[0].customer_ids,
                                             (*groups)[1].customer_ids};
  EXPECT_EQ(both, (std::set<std::vector<std::string>>{first, second}));
  absl::StatusOr<std::vector<DuplicateGroupRecord>> next =
      store_->FindDuplicates(DuplicatesPageKey((*groups)[0]), 10);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].customer_ids, (*groups)[1].customer_ids);
}

TEST_F(CustomerStoreTest, EraseRemovesPersonalDataKeepsAmountsAndSuppresses) {
  CustomerRecord c = NewCustomer("Ada Lovelace");
  c.email = "ada@example.com";
  c.phone = "+14155550100";
  c.postal_code = "N1";
  c.external_ids = {{"crm", "1"}};
  c.attributes = {{"note", "likes tea"}};
  ASSERT_TRUE(
      store_->CreateCustomer(c, {"req-ada", "h"}, Ev("CreateCustomer")).ok());
  // The same person under a second record, merged into the first: the
  // erasure covers it too.
  CustomerRecord dup = NewCustomer("A. Lovelace");
  ASSERT_TRUE(
      store_->CreateCustomer(dup, {"req-dup", "h"}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(
      store_
          ->MergeCustomers(c.id, {dup.id}, Ev("MergeCustomers", "t", 1), false)
          .ok());
  // Someone else's request is not touched.
  CustomerRecord other = NewCustomer("Other");
  ASSERT_TRUE(
      store_->CreateCustomer(other, {"req-other", "h"}, Ev("CreateCustomer"))
          .ok());
  ASSERT_TRUE(RecordKeyed(NewPurchase(c.id, "12.34", 1), "r1").ok());
  ASSERT_TRUE(store_
                  ->LogInteraction(NewInteraction(ids_, c.id, 2), {},
                                   std::nullopt, nullptr)
                  .ok());
  ASSERT_TRUE(
      store_
          ->SetConsent(c.id, {"marketing", 1, true, 1, "web"}, Ev("SetConsent"))
          .ok());
  // The requests that created her records, for the erasure to suppress.
  EXPECT_EQ(*store_->CreateRequestsOf(c.id),
            (std::vector<std::string>{"req-ada", "req-dup"}));
  StoreValue(db_->pool(), c.id, "Champions", 4, 9000);
  StoreValue(db_->pool(), other.id, "Champions", 4, 8000);
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  ASSERT_TRUE(store_
                  ->EraseCustomer(c.id, {"hash-1", "hash-2"}, accept,
                                  Ev("EraseCustomer", "t", 99))
                  .ok());
  // Its value is gone, someone else's stays.
  EXPECT_EQ(db_->Strings("SELECT customer_id FROM customer_scores", {}),
            std::vector<std::string>{other.id});

  absl::StatusOr<CustomerRecord> erased = store_->GetCustomer(c.id);
  ASSERT_TRUE(erased.ok());
  EXPECT_TRUE(erased->erased);
  // A retry finds the work done: OK, and nothing moves or is audited again.
  const int64_t audited = Count("audit_events");
  ASSERT_TRUE(store_
                  ->EraseCustomer(c.id, {"hash-3"}, accept,
                                  Ev("EraseCustomer", "t", 199))
                  .ok());
  EXPECT_EQ(Count("audit_events"), audited);
  EXPECT_EQ(store_->GetCustomer(c.id)->version, erased->version);
  EXPECT_EQ(store_->GetCustomer(c.id)->update_time_us, erased->update_time_us);
  EXPECT_TRUE(store_->SuppressedAmong({"hash-3"})->empty());
  EXPECT_EQ(erased->display_name, "(erased)");
  EXPECT_EQ(erased->email, "");
  EXPECT_EQ(erased->phone, "");
  EXPECT_EQ(erased->postal_code, "");
  EXPECT_TRUE(erased->external_ids.empty());
  EXPECT_TRUE(erased->attributes.empty());
  // The request ids that created the person's records are forgotten.
  EXPECT_EQ(*store_->CustomerCreatedBy({"req-ada", "h"}), std::nullopt);
  EXPECT_EQ(*store_->CustomerCreatedBy({"req-dup", "h"}), std::nullopt);
  EXPECT_EQ(*store_->CustomerCreatedBy({"req-other", "h"}), other.id);
  EXPECT_TRUE(store_->ListConsents(c.id)->empty());
  // An erased person takes no new consent either (nothing is written).
  EXPECT_EQ(
      store_
          ->SetConsent(c.id, {"marketing", 1, true, 5, "web"}, Ev("SetConsent"))
          .code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->ListConsents(c.id)->empty());
  EXPECT_EQ((*store_->ListInteractions({c.id, std::nullopt, 10}))[0].note, "");
  EXPECT_EQ(
      (*store_->ListInteractions({c.id, std::nullopt, 10}))[0].cost.ToString(),
      "2.50");
  CustomerStore::PurchaseQuery q;
  q.customer_id = c.id;
  EXPECT_EQ((*store_->ListPurchases(q))[0].amount.ToString(), "12.34");
  // An erased customer takes no new purchase; a retry of an earlier one is
  // told that its customer was erased, and stores nothing. Its request hash
  // (of content that held the customer's identity) is gone, and so is its
  // request id (which may have been made of it).
  EXPECT_EQ(RecordKeyed(NewPurchase(c.id, "1", 3), "r2").status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::Status retried =
      RecordKeyed(NewPurchase(c.id, "12.34", 1), "r1").status();
  EXPECT_EQ(retried.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(retried.message(),
            absl::StrCat("request_id: ", CustomerStore::kErasedRequest));
  EXPECT_EQ(Count("purchases"), 1);
  for (const char* table : {"purchases", "interactions"}) {
    EXPECT_EQ(db_->Count(absl::StrCat("SELECT COUNT(*) FROM ", table,
                                      " WHERE request_hash <> 'erased' OR "
                                      "request_id IS NOT NULL")),
              0)
        << table;
  }
  EXPECT_EQ(*store_->SuppressedAmong({"hash-0", "hash-2"}),
            std::vector<std::string>{"hash-2"});
  // Many hashes at once (more than one statement's worth): the suppressed
  // ones are found wherever they stand, each once, and nothing else is.
  std::vector<std::string> many;
  for (int i = 0; i < 600; ++i) many.push_back(absl::StrCat("other-", i));
  many[0] = "hash-1";
  many[255] = "hash-2";
  many[256] = "hash-2";
  many[599] = "hash-1";
  absl::StatusOr<std::vector<std::string>> among =
      store_->SuppressedAmong(many);
  ASSERT_TRUE(among.ok()) << among.status();
  EXPECT_EQ(*among, (std::vector<std::string>{"hash-1", "hash-2"}));
  // The statements keep their last parameters between calls: a shorter call
  // padded to the same size must not see the earlier call's hashes.
  std::vector<std::string> first(100), second(70);
  for (int i = 0; i < 100; ++i) first[i] = absl::StrCat("first-", i);
  for (int i = 0; i < 70; ++i) second[i] = absl::StrCat("second-", i);
  first[90] = "hash-1";
  EXPECT_EQ(*store_->SuppressedAmong(first),
            std::vector<std::string>{"hash-1"});
  EXPECT_TRUE(store_->SuppressedAmong(second)->empty());
  // The identities are free again (for the suppression check to refuse them).
  IdentityQuery q2;
  q2.email = "ada@example.com";
  EXPECT_TRUE(store_->FindByIdentities(q2)->empty());

  // The store itself refuses them once told how to hash them, inside the
  // transaction that would write them (where an erasure that committed
  // after the caller's own check is seen).
  store_->RefuseSuppressedIdentities([](const CustomerRecord& r) {
    std::vector<std::string> out;
    if (!r.email.empty())
      out.push_back(r.email == "ada@example.com" ? "hash-1" : r.email);
    return out;
  });
  CustomerRecord again = NewCustomer("Ada again");
  again.email = "ada@example.com";
  const int64_t before = Count("customers");
  absl::Status refused =
      store_->CreateCustomer(again, {}, Ev("CreateCustomer")).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(Count("customers"), before);
  CustomerRecord bea = NewCustomer("Bea");
  bea.email = "bea@example.com";
  ASSERT_TRUE(store_->CreateCustomer(bea, {}, Ev("CreateCustomer")).ok());
  absl::Status update_refused = store_
                                    ->UpdateCustomer(
                                        bea.id,
                                        [](CustomerRecord& r) {
                                          r.email = "ada@example.com";
                                          return absl::OkStatus();
                                        },
                                        Ev("UpdateCustomer"))
                                    .status();
  EXPECT_TRUE(absl::IsFailedPrecondition(update_refused)) << update_refused;
  EXPECT_EQ(store_->GetCustomer(bea.id)->email, "bea@example.com");
}

TEST_F(CustomerStoreTest, InteractionsAreIdempotentByRequestIdAndPaged) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  // Under a request id, the logic makes the interaction's id from it.
  InteractionRecord first = NewInteraction(ids_, c.id, 10);
  first.id = KeyedId(kInteractionRequestScope, "i-1");
  absl::StatusOr<InteractionRecord> a =
      store_->LogInteraction(first, {"i-1", "h"}, std::nullopt, nullptr);
  absl::StatusOr<InteractionRecord> b =
      store_->LogInteraction(first, {"i-1", "h"}, std::nullopt, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->id, b->id);
  EXPECT_EQ(
      store_->LogInteraction(first, {"i-1", "other"}, std::nullopt, nullptr)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_
                  ->LogInteraction(NewInteraction(ids_, c.id, 20), {},
                                   std::nullopt, nullptr)
                  .ok());
  auto page =
      store_->ListInteractions({c.id, std::make_pair(int64_t{10}, a->id), 10});
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].interaction_time_us, 20);
  EXPECT_EQ(store_
                ->LogInteraction(NewInteraction(ids_, ids_.Next(), 1), {},
                                 std::nullopt, nullptr)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(
      store_->SetConsent(ids_.Next(), {"m", 1, true, 1, "w"}, Ev("SetConsent"))
          .code(),
      absl::StatusCode::kNotFound);
}

// Every change writes its audit event in its own transaction: a change that
// fails leaves no event, and the log pages newest first under its filters.
TEST_F(CustomerStoreTest, ChangesWriteTheirAuditEventsAndOnlyThey) {
  CustomerRecord ada = NewCustomer("Ada");
  ada.email = "ada@example.com";
  ASSERT_TRUE(store_
                  ->CreateCustomer(ada, {},
                                   {.time_us = 10,
                                    .actor = "alice",
                                    .rpc = "CreateCustomer",
                                    .resource = "customers/" + ada.id})
                  .ok());
  // Refused (the email is taken): no customer, no event.
  CustomerRecord clash = NewCustomer("Clash");
  clash.email = "ada@example.com";
  EXPECT_TRUE(absl::IsAlreadyExists(
      store_->CreateCustomer(clash, {}, Ev("CreateCustomer", "mallory", 11))
          .status()));
  ASSERT_TRUE(store_->RecordPurchase(NewPurchase(ada.id, "5", 12), {}).ok());
  const auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  // Refused (purchases and no force): nothing deleted, no event.
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->DeleteCustomer(
      ada.id, false, accept,
      {.time_us = 13, .actor = "bob", .rpc = "DeleteCustomer"})));
  ASSERT_TRUE(store_
                  ->UpdateCustomer(ada.id,
                                   [](CustomerRecord& r) {
                                     r.display_name = "Ada L.";
                                     return absl::OkStatus();
                                   },
                                   {.time_us = 14,
                                    .actor = "bob",
                                    .rpc = "UpdateCustomer",
                                    .resource = "customers/" + ada.id})
                  .ok());
  ASSERT_TRUE(store_
                  ->EraseCustomer(ada.id, {}, accept,
                                  {.time_us = 15,
                                   .actor = "alice",
                                   .rpc = "EraseCustomer",
                                   .resource = "customers/" + ada.id})
                  .ok());
  EXPECT_EQ(Count("audit_events"), 3);
  absl::StatusOr<std::vector<audit::Event>> all =
      store_->ListAuditEvents({}, std::nullopt, 10);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].rpc, "EraseCustomer");  // newest first
  EXPECT_EQ((*all)[2].rpc, "CreateCustomer");
  EXPECT_EQ((*all)[2].actor, "alice");
  // Filters and pages.
  absl::StatusOr<std::vector<audit::Event>> by_alice =
      store_->ListAuditEvents({.actor = "alice"}, std::nullopt, 1);
  ASSERT_EQ(by_alice->size(), 1u);
  EXPECT_EQ((*by_alice)[0].rpc, "EraseCustomer");
  by_alice = store_->ListAuditEvents(
      {.actor = "alice"},
      audit::Cursor{(*by_alice)[0].time_us, (*by_alice)[0].id}, 10);
  ASSERT_EQ(by_alice->size(), 1u);
  EXPECT_EQ((*by_alice)[0].rpc, "CreateCustomer");
  EXPECT_EQ(store_
                ->ListAuditEvents({.resource = "customers/" + ada.id,
                                   .since_us = 14,
                                   .before_us = 15},
                                  std::nullopt, 10)
                ->size(),
            1u);
  EXPECT_TRUE(
      store_->ListAuditEvents({.actor = "mallory"}, std::nullopt, 10)->empty());
}

// The tier's contact policy (`admit`) is asked for a new interaction only: a
// retry under its request id gets the stored one, even when the policy would
// now refuse it.
TEST_F(CustomerStoreTest, AnInteractionsRetryIsNotAskedToBeAdmittedAgain) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  InteractionRecord visit = NewInteraction(ids_, c.id, 3);
  int asked = 0;
  absl::Status answer = absl::OkStatus();
  auto admit = [&]() {
    ++asked;
    return answer;
  };
  const RequestKey key{"visit-1", "hash-1"};
  ASSERT_TRUE(store_->LogInteraction(visit, key, std::nullopt, admit).ok());
  EXPECT_EQ(asked, 1);
  answer = absl::FailedPreconditionError("the tier's policy refuses it now");
  absl::StatusOr<InteractionRecord> again =
      store_->LogInteraction(visit, key, std::nullopt, admit);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, visit.id);
  EXPECT_EQ(asked, 1);
  // A new one is refused, and nothing of it is stored.
  InteractionRecord call = NewInteraction(ids_, c.id, 4);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->LogInteraction(call, {"call-1", "hash-2"}, std::nullopt, admit)
          .status()));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(db_->Count("SELECT COUNT(*) FROM interactions"), 1);
}

// The log is append-only, for the service's own account too.
TEST_F(CustomerStoreTest, AuditEventsCannotBeChangedOrDeleted) {
  CustomerRecord c = NewCustomer("C");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  for (const char* statement :
       {"UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events"}) {
    absl::Status s = pool_->Run([&](sql::Connection& conn) -> absl::Status {
      std::unique_ptr<sql::Statement> st(conn.createStatement());
      st->execute(statement);
      return absl::OkStatus();
    });
    EXPECT_FALSE(s.ok()) << statement;
  }
  EXPECT_EQ(Count("audit_events"), 1);
  EXPECT_EQ(store_->ListAuditEvents({}, std::nullopt, 10)->at(0).actor, "test");
}

// Consent keeps its history; the consent captured last is the current one,
// whatever order the captures arrive in.
TEST_F(CustomerStoreTest, ConsentKeepsItsHistoryAndTheNewestCaptureWins) {
  CustomerRecord c = NewCustomer("C");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_
                  ->SetConsent(c.id, {"marketing", 1, true, 100, "web"},
                               Ev("SetConsent"))
                  .ok());
  ASSERT_TRUE(store_
                  ->SetConsent(c.id, {"marketing", 1, false, 200, "call"},
                               Ev("SetConsent"))
                  .ok());
  // A late, older grant (a retried form) stays history only.
  ASSERT_TRUE(store_
                  ->SetConsent(c.id, {"marketing", 1, true, 150, "paper"},
                               Ev("SetConsent"))
                  .ok());
  std::vector<ConsentRecord> now = *store_->ListConsents(c.id);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_FALSE(now[0].granted);
  EXPECT_EQ(now[0].capture_time_us, 200);
  EXPECT_EQ(now[0].source, "call");
  EXPECT_EQ(Count("consent_history"), 3);
  EXPECT_EQ(Count("audit_events"), 4);
  // Erasure takes the history with the consents.
  const auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  ASSERT_TRUE(
      store_->EraseCustomer(c.id, {}, accept, Ev("EraseCustomer")).ok());
  EXPECT_EQ(Count("consent_history"), 0);
}

// A customer holds at most kMaxConsents consents: one more (purpose, channel)
// is refused, naming the field, with nothing written; a change of one held
// is not. A merge that would hold more is refused whole.
TEST_F(CustomerStoreTest, ConsentsStayWithinWhatOneCustomerMayHold) {
  CustomerRecord full = NewCustomer("Full");
  CustomerRecord other = NewCustomer("Other");
  ASSERT_TRUE(store_->CreateCustomer(full, {}, Ev("CreateCustomer")).ok());
  ASSERT_TRUE(store_->CreateCustomer(other, {}, Ev("CreateCustomer")).ok());
  for (int i = 0; i < kMaxConsents; ++i) {
    ASSERT_TRUE(store_
                    ->SetConsent(full.id,
                                 {absl::StrCat("purpose-", i / 7), 1 + i % 7,
                                  true, 100, "web"},
                                 Ev("SetConsent"))
                    .ok())
        << i;
  }
  const int64_t history = Count("consent_history");
  absl::Status more = store_->SetConsent(
      full.id, {"one-more", 1, true, 100, "web"}, Ev("SetConsent"));
  EXPECT_EQ(more.code(), absl::StatusCode::kFailedPrecondition) << more;
  EXPECT_TRUE(absl::StartsWith(more.message(), "consent.purpose:")) << more;
  EXPECT_EQ(Count("consent_history"), history);
  EXPECT_EQ(store_->ListConsents(full.id)->size(),
            static_cast<size_t>(kMaxConsents));
  absl::Status change = store_->SetConsent(
      full.id, {"purpose-0", 1, false, 200, "call"}, Ev("SetConsent"));
  EXPECT_TRUE(change.ok()) << change;
  EXPECT_EQ(Count("consent_history"), history + 1);

  ASSERT_TRUE(store_
                  ->SetConsent(other.id, {"elsewhere", 1, true, 100, "web"},
                               Ev("SetConsent"))
                  .ok());
  absl::StatusOr<MergeResult> merged = store_->MergeCustomers(
      full.id, {other.id}, Ev("MergeCustomers", "tester", 7), false);
  EXPECT_EQ(merged.status().code(), absl::StatusCode::kFailedPrecondition)
      << merged.status();
  EXPECT_EQ(*store_->ResolveCustomerId(other.id), other.id);
  EXPECT_EQ(store_->ListConsents(other.id)->size(), 1u);
  EXPECT_EQ(store_->ListConsents(full.id)->size(),
            static_cast<size_t>(kMaxConsents));
}

// A retried SetConsent (its answer lost) records nothing twice, even with
// both copies in flight at once; a capture that differs in anything, the
// source's case included, is a capture of its own.
TEST_F(CustomerStoreTest, ARetriedConsentIsRecordedOnce) {
  CustomerRecord c = NewCustomer("C");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  const ConsentRecord consent{"marketing", 1, true, 100, "web"};
  const std::vector<absl::Status> results = testing::AtOnce(4, [&](size_t) {
    return store_->SetConsent(c.id, consent, Ev("SetConsent"));
  });
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  EXPECT_TRUE(store_->SetConsent(c.id, consent, Ev("SetConsent")).ok());
  EXPECT_EQ(Count("consent_history"), 1);
  EXPECT_EQ(Count("audit_events"), 2);  // the creation and one consent
  ASSERT_TRUE(store_
                  ->SetConsent(c.id, {"marketing", 1, true, 100, "Web"},
                               Ev("SetConsent"))
                  .ok());
  ASSERT_TRUE(store_
                  ->SetConsent(c.id, {"marketing", 1, false, 100, "web"},
                               Ev("SetConsent"))
                  .ok());
  EXPECT_EQ(Count("consent_history"), 3);
  EXPECT_EQ(Count("audit_events"), 4);
}

// Purchases and interactions carry who recorded them.
TEST_F(CustomerStoreTest, PurchasesAndInteractionsNameWhoRecordedThem) {
  CustomerRecord c = NewCustomer("C");
  ASSERT_TRUE(store_->CreateCustomer(c, {}, Ev("CreateCustomer")).ok());
  PurchaseRecord p = NewPurchase(c.id, "7.5", 5);
  p.recorded_by = "till-7";
  ASSERT_TRUE(store_->RecordPurchase(p, {}).ok());
  PurchaseRecord q = NewPurchase(c.id, "1", 6);
  PurchaseRecord r = NewPurchase(c.id, "2", 7);
  q.recorded_by = "shop";
  r.recorded_by = "crm";
  std::vector<absl::StatusOr<PurchaseRecord>> both =
      store_->RecordPurchases({{q, {}}, {r, {}}});
  ASSERT_TRUE(both[0].ok() && both[1].ok());
  std::vector<PurchaseRecord> listed =
      *store_->ListPurchases({.customer_id = c.id, .limit = 10});
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].recorded_by, "till-7");
  EXPECT_EQ(listed[1].recorded_by, "shop");
  EXPECT_EQ(listed[2].recorded_by, "crm");
  InteractionRecord i = NewInteraction(ids_, c.id, 3);
  i.recorded_by = "agent-3";
  ASSERT_TRUE(store_
                  ->LogInteraction(i, {},
                                   audit::Event{.time_us = 8,
                                                .actor = "agent-3",
                                                .rpc = "LogInteraction",
                                                .details = "force"},
                                   nullptr)
                  .ok());
  EXPECT_EQ(store_->ListInteractions({.customer_id = c.id})->at(0).recorded_by,
            "agent-3");
  // The forced one is audited with it.
  EXPECT_EQ(store_->ListAuditEvents({.actor = "agent-3"}, std::nullopt, 10)
                ->at(0)
                .details,
            "force");
}

}  // namespace
}  // namespace rapport::customer
