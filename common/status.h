// Status helpers shared by every service and client.
//
// Inside Rapport, errors are absl::Status. Bad input carries the fields it is
// about as a google.rpc.BadRequest payload, so that the one conversion at the
// gRPC edge can put them in the status details, where any gRPC client reads
// them.
//
//   if (name.empty()) return rapport::InvalidField("customer.display_name", "is
//   required");
//   ...
//   return rapport::ToGrpcStatus(status);          // in a service adapter
//   absl::Status s = rapport::FromGrpcStatus(rpc);  // in a client
#ifndef RAPPORT_COMMON_STATUS_H_
#define RAPPORT_COMMON_STATUS_H_

#include <grpcpp/support/status.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rapport {

// One field of a request that is wrong, and why.
struct FieldViolation {
  std::string field;        // e.g. "purchase.amount" or "row 12: amount"
  std::string description;  // e.g. "must be a decimal number"
};

// INVALID_ARGUMENT naming one field: the message reads "<field>:
// <description>".
absl::Status InvalidField(absl::string_view field,
                          absl::string_view description);

// INVALID_ARGUMENT naming several fields; the message lists them, up to
// kMaxFieldViolationsShown, then a "request" violation saying how many more
// there are (an answer stays within a client's metadata limit).
inline constexpr size_t kMaxFieldViolationsShown = 20;
absl::Status InvalidFields(const std::vector<FieldViolation>& violations);

// The field violations a status carries (empty when it carries none).
std::vector<FieldViolation> FieldViolations(const absl::Status& status);

// The same status with `prefix` taken off the front of its violations'
// fields ("partner.display_name" -> "display_name"): for a request that
// checks its fields as another message's. Statuses without violations pass
// unchanged.
absl::Status WithoutFieldPrefix(const absl::Status& status,
                                absl::string_view prefix);

// True for what another attempt may cure: a database or a peer away, slow or
// busy (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED), or a transaction
// that lost a race (ABORTED). For work in the background that tries again.
bool IsPassing(const absl::Status& status);

// The same status with its message prefixed by "<what>: ", payloads (field
// violations) kept: for saying where an error came from. The prefix stays
// when Redacted hides the rest ("scoring service: temporarily unavailable").
absl::Status Prefixed(const absl::Status& status, absl::string_view what);

// Marks a status whose message holds internal detail (SQL text, SQLSTATE,
// hosts): the database layer marks every status it makes from an exception.
absl::Status MarkInternal(absl::Status status);

// The status as a client may see it. Internal failures (INTERNAL, UNKNOWN,
// DATA_LOSS, UNAVAILABLE, and any status marked by MarkInternal) get a
// generic message with an error id; the original is logged under that id
// (with ProcessService()), so an operator finds it and no client learns the
// SQL, the SQLSTATE or a host. Other statuses are returned as they are.
absl::Status Redacted(const absl::Status& status);

// The one conversion from absl::Status to grpc::Status, for servers: the
// status Redacted, its field violations as google.rpc.BadRequest inside a
// google.rpc.Status.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The one conversion from grpc::Status to absl::Status, for clients. Field
// violations in the details come back as the payload InvalidFields sets.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace rapport

#endif  // RAPPORT_COMMON_STATUS_H_
