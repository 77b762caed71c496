// BulkImportLogic against an in-memory ImportStore: row validation, rejects
// with row numbers, idempotency, customer resolution (ids, merges, identities,
// suppression), batching and the retry after losing a race.
#include "services/customer/bulk_import.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/ids.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::customer {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// An ImportStore in memory, with the unique keys of the real schema: an
// identity belongs to one customer, a row id to one row, an id prefix to one
// import.
class FakeImportStore final : public ImportStore {
 public:
  struct Customer {
    CustomerState state;
    CustomerRecord record;  // identities, display name
  };

  absl::StatusOr<std::vector<CustomerState>> GetCustomerStates(
      const std::vector<std::string>& ids) override {
    ++state_calls;
    if (!fail_reads.ok()) return fail_reads;
    std::vector<CustomerState> out;
    for (const std::string& id : ids) {
      if (auto it = customers.find(id); it != customers.end())
        out.push_back(it->second.state);
    }
    return out;
  }

  absl::StatusOr<std::vector<IdentityMatch>> FindIdentities(
      const std::vector<Identity>& identities) override {
    ++identity_calls;
    calls.push_back("identities");
    if (!fail_reads.ok()) return fail_reads;
    std::vector<IdentityMatch> out;
    for (const Identity& identity : identities) {
      asked_identities.push_back(identity.value);
      if (std::string holder = Holder(identity); !holder.empty()) {
        out.push_back({identity, customers.at(holder).state});
      }
    }
    return out;
  }

  absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) override {
    ++suppression_calls;
    std::vector<std::string> out;
    for (const std::string& h : hashes) {
      if (suppressed.count(h) > 0) out.push_back(h);
    }
    return out;
  }

  absl::StatusOr<std::vector<StoredRow>> FindRows(
      ImportKind kind, const std::vector<std::string>& ids) override {
    ++request_calls;
    if (!fail_reads.ok()) return fail_reads;
    std::vector<StoredRow> out;
    const auto& table =
        kind == ImportKind::kPurchases ? purchase_keys : interaction_keys;
    for (const std::string& id : ids) {
      if (auto it = table.find(id); it != table.end())
        out.push_back({id, it->second});
    }
    return out;
  }

  absl::StatusOr<std::string> ImportPrefix(
      ImportKind kind, const std::string& import_id,
      const std::string& candidate) override {
    candidates.push_back(candidate);
    EXPECT_EQ(candidate.size(), kRowIdPrefixSize);
    if (!fail_prefix.ok()) return fail_prefix;
    auto [it, inserted] = prefixes.try_emplace({kind, import_id}, candidate);
    if (inserted && taken_prefixes > 0) {
      --taken_prefixes;
      prefixes.erase(it);
      return absl::AlreadyExistsError("prefix taken");
    }
    return it->second;
  }
  // The id of row `row` of import `import_id` (which must have started).
  std::string RowIdOf(const std::string& import_id, int64_t row,
                      ImportKind kind = ImportKind::kPurchases) const {
    return RowId(prefixes.at({kind, import_id}), row);
  }

  absl::Status WriteAuditEvent(const audit::Event& event) override {
    events.push_back(event);
    return absl::OkStatus();
  }
  std::vector<audit::Event> events;

  absl::StatusOr<int64_t> CustomerChanges() override {
    ++changes_calls;
    calls.push_back("changes");
    if (!fail_changes.ok()) return fail_changes;
    return changes;
  }

  absl::Status WritePurchases(const std::vector<CustomerRecord>& new_customers,
                              const std::vector<ImportedPurchase>& rows,
                              const std::vector<IdentityClaim>& claims,
                              int64_t changes_seen) override {
    ++write_calls;
    written_changes.push_back(changes_seen);
    written_claims.push_back(claims);
    std::vector<StoredRow> keys;
    for (const ImportedPurchase& r : rows)
      keys.push_back({r.purchase.id, r.request.hash});
    if (before_write) before_write(keys);
    if (!write_error.ok()) return write_error;
    RAPPORT_RETURN_IF_ERROR(CheckUnique(new_customers, keys, purchase_keys));
    for (const CustomerRecord& c : new_customers) AddCustomer(c);
    for (const ImportedPurchase& r : rows) {
      EXPECT_TRUE(customers.count(r.purchase.customer_id))
          << r.purchase.customer_id;
      purchase_keys[r.purchase.id] = r.request.hash;
      purchases.push_back(r);
    }
    return absl::OkStatus();
  }

  absl::Status WriteInteractions(
      const std::vector<CustomerRecord>& new_customers,
      const std::vector<ImportedInteraction>& rows,
      const std::vector<IdentityClaim>& claims, int64_t changes_seen) override {
    ++write_calls;
    written_changes.push_back(changes_seen);
    written_claims.push_back(claims);
    std::vector<StoredRow> keys;
    for (const ImportedInteraction& r : rows)
      keys.push_back({r.interaction.id, r.request.hash});
    if (before_write) before_write(keys);
    if (!write_error.ok()) return write_error;
    RAPPORT_RETURN_IF_ERROR(CheckUnique(new_customers, keys, interaction_keys));
    for (const CustomerRecord& c : new_customers) AddCustomer(c);
    for (const ImportedInteraction& r : rows) {
      interaction_keys[r.interaction.id] = r.request.hash;
      interactions.push_back(r);
    }
    return absl::OkStatus();
  }

  // Adds a live customer with its identities.
  void AddCustomer(const CustomerRecord& c) {
    customers[c.id] = {{c.id, "", false}, c};
  }

  std::string Holder(const Identity& identity) const {
    for (const auto& [id, c] : customers) {
      switch (identity.kind) {
        case Identity::Kind::kEmail:
          if (!c.record.email.empty() &&
              absl::AsciiStrToLower(c.record.email) == identity.value) {
            return id;
          }
          break;
        case Identity::Kind::kPhone:
          if (!c.record.phone.empty() && c.record.phone == identity.value)
            return id;
          break;
        case Identity::Kind::kExternalId:
          for (const ExternalIdRecord& e : c.record.external_ids) {
            if (e.source == identity.source && e.id == identity.value)
              return id;
          }
          break;
      }
    }
    return "";
  }

  std::map<std::string, Customer> customers;
  std::map<std::string, std::string> purchase_keys, interaction_keys;  // by id
  std::map<std::pair<ImportKind, std::string>, std::string> prefixes;
  std::vector<std::string> candidates;  // as ImportPrefix was given them
  int taken_prefixes = 0;  // how many candidates to refuse as taken
  absl::Status fail_prefix;
  std::vector<ImportedPurchase> purchases;
  std::vector<ImportedInteraction> interactions;
  std::set<std::string> suppressed;
  std::vector<std::string> asked_identities;  // values, in the order asked
  // Runs at the start of every write, as a concurrent writer would.
  std::function<void(const std::vector<StoredRow>&)> before_write;
  absl::Status fail_reads;
  absl::Status fail_changes;
  absl::Status write_error;
  int64_t changes = 0;                   // what CustomerChanges() answers
  std::vector<int64_t> written_changes;  // the changes_seen of each write
  std::vector<std::vector<IdentityClaim>> written_claims;  // and its claims
  std::vector<std::string> calls;  // CustomerChanges and FindIdentities
  int state_calls = 0, identity_calls = 0, suppression_calls = 0,
      request_calls = 0, write_calls = 0, changes_calls = 0;

 private:
  absl::Status CheckUnique(
      const std::vector<CustomerRecord>& new_customers,
      const std::vector<StoredRow>& keys,
      const std::map<std::string, std::string>& table) const {
    for (const CustomerRecord& c : new_customers) {
      if (!c.email.empty() &&
          !Holder({Identity::Kind::kEmail, "", absl::AsciiStrToLower(c.email)})
               .empty()) {
        return absl::AlreadyExistsError(
            "Duplicate entry for key 'customers_email_key'");
      }
      for (const ExternalIdRecord& e : c.external_ids) {
        if (!Holder({Identity::Kind::kExternalId, e.source, e.id}).empty()) {
          return absl::AlreadyExistsError("Duplicate entry for key 'PRIMARY'");
        }
      }
    }
    std::set<std::string> seen;
    for (const StoredRow& k : keys) {
      if (table.count(k.id) > 0 || !seen.insert(k.id).second) {
        return absl::AlreadyExistsError("Duplicate entry for key 'PRIMARY'");
      }
    }
    return absl::OkStatus();
  }
};

