// CustomerLogic against an in-memory CustomerStore: validation, masks, etags,
// paging, and the request hashes that make retries safe.
#include "services/customer/customer_logic.h"

#include <gtest/gtest.h>

#include <map>

#include "common/status.h"

namespace rapport::customer {
namespace {

class FakeStore final : public CustomerStore {
 public:
  absl::StatusOr<CustomerRecord> CreateCustomer(const CustomerRecord& c,
                                                const RequestKey& request) override {
    ++writes;
    requests.push_back(request);
    customers[c.id] = c;
    return c;
  }
  absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("customer " + id + " not found");
    return it->second;
  }
  absl::StatusOr<std::vector<CustomerRecord>> ListCustomers(const std::string& after,
                                                            int limit) override {
    std::vector<CustomerRecord> out;
    for (auto it = customers.upper_bound(after); it != customers.end() && limit-- > 0; ++it) {
      out.push_back(it->second);
    }
    return out;
  }
  absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id, const std::function<absl::Status(CustomerRecord&)>& mutate) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("not found");
    CustomerRecord copy = it->second;
    if (absl::Status s = mutate(copy); !s.ok()) return s;
    ++writes;
    copy.version++;
    it->second = copy;
    return copy;
  }
  absl::Status DeleteCustomer(
      const std::string& id, bool force,
      const std::function<absl::Status(const CustomerRecord&)>& check) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("not found");
    if (absl::Status s = check(it->second); !s.ok()) return s;
    ++writes;
    customers.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<PurchaseRecord> RecordPurchase(const PurchaseRecord& p,
                                                const RequestKey& request) override {
    ++writes;
    requests.push_back(request);
    purchases.push_back(p);
    return p;
  }
  absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(const PurchaseQuery& q) override {
    last_query = q;
    std::vector<PurchaseRecord> out;
    for (const PurchaseRecord& p : purchases) {
      if (static_cast<int>(out.size()) == q.limit) break;
      if (q.after && std::make_pair(p.purchase_time_us, p.id) <= *q.after) continue;
      out.push_back(p);
    }
    return out;
  }

  int writes = 0;
  std::vector<RequestKey> requests;
  std::map<std::string, CustomerRecord> customers;
  std::vector<PurchaseRecord> purchases;
  PurchaseQuery last_query;
};

class CustomerLogicTest : public ::testing::Test {
 protected:
  CustomerLogicTest()
      : ids_([this] { return now_; }, [this] { return ++random_; }),
        logic_(&store_, &ids_, [this] { return now_; }, {.currency = "EUR"}) {}

  v1::Customer Create(const std::string& name) {
    v1::CreateCustomerRequest request;
    request.mutable_customer()->set_display_name(name);
    absl::StatusOr<v1::Customer> c = logic_.CreateCustomer(request);
    EXPECT_TRUE(c.ok()) << c.status();
    now_ += absl::Milliseconds(1);
    return c.value_or(v1::Customer());
  }

  static std::vector<std::string> Fields(const absl::Status& s) {
    std::vector<std::string> out;
    for (const FieldViolation& v : FieldViolations(s)) out.push_back(v.field);
    return out;
  }

  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
  uint64_t random_ = 0;
  FakeStore store_;
  IdGenerator ids_;
  CustomerLogic logic_;
};

TEST_F(CustomerLogicTest, CreateNormalisesIdentitiesAndStampsIdAndTimes) {
  v1::CreateCustomerRequest request;
  v1::Customer* c = request.mutable_customer();
  c->set_display_name("Ada Lovelace");
  c->set_email("  ada@example.com ");
  c->set_phone("+44 20 7946 0958");
  auto* ext = c->add_external_ids();
  ext->set_source("crm");
  ext->set_id("42");
  (*c->mutable_attributes())["tier"] = "vip";
  absl::StatusOr<v1::Customer> created = logic_.CreateCustomer(request);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(IsValidId(created->id()));
  EXPECT_EQ(created->email(), "ada@example.com");
  EXPECT_EQ(created->phone(), "+442079460958");
  EXPECT_EQ(created->create_time().seconds(), 1'700'000'000);
  EXPECT_EQ(created->etag(), CustomerEtag(1));
  EXPECT_EQ(created->attributes().at("tier"), "vip");
  EXPECT_EQ(store_.writes, 1);
}

TEST_F(CustomerLogicTest, BadCreateNamesEveryBadFieldAndWritesNothing) {
  v1::CreateCustomerRequest request;
  v1::Customer* c = request.mutable_customer();
  c->set_email("not-an-email");
  c->set_phone("12345");
  c->add_external_ids()->set_source("crm");  // id missing
  absl::Status s = logic_.CreateCustomer(request).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fields(s), (std::vector<std::string>{"customer.display_name", "customer.email",
                                                 "customer.phone", "customer.external_ids[0].id"}));
  EXPECT_EQ(store_.writes, 0);

  v1::CreateCustomerRequest missing;
  EXPECT_EQ(Fields(logic_.CreateCustomer(missing).status()),
            std::vector<std::string>{"customer"});
  v1::CreateCustomerRequest long_id;
  long_id.mutable_customer()->set_display_name("x");
  long_id.set_request_id(std::string(200, 'r'));
  EXPECT_EQ(Fields(logic_.CreateCustomer(long_id).status()),
            std::vector<std::string>{"request_id"});
  EXPECT_EQ(store_.writes, 0);
}

