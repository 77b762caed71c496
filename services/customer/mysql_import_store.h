// ImportStore on MySQL/MariaDB through Connector/C++: multi-row INSERTs of up
// to 1000 rows per statement (each size prepared once per batch), IN (...)
// look-ups of up to 1000 keys, one transaction per written batch. Connector
// exceptions never leave it: everything runs in MysqlPool::Run/Transaction.
//
//   MysqlCustomerStore customers(pool.get());
//   MysqlImportStore imports(pool.get(), &customers);
//   BulkImportLogic logic(&imports, &customer_logic, &ids, clock, options);
#ifndef RAPPORT_SERVICES_CUSTOMER_MYSQL_IMPORT_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_MYSQL_IMPORT_STORE_H_

#include <string>
#include <vector>

#include "common/mysql/mysql_pool.h"
#include "services/customer/import_store.h"
#include "services/customer/mysql_customer_store.h"

namespace rapport::customer {

class MysqlImportStore final : public ImportStore {
 public:
  // Rows per multi-row INSERT and keys per IN (...) list.
  static constexpr size_t kRowsPerStatement = 1000;

  // `customers` answers SuppressedAmong, and checks new customers against
  // the suppressed identities inside a write; both must outlive the store.
  MysqlImportStore(MysqlPool* pool, MysqlCustomerStore* customers)
      : pool_(pool), customers_(customers) {}

  absl::StatusOr<std::vector<CustomerState>> GetCustomerStates(
      const std::vector<std::string>& ids) override;
  absl::StatusOr<std::vector<IdentityMatch>> FindIdentities(
      const std::vector<Identity>& identities) override;
  absl::StatusOr<std::vector<std::string>> SuppressedAmong(
      const std::vector<std::string>& hashes) override;
  absl::StatusOr<std::vector<StoredRow>> FindRows(
      ImportKind kind, const std::vector<std::string>& ids) override;
  absl::StatusOr<std::string> ImportPrefix(
      ImportKind kind, const std::string& import_id,
      const std::string& candidate) override;
  absl::StatusOr<int64_t> CustomerChanges() override;
  absl::Status WriteAuditEvent(const audit::Event& event) override;
  absl::Status WritePurchases(const std::vector<CustomerRecord>& new_customers,
                              const std::vector<ImportedPurchase>& rows,
                              const std::vector<IdentityClaim>& claims,
                              int64_t changes_seen) override;
  absl::Status WriteInteractions(
      const std::vector<CustomerRecord>& new_customers,
      const std::vector<ImportedInteraction>& rows,
      const std::vector<IdentityClaim>& claims, int64_t changes_seen) override;

 private:
  MysqlPool* pool_;
  MysqlCustomerStore* customers_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_MYSQL_IMPORT_STORE_H_
