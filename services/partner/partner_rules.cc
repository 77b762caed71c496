#include "services/partner/partner_rules.h"

#include <array>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"

namespace rapport::partner {
namespace {

// Enum names without their prefix, lower case: PARTNER_KIND_SUPPLIER ->
// "supplier".
template <typename Enum>
std::string NameOf(int value, const google::protobuf::EnumDescriptor* d,
                   absl::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* v = d->FindValueByNumber(value);
  if (v == nullptr || value == 0) return "";
  return absl::AsciiStrToLower(absl::StripPrefix(v->name(), prefix));
}

template <typename Enum>
std::optional<Enum> Parse(absl::string_view name,
                          const google::protobuf::EnumDescriptor* d,
                          absl::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* v =
      d->FindValueByName(absl::StrCat(prefix, absl::AsciiStrToUpper(name)));
  if (v == nullptr || v->number() == 0 || name.empty()) return std::nullopt;
  return static_cast<Enum>(v->number());
}

// Legal forms dropped from the end of a firm's name for matching.
constexpr std::array<absl::string_view, 22> kLegalForms = {
    "inc", "incorporated", "corp", "corporation", "co",   "company",
    "ltd", "limited",      "llc",  "llp",         "plc",  "gmbh",
    "ag",  "kg",           "sa",   "sas",         "sarl", "srl",
    "spa", "bv",           "nv",   "oy"};

}  // namespace

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

bool DealIsOpen(v1::DealState state) {
  return state == v1::DEAL_STATE_SUBMITTED || state == v1::DEAL_STATE_APPROVED;
}

std::string AccountDomainKey(absl::string_view domain) {
  std::string d = absl::AsciiStrToLower(absl::StripAsciiWhitespace(domain));
  absl::string_view v = d;
  if (size_t scheme = v.find("://"); scheme != absl::string_view::npos) {
    v.remove_prefix(scheme + 3);
  }
  if (size_t at = v.find('@'); at != absl::string_view::npos) {
    v.remove_prefix(at + 1);  // an email address: its domain
  }
  v = v.substr(0, v.find_first_of("/?#:"));
  absl::ConsumePrefix(&v, "www.");
  absl::ConsumeSuffix(&v, ".");
  return std::string(v);
}

std::string AccountNameKey(absl::string_view name) {
  // Words of letters and digits (any non-ASCII byte counts as a letter, so
  // "Müller" stays whole), lower case.
  std::vector<std::string> words;
  std::string word;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x80 || absl::ascii_isalnum(u)) {
      word.push_back(static_cast<char>(absl::ascii_tolower(u)));
    } else if (c == '&' || absl::ascii_isspace(u) || c == ',' || c == '-' ||
               c == '/') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    }
    // Other punctuation (".", "'") joins: "Co." is "co", "O'Neil" "oneil".
  }
  if (!word.empty()) words.push_back(std::move(word));
  auto is_legal_form = [](const std::string& w) {
    for (absl::string_view f : kLegalForms) {
      if (w == f) return true;
    }
    return false;
  };
  while (words.size() > 1 && is_legal_form(words.back())) words.pop_back();
  return absl::StrJoin(words, " ");
}

absl::StatusOr<Decimal> ParsePercent(absl::string_view text,
                                     absl::string_view field) {
  absl::StatusOr<Decimal> d = Decimal::Parse(text);
  if (!d.ok())
    return InvalidField(field, "must be a decimal number such as 12.5");
  if (d->is_negative() || *d > Decimal::FromUnits(100)) {
    return InvalidField(field, "must be from 0 to 100");
  }
  if (d->nanos() % 100000 != 0) {
    return InvalidField(field, "has more than 4 decimals");
  }
  return *d;
}

std::string KindName(int kind) {
  return NameOf<v1::PartnerKind>(kind, v1::PartnerKind_descriptor(),
                                 "PARTNER_KIND_");
}
std::optional<v1::PartnerKind> ParseKind(absl::string_view name) {
  return Parse<v1::PartnerKind>(name, v1::PartnerKind_descriptor(),
                                "PARTNER_KIND_");
}
std::string LifecycleName(int lifecycle) {
  return NameOf<v1::Lifecycle>(lifecycle, v1::Lifecycle_descriptor(),
                               "LIFECYCLE_");
}
std::optional<v1::Lifecycle> ParseLifecycle(absl::string_view name) {
  return Parse<v1::Lifecycle>(name, v1::Lifecycle_descriptor(), "LIFECYCLE_");
}
std::string AgreementStateName(int state) {
  return NameOf<v1::AgreementState>(state, v1::AgreementState_descriptor(),
                                    "AGREEMENT_STATE_");
}
std::optional<v1::AgreementState> ParseAgreementState(absl::string_view name) {
  return Parse<v1::AgreementState>(name, v1::AgreementState_descriptor(),
                                   "AGREEMENT_STATE_");
}
std::string DealStateName(int state) {
  return NameOf<v1::DealState>(state, v1::DealState_descriptor(),
                               "DEAL_STATE_");
}
std::optional<v1::DealState> ParseDealState(absl::string_view name) {
  return Parse<v1::DealState>(name, v1::DealState_descriptor(), "DEAL_STATE_");
}
std::string FundStateName(int state) {
  return NameOf<v1::FundRequestState>(state, v1::FundRequestState_descriptor(),
                                      "FUND_REQUEST_STATE_");
}
std::optional<v1::FundRequestState> ParseFundState(absl::string_view name) {
  return Parse<v1::FundRequestState>(name, v1::FundRequestState_descriptor(),
                                     "FUND_REQUEST_STATE_");
}

}  // namespace rapport::partner
