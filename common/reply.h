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

#include <grpcpp/support/status.h>

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

}  // namespace rapport

#endif  // RAPPORT_COMMON_REPLY_H_
