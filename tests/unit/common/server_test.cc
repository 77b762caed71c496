// The server every service runs (common/server.h), in process: what its
// request log says of a call.
#include "common/server.h"

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/jwt.h"
#include "common/call_guard.h"
#include "services/scoring/scoring_service.h"
#include "tests/support/test_auth.h"

namespace rapport {
namespace {

namespace sv1 = ::rapport::scoring::v1;

// A scoring server on a free loopback port, as these tests start it.
ServerOptions ScoringServerOptions(
    std::shared_ptr<const auth::TokenVerifier> verifier) {
  ServerOptions options;
  options.service_name = "scoring";
  options.listen = "127.0.0.1:0";
  options.verifier = std::move(verifier);
  options.health_service_names = {sv1::ScoringService::service_full_name()};
  return options;
}

std::unique_ptr<sv1::ScoringService::Stub> StubOf(const Server& server) {
  return sv1::ScoringService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port()),
                          grpc::InsecureChannelCredentials()));
}

// A metrics address that is no host:port is refused with the other
// settings, before a service waits for its database and migrates it.
TEST(Server, ABadMetricsAddressIsRefusedBeforeAnythingStarts) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.verifier = testing::TestAuth::Get().Verifier();
  options.metrics_listen = "127.0.0.1:0";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  for (const char* bad :
       {"9451", ":9451", "127.0.0.1:http", "127.0.0.1:70000"}) {
    options.metrics_listen = bad;
    absl::Status refused = options.Validate();
    EXPECT_TRUE(absl::IsInvalidArgument(refused)) << bad << ": " << refused;
    EXPECT_TRUE(absl::StartsWith(refused.message(), "metrics_listen: "))
        << refused;
  }
}

// A stream outlives its token (an import of an hour on a token of an hour):
// the request log still names its caller, found as the stream began.
TEST(Server, TheRequestLogNamesTheCallerOfAStreamThatOutlivedItsToken) {
  const testing::TestAuth& keys = testing::TestAuth::Get();
  // The verifier's clock, moved past the token's expiry once the stream has
  // begun; no leeway: a token is refused as soon as it expires.
  std::atomic<int64_t> skew_s{0};
  absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> made =
      auth::TokenVerifier::Create(
          {.jwks_file = keys.jwks_file(),
           .issuer = "rapport",
           .audience = "rapport",
           .leeway = absl::ZeroDuration()},
          [&] { return absl::Now() + absl::Seconds(skew_s.load()); });
  ASSERT_TRUE(made.ok()) << made.status();
  std::shared_ptr<const auth::TokenVerifier> verifier = *std::move(made);
  const CallGuard guard(verifier.get(), scoring::ScoringMethodRoles());
  scoring::ScoringServiceImpl scoring(&guard, [] { return absl::Now(); });
  ServerOptions options = ScoringServerOptions(verifier);
  options.log_requests = true;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, {&scoring});
  ASSERT_TRUE(server.ok()) << server.status();

  auto stub = StubOf(**server);
  grpc::ClientContext call;
  call.AddMetadata("authorization",
                   absl::StrCat("Bearer ", keys.Token("reader", "test:long",
                                                      absl::Minutes(5))));
  ::testing::internal::CaptureStderr();
  auto stream = stub->ScorePopulation(&call);
  sv1::ScorePopulationRequest config;
  *config.mutable_config()->mutable_as_of() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1'700'000'000);
  ASSERT_TRUE(stream->Write(config));
  sv1::ScorePopulationRequest facts;
  sv1::EntityFacts* f = facts.add_facts();
  f->set_entity_id("p1");
  f->set_frequency(1);
  f->mutable_monetary()->set_units(10);
  *f->mutable_last_event_time() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1'699'000'000);
  ASSERT_TRUE(stream->Write(facts));
  // The call was authorized (the service answers its first metadata once it
  // holds a slot, after the check); then the token expires while it runs.
  stream->WaitForInitialMetadata();
  skew_s = 3600;
  stream->WritesDone();
  sv1::ScorePopulationResponse response;
  while (stream->Read(&response)) {
  }
  const grpc::Status status = stream->Finish();
  (*server)->Shutdown();
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(log.find(R"("method":"/rapport.scoring.v1.ScoringService/)"
                     R"(ScorePopulation")"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find(R"("caller":"test:long")"), std::string::npos) << log;
}

