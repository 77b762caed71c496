// Who may call what. Every RPC of every service is checked here: its bearer
// token must verify (auth::TokenVerifier), and the caller's role must be at
// least the one the service's table names for the method (admin whenever the
// call uses `force`). A service keeps its table next to its adapter, and its
// adapter asks first thing in every method:
//
//   grpc::Status PartnerServiceImpl::DeletePartner(
//       grpc::ServerContext* context, const v1::DeletePartnerRequest* request,
//       v1::DeletePartnerResponse*) {
//     RAPPORT_AUTHORIZE(caller, *guard_, *context, "DeletePartner",
//                       request->force());
//     return ToGrpcStatus(logic_->DeletePartner(*request, caller.subject));
//   }
//
// MethodRoles::Check (a test of each service calls it) says whether the table
// names every RPC of the service, so that a new RPC cannot be added unguarded.
#ifndef RAPPORT_COMMON_CALL_GUARD_H_
#define RAPPORT_COMMON_CALL_GUARD_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <initializer_list>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/auth/jwt.h"
#include "common/reply.h"
#include "common/status.h"

namespace rapport {

// The least role each method of one service needs.
class MethodRoles {
 public:
  // `service`: the full name, e.g. "rapport.customer.v1.CustomerService".
  MethodRoles(std::string service,
              std::initializer_list<std::pair<const char*, auth::Role>> roles);

  const std::string& service() const { return service_; }
  // The method's least role; kNone for a method the table does not name
  // (refused).
  auth::Role Of(absl::string_view method) const;
  // OK when the table names every method of the service (as the generated
  // code describes it) and nothing else; else FAILED_PRECONDITION listing the
  // differences.
  absl::Status Check() const;

 private:
  std::string service_;
  absl::flat_hash_map<std::string, auth::Role> roles_;
};

class CallGuard {
 public:
  // `verifier` must outlive the guard.
  CallGuard(const auth::TokenVerifier* verifier, MethodRoles roles)
      : verifier_(verifier), roles_(std::move(roles)) {}

  // The caller of a call to `method`: UNAUTHENTICATED when the call's
  // `authorization` metadata holds no valid token (the message says which
  // check failed, never the token's content), PERMISSION_DENIED naming the
  // role needed when the caller's role is less than the method's (admin when
  // `force`).
  absl::StatusOr<auth::Principal> Authorize(
      const grpc::ServerContextBase& context, absl::string_view method,
      bool force = false) const;

  const MethodRoles& roles() const { return roles_; }

 private:
  const auth::TokenVerifier* verifier_;
  MethodRoles roles_;
};

// The messages of a client stream whose first message may ask for `force`
// (an import's): the first is read ahead and, when it asks, the caller must
// be allowed `method` with force (PERMISSION_DENIED otherwise) before
// anything is imported; `*force` says whether it asked. The first message
// comes back first (MessagesAfter).
template <typename Request>
absl::StatusOr<std::function<bool(Request*)>> ForceableMessages(
    const CallGuard& guard, const grpc::ServerContextBase& context,
    absl::string_view method, grpc::ServerReader<Request>* reader,
    bool* force) {
  Request first;
  const bool has_first = reader->Read(&first);
  *force = has_first && first.force();
  if (*force) {
    absl::StatusOr<auth::Principal> admin =
        guard.Authorize(context, method, /*force=*/true);
    if (!admin.ok()) return admin.status();
  }
  return MessagesAfter(std::move(first), has_first, reader);
}

}  // namespace rapport

// Declares `var` (an auth::Principal) as the caller, or returns the refusal
// as a grpc::Status from the enclosing method.
#define RAPPORT_AUTHORIZE(var, guard, context, method, ...)             \
  absl::StatusOr<::rapport::auth::Principal> var##_or_refusal =         \
      (guard).Authorize((context), (method)__VA_OPT__(, ) __VA_ARGS__); \
  if (!var##_or_refusal.ok())                                           \
    return ::rapport::ToGrpcStatus(var##_or_refusal.status());          \
  [[maybe_unused]] const ::rapport::auth::Principal& var = *var##_or_refusal

#endif  // RAPPORT_COMMON_CALL_GUARD_H_
