#include "common/api_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace rapport {
namespace {

namespace cv1 = ::rapport::common::v1;

constexpr absl::string_view kChannelPrefix = "CHANNEL_";
constexpr absl::string_view kTierPrefix = "TIER_";

}  // namespace

std::string ChannelName(int channel) {
  if (!cv1::Channel_IsValid(channel)) return "unspecified";
  return absl::AsciiStrToLower(
      absl::string_view(cv1::Channel_Name(static_cast<cv1::Channel>(channel)))
          .substr(kChannelPrefix.size()));
}

std::optional<cv1::Channel> ParseChannel(absl::string_view name) {
  cv1::Channel channel;
  if (!cv1::Channel_Parse(
          absl::AsciiStrToUpper(absl::StrCat(kChannelPrefix, name)),
          &channel) ||
      channel == cv1::CHANNEL_UNSPECIFIED) {
    return std::nullopt;
  }
  return channel;
}

std::string TierName(int tier) {
  if (!cv1::Tier_IsValid(tier) || tier == cv1::TIER_UNSPECIFIED) return "";
  std::string name = absl::AsciiStrToLower(
      absl::string_view(cv1::Tier_Name(static_cast<cv1::Tier>(tier)))
          .substr(kTierPrefix.size()));
  name[0] = absl::ascii_toupper(static_cast<unsigned char>(name[0]));
  return name;
}

std::optional<cv1::Tier> ParseTier(absl::string_view name) {
  cv1::Tier tier;
  if (!cv1::Tier_Parse(absl::AsciiStrToUpper(absl::StrCat(kTierPrefix, name)),
                       &tier) ||
      tier == cv1::TIER_UNSPECIFIED) {
    return std::nullopt;
  }
  return tier;
}

}  // namespace rapport
