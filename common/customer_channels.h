// The customer API's contact channels by the lower-case names that CSV files,
// flags and messages use ("email", "phone", ...). Derived from the enum's own
// names (CHANNEL_EMAIL -> "email"), so a new channel needs no change here.
#ifndef RAPPORT_COMMON_CUSTOMER_CHANNELS_H_
#define RAPPORT_COMMON_CUSTOMER_CHANNELS_H_

#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "rapport/customer/v1/customer_service.pb.h"

namespace rapport {

// "email" for CHANNEL_EMAIL; "unspecified" for 0 and unknown values.
inline std::string CustomerChannelName(int channel) {
  namespace v1 = ::rapport::customer::v1;
  if (!v1::Channel_IsValid(channel)) return "unspecified";
  return absl::AsciiStrToLower(
      absl::string_view(v1::Channel_Name(static_cast<v1::Channel>(channel)))
          .substr(sizeof("CHANNEL_") - 1));
}

// The channel a name (any case) spells; nullopt for an unknown name and for
// "unspecified".
inline std::optional<::rapport::customer::v1::Channel> ParseCustomerChannel(
    absl::string_view name) {
  namespace v1 = ::rapport::customer::v1;
  v1::Channel channel;
  if (!v1::Channel_Parse(absl::AsciiStrToUpper(absl::StrCat("CHANNEL_", name)),
                         &channel) ||
      channel == v1::CHANNEL_UNSPECIFIED) {
    return std::nullopt;
  }
  return channel;
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_CUSTOMER_CHANNELS_H_
