// GrpcScoringClient against in-process scoring servers on loopback: answers
// and errors as absl::Status (field violations kept), deadlines, round-robin
// over replicas, and cancellation.
#include "common/differentiation/scoring_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/scoring/v1/scoring_service.grpc.pb.h"
#include "services/scoring/scoring_logic.h"
#include "services/scoring/scoring_service.h"
#include "tests/support/test_auth.h"

namespace rapport::differentiation {
namespace {

// A scoring replica that counts the ScoreEntities calls it serves.
class CountingScoring final : public sv1::ScoringService::Service {
 public:
  grpc::Status ScoreEntities(grpc::ServerContext*,
                             const sv1::ScoreEntitiesRequest* request,
                             sv1::ScoreEntitiesResponse* response) override {
    ++calls;
    absl::StatusOr<sv1::ScoreEntitiesResponse> r = scoring::ScoreMany(*request);
    if (!r.ok()) return ToGrpcStatus(r.status());
    *response = *std::move(r);
    return grpc::Status::OK;
  }
  std::atomic<int> calls{0};
};

struct Replica {
  template <typename Service>
  explicit Replica(Service* service) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service);
    server = builder.BuildAndStart();
  }
  ~Replica() { server->Shutdown(); }
  std::string addr() const { return absl::StrCat("127.0.0.1:", port); }
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// The guard of the in-process scoring services, on the test deployment's
// keys, and the client options that carry a reader's token.
const CallGuard& Guard() {
  static const auto* const kVerifier =
      new std::shared_ptr<const auth::TokenVerifier>(
          testing::TestAuth::Get().Verifier());
  static const CallGuard* const kGuard =
      new CallGuard(kVerifier->get(), scoring::ScoringMethodRoles());
  return *kGuard;
}

ScoringClientOptions Authorized() {
  return {.authorization = []() -> absl::StatusOr<std::string> {
    return testing::TestAuth::Get().Bearer("reader");
  }};
}

// A model as a one-entity population run leaves it.
sv1::ScoreModel Model() {
  sv1::ScorePopulationRequest request;
  *request.mutable_config()->mutable_as_of() =
      ToTimestamp(1'700'000'000'000'000);
  sv1::EntityFacts* f = request.add_facts();
  f->set_entity_id("a");
  f->set_frequency(2);
  f->mutable_monetary()->set_units(10);
  *f->mutable_last_event_time() = ToTimestamp(1'699'000'000'000'000);
  auto run = scoring::PopulationRun::Start(request.config(), absl::Now());
  EXPECT_TRUE((*run)->Add(request).ok());
  EXPECT_TRUE((*run)->Finish().ok());
  return (*run)->model();
}

// One population call through `client` for entities `ids` (no facts),
// counting the scores received into `scored`; `on_send` runs each time the
// call sends its population (again when a busy replica made it retry).
absl::Status ScoreEntities(ScoringClient& client,
                           const std::vector<std::string>& ids,
                           std::atomic<int>& scored,
                           const std::function<void()>& on_send = nullptr,
                           Cancellation* cancel = nullptr) {
  return client.ScorePopulation(
      sv1::ScoringConfig(),
      [&](const ScoringClient::Writer<sv1::ScorePopulationRequest>& write) {
        if (on_send) on_send();
        sv1::ScorePopulationRequest r;
        for (const std::string& id : ids) r.add_entity_ids(id);
        write(r);
        return absl::OkStatus();
      },
      [&](sv1::ScorePopulationResponse& r) {
        scored += r.scores_size();
        return absl::OkStatus();
      },
      cancel);
}

sv1::ScoreEntitiesRequest OneEntity() {
  sv1::ScoreEntitiesRequest request;
  *request.mutable_model() = Model();
  sv1::EntityFacts* f = request.add_facts();
  f->set_entity_id("b");
  f->set_frequency(1);
  f->mutable_monetary()->set_units(4);
  *f->mutable_last_event_time() = ToTimestamp(1'699'500'000'000'000);
  return request;
}

// The service's tokens go to a scoring service on another machine over TLS
// only, unless the service may serve in plaintext (allow_plaintext); to this
// machine, or without tokens, in plaintext.
TEST(GrpcScoringClient, TokensGoToAnotherMachineOverTLSOnly) {
  ScoringClientOptions options = Authorized();
  absl::Status refused =
      GrpcScoringClient::Create("192.0.2.1:50054", {}, options).status();
  EXPECT_TRUE(absl::IsInvalidArgument(refused)) << refused;
  EXPECT_TRUE(absl::StartsWith(refused.message(),
                               "scoring_addr: 192.0.2.1:50054 is another "
                               "machine, and without TLS"))
      << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "allow_plaintext"))
      << refused;
  EXPECT_TRUE(
      GrpcScoringClient::Create("127.0.0.1:1,127.0.0.2:2", {}, options).ok());
  options.allow_plaintext = true;
  EXPECT_TRUE(GrpcScoringClient::Create("192.0.2.1:50054", {}, options).ok());
  EXPECT_TRUE(GrpcScoringClient::Create("192.0.2.1:50054", {}, {}).ok());
}

TEST(GrpcScoringClient, CallsBalanceRoundRobinOverTheReplicasListed) {
  CountingScoring one, two;
  Replica r1(&one), r2(&two);
  auto client =
      GrpcScoringClient::Create(absl::StrCat(r1.addr(), ",", r2.addr()), {});
  ASSERT_TRUE(client.ok()) << client.status();
  auto call = [&] {
    absl::StatusOr<sv1::ScoreEntitiesResponse> r =
        (*client)->ScoreEntities(OneEntity());
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->scores_size(), 1);
    EXPECT_EQ(r->scores(0).entity_id(), "b");
  };
  // Round robin picks among the replicas it has connected to, and it
  // connects to the second in the background: calls until both answered.
  for (int i = 0; i < 1000 && (one.calls == 0 || two.calls == 0); ++i) {
    call();
    if (two.calls == 0 || one.calls == 0)
      absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_GT(one.calls, 0);
  ASSERT_GT(two.calls, 0);
  const int one_before = one.calls, two_before = two.calls;
  for (int i = 0; i < 20; ++i) call();
  EXPECT_EQ(one.calls - one_before, 10);
  EXPECT_EQ(two.calls - two_before, 10);
}

// The scoring service refusing a request this service made is this
// service's failure, not its caller's (whose input was checked before):
// INTERNAL naming the scoring service and, for the log only, what it said;
// its field violations, of a request the caller never saw, are not passed on.
TEST(GrpcScoringClient,
     ARequestTheScoringServiceRefusesIsTheServicesOwnFailure) {
  CountingScoring service;
  Replica replica(&service);
  auto client = GrpcScoringClient::Create(replica.addr(), {});
  ASSERT_TRUE(client.ok());
  sv1::ScoreEntitiesRequest bad = OneEntity();
  bad.mutable_facts(0)->set_frequency(-1);
  absl::Status s = (*client)->ScoreEntities(bad).status();
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_EQ(s.message().substr(0, 35), "scoring service: INVALID_ARGUMENT: ");
  EXPECT_TRUE(FieldViolations(s).empty()) << s;
  const absl::Status shown = Redacted(s);
  EXPECT_TRUE(absl::StartsWith(shown.message(), "scoring service: ")) << shown;
  EXPECT_EQ(shown.message().find("frequency"), absl::string_view::npos)
      << shown;

  EXPECT_TRUE(
      absl::IsInvalidArgument(GrpcScoringClient::Create("", {}).status()));
  // The error names the flag once, with the entry that is wrong.
  EXPECT_EQ(GrpcScoringClient::Create("a:1,b:2", {}).status().message(),
            "scoring_addr: \"a:1\" in a list of replicas is not IPv4:port; a "
            "list takes IP addresses only (for host names, give one name that "
            "resolves to every replica)");
}

TEST(GrpcScoringClient, AServerThatNeverAnswersMeetsTheDeadline) {
  // A socket that listens but never speaks HTTP/2.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  auto client = GrpcScoringClient::Create(
      absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), {},
      {.call_timeout = absl::Milliseconds(300)});
  ASSERT_TRUE(client.ok());
  absl::Status s = (*client)->ScoreEntities(OneEntity()).status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  close(fd);
}

