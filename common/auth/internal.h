// Helpers shared by the files of common/auth: strict base64url, owning
// pointers for jansson and OpenSSL objects, strict JSON parsing.
//
// Not part of the library's API: include it only from common/auth/*.cc (and
// the library's tests).
//
//   std::optional<std::string> header = internal::Base64UrlDecode(segment);
//   internal::JsonPtr json = internal::ParseJsonObject(*header);
//   if (json == nullptr) return Malformed();
#ifndef RAPPORT_COMMON_AUTH_INTERNAL_H_
#define RAPPORT_COMMON_AUTH_INTERNAL_H_

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <unicode/unistr.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport::auth::internal {

// RFC 4648 section 5 without padding, as JOSE uses it.
std::string Base64UrlEncode(absl::string_view data);

// Decodes unpadded base64url, refusing anything else: padding, whitespace,
// characters of the standard alphabet, an impossible length, or non-zero
// unused bits (so that each byte string has exactly one encoding).
std::optional<std::string> Base64UrlDecode(absl::string_view text);

struct JsonDeleter {
  void operator()(json_t* json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

// Parses `text` as one JSON object, refusing duplicate member names, NUL
// characters and trailing data. nullptr when it is anything else.
JsonPtr ParseJsonObject(absl::string_view text);

// Writes `json` compactly, members in insertion order.
std::string DumpJson(const json_t* json, size_t flags = JSON_COMPACT);

// The string value of member `name`, or nullopt when it is absent or not a
// string.
std::optional<std::string> StringMember(const json_t* object, const char* name);

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// The bytes a memory BIO holds.
std::string BioContents(BIO* bio);

// What tells one version of a file from another without reading it. A file
// replaced by rename always gets a new stamp (new inode); one rewritten in
// place does when its size or its time stamps change.
struct FileStamp {
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t size = -1;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

// The stamp of the file at `path`; the error names the path.
absl::StatusOr<FileStamp> StatFile(const std::string& path);

// A whole file and the stamp of the version read.
struct FileContents {
  std::string data;
  FileStamp stamp;
};

// Reads the file at `path`, refusing files larger than `max_size` bytes; the
// error names the path.
absl::StatusOr<FileContents> ReadFile(const std::string& path,
                                      int64_t max_size);

// Whether `text` holds a character that an audit row or a log line would
// not show as written: a control character (C0, DEL, C1), a line or
// paragraph separator, a format character (zero-width ones, bidirectional
// embeddings, overrides and isolates, the byte order mark, soft hyphen,
// tags) or another default-ignorable one (variation selectors, Hangul
// fillers), the braille blank, white space other than the plain space, or
// a space at either end; with them a
// subject could pass for another. Bytes that are not UTF-8 are left to
// Jansson, which refuses them.
bool HasInvisibleCharacter(absl::string_view text);

// `text` as a reader might take it: its compatibility forms folded (NFKC,
// "Ｓ" is "S"), and its case too when `fold_case` (NFKC_Casefold), then
// ICU's confusable skeleton (UTS #39: the Cyrillic "ѕ" and the Latin "s"
// have one). Empty when ICU cannot say.
icu::UnicodeString Skeleton(absl::string_view text, bool fold_case);

// Whether `subject` reads as a service's ("service:..."): in any case, in
// full-width forms, or in letters of other scripts that look the same;
// true when ICU cannot say.
bool ReadsAsServiceSubject(absl::string_view subject);

// OK when ICU can take subjects apart as the above do; a verifier that
// could not is not made (TokenVerifier::Create).
absl::Status CheckSubjectReading();

}  // namespace rapport::auth::internal

#endif  // RAPPORT_COMMON_AUTH_INTERNAL_H_
