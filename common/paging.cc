#include "common/paging.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport {
absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) return InvalidField("page_size", "must not be negative");
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

absl::StatusOr<bool> OrderByValue(absl::string_view order_by) {
  if (order_by == "value desc" || order_by == "value") return true;
  if (order_by.empty() || order_by == "id") return false;
  return InvalidField("order_by",
                      "must be \"value desc\" (or \"value\") or \"id\" (or "
                      "empty)");
}

std::string EncodePageToken(absl::string_view last_key,
                            absl::string_view filter) {
  return absl::WebSafeBase64Escape(
      absl::StrCat("1|", Fingerprint(filter), "|", last_key));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view token,
                                            absl::string_view filter) {
  if (token.empty()) return std::string();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) {
    return InvalidField("page_token", "is not a token this service issued");
  }
  std::vector<std::string> parts = absl::StrSplit(raw, absl::MaxSplits('|', 2));
  if (parts.size() != 3 || parts[0] != "1") {
    return InvalidField("page_token", "is not a token this service issued");
  }
  if (parts[1] != Fingerprint(filter)) {
    return InvalidField("page_token",
                        "was issued for a request with other filters");
  }
  return parts[2];
}

absl::StatusOr<TimeCursor> DecodeTimeCursor(absl::string_view token,
                                            absl::string_view filter) {
  RAPPORT_ASSIGN_OR_RETURN(std::string after, DecodePageToken(token, filter));
  if (after.empty()) return std::nullopt;
  std::pair<std::string, std::string> parts =
      absl::StrSplit(after, absl::MaxSplits(':', 1));
  int64_t time_us = 0;
  if (!absl::SimpleAtoi(parts.first, &time_us)) {
    return InvalidField("page_token", "is not a token this service issued");
  }
  return std::make_pair(time_us, std::move(parts.second));
}

std::string EncodeTimeCursor(int64_t time_us, absl::string_view id,
                             absl::string_view filter) {
  return EncodePageToken(absl::StrCat(time_us, ":", id), filter);
}

}  // namespace rapport
