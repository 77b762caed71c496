// The customer service's storage interface: what the logic needs from a
// database, in plain structs. MysqlCustomerStore is the real one; unit tests
// use a fake of their own.
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/base/decimal.h"

namespace rapport::customer {

struct ExternalIdRecord {
  std::string source;
  std::string id;
  friend bool operator==(const ExternalIdRecord&, const ExternalIdRecord&) = default;
};

struct CustomerRecord {
  std::string id;
  std::string display_name;
  std::string email;  // as given; may be empty
  std::string phone;  // E.164; may be empty
  std::vector<ExternalIdRecord> external_ids;
  std::map<std::string, std::string> attributes;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 1;
};

struct PurchaseRecord {
  std::string id;
  std::string customer_id;
  int64_t purchase_time_us = 0;
  Decimal amount;
  std::string currency;
  std::string description;
  int64_t create_time_us = 0;
};

// Identifies a write for idempotency: a retry with the same id and the same
// content hash gets the first result; the same id with another hash is refused.
struct RequestKey {
  std::string id;    // empty: not idempotent
  std::string hash;  // digest of the request's content
};

class CustomerStore {
 public:
  virtual ~CustomerStore() = default;

  // Inserts the customer. ALREADY_EXISTS naming the holder when an identity
  // (email, phone, external id) is taken. With a request id seen before: the
  // stored customer (same hash) or INVALID_ARGUMENT on request_id (other hash).
  virtual absl::StatusOr<CustomerRecord> CreateCustomer(const CustomerRecord& customer,
                                                        const RequestKey& request) = 0;
  // NOT_FOUND when there is no such customer.
  virtual absl::StatusOr<CustomerRecord> GetCustomer(const std::string& id) = 0;
  // Customers with id > after_id in id order, at most `limit`.
  virtual absl::StatusOr<std::vector<CustomerRecord>> ListCustomers(const std::string& after_id,
                                                                    int limit) = 0;
  // Reads the customer under a row lock, applies `mutate` (which may refuse
  // with a status), bumps the version and writes it back in one transaction.
  virtual absl::StatusOr<CustomerRecord> UpdateCustomer(
      const std::string& id, const std::function<absl::Status(CustomerRecord&)>& mutate) = 0;
  // Deletes the customer; FAILED_PRECONDITION when it has purchases and !force.
  // `check` sees the current record first and may refuse (etag).
  virtual absl::Status DeleteCustomer(const std::string& id, bool force,
                                      const std::function<absl::Status(const CustomerRecord&)>&
                                          check) = 0;

  // Inserts a purchase of an existing customer (NOT_FOUND otherwise);
  // idempotent by `request` like CreateCustomer.
  virtual absl::StatusOr<PurchaseRecord> RecordPurchase(const PurchaseRecord& purchase,
                                                        const RequestKey& request) = 0;
  // The customer's purchases with start <= time < end, after the (time, id)
  // cursor, oldest first, at most `limit`.
  struct PurchaseQuery {
    std::string customer_id;
    std::optional<int64_t> start_time_us;
    std::optional<int64_t> end_time_us;
    std::optional<std::pair<int64_t, std::string>> after;
    int limit = 50;
  };
  virtual absl::StatusOr<std::vector<PurchaseRecord>> ListPurchases(
      const PurchaseQuery& query) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_STORE_H_
