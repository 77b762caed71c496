#include "common/differentiation/scoring_client.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/channel.h"
#include "common/log.h"
#include "common/metrics/grpc_metrics.h"
#include "common/status.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"

namespace rapport::differentiation {

void Cancellation::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (cancel_) cancel_();
}

bool Cancellation::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Cancellation::WaitFor(absl::Duration d) const {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&cancelled_), d);
}

bool Cancellation::Set(std::function<void()> cancel) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  cancel_ = std::move(cancel);
  return true;
}

void Cancellation::Clear() {
  absl::MutexLock lock(&mu_);
  cancel_ = nullptr;
}

// Where ScoringError keeps the scoring service's own code (ScoringCode).
constexpr char kScoringCodePayload[] = "rapport.dev/scoring-code";

absl::StatusCode ScoringCode(const absl::Status& status) {
  int code = 0;
  if (auto c = status.GetPayload(kScoringCodePayload);
      c.has_value() && absl::SimpleAtoi(std::string(*c), &code)) {
    return static_cast<absl::StatusCode>(code);
  }
  return status.code();
}

namespace {

// The scoring service's answer as a status whose message says where it came
// from. What says the peer is away, slow or busy, or that the call was
// cancelled, keeps its code, the caller may try again, and its message is
// for the log only: the peer's words name its flags and limits ("raise
// --max_population_records"), or gRPC's its address. What the data makes
// impossible (FAILED_PRECONDITION, OUT_OF_RANGE) keeps its code and words.
// Anything else (it refusing this service's own credentials, or a request
// this service made, which the caller's input was checked for before) is for
// the operator, not for the caller: INTERNAL, its message for the log only.
absl::Status ScoringError(const grpc::Status& status, absl::string_view what) {
  absl::Status s = FromGrpcStatus(status);
  if (IsPassing(s) || absl::IsCancelled(s)) {
    return Prefixed(MarkInternal(absl::Status(s.code(), s.message())), what);
  }
  switch (s.code()) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      // What the data makes impossible (a CLV fit that finds no finite
      // likelihood, sums past what Money holds): the caller's to know, in
      // the scoring service's words, without its field violations.
      return Prefixed(absl::Status(s.code(), s.message()), what);
    default: {
      // Without the peer's field violations, which name fields of a request
      // the caller never saw.
      absl::Status internal = MarkInternal(absl::InternalError(
          absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message())));
      internal.SetPayload(kScoringCodePayload,
                          absl::Cord(absl::StrCat(static_cast<int>(s.code()))));
      return Prefixed(internal, what);
    }
  }
}

absl::StatusOr<std::unique_ptr<grpc::ClientContext>> NewCall(
    absl::Duration timeout, const ScoringClientOptions& options) {
  auto call = std::make_unique<grpc::ClientContext>();
  call->set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  if (options.authorization) {
    absl::StatusOr<std::string> authorization = options.authorization();
    if (!authorization.ok()) return authorization.status();
    call->AddMetadata("authorization", *authorization);
  }
  return call;
}

// The trailer a scoring replica adds when it refuses a population call for
// want of a slot (services/scoring/scoring_service.h, kBusyTrailer).
constexpr char kBusyTrailer[] = "rapport-busy";
constexpr char kTooLargeTrailer[] = "rapport-too-large";

