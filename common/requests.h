// What every counterpart service's logic checks in a request and builds in
// an answer alike: request ids and what a retried request said, ids, amounts
// in the deployment's currency, etags, not-found errors and pages of
// records. Errors name the field.
//
//   RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
//   RAPPORT_ASSIGN_OR_RETURN(Decimal cost, ReadAmount(request.cost(), "cost",
//                                                     "USD", false));
//   store->Create(record, RequestFingerprint(request.member()), ...);
#ifndef RAPPORT_COMMON_REQUESTS_H_
#define RAPPORT_COMMON_REQUESTS_H_

#include <google/protobuf/message_lite.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "common/paging.h"
#include "google/type/money.pb.h"

namespace rapport {

inline constexpr size_t kMaxRequestIdBytes = 128;

// The fingerprint of what a request said: its bytes in one order (map
// entries sorted), with `extra`; a retry under the same request id must say
// the same.
std::string RequestFingerprint(const google::protobuf::MessageLite& m,
                               absl::string_view extra = "");

absl::Status CheckRequestId(const std::string& request_id);
// A required id (26 characters of base32).
absl::Status CheckId(const std::string& id, absl::string_view field);

// An amount in `currency` (or in none given); negative ones refused unless
// `negative_ok`.
absl::StatusOr<Decimal> ReadAmount(const google::type::Money& money,
                                   absl::string_view field,
                                   const std::string& currency,
                                   bool negative_ok);
// `d` in `currency` (empty when it cannot be one: never for stored amounts).
google::type::Money MoneyIn(const Decimal& d, const std::string& currency);

// ABORTED when `given` (non-empty) is not the etag of `version`.
absl::Status CheckEtag(const std::string& given, int64_t version,
                       absl::string_view what, const std::string& id);
std::string EtagOf(int64_t version);

// NOT_FOUND: "<what> <id> does not exist".
absl::Status EntityNotFound(absl::string_view what, const std::string& id);

// Where a page of a list in id order, or in value order (highest first),
// goes on: after this id, or after this value and id.
struct ListCursor {
  std::string id;
  std::optional<int> value_hundredths;
};
// The cursor that a page token's key (DecodePageToken) holds.
absl::StatusOr<ListCursor> ReadListCursor(const std::string& key,
                                          bool by_value);
// The key of the page token after `id` (of `value_hundredths`, by value).
std::string ListCursorKey(bool by_value, int value_hundredths,
                          const std::string& id);

// Adds `records` (read one more than `size` to know if there is more) to
// `response` through `add`, with the next page's token after the last id.
template <typename Record, typename Response, typename Add>
void AddPage(std::vector<Record>& records, int size, const std::string& filter,
             Response* response, Add add) {
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  for (Record& r : records) add(r);
  if (more) {
    response->set_next_page_token(EncodePageToken(records.back().id, filter));
  }
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_REQUESTS_H_
