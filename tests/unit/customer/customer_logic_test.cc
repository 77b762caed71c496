// CustomerLogic against an in-memory CustomerStore: validation, masks, etags,
// paging, and the request hashes that make retries safe.
#include "services/customer/customer_logic.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/proto_convert.h"
#include "common/status.h"

namespace rapport::customer {
namespace {

// The subject of the caller's token, as the adapter passes it.
constexpr char kActor[] = "user:test";

class FakeStore final : public CustomerStore {
 public:
  absl::StatusOr<CustomerRecord> CreateCustomer(
      const CustomerRecord& c, const RequestKey& request,
      const audit::Event& event) override {
    // A retry is answered with the customer it created, as stored.
    if (auto it = created_by.find(request.id); !request.id.empty() &&
                                               it != created_by.end() &&
                                               customers.contains(it->second)) {
      return customers[it->second];
    }
    ++writes;
    events.push_back(event);
    requests.push_back(request);
    if (!request.id.empty()) {
      created_by[request.id] = c.id;
      created_hash[request.id] = request.hash;
    }
    customers[c.id] = c;
    return c;
  }
  absl::StatusOr<std::optional<std::string>> CustomerCreatedBy(
      const RequestKey& request) override {
    if (!read_error.ok()) return read_error;
    if (auto h = created_hash.find(request.id);
        h != created_hash.end() && h->second != request.hash) {
      return absl::InvalidArgumentError("request_id: other content");
    }
    auto it = created_by.find(request.id);
    if (it == created_by.end()) return std::nullopt;
    return it->second;
  }
  absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) override {
    if (auto merged = merged_into.find(id); merged != merged_into.end()) {
      CustomerRecord tombstone;  // what a merged record looks like
      tombstone.id = id;
      tombstone.merged_into = merged->second;
      return tombstone;
    }
    auto it = customers.find(id);
    if (it == customers.end())
      return absl::NotFoundError("customer " + id + " not found");
    return it->second;
  }
  absl::StatusOr<std::vector<CustomerRecord>> GetCustomers(
      const std::vector<std::string>& ids) override {
    if (!read_error.ok()) return read_error;
    std::vector<CustomerRecord> out;
    for (const std::string& id : ids) {
      if (absl::StatusOr<CustomerRecord> c = GetCustomer(id); c.ok())
        out.push_back(*std::move(c));
    }
    return out;
  }
  absl::StatusOr<std::vector<std::pair<CustomerRecord, int>>> ListCustomers(
      const CustomerFilter& filter, const std::optional<ListCursor>& after,
      int limit) override {
    last_filter = filter;
    std::vector<std::pair<CustomerRecord, int>> out;
    for (auto it = customers.upper_bound(after ? after->id : "");
         it != customers.end() && limit-- > 0; ++it) {
      out.emplace_back(it->second, -1);
    }
    return out;
  }
  absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id,
      const std::function<absl::Status(CustomerRecord&)>& mutate,
      const audit::Event& event) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("not found");
    CustomerRecord copy = it->second;
    if (absl::Status s = mutate(copy); !s.ok()) return s;
    if (copy == it->second) return copy;  // nothing changed: nothing written
    ++writes;
    events.push_back(event);
    copy.version++;
    it->second = copy;
    return copy;
  }
  absl::Status DeleteCustomer(
      const std::string& id, bool force,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("not found");
    if (absl::Status s = check(it->second); !s.ok()) return s;
    ++writes;
    events.push_back(event);
    customers.erase(it);
    return absl::OkStatus();
  }
  std::vector<absl::StatusOr<PurchaseRecord>> RecordPurchases(
      const std::vector<NewPurchase>& batch) override {
    std::vector<absl::StatusOr<PurchaseRecord>> out;
    for (const auto& [p, request] : batch) {
      if (merged_into.count(p.customer_id) > 0) {
        out.push_back(
            absl::AbortedError("customer " + p.customer_id + " was merged"));
      } else if (customers.count(p.customer_id) == 0) {
        out.push_back(
            absl::NotFoundError("customer " + p.customer_id + " not found"));
      } else {
        ++writes;
        requests.push_back(request);
        purchases.push_back(p);
        out.push_back(p);
      }
    }
    return out;
  }
  absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(
      const PurchaseQuery& q) override {
    last_query = q;
    std::vector<PurchaseRecord> out;
    for (const PurchaseRecord& p : purchases) {
      if (static_cast<int>(out.size()) == q.limit) break;
      if (q.after && std::make_pair(p.purchase_time_us, p.id) <= *q.after)
        continue;
      out.push_back(p);
    }
    return out;
  }

  // A merge of `merge_on_write.first` into `.second` that commits between
  // the service resolving the id and its write (the store then says
  // ABORTED); true when it just did.
  std::optional<std::pair<std::string, std::string>> merge_on_write;
  // What the next LogInteraction or SetConsent fails with instead of
  // writing (e.g. a deadlock's ABORTED), and how many were attempted.
  std::optional<absl::Status> fail_next_write;
  int write_attempts = 0;
  bool MergedJustNow(const std::string& id) {
    if (!merge_on_write.has_value() || merge_on_write->first != id) {
      return false;
    }
    merged_into[id] = merge_on_write->second;
    merge_on_write.reset();
    return true;
  }
  absl::StatusOr<std::string> ResolveCustomerId(
      const std::string& id) override {
    auto merged = merged_into.find(id);
    if (merged != merged_into.end()) return merged->second;
    if (customers.count(id) == 0)
      return absl::NotFoundError("customer " + id + " not found");
    return id;
  }
  absl::StatusOr<std::vector<std::string>> FindByIdentities(
      const IdentityQuery& q) override {
    last_identities = q;
    ++identity_lookups;
    if (!identity_answers.empty()) {
      std::vector<std::string> answer = identity_answers.front();
      identity_answers.pop_front();
      return answer;
    }
    return identity_matches;
  }
  absl::StatusOr<std::vector<DuplicateGroupRecord>> FindDuplicates(
      const std::string& after, int limit) override {
    std::vector<DuplicateGroupRecord> out;
    for (const auto& g : duplicate_groups) {
      if (g.reason + "|" + g.key > after &&
          static_cast<int>(out.size()) < limit)
        out.push_back(g);
    }
    return out;
  }
  absl::StatusOr<MergeResult> MergeCustomers(
      const std::string& primary, const std::vector<std::string>& duplicates,
      const audit::Event& event, bool dry_run) override {
    merge_calls.push_back({primary, duplicates, event.actor, dry_run});
    if (!dry_run) events.push_back(event);
    MergeResult r;
    r.primary =
        customers.count(primary) ? customers[primary] : CustomerRecord{};
    r.moved_purchases = merge_moves_purchases;
    r.moved_interactions = merge_moves_interactions;
    return r;
  }
  absl::StatusOr<std::vector<IdentityQuery>> MergedIdentities(
      const std::string& id) override {
    return merged_identities[id];
  }
  absl::StatusOr<std::vector<std::string>> CreateRequestsOf(
      const std::string& id) override {
    std::vector<std::string> out;
    for (const auto& [request, customer] : created_by) {
      if (customer == id) out.push_back(request);
    }
    return out;
  }
  absl::Status EraseCustomer(
      const std::string& id, const std::vector<std::string>& hashes,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) override {
    auto it = customers.find(id);
    if (it == customers.end()) return absl::NotFoundError("not found");
    if (absl::Status s = check(it->second); !s.ok()) return s;
    ++writes;
    events.push_back(event);
    suppressed.insert(hashes.begin(), hashes.end());
    it->second.erased = true;
    it->second.email.clear();
    // The requests that created it are forgotten with it.
    for (auto r = created_by.begin(); r != created_by.end();) {
      if (r->second != id) {
        ++r;
        continue;
      }
      created_hash.erase(r->first);
      r = created_by.erase(r);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) override {
    std::vector<std::string> out;
    for (const auto& h : hashes) {
      if (suppressed.count(h)) out.push_back(h);
    }
    return out;
  }
  absl::StatusOr<InteractionRecord> LogInteraction(
      const InteractionRecord& i, const RequestKey& request,
      const std::optional<audit::Event>& event,
      const std::function<absl::Status()>& admit) override {
    ++write_attempts;
    if (fail_next_write.has_value()) {
      absl::Status s = *fail_next_write;
      fail_next_write.reset();
      return s;
    }
    if (MergedJustNow(i.customer_id)) {
      return MergedMeanwhile(i.customer_id, merged_into[i.customer_id]);
    }
    if (admit) {
      if (absl::Status s = admit(); !s.ok()) return s;
    }
    ++writes;
    if (event.has_value()) events.push_back(*event);
    requests.push_back(request);
    interactions.push_back(i);
    return i;
  }
  absl::StatusOr<std::vector<InteractionRecord>> ListInteractions(
      const InteractionQuery& q) override {
    return interactions;
  }
  absl::Status SetConsent(const std::string& customer_id,
                          const ConsentRecord& c,
                          const audit::Event& event) override {
    ++write_attempts;
    if (fail_next_write.has_value()) {
      absl::Status s = *fail_next_write;
      fail_next_write.reset();
      return s;
    }
    if (MergedJustNow(customer_id)) {
      return MergedMeanwhile(customer_id, merged_into[customer_id]);
    }
    ++writes;
    events.push_back(event);
    consents.push_back(c);
    return absl::OkStatus();
  }
  // The current consents, as the store keeps them: per purpose and channel
  // the one captured last.
  absl::StatusOr<std::vector<ConsentRecord>> ListConsents(
      const std::string&) override {
    std::map<std::pair<std::string, int>, ConsentRecord> current;
    for (const ConsentRecord& c : consents) {
      auto [it, added] = current.try_emplace({c.purpose, c.channel}, c);
      if (!added && c.capture_time_us > it->second.capture_time_us)
        it->second = c;
    }
    std::vector<ConsentRecord> out;
    for (auto& [key, c] : current) out.push_back(c);
    return out;
  }
  absl::Status WriteAuditEvent(const audit::Event& event) override {
    events.push_back(event);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<audit::Event>> ListAuditEvents(
      const audit::Filter& filter, const std::optional<audit::Cursor>& after,
      int limit) override {
    last_audit_filter = filter;
    std::vector<audit::Event> out;
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
      if (after.has_value() && std::make_pair(it->time_us, it->id) >=
                                   std::make_pair(after->time_us, after->id)) {
        continue;
      }
      if (static_cast<int>(out.size()) == limit) break;
      out.push_back(*it);
    }
    return out;
  }

  struct MergeCall {
    std::string primary;
    std::vector<std::string> duplicates;
    std::string actor;
    bool dry_run;
  };
  int writes = 0;
  std::vector<audit::Event> events;  // in the order written
  audit::Filter last_audit_filter;
  absl::Status read_error;
  std::vector<RequestKey> requests;
  std::map<std::string, std::string> created_by;    // request id -> customer
  std::map<std::string, std::string> created_hash;  // request id -> its hash
  CustomerFilter last_filter;
  IdentityQuery last_identities;
  std::vector<std::string> identity_matches;
  // Answered first, one a lookup, before identity_matches.
  std::deque<std::vector<std::string>> identity_answers;
  int identity_lookups = 0;
  std::vector<DuplicateGroupRecord> duplicate_groups;
  std::vector<MergeCall> merge_calls;
  int merge_moves_purchases = 3;
  int merge_moves_interactions = 0;
  std::set<std::string> suppressed;
  std::map<std::string, std::string> merged_into;
  std::map<std::string, std::vector<IdentityQuery>> merged_identities;
  std::vector<InteractionRecord> interactions;
  std::vector<ConsentRecord> consents;
  std::map<std::string, CustomerRecord> customers;
  std::vector<PurchaseRecord> purchases;
  PurchaseQuery last_query;
};

