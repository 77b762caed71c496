// CustomerStore on MySQL/MariaDB through Connector/C++: the only file of the
// customer service that touches the connector.
//
//   RAPPORT_ASSIGN_OR_RETURN(auto pool, MysqlPool::Create(options));
//   RAPPORT_RETURN_IF_ERROR(ApplyMigrations(*pool, CustomerMigrations()).status());
//   MysqlCustomerStore store(pool.get());
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

class MysqlCustomerStore final : public CustomerStore {
 public:
  explicit MysqlCustomerStore(MysqlPool* pool) : pool_(pool) {}

  absl::StatusOr<CustomerRecord> CreateCustomer(const CustomerRecord& customer,
                                                const RequestKey& request) override;
  absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) override;
  absl::StatusOr<std::vector<CustomerRecord>> ListCustomers(const std::string& after_id,
                                                            int limit) override;
  absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id, const std::function<absl::Status(CustomerRecord&)>& mutate) override;
  absl::Status DeleteCustomer(
      const std::string& id, bool force,
      const std::function<absl::Status(const CustomerRecord&)>& check) override;
  absl::StatusOr<PurchaseRecord> RecordPurchase(const PurchaseRecord& purchase,
                                                const RequestKey& request) override;
  absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(const PurchaseQuery& query) override;

 private:
  MysqlPool* pool_;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_MYSQL_CUSTOMER_STORE_H_
