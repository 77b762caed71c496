// CustomerStore on MySQL/MariaDB through Connector/C++: the only file of the
// customer service that touches the connector.
//
//   RAPPORT_ASSIGN_OR_RETURN(auto pool, MysqlPool::Create(options));
//   RAPPORT_RETURN_IF_ERROR(ApplyMigrations(*pool,
//   CustomerMigrations()).status()); MysqlCustomerStore store(pool.get());
#ifndef RAPPORT_SERVICES_CUSTOMER_MYSQL_CUSTOMER_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_MYSQL_CUSTOMER_STORE_H_

#include <vector>

#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "services/customer/customer_store.h"

namespace rapport {
// The customer service's schema, embedded from services/customer/migrations.
const std::vector<Migration>& CustomerMigrations();
}  // namespace rapport

namespace rapport::customer {

// A migration that gives records merged before their email and phone were
// kept (as identities of the customer they went into) those keys back,
// where no one has taken them since.
Migration MergedIdentitiesMigration(int version);
// Customers' emails stored before NormalizeEmail trimmed Unicode spaces and
// invisible characters at their ends (a no-break space from a spreadsheet),
// trimmed now with their keys, so that the same address finds them. One
// whose trimmed address another customer holds already keeps its email and
// takes only the match key, so that ListDuplicates shows the two to merge.
Migration TrimmedEmailsMigration(int version);

class MysqlCustomerStore final : public CustomerStore {
 public:
  explicit MysqlCustomerStore(MysqlPool* pool) : pool_(pool) {}

  // The suppression hashes of a record's identities (CustomerLogic's
  // IdentityHashes, which hold the deployment's salt).
  using SuppressionHashes =
      std::function<std::vector<std::string>(const CustomerRecord&)>;
  // Makes CreateCustomer and UpdateCustomer refuse (FAILED_PRECONDITION) a
  // record with a suppressed identity inside their own transaction, under a
  // shared lock: an erasure committed while the caller's own check ran
  // (the caller checks first, to answer early) is seen all the same. Set
  // before the store is used.
  void RefuseSuppressedIdentities(SuppressionHashes hashes_of) {
    suppression_hashes_ = std::move(hashes_of);
  }

  absl::StatusOr<CustomerRecord> CreateCustomer(
      const CustomerRecord& customer, const RequestKey& request,
      const audit::Event& event) override;
  absl::StatusOr<std::optional<std::string>> CustomerCreatedBy(
      const RequestKey& request) override;
  absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) override;
  absl::StatusOr<std::vector<CustomerRecord>> GetCustomers(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::vector<std::pair<CustomerRecord, int>>> ListCustomers(
      const CustomerFilter& filter, const std::optional<ListCursor>& after,
      int limit) override;
  absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id,
      const std::function<absl::Status(CustomerRecord&)>& mutate,
      const audit::Event& event) override;
  absl::Status DeleteCustomer(
      const std::string& id, bool force,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) override;
  std::vector<absl::StatusOr<PurchaseRecord>> RecordPurchases(
      const std::vector<NewPurchase>& purchases) override;
  absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(
      const PurchaseQuery& query) override;
  absl::StatusOr<std::string> ResolveCustomerId(const std::string& id) override;
  absl::StatusOr<std::vector<std::string>> FindByIdentities(
      const IdentityQuery& query) override;
  absl::StatusOr<std::vector<DuplicateGroupRecord>> FindDuplicates(
      const std::string& after_key, int limit) override;
  absl::StatusOr<MergeResult> MergeCustomers(
      const std::string& primary, const std::vector<std::string>& duplicates,
      const audit::Event& event, bool dry_run) override;
  absl::StatusOr<std::vector<IdentityQuery>> MergedIdentities(
      const std::string& id) override;
  absl::StatusOr<std::vector<std::string>> CreateRequestsOf(
      const std::string& id) override;
  absl::Status EraseCustomer(
      const std::string& id, const std::vector<std::string>& suppression_hashes,
      const std::function<absl::Status(const CustomerRecord&)>& check,
      const audit::Event& event) override;
  absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) override;
  absl::StatusOr<InteractionRecord> LogInteraction(
      const InteractionRecord& interaction, const RequestKey& request,
      const std::optional<audit::Event>& event,
      const std::function<absl::Status()>& admit) override;
  absl::StatusOr<std::vector<InteractionRecord>> ListInteractions(
      const InteractionQuery& query) override;
  absl::Status SetConsent(const std::string& customer_id,
                          const ConsentRecord& consent,
                          const audit::Event& event) override;
  absl::StatusOr<std::vector<ConsentRecord>> ListConsents(
      const std::string& customer_id) override;
  absl::Status WriteAuditEvent(const audit::Event& event) override;
  absl::StatusOr<std::vector<audit::Event>> ListAuditEvents(
      const audit::Filter& filter, const std::optional<audit::Cursor>& after,
      int limit) override;

  // FAILED_PRECONDITION when an identity of one of `records` is suppressed
  // (after RefuseSuppressedIdentities; OK without), read in the caller's
  // transaction on `c`: for writers of new customers (imports), whose
  // transaction holds customer_changes shared, so that no erasure (which
  // updates it first) suppresses one before the write commits.
  absl::Status CheckNoneSuppressed(sql::Connection& c,
                                   const std::vector<CustomerRecord>& records);

 private:
  // One purchase with its checks (the path of retries and of customers that
  // are not live).
  absl::StatusOr<PurchaseRecord> RecordOnePurchase(
      const PurchaseRecord& purchase, const RequestKey& request);
  // Inserts those of purchases[begin, begin + n) whose customers are live,
  // in one statement; says which went in. ALREADY_EXISTS (nothing written)
  // when one's request id was used before.
  absl::StatusOr<std::vector<bool>> InsertLivePurchases(
      const std::vector<NewPurchase>& purchases, size_t begin, size_t n);
  // FAILED_PRECONDITION when one of `record`'s identities is suppressed
  // (after RefuseSuppressedIdentities; OK without).
  absl::Status CheckNotSuppressed(sql::Connection& c,
                                  const CustomerRecord& record);
  // The same for the identities `after` has and `before` had not: an update
  // is not refused for an identity the customer holds already.
  absl::Status CheckNewNotSuppressed(sql::Connection& c,
                                     const CustomerRecord& before,
                                     const CustomerRecord& after);
  // FAILED_PRECONDITION when one of `hashes` is suppressed (read shared).
  absl::Status NoneSuppressed(sql::Connection& c,
                              const std::vector<std::string>& hashes);

  MysqlPool* pool_;
  SuppressionHashes suppression_hashes_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_MYSQL_CUSTOMER_STORE_H_
