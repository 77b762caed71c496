// The gRPC face of the scoring service: checks each call's caller against
// ScoringMethodRoles, reads the streams into the logic's runs, writes their
// results back in batches, converts the status once.
#ifndef RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
#define RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_

#include <functional>

#include "absl/time/time.h"
#include "common/call_guard.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"

namespace rapport::scoring {

// The least role each RPC of ScoringService needs: every call computes and
// changes nothing, so any role may make it.
const MethodRoles& ScoringMethodRoles();

class ScoringServiceImpl final : public v1::ScoringService::Service {
 public:
  using Clock = std::function<absl::Time()>;
  // `guard` checks calls against ScoringMethodRoles().
  ScoringServiceImpl(const CallGuard* guard, Clock clock)
      : guard_(guard), clock_(std::move(clock)) {}

  grpc::Status ScorePopulation(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ScorePopulationResponse,
                               v1::ScorePopulationRequest>* stream) override;
  grpc::Status ScoreEntity(grpc::ServerContext* context,
                           const v1::ScoreEntityRequest* request,
                           v1::ScoreEntityResponse* response) override;
  grpc::Status ScoreEntities(grpc::ServerContext* context,
                             const v1::ScoreEntitiesRequest* request,
                             v1::ScoreEntitiesResponse* response) override;
  grpc::Status FitClvModel(grpc::ServerContext* context,
                           grpc::ServerReader<v1::FitClvModelRequest>* reader,
                           v1::FitClvModelResponse* response) override;
  grpc::Status PredictClv(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::PredictClvResponse, v1::PredictClvRequest>*
          stream) override;

 private:
  const CallGuard* guard_;
  Clock clock_;
};

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
