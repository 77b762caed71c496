#include "services/scoring/scoring_service.h"

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "services/scoring/scoring_logic.h"

namespace rapport::scoring {
namespace {

// The input records (entities, facts, events, costs, summaries) a message
// of a population call carries: what its memory grows with.
int64_t Records(const v1::ScorePopulationRequest& m) {
  return m.events_size() + m.costs_size() + m.entity_ids_size() +
         m.facts_size();
}
int64_t Records(const v1::FitClvModelRequest& m) {
  return m.summaries_size() + m.events_size();
}
int64_t Records(const v1::PredictClvRequest& m) {
  return m.summaries_size() + m.events_size();
}

// Cancels a call whose client has not been heard from (Heard) for `limit`,
// from a thread of its own: a blocked Read or Write then returns false.
class IdleWatch {
 public:
  IdleWatch(grpc::ServerContext* context, absl::Duration limit)
      : context_(context), limit_(limit), last_(absl::Now()) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~IdleWatch() {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
    }
    thread_.join();
  }
  IdleWatch(const IdleWatch&) = delete;
  IdleWatch& operator=(const IdleWatch&) = delete;

  void Heard() {
    absl::MutexLock lock(&mu_);
    last_ = absl::Now();
  }
  // Whether it cancelled the call.
  bool fired() {
    absl::MutexLock lock(&mu_);
    return fired_;
  }
  // The status of a call it cancelled: the client `did_not` ("sent no
  // message") for the limit.
  absl::Status Status(absl::string_view did_not) const {
    return absl::DeadlineExceededError(absl::StrCat(
        "the client ", did_not, " for ", absl::FormatDuration(limit_),
        "; the call was ended to free its slot on this replica"));
  }

 private:
  void Watch() {
    absl::MutexLock lock(&mu_);
    while (!done_) {
      const absl::Time due = last_ + limit_;
      if (absl::Now() >= due) {
        fired_ = true;
        context_->TryCancel();
        return;
      }
      mu_.AwaitWithDeadline(absl::Condition(&done_), due);
    }
  }

  grpc::ServerContext* const context_;
  const absl::Duration limit_;
  absl::Mutex mu_;
  absl::Time last_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool fired_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// ReadAll's reading, each message read told to `watch`.
template <typename Run, typename Request, typename Reader, typename StartFn>
absl::StatusOr<std::unique_ptr<Run>> ReadMessages(Reader* reader,
                                                  int64_t max_records,
                                                  StartFn start,
                                                  IdleWatch& watch) {
  Request request;
  if (!reader->Read(&request))
    return InvalidField("config", "the stream carried no message");
  watch.Heard();
  absl::StatusOr<std::unique_ptr<Run>> run = start(request);
  if (!run.ok()) return run.status();
  int64_t records = 0;
  for (;;) {
    records += Records(request);
    if (max_records > 0 && records > max_records) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the call carries more than ", max_records,
          " records (entities, facts, events, costs and summaries), the most "
          "one call of this caller may on this replica; split the population, "
          "or raise --max_population_records (the services' calls) or "
          "--max_population_records_by_people (others') with the replica's "
          "memory"));
    }
    if (absl::Status s = (*run)->Add(request); !s.ok()) return s;
    if (!reader->Read(&request)) return run;
    watch.Heard();
  }
}

// Reads every message of a client stream into `run` (created from the first
// message by `start`); the stream's end finishes the input. Past
// `max_records` input records: RESOURCE_EXHAUSTED, before the replica holds
// more than its memory was sized for. A client silent for `limits.idle`
// is cut off (IdleWatch); a stream that ended because the call did (the
// client went away, or was cut off) is not taken for the whole input.
template <typename Run, typename Request, typename Reader, typename StartFn>
absl::StatusOr<std::unique_ptr<Run>> ReadAll(grpc::ServerContext* context,
                                             Reader* reader,
                                             const PopulationLimits& limits,
                                             int64_t max_records,
                                             StartFn start) {
  absl::StatusOr<std::unique_ptr<Run>> run;
  {
    IdleWatch watch(context, limits.idle);
    run = ReadMessages<Run, Request>(reader, max_records, start, watch);
    if (watch.fired()) return watch.Status("sent no message");
    if (absl::IsResourceExhausted(run.status())) {
      context->AddTrailingMetadata(kTooLargeTrailer, "1");
    }
  }
  if (context->IsCancelled()) return absl::CancelledError("cancelled");
  return run;
}

