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

#include <optional>
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

// What a reference in a request or an import row names: an entity by its id,
// or by one identity. Exactly one of the members is set.
struct EntityRef {
  std::string id;
  std::string email;  // normalised (NormalizeEmail)
  std::string phone;  // E.164 (NormalizePhone)
  struct External {
    std::string source;
    std::string id;
  };
  std::optional<External> external;
};

// Which identities a counterpart's references may use besides its ids.
struct RefKinds {
  bool email = true;
  bool phone = true;
  bool external = true;
};

// Parses "ID", "email:ADDRESS", "phone:NUMBER" or "ext:SOURCE:ID" (the
// external id may itself hold colons). `noun` names the entity in errors
// ("customer"); errors name `field`. A source is at most 64 bytes, an
// external id 256.
absl::StatusOr<EntityRef> ParseEntityRef(absl::string_view ref,
                                         absl::string_view field,
                                         absl::string_view noun,
                                         absl::string_view phone_region = "US",
                                         RefKinds kinds = {});

// True when libphonenumber knows `region` (used to validate configuration).
bool IsKnownPhoneRegion(absl::string_view region);

// The key under which two emails are likely the same person: lower case, the
// "+tag" of the local part dropped, and for Gmail addresses the dots too
// ("A.da+news@GMAIL.com" and "ada@gmail.com" share "ada@gmail.com").
std::string EmailMatchKey(absl::string_view email);

// The key firms are matched on by name: case-folded and normalised
// (Unicode NFKC_Casefold), letters and digits of each word, legal forms at
// the end dropped ("ACME, Inc." -> "acme", "Müller GmbH & Co. KG" ->
// "müller", "SOCIÉTÉ GÉNÉRALE" -> "société générale"), at most 256
// characters; "" when nothing is left. Its own key.
std::string FirmNameKey(absl::string_view name);

}  // namespace rapport

#endif  // RAPPORT_COMMON_IDENTITY_H_
