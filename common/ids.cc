#include "common/ids.h"

#include "absl/numeric/int128.h"
#include "absl/time/clock.h"

namespace rapport {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
}  // namespace

IdGenerator::IdGenerator()
    : clock_([] { return absl::Now(); }), random_(nullptr) {}

IdGenerator::IdGenerator(Clock clock, Random random)
    : clock_(std::move(clock)), random_(std::move(random)) {}

std::string IdGenerator::Next() {
  const uint64_t millis =
      static_cast<uint64_t>(absl::ToUnixMillis(clock_())) & ((1ull << 48) - 1);
  uint64_t hi, lo;
  if (random_) {
    hi = random_();
    lo = random_();
  } else {
    absl::MutexLock lock(&mu_);
    hi = absl::Uniform<uint64_t>(gen_);
    lo = absl::Uniform<uint64_t>(gen_);
  }
  // 128 bits: 48 of time, 80 of randomness; 26 digits of 5 bits = 130 bits.
  absl::uint128 value =
      (absl::uint128(millis) << 80) | (absl::uint128(hi & 0xffff) << 64) | lo;
  std::string id(26, '0');
  for (int i = 25; i >= 0; --i) {
    id[i] = kAlphabet[absl::Uint128Low64(value) & 31];
    value >>= 5;
  }
  return id;
}

bool IsValidId(absl::string_view s) {
  if (s.size() != 26) return false;
  for (char c : s) {
    bool ok = false;
    for (const char* a = kAlphabet; *a != '\0'; ++a) ok |= (*a == c);
    if (!ok) return false;
  }
  return s[0] <= '7';  // 130 bits of digits hold 128 bits of value
}

}  // namespace rapport
