// The scoring service's request decoding: any bytes, read as one of its
// request messages (the first byte picks which), go through the same
// validation and translation to the engine as a call would, then scoring and
// the answer's encoding. Nothing may crash, hang or read out of bounds; bad
// requests are INVALID_ARGUMENT (sums beyond a Money OUT_OF_RANGE, too little
// data for a fit FAILED_PRECONDITION); a batch of entities scores each as
// it would be scored alone; a population's model is accepted by ScoreEntity,
// which scores each of its entities as the population run did.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "services/scoring/scoring_logic.h"

namespace {

namespace v1 = ::rapport::scoring::v1;

// Keeps fuzzing fast: model fits on many customers are the engine's
// benchmarks' business, not the decoder's.
constexpr int kMaxRows = 200;

template <typename Message>
bool Decode(const uint8_t* data, size_t size, Message* out) {
  return out->ParseFromArray(data, static_cast<int>(size));
}

void CheckRefusal(const absl::Status& s) {
  if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument &&
      s.code() != absl::StatusCode::kResourceExhausted &&
      s.code() != absl::StatusCode::kFailedPrecondition &&
      s.code() != absl::StatusCode::kOutOfRange) {
    __builtin_trap();
  }
}

void Population(const uint8_t* data, size_t size) {
  v1::ScorePopulationRequest request;
  if (!Decode(data, size, &request)) return;
  if (request.events_size() + request.costs_size() + request.facts_size() +
          request.entity_ids_size() >
      kMaxRows) {
    return;
  }
  auto run = rapport::scoring::PopulationRun::Start(
      request.config(), absl::FromUnixSeconds(1719792000));
  if (!run.ok()) return CheckRefusal(run.status());
  absl::Status s = (*run)->Add(request);
  if (s.ok()) s = (*run)->Finish();
  if (!s.ok()) return CheckRefusal(s);
  v1::ScorePopulationResponse response;
  if (!(*run)->FillScores(0, (*run)->size(), response.mutable_scores()).ok()) {
    __builtin_trap();
  }
  *response.mutable_model() = (*run)->model();
  (void)response.SerializeAsString();
  // The model a population gives is one that scoring a single entity
  // accepts (ScoreEntity refuses models no population gives), and every
  // entity of the population scores against it as it did in the run
  // (SCORING.md section 3: the two ways agree).
  for (const v1::EntityScore& score : response.scores()) {
    v1::ScoreEntityRequest one;
    *one.mutable_model() = response.model();
    v1::EntityFacts* f = one.mutable_facts();
    f->set_entity_id(score.entity_id());
    f->set_frequency(score.frequency());
    *f->mutable_monetary() = score.monetary();
    *f->mutable_cost_to_serve() = score.cost_to_serve();
    // A Prospect has no last event (and no amount); its cost still decides
    // its tier.
    if (score.has_recency_days()) {
      f->mutable_last_event_time()->set_seconds(
          response.model().as_of().seconds() -
          86'400 * static_cast<int64_t>(score.recency_days()));
    }
    auto alone = rapport::scoring::ScoreOne(one);
    if (!alone.ok()) __builtin_trap();
    if (alone->score().r() != score.r() || alone->score().f() != score.f() ||
        alone->score().m() != score.m() ||
        alone->score().segment() != score.segment() ||
        alone->score().value_hundredths() != score.value_hundredths() ||
        alone->score().tier() != score.tier()) {
      __builtin_trap();
    }
  }
}

void Entity(const uint8_t* data, size_t size) {
  v1::ScoreEntityRequest request;
  if (!Decode(data, size, &request)) return;
  auto response = rapport::scoring::ScoreOne(request);
  if (!response.ok()) return CheckRefusal(response.status());
  (void)response->SerializeAsString();
}

void Entities(const uint8_t* data, size_t size) {
  v1::ScoreEntitiesRequest request;
  if (!Decode(data, size, &request)) return;
  if (request.facts_size() > kMaxRows) return;
  auto response = rapport::scoring::ScoreMany(request);
  if (!response.ok()) return CheckRefusal(response.status());
  if (response->scores_size() != request.facts_size()) __builtin_trap();
  // Each entity of a batch is scored as it would be alone (the domain
  // services' re-scores take either path).
  for (int i = 0; i < request.facts_size(); ++i) {
    v1::ScoreEntityRequest one;
    *one.mutable_model() = request.model();
    *one.mutable_facts() = request.facts(i);
    if (request.has_as_of()) *one.mutable_as_of() = request.as_of();
    auto alone = rapport::scoring::ScoreOne(one);
    if (!alone.ok() || alone->score().SerializeAsString() !=
                           response->scores(i).SerializeAsString()) {
      __builtin_trap();
    }
  }
}

void Fit(const uint8_t* data, size_t size) {
  v1::FitClvModelRequest request;
  if (!Decode(data, size, &request)) return;
  if (request.summaries_size() + request.events_size() > kMaxRows) return;
  auto fit = rapport::scoring::ClvFit::Start(request.config());
  if (!fit.ok()) return CheckRefusal(fit.status());
  if (absl::Status s = (*fit)->Add(request); !s.ok()) return CheckRefusal(s);
  auto response = (*fit)->Finish();
  if (!response.ok()) return CheckRefusal(response.status());
  (void)response->SerializeAsString();
}

void Predict(const uint8_t* data, size_t size) {
  v1::PredictClvRequest request;
  if (!Decode(data, size, &request)) return;
  if (request.summaries_size() + request.events_size() > kMaxRows) return;
  auto prediction = rapport::scoring::ClvPrediction::Start(request.config());
  if (!prediction.ok()) return CheckRefusal(prediction.status());
  absl::Status s = (*prediction)->Add(request);
  if (s.ok()) s = (*prediction)->Finish();
  if (!s.ok()) return CheckRefusal(s);
  v1::PredictClvResponse response;
  (*prediction)->Fill(0, (*prediction)->size(), response.mutable_predictions());
  (void)response.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t which = data[0] % 5;
  ++data;
  --size;
  switch (which) {
    case 0:
      Population(data, size);
      break;
    case 1:
      Entity(data, size);
      break;
    case 2:
      Entities(data, size);
      break;
    case 3:
      Fit(data, size);
      break;
    default:
      Predict(data, size);
      break;
  }
  return 0;
}