class BulkImportTest : public ::testing::Test {
 protected:
  BulkImportTest()
      : logic_(
            nullptr, &ids_, [] { return absl::FromUnixSeconds(1'800'000'000); },
            Options()),
        imports_(
            &store_, &logic_, &ids_,
            [] { return absl::FromUnixSeconds(1'800'000'000); }, Options(),
            /*batch_rows=*/3,
            [this](const std::vector<std::string>& customers) {
              rescored_.push_back(customers);
            },
            [this](const std::string& customer)
                -> absl::StatusOr<std::optional<cv1::ContactPolicy>> {
              ++policy_reads_;
              if (!policy_error_.ok()) return policy_error_;
              auto it = policies_.find(customer);
              if (it == policies_.end()) return std::nullopt;
              return it->second;
            }) {}

  static CustomerLogicOptions Options() {
    CustomerLogicOptions options;
    options.currency = "EUR";
    options.suppression = true;
    options.suppression_salt = "salt";
    return options;
  }

  // Streams `messages` to ImportPurchases.
  absl::StatusOr<v1::ImportPurchasesResponse> Purchases(
      std::vector<v1::ImportPurchasesRequest> messages) {
    size_t i = 0;
    return imports_.ImportPurchases(
        [&](v1::ImportPurchasesRequest* out) {
          if (i == messages.size()) return false;
          *out = messages[i++];
          return true;
        },
        "user:importer", [this] { return cancelled_; });
  }
  absl::StatusOr<v1::ImportInteractionsResponse> Interactions(
      std::vector<v1::ImportInteractionsRequest> messages, bool force = false) {
    size_t i = 0;
    return imports_.ImportInteractions(
        [&](v1::ImportInteractionsRequest* out) {
          if (i == messages.size()) return false;
          *out = messages[i++];
          return true;
        },
        "user:importer", [this] { return cancelled_; }, force);
  }

  static v1::PurchaseRow Row(int64_t row, std::string ref,
                             std::string timestamp, std::string amount,
                             std::string currency = "",
                             std::string request_id = "") {
    v1::PurchaseRow r;
    r.set_row(row);
    r.set_customer_ref(std::move(ref));
    r.set_timestamp(std::move(timestamp));
    r.set_amount(std::move(amount));
    r.set_currency(std::move(currency));
    r.set_request_id(std::move(request_id));
    return r;
  }

  static v1::ImportPurchasesRequest Batch(std::string import_id,
                                          std::vector<v1::PurchaseRow> rows) {
    v1::ImportPurchasesRequest request;
    request.set_import_id(std::move(import_id));
    for (v1::PurchaseRow& r : rows) *request.add_rows() = std::move(r);
    return request;
  }

  std::string NewCustomer(std::string email = "") {
    CustomerRecord c;
    c.id = ids_.Next();
    c.display_name = "someone";
    c.email = std::move(email);
    store_.AddCustomer(c);
    return c.id;
  }

  static std::vector<std::pair<int64_t, std::string>> Rejects(
      const google::protobuf::RepeatedPtrField<v1::RowError>& errors) {
    std::vector<std::pair<int64_t, std::string>> out;
    for (const v1::RowError& e : errors) out.emplace_back(e.row(), e.field());
    return out;
  }

  IdGenerator ids_;
  FakeImportStore store_;
  CustomerLogic logic_;
  BulkImportLogic imports_;
  bool cancelled_ = false;  // the call's state when its stream ends
  // The customers of each stored batch, as queued for a re-score.
  std::vector<std::vector<std::string>> rescored_;
  // The contact policies of the customers that have a tier, and how often
  // one was asked for (or the error every ask gets).
  absl::flat_hash_map<std::string, cv1::ContactPolicy> policies_;
  int policy_reads_ = 0;
  absl::Status policy_error_;
};

// Every stored batch queues its customers (each once, created ones too) for
// a re-score, as a purchase or an interaction through the RPCs does; rows
// refused or already stored queue nothing.
TEST_F(BulkImportTest, StoredBatchesQueueTheirCustomersForARescore) {
  const std::string ada = NewCustomer();
  const std::string bob = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  ASSERT_TRUE(
      Purchases(
          {Batch("imp-1",
                 {Row(2, ada, t, "1"), Row(3, bob, t, "2"), Row(4, ada, t, "3"),
                  Row(5, "ext:crm:9", t, "4"), Row(6, ada, t, "x")})})
          .ok());
  ASSERT_EQ(store_.purchases.size(), 4u);
  std::vector<std::string> queued = {ada, bob,
                                     store_.purchases[3].purchase.customer_id};
  std::sort(queued.begin(), queued.end());
  std::vector<std::string> all;
  for (const auto& batch : rescored_) {
    EXPECT_TRUE(std::is_sorted(batch.begin(), batch.end()));
    EXPECT_EQ(std::adjacent_find(batch.begin(), batch.end()), batch.end());
    all.insert(all.end(), batch.begin(), batch.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, queued);
  rescored_.clear();
  ASSERT_TRUE(Purchases({Batch("imp-1", {Row(2, ada, t, "1")})}).ok());
  EXPECT_TRUE(rescored_.empty());  // a retry stores nothing
  v1::ImportInteractionsRequest costs;
  costs.set_import_id("int-1");
  v1::InteractionRow* row = costs.add_rows();
  row->set_row(2);
  row->set_customer_ref(bob);
  row->set_timestamp(t);
  row->set_channel("email");
  row->set_cost("0.5");
  ASSERT_TRUE(Interactions({costs}).ok());
  EXPECT_THAT(rescored_, ElementsAre(std::vector<std::string>{bob}));
}

TEST_F(BulkImportTest, BadRowsAreRejectedWithRowAndFieldAndGoodOnesStored) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-03-01T12:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1", {Row(2, ada, t, "19.99"), Row(3, ada, "2024-03-01", "1"),
                       Row(4, ada, t, "1e5"), Row(5, ada, t, "5", "USD"),
                       Row(6, "nobody", t, "1"),
                       Row(7, ada, t, "-5.5", "EUR", "order-7"),
                       Row(8, ada, t, "1", "", std::string(129, 'x')),
                       Row(0, ada, t, "1"), Row(9, "", t, "1"),
                       Row(10, ada, t, ""), Row(11, ada, t, "1000000000000.01"),
                       Row(12, ada, "2027-02-01T00:00:00Z", "1")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 2);
  EXPECT_EQ(r->duplicates(), 0);
  EXPECT_EQ(r->created_customers(), 0);
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{0, "row"},
                          std::pair<int64_t, std::string>{3, "timestamp"},
                          std::pair<int64_t, std::string>{4, "amount"},
                          std::pair<int64_t, std::string>{5, "currency"},
                          std::pair<int64_t, std::string>{6, "customer_ref"},
                          std::pair<int64_t, std::string>{8, "request_id"},
                          std::pair<int64_t, std::string>{9, "customer_ref"},
                          std::pair<int64_t, std::string>{10, "amount"},
                          std::pair<int64_t, std::string>{11, "amount"},
                          std::pair<int64_t, std::string>{12, "timestamp"}));
  EXPECT_NE(r->rejected(2).message().find("1e5"), std::string::npos)
      << r->rejected(2).message();
  EXPECT_NE(r->rejected(3).message().find("EUR"), std::string::npos)
      << r->rejected(3).message();

  ASSERT_EQ(store_.purchases.size(), 2u);
  const ImportedPurchase& first = store_.purchases[0];
  EXPECT_EQ(first.purchase.customer_id, ada);
  EXPECT_EQ(first.purchase.purchase_time_us, 1'709'294'400'000'000);
  EXPECT_EQ(first.purchase.amount, *Decimal::Parse("19.99"));
  EXPECT_EQ(first.purchase.currency, "EUR");
  EXPECT_EQ(first.purchase.create_time_us, 1'800'000'000'000'000);
  // Ids come from the rows' keys: the import's prefix and the row number, or
  // the request id.
  EXPECT_TRUE(IsValidId(first.purchase.id));
  EXPECT_EQ(first.purchase.id, store_.RowIdOf("imp-1", 2));
  EXPECT_EQ(first.request.id, "");
  EXPECT_EQ(first.request.hash.size(), 16u);
  EXPECT_EQ(store_.purchases[1].request.id, "order-7");
  EXPECT_EQ(store_.purchases[1].purchase.id,
            KeyedId(kPurchaseRequestScope, "order-7"));
  EXPECT_EQ(store_.purchases[1].purchase.amount, *Decimal::Parse("-5.5"));
  // Every row carries who imported it; the import's start and end are
  // audited, the end with its counts.
  EXPECT_EQ(first.purchase.recorded_by, "user:importer");
  EXPECT_EQ(store_.purchases[1].purchase.recorded_by, "user:importer");
  ASSERT_EQ(store_.events.size(), 2u);
  EXPECT_EQ(store_.events[0].rpc, "ImportPurchases");
  EXPECT_EQ(store_.events[0].resource, "imports/imp-1");
  EXPECT_EQ(store_.events[0].actor, "user:importer");
  EXPECT_EQ(store_.events[0].outcome, "started");
  EXPECT_EQ(store_.events[1].outcome, "partial");
  EXPECT_EQ(store_.events[1].details,
            "accepted=2 duplicates=0 rejected=10 created_customers=0");
}

// After its first batch, a ref is answered from the cache, refusals included:
// every later row naming it gets the same customer or the same reject.
TEST_F(BulkImportTest, ResolvedRefsKeepTheirAnswerInLaterBatches) {
  const std::string ada = NewCustomer();
  const std::string gone = NewCustomer();
  store_.customers[gone].state.erased = true;
  const std::string nobody = ids_.Next();
  const std::string t = "2024-01-01T00:00:00Z";
  std::vector<v1::ImportPurchasesRequest> messages;
  for (int b = 0; b < 3; ++b) {
    messages.push_back(
        Batch(b == 0 ? "imp-1" : "",
              {Row(10 * b + 1, ada, t, "1"), Row(10 * b + 2, gone, t, "1"),
               Row(10 * b + 3, nobody, t, "1")}));
  }
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(messages);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 3);
  ASSERT_EQ(r->rejected_size(), 6);
  for (int b = 0; b < 3; ++b) {
    EXPECT_EQ(r->rejected(2 * b).row(), 10 * b + 2);
    EXPECT_NE(r->rejected(2 * b).message().find("erased"), std::string::npos);
    EXPECT_EQ(r->rejected(2 * b + 1).row(), 10 * b + 3);
    EXPECT_NE(r->rejected(2 * b + 1).message().find("not found"),
              std::string::npos);
  }
  ASSERT_EQ(store_.purchases.size(), 3u);
  for (const ImportedPurchase& p : store_.purchases)
    EXPECT_EQ(p.purchase.customer_id, ada);
  EXPECT_EQ(store_.state_calls, 1);
  EXPECT_EQ(store_.write_calls, 3);
}

TEST_F(BulkImportTest, RetriedImportStoresNothingTwice) {
  const std::string ada = NewCustomer();
  auto batch = Batch(
      "imp-1", {Row(2, ada, "2024-01-01T00:00:00Z", "1"),
                Row(3, ada, "2024-01-02T00:00:00Z", "2"),
                Row(4, "email:new@example.com", "2024-01-03T00:00:00Z", "3"),
                Row(5, ada, "2024-01-04T00:00:00Z", "4", "", "order-5")});
  absl::StatusOr<v1::ImportPurchasesResponse> first = Purchases({batch});
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->accepted(), 4);
  EXPECT_EQ(first->created_customers(), 1);
  // The customer the import made names who made it.
  int made = 0;
  for (const auto& [id, c] : store_.customers) {
    if (id == ada) continue;
    ++made;
    EXPECT_EQ(c.record.created_by, "user:importer");
  }
  EXPECT_EQ(made, 1);
  absl::StatusOr<v1::ImportPurchasesResponse> again = Purchases({batch});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->accepted(), 0);
  EXPECT_EQ(again->duplicates(), 4);
  EXPECT_EQ(again->created_customers(), 0);
  EXPECT_THAT(again->rejected(), IsEmpty());
  EXPECT_EQ(store_.purchases.size(), 4u);
  EXPECT_EQ(store_.customers.size(), 2u);

