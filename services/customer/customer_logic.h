// The customer service's rules: validation of every request, idempotency,
// etags, field masks, paging. It speaks the API's messages and a
// CustomerStore, and knows nothing of gRPC transport or SQL.
//
//   CustomerLogic logic(&store, &ids, [] { return absl::Now(); }, {.currency = "USD"});
//   absl::StatusOr<v1::Customer> c = logic.CreateCustomer(request);
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "services/customer/customer_store.h"

namespace rapport::customer {

namespace v1 = ::rapport::customer::v1;

struct CustomerLogicOptions {
  // ISO 4217 code of the deployment's reporting currency; every amount is in it.
  std::string currency = "USD";
};

class CustomerLogic {
 public:
  using Clock = std::function<absl::Time()>;

  CustomerLogic(CustomerStore* store, IdGenerator* ids, Clock clock,
                CustomerLogicOptions options);

  absl::StatusOr<v1::Customer> CreateCustomer(const v1::CreateCustomerRequest& request);
  absl::StatusOr<v1::Customer> GetCustomer(const v1::GetCustomerRequest& request);
  absl::StatusOr<v1::ListCustomersResponse> ListCustomers(const v1::ListCustomersRequest& request);
  absl::StatusOr<v1::Customer> UpdateCustomer(const v1::UpdateCustomerRequest& request);
  absl::Status DeleteCustomer(const v1::DeleteCustomerRequest& request);
  absl::StatusOr<v1::Purchase> RecordPurchase(const v1::RecordPurchaseRequest& request);
  absl::StatusOr<v1::ListPurchasesResponse> ListPurchases(const v1::ListPurchasesRequest& request);

 private:
  int64_t NowMicros() const;

  CustomerStore* store_;
  IdGenerator* ids_;
  Clock clock_;
  CustomerLogicOptions options_;
};

// The etag of a stored customer version.
std::string CustomerEtag(int64_t version);

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_LOGIC_H_
