// Checks of common field shapes, shared by every service's logic.
//
//   if (!IsValidUtf8(name)) return InvalidField("customer.display_name", "is
//   not valid UTF-8");
#ifndef RAPPORT_COMMON_VALIDATION_H_
#define RAPPORT_COMMON_VALIDATION_H_

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/status.h"

namespace rapport {

// Bounds on what one caller may send, the same for every counterpart: a
// record's external ids and attributes, and the rows of one message of a
// streamed import (a client sends more rows in more messages).
inline constexpr int kMaxExternalIds = 20;
inline constexpr int kMaxAttributes = 100;
inline constexpr int kMaxRowsPerMessage = 10000;

// True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(absl::string_view s);
// The longest prefix of `s` (UTF-8) of at most `max_bytes` bytes that does
// not cut a character in two.
std::string Utf8Prefix(absl::string_view s, size_t max_bytes);

// Required text field: not empty nor only white space, at most max_bytes,
// valid UTF-8, no control characters. The error names `field`.
absl::Status CheckRequiredText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);
// The same, but empty is allowed.
absl::Status CheckOptionalText(absl::string_view value, absl::string_view field,
                               size_t max_bytes);
// A note: optional, and it may span lines (a CSV field may hold line breaks
// and tabs); no other control character.
absl::Status CheckNoteText(absl::string_view value, absl::string_view field,
                           size_t max_bytes);

// A required text that is a key: as CheckRequiredText, and it neither begins
// nor ends with white space (MariaDB compares keys ignoring trailing spaces,
// so "A1 " would find "A1" there and not here).
absl::Status CheckKeyText(absl::string_view value, absl::string_view field,
                          size_t max_bytes);

// The external ids of a record (any message with source() and id()), as
// (source, id) pairs in `out`: at most kMaxExternalIds, each part text (a
// source up to 64 bytes without ':', an id up to 256), none twice. Every
// problem is added to `violations` under `field` ("partner.external_ids").
template <typename ExternalIds>
void ReadExternalIds(const ExternalIds& in, absl::string_view field,
                     std::vector<std::pair<std::string, std::string>>* out,
                     std::vector<FieldViolation>* violations);
// The attributes of a record: at most kMaxAttributes, keys 1..64 bytes,
// values up to 1024, in `out`; problems as above.
template <typename Attributes>
void ReadAttributes(const Attributes& in, absl::string_view field,
                    std::map<std::string, std::string>* out,
                    std::vector<FieldViolation>* violations);

// Gives `wanted` the order of `stored` when it holds the same elements in
// another order (a list whose order means nothing, such as external ids,
// sent again as it is stored), so that comparing the two records sees no
// change.
template <typename T>
void KeepStoredOrder(std::vector<T>& wanted, const std::vector<T>& stored) {
  if (std::is_permutation(wanted.begin(), wanted.end(), stored.begin(),
                          stored.end())) {
    wanted = stored;
  }
}

// Appends the field violations of `status` (one of the checks above) to
// `violations`; nothing when it is OK. A status without violations adds its
// message under the field "request".
void AddViolations(const absl::Status& status,
                   std::vector<FieldViolation>* violations);

// A stable 64-bit digest as 16 hex digits, for request hashes and checksums;
// not for security. FNV-1a's steps, from the offset basis
// 1469598103934665603: the published one (14695981039346656037) without its
// last digit. Fingerprints are stored, so it stays as it is.
std::string Fingerprint(absl::string_view data);

// What a fingerprint is made from when a record has several fields: joined
// by '|', each '|' and '\\' in a field escaped with '\\', so that no two
// records give one text ("a|b", "c" and "a", "b|c" differ). Fields without
// either character give the plain join (fingerprints stored before stay).
std::string FingerprintContent(std::initializer_list<absl::string_view> fields);

// ---- implementation
// ----------------------------------------------------------

namespace validation_internal {
// A key as a message may echo it: valid UTF-8, at most 64 bytes (cut with
// "...", or in hex escapes when it is not UTF-8).
std::string Shown(absl::string_view key);
void CountViolation(size_t count, size_t most, absl::string_view field,
                    std::vector<FieldViolation>* violations);
}  // namespace validation_internal

template <typename ExternalIds>
void ReadExternalIds(const ExternalIds& in, absl::string_view field,
                     std::vector<std::pair<std::string, std::string>>* out,
                     std::vector<FieldViolation>* violations) {
  out->clear();
  validation_internal::CountViolation(in.size(), kMaxExternalIds, field,
                                      violations);
  std::set<std::pair<std::string, std::string>> seen;
  for (int i = 0; i < in.size(); ++i) {
    const auto& e = in.Get(i);
    const std::string at = absl::StrCat(field, "[", i, "]");
    absl::Status source = CheckKeyText(e.source(), at + ".source", 64);
    absl::Status id = CheckKeyText(e.id(), at + ".id", 256);
    AddViolations(source, violations);
    AddViolations(id, violations);
    if (!source.ok() || !id.ok()) continue;
    if (e.source().find(':') != std::string::npos) {
      violations->push_back({at + ".source", "must not contain ':'"});
    } else if (!seen.insert({e.source(), e.id()}).second) {
      violations->push_back({at, "is listed twice"});
    } else {
      out->emplace_back(e.source(), e.id());
    }
  }
}

template <typename Attributes>
void ReadAttributes(const Attributes& in, absl::string_view field,
                    std::map<std::string, std::string>* out,
                    std::vector<FieldViolation>* violations) {
  out->clear();
  validation_internal::CountViolation(in.size(), kMaxAttributes, field,
                                      violations);
  for (const auto& [key, value] : in) {
    const std::string at =
        absl::StrCat(field, "[\"", validation_internal::Shown(key), "\"]");
    // A key, as the database compares it: trailing spaces would make two
    // keys one.
    absl::Status k = CheckKeyText(key, at + " key", 64);
    absl::Status v = CheckOptionalText(value, at, 1024);
    AddViolations(k, violations);
    AddViolations(v, violations);
    if (k.ok() && v.ok()) (*out)[key] = value;
  }
}

}  // namespace rapport

#endif  // RAPPORT_COMMON_VALIDATION_H_
