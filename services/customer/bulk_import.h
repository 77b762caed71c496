// BulkImportLogic: the rules of ImportPurchases and ImportInteractions.
//
// Rows arrive as raw text in batches; each is validated on its own (a bad row
// is reported with its row number, column and reason, and never stops the good
// ones). Good rows are gathered into batches of `batch_rows` and stored with a
// few set-at-a-time ImportStore calls per batch:
//
//   1. FindRows: which rows are stored already (duplicates, or rejects when
//      the content differs); skipped on a batch's first attempt, since a
//      stored row fails the write in step 3 anyway, which is rare;
//   2. customers: refs not seen earlier in this import are resolved at once
//      (ids through GetCustomerStates, following merges; identities through
//      FindIdentities; unknown identities checked against suppression and
//      created);
//   3. WritePurchases / WriteInteractions: new customers and rows in one
//      transaction. ALREADY_EXISTS (a concurrent import took an identity or a
//      row id first) re-runs the batch from step 1.
//
// A row's idempotency key is its request_id, or else its import and row
// number, and its id is made from that key (KeyedId of the request id, or
// RowId of the import's prefix and the row; ImportStore::ImportPrefix keeps a
// prefix per import id), so a retried import makes the same ids and stores
// nothing twice. The answer lists at most kMaxListedRejects rejects;
// rows - accepted - duplicates is the full count.
//
//   BulkImportLogic imports(&import_store, &customer_logic, &ids,
//                           [] { return absl::Now(); }, {.currency = "USD"});
//   CustomerServiceImpl service(&customer_logic, &imports, nullptr);
#ifndef RAPPORT_SERVICES_CUSTOMER_BULK_IMPORT_H_
#define RAPPORT_SERVICES_CUSTOMER_BULK_IMPORT_H_

#include <cstddef>
#include <functional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/differentiation/contact_policy.h"
#include "common/ids.h"
#include "services/customer/customer_logic.h"
#include "services/customer/import_logic.h"
#include "services/customer/import_store.h"

namespace rapport::customer {

class BulkImportLogic final : public ImportLogic {
 public:
  using Clock = std::function<absl::Time()>;

  static constexpr size_t kDefaultBatchRows = 5000;
  static constexpr size_t kMaxListedRejects = 10000;
  static constexpr size_t kMaxImportIdBytes = 64;
  // How often one batch is re-run after losing a race to a concurrent writer
  // (a race lost with fewer customers left to create than before is getting
  // on, and not counted, up to imports::kMaxRuns runs in all).
  static constexpr int kMaxAttempts = 5;

  // Told the customers whose rows a batch stored, to score them again.
  using Rescore = std::function<void(const std::vector<std::string>&)>;

  // `customers` parses refs and hashes identities; `options` gives the
  // reporting currency and whether suppression is on; `rescore` (optional)
  // queues the customers of every stored batch for a re-score, as a
  // purchase or an interaction through the RPCs does; `policy_of`
  // (optional) gives a customer's contact policy, to which interaction rows
  // dated within the last day are held (RecentInteractions). None is owned.
  BulkImportLogic(
      ImportStore* store, const CustomerLogic* customers, IdGenerator* ids,
      Clock clock, CustomerLogicOptions options,
      size_t batch_rows = kDefaultBatchRows, Rescore rescore = nullptr,
      differentiation::RecentInteractions::PolicyOf policy_of = nullptr);

  absl::StatusOr<v1::ImportPurchasesResponse> ImportPurchases(
      const std::function<bool(v1::ImportPurchasesRequest*)>& next,
      const std::string& actor,
      const std::function<bool()>& cancelled) override;
  absl::StatusOr<v1::ImportInteractionsResponse> ImportInteractions(
      const std::function<bool(v1::ImportInteractionsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled,
      bool force) override;

  // What the importers share; public only for the implementation file.
  struct Deps {
    ImportStore* store;
    const CustomerLogic* customers;
    IdGenerator* ids;
    Clock clock;
    CustomerLogicOptions options;
    size_t batch_rows;
    Rescore rescore;
    differentiation::RecentInteractions::PolicyOf policy_of;
  };

 private:
  Deps deps_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_BULK_IMPORT_H_