  // The same request id under another import is still the same row.
  absl::StatusOr<v1::ImportPurchasesResponse> other = Purchases({Batch(
      "imp-2", {Row(9, ada, "2024-01-04T00:00:00Z", "4.000", "", "order-5")})});
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->duplicates(), 1);
  EXPECT_EQ(store_.purchases.size(), 4u);
}

// A stream that ends because the call did (cancelled, or past its deadline)
// is not the end of the import: the batch still pending is not stored, the
// answer is CANCELLED, and the end is audited as failed, with what the
// batches stored before it.
TEST_F(BulkImportTest, AStreamCutShortByItsCallIsNotTheEndOfTheImport) {
  const std::string ada = NewCustomer();
  cancelled_ = true;
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, ada, "2024-01-01T00:00:00Z", "1"),
                                 Row(3, ada, "2024-01-02T00:00:00Z", "2"),
                                 Row(4, ada, "2024-01-03T00:00:00Z", "3")}),
                 Batch("", {Row(5, ada, "2024-01-04T00:00:00Z", "4")})});
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_EQ(store_.purchases.size(), 3u);  // the first batch of 3 only
  ASSERT_FALSE(store_.events.empty());
  EXPECT_EQ(store_.events.back().outcome, "failed");
  EXPECT_EQ(store_.events.back().details,
            "CANCELLED accepted=3 duplicates=0 rejected=0 "
            "created_customers=0");
}

