// Imports of partners' deals, orders and interactions (ImportDeals,
// ImportOrders, ImportInteractions), on the import kit (common/import): rows
// name their partner by id or by ext:SOURCE:ID, and an unknown external id
// creates the partner (kind channel) with the rows.
//
//   MysqlPartnerImports imports(pool.get(), &ids, clock, options);
//   RAPPORT_ASSIGN_OR_RETURN(v1::ImportDealsResponse r,
//                            imports.ImportDeals(next, caller.subject));
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_IMPORT_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_IMPORT_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/import/row_import.h"
#include "common/mysql/mysql_pool.h"
#include "rapport/partner/v1/partner_service.pb.h"
#include "services/partner/partner_logic.h"

namespace rapport::partner {

class MysqlPartnerImports {
 public:
  using Clock = std::function<absl::Time()>;

  // `values` (may be null) re-scores the partners whose won deals, orders
  // and interactions each batch stored, and gives the contact policies
  // that recent interaction rows are held to.
  MysqlPartnerImports(MysqlPool* pool, IdGenerator* ids, Clock clock,
                      PartnerLogicOptions options,
                      differentiation::ValueKeeper* values = nullptr)
      : pool_(pool),
        ids_(ids),
        clock_(std::move(clock)),
        options_(std::move(options)),
        values_(values) {}

  absl::StatusOr<v1::ImportDealsResponse> ImportDeals(
      const std::function<bool(v1::ImportDealsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {});
  absl::StatusOr<v1::ImportOrdersResponse> ImportOrders(
      const std::function<bool(v1::ImportOrdersRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {});
  // `force` (an admin's, which the caller checked) records the rows that
  // the contact policy would refuse, and the import's audit events say so.
  absl::StatusOr<v1::ImportInteractionsResponse> ImportInteractions(
      const std::function<bool(v1::ImportInteractionsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {},
      bool force = false);

 private:
  // Queues entities for a background re-score; null without `values`.
  std::function<void(const std::vector<std::string>&)> Rescorer() const;
  // Holds an import's interaction rows dated within the last day to their
  // partners' contact policies (differentiation::RecentInteractions), each
  // partner's read once per import; null without `values`.
  std::function<absl::StatusOr<std::optional<imports::Reject>>(
      const imports::Row<InteractionRecord>&)>
  HeldToPolicy() const;

  MysqlPool* const pool_;
  IdGenerator* const ids_;
  const Clock clock_;
  const PartnerLogicOptions options_;
  differentiation::ValueKeeper* const values_;
};

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_IMPORT_H_
