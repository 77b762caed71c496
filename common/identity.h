// Identities as people give them, in the one form Rapport keeps: email
// addresses trimmed and checked, phone numbers in E.164 (libphonenumber), and
// the keys that find likely duplicates. For the services that identify
// people and firms (customers, partners' contacts, the financial community).
//
//   RAPPORT_ASSIGN_OR_RETURN(std::string phone,
//                            NormalizePhone("020 7946 0958", "phone", "GB"));
//   // "+442079460958"
#ifndef RAPPORT_COMMON_IDENTITY_H_
#define RAPPORT_COMMON_IDENTITY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport {

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

}  // namespace rapport

#endif  // RAPPORT_COMMON_IDENTITY_H_
