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

// True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);

// Required text field: non-empty, at most max_bytes, valid UTF-8, no control
// characters. The error names `field`.
absl::Status CheckRequiredText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);
// The same, but empty is allowed.
absl::Status CheckOptionalText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);

// An email address of the plain form local@domain.tld, returned trimmed.
absl::StatusOr<std::string> NormalizeEmail(absl::string_view email,
                                           absl::string_view field);

// A phone number, normalised to E.164 ("+14155550100") with libphonenumber.
// A number without "+" is read as a national number of `region` (ISO 3166
// alpha-2, e.g. "US" or "GB"). Spaces, dashes, dots and parentheses are
// allowed; letters are not; a number that is not valid for its country is
// INVALID_ARGUMENT naming `field`.
absl::StatusOr<std::string> NormalizePhone(absl::string_view phone,
                                           absl::string_view field,
                                           absl::string_view region = "US");

// True when libphonenumber knows `region` (used to validate configuration).
bool IsKnownPhoneRegion(absl::string_view region);

// The key under which two emails are likely the same person: lower case, the
// "+tag" of the local part dropped, and for Gmail addresses the dots too
// ("A.da+news@GMAIL.com" and "ada@gmail.com" share "ada@gmail.com").
std::string EmailMatchKey(absl::string_view email);

// A stable 64-bit digest (FNV-1a) as 16 hex digits, for request hashes and
// checksums; not for security.
std::string Fingerprint(absl::string_view data);

}  // namespace rapport

#endif  // RAPPORT_COMMON_VALIDATION_H_