// A message of more than kMaxRowsPerMessage rows is refused, naming "rows",
// and nothing of it is stored.
TEST_F(BulkImportTest, AMessageOfTooManyRowsIsRefused) {
  const std::string ada = NewCustomer();
  std::vector<v1::PurchaseRow> rows;
  for (int i = 1; i <= kMaxRowsPerMessage + 1; ++i) {
    rows.push_back(Row(i, ada, "2024-01-01T00:00:00Z", "1"));
  }
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", std::move(rows))});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "rows")) << r.status();
  EXPECT_TRUE(store_.purchases.empty());
}

// A message refused after earlier ones were stored says so (the rows stay,
// and the import is to be sent again under its import id, not another),
// still naming the field.
TEST_F(BulkImportTest, AMessageRefusedAfterStoredRowsSaysTheyStay) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  std::vector<v1::PurchaseRow> too_many;
  for (int i = 10; i <= kMaxRowsPerMessage + 10; ++i) {
    too_many.push_back(Row(i, ada, t, "1"));
  }
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, ada, t, "1"), Row(3, ada, t, "2"),
                                 Row(4, ada, t, "3")}),
                 Batch("imp-1", std::move(too_many))});
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_EQ(store_.purchases.size(), 3u);
  EXPECT_TRUE(absl::StrContains(r.status().message(),
                                "3 rows of earlier messages were stored"))
      << r.status();
  EXPECT_TRUE(absl::StrContains(r.status().message(), "same import_id"))
      << r.status();
  ASSERT_EQ(FieldViolations(r.status()).size(), 1u);
  EXPECT_EQ(FieldViolations(r.status())[0].field, "rows");
}

TEST_F(BulkImportTest, KeyReusedForOtherContentIsRejected) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  ASSERT_TRUE(Purchases({Batch("imp-1", {Row(2, ada, t, "1", "", "r-1"),
                                         Row(3, ada, t, "2")})})
                  .ok());
  // Same keys, other amounts: a stored one, a default one, and a repeat within
  // one batch.
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases({Batch(
      "imp-1", {Row(2, ada, t, "9", "", "r-1"), Row(3, ada, t, "9"),
                Row(4, ada, t, "5", "", "r-2"), Row(5, ada, t, "6", "", "r-2"),
                Row(6, ada, t, "5", "", "r-2")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 1);    // row 4
  EXPECT_EQ(r->duplicates(), 1);  // row 6 repeats row 4
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{2, "request_id"},
                          std::pair<int64_t, std::string>{3, "row"},
                          std::pair<int64_t, std::string>{5, "request_id"}));
  EXPECT_EQ(r->rejected(0).message(), "was already used for other content");
  EXPECT_EQ(store_.purchases.size(), 3u);
}

// Rows stored for a customer since erased keep no hash of their content
// (kErasedHash): the same rows again are told so, not "other content".
TEST_F(BulkImportTest, RowsOfAnErasedCustomerAreRejectedAsSuch) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  ASSERT_TRUE(Purchases({Batch("imp-1", {Row(2, ada, t, "1", "", "r-1"),
                                         Row(3, ada, t, "2")})})
                  .ok());
  ASSERT_EQ(store_.purchase_keys.size(), 2u);
  for (auto& [id, hash] : store_.purchase_keys) {
    hash = CustomerStore::kErasedHash;
  }
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1", {Row(2, ada, t, "1", "", "r-1"), Row(3, ada, t, "2")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 0);
  EXPECT_EQ(r->duplicates(), 0);
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{2, "request_id"},
                          std::pair<int64_t, std::string>{3, "row"}));
  EXPECT_EQ(r->rejected(1).message(), CustomerStore::kErasedRequest);
  EXPECT_EQ(store_.purchases.size(), 2u);
}

