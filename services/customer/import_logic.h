// Bulk imports of purchases and interactions (ImportPurchases,
// ImportInteractions): every row validated on its own, rejects reported with
// their row number and column, good rows stored in large batches, and a
// retried import (same import id, or the same request id per row) storing
// nothing twice. Rows name customers by id or by identity
// ("email:...", "phone:...", "ext:SOURCE:ID"); an unknown identity creates
// the customer.
#ifndef RAPPORT_SERVICES_CUSTOMER_IMPORT_LOGIC_H_
#define RAPPORT_SERVICES_CUSTOMER_IMPORT_LOGIC_H_

#include <functional>

#include "absl/status/statusor.h"
#include "rapport/customer/v1/customer_service.pb.h"

namespace rapport::customer {

class ImportLogic {
 public:
  virtual ~ImportLogic() = default;
  // `next` fills the next batch and returns false at the end of the stream;
  // `cancelled` tells, once it has, whether the call ended first (cancelled,
  // or past its deadline): the import then stops with CANCELLED.
  virtual absl::StatusOr<v1::ImportPurchasesResponse> ImportPurchases(
      const std::function<bool(v1::ImportPurchasesRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled) = 0;
  // `force` (an admin's, which the caller checked) records the rows that
  // the contact policy would refuse.
  virtual absl::StatusOr<v1::ImportInteractionsResponse> ImportInteractions(
      const std::function<bool(v1::ImportInteractionsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled,
      bool force) = 0;
};

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_IMPORT_LOGIC_H_