TEST(GrpcScoringClient,
     NothingListeningIsUnavailableAndCancellationStopsCalls) {
  auto client = GrpcScoringClient::Create("127.0.0.1:1", {},
                                          {.call_timeout = absl::Seconds(5)});
  ASSERT_TRUE(client.ok());
  absl::Status s = (*client)->ScoreEntities(OneEntity()).status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;

  scoring::ScoringServiceImpl service(&Guard(), [] { return absl::Now(); });
  Replica replica(&service);
  client = GrpcScoringClient::Create(replica.addr(), {}, Authorized());
  Cancellation cancel;
  cancel.Cancel();
  bool sent = false;
  s = (*client)->ScorePopulation(
      sv1::ScoringConfig(),
      [&](const ScoringClient::Writer<sv1::ScorePopulationRequest>&) {
        sent = true;
        return absl::OkStatus();
      },
      [](sv1::ScorePopulationResponse&) { return absl::OkStatus(); }, &cancel);
  EXPECT_TRUE(absl::IsCancelled(s)) << s;
  EXPECT_FALSE(sent);
}

// A replica that could not answer (it died under the call, or drains) is
// not the end of a re-score: the call is made again, twice at most.
TEST(GrpcScoringClient, AnUnavailableReplicaIsCalledAgain) {
  class Failing final : public sv1::ScoringService::Service {
   public:
    grpc::Status ScoreEntities(grpc::ServerContext* context,
                               const sv1::ScoreEntitiesRequest* request,
                               sv1::ScoreEntitiesResponse* response) override {
      if (++calls <= fail_first)
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
      return counted.ScoreEntities(context, request, response);
    }
    std::atomic<int> fail_first{0};
    std::atomic<int> calls{0};
    CountingScoring counted;
  } replica_service;
  Replica replica(&replica_service);
  auto client = GrpcScoringClient::Create(replica.addr(), {});
  ASSERT_TRUE(client.ok());
  replica_service.fail_first = 2;
  absl::StatusOr<sv1::ScoreEntitiesResponse> r =
      (*client)->ScoreEntities(OneEntity());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scores_size(), 1);
  EXPECT_EQ(replica_service.calls, 3);
  // Three times unavailable: the call fails so.
  replica_service.calls = 0;
  replica_service.fail_first = 3;
  absl::Status s = (*client)->ScoreEntities(OneEntity()).status();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(replica_service.calls, 3);
  // Other errors are not made again.
  replica_service.calls = 0;
  replica_service.fail_first = 0;
  sv1::ScoreEntitiesRequest bad = OneEntity();
  bad.mutable_facts(0)->set_frequency(-1);
  EXPECT_FALSE((*client)->ScoreEntities(bad).ok());
  EXPECT_EQ(replica_service.calls, 1);
}

