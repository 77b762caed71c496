#include "common/identity.h"

#include <phonenumbers/phonenumberutil.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <array>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/ids.h"
#include "common/status.h"
#include "common/validation.h"

namespace rapport {

namespace {

// A character that shows as space or as nothing: no-break and other Unicode
// spaces, line and paragraph separators, control and format characters
// (zero-width spaces and joiners, the byte order mark, direction marks).
// Spreadsheet exports leave them around addresses.
bool Invisible(UChar32 c) {
  if (u_isUWhiteSpace(c)) return true;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR:
    case U_FORMAT_CHAR:
    case U_SPACE_SEPARATOR:
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR:
      return true;
    default:
      return false;
  }
}

// `text` (valid UTF-8) without the invisible characters at its ends.
absl::string_view StripInvisible(absl::string_view text) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t n = static_cast<int32_t>(text.size());
  int32_t begin = 0;
  while (begin < n) {
    int32_t next = begin;
    UChar32 c;
    U8_NEXT(s, next, n, c);
    if (!Invisible(c)) break;
    begin = next;
  }
  int32_t end = n;
  while (end > begin) {
    int32_t before = end;
    UChar32 c;
    U8_PREV(s, 0, before, c);
    if (!Invisible(c)) break;
    end = before;
  }
  return text.substr(begin, end - begin);
}

}  // namespace

