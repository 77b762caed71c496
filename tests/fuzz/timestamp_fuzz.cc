// RFC 3339 timestamps as the APIs, imports and rapportctl read them: any
// text parses or is refused; a parsed time formats to a text that parses to
// the same instant.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/base/timestamp.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<int64_t> micros = rapport::ParseRfc3339Micros(text);
  if (!micros.ok()) return 0;
  const std::string printed = rapport::FormatRfc3339Micros(*micros);
  absl::StatusOr<int64_t> again = rapport::ParseRfc3339Micros(printed);
  if (!again.ok() || *again != *micros) __builtin_trap();
  (void)rapport::FloorDays(*micros);
  return 0;
}