TEST_F(BulkImportTest, IdentityRefsCreateOneCustomerAcrossSpellingsAndBatches) {
  const std::string known = NewCustomer("known@example.com");
  const std::string t = "2024-01-01T00:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, "email:Ann@Example.com", t, "1"),
                                 Row(3, "email:ann@example.com", t, "2"),
                                 Row(6, "ext:crm:42", t, "5")}),
                 Batch("", {Row(4, " email:ann@example.com", t, "3"),
                            Row(5, "email:known@example.com", t, "4"),
                            Row(7, "phone:+14155550100", t, "6"),
                            Row(8, "ext:crm:42", t, "7"),
                            Row(9, "email:Ann@example.com", t, "8")})});
  ASSERT_TRUE(r.ok()) << r.status();
  // Row 4's leading space makes it no ref at all.
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{4, "customer_ref"}));
  EXPECT_EQ(r->accepted(), 7);
  EXPECT_EQ(r->created_customers(), 3);  // ann, crm:42, the phone
  ASSERT_EQ(store_.purchases.size(), 7u);
  std::map<std::string, std::vector<std::string>> amounts_by_customer;
  for (const ImportedPurchase& p : store_.purchases) {
    amounts_by_customer[p.purchase.customer_id].push_back(
        p.purchase.amount.ToString());
  }
  EXPECT_EQ(amounts_by_customer[known], std::vector<std::string>{"4.00"});
  const std::string ann =
      store_.Holder({Identity::Kind::kEmail, "", "ann@example.com"});
  ASSERT_FALSE(ann.empty());
  EXPECT_EQ(amounts_by_customer[ann],
            (std::vector<std::string>{"1.00", "2.00", "8.00"}));
  const std::string crm =
      store_.Holder({Identity::Kind::kExternalId, "crm", "42"});
  ASSERT_FALSE(crm.empty());
  EXPECT_EQ(amounts_by_customer[crm],
            (std::vector<std::string>{"5.00", "7.00"}));
  EXPECT_EQ(store_.customers.at(crm).record.display_name, "crm:42");
  EXPECT_EQ(store_.customers.at(ann).record.display_name, "Ann@Example.com");
  EXPECT_FALSE(
      store_.Holder({Identity::Kind::kPhone, "", "+14155550100"}).empty());
  // Each identity is looked up once per import, not once per row or batch.
  EXPECT_EQ(store_.identity_calls, 2);
  EXPECT_THAT(store_.asked_identities,
              ElementsAre("ann@example.com", "42", "known@example.com",
                          "+14155550100"));
}

TEST_F(BulkImportTest,
       MergedIdsResolveToThePrimaryAndErasedOrUnknownAreRejected) {
  const std::string primary = NewCustomer();
  const std::string middle = NewCustomer();
  const std::string merged = NewCustomer();
  store_.customers[middle].state.merged_into = primary;
  store_.customers[merged].state.merged_into = middle;
  const std::string erased = NewCustomer();
  store_.customers[erased].state.erased = true;
  const std::string unknown = ids_.Next();
  const std::string t = "2024-01-01T00:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1", {Row(2, merged, t, "1"), Row(3, erased, t, "2"),
                       Row(4, unknown, t, "3"), Row(5, middle, t, "4")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 2);
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{3, "customer_ref"},
                          std::pair<int64_t, std::string>{4, "customer_ref"}));
  EXPECT_EQ(r->rejected(0).message(),
            absl::StrCat("customer ", erased, " was erased"));
  EXPECT_EQ(r->rejected(1).message(),
            absl::StrCat("customer ", unknown, " not found"));
  ASSERT_EQ(store_.purchases.size(), 2u);
  EXPECT_EQ(store_.purchases[0].purchase.customer_id, primary);
  EXPECT_EQ(store_.purchases[1].purchase.customer_id, primary);
}

TEST_F(BulkImportTest, AWriteNamesTheIdentitiesItsRowsWereFoundBy) {
  const std::string primary = NewCustomer("primary@example.com");
  const std::string merged = NewCustomer("merged@example.com");
  store_.customers[merged].state.merged_into = primary;
  const std::string t = "2024-01-01T00:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, "email:Primary@example.com", t, "1"),
                                 Row(3, "email:merged@example.com", t, "2"),
                                 Row(4, primary, t, "3"),
                                 Row(5, "email:new@example.com", t, "4"),
                                 Row(6, "email:primary@example.com", t, "5")}),
                 Batch("", {Row(7, "email:merged@example.com", t, "6")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 6);
  // Once per identity and batch, with the record that held it (the merged
  // one, not the customer its rows went to); not for an id, nor for a
  // customer the batch creates. A later batch that takes the answer from
  // the cache names it again.
  ASSERT_EQ(store_.written_claims.size(), 2u);
  std::vector<std::pair<std::string, std::string>> first, second;
  for (const IdentityClaim& c : store_.written_claims[0])
    first.emplace_back(c.identity.value, c.holder);
  for (const IdentityClaim& c : store_.written_claims[1])
    second.emplace_back(c.identity.value, c.holder);
  EXPECT_THAT(
      first,
      UnorderedElementsAre(
          std::pair<std::string, std::string>{"primary@example.com", primary},
          std::pair<std::string, std::string>{"merged@example.com", merged}));
  EXPECT_THAT(second, ElementsAre(std::pair<std::string, std::string>{
                          "merged@example.com", merged}));
  int to_primary = 0;
  for (const ImportedPurchase& p : store_.purchases)
    to_primary += p.purchase.customer_id == primary ? 1 : 0;
  EXPECT_EQ(to_primary, 5);
}

TEST_F(BulkImportTest, SuppressedIdentityCreatesNoCustomer) {
  IdentityQuery gone;
  gone.email = "gone@example.com";
  for (const std::string& h : logic_.IdentityHashes(gone))
    store_.suppressed.insert(h);
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1",
             {Row(2, "email:GONE@example.com", "2024-01-01T00:00:00Z", "1"),
              Row(3, "email:here@example.com", "2024-01-01T00:00:00Z", "1")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 1);
  EXPECT_EQ(r->created_customers(), 1);
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{2, "customer_ref"}));
  EXPECT_TRUE(
      store_.Holder({Identity::Kind::kEmail, "", "gone@example.com"}).empty());
  EXPECT_EQ(store_.customers.size(), 1u);
}

TEST_F(BulkImportTest,
       LosingARaceReResolvesAndCountsTheOthersRowsAsDuplicates) {
  const std::string t = "2024-01-01T00:00:00Z";
  // Just before our first write, a concurrent import of the same file creates
  // the customer and stores row 2 with the same content.
  std::string theirs;
  store_.before_write = [&](const std::vector<StoredRow>& keys) {
    if (!theirs.empty()) return;
    CustomerRecord c;
    c.id = theirs = ids_.Next();
    c.email = "race@example.com";
    store_.AddCustomer(c);
    ASSERT_EQ(keys[0].id, store_.RowIdOf("imp-1", 2));
    store_.purchase_keys[keys[0].id] = keys[0].hash;
  };
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, "email:race@example.com", t, "1"),
                                 Row(3, "email:race@example.com", t, "2")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 1);
  EXPECT_EQ(r->duplicates(), 1);
  EXPECT_EQ(r->created_customers(), 0);
  EXPECT_THAT(r->rejected(), IsEmpty());
  EXPECT_EQ(store_.write_calls, 2);
  EXPECT_EQ(store_.customers.size(), 1u);
  ASSERT_EQ(store_.purchases.size(), 1u);
  EXPECT_EQ(store_.purchases[0].purchase.customer_id, theirs);
  EXPECT_EQ(store_.purchases[0].purchase.id, store_.RowIdOf("imp-1", 3));
}