// Runs one bidirectional stream: the caller's `send` writes (the first
// message gets the config through `configure`), then every response goes to
// `receive`. Registers the call with `cancel` for as long as it runs. Sets
// `*busy` when the replica refused the call as busy, and `*lost` when the
// stream was lost (UNAVAILABLE: its replica died, or was stopping) before
// any response reached `receive`, so that the call can be made again whole.
template <typename Request, typename Response, typename Open>
absl::Status RunStreamOnce(absl::Duration timeout,
                           const ScoringClientOptions& options, Open open,
                           const std::function<void(Request&)>& configure,
                           const ScoringClient::Send<Request>& send,
                           const ScoringClient::Receive<Response>& receive,
                           Cancellation* cancel, absl::string_view what,
                           bool* busy, bool* lost) {
  const auto refused_as_busy = [](const grpc::Status& status,
                                  const grpc::ClientContext& call) {
    return status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED &&
           call.GetServerTrailingMetadata().count(kBusyTrailer) > 0;
  };
  // RESOURCE_EXHAUSTED for the call's own size (more records than a
  // replica takes, which it marks, or a message past gRPC's limit): no retry
  // can pass it, so the caller is not told "busy; retry later" but what to
  // do. The peer's words (its flags) go to the log. Any other
  // RESOURCE_EXHAUSTED (a replica's threads all taken) passes.
  const auto failed = [&](const grpc::Status& status,
                          const grpc::ClientContext& call) {
    if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
      return ScoringError(status, what);
    }
    const bool too_many_records =
        call.GetServerTrailingMetadata().count(kTooLargeTrailer) > 0;
    if (too_many_records ||
        absl::StrContains(status.error_message(), "larger than max")) {
      LogLine("warn", ProcessService(), "a call to scoring was too large",
              {{"call", std::string(what)}, {"error", status.error_message()}});
      return absl::FailedPreconditionError(absl::StrCat(
          what,
          too_many_records
              ? ": the population is larger than one call to the scoring "
                "service may carry; its operator can raise the scoring "
                "replicas' limits (their log says which)"
              : ": a message between this service and the scoring service "
                "is larger than gRPC allows; its operator can raise the "
                "message size limits or lower the batch sizes (the log says "
                "which message)"));
    }
    return ScoringError(status, what);
  };
  absl::StatusOr<std::unique_ptr<grpc::ClientContext>> made =
      NewCall(timeout, options);
  if (!made.ok()) return made.status();
  std::unique_ptr<grpc::ClientContext> call = *std::move(made);
  if (cancel != nullptr && !cancel->Set([c = call.get()] { c->TryCancel(); })) {
    return absl::CancelledError("the service is stopping");
  }
  struct Unset {
    Cancellation* cancel;
    ~Unset() {
      if (cancel != nullptr) cancel->Clear();
    }
  } unset{cancel};
  auto stream = open(call.get());

  bool first_sent = false;
  bool broken = false;
  const ScoringClient::Writer<Request> write = [&](Request& request) {
    if (broken) return false;
    if (!first_sent) {
      configure(request);
      first_sent = true;
    }
    if (!stream->Write(request)) broken = true;
    return !broken;
  };
  absl::Status sent = send(write);
  if (sent.ok() && !first_sent) {
    Request config_only;  // nothing to send: the service says what it makes
    write(config_only);   // of the config alone
  }
  if (broken) {
    grpc::Status status = stream->Finish();
    *busy = refused_as_busy(status, *call);
    *lost = status.ok() || status.error_code() == grpc::StatusCode::UNAVAILABLE;
    return status.ok() ? absl::UnavailableError(absl::StrCat(
                             what, ": the scoring service closed the stream"))
                       : failed(status, *call);
  }
  if (!sent.ok()) {
    call->TryCancel();
    stream->Finish().ok();  // the caller's error is the one that matters
    return sent;
  }
  stream->WritesDone();
  Response response;
  absl::Status received;
  bool any_received = false;
  while (received.ok() && stream->Read(&response)) {
    any_received = true;
    received = receive(response);
  }
  if (!received.ok()) {
    call->TryCancel();
    stream->Finish().ok();
    return received;
  }
  grpc::Status status = stream->Finish();
  *busy = refused_as_busy(status, *call);
  *lost = !any_received && status.error_code() == grpc::StatusCode::UNAVAILABLE;
  if (!status.ok()) return failed(status, *call);
  return absl::OkStatus();
}

// RunStreamOnce, made again when a replica refused it as busy (see
// ScoringClientOptions::busy_attempts), or was lost before it answered
// anything (up to kLostAttempts in all, after a short pause: round robin
// gives the call to another replica, while the lost one's connection is
// down). A call lost after some answers is not made again: `receive` has
// taken them.
template <typename Request, typename Response, typename Open>
absl::Status RunStream(absl::Duration timeout,
                       const ScoringClientOptions& options, Open open,
                       const std::function<void(Request&)>& configure,
                       const ScoringClient::Send<Request>& send,
                       const ScoringClient::Receive<Response>& receive,
                       Cancellation* cancel, absl::string_view what) {
  constexpr int kLostAttempts = 3;
  absl::Duration backoff = options.busy_backoff;
  int lost_attempts = 0;
  int busy_attempts = 0;
  for (;;) {
    bool busy = false;
    bool lost = false;
    absl::Status s = RunStreamOnce<Request, Response>(
        timeout, options, open, configure, send, receive, cancel, what, &busy,
        &lost);
    if (cancel != nullptr && cancel->cancelled()) return s;
    if (lost && !busy && ++lost_attempts < kLostAttempts) {
      LogLine(
          "warn", ProcessService(),
          "a scoring replica was lost under a call; calling again",
          {{"call", std::string(what)}, {"error", std::string(s.message())}});
      const absl::Duration pause = absl::Milliseconds(200 * lost_attempts);
      if (cancel == nullptr) {
        absl::SleepFor(pause);
      } else if (cancel->WaitFor(pause)) {
        return absl::CancelledError("the service is stopping");
      }
      continue;
    }
    if (!busy || ++busy_attempts >= options.busy_attempts) return s;
    if (cancel == nullptr) {
      absl::SleepFor(backoff);
    } else if (cancel->WaitFor(backoff)) {
      return absl::CancelledError("the service is stopping");
    }
    backoff *= 2;
  }
}

}  // namespace

