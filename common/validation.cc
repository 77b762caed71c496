#include "common/validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/base/status_macros.h"
#include "common/status.h"

namespace rapport {

bool IsValidUtf8(absl::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += len;
  }
  return true;
}

std::string Utf8Prefix(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t end = max_bytes;
  // Back off over continuation bytes (10xxxxxx) to a character's first byte.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return std::string(s.substr(0, end));
}

namespace {

absl::Status CheckText(absl::string_view value, absl::string_view field,
                       size_t max_bytes, bool lines) {
  if (value.size() > max_bytes) {
    return InvalidField(field,
                        absl::StrCat("is longer than ", max_bytes, " bytes"));
  }
  if (!IsValidUtf8(value)) return InvalidField(field, "is not valid UTF-8");
  for (unsigned char c : value) {
    if (lines && (c == '\n' || c == '\r' || c == '\t')) continue;
    if (c < 0x20 || c == 0x7F)
      return InvalidField(field, "contains a control character");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckOptionalText(absl::string_view value, absl::string_view field,
                               size_t max_bytes) {
  return CheckText(value, field, max_bytes, /*lines=*/false);
}

absl::Status CheckNoteText(absl::string_view value, absl::string_view field,
                           size_t max_bytes) {
  return CheckText(value, field, max_bytes, /*lines=*/true);
}

absl::Status CheckRequiredText(absl::string_view value, absl::string_view field,
                               size_t max_bytes) {
  if (value.empty()) return InvalidField(field, "is required");
  // What is stored trimmed would be empty.
  if (absl::StripAsciiWhitespace(value).empty()) {
    return InvalidField(field, "is required, and is only white space");
  }
  return CheckOptionalText(value, field, max_bytes);
}

absl::Status CheckKeyText(absl::string_view value, absl::string_view field,
                          size_t max_bytes) {
  RAPPORT_RETURN_IF_ERROR(CheckRequiredText(value, field, max_bytes));
  if (absl::ascii_isspace(static_cast<unsigned char>(value.front())) ||
      absl::ascii_isspace(static_cast<unsigned char>(value.back()))) {
    return InvalidField(field, "must not begin or end with white space");
  }
  return absl::OkStatus();
}

std::string FingerprintContent(
    std::initializer_list<absl::string_view> fields) {
  std::string out;
  bool first = true;
  for (absl::string_view field : fields) {
    if (!first) out.push_back('|');
    first = false;
    for (char c : field) {
      if (c == '|' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
  }
  return out;
}

std::string Fingerprint(absl::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", h);
}

void AddViolations(const absl::Status& status,
                   std::vector<FieldViolation>* violations) {
  if (status.ok()) return;
  std::vector<FieldViolation> v = FieldViolations(status);
  if (v.empty()) v.push_back({"request", std::string(status.message())});
  violations->insert(violations->end(), v.begin(), v.end());
}

namespace validation_internal {

std::string Shown(absl::string_view key) {
  constexpr size_t kMost = 64;
  if (!IsValidUtf8(key)) {
    return absl::StrCat(absl::CHexEscape(key.substr(0, kMost / 4)),
                        key.size() > kMost / 4 ? "..." : "");
  }
  if (key.size() <= kMost) return std::string(key);
  return absl::StrCat(Utf8Prefix(key, kMost), "...");
}

void CountViolation(size_t count, size_t most, absl::string_view field,
                    std::vector<FieldViolation>* violations) {
  if (count <= most) return;
  violations->push_back(
      {std::string(field), absl::StrCat("has ", count, " entries; at most ",
                                        most, " are allowed")});
}

}  // namespace validation_internal

}  // namespace rapport
