// Counterpart on MySQL/MariaDB, from a description of the counterpart's
// tables: where its entities are, which tables hold its activity events and
// its costs. A counterpart service whose facts are sums and counts of rows
// (customers: purchases and interactions; partners: won deals, orders,
// interactions and paid fund claims) needs nothing else.
//
// Facts are counted a page of entities at a time: the live entities' ids in
// primary-key order, then each event and cost table aggregated by GROUP BY
// entity over an index on (entity, time, amount), merged in id order here;
// pages are aggregated on several connections at once.
//
//   CounterpartTables t{.noun = "partner", .entities = "partners", ...};
//   t.events.push_back({.table = "deals", .entity_column = "partner_id",
//                       .time_column = "close_time_us", .amount_column =
//                       "amount", .condition = "state = 4"});
//   MysqlCounterpart facts(pool.get(), std::move(t));
#ifndef RAPPORT_COMMON_DIFFERENTIATION_MYSQL_COUNTERPART_H_
#define RAPPORT_COMMON_DIFFERENTIATION_MYSQL_COUNTERPART_H_

#include <memory>
#include <string>
#include <vector>

#include "common/differentiation/counterpart.h"
#include "common/mysql/mysql_pool.h"

namespace rapport::differentiation {

// A table whose rows are activity events (or costs) of the entities.
struct EventTable {
  std::string table;          // e.g. "purchases"
  std::string entity_column;  // e.g. "customer_id"
  std::string time_column;    // microseconds since the epoch, BIGINT
  std::string amount_column;  // DECIMAL: the event's amount, or the cost
  // SQL over the table's columns that a row must meet to count (e.g.
  // "state = 4"); empty: every row counts.
  std::string condition;
  // An index on (entity, time, amount) that scans in entity order, forced
  // for the whole-population scans; empty: the optimizer's choice.
  std::string scan_index;
};

struct CounterpartTables {
  // What an entity is called in messages: "customer".
  std::string noun;
  // The entities (primary key `id`); `live_condition` is SQL over the table
  // aliased `c` that live entities meet (empty: all are live).
  std::string entities;
  std::string live_condition;
  // The column naming the entity an entity was merged into; empty when
  // entities never merge.
  std::string merged_into_column;
  // Why an entity that is neither live nor merged is not valued, after its
  // noun and id: "was erased" (FAILED_PRECONDITION).
  std::string not_live_reason = "is not valued";
  std::vector<EventTable> events;
  std::vector<EventTable> costs;
};

class MysqlCounterpart final : public Counterpart {
 public:
  // `scan_threads`: connections that aggregate facts concurrently in
  // ScanFacts.
  MysqlCounterpart(MysqlPool* pool, CounterpartTables tables,
                   int scan_threads = 2);
  ~MysqlCounterpart() override;

  absl::StatusOr<int64_t> CountEntities() override;
  absl::Status ScanFacts(const CountWindow& window, int batch_size,
                         const Sink<EntityFacts>& sink) override;
  absl::StatusOr<std::vector<EntityFacts>> FactsOf(
      const std::vector<std::string>& ids, const CountWindow& window) override;
  absl::Status ScanEventDays(const CountWindow& window, int batch_size,
                             const Sink<EventDay>& sink) override;
  absl::StatusOr<std::string> ResolveEntity(const std::string& id) override;

 private:
  struct Queries;

  MysqlPool* const pool_;
  const CounterpartTables tables_;
  const int scan_threads_;
  std::unique_ptr<const Queries> q_;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_MYSQL_COUNTERPART_H_