// The scoring service refusing the calling service's own token is the
// calling service's fault, not its caller's: INTERNAL, which its caller sees
// redacted (only "scoring service: " and an error id), whatever the reason.
TEST(GrpcScoringClient, ACallWithoutAValidTokenIsTheServicesOwnFailure) {
  scoring::ScoringServiceImpl service(&Guard(), [] { return absl::Now(); });
  Replica replica(&service);
  auto anonymous = GrpcScoringClient::Create(replica.addr(), {});
  ASSERT_TRUE(anonymous.ok());
  absl::Status s = (*anonymous)->ScoreEntities(OneEntity()).status();
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_TRUE(absl::StartsWith(s.message(), "scoring service: ")) << s;
  const absl::Status shown = Redacted(s);
  EXPECT_TRUE(absl::StartsWith(shown.message(), "scoring service: ")) << shown;
  EXPECT_EQ(shown.message().find("token"), absl::string_view::npos) << shown;
  auto forged = GrpcScoringClient::Create(
      replica.addr(), {},
      {.authorization = []() -> absl::StatusOr<std::string> {
        return std::string("Bearer not.a.token");
      }});
  s = (*forged)->ScoreEntities(OneEntity()).status();
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  auto reader = GrpcScoringClient::Create(replica.addr(), {}, Authorized());
  EXPECT_TRUE((*reader)->ScoreEntities(OneEntity()).ok());
}

