// Conversions between differentiation's plain types and the scoring API's
// messages, shared by the refresh jobs and the re-scoring of single entities.
#ifndef RAPPORT_COMMON_DIFFERENTIATION_SCORE_MESSAGES_H_
#define RAPPORT_COMMON_DIFFERENTIATION_SCORE_MESSAGES_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/differentiation/values.h"
#include "rapport/scoring/v1/scoring_service.pb.h"

namespace rapport::differentiation {

// The facts as ScorePopulation and ScoreEntities take them.
absl::Status SetFacts(const EntityFacts& facts,
                      ::rapport::scoring::v1::EntityFacts* out);

// A score from the scoring service as the values to store, produced by the
// model of job `model_id` at `score_time_us`.
absl::StatusOr<StoredValue> FromEntityScore(
    const ::rapport::scoring::v1::EntityScore& score,
    const std::string& model_id, int64_t score_time_us);

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_SCORE_MESSAGES_H_
