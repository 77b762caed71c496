#include "common/auth/jwks.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/auth/internal.h"
#include "common/base/status_macros.h"

namespace rapport::auth {
namespace {

using internal::JsonPtr;

constexpr size_t kCoordinateSize = 32;

absl::Status Invalid(absl::string_view message) {
  ERR_clear_error();
  return absl::InvalidArgumentError(message);
}

// The SubjectPublicKeyInfo PEM of the P-256 point (x, y); INVALID_ARGUMENT when
// the point is not on the curve.
absl::StatusOr<std::string> SpkiPem(absl::string_view x, absl::string_view y) {
  std::string point = absl::StrCat("\x04", x, y);
  char group[] = "prime256v1";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                        point.size()),
      OSSL_PARAM_construct_end()};
  internal::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return Invalid("x, y is not a point of P-256");
  }
  internal::PkeyPtr key(raw);
  internal::PkeyCtxPtr check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_public_check(check.get()) != 1) {
    return Invalid("x, y is not a point of P-256");
  }
  internal::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_PUBKEY(bio.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot write a public key PEM");
  }
  return internal::BioContents(bio.get());
}

// A 32-byte coordinate of a JWK.
absl::StatusOr<std::string> Coordinate(const json_t* jwk, const char* name) {
  std::optional<std::string> text = internal::StringMember(jwk, name);
  if (!text.has_value()) return Invalid(absl::StrCat("has no ", name));
  std::optional<std::string> bytes = internal::Base64UrlDecode(*text);
  if (!bytes.has_value() || bytes->size() != kCoordinateSize) {
    return Invalid(
        absl::StrCat(name, " is not 32 bytes in unpadded base64url"));
  }
  return *std::move(bytes);
}

// Whether `name` is absent from `jwk` or is the string `wanted`.
bool AbsentOrEquals(const json_t* jwk, const char* name,
                    absl::string_view wanted) {
  if (json_object_get(jwk, name) == nullptr) return true;
  std::optional<std::string> value = internal::StringMember(jwk, name);
  return value.has_value() && *value == wanted;
}

// The P-256 signing key a JWK holds, nullopt when it holds a key of another
// kind (skipped), or INVALID_ARGUMENT when it is a broken P-256 key.
absl::StatusOr<std::optional<EcPublicKey>> ReadJwk(const json_t* jwk) {
  if (!json_is_object(jwk)) return Invalid("is not a JSON object");
  std::optional<std::string> kty = internal::StringMember(jwk, "kty");
  if (!kty.has_value()) return Invalid("has no kty");
  if (*kty != "EC" || internal::StringMember(jwk, "crv") != "P-256" ||
      !AbsentOrEquals(jwk, "use", "sig") ||
      !AbsentOrEquals(jwk, "alg", "ES256")) {
    return std::nullopt;
  }
  if (json_object_get(jwk, "d") != nullptr) {
    return Invalid("holds a private key (\"d\"); publish only public keys");
  }
  EcPublicKey key;
  RAPPORT_ASSIGN_OR_RETURN(key.x, Coordinate(jwk, "x"));
  RAPPORT_ASSIGN_OR_RETURN(key.y, Coordinate(jwk, "y"));
  if (json_object_get(jwk, "kid") != nullptr) {
    std::optional<std::string> kid = internal::StringMember(jwk, "kid");
    if (!kid.has_value() || kid->empty()) {
      return Invalid("kid is not a non-empty string");
    }
    key.kid = *std::move(kid);
  } else {
    key.kid = JwkThumbprint(key.x, key.y);
  }
  RAPPORT_ASSIGN_OR_RETURN(key.spki_pem, SpkiPem(key.x, key.y));
  if (json_object_get(jwk, "rapport_subject") != nullptr) {
    std::optional<std::string> subject =
        internal::StringMember(jwk, "rapport_subject");
    if (!subject.has_value() || subject->empty()) {
      return Invalid("rapport_subject is not a non-empty string");
    }
    key.subject = *std::move(subject);
    key.max_role = "reader";
  }
  if (json_object_get(jwk, "rapport_max_role") != nullptr) {
    std::optional<std::string> role =
        internal::StringMember(jwk, "rapport_max_role");
    if (role != "reader" && role != "writer" && role != "admin") {
      return Invalid("rapport_max_role is not reader, writer or admin");
    }
    key.max_role = *std::move(role);
  }
  return key;
}

bool SameScope(const EcPublicKey& a, const EcPublicKey& b) {
  return a.subject == b.subject && a.max_role == b.max_role;
}

// The "keys" array of a JWKS document.
absl::StatusOr<const json_t*> KeysOf(const json_t* document) {
  if (document == nullptr) return Invalid("is not a JSON object");
  const json_t* keys = json_object_get(document, "keys");
  if (keys == nullptr || !json_is_array(keys)) {
    return Invalid("has no \"keys\" array");
  }
  return keys;
}

