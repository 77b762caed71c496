// Bearer tokens for a service's own calls to other services (the customer
// service calling the scoring service): minted from the service's signing key
// and renewed well before they expire, so that every call carries a valid one.
//
//   ServiceTokens tokens(*std::move(key), {.subject = "service:customer",
//                                          .roles = {"reader"},
//                                          .issuer = "rapport",
//                                          .audience = "rapport"});
//   absl::StatusOr<std::string> authorization = tokens.Authorization();
//   // "Bearer eyJ..." for the call's `authorization` metadata
#ifndef RAPPORT_COMMON_AUTH_SERVICE_TOKENS_H_
#define RAPPORT_COMMON_AUTH_SERVICE_TOKENS_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/auth/jwt.h"

namespace rapport::auth {

class ServiceTokens {
 public:
  using Clock = std::function<absl::Time()>;
  ServiceTokens(
      SigningKey key, TokenClaims claims,
      Clock clock = [] { return absl::Now(); })
      : key_(std::move(key)), claims_(std::move(claims)), clock_(clock) {}

  // "Bearer <token>" with at least half of the token's ttl left. Thread-safe.
  absl::StatusOr<std::string> Authorization();

 private:
  const SigningKey key_;
  const TokenClaims claims_;
  const Clock clock_;
  absl::Mutex mu_;
  std::string current_ ABSL_GUARDED_BY(mu_);
  absl::Time renew_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace rapport::auth

#endif  // RAPPORT_COMMON_AUTH_SERVICE_TOKENS_H_