// Differentiation as the logic sees it: a fixed policy, stored values, and a
// record of re-scorings.
class FakeScores final : public differentiation::ValueKeeper {
 public:
  absl::Status Rescore(const std::string& id) override {
    rescored.push_back(id);
    return rescore_status;
  }
  std::vector<absl::Status> RescoreEach(
      const std::vector<std::string>& ids) override {
    std::vector<absl::Status> out;
    for (const std::string& id : ids) out.push_back(Rescore(id));
    return out;
  }
  // Queued for later, as the kit does: recorded at once here.
  void RescoreSoon(const std::vector<std::string>& ids) override {
    RescoreEach(ids);
  }
  absl::StatusOr<std::optional<cv1::ContactPolicy>> ContactPolicyOf(
      const std::string&) override {
    return policy;
  }
  absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>> ValuesOf(
      const std::vector<std::string>& ids) override {
    absl::flat_hash_map<std::string, cv1::EntityValue> out;
    for (const std::string& id : ids) {
      if (id == unreadable_value)
        return absl::DataLossError("stored value of " + id + " is bad");
      out[id].set_segment("Champions");
    }
    return out;
  }
  std::string unreadable_value;  // ValuesOf fails when this one is asked

  std::vector<std::string> rescored;
  absl::Status rescore_status;
  std::optional<cv1::ContactPolicy> policy;
};

class CustomerLogicTest : public ::testing::Test {
 protected:
  CustomerLogicTest()
      : ids_([this] { return now_; }, [this] { return ++random_; }),
        logic_(
            &store_, &ids_, [this] { return now_; },
            {.currency = "EUR",
             .phone_region = "GB",
             .suppression_salt = "salt"},
            &scores_) {}

  v1::Customer Create(const std::string& name) {
    v1::CreateCustomerRequest request;
    request.mutable_customer()->set_display_name(name);
    absl::StatusOr<v1::Customer> c = logic_.CreateCustomer(request, kActor);
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
  FakeScores scores_;
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
  absl::StatusOr<v1::Customer> created = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(IsValidId(created->id()));
  EXPECT_EQ(created->email(), "ada@example.com");
  EXPECT_EQ(created->phone(), "+442079460958");
  EXPECT_EQ(created->create_time().seconds(), 1'700'000'000);
  EXPECT_EQ(created->etag(), CustomerEtag(1));
  EXPECT_EQ(created->attributes().at("tier"), "vip");
  EXPECT_EQ(created->created_by(), kActor);
  EXPECT_EQ(store_.writes, 1);
}

TEST_F(CustomerLogicTest, BadCreateNamesEveryBadFieldAndWritesNothing) {
  v1::CreateCustomerRequest request;
  v1::Customer* c = request.mutable_customer();
  c->set_email("not-an-email");
  c->set_phone("12345");
  c->add_external_ids()->set_source("crm");  // id missing
  absl::Status s = logic_.CreateCustomer(request, kActor).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fields(s), (std::vector<std::string>{
                           "customer.display_name", "customer.email",
                           "customer.phone", "customer.external_ids[0].id"}));
  EXPECT_EQ(store_.writes, 0);

  v1::CreateCustomerRequest missing;
  EXPECT_EQ(Fields(logic_.CreateCustomer(missing, kActor).status()),
            std::vector<std::string>{"customer"});
  v1::CreateCustomerRequest long_id;
  long_id.mutable_customer()->set_display_name("x");
  long_id.set_request_id(std::string(200, 'r'));
  EXPECT_EQ(Fields(logic_.CreateCustomer(long_id, kActor).status()),
            std::vector<std::string>{"request_id"});
  EXPECT_EQ(store_.writes, 0);
}

// FindDuplicates pages through the groups in key order, each page's token
// naming where the next begins; a bad page size or token is refused naming
// the field.
TEST_F(CustomerLogicTest, FindDuplicatesPagesThroughGroupsAndNamesBadFields) {
  for (const char* key : {"a@example.com", "b@example.com", "c@example.com"}) {
    store_.duplicate_groups.push_back(
        {.reason = "email", .key = key, .customer_ids = {"x", "y"}});
  }
  v1::FindDuplicatesRequest request;
  request.set_page_size(2);
  absl::StatusOr<v1::FindDuplicatesResponse> first =
      logic_.FindDuplicates(request);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->groups_size(), 2);
  EXPECT_EQ(first->groups(1).key(), "b@example.com");
  ASSERT_FALSE(first->next_page_token().empty());
  request.set_page_token(first->next_page_token());
  absl::StatusOr<v1::FindDuplicatesResponse> second =
      logic_.FindDuplicates(request);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->groups_size(), 1);
  EXPECT_EQ(second->groups(0).key(), "c@example.com");
  EXPECT_EQ(second->groups(0).customer_ids_size(), 2);
  EXPECT_TRUE(second->next_page_token().empty());

  v1::FindDuplicatesRequest bad;
  bad.set_page_size(-1);
  EXPECT_EQ(Fields(logic_.FindDuplicates(bad).status()),
            std::vector<std::string>{"page_size"});
  bad.set_page_size(0);
  bad.set_page_token("garbage");
  EXPECT_EQ(Fields(logic_.FindDuplicates(bad).status()),
            std::vector<std::string>{"page_token"});
  // A token of another listing does not page this one.
  v1::ListCustomersRequest list;
  list.set_page_size(1);
  Create("Ann");
  Create("Bob");
  absl::StatusOr<v1::ListCustomersResponse> listed = logic_.ListCustomers(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_FALSE(listed->next_page_token().empty());
  bad.set_page_token(listed->next_page_token());
  EXPECT_EQ(Fields(logic_.FindDuplicates(bad).status()),
            std::vector<std::string>{"page_token"});
}