TEST(GrpcScoringClient, AStreamSendsTheConfigFirstAndReceivesEveryBatch) {
  scoring::ScoringServiceImpl service(&Guard(), [] { return absl::Now(); });
  Replica replica(&service);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, Authorized());
  ASSERT_TRUE(client.ok());
  sv1::ScoringConfig config;
  *config.mutable_as_of() = ToTimestamp(1'700'000'000'000'000);
  config.set_response_batch_size(2);
  int received = 0;
  bool has_model = false;
  Cancellation cancel;
  absl::Status s = (*client)->ScorePopulation(
      config,
      [&](const ScoringClient::Writer<sv1::ScorePopulationRequest>& write) {
        for (int batch = 0; batch < 3; ++batch) {
          sv1::ScorePopulationRequest r;
          r.add_entity_ids(absl::StrCat("e", batch));
          if (!write(r)) return absl::CancelledError("closed");
        }
        return absl::OkStatus();
      },
      [&](sv1::ScorePopulationResponse& r) {
        received += r.scores_size();
        has_model = has_model || r.has_model();
        return absl::OkStatus();
      },
      &cancel);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(received, 3);
  EXPECT_TRUE(has_model);
  // A bad config fails the stream: this service's failure (INTERNAL), the
  // scoring service's code kept for the code that asks (ScoringCode).
  config.set_bins(11);
  s = (*client)->ScorePopulation(
      config,
      [&](const ScoringClient::Writer<sv1::ScorePopulationRequest>& write) {
        sv1::ScorePopulationRequest r;
        r.add_entity_ids("x");
        write(r);
        return absl::OkStatus();
      },
      [](sv1::ScorePopulationResponse&) { return absl::OkStatus(); }, &cancel);
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_EQ(ScoringCode(s), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "config.bins")) << s;
  EXPECT_TRUE(FieldViolations(s).empty());
  EXPECT_EQ(ScoringCode(absl::NotFoundError("x")), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rapport::differentiation

namespace rapport::differentiation {
namespace {

using PopulationStream =
    std::unique_ptr<grpc::ClientReaderWriter<sv1::ScorePopulationRequest,
                                             sv1::ScorePopulationResponse>>;

// A population call that holds a slot of the replica (which answers its
// first metadata once it does).
PopulationStream HoldSlot(sv1::ScoringService::Stub& stub,
                          grpc::ClientContext* context) {
  PopulationStream stream = stub.ScorePopulation(context);
  sv1::ScorePopulationRequest one;
  one.add_entity_ids("held");
  EXPECT_TRUE(stream->Write(one));
  stream->WaitForInitialMetadata();
  return stream;
}

// Ends a call HoldSlot made, freeing its slot; whether it finished OK.
bool ReleaseSlot(PopulationStream& stream) {
  stream->WritesDone();
  sv1::ScorePopulationResponse ignored;
  while (stream->Read(&ignored)) {
  }
  return stream->Finish().ok();
}

// A replica that runs one population call at a time refuses another as busy
// once its wait is over; the client makes the call again (its `send` runs
// again), and it goes through once the slot is free; a replica busy through
// every try gives RESOURCE_EXHAUSTED.
TEST(GrpcScoringClient, APopulationCallRefusedAsBusyIsMadeAgain) {
  scoring::ScoringServiceImpl service(
      &Guard(), [] { return absl::Now(); },
      // Long enough for the holder's release (round trips on a loaded
      // machine) to fall within one try's wait.
      {.max_calls = 1, .wait = absl::Milliseconds(1500)});
  Replica replica(&service);
  ScoringClientOptions options = Authorized();
  options.busy_attempts = 3;
  options.busy_backoff = absl::Milliseconds(10);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, options);
  ASSERT_TRUE(client.ok());
  // Another caller holds the only slot.
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(replica.addr(), grpc::InsecureChannelCredentials());
  auto stub = sv1::ScoringService::NewStub(channel);
  auto hold = [&](testing::AuthorizedContext* context) {
    return HoldSlot(*stub, context);
  };
  auto release = [](PopulationStream& stream) { return ReleaseSlot(stream); };
  std::atomic<int> sends{0};
  std::atomic<int> scored{0};
  auto population = [&](std::function<void()> on_second_send) {
    return ScoreEntities(**client, {"mine"}, scored, [&] {
      if (++sends == 2 && on_second_send) on_second_send();
    });
  };
  {
    testing::AuthorizedContext context("reader");
    auto held = hold(&context);
    // The first try is refused; before the second, the holder finishes.
    absl::Status s = population([&] { EXPECT_TRUE(release(held)); });
    EXPECT_TRUE(s.ok()) << s;
    EXPECT_EQ(sends.load(), 2);
    EXPECT_EQ(scored.load(), 1);
  }
  sends = 0;
  {
    testing::AuthorizedContext context("reader");
    auto held = hold(&context);
    absl::Status s = population(nullptr);
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
    EXPECT_EQ(sends.load(), 3);
    // The replica's words name its limits: the caller is told only who is
    // busy, and to retry.
    const absl::Status shown = Redacted(s);
    EXPECT_EQ(shown.code(), absl::StatusCode::kResourceExhausted);
    EXPECT_TRUE(
        absl::StartsWith(shown.message(), "scoring service: busy; retry later"))
        << shown;
    EXPECT_FALSE(absl::StrContains(shown.message(), "population calls"))
        << shown;
    EXPECT_TRUE(release(held));
  }
}

// A population call whose replica was lost (UNAVAILABLE: it died, or was
// stopping) before it answered anything is made again whole (its `send` runs
// again), round robin taking it to another replica; three times lost, it
// fails so. One lost after some answers is not: `receive` has taken them.
TEST(GrpcScoringClient, APopulationCallLostBeforeItsAnswersIsMadeAgain) {
  class Losing final : public sv1::ScoringService::Service {
   public:
    grpc::Status ScorePopulation(
        grpc::ServerContext* context,
        grpc::ServerReaderWriter<sv1::ScorePopulationResponse,
                                 sv1::ScorePopulationRequest>* stream)
        override {
      if (++calls > fail_first) return real.ScorePopulation(context, stream);
      sv1::ScorePopulationRequest request;
      while (stream->Read(&request)) {
      }
      if (answer_first) {
        sv1::ScorePopulationResponse partial;
        partial.add_scores()->set_entity_id("mine");
        stream->Write(partial);
      }
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
    }
    std::atomic<int> fail_first{0};
    std::atomic<bool> answer_first{false};
    std::atomic<int> calls{0};
    scoring::ScoringServiceImpl real{&Guard(), [] { return absl::Now(); }};
  } service;
  Replica replica(&service);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, Authorized());
  ASSERT_TRUE(client.ok());
  std::atomic<int> sends{0};
  std::atomic<int> scored{0};
  const auto population = [&] {
    sends = 0;
    scored = 0;
    service.calls = 0;
    return ScoreEntities(**client, {"mine"}, scored, [&] { ++sends; });
  };

  service.fail_first = 2;
  absl::Status s = population();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(sends.load(), 3);
  EXPECT_EQ(scored.load(), 1);

  service.fail_first = 3;
  s = population();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(sends.load(), 3);
  EXPECT_EQ(scored.load(), 0);

  service.fail_first = 1;
  service.answer_first = true;
  s = population();
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_EQ(sends.load(), 1);
  EXPECT_EQ(scored.load(), 1);  // the one answer, not made again
}

// A population past what a replica takes in one call is refused once, not
// made again as if busy, and the caller is told it is no matter of waiting
// (FAILED_PRECONDITION), without the replica's flags.
TEST(GrpcScoringClient, APopulationTooLargeForAReplicaIsNotCalledBusy) {
  scoring::ScoringServiceImpl service(
      &Guard(), [] { return absl::Now(); },
      {.max_records = 2, .max_people_records = 2});
  Replica replica(&service);
  ScoringClientOptions options = Authorized();
  options.busy_attempts = 3;
  options.busy_backoff = absl::Milliseconds(10);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, options);
  ASSERT_TRUE(client.ok());
  std::atomic<int> sends{0};
  std::atomic<int> scored{0};
  const absl::Status s =
      ScoreEntities(**client, {"a", "b", "c"}, scored, [&] { ++sends; });
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(sends.load(), 1);
  EXPECT_EQ(scored.load(), 0);
  const absl::Status shown = Redacted(s);
  EXPECT_TRUE(absl::StrContains(shown.message(), "larger than one call"))
      << shown;
  EXPECT_FALSE(absl::StrContains(shown.message(), "--max_population_records"))
      << shown;
  // Within the bound, the same client's call goes through.
  EXPECT_TRUE(ScoreEntities(**client, {"a", "b"}, scored).ok());
  EXPECT_EQ(scored.load(), 2);
}