// Imports of the same new customers (or the streams of one import) race
// batch by batch: a batch that loses each race with fewer customers left to
// create is getting on, and runs until it is stored, however many races
// that takes.
TEST_F(BulkImportTest, ABatchLosingRacesWithFewerToCreateEachTimeGetsOn) {
  constexpr int kNew = BulkImportLogic::kMaxAttempts + 3;
  BulkImportLogic imports(
      &store_, &logic_, &ids_,
      [] { return absl::FromUnixSeconds(1'800'000'000); }, Options(),
      /*batch_rows=*/kNew);
  // Before each write, a concurrent import creates one more of them.
  int taken = 0;
  store_.before_write = [&](const std::vector<StoredRow>&) {
    if (taken == kNew) return;
    CustomerRecord c;
    c.id = ids_.Next();
    c.external_ids = {{"crm", absl::StrCat(++taken)}};
    store_.AddCustomer(c);
  };
  v1::ImportPurchasesRequest batch;
  batch.set_import_id("imp-1");
  for (int i = 1; i <= kNew; ++i) {
    *batch.add_rows() =
        Row(i + 1, absl::StrCat("ext:crm:", i), "2024-01-01T00:00:00Z", "1");
  }
  bool sent = false;
  absl::StatusOr<v1::ImportPurchasesResponse> r = imports.ImportPurchases(
      [&](v1::ImportPurchasesRequest* out) {
        if (sent) return false;
        *out = batch;
        sent = true;
        return true;
      },
      "user:importer", [] { return false; });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), kNew);
  EXPECT_EQ(r->created_customers(), 0);  // the other import made them all
  EXPECT_EQ(store_.write_calls, kNew + 1);
  EXPECT_EQ(store_.customers.size(), static_cast<size_t>(kNew));
}

TEST_F(BulkImportTest, EndlessCollisionsGiveUpWithAborted) {
  const std::string ada = NewCustomer();
  store_.write_error = absl::AlreadyExistsError(
      "Duplicate entry 'someone@example.com' for key 'customers_email_key'");
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, ada, "2024-01-01T00:00:00Z", "1")})});
  EXPECT_TRUE(absl::IsAborted(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("imp-1"), std::string::npos)
      << r.status();
  // The database's text (another customer's key) stays in the log.
  EXPECT_EQ(r.status().message().find("someone@example.com"), std::string::npos)
      << r.status();
  // One write without looking the keys up, then kMaxAttempts that do.
  EXPECT_EQ(store_.write_calls, BulkImportLogic::kMaxAttempts + 1);
  EXPECT_EQ(store_.request_calls, BulkImportLogic::kMaxAttempts);
  EXPECT_THAT(store_.purchases, IsEmpty());
}

// Refs already resolved are cached without their details; when a customer
// changes under a later batch, the cache is dropped and those refs are parsed
// and resolved again.
TEST_F(BulkImportTest, ACustomerChangingUnderABatchResolvesCachedRefsAgain) {
  const std::string t = "2024-01-01T00:00:00Z";
  int writes = 0;
  store_.before_write = [&](const std::vector<StoredRow>&) {
    ++writes;
    store_.write_error = writes == 2
                             ? absl::FailedPreconditionError("customer changed")
                             : absl::OkStatus();
    if (writes == 2) store_.changes = 8;  // the merge that changed it
  };
  store_.changes = 7;
  std::vector<v1::PurchaseRow> rows;
  for (int i = 0; i < 6; ++i)
    rows.push_back(Row(i + 2, "email:ann@example.com", t, "1"));
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {rows[0], rows[1], rows[2]}),
                 Batch("", {rows[3], rows[4], rows[5]})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 6);
  EXPECT_EQ(r->created_customers(), 1);
  EXPECT_EQ(writes, 3);
  ASSERT_EQ(store_.purchases.size(), 6u);
  for (const ImportedPurchase& p : store_.purchases)
    EXPECT_EQ(p.purchase.customer_id, store_.purchases[0].purchase.customer_id);
  // Looked up for the first batch, and again after the change.
  EXPECT_EQ(store_.identity_calls, 2);
  // Each write says how many changes there had been before its customers
  // were looked up: the count is read again when the cache is dropped.
  EXPECT_THAT(store_.written_changes, ElementsAre(7, 7, 8));
  // The count is read before the refs are looked up, both times, and after
  // each stored batch.
  EXPECT_THAT(store_.calls, ElementsAre("changes", "identities", "changes",
                                        "changes", "identities", "changes"));
}

// A change anywhere after a batch was stored (an identity moved, say) would
// send every later batch through the write's checks: the cache is dropped
// instead, and the next batch's refs are looked up again under the new count.
TEST_F(BulkImportTest, AChangeAfterABatchStartsTheCacheAfresh) {
  const std::string t = "2024-01-01T00:00:00Z";
  store_.changes = 3;
  int writes = 0;
  store_.before_write = [&](const std::vector<StoredRow>&) {
    if (++writes == 2) store_.changes = 4;  // during the second batch
  };
  std::vector<v1::PurchaseRow> rows;
  for (int i = 0; i < 9; ++i)
    rows.push_back(Row(i + 2, "email:ann@example.com", t, "1"));
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {rows[0], rows[1], rows[2]}),
                 Batch("", {rows[3], rows[4], rows[5]}),
                 Batch("", {rows[6], rows[7], rows[8]})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 9);
  // Looked up for the first batch (and created), taken from the cache for
  // the second, looked up again for the third.
  EXPECT_EQ(store_.identity_calls, 2);
  EXPECT_THAT(store_.written_changes, ElementsAre(3, 3, 4));
}

TEST_F(BulkImportTest, AnUnreadableChangeCountStopsTheImportBeforeWriting) {
  const std::string ada = NewCustomer();
  store_.fail_changes = absl::UnavailableError("database down");
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, ada, "2024-01-01T00:00:00Z", "1")})});
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(store_.write_calls, 0);
  EXPECT_THAT(store_.purchases, IsEmpty());
}

