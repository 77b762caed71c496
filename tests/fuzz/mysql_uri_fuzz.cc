// Database URIs (--mysql_uri, RAPPORT_MYSQL_URI): any text parses or is
// refused; what parses has a port and a database, and its redacted form
// (for logs) does not depend on the password.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/mysql/mysql_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<rapport::MysqlOptions> o =
      rapport::MysqlOptions::FromUri(text);
  if (!o.ok()) {
    // A bad URI is the operator's input to fix, said as such.
    if (o.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
    return 0;
  }
  if (o->port <= 0 || o->port > 65535) __builtin_trap();
  if (o->database.empty()) __builtin_trap();
  // The password has no part in the redacted form: another password gives
  // the same text.
  rapport::MysqlOptions other = *o;
  other.password = o->password + "x";
  if (other.Redacted() != o->Redacted()) __builtin_trap();
  return 0;
}
