#include "common/base/decimal.h"

#include <string>

#include "gtest/gtest.h"

namespace rapport {
namespace {

std::string RoundTrip(absl::string_view text) {
  absl::StatusOr<Decimal> d = Decimal::Parse(text);
  EXPECT_TRUE(d.ok()) << text << ": " << d.status();
  return d.ok() ? d->ToString() : "";
}

TEST(Decimal, ParsesPlainDecimalsAndPrintsAtLeastTwoPlaces) {
  EXPECT_EQ(RoundTrip("12.5"), "12.50");
  EXPECT_EQ(RoundTrip("-0.5"), "-0.50");
  EXPECT_EQ(RoundTrip("1.234"), "1.234");
  EXPECT_EQ(RoundTrip("0"), "0.00");
  EXPECT_EQ(RoundTrip("-0"), "0.00");
  EXPECT_EQ(RoundTrip("+7"), "7.00");
  EXPECT_EQ(RoundTrip("007.10"), "7.10");
  EXPECT_EQ(RoundTrip("0.000000001"), "0.000000001");
  EXPECT_EQ(RoundTrip("1.1000000000000"), "1.10");
  EXPECT_EQ(RoundTrip("999999999999999999.999999999"),
            "999999999999999999.999999999");
  EXPECT_EQ(RoundTrip("-999999999999999999.999999999"),
            "-999999999999999999.999999999");
}

TEST(Decimal, RejectsEverythingElseNamingTheText) {
  for (const char* bad :
       {"", "+", "-", ".", "1e5", "1E5", " 1", "1 ", "1,000", "1_000", "NaN",
        "nan", "inf", "-inf", "0x10", "1.2.3", "--1", "+-1", "1-", "١",
        // Digits on both sides of a point (SCORING.md 8).
        ".5", "5.", "-.5", "+5."}) {
    absl::StatusOr<Decimal> d = Decimal::Parse(bad);
    EXPECT_FALSE(d.ok()) << "accepted \"" << bad << "\"";
    if (!d.ok()) {
      EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    }
  }
  absl::StatusOr<Decimal> d = Decimal::Parse("1e5");
  EXPECT_EQ(d.status().message(), "not a decimal number: \"1e5\"");
}

TEST(Decimal, RejectsTooManyFractionDigitsAndTooLargeMagnitudes) {
  EXPECT_FALSE(Decimal::Parse("0.0000000001").ok());
  EXPECT_FALSE(Decimal::Parse("1000000000000000000").ok());
  EXPECT_FALSE(Decimal::Parse("-1000000000000000000.5").ok());
  EXPECT_TRUE(Decimal::Parse("0001000000000000000000.0")
                  .status()
                  .message()
                  .find("range") != absl::string_view::npos);
}

// A stored DECIMAL(38, 9), such as a SUM over many amounts, reads back
// whole: up to 29 whole digits, no further.
TEST(Decimal, StoredValuesReadBackUpToTheColumnsRange) {
  absl::StatusOr<Decimal> sum = Decimal::ParseStored("2000000000000000000.25");
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->ToString(), "2000000000000000000.25");
  absl::StatusOr<Decimal> widest =
      Decimal::ParseStored("-99999999999999999999999999999.999999999");
  ASSERT_TRUE(widest.ok()) << widest.status();
  EXPECT_EQ(widest->ToString(), "-99999999999999999999999999999.999999999");
  EXPECT_FALSE(Decimal::ParseStored("100000000000000000000000000000").ok());
  EXPECT_FALSE(Decimal::ParseStored("1e5").ok());
}

TEST(Decimal, UnitsAndNanosFollowMoneyConvention) {
  Decimal d = *Decimal::Parse("-12.5");
  EXPECT_EQ(*d.units(), -12);
  EXPECT_EQ(d.nanos(), -500000000);
  EXPECT_EQ(*Decimal::FromUnitsNanos(-12, -500000000), d);
  EXPECT_FALSE(Decimal::FromUnitsNanos(1, -1).ok());
  EXPECT_FALSE(Decimal::FromUnitsNanos(0, 1000000000).ok());
  EXPECT_TRUE(Decimal::FromUnitsNanos(0, -5).ok());
  Decimal huge = Decimal::FromRawNanos(static_cast<Int128>(INT64_MAX) *
                                       Decimal::kNanosPerUnit * 10);
  EXPECT_EQ(huge.units().status().code(), absl::StatusCode::kOutOfRange);
}

TEST(Decimal, ArithmeticAndComparisons) {
  Decimal a = *Decimal::Parse("0.1"), b = *Decimal::Parse("0.2");
  EXPECT_EQ((a + b).ToString(), "0.30");
  EXPECT_EQ(a + b, *Decimal::Parse("0.3"));
  EXPECT_LT(a, b);
  EXPECT_GT(-a, -b);
  EXPECT_EQ((a - b).ToString(), "-0.10");
  EXPECT_EQ(Decimal::FromCents(1250).ToString(), "12.50");
  Decimal max = Decimal::FromRawNanos(~(static_cast<UInt128>(1) << 127));
  EXPECT_EQ(max.CheckedAdd(Decimal::FromRawNanos(1)).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(max.CheckedAdd(Decimal::FromRawNanos(-1)).ok());
  EXPECT_FALSE((-max).CheckedSub(Decimal::FromRawNanos(2)).ok());
}

TEST(Decimal, RoundsToCentsHalfAwayFromZero) {
  EXPECT_EQ(Decimal::Parse("0.125")->RoundTo2HalfAwayFromZero().ToString(),
            "0.13");
  EXPECT_EQ(Decimal::Parse("-0.125")->RoundTo2HalfAwayFromZero().ToString(),
            "-0.13");
  EXPECT_EQ(
      Decimal::Parse("0.124999999")->RoundTo2HalfAwayFromZero().ToString(),
      "0.12");
  EXPECT_EQ(Decimal::Parse("2.5")->RoundTo2HalfAwayFromZero().ToString(),
            "2.50");
}

TEST(Decimal, Int128ToStringHandlesExtremes) {
  EXPECT_EQ(Int128ToString(0), "0");
  EXPECT_EQ(Int128ToString(-42), "-42");
  Int128 min = static_cast<Int128>(static_cast<UInt128>(1) << 127);
  EXPECT_EQ(Int128ToString(min), "-170141183460469231731687303715884105728");
}

}  // namespace
}  // namespace rapport
