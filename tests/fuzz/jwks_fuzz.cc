// JSON Web Key Sets as the verifiers read them from their jwks_file and as
// `rapportctl auth` merges them (common/auth/jwks.h): any text is a set of
// usable P-256 keys or INVALID_ARGUMENT; every key read has 32-byte
// coordinates, a kid of its own and a public-key PEM; a scope names a known
// role; and merging a set with nothing else gives a set of the same keys.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "common/auth/jwks.h"

namespace {
namespace auth = rapport::auth;

std::set<std::pair<std::string, std::string>> Points(
    const std::vector<auth::EcPublicKey>& keys) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auth::EcPublicKey& k : keys) out.emplace(k.x, k.y);
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<auth::EcPublicKey>> keys = auth::ParseJwks(text);
  if (!keys.ok()) {
    if (keys.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
    return 0;
  }
  if (keys->empty()) __builtin_trap();
  std::set<std::string> kids;
  for (const auth::EcPublicKey& k : *keys) {
    if (k.x.size() != 32 || k.y.size() != 32 || k.kid.empty() ||
        !kids.insert(k.kid).second ||
        !absl::StartsWith(k.spki_pem, "-----BEGIN PUBLIC KEY-----")) {
      __builtin_trap();
    }
    if (!k.max_role.empty() && k.max_role != "reader" &&
        k.max_role != "writer" && k.max_role != "admin") {
      __builtin_trap();
    }
    if (!k.subject.empty() && k.max_role.empty()) __builtin_trap();
  }
  absl::StatusOr<std::string> merged = auth::MergeJwks({text});
  if (!merged.ok()) __builtin_trap();
  absl::StatusOr<std::vector<auth::EcPublicKey>> again =
      auth::ParseJwks(*merged);
  if (!again.ok() || Points(*again) != Points(*keys)) __builtin_trap();
  return 0;
}
