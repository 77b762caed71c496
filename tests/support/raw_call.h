// A call any client could make, by path, without the service's stubs:
// CallRaw(address, "/pkg.Service/Method", authorization) sends one message
// (empty, or the serialized `message`) with that authorization header (none
// when empty) and gives the call's status.
//
//   grpc::Status s = CallRaw(addr, "/x.Y/Z", "");  // UNAUTHENTICATED, ...
#ifndef RAPPORT_TESTS_SUPPORT_RAW_CALL_H_
#define RAPPORT_TESTS_SUPPORT_RAW_CALL_H_

#include <grpcpp/grpcpp.h>

#include <string>

namespace rapport::testing {

grpc::Status CallRaw(const std::string& address, const std::string& method,
                     const std::string& authorization,
                     const std::string& message = "");

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_RAW_CALL_H_
