// The ListAuditEvents RPC of every service, written once: each service's
// request and response messages have the same fields (page_size, page_token,
// actor, resource, start_time, end_time; events, next_page_token).
//
//   absl::StatusOr<v1::ListAuditEventsResponse> r =
//       audit::ListEvents<v1::ListAuditEventsResponse>(request,
//           [&](const audit::Filter& f, const auto& after, int limit) {
//             return store_->ListAuditEvents(f, after, limit);
//           });
#ifndef RAPPORT_COMMON_AUDIT_AUDIT_RPCS_H_
#define RAPPORT_COMMON_AUDIT_AUDIT_RPCS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/audit/audit.h"
#include "common/base/status_macros.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "common/validation.h"
#include "rapport/common/v1/audit.pb.h"

namespace rapport::audit {

using Lister = std::function<absl::StatusOr<std::vector<Event>>(
    const Filter&, const std::optional<Cursor>&, int)>;

::rapport::common::v1::AuditEvent ToProto(const Event& event);

// The filter a request asks for; errors name the field.
absl::StatusOr<Filter> FilterOf(const std::string& actor,
                                const std::string& resource,
                                const google::protobuf::Timestamp* start_time,
                                const google::protobuf::Timestamp* end_time);

// The page token's cursor ("" for the first page), checked against the
// request's filter.
absl::StatusOr<std::optional<Cursor>> CursorOf(const std::string& token,
                                               const std::string& filter_key);
std::string TokenOf(const Event& last, const std::string& filter_key);
std::string FilterKey(const Filter& filter);

template <typename Response, typename Request>
absl::StatusOr<Response> ListEvents(const Request& request,
                                    const Lister& list) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(
      Filter filter,
      FilterOf(request.actor(), request.resource(),
               request.has_start_time() ? &request.start_time() : nullptr,
               request.has_end_time() ? &request.end_time() : nullptr));
  // A token of one service's audit log is no token of another's (their
  // request messages differ by package).
  const std::string key =
      absl::StrCat(Request::descriptor()->full_name(), "\n", FilterKey(filter));
  RAPPORT_ASSIGN_OR_RETURN(std::optional<Cursor> after,
                           CursorOf(request.page_token(), key));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<Event> events,
                           list(filter, after, size + 1));
  Response response;
  const bool more = static_cast<int>(events.size()) > size;
  if (more) events.resize(size);
  for (const Event& e : events) *response.add_events() = ToProto(e);
  if (more) response.set_next_page_token(TokenOf(events.back(), key));
  return response;
}

}  // namespace rapport::audit

#endif  // RAPPORT_COMMON_AUDIT_AUDIT_RPCS_H_
