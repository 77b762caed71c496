// The customer service's differentiation, as the shared kit
// (common/differentiation) sees it: customers are the entities (a customer
// merged into another is not live), purchases the activity events,
// interactions the costs, and the values live in customer_scores.
//
//   MysqlCounterpart facts(pool, CustomerCounterpartTables());
//   MysqlValueStore values(pool, CustomerValueTables());
//   ApplyMigrations(*pool, CustomerSchema());
#ifndef RAPPORT_SERVICES_CUSTOMER_CUSTOMER_VALUES_H_
#define RAPPORT_SERVICES_CUSTOMER_CUSTOMER_VALUES_H_

#include <vector>

#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/mysql/migrations.h"

namespace rapport::customer {

differentiation::CounterpartTables CustomerCounterpartTables();
differentiation::ValueTables CustomerValueTables();

// Every migration of the customer database: the service's own
// (migrations/), then the kit's tables under the customer's names, then the
// audit log.
std::vector<Migration> CustomerSchema();

}  // namespace rapport::customer

#endif  // RAPPORT_SERVICES_CUSTOMER_CUSTOMER_VALUES_H_
