// Page tokens come back from clients, who may send anything: any bytes
// decode to a key or an error; a token the service made decodes to its key
// under its own filter only.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/paging.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A token refused is the caller's error, never an internal one.
  for (const char* filter : {"", "tier=gold"}) {
    absl::StatusOr<std::string> decoded =
        rapport::DecodePageToken(text, filter);
    if (!decoded.ok() &&
        decoded.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
  }
  const std::string half = text.substr(0, size / 2);
  const std::string filter = text.substr(size / 2);
  const std::string token = rapport::EncodePageToken(half, filter);
  absl::StatusOr<std::string> key = rapport::DecodePageToken(token, filter);
  if (!key.ok() || *key != half) __builtin_trap();
  if (rapport::DecodePageToken(token, filter + "x").ok()) __builtin_trap();
  (void)rapport::PageSize(static_cast<int>(size) - 100);
  return 0;
}
