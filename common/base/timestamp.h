// Strict RFC 3339 timestamps as int64 microseconds since the Unix epoch (UTC).
//
// Rapport carries instants as `int64_t` microseconds (the resolution of
// SCORING.md section 8). Use these helpers at every text boundary (CSV, CLI):
//
//   absl::StatusOr<int64_t> t =
//       rapport::ParseRfc3339Micros("2024-03-01T13:00:00.5+01:00");
//   rapport::FormatRfc3339Micros(*t);  // "2024-03-01T12:00:00.500Z"
//
// Accepted: `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+hh:mm|-hh:mm)`, with 'T' or 't'
// and 'Z' or 'z'. Rejected: a bare date, a missing zone, a space separator,
// a leap second (ss = 60), 7 or more fractional digits, out-of-range fields
// (month 13, February 30, hour 24, offset hour 24), instants outside years
// 0001..9999 in UTC (what a protobuf Timestamp holds).

#ifndef RAPPORT_COMMON_BASE_TIMESTAMP_H_
#define RAPPORT_COMMON_BASE_TIMESTAMP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

inline constexpr int64_t kMicrosPerSecond = 1'000'000;
inline constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// Parses a strict RFC 3339 date-time (see the file comment). Errors are
// InvalidArgument and quote the text, e.g. `not an RFC 3339 timestamp
// (missing time zone): "2024-03-01T12:00:00"`.
absl::StatusOr<int64_t> ParseRfc3339Micros(absl::string_view text);

// Formats as RFC 3339 in UTC with 'Z'. The fraction is omitted when zero,
// printed with 3 digits when the instant is a whole millisecond and with 6
// otherwise: "2024-03-01T12:00:00Z", "...:00.500Z", "...:00.000001Z".
// Handles every int64 micros value in years 0000..9999 (others are clamped
// to that range's ends by the caller's contract; not checked).
std::string FormatRfc3339Micros(int64_t micros);

// floor(micros_delta / 1 day), rounding toward minus infinity: FloorDays(-1)
// is -1. recency_days = FloorDays(as_of - last_event).
constexpr int64_t FloorDays(int64_t micros_delta) {
  int64_t q = micros_delta / kMicrosPerDay;
  return (micros_delta % kMicrosPerDay < 0) ? q - 1 : q;
}

// Days since 1970-01-01 of a proleptic Gregorian civil date (month 1..12).
int64_t DaysFromCivil(int64_t year, int month, int day);

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_TIMESTAMP_H_
