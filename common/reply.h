// How a service adapter answers a call: the logic's result goes into the
// response when it is OK, and the status is converted once (ToGrpcStatus).
//
//   grpc::Status CustomerServiceImpl::CreateCustomer(...) {
//     return Reply(logic_->CreateCustomer(*request), [&](v1::Customer c) {
//       *response->mutable_customer() = std::move(c);
//     });
//   }
#ifndef RAPPORT_COMMON_REPLY_H_
#define RAPPORT_COMMON_REPLY_H_

#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>
#include <grpcpp/support/sync_stream.h>

#include <functional>
#include <utility>

#include "absl/status/statusor.h"
#include "common/status.h"

namespace rapport {

// Stores a successful result through `set`, and converts the status either
// way.
template <typename T, typename Set>
grpc::Status Reply(absl::StatusOr<T> result, Set set) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  set(*std::move(result));
  return grpc::Status::OK;
}

// For calls whose response is the result itself.
template <typename T>
grpc::Status ReplyWith(absl::StatusOr<T> result, T* response) {
  return Reply(std::move(result), [&](T r) { *response = std::move(r); });
}

// A client stream as an importer reads it: each call fills the next message,
// false at the end of the stream.
template <typename Request>
std::function<bool(Request*)> MessagesOf(grpc::ServerReader<Request>* reader) {
  return [reader](Request* message) { return reader->Read(message); };
}

// The same, for a stream whose first message was read ahead (`has_first`:
// there was one), to authorize what it asks before importing: `first`
// comes back first, then the rest of the stream.
template <typename Request>
std::function<bool(Request*)> MessagesAfter(
    Request first, bool has_first, grpc::ServerReader<Request>* reader) {
  return [reader, first = std::move(first), has_first,
          pending = has_first](Request* message) mutable {
    if (pending) {
      pending = false;
      *message = std::move(first);
      return true;
    }
    return has_first && reader->Read(message);
  };
}

// Whether the call has ended already (cancelled by its client, or past the
// server's deadline): an importer asks once the stream ends.
inline std::function<bool()> CancelledOf(grpc::ServerContext* context) {
  return [context] { return context->IsCancelled(); };
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_REPLY_H_
