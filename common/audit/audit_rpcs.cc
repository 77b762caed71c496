#include "common/audit/audit_rpcs.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace rapport::audit {

::rapport::common::v1::AuditEvent ToProto(const Event& e) {
  ::rapport::common::v1::AuditEvent out;
  *out.mutable_time() = ToTimestamp(e.time_us);
  out.set_actor(e.actor);
  out.set_rpc(e.rpc);
  out.set_resource(e.resource);
  out.set_request_id(e.request_id);
  out.set_outcome(e.outcome);
  out.set_details(e.details);
  return out;
}

absl::StatusOr<Filter> FilterOf(const std::string& actor,
                                const std::string& resource,
                                const google::protobuf::Timestamp* start_time,
                                const google::protobuf::Timestamp* end_time) {
  Filter f;
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(actor, "actor", 256));
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(resource, "resource", 256));
  f.actor = actor;
  f.resource = resource;
  if (start_time != nullptr) {
    RAPPORT_ASSIGN_OR_RETURN(f.since_us,
                             FromTimestamp(*start_time, "start_time"));
  }
  if (end_time != nullptr) {
    RAPPORT_ASSIGN_OR_RETURN(f.before_us, FromTimestamp(*end_time, "end_time"));
  }
  if (f.since_us && f.before_us && *f.before_us <= *f.since_us) {
    return InvalidField("end_time", "must be after start_time");
  }
  return f;
}

std::string FilterKey(const Filter& f) {
  return absl::StrCat(f.actor, "\n", f.resource, "\n", f.since_us.value_or(-1),
                      "\n", f.before_us.value_or(-1));
}

absl::StatusOr<std::optional<Cursor>> CursorOf(const std::string& token,
                                               const std::string& filter_key) {
  if (token.empty()) return std::optional<Cursor>();
  RAPPORT_ASSIGN_OR_RETURN(std::string last,
                           DecodePageToken(token, filter_key));
  std::vector<std::string> parts = absl::StrSplit(last, ':');
  Cursor c;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &c.time_us) ||
      !absl::SimpleAtoi(parts[1], &c.id)) {
    return InvalidField("page_token", "is not a token of this list");
  }
  return std::optional<Cursor>(c);
}

std::string TokenOf(const Event& last, const std::string& filter_key) {
  return EncodePageToken(absl::StrCat(last.time_us, ":", last.id), filter_key);
}

}  // namespace rapport::audit
