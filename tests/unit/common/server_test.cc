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
  ServerOptions options;
  options.service_name = "scoring";
  options.listen = "127.0.0.1:0";
  options.log_requests = true;
  options.verifier = verifier;
  options.health_service_names = {sv1::ScoringService::service_full_name()};
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, {&scoring});
  ASSERT_TRUE(server.ok()) << server.status();

  auto stub = sv1::ScoringService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*server)->port()),
                          grpc::InsecureChannelCredentials()));
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

}  // namespace
}  // namespace rapport
