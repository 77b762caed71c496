#include "common/ids.h"

#include <openssl/sha.h>

#include <cstring>

#include "absl/numeric/int128.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rapport {
namespace {
constexpr char kAlphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";

// The low 5 * `digits` bits of `value` as base32 digits.
std::string Digits(absl::uint128 value, int digits) {
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kAlphabet[absl::Uint128Low64(value) & 31];
    value >>= 5;
  }
  return out;
}
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
  return Digits(
      (absl::uint128(millis) << 80) | (absl::uint128(hi & 0xffff) << 64) | lo,
      26);
}

std::string RowId(absl::string_view prefix, int64_t row) {
  return absl::StrCat(prefix, Digits(static_cast<uint64_t>(row), 10));
}

std::optional<int64_t> RowOfId(absl::string_view id) {
  if (!IsValidId(id)) return std::nullopt;
  int64_t row = 0;
  for (char c : id.substr(kRowIdPrefixSize)) {
    row = row * 32 + (std::strchr(kAlphabet, c) - kAlphabet);
  }
  return row;
}

std::string KeyedId(absl::string_view scope, absl::string_view key) {
  // The separator cannot occur in a scope.
  const std::string text = absl::StrCat(scope, "\x1f", key);
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(),
         digest);
  // The first 16 bytes, read big-endian: the same id on every machine.
  absl::uint128 value = 0;
  for (int i = 0; i < 16; ++i) value = (value << 8) | digest[i];
  return Digits(value, 26);
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
