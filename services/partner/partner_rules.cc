#include "services/partner/partner_rules.h"

#include <array>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/api_names.h"
#include "common/status.h"

namespace rapport::partner {
bool LifecycleMayMove(v1::Lifecycle from, v1::Lifecycle to) {
  using L = v1::Lifecycle;
  if (from == to || to == v1::LIFECYCLE_UNSPECIFIED) return false;
  if (from == v1::LIFECYCLE_ENDED) return false;
  if (to == v1::LIFECYCLE_ENDED) return true;
  switch (from) {
    case L::LIFECYCLE_PROSPECT:
      return to == v1::LIFECYCLE_ONBOARDING;
    case L::LIFECYCLE_ONBOARDING:
      return to == v1::LIFECYCLE_ACTIVE;
    case L::LIFECYCLE_ACTIVE:
      return to == v1::LIFECYCLE_SUSPENDED;
    case L::LIFECYCLE_SUSPENDED:
      return to == v1::LIFECYCLE_ACTIVE;
    default:
      return false;
  }
}

v1::AgreementState AgreementStateAt(int state,
                                    std::optional<int64_t> end_time_us,
                                    int64_t now_us) {
  if (state == v1::AGREEMENT_STATE_ACTIVE && end_time_us.has_value() &&
      *end_time_us <= now_us) {
    return v1::AGREEMENT_STATE_EXPIRED;
  }
  return static_cast<v1::AgreementState>(state);
}

bool AgreementMayMove(v1::AgreementState from, v1::AgreementState to) {
  switch (from) {
    case v1::AGREEMENT_STATE_DRAFT:
      return to == v1::AGREEMENT_STATE_ACTIVE ||
             to == v1::AGREEMENT_STATE_TERMINATED;
    case v1::AGREEMENT_STATE_ACTIVE:
      return to == v1::AGREEMENT_STATE_EXPIRED ||
             to == v1::AGREEMENT_STATE_TERMINATED;
    default:
      return false;
  }
}

bool DealMayMove(v1::DealState from, v1::DealState to) {
  switch (from) {
    case v1::DEAL_STATE_SUBMITTED:
      return to == v1::DEAL_STATE_APPROVED || to == v1::DEAL_STATE_REJECTED ||
             to == v1::DEAL_STATE_EXPIRED;
    case v1::DEAL_STATE_APPROVED:
      return to == v1::DEAL_STATE_WON || to == v1::DEAL_STATE_LOST ||
             to == v1::DEAL_STATE_EXPIRED;
    default:
      return false;
  }
}

bool FundMayMove(v1::FundRequestState from, v1::FundRequestState to) {
  switch (from) {
    case v1::FUND_REQUEST_STATE_REQUESTED:
      return to == v1::FUND_REQUEST_STATE_APPROVED ||
             to == v1::FUND_REQUEST_STATE_REJECTED;
    case v1::FUND_REQUEST_STATE_APPROVED:
      return to == v1::FUND_REQUEST_STATE_CLAIMED;
    case v1::FUND_REQUEST_STATE_CLAIMED:
      return to == v1::FUND_REQUEST_STATE_PAID ||
             to == v1::FUND_REQUEST_STATE_CLAIM_REJECTED;
    default:
      return false;
  }
}

v1::FundRequestState FundTarget(v1::FundRequestState from,
                                v1::FundRequestState to) {
  const bool claimed = from == v1::FUND_REQUEST_STATE_CLAIMED ||
                       from == v1::FUND_REQUEST_STATE_CLAIM_REJECTED;
  return to == v1::FUND_REQUEST_STATE_REJECTED && claimed
             ? v1::FUND_REQUEST_STATE_CLAIM_REJECTED
             : to;
}

bool DealIsOpen(v1::DealState state) {
  return state == v1::DEAL_STATE_SUBMITTED || state == v1::DEAL_STATE_APPROVED;
}

std::string AccountDomainKey(absl::string_view domain) {
  // Until nothing changes, so that the key of a key is itself ("www.www.x",
  // "x.." and "x ?" are taken as far as "x").
  std::string key = absl::AsciiStrToLower(domain);
  while (true) {
    absl::string_view v = absl::StripAsciiWhitespace(key);
    if (size_t scheme = v.find("://"); scheme != absl::string_view::npos) {
      v.remove_prefix(scheme + 3);
    }
    // The authority only: a path or query may hold an '@' of its own
    // ("globex.example/contact?to=a@initech.example").
    v = v.substr(0, v.find_first_of("/?#"));
    if (size_t at = v.rfind('@'); at != absl::string_view::npos) {
      v.remove_prefix(at + 1);  // an email address or user@host: the host
    }
    v = v.substr(0, v.find(':'));
    absl::ConsumePrefix(&v, "www.");
    absl::ConsumeSuffix(&v, ".");
    if (v.size() == key.size()) return key;
    key = std::string(v);
  }
}

absl::StatusOr<std::string> CheckedAccountDomainKey(absl::string_view domain,
                                                    absl::string_view field) {
  std::string key = AccountDomainKey(domain);
  // Given, but nothing of a domain in it ("http://", "www."): it would never
  // meet another registration's, and so protect nothing.
  if (key.empty() && !absl::StripAsciiWhitespace(domain).empty()) {
    return InvalidField(field, "names no domain (want e.g. globex.example)");
  }
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7e) {
      return InvalidField(field,
                          "must be an ASCII domain name (an international "
                          "one in its xn-- form)");
    }
  }
  return key;
}