TEST_F(BulkImportTest, BatchesAreStoredEveryBatchRows) {
  const std::string ada = NewCustomer();
  std::vector<v1::PurchaseRow> rows;
  for (int i = 0; i < 7; ++i)
    rows.push_back(Row(i + 2, ada, "2024-01-01T00:00:00Z", "1"));
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1", {rows[0], rows[1]}),
       Batch("", {rows[2], rows[3], rows[4], rows[5]}), Batch("", {rows[6]})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 7);
  // 2 rows wait; 6 rows go; 1 row goes at the end.
  EXPECT_EQ(store_.write_calls, 2);
  // No write collided, so no key was looked up.
  EXPECT_EQ(store_.request_calls, 0);
  // The customer id was looked up once for the whole import.
  EXPECT_EQ(store_.state_calls, 1);
}

TEST_F(BulkImportTest, ImportIdIsRequiredAndFixed) {
  auto bad = [&](std::vector<v1::ImportPurchasesRequest> messages) {
    absl::StatusOr<v1::ImportPurchasesResponse> r =
        Purchases(std::move(messages));
    EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
    return r.ok() ? "" : std::string(r.status().message());
  };
  EXPECT_NE(bad({}).find("import_id"), std::string::npos);
  EXPECT_NE(bad({Batch("", {})}).find("import_id"), std::string::npos);
  EXPECT_NE(bad({Batch(std::string(65, 'x'), {})}).find("import_id"),
            std::string::npos);
  EXPECT_NE(bad({Batch("a", {}), Batch("b", {})}).find("import_id"),
            std::string::npos);
  EXPECT_EQ(store_.write_calls, 0);
}

TEST_F(BulkImportTest, StoreFailureFailsTheCall) {
  store_.fail_reads = absl::UnavailableError("database gone");
  const std::string t = "2024-01-01T00:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(2, ids_.Next(), t, "1")})});
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(store_.purchases, IsEmpty());
}

TEST_F(BulkImportTest, ATakenIdPrefixIsReplacedAndARetryKeepsTheFirst) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  store_.taken_prefixes = 1;  // the first candidate is another import's
  auto batch = Batch("imp-1", {Row(2, ada, t, "1"), Row(3, ada, t, "2")});
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases({batch});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 2);
  ASSERT_EQ(store_.candidates.size(), 2u);
  EXPECT_NE(store_.candidates[0], store_.candidates[1]);
  ASSERT_EQ(store_.purchases.size(), 2u);
  EXPECT_EQ(store_.purchases[0].purchase.id, RowId(store_.candidates[1], 2));
  EXPECT_EQ(store_.purchases[1].purchase.id, RowId(store_.candidates[1], 3));

  // The retry offers a new candidate, gets the stored prefix, and so makes
  // the same ids.
  absl::StatusOr<v1::ImportPurchasesResponse> again = Purchases({batch});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->duplicates(), 2);
  EXPECT_EQ(store_.candidates.size(), 3u);
  EXPECT_EQ(store_.purchases.size(), 2u);
}

TEST_F(BulkImportTest, AnImportWithoutItsPrefixStoresNothing) {
  store_.fail_prefix = absl::UnavailableError("database gone");
  absl::StatusOr<v1::ImportPurchasesResponse> r = Purchases(
      {Batch("imp-1", {Row(2, NewCustomer(), "2024-01-01T00:00:00Z", "1")})});
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(store_.write_calls, 0);
  // Prefixes that are always taken give up after a few candidates.
  store_.fail_prefix = absl::OkStatus();
  store_.taken_prefixes = 1000;
  store_.candidates.clear();
  r = Purchases(
      {Batch("imp-1", {Row(2, NewCustomer(), "2024-01-01T00:00:00Z", "1")})});
  EXPECT_TRUE(absl::IsAlreadyExists(r.status())) << r.status();
  EXPECT_EQ(store_.candidates.size(),
            static_cast<size_t>(BulkImportLogic::kMaxAttempts));
  EXPECT_EQ(store_.write_calls, 0);
}

TEST_F(BulkImportTest, RowNumbersBeyondWhatAnIdHoldsAreRejected) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00Z";
  absl::StatusOr<v1::ImportPurchasesResponse> r =
      Purchases({Batch("imp-1", {Row(kMaxRowIdRow, ada, t, "1"),
                                 Row(kMaxRowIdRow + 1, ada, t, "1")})});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 1);
  EXPECT_THAT(
      Rejects(r->rejected()),
      ElementsAre(std::pair<int64_t, std::string>{kMaxRowIdRow + 1, "row"}));
  ASSERT_EQ(store_.purchases.size(), 1u);
  EXPECT_TRUE(IsValidId(store_.purchases[0].purchase.id));
}

TEST_F(BulkImportTest, InteractionRowsAreValidatedAndStored) {
  const std::string ada = NewCustomer();
  const std::string t = "2024-01-01T00:00:00+01:00";
  auto row = [&](int64_t n, std::string channel, std::string cost,
                 std::string kind = "", std::string note = "") {
    v1::InteractionRow r;
    r.set_row(n);
    r.set_customer_ref(ada);
    r.set_timestamp(t);
    r.set_channel(std::move(channel));
    r.set_cost(std::move(cost));
    r.set_kind(std::move(kind));
    r.set_note(std::move(note));
    return r;
  };
  v1::ImportInteractionsRequest request;
  request.set_import_id("int-1");
  *request.add_rows() =
      row(2, "email", "0.25", "newsletter", "line one\nline two");
  *request.add_rows() = row(3, "fax", "1");
  *request.add_rows() = row(4, "Phone", "-1");
  *request.add_rows() = row(5, "sms", "1", std::string(65, 'k'));
  *request.add_rows() = row(6, "sms", "1", "", std::string(1025, 'n'));
  *request.add_rows() = row(7, "sms", "1", "", "\xff");
  *request.add_rows() = row(8, "VISIT", "0");
  absl::StatusOr<v1::ImportInteractionsResponse> r = Interactions({request});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 2);
  EXPECT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{3, "channel"},
                          std::pair<int64_t, std::string>{4, "cost"},
                          std::pair<int64_t, std::string>{5, "kind"},
                          std::pair<int64_t, std::string>{6, "note"},
                          std::pair<int64_t, std::string>{7, "note"}));
  ASSERT_EQ(store_.interactions.size(), 2u);
  const ImportedInteraction& first = store_.interactions[0];
  EXPECT_EQ(first.interaction.customer_id, ada);
  EXPECT_EQ(first.interaction.channel, cv1::CHANNEL_EMAIL);
  EXPECT_EQ(first.interaction.cost, *Decimal::Parse("0.25"));
  EXPECT_EQ(first.interaction.kind, "newsletter");
  EXPECT_EQ(first.interaction.note, "line one\nline two");
  EXPECT_EQ(first.interaction.interaction_time_us, 1'704'063'600'000'000);
  EXPECT_EQ(first.interaction.id,
            store_.RowIdOf("int-1", 2, ImportKind::kInteractions));
  EXPECT_EQ(store_.interactions[1].interaction.channel, cv1::CHANNEL_VISIT);

  absl::StatusOr<v1::ImportInteractionsResponse> again =
      Interactions({request});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->duplicates(), 2);
  EXPECT_EQ(store_.interactions.size(), 2u);
}

