// The storage interface of bulk imports (ImportPurchases, ImportInteractions):
// a handful of set-at-a-time calls, so that BulkImportLogic makes a few round
// trips per batch of thousands of rows. MysqlImportStore is the real one; unit
// tests use a fake of their own.
//
//   RAPPORT_ASSIGN_OR_RETURN(std::string prefix,
//       store->ImportPrefix(ImportKind::kPurchases, import_id, candidate));
//   RAPPORT_ASSIGN_OR_RETURN(int64_t changes, store->CustomerChanges());
//   ... resolve customers with GetCustomerStates / FindIdentities ...
//   absl::Status s =
//       store->WritePurchases(new_customers, purchases, claims, changes);
//   ... on ALREADY_EXISTS, FindRows tells which row ids are already stored ...
#ifndef RAPPORT_SERVICES_CUSTOMER_IMPORT_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_IMPORT_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/audit/audit.h"
#include "services/customer/customer_store.h"

namespace rapport::customer {

// Which table an import writes.
enum class ImportKind { kPurchases, kInteractions };

// A customer as the import sees it when resolving a reference.
struct CustomerState {
  std::string id;
  std::string merged_into;  // set when merged into another customer
  bool erased = false;
  friend bool operator==(const CustomerState&, const CustomerState&) = default;
};

// One identity a row names: an email (its key: lower-cased, trimmed), an
// E.164 phone, or an external id (source and id).
struct Identity {
  enum class Kind { kEmail, kPhone, kExternalId };
  Kind kind = Kind::kEmail;
  std::string source;  // kExternalId only
  std::string value;   // email key, phone, or external id
  friend bool operator==(const Identity&, const Identity&) = default;
};

// A stored customer that holds an identity.
struct IdentityMatch {
  Identity identity;
  CustomerState customer;
};

// An identity that rows of an import batch were resolved by, and the stored
// customer record that held it then (the one found, before following merges).
struct IdentityClaim {
  Identity identity;
  std::string holder;
};

// A stored row's id and the hash of its content.
struct StoredRow {
  std::string id;
  std::string hash;
};

// A row to insert. Its id is made from its idempotency key: KeyedId of the
// request id when the row has one (RequestKey.id), else RowId of the import's
// prefix and the row number. RequestKey.hash is always set.
struct ImportedPurchase {
  PurchaseRecord purchase;
  RequestKey request;
};
struct ImportedInteraction {
  InteractionRecord interaction;
  RequestKey request;
};

class ImportStore {
 public:
  virtual ~ImportStore() = default;

  // The customers among `ids` that exist (merged and erased ones included),
  // in any order; unknown ids are left out.
  virtual absl::StatusOr<std::vector<CustomerState>> GetCustomerStates(
      const std::vector<std::string>& ids) = 0;
  // The stored customers holding any of `identities`, in any order; an
  // identity nobody holds is left out.
  virtual absl::StatusOr<std::vector<IdentityMatch>> FindIdentities(
      const std::vector<Identity>& identities) = 0;
  // The hashes among `hashes` that an erase suppressed.
  virtual absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) = 0;
  // The rows of `kind` already stored under any of `ids`.
  virtual absl::StatusOr<std::vector<StoredRow>> FindRows(
      ImportKind kind, const std::vector<std::string>& ids) = 0;

  // The id prefix (kRowIdPrefixSize characters) of the import of `kind`
  // named `import_id`: the one stored, else `candidate`, stored now.
  // ALREADY_EXISTS when `candidate` is another import's (try another).
  virtual absl::StatusOr<std::string> ImportPrefix(
      ImportKind kind, const std::string& import_id,
      const std::string& candidate) = 0;

  // How many merges, erasures and deletions of customers, and updates that
  // gave up or took an identity, there have been. A customer seen live, or
  // holding an identity, after this was read is so for as long as it stays
  // the same.
  virtual absl::StatusOr<int64_t> CustomerChanges() = 0;

  // Insert the new customers (with their email, phone and external ids) and
  // the rows in one transaction: all or nothing. ALREADY_EXISTS when another
  // writer got a unique key first (an identity, a row id): re-resolve and
  // try again. The rows' existing customers were resolved after
  // CustomerChanges() answered `changes_seen`, some by the identities in
  // `claims`: if it still does, they are live and still hold them (an update
  // that moves an identity counts as a change); else each is checked, and so
  // are the claims and the new customers' identities against the suppressed
  // ones: FAILED_PRECONDITION when a customer was merged, erased or deleted
  // since, an identity is no longer its claimed holder's, or a new one's
  // identity suppressed (re-resolve and try again).
  // Writes an audit event in a transaction of its own (an import's start
  // and end; the rows carry their actor themselves).
  virtual absl::Status WriteAuditEvent(const audit::Event& event) = 0;
  virtual absl::Status WritePurchases(
      const std::vector<CustomerRecord>& new_customers,
      const std::vector<ImportedPurchase>& rows,
      const std::vector<IdentityClaim>& claims, int64_t changes_seen) = 0;
  virtual absl::Status WriteInteractions(
      const std::vector<CustomerRecord>& new_customers,
      const std::vector<ImportedInteraction>& rows,
      const std::vector<IdentityClaim>& claims, int64_t changes_seen) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_IMPORT_STORE_H_
