#include "common/auth/service_tokens.h"

#include "absl/strings/str_cat.h"

namespace rapport::auth {

absl::StatusOr<std::string> ServiceTokens::Authorization() {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  if (now < renew_at_) return current_;
  absl::StatusOr<std::string> token = MintToken(key_, claims_, now);
  if (!token.ok()) return token.status();
  current_ = absl::StrCat("Bearer ", *token);
  renew_at_ = now + claims_.ttl / 2;
  return current_;
}

}  // namespace rapport::auth