absl::StatusOr<std::string> NormalizeEmail(absl::string_view email,
                                           absl::string_view field) {
  if (!IsValidUtf8(email)) return InvalidField(field, "is not valid UTF-8");
  absl::string_view e = StripInvisible(email);
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
  const auto* s = reinterpret_cast<const uint8_t*>(e.data());
  const int32_t n = static_cast<int32_t>(e.size());
  for (int32_t i = 0; i < n;) {
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (Invisible(c) || c == ',' || c == ';' || c == '<' || c == '>') {
      return InvalidField(
          field, "must not contain spaces, control characters or , ; < >");
    }
  }
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

absl::StatusOr<EntityRef> ParseEntityRef(absl::string_view ref,
                                         absl::string_view field,
                                         absl::string_view noun,
                                         absl::string_view phone_region,
                                         RefKinds kinds) {
  if (ref.empty()) return InvalidField(field, "is empty");
  EntityRef out;
  if (kinds.email && absl::ConsumePrefix(&ref, "email:")) {
    absl::StatusOr<std::string> email = NormalizeEmail(ref, field);
    if (!email.ok()) return email.status();
    out.email = *std::move(email);
    return out;
  }
  if (kinds.phone && absl::ConsumePrefix(&ref, "phone:")) {
    absl::StatusOr<std::string> phone =
        NormalizePhone(ref, field, phone_region);
    if (!phone.ok()) return phone.status();
    out.phone = *std::move(phone);
    return out;
  }
  if (kinds.external && absl::ConsumePrefix(&ref, "ext:")) {
    const size_t colon = ref.find(':');
    if (colon == absl::string_view::npos || colon == 0 ||
        colon + 1 == ref.size()) {
      return InvalidField(field, "must be ext:SOURCE:ID");
    }
    EntityRef::External e{std::string(ref.substr(0, colon)),
                          std::string(ref.substr(colon + 1))};
    if (absl::Status s = CheckKeyText(e.source, field, 64); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckKeyText(e.id, field, 256); !s.ok()) {
      return s;
    }
    out.external = std::move(e);
    return out;
  }
  if (IsValidId(ref)) {
    out.id = std::string(ref);
    return out;
  }
  std::string forms;
  if (kinds.email) absl::StrAppend(&forms, "email:..., ");
  if (kinds.phone) absl::StrAppend(&forms, "phone:..., ");
  if (kinds.external) absl::StrAppend(&forms, "ext:SOURCE:ID, ");
  forms = forms.empty() ? "" : forms.substr(0, forms.size() - 2);
  // Quoted only when short and printable: the reference is the caller's
  // input, and may be anything.
  const bool show = ref.size() <= 64 && IsValidUtf8(ref) &&
                    CheckRequiredText(ref, field, 64).ok();
  return InvalidField(
      field,
      absl::StrCat(show ? absl::StrCat("\"", ref, "\" ") : "", "is neither a ",
                   noun, " id", forms.empty() ? "" : " nor ", forms));
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

namespace {

// Legal forms dropped from the end of a firm's name for matching.
constexpr std::array<absl::string_view, 22> kLegalForms = {
    "inc", "incorporated", "corp", "corporation", "co",   "company",
    "ltd", "limited",      "llc",  "llp",         "plc",  "gmbh",
    "ag",  "kg",           "sa",   "sas",         "sarl", "srl",
    "spa", "bv",           "nv",   "oy"};

}  // namespace

namespace {

bool IsLegalForm(absl::string_view word) {
  return std::find(kLegalForms.begin(), kLegalForms.end(), word) !=
         kLegalForms.end();
}

// What a firm name key holds at most, in characters (the name_key columns'
// width): the last words go first.
constexpr size_t kMaxFirmKeyChars = 256;

// The words of a name, as FirmNameKey takes them from one pass: letters,
// digits and marks (an accent that composed with nothing stays with its
// letter), split at white space and at '&', ',', '/' and dashes; any other
// punctuation joins ("Co." is "co", "O'Neil" and "O’Neil" "oneil").
// ASCII text is lower-cased; any other is case-folded and normalised
// (NFKC_Casefold: "SOCIÉTÉ" and "société", decomposed or
// not, "Straße" and "STRASSE", full-width letters and plain ones, share
// a key). Each word with its length in characters.
std::vector<std::pair<std::string, size_t>> FirmWords(absl::string_view name) {
  std::vector<std::pair<std::string, size_t>> words;
  std::string word;
  size_t chars = 0;
  auto flush = [&] {
    if (!word.empty()) words.emplace_back(std::move(word), chars);
    word.clear();
    chars = 0;
  };
  const bool ascii = std::all_of(name.begin(), name.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x80;
  });
  if (ascii) {
    for (char c : name) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (absl::ascii_isalnum(u)) {
        word.push_back(static_cast<char>(absl::ascii_tolower(u)));
        ++chars;
      } else if (c == '&' || absl::ascii_isspace(u) || c == ',' || c == '-' ||
                 c == '/') {
        flush();
      }
    }
    flush();
    return words;
  }
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* fold =
      icu::Normalizer2::getNFKCCasefoldInstance(status);
  icu::UnicodeString text = icu::UnicodeString::fromUTF8(
      icu::StringPiece(name.data(), static_cast<int32_t>(name.size())));
  if (U_SUCCESS(status)) {
    icu::UnicodeString folded = fold->normalize(text, status);
    if (U_SUCCESS(status)) text = std::move(folded);
  }
  for (int32_t i = 0; i < text.length();) {
    const UChar32 c = text.char32At(i);
    i += U16_LENGTH(c);
    if ((U_GET_GC_MASK(c) & (U_GC_L_MASK | U_GC_N_MASK | U_GC_M_MASK)) != 0) {
      icu::UnicodeString(c).toUTF8String(word);
      ++chars;
    } else if (u_isUWhiteSpace(c) || c == '&' || c == ',' || c == '/' ||
               u_hasBinaryProperty(c, UCHAR_DASH)) {
      flush();
    }
  }
  flush();
  return words;
}

// One pass of FirmNameKey: the words, cut to kMaxFirmKeyChars, legal forms at
// the end dropped.
std::string FirmKeyPass(absl::string_view name) {
  std::vector<std::pair<std::string, size_t>> words = FirmWords(name);
  size_t chars = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    const size_t with = chars + (i > 0 ? 1 : 0) + words[i].second;
    if (with <= kMaxFirmKeyChars) {
      chars = with;
      continue;
    }
    if (i == 0) {  // one word longer than a key: its first characters
      icu::UnicodeString w = icu::UnicodeString::fromUTF8(words[0].first);
      w.truncate(w.moveIndex32(0, static_cast<int32_t>(kMaxFirmKeyChars)));
      words[0].first.clear();
      w.toUTF8String(words[0].first);
      i = 1;
    }
    words.resize(i);
    break;
  }
  while (words.size() > 1 && IsLegalForm(words.back().first)) words.pop_back();
  std::string key;
  for (const auto& [w, n] : words)
    absl::StrAppend(&key, key.empty() ? "" : " ", w);
  return key;
}

}  // namespace

std::string FirmNameKey(absl::string_view name) {
  // Dropping punctuation can bring together characters that normalise
  // further (a mark after a dropped dot): passes until the key is its own key.
  std::string key = FirmKeyPass(name);
  for (int pass = 0; pass < 4; ++pass) {
    std::string again = FirmKeyPass(key);
    if (again == key) break;
    key = std::move(again);
  }
  return key;
}

}  // namespace rapport
