#include "common/base/decimal.h"

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace rapport {
namespace {

// Quotes user text for an error message, shortened if very long.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() > kMax) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMax)), "\"... (",
                        text.size(), " bytes)");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Appends the decimal digits of a non-negative value.
void AppendUnsigned(UInt128 v, std::string* out) {
  char buf[40];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + static_cast<int>(v % 10));
    v /= 10;
  } while (v != 0);
  while (n > 0) out->push_back(buf[--n]);
}

UInt128 Magnitude(Int128 v) {
  // Well defined for the minimum too.
  return v < 0 ? static_cast<UInt128>(0) - static_cast<UInt128>(v)
               : static_cast<UInt128>(v);
}

}  // namespace

absl::StatusOr<Decimal> Decimal::Parse(absl::string_view text) {
  return ParseWithin(text, 18);
}

absl::StatusOr<Decimal> Decimal::ParseStored(absl::string_view text) {
  return ParseWithin(text, 29);
}

absl::StatusOr<Decimal> Decimal::ParseWithin(absl::string_view text,
                                             int whole_digits) {
  size_t i = 0;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  const size_t int_begin = i;
  while (i < text.size() && IsDigit(text[i])) ++i;
  const size_t int_end = i;
  size_t frac_begin = i, frac_end = i;
  if (i < text.size() && text[i] == '.') {
    ++i;
    frac_begin = i;
    while (i < text.size() && IsDigit(text[i])) ++i;
    frac_end = i;
  }
  // SCORING.md section 8: digits, then optionally a point and digits; ".5"
  // and "5." are not in that grammar.
  const bool point = frac_begin != int_end;
  if (i != text.size() || int_end == int_begin ||
      (point && frac_end == frac_begin)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a decimal number: ", Quote(text)));
  }
  // Whole part, without leading zeros, must be below 1e18 (18 digits), or
  // 10^whole_digits.
  size_t first = int_begin;
  while (first < int_end && text[first] == '0') ++first;
  if (int_end - first > static_cast<size_t>(whole_digits)) {
    return absl::InvalidArgumentError(
        absl::StrCat("decimal out of range (magnitude must be below 1e",
                     whole_digits, "): ", Quote(text)));
  }
  Int128 units = 0;
  for (size_t k = first; k < int_end; ++k) units = units * 10 + (text[k] - '0');
  Int128 frac = 0;
  const size_t frac_len = frac_end - frac_begin;
  for (size_t k = 0; k < static_cast<size_t>(kScale); ++k) {
    frac = frac * 10 + (k < frac_len ? text[frac_begin + k] - '0' : 0);
  }
  for (size_t k = kScale; k < frac_len; ++k) {
    if (text[frac_begin + k] != '0') {
      return absl::InvalidArgumentError(absl::StrCat(
          "more than 9 fractional digits in decimal: ", Quote(text)));
    }
  }
  Int128 nanos = units * kNanosPerUnit + frac;
  return Decimal(negative ? -nanos : nanos);
}

absl::StatusOr<Decimal> Decimal::FromUnitsNanos(int64_t units, int32_t nanos) {
  if (nanos <= -kNanosPerUnit || nanos >= kNanosPerUnit) {
    return absl::InvalidArgumentError(
        absl::StrCat("nanos out of range (-999999999..999999999): ", nanos));
  }
  if ((units > 0 && nanos < 0) || (units < 0 && nanos > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("units and nanos must have the same sign: units=", units,
                     " nanos=", nanos));
  }
  return Decimal(static_cast<Int128>(units) * kNanosPerUnit + nanos);
}

absl::StatusOr<int64_t> Decimal::units() const {
  Int128 u = nanos_ / kNanosPerUnit;
  if (u > INT64_MAX || u < INT64_MIN) {
    return absl::OutOfRangeError(
        absl::StrCat("decimal too large for int64 units: ", ToString()));
  }
  return static_cast<int64_t>(u);
}

std::string Decimal::ToString() const {
  std::string out;
  UInt128 mag = Magnitude(nanos_);
  if (nanos_ < 0) out.push_back('-');
  AppendUnsigned(mag / kNanosPerUnit, &out);
  uint64_t frac = static_cast<uint64_t>(mag % kNanosPerUnit);
  char digits[kScale];
  for (int k = kScale - 1; k >= 0; --k) {
    digits[k] = static_cast<char>('0' + frac % 10);
    frac /= 10;
  }
  int len = kScale;
  while (len > 2 && digits[len - 1] == '0') --len;
  out.push_back('.');
  out.append(digits, static_cast<size_t>(len));
  return out;
}

double Decimal::ToDouble() const {
  // Split to keep the double conversion of each part exact where possible.
  Int128 u = nanos_ / kNanosPerUnit;
  Int128 f = nanos_ % kNanosPerUnit;
  return static_cast<double>(u) +
         static_cast<double>(f) / static_cast<double>(kNanosPerUnit);
}

Decimal Decimal::RoundTo2HalfAwayFromZero() const {
  constexpr Int128 kStep = kNanosPerUnit / 100;  // one cent in nanos
  UInt128 mag = Magnitude(nanos_);
  UInt128 rounded = (mag + kStep / 2) / kStep * kStep;
  Int128 r = static_cast<Int128>(rounded);
  return Decimal(nanos_ < 0 ? -r : r);
}

absl::StatusOr<Decimal> Decimal::CheckedAdd(Decimal other) const {
  Int128 out;
  if (__builtin_add_overflow(nanos_, other.nanos_, &out)) {
    return absl::OutOfRangeError("decimal sum overflows");
  }
  return Decimal(out);
}

absl::StatusOr<Decimal> Decimal::CheckedSub(Decimal other) const {
  Int128 out;
  if (__builtin_sub_overflow(nanos_, other.nanos_, &out)) {
    return absl::OutOfRangeError("decimal difference overflows");
  }
  return Decimal(out);
}

std::string Int128ToString(Int128 v) {
  std::string out;
  if (v < 0) out.push_back('-');
  AppendUnsigned(Magnitude(v), &out);
  return out;
}

}  // namespace rapport
