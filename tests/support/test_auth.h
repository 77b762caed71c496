// The keys of a test deployment, made once per test process in a scratch
// directory: a key that signs people's tokens (rapportctl, gRPC clients), one
// per domain service for its own calls to the scoring service (published
// held to "service:<name>", as deploy/local/run does), and the JWKS file that
// every test server verifies tokens with (all their public keys).
//
//   const TestAuth& auth = TestAuth::Get();
//   ServerProcess scoring(binary);  // gets --jwks_file=auth.jwks_file()
//   call.AddMetadata("authorization", auth.Bearer("reader"));
#ifndef RAPPORT_TESTS_SUPPORT_TEST_AUTH_H_
#define RAPPORT_TESTS_SUPPORT_TEST_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth/jwt.h"
#include "common/auth/service_tokens.h"

namespace rapport::testing {

// The subject of the admin token that Platform gives rapportctl.
inline constexpr char kPlatformAdmin[] = "test:admin";

class TestAuth {
 public:
  static const TestAuth& Get();

  const std::string& jwks_file() const { return jwks_file_; }
  // Signs people's tokens (`rapportctl auth token --key`).
  const std::string& people_key_file() const { return people_key_file_; }
  // Signs the own tokens of `service` ("customer", "partner" or
  // "financial-community"; --service_key_file), for "service:<service>"
  // alone.
  std::string service_key_file(absl::string_view service = "customer") const;

  // A token of `subject` with `role` ("reader", "writer", "admin"), valid for
  // `ttl` from now (negative: expired already), signed by the people's key.
  std::string Token(absl::string_view role, absl::string_view subject,
                    absl::Duration ttl = absl::Hours(1)) const;
  // "Bearer <token>" for the `authorization` metadata.
  std::string Bearer(absl::string_view role,
                     absl::string_view subject = "test:client") const;
  // "Bearer <token>" of a domain service's own, as it calls the scoring
  // service: "service:<service>", reader, for the scoring audience.
  std::string ServiceBearer(absl::string_view service = "customer") const;
  // A verifier of the test deployment's tokens, for in-process servers; with
  // `scoring`, one that also takes the services' own (as the scoring service
  // does).
  std::shared_ptr<const auth::TokenVerifier> Verifier(
      bool scoring = false) const;

 private:
  TestAuth();
  // Tokens of an hour, minted once per (role, subject).
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, std::string> tokens_
      ABSL_GUARDED_BY(mu_);
  // Each domain service's own tokens, made as the service makes them.
  mutable absl::flat_hash_map<std::string, std::unique_ptr<auth::ServiceTokens>>
      service_tokens_ ABSL_GUARDED_BY(mu_);
  std::string dir_;
  std::string jwks_file_;
  std::string people_key_file_;
};

// A client context whose call carries a token of `role`.
class AuthorizedContext : public grpc::ClientContext {
 public:
  explicit AuthorizedContext(absl::string_view role = "admin") {
    AddMetadata("authorization", TestAuth::Get().Bearer(role));
  }
};

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_TEST_AUTH_H_