TEST_F(CustomerLogicTest, DuplicateExternalIdInOneRequestIsRejected) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("x");
  for (int i = 0; i < 2; ++i) {
    auto* e = request.mutable_customer()->add_external_ids();
    e->set_source("crm");
    e->set_id("1");
  }
  EXPECT_EQ(Fields(logic_.CreateCustomer(request, kActor).status()),
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
  c.set_request_id("r3");
  // The fields a create ignores (output only) do not count either: a retry
  // may send back the record it read.
  v1::CreateCustomerRequest d = a;
  d.mutable_customer()->set_id("01jd8x4r2c6n7m9p0q1r2s3t4v");
  d.mutable_customer()->set_etag("7");
  d.mutable_customer()->set_created_by("user:someone");
  d.mutable_customer()->mutable_create_time()->set_seconds(1);
  d.set_request_id("r4");
  ASSERT_TRUE(logic_.CreateCustomer(a, kActor).ok());
  ASSERT_TRUE(logic_.CreateCustomer(b, kActor).ok());
  ASSERT_TRUE(logic_.CreateCustomer(c, kActor).ok());
  ASSERT_TRUE(logic_.CreateCustomer(d, kActor).ok());
  ASSERT_EQ(store_.requests.size(), 4u);
  EXPECT_EQ(store_.requests[0].id, "r1");
  EXPECT_EQ(store_.requests[0].hash, store_.requests[1].hash);
  EXPECT_NE(store_.requests[0].hash, store_.requests[2].hash);
  EXPECT_EQ(store_.requests[0].hash, store_.requests[3].hash);
}

TEST_F(CustomerLogicTest, GetRejectsMalformedIdAndReportsNotFound) {
  v1::GetCustomerRequest request;
  EXPECT_EQ(Fields(logic_.GetCustomer(request).status()),
            std::vector<std::string>{"id"});
  request.set_id("nope");
  EXPECT_EQ(Fields(logic_.GetCustomer(request).status()),
            std::vector<std::string>{"id"});
  // An email given for an id is not quoted back (nor so into the log).
  request.set_id("ada@example.com");
  absl::Status email = logic_.GetCustomer(request).status();
  EXPECT_EQ(Fields(email), std::vector<std::string>{"id"});
  EXPECT_EQ(email.ToString().find("ada@"), std::string::npos) << email;
  request.set_id(ids_.Next());
  EXPECT_EQ(logic_.GetCustomer(request).status().code(),
            absl::StatusCode::kNotFound);
}

// A write answers with the customer as GetCustomer does, stored value
// included; a value that cannot be read leaves it out of the answer, but does
// not fail a write that is stored already.
TEST_F(CustomerLogicTest, WritesAnswerWithTheStoredValueWhenItCanBeRead) {
  v1::Customer c = Create("Ada");
  EXPECT_FALSE(c.has_value());  // made now, under a fresh id: none to read
  v1::UpdateCustomerRequest request;
  request.mutable_customer()->set_id(c.id());
  request.mutable_customer()->set_email("ada@example.com");
  request.mutable_update_mask()->add_paths("email");
  absl::StatusOr<v1::Customer> updated = logic_.UpdateCustomer(request, kActor);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->value().segment(), "Champions");
  scores_.unreadable_value = c.id();
  request.mutable_customer()->set_email("ada@example.org");
  updated = logic_.UpdateCustomer(request, kActor);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->email(), "ada@example.org");
  EXPECT_FALSE(updated->has_value());

  // An identify that finds the customer, likewise.
  v1::IdentifyCustomerRequest identify;
  identify.set_email("ada@example.org");
  store_.identity_matches = {c.id()};
  scores_.unreadable_value.clear();
  absl::StatusOr<v1::IdentifyCustomerResponse> found =
      logic_.IdentifyCustomer(identify, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().value().segment(), "Champions");
  scores_.unreadable_value = c.id();
  found = logic_.IdentifyCustomer(identify, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->customer().has_value());

  // And a merge, with the primary's value.
  scores_.unreadable_value.clear();
  const v1::Customer twin = Create("Ada twin");
  v1::MergeCustomersRequest merge;
  merge.set_primary_id(c.id());
  merge.add_duplicate_ids(twin.id());
  absl::StatusOr<v1::MergeCustomersResponse> merged =
      logic_.MergeCustomers(merge, kActor);
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(merged->customer().id(), c.id());
  EXPECT_EQ(merged->customer().value().segment(), "Champions");
}

TEST_F(CustomerLogicTest, UpdateChangesOnlyMaskedFieldsAndChecksEtag) {
  v1::Customer c = Create("Ada");
  v1::UpdateCustomerRequest request;
  *request.mutable_customer() = c;
  request.mutable_customer()->set_display_name("Ada K");
  request.mutable_customer()->set_email("ada@example.com");
  request.mutable_update_mask()->add_paths("email");
  absl::StatusOr<v1::Customer> updated = logic_.UpdateCustomer(request, kActor);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name(), "Ada");  // not in the mask
  EXPECT_EQ(updated->email(), "ada@example.com");
  EXPECT_NE(updated->etag(), c.etag());

  // The same update again (a retry whose answer was lost) finds nothing to
  // change: the first answer, and nothing written or audited, though its
  // etag is stale now.
  const int writes_before = store_.writes;
  const size_t events_before = store_.events.size();
  absl::StatusOr<v1::Customer> again = logic_.UpdateCustomer(request, kActor);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->etag(), updated->etag());
  EXPECT_EQ(store_.writes, writes_before);
  EXPECT_EQ(store_.events.size(), events_before);
  // The old etag is stale for a change.
  request.mutable_customer()->set_email("ada.k@example.com");
  absl::Status stale = logic_.UpdateCustomer(request, kActor).status();
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  // No etag: unconditional.
  request.mutable_customer()->clear_etag();
  EXPECT_TRUE(logic_.UpdateCustomer(request, kActor).ok());

  // A merge that commits between the first look and the locked row: the
  // locked row's answer counts, and nothing is written to the merged record.
  store_.customers[c.id()].merged_into = "01jd8x4r2c6n7m9p0q1r2s3t4v";
  const int writes = store_.writes;
  absl::Status merged = logic_.UpdateCustomer(request, kActor).status();
  EXPECT_EQ(merged.code(), absl::StatusCode::kFailedPrecondition) << merged;
  v1::DeleteCustomerRequest del;
  del.set_id(c.id());
  EXPECT_EQ(logic_.DeleteCustomer(del, kActor).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_.writes, writes);
  EXPECT_EQ(store_.customers.count(c.id()), 1u);
}

TEST_F(CustomerLogicTest, UpdateMaskMustBeGivenAndKnown) {
  v1::Customer c = Create("Ada");
  v1::UpdateCustomerRequest request;
  *request.mutable_customer() = c;
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request, kActor).status()),
            std::vector<std::string>{"update_mask"});
  request.mutable_update_mask()->add_paths("create_time");
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request, kActor).status()),
            std::vector<std::string>{"update_mask"});
  request.mutable_update_mask()->Clear();
  request.mutable_update_mask()->add_paths("display_name");
  request.mutable_customer()->set_display_name("");
  const int writes = store_.writes;
  EXPECT_EQ(Fields(logic_.UpdateCustomer(request, kActor).status()),
            std::vector<std::string>{"customer.display_name"});
  EXPECT_EQ(store_.writes, writes);
}

