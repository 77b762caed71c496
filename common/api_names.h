// The shared API's enums (rapport.common.v1) by the names that people, CSV
// files and flags use: channels in lower case ("email"), tiers capitalised as
// SCORING.md writes them ("Platinum"). Derived from the enums' own names
// (CHANNEL_EMAIL -> "email", TIER_PLATINUM -> "Platinum"), so a new value
// needs no change here.
//
//   std::optional<cv1::Channel> c = ParseChannel("Email");  // CHANNEL_EMAIL
//   std::string name = TierName(cv1::TIER_GOLD);             // "Gold"
#ifndef RAPPORT_COMMON_API_NAMES_H_
#define RAPPORT_COMMON_API_NAMES_H_

#include <google/protobuf/generated_enum_reflection.h>

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "rapport/common/v1/differentiation.pb.h"

namespace rapport {

// The name under which every server's health service answers SERVING while
// the process serves at all (liveness, whatever its dependencies), and
// NOT_SERVING once it shuts down; what `rapportctl health` also asks to tell
// a name a server does not know from one it has not registered yet.
inline constexpr absl::string_view kLivenessName = "liveness";

// "email" for CHANNEL_EMAIL; "unspecified" for 0 and unknown values.
std::string ChannelName(int channel);
// The channel a name (any case) spells; nullopt for an unknown name and for
// "unspecified".
std::optional<::rapport::common::v1::Channel> ParseChannel(
    absl::string_view name);

// "Platinum" for TIER_PLATINUM; "" for TIER_UNSPECIFIED and unknown values.
std::string TierName(int tier);
// The tier a name (any case) spells; nullopt for an unknown name and for
// "unspecified".
std::optional<::rapport::common::v1::Tier> ParseTier(absl::string_view name);

// Any service's enum by the same rule: the value's name without `prefix`, in
// lower case (PARTNER_KIND_SUPPLIER -> "supplier"); "" for 0 and unknown
// values.
template <typename Enum>
std::string EnumName(int value, absl::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* v =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByNumber(value);
  if (v == nullptr || value == 0) return "";
  return absl::AsciiStrToLower(absl::StripPrefix(v->name(), prefix));
}

// The value a name (any case; a dash or a space for an underscore, as
// rapportctl's flags take it: "earnings-call") spells; nullopt for an
// unknown or empty name and for 0.
template <typename Enum>
std::optional<Enum> ParseEnum(absl::string_view name,
                              absl::string_view prefix) {
  if (name.empty()) return std::nullopt;
  const google::protobuf::EnumValueDescriptor* v =
      google::protobuf::GetEnumDescriptor<Enum>()->FindValueByName(
          absl::StrCat(prefix, absl::StrReplaceAll(absl::AsciiStrToUpper(name),
                                                   {{"-", "_"}, {" ", "_"}})));
  if (v == nullptr || v->number() == 0) return std::nullopt;
  return static_cast<Enum>(v->number());
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_API_NAMES_H_
