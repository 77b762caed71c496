// The financial community's part of the differentiation kit (SCORING.md
// section 10): engagements are the events (each one event, of amount 0) and
// their costs the costs; a member's monetary fact is not a sum of event
// amounts but the market value of its holdings at as_of, for members with at
// least one counted engagement. MemberFacts is the Counterpart that says so:
// the kit's MysqlCounterpart counts the engagements, and the market values
// are added to its facts (and to each member's latest event day, for the CLV
// models).
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_VALUES_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_VALUES_H_

#include <map>
#include <string>
#include <vector>

#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::community {

differentiation::CounterpartTables MemberCounterpartTables();
differentiation::ValueTables MemberValueTables();
// The service's migrations, then the kit's, the audit log's and the import
// kit's.
std::vector<Migration> CommunitySchema();

class MemberFacts final : public differentiation::Counterpart {
 public:
  explicit MemberFacts(MysqlPool* pool, int scan_threads = 2);

  absl::StatusOr<int64_t> CountEntities() override;
  absl::Status ScanFacts(
      const differentiation::CountWindow& window, int batch_size,
      const differentiation::Sink<differentiation::EntityFacts>& sink) override;
  absl::StatusOr<std::vector<differentiation::EntityFacts>> FactsOf(
      const std::vector<std::string>& ids,
      const differentiation::CountWindow& window) override;
  absl::Status ScanEventDays(
      const differentiation::CountWindow& window, int batch_size,
      const differentiation::Sink<differentiation::EventDay>& sink) override;
  absl::StatusOr<std::string> ResolveEntity(const std::string& id) override;

 private:
  // The market value at `as_of_us` of those of `ids` (sorted) that hold
  // anything then.
  // `page`: the ids are one range's (see MarketValues).
  absl::StatusOr<std::map<std::string, Decimal>> ValuesOf(
      const std::vector<std::string>& ids, int64_t as_of_us, bool page);

  MysqlPool* const pool_;
  differentiation::MysqlCounterpart engagements_;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_VALUES_H_
