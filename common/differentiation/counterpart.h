// Counterpart: what a counterpart service (customer, partner, financial
// community) tells the differentiation kit about its entities, and the only
// thing it has to write to get refresh jobs, stored values, re-scoring,
// summaries and exports.
//
// Facts are already counted (SCORING.md sections 1 and 2, or section 10 for
// the financial community's market value): the kit never sees raw events,
// except as day sums for the CLV models. MysqlCounterpart implements it from
// a description of the service's tables; a service whose facts need more
// (holdings valued at as_of) implements it itself.
//
//   class PartnerFacts final : public Counterpart { ... };
//   PartnerFacts facts(pool);
//   Differentiation values(&facts, &value_store, &scoring, &ids, clock, {});
#ifndef RAPPORT_COMMON_DIFFERENTIATION_COUNTERPART_H_
#define RAPPORT_COMMON_DIFFERENTIATION_COUNTERPART_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/differentiation/values.h"

namespace rapport::differentiation {

class Counterpart {
 public:
  virtual ~Counterpart() = default;

  // The live entities (for a refresh's progress).
  virtual absl::StatusOr<int64_t> CountEntities() = 0;
  // Every live entity's counted facts, entities without any included, in
  // batches of at most `batch_size`, each in id byte order (the batches may
  // come in any order, one sink call at a time, from other threads).
  virtual absl::Status ScanFacts(const CountWindow& window, int batch_size,
                                 const Sink<EntityFacts>& sink) = 0;
  // The counted facts of those of `ids` that are live entities (zero when
  // they have none), in any order; other ids are left out.
  virtual absl::StatusOr<std::vector<EntityFacts>> FactsOf(
      const std::vector<std::string>& ids, const CountWindow& window) = 0;
  // Every live entity's counted events summed per UTC day, by id then day,
  // in batches of the rows of at most about `batch_size` entities.
  virtual absl::Status ScanEventDays(const CountWindow& window, int batch_size,
                                     const Sink<EventDay>& sink) = 0;
  // The live entity an id names (following merges, where entities merge);
  // NOT_FOUND naming the id otherwise, FAILED_PRECONDITION for an entity
  // that is there but not valued (an erased customer).
  virtual absl::StatusOr<std::string> ResolveEntity(const std::string& id) = 0;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_COUNTERPART_H_
