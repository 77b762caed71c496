// Per-entity facts (SCORING.md sections 1-2): frequency, monetary, last event
// and cost to serve, aggregated from activity events and interaction costs.
//
// The scoring service receives a population in many stream batches, as raw
// events or as partial facts already aggregated elsewhere. FactsAccumulator
// merges them in any order and any batching into the same FactsTable:
//
//   absl::StatusOr<FactsAccumulator> acc = FactsAccumulator::Create(
//       {.as_of_micros = as_of, .window_days = 365});
//   RAPPORT_RETURN_IF_ERROR(acc->AddKnownEntities(ids));
//   RAPPORT_RETURN_IF_ERROR(acc->AddEvents(events));   // any number of times
//   RAPPORT_RETURN_IF_ERROR(acc->AddCosts(costs));
//   RAPPORT_ASSIGN_OR_RETURN(FactsTable facts, std::move(*acc).Finish());
//   // facts.id(i) ascending by bytes, facts.frequency[i], ...
//
// Events and costs count only inside the window
// `as_of - window_days*86400s < t <= as_of` (no lower bound without a
// window); an id seen anywhere (known list, events or costs, counted or not)
// is part of the population. Identical rows are separate events.
//
// Limits: every amount, cost and partial monetary/cost must have magnitude
// below 1e18 units and at most 1e11 inputs may be added in total, so sums are
// exact and cannot overflow.
//
// Performance: ids are interned in an open-addressing table split into two
// hash partitions aggregated by two threads; per entity the accumulator keeps
// 64 bytes plus 16 bytes of table and the id bytes when longer than 12.

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_FACTS_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_FACTS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/base/decimal.h"

namespace rapport::scoring {

// A purchase, deal or engagement. `entity_id` is a view: the bytes must stay
// valid only for the duration of the call that receives the event.
struct ActivityEvent {
  absl::string_view entity_id;
  int64_t time_micros = 0;  // UTC, microseconds since the Unix epoch
  Decimal amount;           // may be negative (refund) or zero
};

// What serving an entity cost (a call, a visit, a mailing); cost >= 0.
struct CostEvent {
  absl::string_view entity_id;
  int64_t time_micros = 0;
  Decimal cost;
};

// Facts of one entity, already restricted to the window by whoever computed
// them. Merging sums frequency, monetary and cost and keeps the latest
// last_event_micros.
struct PartialFacts {
  absl::string_view entity_id;
  int64_t frequency = 0;
  Decimal monetary;
  std::optional<int64_t> last_event_micros;  // required iff frequency > 0
  Decimal cost_to_serve;
};

struct FactsOptions {
  int64_t as_of_micros = 0;
  std::optional<int64_t> window_days;  // >= 1 when set
};

// InvalidArgument naming `window_days` if it is set and below 1.
absl::Status ValidateFactsOptions(const FactsOptions& options);

// One entity's facts, as a plain row.
struct EntityFacts {
  std::string entity_id;
  int64_t frequency = 0;
  Decimal monetary;
  std::optional<int64_t> last_event_micros;  // empty for prospects
  Decimal cost_to_serve;
};

// The facts of a population in columns, sorted by id bytes, for speed and
// memory (about 56 bytes per entity plus the id bytes).
struct FactsTable {
  static constexpr int64_t kNoEvent = INT64_MIN;

  int64_t as_of_micros = 0;
  std::optional<int64_t> window_days;
  std::string id_bytes;              // all ids, concatenated
  std::vector<uint64_t> id_offsets;  // size() + 1 offsets into id_bytes
  std::vector<int64_t> frequency;
  std::vector<Decimal> monetary;
  std::vector<int64_t> last_event_micros;  // kNoEvent if frequency == 0
  std::vector<Decimal> cost_to_serve;

  size_t size() const { return frequency.size(); }
  absl::string_view id(size_t i) const {
    return absl::string_view(id_bytes.data() + id_offsets[i],
                             id_offsets[i + 1] - id_offsets[i]);
  }
  // floor((as_of - last) / 1 day), empty for prospects.
  std::optional<int64_t> recency_days(size_t i) const;
  EntityFacts Row(size_t i) const;
  // Appends a row; rows must be appended in ascending id order (not checked).
  void Append(const EntityFacts& row);
};

class FactsAccumulator {
 public:
  // InvalidArgument if the options are invalid.
  static absl::StatusOr<FactsAccumulator> Create(const FactsOptions& options);

  FactsAccumulator(FactsAccumulator&&) noexcept;
  FactsAccumulator& operator=(FactsAccumulator&&) noexcept;
  ~FactsAccumulator();

  // Each call validates the whole batch first (empty id, negative cost,
  // out-of-range values: InvalidArgument naming the field and row index, e.g.
  // `events[3].entity_id: empty`) and then adds all of it, or nothing.
  absl::Status AddKnownEntities(absl::Span<const absl::string_view> ids);
  absl::Status AddKnownEntities(absl::Span<const std::string> ids);
  absl::Status AddEvents(absl::Span<const ActivityEvent> events);
  absl::Status AddCosts(absl::Span<const CostEvent> costs);
  absl::Status AddPartialFacts(absl::Span<const PartialFacts> facts);

  // Number of distinct entities so far.
  size_t entity_count() const;

  // The population sorted by id bytes.
  absl::StatusOr<FactsTable> Finish() &&;

 private:
  class Impl;
  explicit FactsAccumulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One-shot convenience: accumulates one batch of each kind.
absl::StatusOr<FactsTable> ComputeFacts(
    const FactsOptions& options, absl::Span<const absl::string_view> known_ids,
    absl::Span<const ActivityEvent> events, absl::Span<const CostEvent> costs);

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_FACTS_H_