// A refresh cancelled (its replica stopping) while it waits to call a busy
// replica again stops waiting: with an hour between tries, the call ends
// cancelled instead of holding up the stop.
TEST(GrpcScoringClient, ACancelEndsTheWaitBeforeCallingABusyReplicaAgain) {
  scoring::ScoringServiceImpl service(
      &Guard(), [] { return absl::Now(); },
      {.max_calls = 1, .wait = absl::Milliseconds(100)});
  Replica replica(&service);
  ScoringClientOptions options = Authorized();
  options.busy_attempts = 2;
  options.busy_backoff = absl::Hours(1);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, options);
  ASSERT_TRUE(client.ok());
  auto stub = sv1::ScoringService::NewStub(
      grpc::CreateChannel(replica.addr(), grpc::InsecureChannelCredentials()));
  testing::AuthorizedContext context("reader");
  PopulationStream held = HoldSlot(*stub, &context);  // the only slot
  Cancellation cancel;
  std::atomic<int> sends{0}, scored{0};
  absl::Status s;
  std::thread call([&] {
    s = ScoreEntities(
        **client, {"mine"}, scored, [&] { ++sends; }, &cancel);
  });
  // Refused as busy after 0.1 s, the call then waits; a cancel that came
  // sooner ends the call itself, also as cancelled.
  absl::SleepFor(absl::Seconds(1));
  cancel.Cancel();
  call.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  EXPECT_EQ(sends.load(), 1);
  EXPECT_EQ(scored.load(), 0);
  EXPECT_TRUE(ReleaseSlot(held));
}