struct GrpcScoringClient::Stubs {
  std::unique_ptr<sv1::ScoringService::Stub> stub;
};

absl::StatusOr<std::unique_ptr<GrpcScoringClient>> GrpcScoringClient::Create(
    const std::string& address, const TlsOptions& tls,
    ScoringClientOptions options) {
  if (options.authorization != nullptr && !options.allow_plaintext) {
    if (absl::Status s = PlaintextRefusal(address, tls); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "scoring_addr: ", s.message(),
          ": give tls_cert and tls_key (the calls to scoring use the "
          "service's own), or allow_plaintext where the network encrypts by "
          "itself"));
    }
  }
  // Its calls count in the grpc_client_* metrics, every method's series
  // there from the start: an alert on failed calls to scoring reads 0, not
  // nothing, before the first one.
  if (const google::protobuf::ServiceDescriptor* service =
          google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
              sv1::ScoringService::service_full_name())) {
    metrics::GrpcCallMetrics::Client().InitializeService(*service);
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      MakeChannel(address, tls, metrics::ClientInterceptors());
  if (!channel.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("scoring_addr: ",
                     absl::StripPrefix(channel.status().message(), "addr: ")));
  }
  auto stubs = std::make_unique<Stubs>();
  stubs->stub = sv1::ScoringService::NewStub(*channel);
  return std::unique_ptr<GrpcScoringClient>(
      new GrpcScoringClient(std::move(stubs), options));
}

GrpcScoringClient::GrpcScoringClient(std::unique_ptr<Stubs> stubs,
                                     ScoringClientOptions options)
    : stubs_(std::move(stubs)), options_(options) {}

GrpcScoringClient::~GrpcScoringClient() = default;

absl::Status GrpcScoringClient::ScorePopulation(
    const sv1::ScoringConfig& config,
    const Send<sv1::ScorePopulationRequest>& send,
    const Receive<sv1::ScorePopulationResponse>& receive,
    Cancellation* cancel) {
  return RunStream<sv1::ScorePopulationRequest, sv1::ScorePopulationResponse>(
      options_.stream_timeout, options_,
      [&](grpc::ClientContext* call) {
        return stubs_->stub->ScorePopulation(call);
      },
      [&](sv1::ScorePopulationRequest& r) { *r.mutable_config() = config; },
      send, receive, cancel, "scoring service");
}

absl::Status GrpcScoringClient::PredictClv(
    const sv1::PredictionConfig& config,
    const Send<sv1::PredictClvRequest>& send,
    const Receive<sv1::PredictClvResponse>& receive, Cancellation* cancel) {
  return RunStream<sv1::PredictClvRequest, sv1::PredictClvResponse>(
      options_.stream_timeout, options_,
      [&](grpc::ClientContext* call) { return stubs_->stub->PredictClv(call); },
      [&](sv1::PredictClvRequest& r) { *r.mutable_config() = config; }, send,
      receive, cancel, "predicting CLV");
}

absl::StatusOr<sv1::ScoreEntitiesResponse> GrpcScoringClient::ScoreEntities(
    const sv1::ScoreEntitiesRequest& request) {
  // Scoring a few entities against a model changes nothing: a call a
  // replica could not answer (it died under it, or was draining) is made
  // again, and round robin gives it to another one.
  // Within the one call's time, with a short pause between attempts (a
  // channel that just lost its replica is not ready at once).
  constexpr int kAttempts = 3;
  const absl::Time deadline = absl::Now() + options_.call_timeout;
  for (int attempt = 1;; ++attempt) {
    RAPPORT_ASSIGN_OR_RETURN(std::unique_ptr<grpc::ClientContext> call,
                             NewCall(deadline - absl::Now(), options_));
    sv1::ScoreEntitiesResponse response;
    grpc::Status status =
        stubs_->stub->ScoreEntities(call.get(), request, &response);
    if (status.ok()) return response;
    // Not when too little time would be left for an answer: the caller
    // then learns why the call failed, not that time ran out.
    const absl::Duration pause = absl::Milliseconds(50 * attempt);
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE ||
        attempt == kAttempts ||
        deadline - (absl::Now() + pause) < options_.call_timeout / 4) {
      return ScoringError(status, "scoring service");
    }
    absl::SleepFor(pause);
  }
}

}  // namespace rapport::differentiation
