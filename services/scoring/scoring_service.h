// The gRPC face of the scoring service: reads the streams into the logic's
// runs, writes their results back in batches, converts the status once.
#ifndef RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
#define RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_

#include <functional>

#include "absl/time/time.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"

namespace rapport::scoring {

namespace v1 = ::rapport::scoring::v1;

class ScoringServiceImpl final : public v1::ScoringService::Service {
 public:
  using Clock = std::function<absl::Time()>;
  explicit ScoringServiceImpl(Clock clock) : clock_(std::move(clock)) {}

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
  Clock clock_;
};

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
