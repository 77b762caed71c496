// The partner and financial-community services' own field parsers and match
// keys, which requests, import rows and rapportctl reach: commission
// percentages, holding dates, analyst ratings, the names of kinds and
// states, and the keys deal registrations and duplicates are matched on.
// Properties: a refusal is INVALID_ARGUMENT naming the field; what parses
// prints back to the same value (a percentage 0 to 100 with at most 4
// decimals, a date as the last microsecond of its day); a name parsed prints
// as itself in lower case (a dash or a space as an underscore); and every key
// is a fixed point (the key of a key is itself; for emails, of a normalised
// one), so that stored keys and keys of new input always compare.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/identity.h"
#include "services/financial_community/community_rules.h"
#include "services/partner/partner_rules.h"

namespace {
namespace partner = rapport::partner;
namespace community = rapport::community;

void Refusal(const absl::Status& s, absl::string_view field) {
  if (s.code() != absl::StatusCode::kInvalidArgument ||
      !absl::StartsWith(s.message(), field)) {
    __builtin_trap();
  }
}

// A parsed name prints back as the text in lower case, a dash or a space
// read as an underscore.
template <typename Parsed, typename Name>
void RoundTrip(const std::string& text, Parsed parsed, Name name) {
  if (parsed.has_value() && name(static_cast<int>(*parsed)) !=
                                absl::StrReplaceAll(absl::AsciiStrToLower(text),
                                                    {{"-", "_"}, {" ", "_"}})) {
    __builtin_trap();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<rapport::Decimal> percent =
      partner::ParsePercent(text, "commission_percent");
  if (percent.ok()) {
    if (percent->is_negative() || *percent > rapport::Decimal::FromUnits(100) ||
        percent->nanos() % 100000 != 0) {
      __builtin_trap();
    }
    absl::StatusOr<rapport::Decimal> again =
        partner::ParsePercent(percent->ToString(), "commission_percent");
    if (!again.ok() || *again != *percent) __builtin_trap();
  } else {
    Refusal(percent.status(), "commission_percent");
  }

  absl::StatusOr<int64_t> date = community::ParseDateEnd(text, "date");
  if (date.ok()) {
    constexpr int64_t kDay = 86'400'000'000;
    if ((*date + 1) % kDay != 0 || community::DateText(*date) != text) {
      __builtin_trap();
    }
    absl::StatusOr<int64_t> again =
        community::DateEnd(community::DateOf(*date), "date");
    if (!again.ok() || *again != *date) __builtin_trap();
  } else {
    Refusal(date.status(), "date");
  }

  // A rating read is one of the four (coverage dropped included), reads back
  // from its name, and reads the same in any case.
  if (std::optional<community::v1::Rating> rating =
          community::ParseRating(text)) {
    if (*rating != community::v1::RATING_BUY &&
        *rating != community::v1::RATING_HOLD &&
        *rating != community::v1::RATING_SELL &&
        *rating != community::v1::RATING_DROPPED) {
      __builtin_trap();
    }
    if (community::ParseRating(community::RatingName(*rating)) != rating ||
        community::ParseRating(absl::AsciiStrToUpper(text)) != rating) {
      __builtin_trap();
    }
  }
  RoundTrip(text, partner::ParseKind(text), partner::KindName);
  RoundTrip(text, partner::ParseLifecycle(text), partner::LifecycleName);
  RoundTrip(text, partner::ParseDealState(text), partner::DealStateName);
  RoundTrip(text, partner::ParseFundState(text), partner::FundStateName);
  RoundTrip(text, partner::ParseAgreementState(text),
            partner::AgreementStateName);
  RoundTrip(text, community::ParseKind(text), community::KindName);
  RoundTrip(text, community::ParseType(text), community::TypeName);
  RoundTrip(text, community::ParseEngagementKind(text),
            community::EngagementKindName);

  const std::string domain = partner::AccountDomainKey(text);
  if (partner::AccountDomainKey(domain) != domain) __builtin_trap();
  const std::string firm = rapport::FirmNameKey(text);
  if (rapport::FirmNameKey(firm) != firm) __builtin_trap();
  // Emails are matched once normalised (as they are stored).
  absl::StatusOr<std::string> email = rapport::NormalizeEmail(text, "email");
  if (email.ok()) {
    const std::string key = rapport::EmailMatchKey(*email);
    if (rapport::EmailMatchKey(key) != key) __builtin_trap();
  }
  return 0;
}
