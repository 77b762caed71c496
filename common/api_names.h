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

#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "rapport/common/v1/differentiation.pb.h"

namespace rapport {

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

}  // namespace rapport

#endif  // RAPPORT_COMMON_API_NAMES_H_
