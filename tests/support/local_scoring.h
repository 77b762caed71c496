// A ScoringClient that runs the scoring service's logic in this process,
// without gRPC: for tests that must not start threads or sockets (a test
// that forks to crash a refresh half-way), and for quick unit tests. It
// answers exactly what rapport-scoring answers for the same calls.
//
//   LocalScoringClient scoring;
//   Differentiation values(&facts, &store, &scoring, &ids, clock, {});
#ifndef RAPPORT_TESTS_SUPPORT_LOCAL_SCORING_H_
#define RAPPORT_TESTS_SUPPORT_LOCAL_SCORING_H_

#include <functional>

#include "absl/time/clock.h"
#include "common/differentiation/scoring_client.h"

namespace rapport::testing {

class LocalScoringClient final : public differentiation::ScoringClient {
 public:
  using Clock = std::function<absl::Time()>;
  explicit LocalScoringClient(Clock clock = [] { return absl::Now(); })
      : clock_(std::move(clock)) {}

  absl::Status ScorePopulation(
      const differentiation::sv1::ScoringConfig& config,
      const Send<differentiation::sv1::ScorePopulationRequest>& send,
      const Receive<differentiation::sv1::ScorePopulationResponse>& receive,
      differentiation::Cancellation* cancel) override;
  absl::Status PredictClv(
      const differentiation::sv1::PredictionConfig& config,
      const Send<differentiation::sv1::PredictClvRequest>& send,
      const Receive<differentiation::sv1::PredictClvResponse>& receive,
      differentiation::Cancellation* cancel) override;
  absl::StatusOr<differentiation::sv1::ScoreEntitiesResponse> ScoreEntities(
      const differentiation::sv1::ScoreEntitiesRequest& request) override;

 private:
  Clock clock_;
};

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_LOCAL_SCORING_H_