// A stream holds a server thread while its client keeps it open: one caller
// runs at most max_streams_per_caller of them, all callers together at most
// max_streams, and one more is refused at once, so that streams opened and
// left idle cannot take the threads other calls need.
TEST(Server, StreamsPastTheirBoundsAreRefusedAndShortCallsStillRun) {
  const testing::TestAuth& keys = testing::TestAuth::Get();
  // Held here: the guard keeps a plain pointer to it.
  const std::shared_ptr<const auth::TokenVerifier> verifier = keys.Verifier();
  const CallGuard guard(verifier.get(), scoring::ScoringMethodRoles());
  scoring::ScoringServiceImpl scoring(&guard, [] { return absl::Now(); });
  ServerOptions options = ScoringServerOptions(verifier);
  options.log_requests = false;
  options.max_threads = 8;
  options.max_streams = 3;
  options.max_streams_per_caller = 2;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, {&scoring});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = StubOf(**server);

  struct Open {
    std::unique_ptr<grpc::ClientContext> call;
    std::unique_ptr<grpc::ClientReaderWriter<sv1::ScorePopulationRequest,
                                             sv1::ScorePopulationResponse>>
        stream;
  };
  // Opens a stream of `subject`, sending nothing, and waits until the
  // server counts `counted_then` streams (a stream the bounds refuse is
  // opened with the count as it is). Each ends within 30 s whatever happens.
  const auto open = [&](const std::string& subject, int counted_then) {
    Open o;
    o.call = std::make_unique<grpc::ClientContext>();
    o.call->set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    o.call->AddMetadata("authorization",
                        absl::StrCat("Bearer ", keys.Token("reader", subject)));
    o.stream = stub->ScorePopulation(o.call.get());
    for (int i = 0; i < 3000 && (*server)->streams_running() < counted_then;
         ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return o;
  };
  const auto refusal = [](Open& o) {
    o.stream->WritesDone();
    return o.stream->Finish();
  };

  Open a1 = open("test:a", 1);
  Open a2 = open("test:a", 2);
  ASSERT_EQ((*server)->streams_running(), 2);
  Open a3 = open("test:a", 2);
  const grpc::Status per_caller = refusal(a3);
  EXPECT_EQ(per_caller.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(per_caller.error_message().find("max_streams_per_caller"),
            std::string::npos)
      << per_caller.error_message();
  EXPECT_EQ((*server)->streams_running(), 2);

  Open b1 = open("test:b", 3);
  ASSERT_EQ((*server)->streams_running(), 3);
  Open c1 = open("test:c", 3);
  const grpc::Status all = refusal(c1);
  EXPECT_EQ(all.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(all.error_message().find("(max_streams)"), std::string::npos)
      << all.error_message();

  // A short call still finds a thread.
  grpc::ClientContext unary;
  unary.AddMetadata("authorization",
                    absl::StrCat("Bearer ", keys.Token("reader", "test:c")));
  sv1::ScoreEntityRequest request;
  sv1::ScoreEntityResponse response;
  const grpc::Status short_call = stub->ScoreEntity(&unary, request, &response);
  EXPECT_NE(short_call.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << short_call.error_message();
  EXPECT_NE(short_call.error_code(), grpc::StatusCode::UNAVAILABLE)
      << short_call.error_message();

  // A stream that ends leaves room for another.
  a1.call->TryCancel();
  a1.stream->Finish();
  for (int i = 0; i < 3000 && (*server)->streams_running() > 2; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ((*server)->streams_running(), 2);
  Open c2 = open("test:c", 3);
  EXPECT_EQ((*server)->streams_running(), 3);

  for (Open* o : {&a2, &b1, &c2}) {
    o->call->TryCancel();
    o->stream->Finish();
  }
  (*server)->Shutdown();
  EXPECT_EQ((*server)->streams_running(), 0);
}

// A stream whose client sends must keep sending: one opened and left silent
// past max_stream_idle_time is ended with DEADLINE_EXCEEDED saying so, and
// its place is free again; one that sends now and then lives on past that
// time.
TEST(Server, ASilentStreamIsEndedAndOneThatKeepsSendingIsNot) {
  const testing::TestAuth& keys = testing::TestAuth::Get();
  const std::shared_ptr<const auth::TokenVerifier> verifier = keys.Verifier();
  const CallGuard guard(verifier.get(), scoring::ScoringMethodRoles());
  // Both streams hold a population slot at once (neither waits for one).
  scoring::ScoringServiceImpl scoring(&guard, [] { return absl::Now(); },
                                      {.max_people_calls = 2});
  ServerOptions options = ScoringServerOptions(verifier);
  options.log_requests = false;
  options.max_stream_idle_time = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, {&scoring});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = StubOf(**server);
  const auto open = [&](grpc::ClientContext* call) {
    call->set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
    call->AddMetadata("authorization",
                      absl::StrCat("Bearer ", keys.Token("reader", "test:a")));
    return stub->ScorePopulation(call);
  };

  grpc::ClientContext silent_call;
  auto silent = open(&silent_call);
  grpc::ClientContext busy_call;
  auto busy = open(&busy_call);
  sv1::ScorePopulationRequest config;
  *config.mutable_config()->mutable_as_of() =
      google::protobuf::util::TimeUtil::SecondsToTimestamp(1'700'000'000);
  ASSERT_TRUE(busy->Write(config));
  // One entity every 200 ms for 5 s: two and a half idle limits in all.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  for (int i = 0; absl::Now() < until; ++i) {
    sv1::ScorePopulationRequest facts;
    sv1::EntityFacts* f = facts.add_facts();
    f->set_entity_id(absl::StrCat("p", i));
    f->set_frequency(1);
    f->mutable_monetary()->set_units(10 + i);
    *f->mutable_last_event_time() =
        google::protobuf::util::TimeUtil::SecondsToTimestamp(1'699'000'000);
    ASSERT_TRUE(busy->Write(facts)) << "the busy stream ended at entity " << i;
    absl::SleepFor(absl::Milliseconds(200));
  }
  busy->WritesDone();
  sv1::ScorePopulationResponse response;
  int scored = 0;
  while (busy->Read(&response)) scored += response.scores_size();
  const grpc::Status kept = busy->Finish();
  EXPECT_TRUE(kept.ok()) << kept.error_message();
  EXPECT_GE(scored, 20);

  // The silent one, by now past its limit, was ended and left the count.
  silent->WritesDone();
  const grpc::Status ended = silent->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << ended.error_message();
  EXPECT_NE(ended.error_message().find("sent nothing for 2s"),
            std::string::npos)
      << ended.error_message();
  EXPECT_EQ((*server)->streams_running(), 0);
  (*server)->Shutdown();
}

}  // namespace
}  // namespace rapport
