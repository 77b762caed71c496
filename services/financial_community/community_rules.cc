#include "services/financial_community/community_rules.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api_names.h"
#include "common/base/timestamp.h"
#include "common/ids.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport::community {
namespace {

constexpr int64_t kDay = 86'400'000'000;

// "Market-Perform" -> "market perform"; "Buy-" -> "buy" (a dash or an
// underscore is a space, and spaces around the words go).
std::string Words(absl::string_view text) {
  std::string out;
  for (char c : text) {
    const char w = (c == '-' || c == '_' || absl::ascii_isspace(c))
                       ? ' '
                       : absl::ascii_tolower(c);
    if (w == ' ' && (out.empty() || out.back() == ' ')) continue;
    out.push_back(w);
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string KindName(int kind) {
  return EnumName<v1::MemberKind>(kind, "MEMBER_KIND_");
}
std::optional<v1::MemberKind> ParseKind(absl::string_view name) {
  return ParseEnum<v1::MemberKind>(name, "MEMBER_KIND_");
}
std::string TypeName(int type) {
  return EnumName<v1::MemberType>(type, "MEMBER_TYPE_");
}
std::optional<v1::MemberType> ParseType(absl::string_view name) {
  return ParseEnum<v1::MemberType>(name, "MEMBER_TYPE_");
}
std::string EngagementKindName(int kind) {
  return EnumName<v1::EngagementKind>(kind, "ENGAGEMENT_KIND_");
}
std::optional<v1::EngagementKind> ParseEngagementKind(absl::string_view name) {
  return ParseEnum<v1::EngagementKind>(name, "ENGAGEMENT_KIND_");
}
std::string RatingName(int rating) {
  return EnumName<v1::Rating>(rating, "RATING_");
}

std::optional<v1::Rating> ParseRating(absl::string_view text) {
  static const auto* const kScale = new std::map<std::string, v1::Rating>{
      {"buy", v1::RATING_BUY},
      {"strong buy", v1::RATING_BUY},
      {"outperform", v1::RATING_BUY},
      {"overweight", v1::RATING_BUY},
      {"accumulate", v1::RATING_BUY},
      {"add", v1::RATING_BUY},
      {"moderate buy", v1::RATING_BUY},
      {"speculative buy", v1::RATING_BUY},
      {"conviction buy", v1::RATING_BUY},
      {"top pick", v1::RATING_BUY},
      {"positive", v1::RATING_BUY},
      {"sector outperform", v1::RATING_BUY},
      {"market outperform", v1::RATING_BUY},
      {"hold", v1::RATING_HOLD},
      {"neutral", v1::RATING_HOLD},
      {"market perform", v1::RATING_HOLD},
      {"equal weight", v1::RATING_HOLD},
      {"in line", v1::RATING_HOLD},
      {"peer perform", v1::RATING_HOLD},
      {"perform", v1::RATING_HOLD},
      {"sector perform", v1::RATING_HOLD},
      {"sector weight", v1::RATING_HOLD},
      {"market weight", v1::RATING_HOLD},
      {"sell", v1::RATING_SELL},
      {"underperform", v1::RATING_SELL},
      {"underweight", v1::RATING_SELL},
      {"reduce", v1::RATING_SELL},
      {"strong sell", v1::RATING_SELL},
      {"moderate sell", v1::RATING_SELL},
      {"negative", v1::RATING_SELL},
      {"sector underperform", v1::RATING_SELL},
      {"market underperform", v1::RATING_SELL},
      {"dropped", v1::RATING_DROPPED},
      {"coverage dropped", v1::RATING_DROPPED},
      {"not rated", v1::RATING_DROPPED},
      {"suspended", v1::RATING_DROPPED}};
  auto it = kScale->find(Words(text));
  if (it == kScale->end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<int64_t> ParseDateEnd(absl::string_view text,
                                     absl::string_view field) {
  // Every other character a digit: SimpleAtoi alone would take a sign or a
  // space ("2024-06-3 ", "+999-01-01").
  bool shaped = text.size() == 10 && text[4] == '-' && text[7] == '-';
  for (size_t i = 0; shaped && i < text.size(); ++i) {
    shaped = i == 4 || i == 7 || absl::ascii_isdigit(text[i]);
  }
  int year = 0, month = 0, day = 0;
  if (!shaped || !absl::SimpleAtoi(text.substr(0, 4), &year) ||
      !absl::SimpleAtoi(text.substr(5, 2), &month) ||
      !absl::SimpleAtoi(text.substr(8, 2), &day)) {
    return InvalidField(field, "must be a date YYYY-MM-DD");
  }
  google::type::Date d;
  d.set_year(year);
  d.set_month(month);
  d.set_day(day);
  return DateEnd(d, field);
}

absl::Status CheckDateNotFuture(int64_t end_us, int64_t now_us,
                                absl::string_view field) {
  if (end_us - kDay + 1 > now_us + kClockSkewUs) {
    return InvalidField(field, "must not be a day still to come");
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> DateEnd(const google::type::Date& d,
                                absl::string_view field) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30,
                                    31, 31, 30, 31, 30, 31};
  const bool leap =
      (d.year() % 4 == 0 && d.year() % 100 != 0) || d.year() % 400 == 0;
  if (d.year() < 1 || d.year() > 9999 || d.month() < 1 || d.month() > 12 ||
      d.day() < 1 ||
      d.day() > kDays[d.month() - 1] + (d.month() == 2 && leap ? 1 : 0)) {
    return InvalidField(
        field, d.month() >= 1 && d.month() <= 12 && d.day() >= 1 &&
                       d.day() <= 31 && d.year() >= 1 && d.year() <= 9999
                   ? "is not a day of its month"
                   : "is not a date from 0001-01-01 to 9999-12-31");
  }
  return (DaysFromCivil(d.year(), d.month(), d.day()) + 1) * kDay - 1;
}

google::type::Date DateOf(int64_t end_us) {
  const std::string text = DateText(end_us);
  google::type::Date d;
  int v = 0;
  (void)absl::SimpleAtoi(text.substr(0, 4), &v);
  d.set_year(v);
  (void)absl::SimpleAtoi(text.substr(5, 2), &v);
  d.set_month(v);
  (void)absl::SimpleAtoi(text.substr(8, 2), &v);
  d.set_day(v);
  return d;
}

std::string DateText(int64_t end_us) {
  return FormatRfc3339Micros(FloorDays(end_us) * kDay).substr(0, 10);
}

std::string HoldingContent(absl::string_view member, absl::string_view security,
                           int64_t end_time_us, int64_t shares,
                           const Decimal& price) {
  return FingerprintContent({member, security, absl::StrCat(end_time_us),
                             absl::StrCat(shares), price.ToString()});
}

std::string LoggedEngagementRowId(absl::string_view engagement_id,
                                  absl::string_view member_id) {
  return KeyedId("engagement-member",
                 absl::StrCat(engagement_id, ":", member_id));
}

absl::StatusOr<Decimal> PositionValue(int64_t shares, const Decimal& price) {
  Int128 nanos = 0;
  if (__builtin_mul_overflow(price.raw_nanos(), static_cast<Int128>(shares),
                             &nanos)) {
    return absl::OutOfRangeError("a position's value is too large");
  }
  return Decimal::FromRawNanos(nanos);
}

absl::StatusOr<Decimal> StoredPositionValue(absl::string_view member_id,
                                            absl::string_view security,
                                            int64_t shares,
                                            const Decimal& price) {
  absl::StatusOr<Decimal> value = PositionValue(shares, price);
  if (!value.ok()) {
    return absl::OutOfRangeError(
        absl::StrCat("the position of member ", member_id, " in ", security,
                     " is worth more than the largest amount"));
  }
  return value;
}

absl::Status CheckPositionValue(int64_t shares, const Decimal& price,
                                absl::string_view field) {
  absl::StatusOr<Decimal> value = PositionValue(shares, price);
  if (!value.ok() || *value > Decimal::FromUnits(kMaxPositionValueUnits)) {
    return InvalidField(field,
                        "times the price is a market value above 10^14; no "
                        "position is worth that much");
  }
  return absl::OkStatus();
}

std::vector<Decimal> ShareEqually(const Decimal& total, int n) {
  const Int128 nanos = total.raw_nanos();
  const Int128 each = nanos / n;
  std::vector<Decimal> out(n, Decimal::FromRawNanos(each));
  out[0] = Decimal::FromRawNanos(nanos - each * (n - 1));
  return out;
}

std::string MoneyWords(const Decimal& amount) {
  const std::string text = amount.RoundTo2HalfAwayFromZero().ToString();
  const size_t dot = text.find('.');
  std::string whole = text.substr(0, dot);
  std::string fraction = dot == std::string::npos ? "00" : text.substr(dot + 1);
  while (fraction.size() < 2) fraction.push_back('0');
  const bool negative = !whole.empty() && whole[0] == '-';
  if (negative) whole.erase(0, 1);
  std::string grouped;
  for (size_t i = 0; i < whole.size(); ++i) {
    if (i > 0 && (whole.size() - i) % 3 == 0) grouped.push_back(',');
    grouped.push_back(whole[i]);
  }
  return absl::StrCat(negative ? "-" : "", grouped, ".", fraction.substr(0, 2));
}

std::optional<TargetScore> ScoreTarget(const TargetFacts& f,
                                       const std::string& currency) {
  TargetScore out;
  std::string held;
  if (!f.own_value.is_negative() && !f.own_value.is_zero()) {
    out.base = f.own_value;
    held = absl::StrCat("holds ", MoneyWords(f.own_value), " ", currency,
                        " of our securities");
  } else if (!f.peer_value.is_negative() && !f.peer_value.is_zero()) {
    out.base = Decimal::FromRawNanos(f.peer_value.raw_nanos() / 2);
    held = absl::StrCat("holds none of ours but ", MoneyWords(f.peer_value),
                        " ", currency, " of peers' (counted at half)");
  } else {
    return std::nullopt;
  }
  // The factors are fractions: recency (365 + 3 * days) / 1460 (0.25 at 0
  // days, 1 at 365 or more, or never met), trend 3/2 or 6/5; the score is
  // worked out exactly and rounded once, to the cent, halves away from zero.
  std::string met;
  Int128 recency_num = 1460;
  if (f.days_since_engagement.has_value()) {
    const int64_t days = std::clamp<int64_t>(*f.days_since_engagement, 0, 365);
    recency_num = 365 + 3 * days;
    met =
        *f.days_since_engagement == 0
            ? "met today"
            : absl::StrCat("last met ", *f.days_since_engagement, " days ago");
  } else {
    met = "never met";
  }
  out.recency_factor = static_cast<double>(recency_num) / 1460.0;
  std::string trend;
  Int128 trend_num = 1, trend_den = 1;
  if (f.shares_last < f.shares_previous) {
    trend_num = 3;
    trend_den = 2;
    trend = absl::StrCat("; position shrinking (", f.shares_previous, " -> ",
                         f.shares_last, " shares)");
  } else if (f.shares_last > f.shares_previous) {
    trend_num = 6;
    trend_den = 5;
    trend = absl::StrCat("; position growing (", f.shares_previous, " -> ",
                         f.shares_last, " shares)");
  }
  out.trend_factor =
      static_cast<double>(trend_num) / static_cast<double>(trend_den);
  constexpr Int128 kNanosPerCent = 10'000'000;
  const Int128 den = 1460 * trend_den * kNanosPerCent;
  Int128 num = 0;
  if (__builtin_mul_overflow(out.base.raw_nanos(), recency_num * trend_num,
                             &num)) {
    return std::nullopt;  // past any real market value (kMaxShares * price)
  }
  const Int128 cents = (num + den / 2) / den;  // base >= 0: half rounds up
  out.score = Decimal::FromRawNanos(cents * kNanosPerCent);
  out.reason = absl::StrCat(held, "; ", met, trend);
  return out;
}

absl::StatusOr<absl::flat_hash_map<int, std::string>> ParseTierTexts(
    absl::string_view text, absl::string_view flag) {
  absl::flat_hash_map<int, std::string> out;
  if (absl::StripAsciiWhitespace(text).empty()) return out;
  for (absl::string_view part : absl::StrSplit(text, ';')) {
    const size_t eq = part.find('=');
    const absl::string_view name =
        absl::StripAsciiWhitespace(part.substr(0, eq));
    std::optional<::rapport::common::v1::Tier> tier =
        eq == absl::string_view::npos ? std::nullopt : ParseTier(name);
    if (!tier.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": \"", Utf8Prefix(part, 40),
                       "\" is not TIER=TEXT with a tier of platinum, gold, "
                       "iron or lead"));
    }
    const absl::string_view words =
        absl::StripAsciiWhitespace(part.substr(eq + 1));
    if (words.empty() || words.size() > 200) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": the text for ", name, " must have 1 to 200 bytes"));
    }
    if (!out.emplace(*tier, std::string(words)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, ": ", name, " is given twice"));
    }
  }
  return out;
}

}  // namespace rapport::community
