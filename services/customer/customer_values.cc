#include "services/customer/customer_values.h"

#include "common/audit/audit.h"
#include "services/customer/mysql_customer_store.h"

namespace rapport::customer {
namespace {

// The customers that are scored, summed and exported: neither merged into
// another nor erased (an erased one's values would go on profiling a person
// who asked to be forgotten).
constexpr char kLiveCustomer[] =
    "c.merged_into IS NULL AND c.erased_time_us IS NULL";

}  // namespace

differentiation::CounterpartTables CustomerCounterpartTables() {
  differentiation::CounterpartTables t;
  t.noun = "customer";
  t.entities = "customers";
  t.live_condition = kLiveCustomer;
  t.merged_into_column = "merged_into";
  t.not_live_reason = "was erased";
  // The covering indexes of migration 0004 let a refresh aggregate every
  // customer's facts from the index alone, in customer-id order.
  t.events.push_back({.table = "purchases",
                      .entity_column = "customer_id",
                      .time_column = "purchase_time_us",
                      .amount_column = "amount",
                      .scan_index = "purchases_customer_time"});
  t.costs.push_back({.table = "interactions",
                     .entity_column = "customer_id",
                     .time_column = "interaction_time_us",
                     .amount_column = "cost",
                     .scan_index = "interactions_customer_time_cost"});
  return t;
}

differentiation::ValueTables CustomerValueTables() {
  differentiation::ValueTables t;
  t.values = "customer_scores";
  t.entity_column = "customer_id";
  t.jobs = "refresh_jobs";
  t.entities = "customers";
  t.live_condition = kLiveCustomer;
  t.external_ids = "customer_external_ids";
  return t;
}

std::vector<Migration> CustomerSchema() {
  std::vector<Migration> all = CustomerMigrations();
  for (Migration& m :
       differentiation::ValueTableMigrations(CustomerValueTables()))
    all.push_back(std::move(m));
  for (Migration& m : audit::Migrations()) all.push_back(std::move(m));
  all.push_back(MergedIdentitiesMigration(2001));
  all.push_back(TrimmedEmailsMigration(2002));
  return all;
}

}  // namespace rapport::customer