TEST_F(CustomerLogicTest, DeleteChecksEtag) {
  v1::Customer c = Create("Ada");
  v1::DeleteCustomerRequest request;
  request.set_id(c.id());
  request.set_etag("99");
  EXPECT_EQ(logic_.DeleteCustomer(request, kActor).code(),
            absl::StatusCode::kAborted);
  // What no service issued is bad input, named, and not quoted back (it
  // could be a megabyte), not a stale read to retry.
  request.set_etag(std::string(4096, 'W'));
  const absl::Status malformed = logic_.DeleteCustomer(request, kActor);
  EXPECT_EQ(Fields(malformed), std::vector<std::string>{"etag"});
  EXPECT_LT(malformed.message().size(), 200u) << malformed;
  v1::UpdateCustomerRequest update;
  *update.mutable_customer() = c;
  update.mutable_customer()->set_display_name("Ada B");
  update.mutable_customer()->set_etag("W/\"1\"");
  update.mutable_update_mask()->add_paths("display_name");
  EXPECT_EQ(Fields(logic_.UpdateCustomer(update, kActor).status()),
            std::vector<std::string>{"customer.etag"});
  request.set_etag(c.etag());
  EXPECT_TRUE(logic_.DeleteCustomer(request, kActor).ok());
  EXPECT_EQ(logic_.DeleteCustomer(request, kActor).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(CustomerLogicTest, ListCustomersPagesThroughEveryone) {
  std::vector<std::string> made;
  for (int i = 0; i < 5; ++i)
    made.push_back(Create("c" + std::to_string(i)).id());
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

v1::RecordPurchaseRequest Purchase(const std::string& customer, int64_t units,
                                   int32_t nanos) {
  v1::RecordPurchaseRequest r;
  r.set_customer_id(customer);
  r.mutable_purchase()->mutable_purchase_time()->set_seconds(1'700'000'000);
  r.mutable_purchase()->mutable_amount()->set_units(units);
  r.mutable_purchase()->mutable_amount()->set_nanos(nanos);
  return r;
}

TEST_F(CustomerLogicTest, RecordPurchaseKeepsExactAmountsAndRefunds) {
  v1::Customer c = Create("Ada");
  absl::StatusOr<v1::Purchase> p =
      logic_.RecordPurchase(Purchase(c.id(), -12, -500'000'000), kActor);
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
  EXPECT_EQ(
      Fields(logic_.RecordPurchase(none, kActor).status()),
      (std::vector<std::string>{"purchase.purchase_time", "purchase.amount"}));

  v1::RecordPurchaseRequest sign = Purchase(ids_.Next(), 1, -5);
  EXPECT_EQ(Fields(logic_.RecordPurchase(sign, kActor).status()),
            std::vector<std::string>{"purchase.amount"});

  v1::RecordPurchaseRequest currency = Purchase(ids_.Next(), 1, 0);
  currency.mutable_purchase()->mutable_amount()->set_currency_code("USD");
  EXPECT_EQ(Fields(logic_.RecordPurchase(currency, kActor).status()),
            std::vector<std::string>{"purchase.amount.currency_code"});

  v1::RecordPurchaseRequest nanos_time = Purchase(ids_.Next(), 1, 0);
  nanos_time.mutable_purchase()->mutable_purchase_time()->set_nanos(1);
  EXPECT_EQ(Fields(logic_.RecordPurchase(nanos_time, kActor).status()),
            std::vector<std::string>{"purchase.purchase_time"});

  // The purchase may repeat its customer's id, not name another.
  v1::RecordPurchaseRequest other = Purchase(ids_.Next(), 1, 0);
  other.mutable_purchase()->set_customer_id(ids_.Next());
  EXPECT_EQ(Fields(logic_.RecordPurchase(other, kActor).status()),
            std::vector<std::string>{"purchase.customer_id"});

  v1::RecordPurchaseRequest no_customer = Purchase("", 1, 0);
  EXPECT_EQ(Fields(logic_.RecordPurchase(no_customer, kActor).status()),
            std::vector<std::string>{"customer_id"});
  // What is quoted back is cut short: an error's text (twice, with its
  // details) must fit gRPC's trailers.
  v1::RecordPurchaseRequest long_id = Purchase(std::string(10000, 'x'), 1, 0);
  absl::Status long_refused = logic_.RecordPurchase(long_id, kActor).status();
  EXPECT_EQ(Fields(long_refused), std::vector<std::string>{"customer_id"});
  EXPECT_LT(long_refused.ToString().size(), 500u);
  // Dated ahead (more than a clock's difference): it would count only from
  // then on.
  v1::RecordPurchaseRequest ahead = Purchase(ids_.Next(), 1, 0);
  *ahead.mutable_purchase()->mutable_purchase_time() =
      ToTimestamp(absl::ToUnixMicros(now_ + absl::Minutes(6)));
  EXPECT_EQ(Fields(logic_.RecordPurchase(ahead, kActor).status()),
            std::vector<std::string>{"purchase.purchase_time"});
  EXPECT_EQ(store_.writes, writes);
}

TEST_F(CustomerLogicTest, ReportingCurrencyGivenExplicitlyHashesLikeOmitted) {
  v1::Customer c = Create("Ada");
  v1::RecordPurchaseRequest a = Purchase(c.id(), 3, 0);
  a.set_request_id("p");
  v1::RecordPurchaseRequest b = a;
  b.mutable_purchase()->mutable_amount()->set_currency_code("EUR");
  ASSERT_TRUE(logic_.RecordPurchase(a, kActor).ok());
  ASSERT_TRUE(logic_.RecordPurchase(b, kActor).ok());
  EXPECT_EQ(store_.requests[store_.requests.size() - 1].hash,
            store_.requests[store_.requests.size() - 2].hash);
}

TEST_F(CustomerLogicTest, ListPurchasesValidatesRangeAndToken) {
  v1::Customer c = Create("Ada");
  v1::ListPurchasesRequest request;
  request.set_customer_id(c.id());
  request.mutable_start_time()->set_seconds(200);
  request.mutable_end_time()->set_seconds(100);
  EXPECT_EQ(Fields(logic_.ListPurchases(request).status()),
            std::vector<std::string>{"end_time"});

  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(logic_.RecordPurchase(Purchase(c.id(), i, 0), kActor).ok());
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
  EXPECT_EQ(Fields(logic_.ListPurchases(paged).status()),
            std::vector<std::string>{"page_token"});
  paged.clear_start_time();
  absl::StatusOr<v1::ListPurchasesResponse> second =
      logic_.ListPurchases(paged);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->purchases_size(), 1);
  EXPECT_TRUE(second->next_page_token().empty());
}

TEST_F(CustomerLogicTest, PhonesWithoutCountryCodeUseTheConfiguredRegion) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("Ada");
  request.mutable_customer()->set_phone(
      "020 7946 0958");  // a London number, region GB
  absl::StatusOr<v1::Customer> c = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->phone(), "+442079460958");
  request.mutable_customer()->set_phone("12");
  EXPECT_EQ(Fields(logic_.CreateCustomer(request, kActor).status()),
            std::vector<std::string>{"customer.phone"});
}

TEST_F(CustomerLogicTest, GetResolvesMergedIdsAndSaysSoAndAttachesValues) {
  v1::Customer primary = Create("Ada");
  const std::string merged = ids_.Next();
  store_.merged_into[merged] = primary.id();
  v1::GetCustomerRequest request;
  request.set_id(merged);
  absl::StatusOr<v1::GetCustomerResponse> r = logic_.GetCustomer(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->customer().id(), primary.id());
  EXPECT_EQ(r->merged_id(), merged);
  EXPECT_EQ(r->customer().value().segment(), "Champions");
  request.set_id(primary.id());
  EXPECT_EQ(logic_.GetCustomer(request)->merged_id(), "");
}

// Calls that arrive together share one read; each still gets its own answer:
// its customer, the customer it was merged into, or NOT_FOUND.
TEST_F(CustomerLogicTest, ConcurrentGetsEachGetTheirOwnAnswer) {
  std::vector<std::string> live;
  for (int i = 0; i < 20; ++i)
    live.push_back(Create(absl::StrCat("Customer ", i)).id());
  const std::string merged = ids_.Next();
  store_.merged_into[merged] = live[3];
  const std::string missing = ids_.Next();

  constexpr int kThreads = 8, kCalls = 200;
  std::atomic<int> wrong = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        v1::GetCustomerRequest request;
        const int pick = (t * kCalls + i) % (live.size() + 2);
        request.set_id(pick < static_cast<int>(live.size())    ? live[pick]
                       : pick == static_cast<int>(live.size()) ? merged
                                                               : missing);
        absl::StatusOr<v1::GetCustomerResponse> r = logic_.GetCustomer(request);
        const bool right =
            request.id() == missing
                ? absl::IsNotFound(r.status()) &&
                      absl::StrContains(r.status().message(), missing)
            : request.id() == merged
                ? r.ok() && r->customer().id() == live[3] &&
                      r->merged_id() == merged
                : r.ok() && r->customer().id() == request.id() &&
                      r->merged_id().empty() &&
                      r->customer().value().segment() == "Champions";
        if (!right) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// Calls read together: the one customer whose stored value cannot be read
// fails alone, the others still get theirs.
TEST_F(CustomerLogicTest, OneUnreadableValueFailsOnlyItsOwnGet) {
  std::vector<std::string> ids;
  for (int i = 0; i < 16; ++i)
    ids.push_back(Create(absl::StrCat("Customer ", i)).id());
  scores_.unreadable_value = ids[5];
  absl::Mutex mu;
  std::map<std::string, absl::StatusOr<v1::GetCustomerResponse>> got;
  absl::Notification all;
  for (const std::string& id : ids) {
    v1::GetCustomerRequest request;
    request.set_id(id);
    logic_.GetCustomer(request,
                       [&, id](absl::StatusOr<v1::GetCustomerResponse> r) {
                         absl::MutexLock lock(&mu);
                         got.emplace(id, std::move(r));
                         if (got.size() == ids.size()) all.Notify();
                       });
  }
  all.WaitForNotification();
  absl::MutexLock lock(&mu);
  for (const std::string& id : ids) {
    if (id == ids[5]) {
      EXPECT_EQ(got.at(id).status().code(), absl::StatusCode::kDataLoss);
    } else {
      ASSERT_TRUE(got.at(id).ok()) << got.at(id).status();
      EXPECT_EQ(got.at(id)->customer().value().segment(), "Champions");
    }
  }
}

TEST_F(CustomerLogicTest, GetPassesOnAFailedRead) {
  v1::Customer c = Create("Ada");
  store_.read_error = absl::UnavailableError("database down");
  v1::GetCustomerRequest request;
  request.set_id(c.id());
  EXPECT_EQ(logic_.GetCustomer(request).status().code(),
            absl::StatusCode::kUnavailable);
  store_.read_error = absl::OkStatus();
  EXPECT_TRUE(logic_.GetCustomer(request).ok());
}

TEST_F(CustomerLogicTest,
       RecordPurchaseRescoresAndAFailedRescoreKeepsThePurchase) {
  v1::Customer c = Create("Ada");
  scores_.rescore_status = absl::UnavailableError("scoring down");
  ASSERT_TRUE(logic_.RecordPurchase(Purchase(c.id(), 5, 0), kActor).ok());
  EXPECT_EQ(scores_.rescored, std::vector<std::string>{c.id()});
  EXPECT_EQ(store_.purchases.size(), 1u);
}

TEST_F(CustomerLogicTest, APurchaseForAMergedIdGoesToTheCustomerThatStayed) {
  v1::Customer primary = Create("Ada");
  const std::string merged = ids_.Next();
  store_.merged_into[merged] = primary.id();
  absl::StatusOr<v1::Purchase> p =
      logic_.RecordPurchase(Purchase(merged, 5, 0), kActor);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->customer_id(), primary.id());
  ASSERT_EQ(store_.purchases.size(), 1u);
  EXPECT_EQ(store_.purchases[0].customer_id, primary.id());
  EXPECT_EQ(scores_.rescored, std::vector<std::string>{primary.id()});
  EXPECT_TRUE(absl::IsNotFound(
      logic_.RecordPurchase(Purchase(ids_.Next(), 5, 0), kActor).status()));
}

TEST_F(CustomerLogicTest, ListCustomersValidatesFiltersAndPassesThemOn) {
  v1::ListCustomersRequest request;
  request.set_tier(static_cast<cv1::Tier>(42));
  EXPECT_EQ(Fields(logic_.ListCustomers(request).status()),
            std::vector<std::string>{"tier"});
  request.set_tier(cv1::TIER_GOLD);
  request.set_min_value_hundredths(10001);
  EXPECT_EQ(Fields(logic_.ListCustomers(request).status()),
            std::vector<std::string>{"min_value_hundredths"});
  request.set_min_value_hundredths(5000);
  request.set_max_value_hundredths(4000);
  EXPECT_EQ(Fields(logic_.ListCustomers(request).status()),
            std::vector<std::string>{"max_value_hundredths"});
  request.set_max_value_hundredths(9000);
  request.set_order_by("name");
  EXPECT_EQ(Fields(logic_.ListCustomers(request).status()),
            std::vector<std::string>{"order_by"});
  request.set_order_by("value desc");
  request.set_segment("Champions");
  ASSERT_TRUE(logic_.ListCustomers(request).ok());
  EXPECT_EQ(store_.last_filter.segment, "Champions");
  EXPECT_EQ(store_.last_filter.tier, cv1::TIER_GOLD);
  EXPECT_EQ(*store_.last_filter.min_value_hundredths, 5000);
  EXPECT_EQ(*store_.last_filter.max_value_hundredths, 9000);
  EXPECT_TRUE(store_.last_filter.by_value_desc);
}

TEST_F(CustomerLogicTest, IdentifyFindsCreatesOrRefusesAmbiguity) {
  v1::IdentifyCustomerRequest none;
  EXPECT_EQ(Fields(logic_.IdentifyCustomer(none, kActor).status()),
            std::vector<std::string>{"email"});
  // Errors name the request's own fields, not a customer's.
  {
    v1::IdentifyCustomerRequest bad;
    bad.set_email("not an email");
    bad.add_external_ids()->set_source("crm");
    EXPECT_EQ(Fields(logic_.IdentifyCustomer(bad, kActor).status()),
              (std::vector<std::string>{"email", "external_ids[0].id"}));
  }
  // A long identity named for want of a name is cut to a name's length.
  {
    v1::IdentifyCustomerRequest long_id;
    long_id.add_external_ids()->set_source("crm");
    long_id.mutable_external_ids(0)->set_id(std::string(256, 'x'));
    absl::StatusOr<v1::IdentifyCustomerResponse> made =
        logic_.IdentifyCustomer(long_id, kActor);
    ASSERT_TRUE(made.ok()) << made.status();
    EXPECT_EQ(made->customer().display_name(), "crm:" + std::string(252, 'x'));
  }

  v1::IdentifyCustomerRequest request;
  request.set_email(" Ada@Example.com ");
  request.set_phone("+44 20 7946 0958");
  request.set_request_id("id-1");
  absl::StatusOr<v1::IdentifyCustomerResponse> created =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created());
  EXPECT_EQ(created->customer().display_name(), "Ada@Example.com");
  EXPECT_EQ(store_.last_identities.phone, "+442079460958");

  // The identities now name that customer: found, and a retry of the request
  // says created.
  EXPECT_EQ(store_.created_by["id-1"], created->customer().id());
  store_.identity_matches = {created->customer().id()};
  absl::StatusOr<v1::IdentifyCustomerResponse> again =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->customer().id(), created->customer().id());
  EXPECT_TRUE(again->created());
  // The same request id with other content is refused, found or not.
  {
    v1::IdentifyCustomerRequest changed = request;
    changed.set_display_name("Someone else");
    EXPECT_EQ(logic_.IdentifyCustomer(changed, kActor).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  request.set_request_id("id-2");
  EXPECT_FALSE(logic_.IdentifyCustomer(request, kActor)->created());
  // A retry answers the customer its request created, whatever the
  // identities name now (they moved to another customer since).
  const v1::Customer first = Create("First");
  store_.created_by["id-3"] = first.id();
  request.set_request_id("id-3");
  absl::StatusOr<v1::IdentifyCustomerResponse> retried =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->customer().id(), first.id());
  EXPECT_TRUE(retried->created());
  // Merged since: the customer that stayed, which this request did not
  // create.
  store_.merged_into[first.id()] = created->customer().id();
  retried = logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->customer().id(), created->customer().id());
  EXPECT_FALSE(retried->created());
  // Without an answer on who created it, there is no answer at all.
  store_.read_error = absl::UnavailableError("database down");
  EXPECT_EQ(logic_.IdentifyCustomer(request, kActor).status().code(),
            absl::StatusCode::kUnavailable);
  store_.read_error = absl::OkStatus();
  request.set_request_id("id-4");

  store_.identity_matches = {created->customer().id(),
                             "01jd8x4r2c6n7m9p0q1r2s3t4v"};
  absl::Status two = logic_.IdentifyCustomer(request, kActor).status();
  EXPECT_EQ(two.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(two.message().find("01jd8x4r2c6n7m9p0q1r2s3t4v"),
            absl::string_view::npos);
}

