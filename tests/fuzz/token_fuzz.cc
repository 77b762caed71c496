// Bearer tokens as every call brings them, before anything else of the call
// is trusted (common/auth/jwt.h). The first byte of the input says what the
// rest is:
//   0 mod 3: the whole `authorization` value, as a caller could send it;
//   1 mod 3: a JOSE header and claims (JSON, split at the first newline),
//            signed properly with the verifier's unscoped key, so that the
//            fuzzer reaches the checks behind the signature;
//   2 mod 3: the same, signed with a key held to the subject
//            "service:partner" and the role reader.
// Properties: a refusal is UNAUTHENTICATED or PERMISSION_DENIED with one of
// the documented messages (nothing of the token in it); an accepted token
// names a subject of 1 to 256 bytes and its highest known role, a scoped key
// never vouches beyond its scope, the unscoped key never for a subject that
// reads as "service:" (in any case or look-alike letters), no accepted
// subject holds an invisible character, and asking again (the verifier
// remembers verified tokens) gives the same answer.
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/auth/internal.h"
#include "common/auth/jwt.h"

namespace {
namespace auth = rapport::auth;

struct Signer {
  EVP_PKEY* pkey = nullptr;
  std::string jwks;
};

// A fresh P-256 key, and its public JWKS (with `scope`).
Signer MakeSigner(const auth::KeyScope& scope) {
  Signer s;
  s.pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (s.pkey == nullptr) std::abort();
  BIO* bio = BIO_new(BIO_s_mem());
  if (PEM_write_bio_PrivateKey(bio, s.pkey, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    std::abort();
  }
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  absl::StatusOr<auth::SigningKey> key =
      auth::SigningKey::FromPem(std::string(data, static_cast<size_t>(size)));
  BIO_free(bio);
  if (!key.ok()) std::abort();
  s.jwks = key->PublicJwks(scope);
  return s;
}

// The ES256 signature of `input` (JWS: r and s, 32 bytes each, base64url).
std::string Sign(EVP_PKEY* pkey, const std::string& input) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> owned(
      EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  EVP_MD_CTX* ctx = owned.get();
  size_t size = 0;
  std::string der;
  if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) != 1 ||
      EVP_DigestSign(ctx, nullptr, &size,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    std::abort();
  }
  der.resize(size);
  if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &size,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1) {
    std::abort();
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(size));
  if (sig == nullptr) std::abort();
  unsigned char raw[64];
  if (BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, 32) != 32 ||
      BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + 32, 32) != 32) {
    std::abort();
  }
  ECDSA_SIG_free(sig);
  return absl::WebSafeBase64Escape(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
}

struct World {
  Signer open, scoped;
  std::unique_ptr<auth::TokenVerifier> verifier;
};

World& TheWorld() {
  static World* world = [] {
    auto* w = new World;
    w->open = MakeSigner({});
    w->scoped =
        MakeSigner({.subject = "service:partner", .max_role = "reader"});
    absl::StatusOr<std::string> jwks =
        auth::MergeJwks({w->open.jwks, w->scoped.jwks});
    if (!jwks.ok()) std::abort();
    char path[] = "/tmp/rapport-token-fuzz-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) std::abort();
    FILE* f = fdopen(fd, "w");
    std::fputs(jwks->c_str(), f);
    std::fclose(f);
    // A fixed clock: tokens of the corpus stay valid (exp after 2030), and
    // live short enough (a token valid past 2032 lives too long).
    absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> v =
        auth::TokenVerifier::Create(
            {.jwks_file = path,
             .issuer = "rapport",
             .audience = "rapport.customer",
             .max_lifetime = absl::Hours(24 * 365 * 5),
             .reload_every = absl::InfiniteDuration()},
            [] { return absl::FromUnixSeconds(1'800'000'000); });
    std::remove(path);
    if (!v.ok()) std::abort();
    w->verifier = *std::move(v);
    return w;
  }();
  return *world;
}

bool DocumentedRefusal(const absl::Status& s) {
  if (s.code() == absl::StatusCode::kPermissionDenied) {
    return s.message() == "token has no known role";
  }
  if (s.code() != absl::StatusCode::kUnauthenticated) return false;
  for (absl::string_view m :
       {"missing bearer token", "malformed token", "unsupported algorithm",
        "unknown signing key", "signature does not verify",
        "token has no expiry", "token expired", "token not yet valid",
        "token lives too long", "wrong issuer", "wrong audience",
        "token has no subject", "token subject is longer than 256 bytes",
        "token subject contains a control or invisible character",
        "the signing key may not sign for this subject",
        "the signing key may not grant this role",
        "the signing key may not sign for this service",
        "the signing key may not sign for a service (a \"service:\" subject "
        "needs that service's own key)"}) {
    if (s.message() == m) return true;
  }
  return absl::StartsWith(s.message(), "algorithm ") &&
         absl::EndsWith(s.message(), " is not allowed") &&
         s.message().size() <= 40;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  World& world = TheWorld();
  const int mode = data[0] % 3;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string authorization;
  if (mode == 0) {
    authorization = rest;
  } else {
    const size_t newline = rest.find('\n');
    const std::string header = rest.substr(0, newline);
    const std::string claims =
        newline == std::string::npos ? "" : rest.substr(newline + 1);
    const std::string input =
        absl::StrCat(absl::WebSafeBase64Escape(header), ".",
                     absl::WebSafeBase64Escape(claims));
    authorization = absl::StrCat(
        "Bearer ", input, ".",
        Sign(mode == 1 ? world.open.pkey : world.scoped.pkey, input));
  }

  const absl::StatusOr<auth::Principal> caller =
      world.verifier->Verify(authorization);
  if (!caller.ok()) {
    if (!DocumentedRefusal(caller.status())) __builtin_trap();
    return 0;
  }
  if (caller->subject.empty() ||
      caller->subject.size() > auth::kMaxSubjectBytes) {
    __builtin_trap();
  }
  auth::Role highest = auth::Role::kNone;
  for (const std::string& name : caller->roles) {
    highest = std::max(highest, auth::ParseRole(name).value_or(highest));
  }
  if (caller->role == auth::Role::kNone || caller->role != highest) {
    __builtin_trap();
  }
  // A service is named only by its own key, never by the unscoped one, in
  // whatever letters; and no accepted subject hides a character.
  if (mode == 1 && (absl::StartsWithIgnoreCase(caller->subject,
                                               auth::kServiceSubjectPrefix) ||
                    auth::internal::ReadsAsServiceSubject(caller->subject))) {
    __builtin_trap();
  }
  if (auth::internal::HasInvisibleCharacter(caller->subject)) {
    __builtin_trap();
  }
  if (mode == 2 && (caller->subject != "service:partner" ||
                    caller->role != auth::Role::kReader)) {
    __builtin_trap();
  }
  const absl::StatusOr<auth::Principal> again =
      world.verifier->Verify(authorization);
  if (!again.ok() || again->subject != caller->subject ||
      again->role != caller->role || again->roles != caller->roles) {
    __builtin_trap();
  }
  return 0;
}