// Holds a population slot for the rest of the call.
class SlotHeld {
 public:
  SlotHeld(PopulationSlots* slots, PopulationSlots::Pool pool)
      : slots_(slots), pool_(pool) {}
  ~SlotHeld() { slots_->Give(pool_); }
  SlotHeld(const SlotHeld&) = delete;
  SlotHeld& operator=(const SlotHeld&) = delete;

 private:
  PopulationSlots* slots_;
  const PopulationSlots::Pool pool_;
};

// The status of a call whose answer could not be written.
grpc::Status WriteFailed(IdleWatch& watch) {
  if (watch.fired()) return ToGrpcStatus(watch.Status("took no answer"));
  return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
}

// Refused for want of a slot, before reading anything: marked so in the
// trailers (kBusyTrailer), so that a client may try another replica.
grpc::Status Busy(grpc::ServerContext* context, const PopulationSlots& slots,
                  PopulationSlots::Pool pool, bool too_many_waiting) {
  context->AddTrailingMetadata(kBusyTrailer, "1");
  const PopulationLimits& limits = slots.limits();
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("this replica runs its most population calls at once (",
                   slots.MaxCalls(pool),
                   pool == PopulationSlots::Pool::kServices
                       ? " for the services"
                       : " for callers other than the services",
                   ")",
                   too_many_waiting
                       ? absl::StrCat(" and ", limits.max_waiting,
                                      " more wait for one already")
                       : absl::StrCat(" and none ended within ",
                                      absl::FormatDuration(limits.wait)),
                   "; retry later, or on another replica"));
}

}  // namespace

PopulationSlots::Pool PopulationSlots::PoolOf(const auth::Principal& caller) {
  return absl::StartsWith(caller.subject, auth::kServiceSubjectPrefix)
             ? Pool::kServices
             : Pool::kPeople;
}

int64_t PopulationSlots::MaxRecords(Pool pool) const {
  return pool == Pool::kServices ? limits_.max_records
                                 : limits_.max_people_records;
}

int PopulationSlots::MaxCalls(Pool pool) const {
  return std::max(1, pool == Pool::kServices ? limits_.max_calls
                                             : limits_.max_people_calls);
}

bool PopulationSlots::Take(grpc::ServerContext* context, Pool pool,
                           bool* too_many_waiting) {
  *too_many_waiting = false;
  const absl::Time deadline = absl::Now() + limits_.wait;
  const int max_calls = MaxCalls(pool);
  absl::MutexLock lock(&mu_);
  int& running = running_[static_cast<int>(pool)];
  int& waiting = waiting_[static_cast<int>(pool)];
  const auto free = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return running < max_calls;
  };
  if (!free()) {
    if (waiting >= limits_.max_waiting) {
      *too_many_waiting = true;
      return false;
    }
    ++waiting;
    // Wakes at least every 100 ms to notice a cancelled call.
    while (!free()) {
      if (context->IsCancelled() || absl::Now() >= deadline) {
        --waiting;
        return false;
      }
      mu_.AwaitWithTimeout(
          absl::Condition(&free),
          std::min(absl::Milliseconds(100), deadline - absl::Now()));
    }
    --waiting;
  }
  ++running;
  return true;
}

void PopulationSlots::Give(Pool pool) {
  absl::MutexLock lock(&mu_);
  --running_[static_cast<int>(pool)];
}

const MethodRoles& ScoringMethodRoles() {
  using auth::Role;
  static const MethodRoles* const kRoles =
      new MethodRoles(v1::ScoringService::service_full_name(),
                      {{"ScorePopulation", Role::kReader},
                       {"ScoreEntity", Role::kReader},
                       {"ScoreEntities", Role::kReader},
                       {"FitClvModel", Role::kReader},
                       {"PredictClv", Role::kReader}});
  return *kRoles;
}