// Asked to, the one customer the identities name takes those of them it
// lacks (here a phone and an external id), audited, so that a call (an
// import row) naming only the external id finds it next, not nobody. Not
// asked, or given another email than the customer's, or an erased person's
// identity, it links nothing of those. A retry links nothing again.
TEST_F(CustomerLogicTest, IdentifyLinksTheIdentitiesTheCustomerLacksWhenAsked) {
  // An erased person's external id is suppressed.
  v1::CreateCustomerRequest gone;
  gone.mutable_customer()->set_display_name("Gone");
  v1::ExternalId* old_id = gone.mutable_customer()->add_external_ids();
  old_id->set_source("shop");
  old_id->set_id("7");
  absl::StatusOr<v1::Customer> erased = logic_.CreateCustomer(gone, kActor);
  ASSERT_TRUE(erased.ok()) << erased.status();
  v1::EraseCustomerRequest erase;
  erase.set_id(erased->id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());

  v1::CreateCustomerRequest create;
  create.mutable_customer()->set_display_name("Ada");
  create.mutable_customer()->set_email("ada@example.com");
  absl::StatusOr<v1::Customer> ada = logic_.CreateCustomer(create, kActor);
  ASSERT_TRUE(ada.ok()) << ada.status();
  store_.identity_matches = {ada->id()};
  v1::IdentifyCustomerRequest request;
  request.set_email("ADA@example.com");
  request.set_phone("+44 20 7946 0958");
  for (const char* id : {"42", "7"}) {
    v1::ExternalId* e = request.add_external_ids();
    e->set_source("shop");
    e->set_id(id);
  }
  const size_t events = store_.events.size();
  // Not asked: a lookup.
  absl::StatusOr<v1::IdentifyCustomerResponse> found =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().phone(), "");
  EXPECT_EQ(store_.events.size(), events);
  // Another email than the customer's: maybe someone else's request.
  v1::IdentifyCustomerRequest other = request;
  other.set_link_identities(true);
  other.set_email("eve@example.com");
  found = logic_.IdentifyCustomer(other, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().external_ids_size(), 0);
  EXPECT_EQ(store_.events.size(), events);

  request.set_link_identities(true);
  found = logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->created());
  EXPECT_EQ(found->customer().id(), ada->id());
  EXPECT_EQ(found->customer().email(), "ada@example.com");
  EXPECT_EQ(found->customer().phone(), "+442079460958");
  ASSERT_EQ(found->customer().external_ids_size(), 1);  // not the erased one
  EXPECT_EQ(found->customer().external_ids(0).source(), "shop");
  EXPECT_EQ(found->customer().external_ids(0).id(), "42");
  EXPECT_EQ(store_.customers[ada->id()].external_ids.size(), 1u);
  ASSERT_EQ(store_.events.size(), events + 1);
  EXPECT_EQ(store_.events.back().rpc, "IdentifyCustomer");
  EXPECT_EQ(store_.events.back().resource, "customers/" + ada->id());
  EXPECT_EQ(store_.events.back().details, "linked=phone,external_ids");
  EXPECT_EQ(store_.events.back().actor, kActor);
  ASSERT_TRUE(logic_.IdentifyCustomer(request, kActor).ok());
  EXPECT_EQ(store_.events.size(), events + 1);
}

