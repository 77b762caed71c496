// The gRPC face of the scoring service: checks each call's caller against
// ScoringMethodRoles, reads the streams into the logic's runs, writes their
// results back in batches, converts the status once.
#ifndef RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
#define RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_

#include <cstdint>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/call_guard.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"

namespace rapport::scoring {

// The least role each RPC of ScoringService needs: every call computes and
// changes nothing, so any role may make it.
const MethodRoles& ScoringMethodRoles();

// How many population calls (ScorePopulation, FitClvModel, PredictClv: each
// holds its whole input in memory) run at once on a replica, in two pools:
// `max_calls` for the domain services (callers whose token's subject is
// "service:...", which only a service's own key signs for: jwt.h),
// `max_people_calls` for everyone else (a person's
// `rapportctl scoring rfm`), so that no token given to a person can hold the
// slots the refreshes need. Past its pool's limit a call waits
// for a slot, without reading their stream, up to `wait`, and are then
// refused with RESOURCE_EXHAUSTED, marked busy (kBusyTrailer): the domain
// services' client makes the call again, on the next replica, twice; a
// refresh job still refused fails saying so. This bounds a replica's memory to
// `max_calls` + `max_people_calls` populations. A call that holds its slot
// sends its initial metadata at once, so that its client can tell it runs.
//
// `max_records` bounds one call: past that many input records (entities,
// facts, events, costs, summaries) it is refused with RESOURCE_EXHAUSTED,
// marked too large (kTooLargeTrailer): no retry passes it; 0: no bound.
// `max_people_records` bounds a call of the people's pool the same way, so
// that one beside a refresh fits the replica's memory.
//
// `idle` bounds how long a call that holds a slot may wait on its client:
// one that sends no message for that long while the replica reads, or takes
// no answer for that long while it writes, is cancelled (its client sees
// CANCELLED; the replica logs why) and its slot freed.
// Otherwise a stalled or forgotten client would keep its slot until the
// stream's deadline, and every refresh waiting for it would be refused.
// The trailer of a population call refused because the replica was busy
// (before it read anything): another replica, or a later try, may take it.
// Its clients (common/differentiation/scoring_client.cc) know it by name.
inline constexpr char kBusyTrailer[] = "rapport-busy";
// The trailer of a population call refused for its size (past
// max_records): what no replica of this size takes, and no retry mends.
inline constexpr char kTooLargeTrailer[] = "rapport-too-large";

struct PopulationLimits {
  int max_calls = 1;
  int max_people_calls = 1;
  absl::Duration wait = absl::Minutes(5);
  // Calls of each pool that may wait for a slot at once (each holds a
  // serving thread meanwhile); one more is refused at once, marked busy, so
  // that waiters cannot take the threads the other calls need (nor people's
  // the services' room to wait).
  int max_waiting = 4;
  int64_t max_records = 0;
  // The same for a call of the people's pool: its memory comes on top of
  // the services' calls.
  int64_t max_people_records = 0;
  absl::Duration idle = absl::Minutes(2);
};

// The slots of PopulationLimits.
class PopulationSlots {
 public:
  explicit PopulationSlots(PopulationLimits limits) : limits_(limits) {}
  // Which pool a caller's calls take their slots from.
  enum class Pool { kServices, kPeople };
  static Pool PoolOf(const auth::Principal& caller);

  // Takes a slot of `pool`; false when none came free within the wait, the
  // call was cancelled meanwhile, or (`*too_many_waiting` then) max_waiting
  // calls wait already.
  bool Take(grpc::ServerContext* context, Pool pool, bool* too_many_waiting);
  void Give(Pool pool);
  const PopulationLimits& limits() const { return limits_; }
  // The most calls of `pool` that run at once.
  int MaxCalls(Pool pool) const;
  // The most input records one call of `pool` may carry; 0: no bound.
  int64_t MaxRecords(Pool pool) const;

 private:
  const PopulationLimits limits_;
  absl::Mutex mu_;
  int running_[2] ABSL_GUARDED_BY(mu_) = {0, 0};
  int waiting_[2] ABSL_GUARDED_BY(mu_) = {0, 0};
};

class ScoringServiceImpl final : public v1::ScoringService::Service {
 public:
  using Clock = std::function<absl::Time()>;
  // `guard` checks calls against ScoringMethodRoles().
  ScoringServiceImpl(const CallGuard* guard, Clock clock,
                     PopulationLimits limits = {})
      : guard_(guard), clock_(std::move(clock)), slots_(limits) {}

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
  PopulationSlots slots_;
};

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_SCORING_SERVICE_H_
