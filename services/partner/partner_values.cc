#include "services/partner/partner_values.h"

#include "common/audit/audit.h"
#include "common/import/mysql_import.h"
#include "common/records/records.h"
#include "services/partner/mysql_partner_store.h"

namespace rapport::partner {

differentiation::CounterpartTables PartnerCounterpartTables() {
  differentiation::CounterpartTables t;
  t.noun = "partner";
  t.entities = "partners";
  // Each table's index on (partner, time, amount, state) lets a refresh
  // aggregate every partner's facts from the index alone, in partner order.
  t.events.push_back({.table = "deals",
                      .entity_column = "partner_id",
                      .time_column = "close_time_us",
                      .amount_column = "amount",
                      .condition = "state = 4",  // won
                      .scan_index = "deals_partner_close"});
  t.events.push_back({.table = "orders",
                      .entity_column = "partner_id",
                      .time_column = "order_time_us",
                      .amount_column = "amount",
                      .scan_index = "orders_partner_time"});
  t.costs.push_back({.table = "interactions",
                     .entity_column = "partner_id",
                     .time_column = "interaction_time_us",
                     .amount_column = "cost",
                     .scan_index = "interactions_partner_time_cost"});
  t.costs.push_back({.table = "fund_requests",
                     .entity_column = "partner_id",
                     .time_column = "paid_time_us",
                     .amount_column = "claimed_amount",
                     .condition = "state = 5",  // paid
                     .scan_index = "fund_requests_partner_paid"});
  return t;
}

differentiation::ValueTables PartnerValueTables() {
  differentiation::ValueTables t;
  t.values = "partner_scores";
  t.entity_column = "partner_id";
  t.jobs = "refresh_jobs";
  t.entities = "partners";
  t.external_ids = "partner_external_ids";
  return t;
}

std::vector<Migration> PartnerSchema() {
  std::vector<Migration> all = PartnerMigrations();
  for (Migration& m :
       differentiation::ValueTableMigrations(PartnerValueTables())) {
    all.push_back(std::move(m));
  }
  for (Migration& m : audit::Migrations()) all.push_back(std::move(m));
  for (Migration& m : imports::Migrations()) all.push_back(std::move(m));
  // After the tables exist (a new database makes its keys the new way
  // already and finds nothing to change).
  all.push_back(
      FirmNameKeyMigration(2001, {{"partners", "display_name", "name_key"},
                                  {"deals", "account_name", "name_key"}}));
  all.push_back(TrimmedContactEmailsMigration(2002, PartnerChildTables()));
  return all;
}

}  // namespace rapport::partner