TEST_F(CustomerLogicTest, MergeValidatesIdsAndNamesTheActor) {
  v1::Customer a = Create("A");
  v1::MergeCustomersRequest request;
  request.set_primary_id(a.id());
  EXPECT_EQ(Fields(logic_.MergeCustomers(request, kActor).status()),
            std::vector<std::string>{"duplicate_ids"});
  request.add_duplicate_ids(a.id());
  EXPECT_EQ(Fields(logic_.MergeCustomers(request, kActor).status()),
            std::vector<std::string>{"duplicate_ids[0]"});
  request.clear_duplicate_ids();
  const std::string b = ids_.Next();
  request.add_duplicate_ids(b);
  request.add_duplicate_ids(b);
  EXPECT_EQ(Fields(logic_.MergeCustomers(request, kActor).status()),
            std::vector<std::string>{"duplicate_ids[1]"});
  request.mutable_duplicate_ids()->RemoveLast();
  request.set_dry_run(true);
  const size_t events = store_.events.size();
  absl::StatusOr<v1::MergeCustomersResponse> r =
      logic_.MergeCustomers(request, "user:bob");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->dry_run());
  ASSERT_EQ(store_.merge_calls.size(), 1u);
  EXPECT_EQ(store_.merge_calls[0].actor, "user:bob");
  EXPECT_TRUE(store_.merge_calls[0].dry_run);
  EXPECT_TRUE(scores_.rescored.empty());  // a dry run changes nothing
  EXPECT_EQ(store_.events.size(), events);
  request.set_dry_run(false);
  ASSERT_TRUE(logic_.MergeCustomers(request, "user:alice").ok());
  EXPECT_EQ(store_.merge_calls[1].actor, "user:alice");
  EXPECT_EQ(scores_.rescored, std::vector<std::string>{a.id()});
  // The merge is audited under the caller's subject, on the primary.
  ASSERT_EQ(store_.events.size(), events + 1);
  EXPECT_EQ(store_.events.back().actor, "user:alice");
  EXPECT_EQ(store_.events.back().rpc, "MergeCustomers");
  EXPECT_EQ(store_.events.back().resource, "customers/" + a.id());
  EXPECT_EQ(store_.events.back().details, "merged=" + b);
}

// Interactions that move change the primary's cost to serve, and so its
// tier, as purchases change its facts: it is scored again; when that fails,
// it is queued for the background re-scores, which try again.
TEST_F(CustomerLogicTest, AMergeThatMovesOnlyInteractionsRescoresThePrimary) {
  v1::Customer a = Create("A");
  v1::MergeCustomersRequest request;
  request.set_primary_id(a.id());
  request.add_duplicate_ids(ids_.Next());
  store_.merge_moves_purchases = 0;
  store_.merge_moves_interactions = 2;
  scores_.rescore_status = absl::UnavailableError("scoring down");
  ASSERT_TRUE(logic_.MergeCustomers(request, kActor).ok());
  // Once now, and once more from the queue (recorded at once by the fake).
  EXPECT_EQ(scores_.rescored, (std::vector<std::string>{a.id(), a.id()}));
  store_.merge_moves_interactions = 0;
  scores_.rescored.clear();
  ASSERT_TRUE(logic_.MergeCustomers(request, kActor).ok());
  EXPECT_TRUE(scores_.rescored.empty());  // nothing moved, nothing changed
}

