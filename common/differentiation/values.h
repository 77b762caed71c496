// The plain types of differentiation that every counterpart service shares:
// which events count, an entity's counted facts, its stored values, refresh
// jobs and value totals. No protobuf, gRPC or SQL types: the stores and the
// logic speak these, and only Differentiation turns them into API messages.
//
//   CountWindow window{.as_of_us = as_of, .window_days = 365};
//   EntityFacts f{.entity_id = id, .frequency = 3, .monetary = total,
//                 .last_event_us = last};
#ifndef RAPPORT_COMMON_DIFFERENTIATION_VALUES_H_
#define RAPPORT_COMMON_DIFFERENTIATION_VALUES_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/base/decimal.h"

namespace rapport::differentiation {

// Which events and costs count (SCORING.md section 1):
// as_of - window_days * 86400 s < t <= as_of; no lower bound without a window.
struct CountWindow {
  int64_t as_of_us = 0;
  std::optional<int64_t> window_days;

  // The exclusive lower bound of counted times.
  int64_t after_us() const {
    if (!window_days.has_value()) return std::numeric_limits<int64_t>::min();
    return as_of_us - *window_days * int64_t{86'400'000'000};
  }
};

// An entity's counted facts (SCORING.md section 2): its activity events and
// interaction costs in the window.
struct EntityFacts {
  std::string entity_id;
  int64_t frequency = 0;
  Decimal monetary;
  std::optional<int64_t> last_event_us;  // set iff frequency > 0
  Decimal cost_to_serve;
};

// The sum of an entity's counted events on one UTC day (BG/NBD merges a day's
// events into one, SCORING.md section 7).
struct EventDay {
  std::string entity_id;
  int64_t day = 0;  // floor(time / 1 day) since the epoch
  Decimal amount;
};

// One entity's stored values: a row of the values table.
struct StoredValue {
  std::string entity_id;  // in an export by external id: that id
  std::string model_id;   // the refresh job whose model produced the values
  std::optional<int64_t> recency_days;
  int64_t frequency = 0;
  Decimal monetary;
  int r = 0;
  int f = 0;
  int m = 0;
  std::string segment;
  int value_hundredths = 0;
  Decimal cost_to_serve;
  Decimal profit;
  int tier = 0;  // rapport.common.v1.Tier
  std::optional<double> p_alive;
  std::optional<double> expected_purchases;
  std::optional<double> clv;
  int64_t score_time_us = 0;
};

// A refresh job's state; the numbers of rapport.common.v1.RefreshJob.State.
enum class JobState : int { kRunning = 1, kSucceeded = 2, kFailed = 3 };

// One row of the jobs table.
struct RefreshJobRecord {
  std::string id;
  JobState state = JobState::kRunning;
  int64_t done = 0;
  int64_t total = 0;
  // Serialized rapport.common.v1.RefreshSettings, with as_of and bins filled
  // in.
  std::string request;
  int64_t create_time_us = 0;
  std::optional<int64_t> end_time_us;
  int64_t heartbeat_time_us = 0;
  std::string error;
  // Serialized rapport.scoring.v1.ScoreModel and ClvModel; empty until known.
  std::string score_model;
  std::string clv_model;
};

// Totals of the stored values of one segment, one tier, or all.
struct GroupTotals {
  std::string segment;  // for segments
  int tier = 0;         // for tiers
  int64_t entities = 0;
  Decimal monetary;
  Decimal cost_to_serve;
  Decimal profit;
  int64_t value_hundredths_sum = 0;
};

struct ValueTotals {
  std::vector<GroupTotals> segments;  // by segment name
  std::vector<GroupTotals> tiers;     // by tier number
  GroupTotals all;
};

// Where a scan hands its batches; an error stops the scan and is returned.
template <typename Row>
using Sink = std::function<absl::Status(std::vector<Row>& batch)>;

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_VALUES_H_
