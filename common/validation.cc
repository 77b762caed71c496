#include "common/validation.h"

#include <phonenumbers/phonenumberutil.h>

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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

absl::Status CheckOptionalText(absl::string_view value, absl::string_view field,
                               size_t max_bytes) {
  if (value.size() > max_bytes) {
    return InvalidField(field,
                        absl::StrCat("is longer than ", max_bytes, " bytes"));
  }
  if (!IsValidUtf8(value)) return InvalidField(field, "is not valid UTF-8");
  for (unsigned char c : value) {
    if (c < 0x20 || c == 0x7F)
      return InvalidField(field, "contains a control character");
  }
  return absl::OkStatus();
}

absl::Status CheckRequiredText(absl::string_view value, absl::string_view field,
                               size_t max_bytes) {
  if (value.empty()) return InvalidField(field, "is required");
  return CheckOptionalText(value, field, max_bytes);
}

absl::StatusOr<std::string> NormalizeEmail(absl::string_view email,
                                           absl::string_view field) {
  absl::string_view e = absl::StripAsciiWhitespace(email);
  if (e.size() > 320) return InvalidField(field, "is longer than 320 bytes");
  const size_t at = e.find('@');
  if (at == absl::string_view::npos || at == 0 ||
      e.find('@', at + 1) != absl::string_view::npos) {
    return InvalidField(field, "must have the form name@domain");
  }
  absl::string_view domain = e.substr(at + 1);
  const size_t dot = domain.rfind('.');
  if (domain.empty() || dot == absl::string_view::npos || dot == 0 ||
      dot + 1 == domain.size() ||
      domain.find("..") != absl::string_view::npos) {
    return InvalidField(field, "must have a domain such as example.com");
  }
  for (unsigned char c : e) {
    if (c <= 0x20 || c == 0x7F || c == ',' || c == ';' || c == '<' ||
        c == '>') {
      return InvalidField(
          field, "must not contain spaces, control characters or , ; < >");
    }
  }
  if (!IsValidUtf8(e)) return InvalidField(field, "is not valid UTF-8");
  return std::string(e);
}

absl::StatusOr<std::string> NormalizePhone(absl::string_view phone,
                                           absl::string_view field,
                                           absl::string_view region) {
  using i18n::phonenumbers::PhoneNumber;
  using i18n::phonenumbers::PhoneNumberUtil;
  absl::string_view p = absl::StripAsciiWhitespace(phone);
  if (p.empty()) return InvalidField(field, "is empty");
  for (char c : p) {
    if (!absl::ascii_isdigit(c) && c != '+' && c != ' ' && c != '-' &&
        c != '.' && c != '(' && c != ')') {
      return InvalidField(field,
                          absl::StrCat("has a character that is not a digit: '",
                                       absl::CEscape(std::string(1, c)), "'"));
    }
  }
  const PhoneNumberUtil* util = PhoneNumberUtil::GetInstance();
  PhoneNumber number;
  if (util->Parse(std::string(p), std::string(region), &number) !=
      PhoneNumberUtil::NO_PARSING_ERROR) {
    return InvalidField(field, "is not a phone number");
  }
  if (!util->IsValidNumber(number)) {
    return InvalidField(
        field,
        absl::StrCat("is not a valid phone number",
                     p[0] == '+' ? "" : absl::StrCat(" in region ", region),
                     "; give it in E.164 form such as +14155550100"));
  }
  std::string e164;
  util->Format(number, PhoneNumberUtil::E164, &e164);
  return e164;
}

bool IsKnownPhoneRegion(absl::string_view region) {
  std::set<std::string> regions;
  i18n::phonenumbers::PhoneNumberUtil::GetInstance()->GetSupportedRegions(
      &regions);
  return regions.count(std::string(region)) > 0;
}

std::string EmailMatchKey(absl::string_view email) {
  std::string e = absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
  const size_t at = e.rfind('@');
  if (at == std::string::npos) return e;
  std::string local = e.substr(0, at);
  std::string domain = e.substr(at + 1);
  if (size_t plus = local.find('+'); plus != std::string::npos)
    local.resize(plus);
  if (domain == "gmail.com" || domain == "googlemail.com") {
    local.erase(std::remove(local.begin(), local.end(), '.'), local.end());
    domain = "gmail.com";
  }
  return absl::StrCat(local, "@", domain);
}

std::string Fingerprint(absl::string_view data) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", h);
}

}  // namespace rapport
