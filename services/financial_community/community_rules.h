// The financial-community service's rules that need no storage: names of the
// API's enums, analysts' rating scales, dates, the exact share of a cost,
// and the targeting and early-warning rules of docs/TARGETING.md.
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_RULES_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_RULES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "google/type/date.pb.h"
#include "rapport/financial_community/v1/financial_community_service.pb.h"

namespace rapport::community {

namespace v1 = ::rapport::financial_community::v1;

// Names in files and on the command line, and back (nullopt: unknown).
std::string KindName(int kind);  // "shareholder"
std::optional<v1::MemberKind> ParseKind(absl::string_view name);
std::string TypeName(int type);  // "high_net_worth"
std::optional<v1::MemberType> ParseType(absl::string_view name);
std::string EngagementKindName(int kind);  // "earnings_call"
std::optional<v1::EngagementKind> ParseEngagementKind(absl::string_view name);
std::string RatingName(int rating);  // "buy"
// buy, hold, sell, or an analyst's own scale mapped to them (any case;
// spaces, dashes and underscores alike): strong buy, outperform,
// overweight, accumulate, add -> buy; neutral, market perform, equal weight,
// in-line, peer perform -> hold; underperform, underweight, reduce, strong
// sell -> sell.
std::optional<v1::Rating> ParseRating(absl::string_view text);

// A date: "YYYY-MM-DD" or a google.type.Date, held as the last microsecond of
// that UTC day (a position or a rating holds at the end of its date). Errors
// name `field`.
absl::StatusOr<int64_t> ParseDateEnd(absl::string_view text,
                                     absl::string_view field);
absl::StatusOr<int64_t> DateEnd(const google::type::Date& date,
                                absl::string_view field);
// INVALID_ARGUMENT naming `field` when the date ending at `end_us` has not
// begun at `now_us` (give or take the clocks' difference): a position or a
// rating is reported for a day that has come.
absl::Status CheckDateNotFuture(int64_t end_us, int64_t now_us,
                                absl::string_view field);
// The date whose last microsecond is `end_us` (or whose day holds it).
google::type::Date DateOf(int64_t end_us);
std::string DateText(int64_t end_us);  // "2024-06-30"

// Limits of a holding row: shares and price per share (so that a position's
// value, and any register's total, is exact in a Decimal).
inline constexpr int64_t kMaxShares = 1'000'000'000'000'000;  // 1e15
// The most members one engagement counts (LogEngagement, and an import's
// rows grouped under one request id).
inline constexpr int kMaxEngagementMembers = 100;
// The id of a member's row in an engagement that LogEngagement stored (an
// import's rows have ids of their own, keyed by each row's request id).
std::string LoggedEngagementRowId(absl::string_view engagement_id,
                                  absl::string_view member_id);
inline constexpr int64_t kMaxPriceUnits = 1'000'000'000'000;  // 1e12

// shares * price, exact; OUT_OF_RANGE past what a Decimal holds.
absl::StatusOr<Decimal> PositionValue(int64_t shares, const Decimal& price);
// The same for a stored position (rows stored before positions were
// limited may be worth more than a Decimal holds): OUT_OF_RANGE naming the
// member and the security, the row to mend.
absl::StatusOr<Decimal> StoredPositionValue(absl::string_view member_id,
                                            absl::string_view security,
                                            int64_t shares,
                                            const Decimal& price);
// The most a position may be worth, far above any real one, so that the
// values the API answers fit a google.type.Money (int64 units): a position's,
// and a register's total of up to 90,000 positions that large.
inline constexpr int64_t kMaxPositionValueUnits = 100'000'000'000'000;  // 1e14
// INVALID_ARGUMENT naming `field` when shares * price is worth more.
absl::Status CheckPositionValue(int64_t shares, const Decimal& price,
                                absl::string_view field);

// What a holding says, as RecordHolding and ImportHoldings fingerprint it
// under a request id (`member` as given: an id, or a row's ext: reference),
// so that one request sent both ways is one request.
std::string HoldingContent(absl::string_view member, absl::string_view security,
                           int64_t end_time_us, int64_t shares,
                           const Decimal& price);

// `total` shared among `n` (>= 1) exactly: equal shares, what does not
// divide evenly (in billionths) added to the first.
std::vector<Decimal> ShareEqually(const Decimal& total, int n);

// What targeting knows of a member (docs/TARGETING.md).
struct TargetFacts {
  Decimal own_value;   // market value at as_of of securities not named peers
  Decimal peer_value;  // market value at as_of of the peer securities
  std::optional<int64_t> days_since_engagement;  // none: never engaged
  // Shares of the own securities: the sum of each security's last row at or
  // before as_of, and of each one's previous row (its last row where it has
  // none).
  int64_t shares_last = 0;
  int64_t shares_previous = 0;
};

struct TargetScore {
  Decimal base;  // own value, else half the peer value
  double recency_factor = 1;
  double trend_factor = 1;
  Decimal score;       // base * recency * trend, to the cent (half away)
  std::string reason;  // in words
};

// nullopt when the member is no target (no value to meet it for).
std::optional<TargetScore> ScoreTarget(const TargetFacts& facts,
                                       const std::string& currency);

// Money as people read it: "1,200,000.00".
std::string MoneyWords(const Decimal& amount);

// The management time each tier deserves, as its contact policy says it
// (the service level), by default.
inline constexpr char kDefaultManagementTime[] =
    "platinum=senior management: meetings with the CEO or CFO, about 8 hours "
    "a year;gold=the CFO or the head of investor relations, about 4 hours a "
    "year;iron=the investor relations team, about 1 hour a year;lead=no "
    "management time: results, webcasts and the investor website";

// Texts by tier (cv1::Tier) from "platinum=TEXT;gold=TEXT;..." (tier names
// in any case, each at most once, tiers left out keep the scoring
// service's words; a text of 1 to 200 bytes); none from "". INVALID_ARGUMENT
// naming `flag` and the part at fault otherwise.
absl::StatusOr<absl::flat_hash_map<int, std::string>> ParseTierTexts(
    absl::string_view text, absl::string_view flag);

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_RULES_H_