// A client that holds a population slot and then stalls, sending nothing,
// or taking no answer, is cut off once the replica's idle limit passes: its
// call ends and the slot goes to the next caller, instead of every refresh
// being refused until the stalled stream's deadline.
TEST(GrpcScoringClient, AStalledPopulationCallIsCutOffAndFreesItsSlot) {
  scoring::ScoringServiceImpl service(
      &Guard(), [] { return absl::Now(); },
      {.max_calls = 1, .wait = absl::Minutes(10), .idle = absl::Seconds(2)});
  Replica replica(&service);
  auto client = GrpcScoringClient::Create(replica.addr(), {}, Authorized());
  ASSERT_TRUE(client.ok());
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(replica.addr(), grpc::InsecureChannelCredentials());
  auto stub = sv1::ScoringService::NewStub(channel);
  // Scores for `count` entities through the client, once the slot is free.
  auto population = [&](int count) {
    std::vector<std::string> ids;
    for (int i = 0; i < count; ++i) ids.push_back(absl::StrCat(i));
    std::atomic<int> scored{0};
    absl::Status s = ScoreEntities(**client, ids, scored);
    EXPECT_TRUE(s.ok()) << s;
    return scored.load();
  };

  {  // Sends one message, then nothing, and never ends its stream.
    testing::AuthorizedContext context("reader");
    auto stalled = stub->ScorePopulation(&context);
    sv1::ScorePopulationRequest one;
    one.add_entity_ids("stalled");
    ASSERT_TRUE(stalled->Write(one));
    stalled->WaitForInitialMetadata();  // it holds the slot
    EXPECT_EQ(population(3), 3);
    EXPECT_EQ(stalled->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  {  // Sends a population whose answers outgrow what the connection buffers,
     // and reads none of them.
    testing::AuthorizedContext context("reader");
    auto stalled = stub->ScorePopulation(&context);
    for (int batch = 0; batch < 20; ++batch) {
      sv1::ScorePopulationRequest r;
      for (int i = 0; i < 20'000; ++i)
        r.add_entity_ids(absl::StrCat("entity-", batch * 20'000 + i));
      ASSERT_TRUE(stalled->Write(r));
    }
    ASSERT_TRUE(stalled->WritesDone());
    EXPECT_EQ(population(2), 2);
    sv1::ScorePopulationResponse ignored;
    while (stalled->Read(&ignored)) {
    }
    EXPECT_EQ(stalled->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
}

}  // namespace
}  // namespace rapport::differentiation