// Interaction rows dated within the last 24 hours keep to their customer's
// contact policy, as LogInteraction's do without force; older rows are
// history, recorded as they come, and a customer without a tier (or one the
// import creates) has no policy yet. Each customer's policy is read once an
// import, and a policy that cannot be read fails the import.
TEST_F(BulkImportTest, RecentInteractionsKeepToTheCustomersContactPolicy) {
  const std::string ada = NewCustomer();
  const std::string bob = NewCustomer();
  cv1::ContactPolicy lead;
  lead.set_tier(cv1::TIER_LEAD);
  lead.add_channels(cv1::CHANNEL_EMAIL);
  lead.add_channels(cv1::CHANNEL_WEB);
  lead.mutable_cost_ceiling()->set_units(2);
  policies_[ada] = lead;
  const auto row = [](int64_t n, const std::string& ref, const std::string& t,
                      const std::string& channel, const std::string& cost) {
    v1::InteractionRow r;
    r.set_row(n);
    r.set_customer_ref(ref);
    r.set_timestamp(t);
    r.set_channel(channel);
    r.set_cost(cost);
    return r;
  };
  // The clock says 2027-01-15T08:00:00Z. Three messages, stored as two
  // batches (of 3 rows, then 5).
  std::vector<v1::ImportInteractionsRequest> messages(3);
  for (auto& m : messages) m.set_import_id("recent");
  *messages[0].add_rows() = row(2, ada, "2027-01-15T07:00:00Z", "visit", "1");
  *messages[0].add_rows() =
      row(3, ada, "2027-01-15T07:30:00Z", "email", "2.01");
  *messages[0].add_rows() =
      row(8, "ext:crm:5", "2027-01-15T07:00:00Z", "visit", "50");
  *messages[1].add_rows() = row(4, ada, "2027-01-14T08:00:00Z", "visit", "1");
  *messages[1].add_rows() =
      row(5, ada, "2027-01-14T08:00:00.000001Z", "visit", "1");
  *messages[2].add_rows() = row(6, ada, "2027-01-15T07:00:00Z", "email", "2");
  *messages[2].add_rows() = row(7, bob, "2027-01-15T07:00:00Z", "visit", "50");
  *messages[2].add_rows() =
      row(9, "ext:crm:5", "2027-01-15T07:10:00Z", "visit", "50");
  absl::StatusOr<v1::ImportInteractionsResponse> r = Interactions(messages);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 5);
  EXPECT_EQ(r->created_customers(), 1);
  ASSERT_THAT(Rejects(r->rejected()),
              ElementsAre(std::pair<int64_t, std::string>{2, "channel"},
                          std::pair<int64_t, std::string>{3, "cost"},
                          std::pair<int64_t, std::string>{5, "channel"}));
  EXPECT_EQ(r->rejected(0).message(),
            absl::StrCat("the Lead tier's contact policy does not allow the "
                         "visit channel for customer ",
                         ada,
                         " (allowed: email, web); a row dated within the last "
                         "24 hours is held to it (an admin's import with force "
                         "records it anyway)"));
  EXPECT_NE(r->rejected(1).message().find(
                absl::StrCat("2.01 is more than the 2.00 the Lead tier's "
                             "contact policy allows one interaction with "
                             "customer ",
                             ada)),
            std::string::npos)
      << r->rejected(1).message();
  EXPECT_EQ(store_.interactions.size(), 5u);
  // Ada's (once for both batches) and Bob's; never the new customer's,
  // whose second row came in the later batch.
  EXPECT_EQ(policy_reads_, 2);

  v1::ImportInteractionsRequest bob_only;
  bob_only.set_import_id("bob");
  *bob_only.add_rows() = row(2, bob, "2027-01-15T07:20:00Z", "visit", "5");
  ASSERT_EQ(Interactions({bob_only})->accepted(), 1);
  EXPECT_EQ(store_.interactions.size(), 6u);

  // A retry stores nothing twice and refuses the same rows. Bob has a tier
  // now whose policy refuses his rows: stored already, they are duplicates,
  // in a batch with other rows stored already and in one of their own.
  policies_[bob] = lead;
  absl::StatusOr<v1::ImportInteractionsResponse> again = Interactions(messages);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->accepted(), 0);
  EXPECT_EQ(again->duplicates(), 5);
  EXPECT_EQ(again->rejected_size(), 3);
  absl::StatusOr<v1::ImportInteractionsResponse> bob_again =
      Interactions({bob_only});
  ASSERT_TRUE(bob_again.ok()) << bob_again.status();
  EXPECT_EQ(bob_again->duplicates(), 1);
  EXPECT_EQ(bob_again->rejected_size(), 0);
  EXPECT_EQ(store_.interactions.size(), 6u);

  // An admin's import with force records what the policy refuses, and its
  // audit events say so.
  store_.events.clear();
  absl::StatusOr<v1::ImportInteractionsResponse> forced =
      Interactions(messages, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->accepted(), 3);
  EXPECT_EQ(forced->duplicates(), 5);
  EXPECT_EQ(forced->rejected_size(), 0);
  EXPECT_EQ(store_.interactions.size(), 9u);
  ASSERT_EQ(store_.events.size(), 2u);
  EXPECT_EQ(store_.events[0].outcome, "started");
  EXPECT_EQ(store_.events[0].details, "force");
  EXPECT_TRUE(absl::EndsWith(store_.events[1].details, " force"))
      << store_.events[1].details;

  // Older rows are not asked about; a recent one whose policy cannot be
  // read fails the import, storing nothing of its batch.
  policy_error_ = absl::UnavailableError("the database is gone");
  policy_reads_ = 0;
  v1::ImportInteractionsRequest old;
  old.set_import_id("old");
  *old.add_rows() = row(2, ada, "2026-06-01T00:00:00Z", "visit", "1");
  ASSERT_TRUE(Interactions({old}).ok());
  EXPECT_EQ(policy_reads_, 0);
  v1::ImportInteractionsRequest lost;
  lost.set_import_id("lost");
  *lost.add_rows() = row(2, bob, "2026-06-01T00:00:00Z", "web", "1");
  *lost.add_rows() = row(3, ada, "2027-01-15T07:00:00Z", "email", "1");
  EXPECT_EQ(Interactions({lost}).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(store_.interactions.size(), 10u);
}

}  // namespace
}  // namespace rapport::customer
