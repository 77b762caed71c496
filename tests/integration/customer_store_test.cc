// MysqlCustomerStore against a real MariaDB: what is stored, what is refused,
// what a retry returns, and that nothing half-written stays behind.
#include "services/customer/mysql_customer_store.h"

#include <cppconn/resultset.h>
#include <cppconn/statement.h>
#include <gtest/gtest.h>

#include <thread>

#include "common/ids.h"
#include "tests/support/mariadb.h"

namespace rapport::customer {
namespace {

class CustomerStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MysqlOptions> options =
        MysqlOptions::FromUri(testing::TestMariaDb::Shared().CreateDatabase());
    ASSERT_TRUE(options.ok());
    pool_ = *MysqlPool::Create(*options);
    ASSERT_TRUE(ApplyMigrations(*pool_, CustomerMigrations()).ok());
    store_ = std::make_unique<MysqlCustomerStore>(pool_.get());
  }

  CustomerRecord NewCustomer(const std::string& name) {
    CustomerRecord r;
    r.id = ids_.Next();
    r.display_name = name;
    r.create_time_us = r.update_time_us = 1'700'000'000'000'000;
    return r;
  }

  PurchaseRecord NewPurchase(const std::string& customer, const std::string& amount,
                             int64_t time_us) {
    PurchaseRecord p;
    p.id = ids_.Next();
    p.customer_id = customer;
    p.amount = *Decimal::Parse(amount);
    p.currency = "USD";
    p.purchase_time_us = time_us;
    p.create_time_us = time_us;
    return p;
  }

  int64_t Count(const std::string& table) {
    return *pool_->Run([&](sql::Connection& c) -> absl::StatusOr<int64_t> {
      std::unique_ptr<sql::Statement> s(c.createStatement());
      std::unique_ptr<sql::ResultSet> rs(s->executeQuery("SELECT COUNT(*) FROM " + table));
      rs->next();
      return rs->getInt64(1);
    });
  }

  IdGenerator ids_;
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<MysqlCustomerStore> store_;
};

