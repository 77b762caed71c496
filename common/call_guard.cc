#include "common/call_guard.h"

#include <google/protobuf/descriptor.h>

#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace rapport {

MethodRoles::MethodRoles(
    std::string service,
    std::initializer_list<std::pair<const char*, auth::Role>> roles)
    : service_(std::move(service)) {
  for (const auto& [method, role] : roles) roles_[method] = role;
}

auth::Role MethodRoles::Of(absl::string_view method) const {
  auto it = roles_.find(method);
  return it == roles_.end() ? auth::Role::kNone : it->second;
}

absl::Status MethodRoles::Check() const {
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          service_);
  if (service == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no service ", service_, " is linked in"));
  }
  std::set<std::string> declared;
  for (int i = 0; i < service->method_count(); ++i)
    declared.insert(service->method(i)->name());
  std::vector<std::string> unguarded, unknown;
  for (const std::string& m : declared) {
    if (Of(m) == auth::Role::kNone) unguarded.push_back(m);
  }
  for (const auto& [m, role] : roles_) {
    if (!declared.contains(m)) unknown.push_back(m);
    if (role == auth::Role::kNone) unguarded.push_back(m);
  }
  if (unguarded.empty() && unknown.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      service_, ": methods without a role: [", absl::StrJoin(unguarded, ", "),
      "]; roles of no method: [", absl::StrJoin(unknown, ", "), "]"));
}

absl::StatusOr<auth::Principal> CallGuard::Authorize(
    const grpc::ServerContextBase& context, absl::string_view method,
    bool force) const {
  absl::string_view authorization;
  const auto& metadata = context.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  absl::StatusOr<auth::Principal> caller = verifier_->Verify(authorization);
  if (!caller.ok()) return caller.status();
  auth::Role needed = roles_.Of(method);
  if (needed == auth::Role::kNone) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, " is not open to any role"));
  }
  if (force) needed = auth::Role::kAdmin;
  if (caller->role < needed) {
    return absl::PermissionDeniedError(
        absl::StrCat(method, force ? " with force" : "", " needs the ",
                     auth::RoleName(needed), " role"));
  }
  return caller;
}

}  // namespace rapport
