// The scoring service's rules: validation of the API's messages and their
// translation to and from the engine (services/scoring/engine). No gRPC
// transport here: the adapter feeds batches in and writes batches out.
//
//   RAPPORT_ASSIGN_OR_RETURN(auto run, PopulationRun::Start(first.config(),
//   absl::Now())); RAPPORT_RETURN_IF_ERROR(run->Add(first));   // then every
//   further batch RAPPORT_RETURN_IF_ERROR(run->Finish()); run->FillScores(0,
//   run->size(), response.mutable_scores()); *response.mutable_model() =
//   run->model();
#ifndef RAPPORT_SERVICES_SCORING_SCORING_LOGIC_H_
#define RAPPORT_SERVICES_SCORING_SCORING_LOGIC_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rapport/scoring/v1/scoring_service.pb.h"
#include "services/scoring/engine/bgnbd.h"
#include "services/scoring/engine/facts.h"
#include "services/scoring/engine/gamma_gamma.h"
#include "services/scoring/engine/rfm.h"

namespace rapport::scoring {

namespace cv1 = ::rapport::common::v1;

inline constexpr int kDefaultResponseBatch = 10000;
inline constexpr int kMaxResponseBatch = 100000;

// The currency of one call's amounts. Scoring sums amounts whatever their
// currency, so a call's amounts must be in one: an amount without a
// currency_code is in the call's, and every code given must be the first
// one given.
class OneCurrency {
 public:
  // INVALID_ARGUMENT naming `field`.currency_code when `money` names another
  // currency than the call's amounts before it, or a code that is not three
  // capital letters (ISO 4217).
  absl::Status Check(const google::type::Money& money, absl::string_view field);

 private:
  std::string code_;
};

// One ScorePopulation call: accumulates batches, then scores everyone.
class PopulationRun {
 public:
  // Validates the config (bins 2..10, window >= 1 day, ...); `now` is the
  // default as_of.
  static absl::StatusOr<std::unique_ptr<PopulationRun>> Start(
      const v1::ScoringConfig& config, absl::Time now);
  // Adds one batch; errors name the batch, the list and the row.
  absl::Status Add(const v1::ScorePopulationRequest& batch);
  // Computes facts and scores; after it, size(), FillScores and model() work.
  absl::Status Finish();

  size_t size() const { return facts_.size(); }
  int response_batch_size() const { return response_batch_size_; }
  // Scores of entities [begin, end) in id order.
  absl::Status FillScores(
      size_t begin, size_t end,
      google::protobuf::RepeatedPtrField<v1::EntityScore>* out) const;
  v1::ScoreModel model() const;

 private:
  PopulationRun(FactsAccumulator accumulator, ScoringOptions options,
                int response_batch_size);

  std::optional<FactsAccumulator> accumulator_;
  ScoringOptions options_;
  int response_batch_size_;
  int64_t batches_ = 0;
  OneCurrency currency_;
  FactsTable facts_;
  PopulationScores scores_;
};

// ScoreEntity: one entity against a model.
absl::StatusOr<v1::ScoreEntityResponse> ScoreOne(
    const v1::ScoreEntityRequest& request);

// ScoreEntities: many entities against one model, each as ScoreOne would.
inline constexpr int kMaxScoreEntities = 10000;
absl::StatusOr<v1::ScoreEntitiesResponse> ScoreMany(
    const v1::ScoreEntitiesRequest& request);

// Customers for the CLV models, gathered from many batches: summaries as
// given, and raw events that Build() summarises (ids are copied).
class ClvInput {
 public:
  absl::Status AddSummaries(
      const google::protobuf::RepeatedPtrField<v1::CustomerSummary>& rows,
      int64_t batch);
  absl::Status AddEvents(
      const google::protobuf::RepeatedPtrField<v1::ActivityEvent>& events,
      int64_t batch);
  // Every customer, in id byte order; events need `as_of` (else
  // INVALID_ARGUMENT naming `as_of_field`). An id given twice is
  // INVALID_ARGUMENT.
  absl::Status Build(std::optional<int64_t> as_of_micros,
                     absl::string_view as_of_field, TimeUnit unit);

  const std::vector<std::string>& ids() const { return ids_; }
  const std::vector<CustomerSummary>& rows() const { return rows_; }

 private:
  std::vector<std::string> ids_;
  std::vector<CustomerSummary> rows_;
  std::string event_ids_;
  std::vector<size_t> event_id_ends_;
  std::vector<int64_t> event_times_;
  std::vector<Decimal> event_amounts_;
  OneCurrency currency_;
};

// FitClvModel: BG/NBD, and Gamma-Gamma when asked.
class ClvFit {
 public:
  static absl::StatusOr<std::unique_ptr<ClvFit>> Start(
      const v1::ClvConfig& config);
  absl::Status Add(const v1::FitClvModelRequest& batch);
  absl::StatusOr<v1::FitClvModelResponse> Finish();

 private:
  explicit ClvFit(const v1::ClvConfig& config) : config_(config) {}
  v1::ClvConfig config_;
  int64_t batches_ = 0;
  ClvInput input_;
};

// PredictClv: applies a fitted model to every customer, or with config.fit
// fits one on the same customers first.
class ClvPrediction {
 public:
  static absl::StatusOr<std::unique_ptr<ClvPrediction>> Start(
      const v1::PredictionConfig& config);
  absl::Status Add(const v1::PredictClvRequest& batch);
  absl::Status Finish();
  size_t size() const { return predictions_.size(); }
  int response_batch_size() const { return response_batch_size_; }
  void Fill(
      size_t begin, size_t end,
      google::protobuf::RepeatedPtrField<v1::CustomerPrediction>* out) const;
  // The model applied (after Finish: the fitted one, with config.fit).
  const v1::ClvModel& model() const { return model_; }
  // After Finish: E[X(t)] of the model for t = the predicted periods.
  double population_expected_purchases() const {
    return ExpectedPurchases(bgnbd_, options_.purchases_horizon);
  }
  bool fitted() const { return config_.has_fit(); }

 private:
  ClvPrediction() = default;
  // Validates and takes the parameters of `model`.
  absl::Status UseModel(const v1::ClvModel& model);
  v1::PredictionConfig config_;
  v1::ClvModel model_;
  BgNbdParams bgnbd_;
  GammaGammaParams gamma_gamma_;
  bool has_gamma_gamma_ = false;
  ClvOptions options_;
  int response_batch_size_ = kDefaultResponseBatch;
  int64_t batches_ = 0;
  ClvInput input_;
  std::vector<CustomerPrediction> predictions_;
};

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_SCORING_LOGIC_H_
