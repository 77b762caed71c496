// Checks of common field shapes, shared by every service's logic.
//
//   if (!IsValidUtf8(name)) return InvalidField("customer.display_name", "is
//   not valid UTF-8");
#ifndef RAPPORT_COMMON_VALIDATION_H_
#define RAPPORT_COMMON_VALIDATION_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

// Bounds on what one caller may send, the same for every counterpart: a
// record's external ids and attributes, and the rows of one message of a
// streamed import (a client sends more rows in more messages).
inline constexpr int kMaxExternalIds = 20;
inline constexpr int kMaxAttributes = 100;
inline constexpr int kMaxRowsPerMessage = 10000;

// True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// Required text field: non-empty, at most max_bytes, valid UTF-8, no control
// characters. The error names `field`.
absl::Status CheckRequiredText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);
// The same, but empty is allowed.
absl::Status CheckOptionalText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);

// A stable 64-bit digest (FNV-1a) as 16 hex digits, for request hashes and
// checksums; not for security.
std::string Fingerprint(absl::string_view data);

}  // namespace rapport

#endif  // RAPPORT_COMMON_VALIDATION_H_
