#include "common/status.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace rapport {
namespace {

constexpr char kBadRequestUrl[] = "type.googleapis.com/google.rpc.BadRequest";

google::rpc::BadRequest ToBadRequest(
    const std::vector<FieldViolation>& violations) {
  google::rpc::BadRequest bad_request;
  for (const FieldViolation& v : violations) {
    auto* fv = bad_request.add_field_violations();
    fv->set_field(v.field);
    fv->set_description(v.description);
  }
  return bad_request;
}

}  // namespace

absl::Status InvalidField(absl::string_view field,
                          absl::string_view description) {
  return InvalidFields({{std::string(field), std::string(description)}});
}

absl::Status InvalidFields(const std::vector<FieldViolation>& violations) {
  // The answer stays small enough for any client's trailers (8 KiB by
  // default) however many fields a request got wrong: the first ones, and
  // how many more.
  std::vector<FieldViolation> shown(
      violations.begin(),
      violations.begin() +
          std::min(violations.size(), kMaxFieldViolationsShown));
  if (violations.size() > shown.size()) {
    shown.push_back(
        {"request", absl::StrCat("and ", violations.size() - shown.size(),
                                 " more fields are wrong")});
  }
  std::string message =
      absl::StrJoin(shown, "; ", [](std::string* out, const FieldViolation& v) {
        absl::StrAppend(out, v.field, ": ", v.description);
      });
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kBadRequestUrl,
                    absl::Cord(ToBadRequest(shown).SerializeAsString()));
  return status;
}

absl::Status WithoutFieldPrefix(const absl::Status& status,
                                absl::string_view prefix) {
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (violations.empty()) return status;
  for (FieldViolation& v : violations) {
    if (absl::StartsWith(v.field, prefix)) v.field.erase(0, prefix.size());
  }
  return InvalidFields(violations);
}

std::vector<FieldViolation> FieldViolations(const absl::Status& status) {
  std::vector<FieldViolation> out;
  absl::optional<absl::Cord> payload = status.GetPayload(kBadRequestUrl);
  if (!payload.has_value()) return out;
  google::rpc::BadRequest bad_request;
  if (!bad_request.ParseFromString(std::string(*payload))) return out;
  for (const auto& fv : bad_request.field_violations()) {
    out.push_back({fv.field(), fv.description()});
  }
  return out;
}

namespace {

constexpr char kInternalDetailPayload[] = "type.rapport/internal-detail";
// Where an error came from, as Prefixed said ("scoring service: "): safe to
// show, and kept when the rest is redacted.
constexpr char kContextPayload[] = "type.rapport/public-context";

// What a client is told instead, by code.
absl::string_view PublicMessage(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return "temporarily unavailable; retry later";
    case absl::StatusCode::kAborted:
      return "a concurrent change got in the way; retry";
    case absl::StatusCode::kAlreadyExists:
      return "it exists already";
    case absl::StatusCode::kDataLoss:
      return "stored data could not be read";
    case absl::StatusCode::kDeadlineExceeded:
      return "took too long";
    case absl::StatusCode::kResourceExhausted:
      return "busy; retry later";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    default:
      return "internal error";
  }
}

std::string NewErrorId() {
  static absl::Mutex* const mu = new absl::Mutex();
  static absl::BitGen* const gen = new absl::BitGen();
  absl::MutexLock lock(mu);
  return absl::StrFormat("%016x", absl::Uniform<uint64_t>(*gen));
}

}  // namespace

absl::Status MarkInternal(absl::Status status) {
  if (!status.ok()) status.SetPayload(kInternalDetailPayload, absl::Cord("1"));
  return status;
}

absl::Status Redacted(const absl::Status& status) {
  const absl::StatusCode code = status.code();
  const bool internal = code == absl::StatusCode::kInternal ||
                        code == absl::StatusCode::kUnknown ||
                        code == absl::StatusCode::kDataLoss ||
                        code == absl::StatusCode::kUnavailable ||
                        status.GetPayload(kInternalDetailPayload).has_value();
  if (status.ok() || !internal) return status;
  const std::string id = NewErrorId();
  LogLine("error", ProcessService(), "failure (clients see its error id)",
          {{"error_id", id},
           {"code", absl::StatusCodeToString(code)},
           {"error", std::string(status.message())}});
  std::string context;
  if (auto c = status.GetPayload(kContextPayload); c.has_value())
    context = std::string(*c);
  return absl::Status(
      code, absl::StrCat(context, PublicMessage(code), " (error id ", id, ")"));
}

grpc::Status ToGrpcStatus(const absl::Status& original) {
  if (original.ok()) return grpc::Status::OK;
  const absl::Status status = Redacted(original);
  const auto code = static_cast<grpc::StatusCode>(status.code());
  const std::string message(status.message());
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (violations.empty()) return grpc::Status(code, message);
  google::rpc::Status rpc_status;
  rpc_status.set_code(static_cast<int>(code));
  rpc_status.set_message(message);
  rpc_status.add_details()->PackFrom(ToBadRequest(violations));
  return grpc::Status(code, message, rpc_status.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  google::rpc::Status rpc_status;
  if (!status.error_details().empty() &&
      rpc_status.ParseFromString(status.error_details())) {
    std::vector<FieldViolation> violations;
    for (const auto& any : rpc_status.details()) {
      google::rpc::BadRequest bad_request;
      if (!any.UnpackTo(&bad_request)) continue;
      for (const auto& fv : bad_request.field_violations()) {
        violations.push_back({fv.field(), fv.description()});
      }
    }
    if (!violations.empty() && code == absl::StatusCode::kInvalidArgument) {
      return InvalidFields(violations);
    }
  }
  return absl::Status(code, status.error_message());
}

bool IsPassing(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status) ||
         absl::IsResourceExhausted(status) || absl::IsAborted(status);
}

absl::Status Prefixed(const absl::Status& status, absl::string_view what) {
  if (status.ok()) return status;
  absl::Status out(status.code(), absl::StrCat(what, ": ", status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  std::string context = absl::StrCat(what, ": ");
  if (auto c = status.GetPayload(kContextPayload); c.has_value())
    context += std::string(*c);
  out.SetPayload(kContextPayload, absl::Cord(context));
  return out;
}

}  // namespace rapport
