// Page sizes and page tokens for List methods (AIP-158).
//
// A token is opaque to clients: it carries the key of the last item returned
// and a fingerprint of the request's filter, so a token used with another
// filter is INVALID_ARGUMENT rather than a silently wrong page.
//
//   RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
//   RAPPORT_ASSIGN_OR_RETURN(std::string after,
//   DecodePageToken(request.page_token(), filter));
//   ... WHERE key > after ORDER BY key LIMIT size + 1 ...
//   response.set_next_page_token(EncodePageToken(last_key, filter));
#ifndef RAPPORT_COMMON_PAGING_H_
#define RAPPORT_COMMON_PAGING_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

// 0 means the default; negative is INVALID_ARGUMENT; above the maximum is
// capped.
absl::StatusOr<int> PageSize(int requested);

// Whether a list's `order_by` asks for the highest stored value first:
// "value desc" or "value" (true); "" or "id" for id order (false); anything
// else is INVALID_ARGUMENT naming order_by.
absl::StatusOr<bool> OrderByValue(absl::string_view order_by);

std::string EncodePageToken(absl::string_view last_key,
                            absl::string_view filter);

// The last key of the previous page ("" for an empty token).
absl::StatusOr<std::string> DecodePageToken(absl::string_view token,
                                            absl::string_view filter);

// Lists in time order (histories: purchases, orders, interactions,
// engagements) page by the (time, id) of the last item returned: ids made
// from request ids have no time order.
//   ... AND (time_us, id) > (?, ?) ORDER BY time_us, id LIMIT size + 1 ...
using TimeCursor = std::optional<std::pair<int64_t, std::string>>;
// nullopt for the first page.
absl::StatusOr<TimeCursor> DecodeTimeCursor(absl::string_view token,
                                            absl::string_view filter);
// The token of the page after the item at (time_us, id).
std::string EncodeTimeCursor(int64_t time_us, absl::string_view id,
                             absl::string_view filter);

}  // namespace rapport

#endif  // RAPPORT_COMMON_PAGING_H_