TEST_F(CustomerLogicTest, DuplicateExternalIdInOneRequestIsRejected) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("x");
  for (int i = 0; i < 2; ++i) {
    auto* e = request.mutable_customer()->add_external_ids();
    e->set_source("crm");
    e->set_id("1");
  }
  EXPECT_EQ(Fields(logic_.CreateCustomer(request).status()),
            std::vector<std::string>{"customer.external_ids[1]"});
}

TEST_F(CustomerLogicTest, RequestHashIgnoresRequestIdButNotContent) {
  v1::CreateCustomerRequest a;
  a.mutable_customer()->set_display_name("Ada");
  a.set_request_id("r1");
  v1::CreateCustomerRequest b = a;
  b.set_request_id("r2");
  v1::CreateCustomerRequest c = a;
  c.mutable_customer()->set_display_name("Bob");
  ASSERT_TRUE(logic_.CreateCustomer(a).ok());
  ASSERT_TRUE(logic_.CreateCustomer(b).ok());
  ASSERT_TRUE(logic_.CreateCustomer(c).ok());
  ASSERT_EQ(store_.requests.size(), 3u);
  EXPECT_EQ(store_.requests[0].id, "r1");
  EXPECT_EQ(store_.requests[0].hash, store_.requests[1].hash);
  EXPECT_NE(store_.requests[0].hash, store_.requests[2].hash);
}

TEST_F(CustomerLogicTest, GetRejectsMalformedIdAndReportsNotFound) {
  v1::GetCustomerRequest request;
  EXPECT_EQ(Fields(logic_.GetCustomer(request).status()), std::vector<std::string>{"id"});
  request.set_id("nope");
  EXPECT_EQ(Fields(logic_.GetCustomer(request).status()), std::vector<std::string>{"id"});
  request.set_id(ids_.Next());
  EXPECT_EQ(logic_.GetCustomer(request).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CustomerLogicTest, UpdateChangesOnlyMaskedFieldsAndChecksEtag) {
  v1::Customer c = Create("Ada");
  v1::UpdateCustomerRequest request;
  *request.mutable_customer() = c;
  request.mutable_customer()->set_display_name("Ada K");
  request.mutable_customer()->set_email("ada@example.com");
  request.mutable_update_mask()->add_paths("email");
  absl::StatusOr<v1::Customer> updated = logic_.UpdateCustomer(request);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name(), "Ada");  // not in the mask
  EXPECT_EQ(updated->email(), "ada@example.com");
  EXPECT_NE(updated->etag(), c.etag());

  // The old etag is stale now.
  absl::Status stale = logic_.UpdateCustomer(request).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  // No etag: unconditional.
  request.mutable_customer()->clear_etag();
  EXPECT_TRUE(logic_.UpdateCustomer(request).ok());
}

TEST_F(CustomerLogicTest, UpdateMaskMustBeGivenAndKnown) {
  v1::Customer c = Create("Ada");
  v1::UpdateCustomerRequest request;
  *request.mutable_customer() = c;
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request).status()),
            std::vector<std::string>{"update_mask"});
  request.mutable_update_mask()->add_paths("create_time");
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request).status()),
            std::vector<std::string>{"update_mask"});
  request.mutable_update_mask()->Clear();
  request.mutable_update_mask()->add_paths("display_name");
  request.mutable_customer()->set_display_name("");
  const int writes = store_.writes;
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request).status()),
            std::vector<std::string>{"customer.display_name"});
  EXPECT_EQ(store_.writes, writes);
}

TEST_F(CustomerLogicTest, DeleteChecksEtag) {
  v1::Customer c = Create("Ada");
  v1::DeleteCustomerRequest request;
  request.set_id(c.id());
  request.set_etag("99");
  EXPECT_EQ(logic_.DeleteCustomer(request).code(), absl::StatusCode::kAborted);
  request.set_etag(c.etag());
  EXPECT_TRUE(logic_.DeleteCustomer(request).ok());
  EXPECT_EQ(logic_.DeleteCustomer(request).code(), absl::StatusCode::kNotFound);
}

TEST_F(CustomerLogicTest, ListCustomersPagesThroughEveryone) {
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i) made.push_back(Create("c" + std::to_string(i)).id());
  v1::ListCustomersRequest request;
  request.set_page_size(2);
  std::vector<std::string> seen;
  for (int page = 0; page < 10; ++page) {
    absl::StatusOr<v1::ListCustomersResponse> r = logic_.ListCustomers(request);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& c : r->customers()) seen.push_back(c.id());
    if (r->next_page_token().empty()) break;
    request.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, made);
  request.set_page_size(-1);
  EXPECT_EQ(Fields(logic_.ListCustomers(request).status()),
            std::vector<std::string>{"page_size"});
}