grpc::Status ScoringServiceImpl::ScorePopulation(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::ScorePopulationResponse,
                             v1::ScorePopulationRequest>* stream) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ScorePopulation");
  // "Now" for a config without as_of is when the call came, not when a
  // slot came free for it.
  const absl::Time arrived = clock_();
  const PopulationSlots::Pool pool = PopulationSlots::PoolOf(caller);
  if (bool crowded; !slots_.Take(context, pool, &crowded)) {
    return Busy(context, slots_, pool, crowded);
  }
  const SlotHeld held(&slots_, pool);
  stream->SendInitialMetadata();  // the client may tell it runs, not waits
  absl::StatusOr<std::unique_ptr<PopulationRun>> run =
      ReadAll<PopulationRun, v1::ScorePopulationRequest>(
          context, stream, slots_.limits(), slots_.MaxRecords(pool),
          [&](const v1::ScorePopulationRequest& first) {
            return PopulationRun::Start(first.config(), arrived);
          });
  if (!run.ok()) return ToGrpcStatus(run.status());
  if (absl::Status s = (*run)->Finish(); !s.ok()) return ToGrpcStatus(s);
  const size_t total = (*run)->size();
  const size_t batch = static_cast<size_t>((*run)->response_batch_size());
  size_t begin = 0;
  IdleWatch watch(context, slots_.limits().idle);
  do {
    if (context->IsCancelled())
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    const size_t end = std::min(total, begin + batch);
    v1::ScorePopulationResponse response;
    if (absl::Status s =
            (*run)->FillScores(begin, end, response.mutable_scores());
        !s.ok()) {
      return ToGrpcStatus(s);
    }
    response.set_done(static_cast<int64_t>(end));
    response.set_total(static_cast<int64_t>(total));
    if (end == total) *response.mutable_model() = (*run)->model();
    if (!stream->Write(response)) return WriteFailed(watch);
    watch.Heard();
    begin = end;
  } while (begin < total);
  return grpc::Status::OK;
}

grpc::Status ScoringServiceImpl::ScoreEntity(
    grpc::ServerContext* context, const v1::ScoreEntityRequest* request,
    v1::ScoreEntityResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ScoreEntity");
  absl::StatusOr<v1::ScoreEntityResponse> result = ScoreOne(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status ScoringServiceImpl::ScoreEntities(
    grpc::ServerContext* context, const v1::ScoreEntitiesRequest* request,
    v1::ScoreEntitiesResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ScoreEntities");
  absl::StatusOr<v1::ScoreEntitiesResponse> result = ScoreMany(*request);
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status ScoringServiceImpl::FitClvModel(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::FitClvModelRequest>* reader,
    v1::FitClvModelResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "FitClvModel");
  const PopulationSlots::Pool pool = PopulationSlots::PoolOf(caller);
  if (bool crowded; !slots_.Take(context, pool, &crowded)) {
    return Busy(context, slots_, pool, crowded);
  }
  const SlotHeld held(&slots_, pool);
  reader->SendInitialMetadata();  // the client may tell it runs, not waits
  absl::StatusOr<std::unique_ptr<ClvFit>> fit =
      ReadAll<ClvFit, v1::FitClvModelRequest>(
          context, reader, slots_.limits(), slots_.MaxRecords(pool),
          [](const v1::FitClvModelRequest& first) {
            return ClvFit::Start(first.config());
          });
  if (!fit.ok()) return ToGrpcStatus(fit.status());
  absl::StatusOr<v1::FitClvModelResponse> result = (*fit)->Finish();
  if (!result.ok()) return ToGrpcStatus(result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status ScoringServiceImpl::PredictClv(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::PredictClvResponse, v1::PredictClvRequest>*
        stream) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "PredictClv");
  const PopulationSlots::Pool pool = PopulationSlots::PoolOf(caller);
  if (bool crowded; !slots_.Take(context, pool, &crowded)) {
    return Busy(context, slots_, pool, crowded);
  }
  const SlotHeld held(&slots_, pool);
  stream->SendInitialMetadata();  // the client may tell it runs, not waits
  absl::StatusOr<std::unique_ptr<ClvPrediction>> run =
      ReadAll<ClvPrediction, v1::PredictClvRequest>(
          context, stream, slots_.limits(), slots_.MaxRecords(pool),
          [](const v1::PredictClvRequest& first) {
            return ClvPrediction::Start(first.config());
          });
  if (!run.ok()) return ToGrpcStatus(run.status());
  if (absl::Status s = (*run)->Finish(); !s.ok()) return ToGrpcStatus(s);
  const size_t total = (*run)->size();
  const size_t batch = static_cast<size_t>((*run)->response_batch_size());
  // At least one message, the last carrying the model and the population's
  // expected purchases, also when there is nobody to predict for.
  size_t begin = 0;
  IdleWatch watch(context, slots_.limits().idle);
  do {
    if (context->IsCancelled())
      return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    v1::PredictClvResponse response;
    const size_t end = std::min(total, begin + batch);
    (*run)->Fill(begin, end, response.mutable_predictions());
    if (end == total) {
      if ((*run)->fitted()) *response.mutable_model() = (*run)->model();
      response.set_population_expected_purchases(
          (*run)->population_expected_purchases());
    }
    if (!stream->Write(response)) return WriteFailed(watch);
    watch.Heard();
    begin = end;
  } while (begin < total);
  return grpc::Status::OK;
}

}  // namespace rapport::scoring
