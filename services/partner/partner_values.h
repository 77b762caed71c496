// The partner service's part of the differentiation kit: what counts as a
// partner's activity and its costs (SCORING.md section 10), where its values
// are kept, and the whole schema of its database.
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_VALUES_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_VALUES_H_

#include <vector>

#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/mysql/migrations.h"

namespace rapport::partner {

// Events: won deals (at their close time, with their amount) and orders;
// costs: interactions and paid fund claims (at their payment time).
differentiation::CounterpartTables PartnerCounterpartTables();
differentiation::ValueTables PartnerValueTables();
// The partner service's migrations, then the kit's, the audit log's and the
// import kit's.
std::vector<Migration> PartnerSchema();

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_VALUES_H_
