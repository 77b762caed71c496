// Rows of the customer service's tables written directly, for tests of code
// that reads them (the differentiation kit on the customer's tables).
//
//   const std::string id = InsertCustomer(db, ids);
//   InsertPurchase(db, ids, id, kAsOf - kDay, "19.99");
#ifndef RAPPORT_TESTS_SUPPORT_CUSTOMER_ROWS_H_
#define RAPPORT_TESTS_SUPPORT_CUSTOMER_ROWS_H_

#include <cstdint>
#include <string>

#include "common/audit/audit.h"
#include "common/ids.h"
#include "tests/support/database.h"

namespace rapport::testing {

// The audit event of a test's change to a customer.
inline audit::Event Ev(const std::string& rpc, const std::string& actor = "test",
                       int64_t time_us = 1) {
  return {.time_us = time_us,
          .actor = actor,
          .rpc = rpc,
          .resource = "customers/test"};
}

inline std::string InsertCustomer(MigratedDatabase& db, IdGenerator& ids) {
  const std::string id = ids.Next();
  db.Exec(
      "INSERT INTO customers (id, display_name, create_time_us, "
      "update_time_us) VALUES (?, 'c', 0, 0)",
      {id});
  return id;
}

inline void InsertPurchase(MigratedDatabase& db, IdGenerator& ids,
                           const std::string& customer, int64_t time_us,
                           const std::string& amount) {
  db.Exec(
      "INSERT INTO purchases (id, customer_id, purchase_time_us, amount, "
      "currency, create_time_us) VALUES (?, ?, ?, ?, 'USD', 0)",
      {ids.Next(), customer, std::to_string(time_us), amount});
}

inline void InsertInteractionCost(MigratedDatabase& db, IdGenerator& ids,
                                  const std::string& customer,
                                  int64_t time_us, const std::string& cost) {
  db.Exec(
      "INSERT INTO interactions (id, customer_id, channel, "
      "interaction_time_us, cost, create_time_us) VALUES (?, ?, 1, ?, ?, 0)",
      {ids.Next(), customer, std::to_string(time_us), cost});
}

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_CUSTOMER_ROWS_H_
