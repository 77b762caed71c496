// rapport::Decimal: exact money and other decimal amounts.
//
// A Decimal is a signed count of nanos (1e-9 units) held in a 128-bit integer,
// the scale of google.type.Money. It never goes through binary floating point:
// parsing, printing and sums are exact. Parsed values are bounded by
// |x| < 1e18 units, so that up to 1e11 of them can be summed with plain
// `operator+` without overflowing; `CheckedAdd` detects overflow for sums
// whose length is not bounded.
//
//   absl::StatusOr<rapport::Decimal> a = rapport::Decimal::Parse("12.5");
//   rapport::Decimal total = *a + rapport::Decimal::FromUnits(3);
//   total.ToString();  // "15.50"
//
// Accepted syntax (SCORING.md section 8): an optional '+' or '-', digits, an
// optional '.' followed by digits ("5", "-0.50", "+3.25"; not ".5" nor
// "5."). No exponent, spaces, thousands separators, NaN or infinity. More than
// 9 fractional digits are an error unless the extra digits are all zeros.

#ifndef RAPPORT_COMMON_BASE_DECIMAL_H_
#define RAPPORT_COMMON_BASE_DECIMAL_H_

#include <compare>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

// The native 128-bit signed integer (GCC/Clang). `__extension__` keeps
// -Wpedantic quiet.
__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

class Decimal {
 public:
  static constexpr int kScale = 9;
  static constexpr int64_t kNanosPerUnit = 1'000'000'000;
  // Parse() accepts magnitudes strictly below this many units.
  static constexpr int64_t kMaxParsedUnits = 1'000'000'000'000'000'000;

  // Zero.
  constexpr Decimal() = default;

  // Parses a plain decimal number; see the file comment for the syntax.
  // Errors (InvalidArgument) quote the offending text, e.g.
  // `not a decimal number: "1e5"`.
  static absl::StatusOr<Decimal> Parse(absl::string_view text);
  // Parses the text of a stored DECIMAL(38, 9) value, such as a SUM over
  // many rows: the same syntax, with up to 29 whole digits (every such value
  // fits). Sums of such values are not bounded like Parse()'s.
  static absl::StatusOr<Decimal> ParseStored(absl::string_view text);

  // From google.type.Money parts: `units` whole units plus `nanos` in
  // (-1e9, 1e9); both must have the same sign (or be zero).
  static absl::StatusOr<Decimal> FromUnitsNanos(int64_t units, int32_t nanos);

  // Whole units; cannot fail.
  static constexpr Decimal FromUnits(int64_t units) {
    return Decimal(static_cast<Int128>(units) * kNanosPerUnit);
  }
  // Hundredths (cents); cannot fail. FromCents(1250) is 12.50.
  static constexpr Decimal FromCents(int64_t cents) {
    return Decimal(static_cast<Int128>(cents) * (kNanosPerUnit / 100));
  }
  // The raw count of nanos.
  static constexpr Decimal FromRawNanos(Int128 nanos) { return Decimal(nanos); }
  constexpr Int128 raw_nanos() const { return nanos_; }

  // google.type.Money parts, truncated toward zero: units() * 1e9 + nanos()
  // equals raw_nanos(); both carry the sign of the value. units() fails with
  // OutOfRange if the whole part does not fit in int64.
  absl::StatusOr<int64_t> units() const;
  int32_t nanos() const { return static_cast<int32_t>(nanos_ % kNanosPerUnit); }

  // Exact decimal text with at least 2 and at most 9 fraction digits, no
  // trailing zeros beyond the second: "12.50", "-0.50", "1.234", "0.00".
  std::string ToString() const;

  // The value as a double (nearest representable; for statistics only).
  double ToDouble() const;

  // Rounds to 2 decimals, halves away from zero: 0.125 -> 0.13,
  // -0.125 -> -0.13.
  Decimal RoundTo2HalfAwayFromZero() const;

  // Sum that reports overflow of the 128-bit count (OutOfRange) instead of
  // wrapping. Use it when the number of terms is not bounded.
  absl::StatusOr<Decimal> CheckedAdd(Decimal other) const;
  absl::StatusOr<Decimal> CheckedSub(Decimal other) const;

  bool is_negative() const { return nanos_ < 0; }
  bool is_zero() const { return nanos_ == 0; }

  // Plain arithmetic for bounded sums (see the file comment): no check.
  constexpr Decimal operator+(Decimal o) const {
    return Decimal(nanos_ + o.nanos_);
  }
  constexpr Decimal operator-(Decimal o) const {
    return Decimal(nanos_ - o.nanos_);
  }
  constexpr Decimal operator-() const { return Decimal(-nanos_); }
  constexpr Decimal& operator+=(Decimal o) {
    nanos_ += o.nanos_;
    return *this;
  }
  constexpr Decimal& operator-=(Decimal o) {
    nanos_ -= o.nanos_;
    return *this;
  }

  friend constexpr bool operator==(Decimal a, Decimal b) {
    return a.nanos_ == b.nanos_;
  }
  friend constexpr std::strong_ordering operator<=>(Decimal a, Decimal b) {
    return a.nanos_ < b.nanos_   ? std::strong_ordering::less
           : a.nanos_ > b.nanos_ ? std::strong_ordering::greater
                                 : std::strong_ordering::equal;
  }

 private:
  static absl::StatusOr<Decimal> ParseWithin(absl::string_view text,
                                             int whole_digits);
  constexpr explicit Decimal(Int128 nanos) : nanos_(nanos) {}
  Int128 nanos_ = 0;
};

// Decimal text of a 128-bit integer ("-170141183460469231731687303715884105728"
// for the minimum).
std::string Int128ToString(Int128 v);

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_DECIMAL_H_
