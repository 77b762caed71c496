#include "tests/support/local_scoring.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "services/scoring/scoring_logic.h"

namespace rapport::testing {
namespace {

namespace sv1 = ::rapport::scoring::v1;

// The status as the gRPC client reports it: prefixed with where it came from.
absl::Status AsScoringError(const absl::Status& s, absl::string_view what) {
  return Prefixed(s, what);
}

// Feeds what `send` writes into a run made from the first message, as the
// scoring service's stream adapter does.
template <typename Run, typename Request, typename Start>
absl::StatusOr<std::unique_ptr<Run>> Collect(
    const std::function<void(Request&)>& configure,
    const differentiation::ScoringClient::Send<Request>& send, Start start) {
  std::unique_ptr<Run> run;
  absl::Status failed;
  bool first = true;
  auto write = [&](Request& request) {
    if (!failed.ok()) return false;
    if (first) {
      first = false;
      configure(request);
      absl::StatusOr<std::unique_ptr<Run>> started = start(request);
      if (!started.ok()) {
        failed = started.status();
        return false;
      }
      run = *std::move(started);
    }
    failed = run->Add(request);
    return failed.ok();
  };
  absl::Status sent = send(write);
  if (!failed.ok()) return failed;
  if (!sent.ok()) return sent;
  if (first) {
    Request config_only;
    if (!write(config_only)) return failed;
  }
  return run;
}

}  // namespace

absl::Status LocalScoringClient::ScorePopulation(
    const sv1::ScoringConfig& config,
    const Send<sv1::ScorePopulationRequest>& send,
    const Receive<sv1::ScorePopulationResponse>& receive,
    differentiation::Cancellation* cancel) {
  if (cancel != nullptr && cancel->cancelled())
    return absl::CancelledError("the service is stopping");
  absl::StatusOr<std::unique_ptr<scoring::PopulationRun>> run =
      Collect<scoring::PopulationRun, sv1::ScorePopulationRequest>(
          [&](sv1::ScorePopulationRequest& r) { *r.mutable_config() = config; },
          send,
          [&](const sv1::ScorePopulationRequest& first) {
            return scoring::PopulationRun::Start(first.config(), clock_());
          });
  if (!run.ok()) return AsScoringError(run.status(), "scoring service");
  if (absl::Status s = (*run)->Finish(); !s.ok())
    return AsScoringError(s, "scoring service");
  const size_t total = (*run)->size();
  const size_t batch = static_cast<size_t>((*run)->response_batch_size());
  size_t begin = 0;
  do {
    const size_t end = std::min(total, begin + batch);
    sv1::ScorePopulationResponse response;
    if (absl::Status s =
            (*run)->FillScores(begin, end, response.mutable_scores());
        !s.ok()) {
      return AsScoringError(s, "scoring service");
    }
    response.set_done(static_cast<int64_t>(end));
    response.set_total(static_cast<int64_t>(total));
    if (end == total) *response.mutable_model() = (*run)->model();
    if (absl::Status s = receive(response); !s.ok()) return s;
    begin = end;
  } while (begin < total);
  return absl::OkStatus();
}

absl::Status LocalScoringClient::PredictClv(
    const sv1::PredictionConfig& config,
    const Send<sv1::PredictClvRequest>& send,
    const Receive<sv1::PredictClvResponse>& receive,
    differentiation::Cancellation* cancel) {
  if (cancel != nullptr && cancel->cancelled())
    return absl::CancelledError("the service is stopping");
  absl::StatusOr<std::unique_ptr<scoring::ClvPrediction>> run =
      Collect<scoring::ClvPrediction, sv1::PredictClvRequest>(
          [&](sv1::PredictClvRequest& r) { *r.mutable_config() = config; },
          send,
          [](const sv1::PredictClvRequest& first) {
            return scoring::ClvPrediction::Start(first.config());
          });
  if (!run.ok()) return AsScoringError(run.status(), "predicting CLV");
  if (absl::Status s = (*run)->Finish(); !s.ok())
    return AsScoringError(s, "predicting CLV");
  const size_t total = (*run)->size();
  const size_t batch = static_cast<size_t>((*run)->response_batch_size());
  for (size_t begin = 0; begin < total; begin += batch) {
    const size_t end = std::min(total, begin + batch);
    sv1::PredictClvResponse response;
    (*run)->Fill(begin, end, response.mutable_predictions());
    if (end == total && (*run)->fitted())
      *response.mutable_model() = (*run)->model();
    if (absl::Status s = receive(response); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<sv1::ScoreEntitiesResponse> LocalScoringClient::ScoreEntities(
    const sv1::ScoreEntitiesRequest& request) {
  absl::StatusOr<sv1::ScoreEntitiesResponse> response =
      scoring::ScoreMany(request);
  if (!response.ok())
    return AsScoringError(response.status(), "scoring service");
  return response;
}

}  // namespace rapport::testing