v1::RecordPurchaseRequest Purchase(const std::string& customer, int64_t units, int32_t nanos) {
  v1::RecordPurchaseRequest r;
  r.set_customer_id(customer);
  r.mutable_purchase()->mutable_purchase_time()->set_seconds(1'700'000'000);
  r.mutable_purchase()->mutable_amount()->set_units(units);
  r.mutable_purchase()->mutable_amount()->set_nanos(nanos);
  return r;
}

TEST_F(CustomerLogicTest, RecordPurchaseKeepsExactAmountsAndRefunds) {
  v1::Customer c = Create("Ada");
  absl::StatusOr<v1::Purchase> p = logic_.RecordPurchase(Purchase(c.id(), -12, -500'000'000));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->amount().units(), -12);
  EXPECT_EQ(p->amount().nanos(), -500'000'000);
  EXPECT_EQ(p->amount().currency_code(), "EUR");
  EXPECT_EQ(store_.purchases.back().amount.ToString(), "-12.50");
}

TEST_F(CustomerLogicTest, BadPurchaseNamesFieldsAndWritesNothing) {
  const int writes = store_.writes;
  v1::RecordPurchaseRequest none;
  none.set_customer_id(ids_.Next());
  none.mutable_purchase();
  EXPECT_EQ(Fields(logic_.RecordPurchase(none).status()),
            (std::vector<std::string>{"purchase.purchase_time", "purchase.amount"}));

  v1::RecordPurchaseRequest sign = Purchase(ids_.Next(), 1, -5);
  EXPECT_EQ(Fields(logic_.RecordPurchase(sign).status()),
            std::vector<std::string>{"purchase.amount"});

  v1::RecordPurchaseRequest currency = Purchase(ids_.Next(), 1, 0);
  currency.mutable_purchase()->mutable_amount()->set_currency_code("USD");
  EXPECT_EQ(Fields(logic_.RecordPurchase(currency).status()),
            std::vector<std::string>{"purchase.amount.currency_code"});

  v1::RecordPurchaseRequest nanos_time = Purchase(ids_.Next(), 1, 0);
  nanos_time.mutable_purchase()->mutable_purchase_time()->set_nanos(1);
  EXPECT_EQ(Fields(logic_.RecordPurchase(nanos_time).status()),
            std::vector<std::string>{"purchase.purchase_time"});

  v1::RecordPurchaseRequest no_customer = Purchase("", 1, 0);
  EXPECT_EQ(Fields(logic_.RecordPurchase(no_customer).status()),
            std::vector<std::string>{"customer_id"});
  EXPECT_EQ(store_.writes, writes);
}

TEST_F(CustomerLogicTest, ReportingCurrencyGivenExplicitlyHashesLikeOmitted) {
  v1::Customer c = Create("Ada");
  v1::RecordPurchaseRequest a = Purchase(c.id(), 3, 0);
  a.set_request_id("p");
  v1::RecordPurchaseRequest b = a;
  b.mutable_purchase()->mutable_amount()->set_currency_code("EUR");
  ASSERT_TRUE(logic_.RecordPurchase(a).ok());
  ASSERT_TRUE(logic_.RecordPurchase(b).ok());
  EXPECT_EQ(store_.requests[store_.requests.size() - 1].hash,
            store_.requests[store_.requests.size() - 2].hash);
}

TEST_F(CustomerLogicTest, ListPurchasesValidatesRangeAndToken) {
  v1::Customer c = Create("Ada");
  v1::ListPurchasesRequest request;
  request.set_customer_id(c.id());
  request.mutable_start_time()->set_seconds(200);
  request.mutable_end_time()->set_seconds(100);
  EXPECT_EQ(Fields(logic_.ListPurchases(request).status()), std::vector<std::string>{"end_time"});

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(logic_.RecordPurchase(Purchase(c.id(), i, 0)).ok());
  v1::ListPurchasesRequest paged;
  paged.set_customer_id(c.id());
  paged.set_page_size(2);
  absl::StatusOr<v1::ListPurchasesResponse> first = logic_.ListPurchases(paged);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->purchases_size(), 2);
  ASSERT_FALSE(first->next_page_token().empty());
  // The token belongs to this filter: with a start time it is refused.
  paged.set_page_token(first->next_page_token());
  paged.mutable_start_time()->set_seconds(1);
  EXPECT_EQ(Fields(logic_.ListPurchases(paged).status()), std::vector<std::string>{"page_token"});
  paged.clear_start_time();
  absl::StatusOr<v1::ListPurchasesResponse> second = logic_.ListPurchases(paged);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->purchases_size(), 1);
  EXPECT_TRUE(second->next_page_token().empty());
}

}  // namespace
}  // namespace rapport::customer
