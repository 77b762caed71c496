#include "common/base/timestamp.h"

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace rapport {
namespace {

absl::Status Bad(absl::string_view why, absl::string_view text) {
  constexpr size_t kMax = 64;
  std::string shown = absl::CHexEscape(text.substr(0, kMax));
  return absl::InvalidArgumentError(
      absl::StrCat("not an RFC 3339 timestamp (", why, "): \"", shown,
                   text.size() > kMax ? "\"..." : "\""));
}

// Reads exactly `n` digits at `pos`; false if any is not a digit.
bool Digits(absl::string_view s, size_t pos, int n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

// Inverse of DaysFromCivil.
void CivilFromDays(int64_t days, int64_t* year, int* month, int* day) {
  // Shift to an era-based count starting 0000-03-01 (400-year eras).
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;  // 0..146096
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);  // 0..365
  const int64_t mp = (5 * doy + 2) / 153;                       // 0..11
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = yoe + era * 400 + (*month <= 2 ? 1 : 0);
}

}  // namespace

int64_t DaysFromCivil(int64_t year, int month, int day) {
  // Years counted from March so that the leap day ends the year.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;                       // 0..399
  const int64_t mp = month > 2 ? month - 3 : month + 9;       // 0..11
  const int64_t doy = (153 * mp + 2) / 5 + day - 1;           // 0..365
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  // 0..146096
  return era * 146097 + doe - 719468;
}

absl::StatusOr<int64_t> ParseRfc3339Micros(absl::string_view s) {
  int year, month, day, hour, minute, second;
  if (!Digits(s, 0, 4, &year) || s.size() < 5 || s[4] != '-' ||
      !Digits(s, 5, 2, &month) || s.size() < 8 || s[7] != '-' ||
      !Digits(s, 8, 2, &day)) {
    return Bad("expected YYYY-MM-DD", s);
  }
  if (s.size() == 10) return Bad("date without time", s);
  if (s[10] == ' ') return Bad("space instead of 'T'", s);
  if (s[10] != 'T' && s[10] != 't')
    return Bad("expected 'T' after the date", s);
  if (!Digits(s, 11, 2, &hour) || s.size() < 14 || s[13] != ':' ||
      !Digits(s, 14, 2, &minute) || s.size() < 17 || s[16] != ':' ||
      !Digits(s, 17, 2, &second)) {
    return Bad("expected hh:mm:ss", s);
  }
  size_t pos = 19;
  int64_t frac_micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int n = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (++n > 6) return Bad("more than 6 fractional digits", s);
      frac_micros = frac_micros * 10 + (s[pos] - '0');
      ++pos;
    }
    if (n == 0) return Bad("no digit after '.'", s);
    for (; n < 6; ++n) frac_micros *= 10;
  }
  if (pos == s.size()) return Bad("missing time zone", s);
  int64_t offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    ++pos;
  } else if (s[pos] == '+' || s[pos] == '-') {
    int oh, om;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() ||
        s[pos + 3] != ':' || !Digits(s, pos + 4, 2, &om)) {
      return Bad("bad zone offset, expected +hh:mm", s);
    }
    if (oh > 23 || om > 59) return Bad("zone offset out of range", s);
    offset_minutes = (s[pos] == '-' ? -1 : 1) * (oh * 60 + om);
    pos += 6;
  } else {
    return Bad("missing time zone", s);
  }
  if (pos != s.size()) return Bad("trailing characters", s);
  if (month < 1 || month > 12) return Bad("month out of range", s);
  if (day < 1 || day > DaysInMonth(year, month)) {
    return Bad("day out of range", s);
  }
  if (hour > 23) return Bad("hour out of range", s);
  if (minute > 59) return Bad("minute out of range", s);
  if (second == 60) return Bad("leap second", s);
  if (second > 59) return Bad("second out of range", s);
  const int64_t days = DaysFromCivil(year, month, day);
  const int64_t seconds =
      days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  // The years a protobuf Timestamp holds, so that whatever is parsed can be
  // answered; a zone offset can carry the first and last days of the range
  // out of it ("0001-01-01T00:00:00+14:00" is in year 0 in UTC).
  static const int64_t kFirst = DaysFromCivil(1, 1, 1) * 86400;
  static const int64_t kEnd = DaysFromCivil(10000, 1, 1) * 86400;
  if (seconds < kFirst || seconds >= kEnd) {
    return Bad("outside years 0001 to 9999 in UTC", s);
  }
  return seconds * kMicrosPerSecond + frac_micros;
}

std::string FormatRfc3339Micros(int64_t micros) {
  const int64_t days = FloorDays(micros);
  const int64_t in_day = micros - days * kMicrosPerDay;  // 0..day-1
  int64_t year;
  int month, day;
  CivilFromDays(days, &year, &month, &day);
  const int64_t secs = in_day / kMicrosPerSecond;
  const int64_t frac = in_day % kMicrosPerSecond;
  char buf[48];
  int n =
      std::snprintf(buf, sizeof(buf), "%04lld-%02d-%02dT%02lld:%02lld:%02lld",
                    static_cast<long long>(year), month, day,
                    static_cast<long long>(secs / 3600),
                    static_cast<long long>(secs / 60 % 60),
                    static_cast<long long>(secs % 60));
  std::string out(buf, static_cast<size_t>(n));
  if (frac != 0) {
    if (frac % 1000 == 0) {
      n = std::snprintf(buf, sizeof(buf), ".%03lld",
                        static_cast<long long>(frac / 1000));
    } else {
      n = std::snprintf(buf, sizeof(buf), ".%06lld",
                        static_cast<long long>(frac));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  out.push_back('Z');
  return out;
}

}  // namespace rapport