// Adds `key` to `keys` unless a key of its kid is there already. false when
// it is (the same key: nothing to add; with another scope only when
// `rescope`, which takes the new one); INVALID_ARGUMENT when that is a
// different key.
absl::StatusOr<bool> AddKey(std::vector<EcPublicKey>& keys, EcPublicKey key,
                            bool rescope = false) {
  // One key under two kids with two scopes would let a token choose the
  // looser one (an unscoped copy of a service's key signs an admin's token).
  for (const EcPublicKey& known : keys) {
    if (known.kid != key.kid && known.x == key.x && known.y == key.y &&
        !SameScope(known, key)) {
      return Invalid(absl::StrCat("kid \"", key.kid, "\" is the key of kid \"",
                                  known.kid, "\" with other scopes"));
    }
  }
  for (EcPublicKey& known : keys) {
    if (known.kid != key.kid) continue;
    if (known.x == key.x && known.y == key.y) {
      if (SameScope(known, key)) return false;
      if (!rescope) {
        return Invalid(absl::StrCat("kid \"", key.kid,
                                    "\" is listed twice with other scopes"));
      }
      known = std::move(key);
      return false;
    }
    return Invalid(
        absl::StrCat("kid \"", key.kid, "\" names two different keys"));
  }
  keys.push_back(std::move(key));
  return true;
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

}  // namespace

absl::StatusOr<std::vector<EcPublicKey>> ParseJwks(absl::string_view json) {
  JsonPtr document = internal::ParseJsonObject(json);
  RAPPORT_ASSIGN_OR_RETURN(const json_t* jwks, KeysOf(document.get()));
  std::vector<EcPublicKey> keys;
  for (size_t i = 0; i < json_array_size(jwks); ++i) {
    std::string where = absl::StrCat("keys[", i, "]: ");
    absl::StatusOr<std::optional<EcPublicKey>> key =
        ReadJwk(json_array_get(jwks, i));
    if (!key.ok()) return Prefixed(where, key.status());
    if (!key->has_value()) continue;
    absl::StatusOr<bool> added = AddKey(keys, **std::move(key));
    if (!added.ok()) return Prefixed(where, added.status());
  }
  if (keys.empty()) {
    return Invalid("has no usable key (want \"kty\":\"EC\",\"crv\":\"P-256\")");
  }
  return keys;
}

std::string JwkThumbprint(absl::string_view x, absl::string_view y) {
  // RFC 7638 section 3.2: the required members only, in lexicographic order,
  // no whitespace.
  std::string canonical = absl::StrCat(
      R"({"crv":"P-256","kty":"EC","x":")", internal::Base64UrlEncode(x),
      R"(","y":")", internal::Base64UrlEncode(y), R"("})");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(canonical.data(), canonical.size(), digest, &size,
                 EVP_sha256(), nullptr) != 1) {
    ERR_clear_error();
    return "";
  }
  return internal::Base64UrlEncode(
      absl::string_view(reinterpret_cast<const char*>(digest), size));
}

absl::StatusOr<std::string> MergeJwks(
    const std::vector<std::string>& documents) {
  if (documents.empty()) return Invalid("documents: none given");
  JsonPtr merged(json_array());
  std::vector<EcPublicKey> usable;
  std::vector<const json_t*> foreign;  // the non-P-256 keys in `merged`
  std::vector<size_t> usable_at;       // where each of `usable` is in it
  for (size_t i = 0; i < documents.size(); ++i) {
    std::string where = absl::StrCat("documents[", i, "]: ");
    JsonPtr document = internal::ParseJsonObject(documents[i]);
    absl::StatusOr<const json_t*> keys = KeysOf(document.get());
    if (!keys.ok()) return Prefixed(where, keys.status());
    for (size_t j = 0; j < json_array_size(*keys); ++j) {
      const json_t* jwk = json_array_get(*keys, j);
      std::string key_where = absl::StrCat(where, "keys[", j, "]: ");
      absl::StatusOr<std::optional<EcPublicKey>> key = ReadJwk(jwk);
      if (!key.ok()) return Prefixed(key_where, key.status());
      const bool is_p256 = key->has_value();
      if (is_p256) {
        const std::string kid = (*key)->kid;
        absl::StatusOr<bool> added =
            AddKey(usable, **std::move(key), /*rescope=*/true);
        if (!added.ok()) return Prefixed(key_where, added.status());
        if (!*added) {
          // Known already: its last appearance gives its scope.
          for (size_t k = 0; k < usable.size(); ++k) {
            if (usable[k].kid == kid) {
              json_array_set_new(merged.get(), usable_at[k],
                                 json_deep_copy(jwk));
            }
          }
          continue;
        }
        usable_at.push_back(json_array_size(merged.get()));
      } else {
        bool seen = false;
        for (const json_t* other : foreign) {
          seen = seen || json_equal(other, jwk);
        }
        if (seen) continue;
      }
      json_t* copy = json_deep_copy(jwk);
      if (!is_p256) foreign.push_back(copy);  // owned by `merged`
      json_array_append_new(merged.get(), copy);
    }
  }
  if (usable.empty()) {
    return Invalid(
        "documents: no usable key (want \"kty\":\"EC\",\"crv\":\"P-256\")");
  }
  JsonPtr out(json_object());
  json_object_set(out.get(), "keys", merged.get());
  return internal::DumpJson(out.get(), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

}  // namespace rapport::auth
