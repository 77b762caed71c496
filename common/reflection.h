// Server reflection (grpc.reflection.v1 and v1alpha, as grpcurl and other
// tools use them) for the services of one server, behind the same bearer
// tokens as the services themselves: any role may list and describe them.
// gRPC's own reflection plugin cannot be guarded, so Rapport serves its own,
// from the descriptors linked into the binary.
//
//   std::vector<std::unique_ptr<grpc::Service>> reflection =
//       NewReflectionServices(verifier.get(),
//                             {"rapport.customer.v1.CustomerService"});
#ifndef RAPPORT_COMMON_REFLECTION_H_
#define RAPPORT_COMMON_REFLECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "common/auth/jwt.h"

namespace rapport {

// The full names of the reflection services, for health and role tables.
inline constexpr char kReflectionV1[] = "grpc.reflection.v1.ServerReflection";
inline constexpr char kReflectionV1Alpha[] =
    "grpc.reflection.v1alpha.ServerReflection";

// Both reflection services, describing `services` (full names) and the
// reflection services themselves; calls need a token `verifier` accepts.
std::vector<std::unique_ptr<grpc::Service>> NewReflectionServices(
    const auth::TokenVerifier* verifier, std::vector<std::string> services);

}  // namespace rapport

#endif  // RAPPORT_COMMON_REFLECTION_H_