absl::StatusOr<Decimal> ParsePercent(absl::string_view text,
                                     absl::string_view field) {
  absl::StatusOr<Decimal> d = Decimal::Parse(text);
  if (!d.ok()) {
    // A number still, with too many digits on either side of its point.
    if (absl::StartsWith(d.status().message(), "more than 9 fractional")) {
      return InvalidField(field, "has more than 4 decimals");
    }
    if (absl::StartsWith(d.status().message(), "decimal out of range")) {
      return InvalidField(field, "must be from 0 to 100");
    }
    return InvalidField(field, "must be a decimal number such as 12.5");
  }
  if (d->is_negative() || *d > Decimal::FromUnits(100)) {
    return InvalidField(field, "must be from 0 to 100");
  }
  if (d->nanos() % 100000 != 0) {
    return InvalidField(field, "has more than 4 decimals");
  }
  return *d;
}

std::string KindName(int kind) {
  return EnumName<v1::PartnerKind>(kind, "PARTNER_KIND_");
}
std::optional<v1::PartnerKind> ParseKind(absl::string_view name) {
  return ParseEnum<v1::PartnerKind>(name, "PARTNER_KIND_");
}
std::string LifecycleName(int lifecycle) {
  return EnumName<v1::Lifecycle>(lifecycle, "LIFECYCLE_");
}
std::optional<v1::Lifecycle> ParseLifecycle(absl::string_view name) {
  return ParseEnum<v1::Lifecycle>(name, "LIFECYCLE_");
}
std::string AgreementStateName(int state) {
  return EnumName<v1::AgreementState>(state, "AGREEMENT_STATE_");
}
std::optional<v1::AgreementState> ParseAgreementState(absl::string_view name) {
  return ParseEnum<v1::AgreementState>(name, "AGREEMENT_STATE_");
}
std::string DealStateName(int state) {
  return EnumName<v1::DealState>(state, "DEAL_STATE_");
}
std::optional<v1::DealState> ParseDealState(absl::string_view name) {
  return ParseEnum<v1::DealState>(name, "DEAL_STATE_");
}
std::string FundStateName(int state) {
  return EnumName<v1::FundRequestState>(state, "FUND_REQUEST_STATE_");
}
std::optional<v1::FundRequestState> ParseFundState(absl::string_view name) {
  return ParseEnum<v1::FundRequestState>(name, "FUND_REQUEST_STATE_");
}

}  // namespace rapport::partner
