// ScoringClient: the scoring service's calls as differentiation uses them,
// with absl::Status results. GrpcScoringClient is the one implementation that
// touches gRPC: it sets deadlines, balances round-robin over the replicas an
// address lists, and maps statuses once (FromGrpcStatus). Tests may use an
// in-process implementation instead.
//
// Streaming calls take two callbacks: `send` writes the requests (through the
// writer it is given, which puts the config into the first message and says
// false once the stream is broken), then `receive` gets every response.
//
//   RAPPORT_ASSIGN_OR_RETURN(auto scoring,
//                            GrpcScoringClient::Create("localhost:50054", {}));
//   Cancellation cancel;  // another thread may cancel the call
//   RAPPORT_RETURN_IF_ERROR(scoring->ScorePopulation(config,
//       [&](const auto& write) { ... write(request) ... },
//       [&](sv1::ScorePopulationResponse& r) { ... }, &cancel));
#ifndef RAPPORT_COMMON_DIFFERENTIATION_SCORING_CLIENT_H_
#define RAPPORT_COMMON_DIFFERENTIATION_SCORING_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "rapport/scoring/v1/scoring_service.pb.h"

namespace rapport::differentiation {

namespace sv1 = ::rapport::scoring::v1;

// The code the scoring service answered with, for a status a ScoringClient
// returned: GrpcScoringClient makes every answer but "away, slow or busy"
// and what the data makes impossible INTERNAL (the caller's input was checked
// before; see scoring_client.cc), and keeps the scoring service's own code for
// code that must tell them apart. A status of any other origin: its own code.
absl::StatusCode ScoringCode(const absl::Status& status);

// Cancels the scoring call in progress, and every later one: a refresh job
// passes one to each of its calls, and the service's shutdown cancels it.
class Cancellation {
 public:
  void Cancel();
  bool cancelled() const;
  // Waits `d`, or less when cancelled meanwhile; true when cancelled.
  bool WaitFor(absl::Duration d) const;
  // For ScoringClient implementations: `cancel` is how to stop the call in
  // progress (until Clear); false, and nothing kept, when already cancelled.
  bool Set(std::function<void()> cancel);
  void Clear();

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::function<void()> cancel_ ABSL_GUARDED_BY(mu_);
};

class ScoringClient {
 public:
  template <typename Request>
  using Writer = std::function<bool(Request&)>;
  template <typename Request>
  using Send = std::function<absl::Status(const Writer<Request>&)>;
  template <typename Response>
  using Receive = std::function<absl::Status(Response&)>;

  virtual ~ScoringClient() = default;

  // Scores a population: `send` streams facts, `receive` gets the scores in
  // entity-id byte order, the model in the last response.
  virtual absl::Status ScorePopulation(
      const sv1::ScoringConfig& config,
      const Send<sv1::ScorePopulationRequest>& send,
      const Receive<sv1::ScorePopulationResponse>& receive,
      Cancellation* cancel) = 0;
  // Fits (with config.fit) and applies the CLV models: `send` streams events,
  // `receive` gets the predictions in entity-id byte order.
  virtual absl::Status PredictClv(
      const sv1::PredictionConfig& config,
      const Send<sv1::PredictClvRequest>& send,
      const Receive<sv1::PredictClvResponse>& receive,
      Cancellation* cancel) = 0;
  // Scores many entities against one model.
  virtual absl::StatusOr<sv1::ScoreEntitiesResponse> ScoreEntities(
      const sv1::ScoreEntitiesRequest& request) = 0;
};

struct ScoringClientOptions {
  // Deadline of a unary call, and of a whole streaming call: the scoring
  // servers' own limit on a stream (--max_stream_time, 1 h by default),
  // which ends a longer one whatever its client's deadline.
  absl::Duration call_timeout = absl::Seconds(10);
  absl::Duration stream_timeout = absl::Hours(1);
  // A population call that a replica refused as busy (it runs its most
  // population calls, and none ended within its wait) is made again, on
  // the next replica round-robin, up to this many times in all, waiting
  // busy_backoff, then twice that, between tries. `send` then runs again.
  int busy_attempts = 3;
  absl::Duration busy_backoff = absl::Seconds(1);
  // The `authorization` metadata of every call ("Bearer <token>"), e.g.
  // auth::ServiceTokens::Authorization; none when empty.
  std::function<absl::StatusOr<std::string>()> authorization;
  // Whether tokens may go to another machine without TLS (the service's
  // allow_plaintext: a network that encrypts by itself). Without it,
  // Create refuses such an address (see PlaintextRefusal in channel.h).
  bool allow_plaintext = false;
};

class GrpcScoringClient final : public ScoringClient {
 public:
  // `address`: host:port, or a comma-separated list of them balanced
  // round-robin (see MakeChannel). INVALID_ARGUMENT naming "scoring_addr".
  static absl::StatusOr<std::unique_ptr<GrpcScoringClient>> Create(
      const std::string& address, const TlsOptions& tls,
      ScoringClientOptions options = {});
  ~GrpcScoringClient() override;

  absl::Status ScorePopulation(
      const sv1::ScoringConfig& config,
      const Send<sv1::ScorePopulationRequest>& send,
      const Receive<sv1::ScorePopulationResponse>& receive,
      Cancellation* cancel) override;
  absl::Status PredictClv(const sv1::PredictionConfig& config,
                          const Send<sv1::PredictClvRequest>& send,
                          const Receive<sv1::PredictClvResponse>& receive,
                          Cancellation* cancel) override;
  absl::StatusOr<sv1::ScoreEntitiesResponse> ScoreEntities(
      const sv1::ScoreEntitiesRequest& request) override;

 private:
  struct Stubs;
  GrpcScoringClient(std::unique_ptr<Stubs> stubs, ScoringClientOptions options);

  std::unique_ptr<Stubs> stubs_;
  ScoringClientOptions options_;
};

}  // namespace rapport::differentiation

#endif  // RAPPORT_COMMON_DIFFERENTIATION_SCORING_CLIENT_H_
