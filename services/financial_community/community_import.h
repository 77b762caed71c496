// Imports of the register, engagements and coverage (ImportHoldings,
// ImportEngagements, ImportCoverage), on the import kit (common/import):
// rows name their member by id or by ext:SOURCE:ID, and an unknown external
// id creates the member with the rows (an investor; an analyst for
// coverage).
//
//   MysqlCommunityImports imports(pool.get(), &ids, clock, options);
//   RAPPORT_ASSIGN_OR_RETURN(v1::ImportHoldingsResponse r,
//                            imports.ImportHoldings(next, caller.subject));
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_IMPORT_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_IMPORT_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "common/ids.h"
#include "common/mysql/mysql_pool.h"
#include "services/financial_community/community_logic.h"

namespace rapport::community {

class MysqlCommunityImports {
 public:
  using Clock = std::function<absl::Time()>;

  // `values` (may be null) re-scores the members whose holdings and
  // engagements each batch stored.
  MysqlCommunityImports(MysqlPool* pool, IdGenerator* ids, Clock clock,
                        CommunityLogicOptions options,
                        differentiation::ValueKeeper* values = nullptr)
      : pool_(pool),
        ids_(ids),
        clock_(std::move(clock)),
        options_(std::move(options)),
        values_(values) {}

  // A row for a member, security and date that is stored already under
  // another id corrects it (its shares and price).
  absl::StatusOr<v1::ImportHoldingsResponse> ImportHoldings(
      const std::function<bool(v1::ImportHoldingsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {});
  // Rows whose request ids share the part before the last '/' are one
  // engagement; a row's cost is its member's share.
  absl::StatusOr<v1::ImportEngagementsResponse> ImportEngagements(
      const std::function<bool(v1::ImportEngagementsRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {});
  absl::StatusOr<v1::ImportCoverageResponse> ImportCoverage(
      const std::function<bool(v1::ImportCoverageRequest*)>& next,
      const std::string& actor, const std::function<bool()>& cancelled = {});

 private:
  // Queues entities for a background re-score; null without `values`.
  std::function<void(const std::vector<std::string>&)> Rescorer() const;

  MysqlPool* const pool_;
  IdGenerator* const ids_;
  const Clock clock_;
  const CommunityLogicOptions options_;
  differentiation::ValueKeeper* const values_;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_IMPORT_H_