TEST_F(CustomerStoreTest, CreateThenGetReturnsEverythingStored) {
  CustomerRecord r = NewCustomer("Zoë Ünal");
  r.email = "Zoe@Example.com";
  r.phone = "+14155550100";
  r.external_ids = {{"crm", "42"}, {"shop", "a-7"}};
  r.attributes = {{"tier", "vip"}, {"lang", "fr"}};
  ASSERT_TRUE(store_->CreateCustomer(r, {}).ok());
  absl::StatusOr<CustomerRecord> got = store_->GetCustomer(r.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->display_name, "Zoë Ünal");
  EXPECT_EQ(got->email, "Zoe@Example.com");
  EXPECT_EQ(got->phone, "+14155550100");
  EXPECT_EQ(got->external_ids, r.external_ids);
  EXPECT_EQ(got->attributes, r.attributes);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(store_->GetCustomer(ids_.Next()).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CustomerStoreTest, TakenIdentitiesAreAlreadyExistsNamingTheHolderAndLeaveNothing) {
  CustomerRecord first = NewCustomer("First");
  first.email = "same@example.com";
  first.phone = "+14155550100";
  first.external_ids = {{"crm", "1"}};
  ASSERT_TRUE(store_->CreateCustomer(first, {}).ok());

  CustomerRecord by_email = NewCustomer("Second");
  by_email.email = "  SAME@example.COM";  // the same address, other case and spaces
  absl::Status s = store_->CreateCustomer(by_email, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(s.message().find(first.id), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("email"), absl::string_view::npos) << s;

  CustomerRecord by_phone = NewCustomer("Third");
  by_phone.phone = "+14155550100";
  EXPECT_NE(store_->CreateCustomer(by_phone, {}).status().message().find("phone"),
            absl::string_view::npos);

  // The row insert succeeds, the external id insert fails: the row must go too.
  CustomerRecord by_ext = NewCustomer("Fourth");
  by_ext.external_ids = {{"crm", "2"}, {"crm", "1"}};
  absl::Status ext = store_->CreateCustomer(by_ext, {}).status();
  EXPECT_EQ(ext.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(ext.message().find("crm:1"), absl::string_view::npos) << ext;
  EXPECT_EQ(Count("customers"), 1);
  EXPECT_EQ(Count("customer_external_ids"), 1);
}

TEST_F(CustomerStoreTest, RetriedCreateReturnsTheFirstCustomerAndOtherContentIsRefused) {
  CustomerRecord r = NewCustomer("Ada");
  absl::StatusOr<CustomerRecord> first = store_->CreateCustomer(r, {"req-1", "hash-a"});
  ASSERT_TRUE(first.ok());
  CustomerRecord retry = NewCustomer("Ada");  // a retry computes a new id: it must not be used
  absl::StatusOr<CustomerRecord> again = store_->CreateCustomer(retry, {"req-1", "hash-a"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id, r.id);
  absl::Status other = store_->CreateCustomer(NewCustomer("Bob"), {"req-1", "hash-b"}).status();
  EXPECT_EQ(other.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("customers"), 1);
}

TEST_F(CustomerStoreTest, ConcurrentRetriesOfOnePurchaseStoreItOnce) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}).ok());
  std::vector<std::thread> threads;
  std::vector<std::string> ids(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<PurchaseRecord> p = store_->RecordPurchase(
          NewPurchase(c.id, "10.00", 1'700'000'000'000'000), {"purchase-1", "h"});
      ids[i] = p.ok() ? p->id : std::string(p.status().message());
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_EQ(Count("purchases"), 1);
}

TEST_F(CustomerStoreTest, PurchasesKeepExactAmountsAndPageInTimeOrder) {
  CustomerRecord c = NewCustomer("Ada");
  ASSERT_TRUE(store_->CreateCustomer(c, {}).ok());
  const std::vector<std::string> amounts = {"0.000000001", "-12.50", "99999999999.99", "0"};
  for (size_t i = 0; i < amounts.size(); ++i) {
    ASSERT_TRUE(store_->RecordPurchase(NewPurchase(c.id, amounts[i], 1000 * (4 - i)), {}).ok());
  }
  CustomerStore::PurchaseQuery q;
  q.customer_id = c.id;
  q.limit = 3;
  absl::StatusOr<std::vector<PurchaseRecord>> page = store_->ListPurchases(q);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].amount.ToString(), "0.00");  // the latest recorded is the oldest
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
  EXPECT_EQ(store_->ListPurchases(unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->RecordPurchase(NewPurchase(unknown.customer_id, "1", 1), {}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CustomerStoreTest, UpdateRewritesIdentitiesAndAFailedMutationChangesNothing) {
  CustomerRecord c = NewCustomer("Ada");
  c.external_ids = {{"crm", "1"}};
  ASSERT_TRUE(store_->CreateCustomer(c, {}).ok());
  absl::StatusOr<CustomerRecord> updated = store_->UpdateCustomer(c.id, [](CustomerRecord& r) {
    r.display_name = "Ada K";
    r.external_ids = {{"shop", "9"}};
    return absl::OkStatus();
  });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  absl::StatusOr<CustomerRecord> got = store_->GetCustomer(c.id);
  EXPECT_EQ(got->display_name, "Ada K");
  EXPECT_EQ(got->external_ids, (std::vector<ExternalIdRecord>{{"shop", "9"}}));

  absl::Status refused = store_->UpdateCustomer(c.id, [](CustomerRecord& r) {
    r.display_name = "Nope";
    return absl::AbortedError("etag");
  }).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store_->GetCustomer(c.id)->display_name, "Ada K");
}

TEST_F(CustomerStoreTest, DeleteNeedsForceWhenThereArePurchases) {
  CustomerRecord c = NewCustomer("Ada");
  c.external_ids = {{"crm", "1"}};
  c.attributes = {{"k", "v"}};
  ASSERT_TRUE(store_->CreateCustomer(c, {}).ok());
  ASSERT_TRUE(store_->RecordPurchase(NewPurchase(c.id, "5", 1), {}).ok());
  auto accept = [](const CustomerRecord&) { return absl::OkStatus(); };
  EXPECT_EQ(store_->DeleteCustomer(c.id, false, accept).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count("purchases"), 1);
  ASSERT_TRUE(store_->DeleteCustomer(c.id, true, accept).ok());
  EXPECT_EQ(Count("purchases"), 0);
  EXPECT_EQ(Count("customers"), 0);
  EXPECT_EQ(Count("customer_external_ids"), 0);
  EXPECT_EQ(Count("customer_attributes"), 0);
  EXPECT_EQ(store_->DeleteCustomer(c.id, true, accept).code(), absl::StatusCode::kNotFound);
}

TEST_F(CustomerStoreTest, ListCustomersIsKeysetPagedById) {
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) {
    CustomerRecord c = NewCustomer("c");
    made.push_back(c.id);
    ASSERT_TRUE(store_->CreateCustomer(c, {}).ok());
  }
  std::sort(made.begin(), made.end());
  absl::StatusOr<std::vector<CustomerRecord>> first = store_->ListCustomers("", 3);
  ASSERT_EQ(first->size(), 3u);
  absl::StatusOr<std::vector<CustomerRecord>> rest = store_->ListCustomers(first->back().id, 3);
  ASSERT_EQ(rest->size(), 2u);
  EXPECT_EQ((*rest)[1].id, made.back());
}

}  // namespace
}  // namespace rapport::customer