TEST_F(CustomerLogicTest, ErasedIdentitiesAreSuppressedOnCreateAndUpdate) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("Ada");
  request.mutable_customer()->set_email("Ada.Lovelace+news@gmail.com");
  absl::StatusOr<v1::Customer> c = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(c.ok());
  v1::EraseCustomerRequest erase;
  erase.set_id(c->id());
  erase.set_etag("99");
  EXPECT_EQ(logic_.EraseCustomer(erase, kActor).code(),
            absl::StatusCode::kAborted);
  erase.set_etag(c->etag());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());
  EXPECT_EQ(store_.suppressed.size(), 2u);  // the address and its mailbox
  // A retry (its answer lost) succeeds without erasing or auditing again.
  const size_t events = store_.events.size();
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());
  EXPECT_EQ(store_.events.size(), events);
  // The same address in another case is refused, and so is the same
  // mailbox spelled otherwise (as FindDuplicates would match it).
  for (const char* email :
       {"ADA.LOVELACE+NEWS@gmail.com", "adalovelace@gmail.com",
        "a.d.a.lovelace+promo@googlemail.com"}) {
    SCOPED_TRACE(email);
    request.mutable_customer()->set_email(email);
    EXPECT_EQ(logic_.CreateCustomer(request, kActor).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
  // Another mailbox is not.
  request.mutable_customer()->set_email("ada.lovelace@example.com");
  EXPECT_TRUE(logic_.CreateCustomer(request, kActor).ok());
  v1::Customer other = Create("Other");
  v1::UpdateCustomerRequest update;
  *update.mutable_customer() = other;
  update.mutable_customer()->set_email("ada.lovelace@gmail.com");
  update.mutable_update_mask()->add_paths("email");
  EXPECT_EQ(logic_.UpdateCustomer(update, kActor).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A customer whose mailbox another record held, erased since, keeps its own
// address and may spell it otherwise; the erased address itself stays out.
TEST_F(CustomerLogicTest, AnErasedDuplicateLeavesTheOtherItsOwnMailbox) {
  v1::CreateCustomerRequest y;
  y.mutable_customer()->set_display_name("Ann");
  y.mutable_customer()->set_email("a.nn@gmail.com");
  absl::StatusOr<v1::Customer> kept = logic_.CreateCustomer(y, kActor);
  ASSERT_TRUE(kept.ok()) << kept.status();
  v1::CreateCustomerRequest x;
  x.mutable_customer()->set_display_name("Ann L");
  x.mutable_customer()->set_email("ann@gmail.com");
  absl::StatusOr<v1::Customer> erased = logic_.CreateCustomer(x, kActor);
  ASSERT_TRUE(erased.ok()) << erased.status();
  v1::EraseCustomerRequest erase;
  erase.set_id(erased->id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());

  v1::UpdateCustomerRequest update;
  update.mutable_customer()->set_id(kept->id());
  update.mutable_update_mask()->add_paths("email");
  for (const char* own : {"a.nn@gmail.com", "a.nn+shop@gmail.com"}) {
    SCOPED_TRACE(own);
    update.mutable_customer()->set_email(own);
    absl::StatusOr<v1::Customer> u = logic_.UpdateCustomer(update, kActor);
    EXPECT_TRUE(u.ok()) << u.status();
  }
  update.mutable_customer()->set_email("ann@gmail.com");
  EXPECT_EQ(logic_.UpdateCustomer(update, kActor).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A create retried after an email it named was suppressed (erased on the
// customer it moved to) is answered as first stored; a new create with that
// email is still refused.
TEST_F(CustomerLogicTest,
       ARetriedCreateIsAnsweredThoughItsEmailWasErasedSince) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("Ada");
  request.mutable_customer()->set_email("ada@example.com");
  request.set_request_id("create-ada");
  absl::StatusOr<v1::Customer> first = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(first.ok()) << first.status();
  v1::UpdateCustomerRequest update;
  *update.mutable_customer() = *first;
  update.mutable_customer()->set_email("ada@work.example");
  update.mutable_update_mask()->add_paths("email");
  ASSERT_TRUE(logic_.UpdateCustomer(update, kActor).ok());
  v1::CreateCustomerRequest other;
  other.mutable_customer()->set_display_name("Someone");
  other.mutable_customer()->set_email("ada@example.com");
  absl::StatusOr<v1::Customer> someone = logic_.CreateCustomer(other, kActor);
  ASSERT_TRUE(someone.ok()) << someone.status();
  v1::EraseCustomerRequest erase;
  erase.set_id(someone->id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());

  absl::StatusOr<v1::Customer> retried = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->id(), first->id());
  request.set_request_id("create-ada-2");
  EXPECT_EQ(logic_.CreateCustomer(request, kActor).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A customer created without identities, erased before the answer to its
// create came back: the retry of that create must not make the person
// again.
TEST_F(CustomerLogicTest, ARetriedCreateOfAnErasedCustomerIsRefused) {
  v1::CreateCustomerRequest request;
  request.mutable_customer()->set_display_name("Ada Lovelace");
  request.mutable_customer()->set_postal_code("N1");
  request.set_request_id("create-ada");
  absl::StatusOr<v1::Customer> c = logic_.CreateCustomer(request, kActor);
  ASSERT_TRUE(c.ok()) << c.status();
  v1::EraseCustomerRequest erase;
  erase.set_id(c->id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());
  EXPECT_EQ(store_.suppressed.count(logic_.CreateRequestHash("create-ada")),
            1u);
  const size_t customers = store_.customers.size();
  absl::Status retried = logic_.CreateCustomer(request, kActor).status();
  EXPECT_EQ(retried.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StartsWith(retried.message(), "request_id: ")) << retried;
  EXPECT_EQ(store_.customers.size(), customers);
  // Another request id makes another customer, as any create would.
  request.set_request_id("create-ada-2");
  EXPECT_TRUE(logic_.CreateCustomer(request, kActor).ok());
}

// The same for a customer that IdentifyCustomer created: its retry finds no
// one (the email moved to nobody) and creates nobody again.
TEST_F(CustomerLogicTest, ARetriedIdentifyOfAnErasedCustomerIsRefused) {
  v1::IdentifyCustomerRequest request;
  request.set_email("ada@example.com");
  request.set_request_id("identify-ada");
  absl::StatusOr<v1::IdentifyCustomerResponse> made =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_TRUE(made->created());
  v1::EraseCustomerRequest erase;
  erase.set_id(made->customer().id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());
  const size_t customers = store_.customers.size();
  absl::Status retried = logic_.IdentifyCustomer(request, kActor).status();
  EXPECT_EQ(retried.code(), absl::StatusCode::kFailedPrecondition) << retried;
  EXPECT_TRUE(absl::StartsWith(retried.message(), "request_id: ")) << retried;
  EXPECT_EQ(store_.customers.size(), customers);
}

// A retry whose customer is gone by the time it is read: erased, it is
// refused; deleted, the identities are looked up anew, and name no creation.
TEST_F(CustomerLogicTest, ARetryWhoseCustomerWentMeanwhileIsNotAnswered) {
  const v1::Customer erased = Create("Erased");
  store_.customers[erased.id()].erased = true;
  store_.created_by["identify-9"] = erased.id();
  store_.suppressed.insert(logic_.CreateRequestHash("identify-9"));
  v1::IdentifyCustomerRequest request;
  request.set_email("ada@example.com");
  request.set_request_id("identify-9");
  absl::Status refused = logic_.IdentifyCustomer(request, kActor).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition) << refused;
  EXPECT_TRUE(absl::StartsWith(refused.message(), "request_id: ")) << refused;

  const v1::Customer other = Create("Other");
  store_.created_by["identify-10"] = ids_.Next();  // deleted since
  store_.identity_matches = {other.id()};
  request.set_request_id("identify-10");
  absl::StatusOr<v1::IdentifyCustomerResponse> found =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().id(), other.id());
  EXPECT_FALSE(found->created());
}

// A customer found by its identities but merged or erased before it was
// read is looked for again, not answered.
TEST_F(CustomerLogicTest, IdentifyLooksAgainForACustomerMergedMeanwhile) {
  const v1::Customer stayed = Create("Stayed");
  const std::string gone = ids_.Next();
  store_.merged_into[gone] = stayed.id();
  v1::IdentifyCustomerRequest request;
  request.set_email("ada@example.com");

  // The first look finds the merged record, the second the one it went into.
  store_.identity_answers = {{gone}, {stayed.id()}};
  absl::StatusOr<v1::IdentifyCustomerResponse> found =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().id(), stayed.id());
  EXPECT_FALSE(found->created());
  EXPECT_EQ(store_.identity_lookups, 2);

  // Found merged three times over: the caller is told to retry.
  store_.identity_lookups = 0;
  store_.identity_matches = {gone};
  absl::Status s = logic_.IdentifyCustomer(request, kActor).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_EQ(store_.identity_lookups, 3);
}

TEST_F(CustomerLogicTest, IdentifyLooksAgainForACustomerErasedMeanwhile) {
  const v1::Customer erased = Create("Erased");
  v1::EraseCustomerRequest erase;
  erase.set_id(erased.id());
  ASSERT_TRUE(logic_.EraseCustomer(erase, kActor).ok());
  const v1::Customer other = Create("Other");
  v1::IdentifyCustomerRequest request;
  request.set_email("ada@example.com");
  store_.identity_answers = {{erased.id()}, {other.id()}};
  absl::StatusOr<v1::IdentifyCustomerResponse> found =
      logic_.IdentifyCustomer(request, kActor);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->customer().id(), other.id());
  EXPECT_EQ(store_.identity_lookups, 2);
}

TEST_F(CustomerLogicTest, SuppressionHashesDependOnTheSalt) {
  IdentityQuery q;
  q.email = "ada@example.com";
  CustomerLogic other(&store_, &ids_, [this] { return now_; },
                      {.suppression_salt = "other"});
  EXPECT_NE(logic_.IdentityHashes(q), other.IdentityHashes(q));
  EXPECT_EQ(logic_.IdentityHashes(q)[0].size(), 64u);
}

TEST_F(CustomerLogicTest, CustomerRefsAcceptIdsAndIdentities) {
  auto id =
      logic_.ParseCustomerRef("01jd8x4r2c6n7m9p0q1r2s3t4v", "customer_ref");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(std::get<std::string>(*id), "01jd8x4r2c6n7m9p0q1r2s3t4v");
  auto email =
      logic_.ParseCustomerRef("email: Ada@Example.com", "customer_ref");
  ASSERT_TRUE(email.ok()) << email.status();
  EXPECT_EQ(std::get<IdentityQuery>(*email).email, "Ada@Example.com");
  auto phone = logic_.ParseCustomerRef("phone:020 7946 0958", "customer_ref");
  ASSERT_TRUE(phone.ok()) << phone.status();
  EXPECT_EQ(std::get<IdentityQuery>(*phone).phone, "+442079460958");
  auto ext = logic_.ParseCustomerRef("ext:crm:A:7", "customer_ref");
  ASSERT_TRUE(ext.ok());
  EXPECT_EQ(std::get<IdentityQuery>(*ext).external_ids[0].source, "crm");
  EXPECT_EQ(std::get<IdentityQuery>(*ext).external_ids[0].id, "A:7");
  for (const char* bad :
       {"", "email:nope", "phone:12", "ext:crm", "ext::1", "ext:crm:", "bob"}) {
    absl::StatusOr<std::variant<std::string, IdentityQuery>> r =
        logic_.ParseCustomerRef(bad, "customer_ref");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(Fields(r.status()), std::vector<std::string>{"customer_ref"})
        << bad;
  }
}

v1::LogInteractionRequest Interaction(const std::string& customer,
                                      cv1::Channel channel) {
  v1::LogInteractionRequest r;
  r.set_customer_id(customer);
  r.mutable_interaction()->set_channel(channel);
  r.mutable_interaction()->mutable_interaction_time()->set_seconds(
      1'700'000'000);
  r.mutable_interaction()->mutable_cost()->set_units(2);
  return r;
}

// A grant of marketing by email, from the web.
v1::SetConsentRequest MarketingByEmail(const std::string& customer) {
  v1::SetConsentRequest r;
  r.set_customer_id(customer);
  r.mutable_consent()->set_purpose("marketing");
  r.mutable_consent()->set_channel(cv1::CHANNEL_EMAIL);
  r.mutable_consent()->set_granted(true);
  r.mutable_consent()->mutable_capture_time()->set_seconds(1'700'000'000);
  r.mutable_consent()->set_source("web");
  return r;
}

TEST_F(CustomerLogicTest, InteractionsOnChannelsTheTierForbidsNeedForce) {
  v1::Customer c = Create("Ada");
  cv1::ContactPolicy lead;
  lead.set_tier(cv1::TIER_LEAD);
  lead.add_channels(cv1::CHANNEL_EMAIL);
  lead.add_channels(cv1::CHANNEL_WEB);
  scores_.policy = lead;
  ASSERT_TRUE(
      logic_.LogInteraction(Interaction(c.id(), cv1::CHANNEL_EMAIL), kActor)
          .ok());
  absl::Status visit =
      logic_.LogInteraction(Interaction(c.id(), cv1::CHANNEL_VISIT), kActor)
          .status();
  EXPECT_EQ(visit.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(visit.message(),
            absl::StrCat("the Lead tier's contact policy does not allow the "
                         "visit channel for customer ",
                         c.id(),
                         " (allowed: email, web); set force to log it anyway"));
  EXPECT_EQ(store_.interactions.size(), 1u);
  // An interaction logged is a cost: its customer is scored again; a refused
  // one changes nothing.
  EXPECT_EQ(scores_.rescored, std::vector<std::string>{c.id()});
  v1::LogInteractionRequest forced = Interaction(c.id(), cv1::CHANNEL_VISIT);
  forced.set_force(true);
  ASSERT_TRUE(logic_.LogInteraction(forced, kActor).ok());
  EXPECT_EQ(store_.interactions.size(), 2u);
  // Unscored customers have no policy yet: anything goes.
  scores_.policy.reset();
  EXPECT_TRUE(
      logic_.LogInteraction(Interaction(c.id(), cv1::CHANNEL_VISIT), kActor)
          .ok());
}

// The tier's policy says what one interaction may cost, too: more needs
// force. (Interaction() costs 2.)
TEST_F(CustomerLogicTest, InteractionsAboveTheTiersCostCeilingNeedForce) {
  v1::Customer c = Create("Ada");
  cv1::ContactPolicy lead;
  lead.set_tier(cv1::TIER_LEAD);
  lead.add_channels(cv1::CHANNEL_EMAIL);
  lead.mutable_cost_ceiling()->set_units(2);
  scores_.policy = lead;
  ASSERT_TRUE(
      logic_.LogInteraction(Interaction(c.id(), cv1::CHANNEL_EMAIL), kActor)
          .ok());  // at the ceiling
  v1::LogInteractionRequest dear = Interaction(c.id(), cv1::CHANNEL_EMAIL);
  dear.mutable_interaction()->mutable_cost()->set_nanos(10'000'000);
  absl::Status refused = logic_.LogInteraction(dear, kActor).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(),
            absl::StrCat("interaction.cost: 2.01 is more than the 2.00 the "
                         "Lead tier's contact policy allows one interaction "
                         "with customer ",
                         c.id(), "; set force to log it anyway"));
  EXPECT_EQ(store_.interactions.size(), 1u);
  dear.set_force(true);
  ASSERT_TRUE(logic_.LogInteraction(dear, kActor).ok());
  EXPECT_EQ(store_.interactions.size(), 2u);
}

// An interaction or a consent for a customer merged between the service
// resolving its id and writing goes to the customer that stayed, as a
// purchase does, instead of failing ABORTED.
TEST_F(CustomerLogicTest,
       InteractionsAndConsentsFollowAMergeThatCameMeanwhile) {
  v1::Customer stayed = Create("Stayed"), merged = Create("Merged");
  store_.merge_on_write = {{merged.id(), stayed.id()}};
  absl::StatusOr<v1::Interaction> logged = logic_.LogInteraction(
      Interaction(merged.id(), cv1::CHANNEL_EMAIL), kActor);
  ASSERT_TRUE(logged.ok()) << logged.status();
  EXPECT_EQ(logged->customer_id(), stayed.id());
  ASSERT_EQ(store_.interactions.size(), 1u);
  EXPECT_EQ(store_.interactions[0].customer_id, stayed.id());

  v1::Customer other = Create("Other");
  store_.merge_on_write = {{other.id(), stayed.id()}};
  const v1::SetConsentRequest consent = MarketingByEmail(other.id());
  absl::StatusOr<v1::Consent> set = logic_.SetConsent(consent, kActor);
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_FALSE(store_.events.empty());
  EXPECT_EQ(store_.events.back().resource, "customers/" + stayed.id());
}

// Only a merge that came meanwhile is followed and written again: any
// other ABORTED (a deadlock the store gave up on) reaches the caller, after
// one attempt, to retry with its request id.
TEST_F(CustomerLogicTest, InteractionsAndConsentsRetryOnlyAMerge) {
  const v1::Customer ada = Create("Ada");
  store_.fail_next_write = absl::AbortedError("deadlock; retry");
  EXPECT_EQ(
      logic_.LogInteraction(Interaction(ada.id(), cv1::CHANNEL_EMAIL), kActor)
          .status()
          .code(),
      absl::StatusCode::kAborted);
  EXPECT_EQ(store_.write_attempts, 1);
  EXPECT_TRUE(store_.interactions.empty());

  store_.write_attempts = 0;
  store_.fail_next_write = absl::AbortedError("deadlock; retry");
  const v1::SetConsentRequest consent = MarketingByEmail(ada.id());
  EXPECT_EQ(logic_.SetConsent(consent, kActor).status().code(),
            absl::StatusCode::kAborted);
  EXPECT_EQ(store_.write_attempts, 1);
  EXPECT_TRUE(store_.consents.empty());
}

TEST_F(CustomerLogicTest, WritesUnderARequestIdGetTheIdMadeFromIt) {
  v1::Customer c = Create("Ada");
  v1::RecordPurchaseRequest keyed = Purchase(c.id(), 3, 0);
  keyed.set_request_id("order-1");
  ASSERT_TRUE(logic_.RecordPurchase(keyed, kActor).ok());
  ASSERT_TRUE(logic_.RecordPurchase(Purchase(c.id(), 3, 0), kActor).ok());
  ASSERT_EQ(store_.purchases.size(), 2u);
  EXPECT_EQ(store_.purchases[0].id, KeyedId(kPurchaseRequestScope, "order-1"));
  EXPECT_TRUE(IsValidId(store_.purchases[1].id));
  EXPECT_NE(store_.purchases[1].id, store_.purchases[0].id);

  v1::LogInteractionRequest note = Interaction(c.id(), cv1::CHANNEL_EMAIL);
  note.set_request_id("order-1");
  ASSERT_TRUE(logic_.LogInteraction(note, kActor).ok());
  ASSERT_EQ(store_.interactions.size(), 1u);
  EXPECT_EQ(store_.interactions[0].id,
            KeyedId(kInteractionRequestScope, "order-1"));
}

TEST_F(CustomerLogicTest, BadInteractionsAndConsentsNameTheirFields) {
  v1::Customer c = Create("Ada");
  v1::LogInteractionRequest bad;
  bad.set_customer_id(c.id());
  bad.mutable_interaction()->mutable_cost()->set_units(-1);
  bad.mutable_interaction()->set_kind(std::string(65, 'k'));
  bad.mutable_interaction()->set_customer_id(ids_.Next());
  EXPECT_EQ(Fields(logic_.LogInteraction(bad, kActor).status()),
            (std::vector<std::string>{"interaction.customer_id",
                                      "interaction.channel",
                                      "interaction.interaction_time",
                                      "interaction.cost", "interaction.kind"}));
  v1::LogInteractionRequest ahead;
  ahead.set_customer_id(c.id());
  ahead.mutable_interaction()->set_channel(cv1::CHANNEL_EMAIL);
  *ahead.mutable_interaction()->mutable_interaction_time() =
      ToTimestamp(absl::ToUnixMicros(now_ + absl::Hours(1)));
  ahead.mutable_interaction()->mutable_cost()->set_units(1);
  EXPECT_EQ(Fields(logic_.LogInteraction(ahead, kActor).status()),
            std::vector<std::string>{"interaction.interaction_time"});
  v1::SetConsentRequest consent;
  consent.set_customer_id(c.id());
  consent.mutable_consent();
  EXPECT_EQ(
      Fields(logic_.SetConsent(consent, kActor).status()),
      (std::vector<std::string>{"consent.purpose", "consent.channel",
                                "consent.capture_time", "consent.source"}));
  EXPECT_EQ(store_.interactions.size(), 0u);
  EXPECT_EQ(store_.consents.size(), 0u);
  // The purpose is a key: "marketing " would find the row of "marketing".
  consent.mutable_consent()->set_purpose("marketing ");
  EXPECT_EQ(Fields(logic_.SetConsent(consent, kActor).status())[0],
            "consent.purpose");
  consent.mutable_consent()->set_purpose("marketing");
  consent.mutable_consent()->set_channel(cv1::CHANNEL_SMS);
  consent.mutable_consent()->mutable_capture_time()->set_seconds(5);
  consent.mutable_consent()->set_source("web");
  consent.mutable_consent()->set_granted(true);
  // Dated ahead, it would outlive every withdrawal until then; a few minutes
  // of clock difference pass.
  consent.mutable_consent()->mutable_capture_time()->set_seconds(
      absl::ToUnixSeconds(now_ + absl::Hours(1)));
  EXPECT_EQ(Fields(logic_.SetConsent(consent, kActor).status()),
            (std::vector<std::string>{"consent.capture_time"}));
  EXPECT_EQ(store_.consents.size(), 0u);
  consent.mutable_consent()->mutable_capture_time()->set_seconds(
      absl::ToUnixSeconds(now_ + absl::Minutes(2)));
  ASSERT_TRUE(logic_.SetConsent(consent, kActor).ok());
  // One captured before the current one joins the history; the answer says
  // what holds, not what was sent.
  consent.mutable_consent()->mutable_capture_time()->set_seconds(5);
  consent.mutable_consent()->set_granted(false);
  absl::StatusOr<v1::Consent> late = logic_.SetConsent(consent, kActor);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(late->granted());
  EXPECT_EQ(late->capture_time().seconds(),
            absl::ToUnixSeconds(now_ + absl::Minutes(2)));
  EXPECT_EQ(store_.consents.size(), 2u);  // the fake keeps every call
}

}  // namespace
}  // namespace rapport::customer
