#include "common/auth/jwt.h"

#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uspoof.h>
#include <unicode/utf8.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/internal.h"
#include "common/base/status_macros.h"

namespace rapport::auth {
namespace {

using internal::JsonPtr;

constexpr int64_t kMaxJwksSize = 1 << 20;
constexpr int64_t kMaxKeyFileSize = 64 << 10;
constexpr size_t kMaxTokenSize = 8 << 10;
constexpr absl::Duration kMaxTokenTtl = absl::Hours(24 * 366 * 100);
constexpr size_t kCoordinateSize = 32;
// How many verified tokens a TokenVerifier remembers before it starts over.
constexpr size_t kMaxVerifiedTokens = 4096;
// How long a token refused for its signature is refused without a look.
constexpr absl::Duration kForgedFor = absl::Minutes(1);

// Algorithms named in refusals; any other `alg` is "unsupported algorithm", so
// that the message never echoes what a caller made up.
constexpr absl::string_view kKnownAlgorithms[] = {
    "none",  "HS256", "HS384", "HS512", "RS256", "RS384",  "RS512",
    "PS256", "PS384", "PS512", "ES384", "ES512", "ES256K", "EdDSA"};

absl::Status Unauthenticated(absl::string_view message) {
  return absl::UnauthenticatedError(message);
}

absl::Status Malformed() { return Unauthenticated("malformed token"); }

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
}

// ---------------------------------------------------------------------------
// Verifying.

// The token of "Bearer <token>".
absl::StatusOr<absl::string_view> BearerToken(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  size_t space = value.find(' ');
  if (space == absl::string_view::npos ||
      !absl::EqualsIgnoreCase(value.substr(0, space), "bearer")) {
    return Unauthenticated("missing bearer token");
  }
  absl::string_view token =
      absl::StripLeadingAsciiWhitespace(value.substr(space));
  if (token.empty()) return Unauthenticated("missing bearer token");
  return token;
}

// A token's parts, decoded but not yet trusted.
struct DecodedToken {
  JsonPtr header;
  JsonPtr claims;
  std::optional<std::string> kid;
};

absl::Status CheckAlgorithm(const json_t* header) {
  std::optional<std::string> alg = internal::StringMember(header, "alg");
  if (!alg.has_value()) return Malformed();
  if (*alg == "ES256") return absl::OkStatus();
  for (absl::string_view known : kKnownAlgorithms) {
    if (*alg == known) {
      return Unauthenticated(
          absl::StrCat("algorithm ", known, " is not allowed"));
    }
  }
  return Unauthenticated("unsupported algorithm");
}

// Splits and decodes `token`, and refuses any algorithm but ES256, before
// anything is handed to libjwt.
absl::StatusOr<DecodedToken> Decode(absl::string_view token) {
  if (token.size() > kMaxTokenSize) return Malformed();
  std::vector<absl::string_view> parts = absl::StrSplit(token, '.');
  if (parts.size() != 3) return Malformed();
  std::optional<std::string> header_text = internal::Base64UrlDecode(parts[0]);
  if (!header_text.has_value()) return Malformed();
  DecodedToken decoded;
  decoded.header = internal::ParseJsonObject(*header_text);
  if (decoded.header == nullptr) return Malformed();
  RAPPORT_RETURN_IF_ERROR(CheckAlgorithm(decoded.header.get()));

  const json_t* header = decoded.header.get();
  if (json_object_get(header, "crit") != nullptr) return Malformed();
  if (json_object_get(header, "typ") != nullptr) {
    // libjwt refuses any other typ too; refusing it here says why.
    std::optional<std::string> typ = internal::StringMember(header, "typ");
    if (!typ.has_value() || !absl::EqualsIgnoreCase(*typ, "JWT")) {
      return Malformed();
    }
  }
  if (json_object_get(header, "kid") != nullptr) {
    decoded.kid = internal::StringMember(header, "kid");
    if (!decoded.kid.has_value()) return Malformed();
  }
  std::optional<std::string> claims_text = internal::Base64UrlDecode(parts[1]);
  if (!claims_text.has_value()) return Malformed();
  decoded.claims = internal::ParseJsonObject(*claims_text);
  if (decoded.claims == nullptr) return Malformed();
  // libjwt's base64 decoder skips characters it does not know; make sure it
  // sees only what this decoder accepted.
  if (parts[2].empty() || !internal::Base64UrlDecode(parts[2]).has_value()) {
    return Malformed();
  }
  return decoded;
}

// Whether libjwt verifies `token` (NUL-terminated) with the key, as ES256.
bool SignatureVerifies(const std::string& token, const EcPublicKey& key) {
  jwt_t* raw = nullptr;
  int error =
      jwt_decode(&raw, token.c_str(),
                 reinterpret_cast<const unsigned char*>(key.spki_pem.data()),
                 static_cast<int>(key.spki_pem.size()));
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, &jwt_free);
  ERR_clear_error();
  return error == 0 && jwt != nullptr &&
         jwt_get_alg(jwt.get()) == JWT_ALG_ES256;
}

// A NumericDate claim: nullopt when it is not a number.
std::optional<absl::Time> NumericDate(const json_t* value) {
  if (json_is_integer(value)) {
    return absl::FromUnixSeconds(json_integer_value(value));
  }
  if (json_is_real(value)) {
    return absl::UnixEpoch() + absl::Seconds(json_real_value(value));
  }
  return std::nullopt;
}

// A token's `exp` (required) and `nbf` (optional).
using Validity = internal::TokenValidity;

absl::StatusOr<Validity> ValidityOf(const json_t* claims) {
  Validity v;
  const json_t* exp_claim = json_object_get(claims, "exp");
  if (exp_claim == nullptr) return Unauthenticated("token has no expiry");
  std::optional<absl::Time> exp = NumericDate(exp_claim);
  if (!exp.has_value()) return Malformed();
  v.exp = *exp;
  const json_t* nbf_claim = json_object_get(claims, "nbf");
  if (nbf_claim != nullptr) {
    std::optional<absl::Time> nbf = NumericDate(nbf_claim);
    if (!nbf.has_value()) return Malformed();
    v.nbf = *nbf;
  }
  return v;
}

absl::Status CheckTimes(const Validity& v, absl::Time now,
                        absl::Duration leeway) {
  if (now >= v.exp + leeway) return Unauthenticated("token expired");
  if (now + leeway < v.nbf) return Unauthenticated("token not yet valid");
  return absl::OkStatus();
}

// Whether `aud` (a string, or an array of strings: another item is
// malformed) holds a value `wanted` says yes to.
template <typename Wanted>
absl::StatusOr<bool> AudienceHolds(const json_t* claims, Wanted wanted) {
  auto held = [&](const json_t* item) {
    return wanted(
        absl::string_view(json_string_value(item), json_string_length(item)));
  };
  const json_t* aud = json_object_get(claims, "aud");
  if (json_is_string(aud)) return held(aud);
  bool found = false;
  for (size_t i = 0; json_is_array(aud) && i < json_array_size(aud); ++i) {
    const json_t* item = json_array_get(aud, i);
    if (!json_is_string(item)) return Malformed();
    found = found || held(item);
  }
  return found;
}

bool Among(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The subject and roles of verified `claims`.
absl::StatusOr<Principal> PrincipalOf(const json_t* claims) {
  Principal principal;
  const json_t* sub = json_object_get(claims, "sub");
  if (sub != nullptr && !json_is_string(sub)) return Malformed();
  if (sub == nullptr || json_string_length(sub) == 0) {
    return Unauthenticated("token has no subject");
  }
  if (json_string_length(sub) > kMaxSubjectBytes) {
    return Unauthenticated(absl::StrCat("token subject is longer than ",
                                        kMaxSubjectBytes, " bytes"));
  }
  principal.subject.assign(json_string_value(sub), json_string_length(sub));
  // The subject goes into every change's audit row and the request log as
  // it is: no line breaks or other control characters there, and nothing
  // invisible that would make it look like another.
  if (internal::HasInvisibleCharacter(principal.subject)) {
    return Unauthenticated(
        "token subject contains a control or invisible character");
  }

  const json_t* roles = json_object_get(claims, "roles");
  if (roles != nullptr) {
    // A string is refused rather than read as one role or as a
    // space-separated list: each reading would grant something by guess.
    if (!json_is_array(roles)) return Malformed();
    for (size_t i = 0; i < json_array_size(roles); ++i) {
      const json_t* item = json_array_get(roles, i);
      if (!json_is_string(item)) return Malformed();
      std::string name(json_string_value(item), json_string_length(item));
      std::optional<Role> role = ParseRole(name);
      if (role.has_value()) principal.role = std::max(principal.role, *role);
      principal.roles.push_back(std::move(name));
    }
  }
  if (principal.role == Role::kNone) {
    return absl::PermissionDeniedError("token has no known role");
  }
  return principal;
}

absl::StatusOr<std::vector<EcPublicKey>> ReadJwksFile(
    const std::string& path, internal::FileStamp* stamp) {
  RAPPORT_ASSIGN_OR_RETURN(internal::FileContents file,
                           internal::ReadFile(path, kMaxJwksSize));
  absl::StatusOr<std::vector<EcPublicKey>> keys = ParseJwks(file.data);
  if (!keys.ok()) return Prefixed(absl::StrCat(path, ": "), keys.status());
  *stamp = file.stamp;
  return keys;
}

// ---------------------------------------------------------------------------
// Signing.

int RefusePassphrase(char*, int, int, void*) { return -1; }

// A BIGNUM parameter of `key` as 32 big-endian bytes.
std::optional<std::string> Coordinate(const EVP_PKEY* key, const char* name) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return std::nullopt;
  std::string out(kCoordinateSize, '\0');
  int written = BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()),
                             static_cast<int>(out.size()));
  BN_free(bn);
  if (written != static_cast<int>(kCoordinateSize)) return std::nullopt;
  return out;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kReader:
      return "reader";
    case Role::kWriter:
      return "writer";
    case Role::kAdmin:
      return "admin";
    case Role::kNone:
      break;
  }
  return "none";
}

std::optional<Role> ParseRole(absl::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "writer") return Role::kWriter;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// TokenVerifier.

absl::StatusOr<std::unique_ptr<TokenVerifier>> TokenVerifier::Create(
    VerifierOptions options, Clock clock) {
  if (options.jwks_file.empty()) {
    return absl::InvalidArgumentError("jwks_file: is required");
  }
  if (options.issuer.empty()) {
    return absl::InvalidArgumentError("issuer: is required");
  }
  if (options.audience.empty()) {
    return absl::InvalidArgumentError("audience: is required");
  }
  if (options.leeway < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("leeway: must not be negative");
  }
  if (options.max_lifetime < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_lifetime: must not be negative");
  }
  if (options.reload_every < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("reload_every: must not be negative");
  }
  if (clock == nullptr) return absl::InvalidArgumentError("clock: is required");
  RAPPORT_RETURN_IF_ERROR(internal::CheckSubjectReading());
  auto stamp = std::make_unique<internal::FileStamp>();
  absl::StatusOr<std::vector<EcPublicKey>> keys =
      ReadJwksFile(options.jwks_file, stamp.get());
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("jwks_file: ", keys.status().message()));
  }
  auto key_list = std::make_shared<const KeyList>(*std::move(keys));
  return std::unique_ptr<TokenVerifier>(
      new TokenVerifier(std::move(options), std::move(clock),
                        std::move(key_list), std::move(stamp)));
}

TokenVerifier::TokenVerifier(VerifierOptions options, Clock clock,
                             std::shared_ptr<const KeyList> keys,
                             std::unique_ptr<internal::FileStamp> stamp)
    : options_(std::move(options)),
      clock_(std::move(clock)),
      keys_(std::move(keys)),
      next_check_(clock_() + options_.reload_every),
      stamp_(std::move(stamp)) {}

TokenVerifier::~TokenVerifier() = default;

absl::StatusOr<Principal> TokenVerifier::Verify(
    absl::string_view authorization) const {
  RAPPORT_ASSIGN_OR_RETURN(absl::string_view token, BearerToken(authorization));
  const absl::Time now = clock_();
  std::shared_ptr<const KeyList> keys = CurrentKeys(now);
  // A token verified before (with these keys) needs only its times checked:
  // its signature, issuer, audience, subject and roles cannot have changed.
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = verified_.find(token);
    if (it != verified_.end() && keys_ == keys) {
      RAPPORT_RETURN_IF_ERROR(
          CheckTimes(it->second.validity, now, options_.leeway));
      return it->second.principal;
    }
    if (auto forged = forged_.find(absl::Hash<absl::string_view>{}(token));
        keys_ == keys && forged != forged_.end() &&
        now - forged->second < kForgedFor) {
      return Unauthenticated("signature does not verify");
    }
  }

  RAPPORT_ASSIGN_OR_RETURN(DecodedToken decoded, Decode(token));
  std::vector<const EcPublicKey*> candidates;
  for (const EcPublicKey& key : *keys) {
    if (!decoded.kid.has_value() || key.kid == *decoded.kid) {
      candidates.push_back(&key);
    }
  }
  if (candidates.empty()) return Unauthenticated("unknown signing key");
  const std::string nul_terminated(token);
  const EcPublicKey* signer = nullptr;
  for (const EcPublicKey* key : candidates) {
    signature_checks_.fetch_add(1, std::memory_order_relaxed);
    unreported_checks_.fetch_add(1, std::memory_order_relaxed);
    if (SignatureVerifies(nul_terminated, *key)) {
      signer = key;
      break;
    }
  }
  if (signer == nullptr) {
    RememberForged(*keys, token, now);
    return Unauthenticated("signature does not verify");
  }

  // The claims are the decoded payload: the bytes libjwt just verified.
  const json_t* claims = decoded.claims.get();
  RAPPORT_ASSIGN_OR_RETURN(Validity validity, ValidityOf(claims));
  RAPPORT_RETURN_IF_ERROR(CheckTimes(validity, now, options_.leeway));
  if (options_.max_lifetime > absl::ZeroDuration()) {
    // From `iat` when it says so (a 30-day token is refused on its last
    // days too), never from later than now (an `iat` moved forward by the
    // signer does not shorten what is left).
    absl::Time from = now;
    if (const json_t* iat = json_object_get(claims, "iat"); iat != nullptr) {
      std::optional<absl::Time> issued = NumericDate(iat);
      if (!issued.has_value()) return Malformed();
      from = std::min(from, *issued);
    }
    if (validity.exp - from > options_.max_lifetime + options_.leeway) {
      return Unauthenticated("token lives too long");
    }
  }
  if (internal::StringMember(claims, "iss") != options_.issuer) {
    return Unauthenticated("wrong issuer");
  }
  RAPPORT_ASSIGN_OR_RETURN(
      const bool for_us, AudienceHolds(claims, [&](absl::string_view aud) {
        return aud == options_.audience || Among(options_.other_audiences, aud);
      }));
  if (!for_us) return Unauthenticated("wrong audience");
  RAPPORT_ASSIGN_OR_RETURN(Principal principal, PrincipalOf(claims));
  // A key held to one subject (a service's own) vouches for that subject
  // only, and no higher than its role.
  if (!signer->subject.empty() && principal.subject != signer->subject) {
    return Unauthenticated("the signing key may not sign for this subject");
  }
  // And only such a key vouches for a service: the scoring service gives
  // "service:" callers the refreshes' slots, and the audit log names them as
  // the service, so a people's key (or an identity provider that lets a user
  // choose a name) may not.
  // (In any case, in full-width or look-alike letters: "Service:customer"
  // or "ｓｅｒｖｉｃｅ：customer" in an audit row reads as the service.)
  if (signer->subject.empty() &&
      internal::ReadsAsServiceSubject(principal.subject)) {
    return Unauthenticated(
        "the signing key may not sign for a service (a \"service:\" subject "
        "needs that service's own key)");
  }
  if (!signer->max_role.empty() &&
      principal.role > ParseRole(signer->max_role).value_or(Role::kNone)) {
    return Unauthenticated("the signing key may not grant this role");
  }
  // Such a key is a service's own, for its calls to the scoring service: its
  // tokens count only for the audiences a verifier takes besides its own
  // (the scoring service's), so that a stolen one reads no domain's data
  // whatever `aud` its thief writes.
  if (!signer->subject.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(const bool for_services,
                             AudienceHolds(claims, [&](absl::string_view aud) {
                               return Among(options_.other_audiences, aud);
                             }));
    if (!for_services) {
      return Unauthenticated("the signing key may not sign for this service");
    }
  }
  RememberVerified(*keys, std::string(token), {principal, validity});
  return principal;
}

void TokenVerifier::RememberForged(const KeyList& keys, absl::string_view token,
                                   absl::Time now) const {
  absl::MutexLock lock(&mu_);
  if (keys_.get() != &keys) return;
  if (forged_.size() >= kMaxVerifiedTokens) forged_.clear();
  forged_.insert_or_assign(absl::Hash<absl::string_view>{}(token), now);
}

absl::Status TokenVerifier::ReloadStatus() const {
  CurrentKeys(clock_());
  absl::ReaderMutexLock lock(&mu_);
  return reload_status_;
}

void TokenVerifier::RememberVerified(const KeyList& keys, std::string token,
                                     VerifiedToken verified) const {
  absl::MutexLock lock(&mu_);
  if (keys_.get() != &keys) return;  // verified with keys since replaced
  if (verified_.size() >= kMaxVerifiedTokens) verified_.clear();
  verified_.insert_or_assign(std::move(token), std::move(verified));
}

std::shared_ptr<const TokenVerifier::KeyList> TokenVerifier::CurrentKeys(
    absl::Time now) const {
  {
    absl::ReaderMutexLock lock(&mu_);
    if (now < next_check_) return keys_;
  }
  if (reload_mu_.TryLock()) {
    MaybeReload(now);
    reload_mu_.Unlock();
  }
  absl::ReaderMutexLock lock(&mu_);
  return keys_;
}

void TokenVerifier::MaybeReload(absl::Time now) const {
  {
    absl::MutexLock lock(&mu_);
    if (now < next_check_) return;  // another thread just looked
    next_check_ = now + options_.reload_every;
  }
  absl::StatusOr<internal::FileStamp> current =
      internal::StatFile(options_.jwks_file);
  if (current.ok() && *current == *stamp_) {
    absl::MutexLock lock(&mu_);
    reload_status_ = absl::OkStatus();
    return;
  }
  // On failure the stamp stays, so the file is read again next time: a writer
  // may have been half-way through it.
  internal::FileStamp stamp;
  absl::StatusOr<std::vector<EcPublicKey>> keys =
      current.ok() ? ReadJwksFile(options_.jwks_file, &stamp)
                   : absl::StatusOr<std::vector<EcPublicKey>>(current.status());
  absl::MutexLock lock(&mu_);
  if (!keys.ok()) {
    reload_status_ = Prefixed("jwks_file: ", keys.status());
    return;
  }
  *stamp_ = stamp;
  keys_ = std::make_shared<const KeyList>(*std::move(keys));
  verified_.clear();
  forged_.clear();
  reload_status_ = absl::OkStatus();
}

// ---------------------------------------------------------------------------
// SigningKey.

SigningKey::SigningKey(std::string private_pem, std::string x, std::string y)
    : private_pem_(std::move(private_pem)),
      x_(std::move(x)),
      y_(std::move(y)),
      kid_(JwkThumbprint(x_, y_)) {}

SigningKey::~SigningKey() {
  OPENSSL_cleanse(private_pem_.data(), private_pem_.size());
}

absl::StatusOr<SigningKey> SigningKey::FromPem(std::string pem) {
  internal::BioPtr bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  internal::PkeyPtr key(
      bio == nullptr ? nullptr
                     : PEM_read_bio_PrivateKey(bio.get(), nullptr,
                                               &RefusePassphrase, nullptr));
  OPENSSL_cleanse(pem.data(), pem.size());
  if (key == nullptr) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        "not a PEM private key (PKCS#8 or SEC1, unencrypted)");
  }
  char group[64] = {};
  size_t group_size = 0;
  if (!EVP_PKEY_is_a(key.get(), "EC") ||
      EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                     group, sizeof(group), &group_size) != 1 ||
      absl::string_view(group, group_size) != "prime256v1") {
    ERR_clear_error();
    return absl::InvalidArgumentError("not an EC P-256 private key");
  }
  internal::PkeyCtxPtr check(
      EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
  if (check == nullptr || EVP_PKEY_check(check.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the EC P-256 private key is not valid");
  }
  std::optional<std::string> x =
      Coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_X);
  std::optional<std::string> y =
      Coordinate(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  // PKCS#8 whatever the input was; a secure-heap BIO, as it holds the secret.
  internal::BioPtr out(BIO_new(BIO_s_secmem()));
  if (!x.has_value() || !y.has_value() || out == nullptr ||
      PEM_write_bio_PrivateKey(out.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot encode the EC P-256 private key");
  }
  return SigningKey(internal::BioContents(out.get()), *std::move(x),
                    *std::move(y));
}

absl::StatusOr<SigningKey> SigningKey::Load(const std::string& pem_path) {
  absl::StatusOr<internal::FileContents> file =
      internal::ReadFile(pem_path, kMaxKeyFileSize);
  if (!file.ok()) return file.status();
  absl::StatusOr<SigningKey> key = FromPem(std::move(file->data));
  if (!key.ok()) return Prefixed(absl::StrCat(pem_path, ": "), key.status());
  return key;
}

absl::StatusOr<SigningKey> SigningKey::Generate() {
  internal::PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  internal::BioPtr pem(BIO_new(BIO_s_secmem()));
  if (key == nullptr || pem == nullptr ||
      PEM_write_bio_PrivateKey(pem.get(), key.get(), nullptr, nullptr, 0,
                               nullptr, nullptr) != 1) {
    ERR_clear_error();
    return absl::InternalError("cannot generate an EC P-256 key");
  }
  return FromPem(internal::BioContents(pem.get()));
}

absl::Status SigningKey::Save(const std::string& path) const {
  auto error = [&path](absl::string_view what) {
    return absl::UnavailableError(
        absl::StrCat(path, ": ", what, ": ", std::strerror(errno)));
  };
  std::string temp = absl::StrCat(path, ".tmp.XXXXXX");
  int fd = mkstemp(temp.data());  // mode 0600 whatever the umask
  if (fd < 0) return error("cannot create a temp file next to it");
  absl::Status status;
  if (fchmod(fd, 0600) != 0) status = error("chmod");
  size_t done = 0;
  while (status.ok() && done < private_pem_.size()) {
    ssize_t n =
        write(fd, private_pem_.data() + done, private_pem_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = error("write");
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (status.ok() && fsync(fd) != 0) status = error("fsync");
  if (close(fd) != 0 && status.ok()) status = error("close");
  if (status.ok() && rename(temp.c_str(), path.c_str()) != 0) {
    status = error("rename");
  }
  if (!status.ok()) unlink(temp.c_str());
  return status;
}

std::string SigningKey::PublicJwks(const KeyScope& scope) const {
  JsonPtr jwk(json_object());
  json_object_set_new(jwk.get(), "kty", json_string("EC"));
  json_object_set_new(jwk.get(), "crv", json_string("P-256"));
  json_object_set_new(jwk.get(), "x",
                      json_string(internal::Base64UrlEncode(x_).c_str()));
  json_object_set_new(jwk.get(), "y",
                      json_string(internal::Base64UrlEncode(y_).c_str()));
  json_object_set_new(jwk.get(), "kid", json_string(kid_.c_str()));
  json_object_set_new(jwk.get(), "use", json_string("sig"));
  json_object_set_new(jwk.get(), "alg", json_string("ES256"));
  if (!scope.subject.empty()) {
    json_object_set_new(jwk.get(), "rapport_subject",
                        json_string(scope.subject.c_str()));
  }
  // A limit by role alone (a key published so by hand) is kept too: written
  // without it, the key would sign for any role.
  if (!scope.subject.empty() || !scope.max_role.empty()) {
    json_object_set_new(
        jwk.get(), "rapport_max_role",
        json_string(scope.max_role.empty() ? "reader"
                                           : scope.max_role.c_str()));
  }
  JsonPtr keys(json_array());
  json_array_append(keys.get(), jwk.get());
  JsonPtr jwks(json_object());
  json_object_set(jwks.get(), "keys", keys.get());
  return internal::DumpJson(jwks.get(), JSON_INDENT(2) | JSON_PRESERVE_ORDER);
}

namespace internal {

bool HasInvisibleCharacter(absl::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t size = static_cast<int32_t>(text.size());
  for (int32_t i = 0; i < size;) {
    const bool first = i == 0;
    UChar32 c;
    U8_NEXT(bytes, i, size, c);
    if (c < 0) continue;
    // What shows as nothing: controls, line and paragraph separators, format
    // characters (Cf: zero-width ones, bidirectional controls, tags), and the
    // other default-ignorable ones (variation selectors, Hangul fillers),
    // besides the braille blank; white space but the plain space, which it
    // looks like (a hair or no-break space); and a space at either end.
    const int8_t type = u_charType(c);
    if (type == U_CONTROL_CHAR || type == U_FORMAT_CHAR ||
        type == U_LINE_SEPARATOR || type == U_PARAGRAPH_SEPARATOR ||
        u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
        c == 0x2800 ||
        (u_isUWhiteSpace(c) && (c != ' ' || first || i == size))) {
      return true;
    }
  }
  return false;
}

namespace {

const USpoofChecker* Checker() {
  static const USpoofChecker* const checker = [] {
    UErrorCode status = U_ZERO_ERROR;
    USpoofChecker* opened = uspoof_open(&status);
    return U_SUCCESS(status) ? opened : nullptr;
  }();
  return checker;
}

// `text` in NFKC (NFKC_Casefold when `fold_case`); nullopt when ICU cannot.
std::optional<icu::UnicodeString> Normal(absl::string_view text,
                                         bool fold_case) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalize =
      fold_case ? icu::Normalizer2::getNFKCCasefoldInstance(status)
                : icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) return std::nullopt;
  icu::UnicodeString normal =
      normalize->normalize(icu::UnicodeString::fromUTF8(icu::StringPiece(
                               text.data(), static_cast<int32_t>(text.size()))),
                           status);
  if (U_FAILURE(status)) return std::nullopt;
  return normal;
}

}  // namespace

icu::UnicodeString Skeleton(absl::string_view text, bool fold_case) {
  const std::optional<icu::UnicodeString> normal = Normal(text, fold_case);
  if (Checker() == nullptr || !normal.has_value()) return {};
  UErrorCode status = U_ZERO_ERROR;
  icu::UnicodeString skeleton;
  uspoof_getSkeletonUnicodeString(Checker(), 0, *normal, skeleton, &status);
  return U_SUCCESS(status) ? skeleton : icu::UnicodeString();
}

bool ReadsAsServiceSubject(absl::string_view subject) {
  if (absl::StartsWithIgnoreCase(subject, kServiceSubjectPrefix)) return true;
  // Folded to lower case first ("ｓｅｒｖｉｃｅ：", "ѕervice:"), and
  // skeleton first, then folded, where a lower-case L or a one passes for
  // a capital I ("SERVlCE:", "Serv1ce:").
  static const auto* const prefixes = new std::vector<icu::UnicodeString>{
      Skeleton(kServiceSubjectPrefix, true),
      Skeleton("SERVICE:", false).foldCase()};
  const icu::UnicodeString folded = Skeleton(subject, true);
  icu::UnicodeString written = Skeleton(subject, false);
  // ICU that cannot say is taken to say yes: a people's key is then
  // refused such subjects rather than let through.
  if (folded.isEmpty() || written.isEmpty()) return true;
  return folded.startsWith((*prefixes)[0]) ||
         written.foldCase().startsWith((*prefixes)[1]);
}

absl::Status CheckSubjectReading() {
  for (absl::string_view probe : {"service:", "SERVICE:"}) {
    if (Skeleton(probe, true).isEmpty() || Skeleton(probe, false).isEmpty()) {
      return absl::FailedPreconditionError(
          "ICU cannot compare names (its normalisation or confusable data is "
          "missing): token subjects cannot be checked");
    }
  }
  return absl::OkStatus();
}

}  // namespace internal

bool SubjectsLookAlike(absl::string_view a, absl::string_view b) {
  if (a == b) return true;
  if (a.empty() || b.empty()) return false;
  const std::optional<icu::UnicodeString> left = internal::Normal(a, true);
  const std::optional<icu::UnicodeString> right = internal::Normal(b, true);
  // ICU that cannot say is taken to say yes: a four-eyes rule then asks
  // for another person rather than let one through.
  if (!left.has_value() || !right.has_value() || internal::Checker() == nullptr)
    return true;
  if (*left == *right) return true;
  // Confusable across scripts only ("аda" in Cyrillic and "ada"): within one
  // script, skeletons also join different names ("dorn", "dom").
  UErrorCode status = U_ZERO_ERROR;
  const int32_t confusable = uspoof_areConfusableUnicodeString(
      internal::Checker(), *left, *right, &status);
  if (U_FAILURE(status)) return true;
  return (confusable & (USPOOF_MIXED_SCRIPT_CONFUSABLE |
                        USPOOF_WHOLE_SCRIPT_CONFUSABLE)) != 0;
}

// ---------------------------------------------------------------------------
// MintToken.

absl::StatusOr<std::string> MintToken(const SigningKey& key,
                                      const TokenClaims& claims,
                                      absl::Time now) {
  if (claims.subject.empty()) {
    return absl::InvalidArgumentError("subject: is required");
  }
  if (claims.subject.size() > kMaxSubjectBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("subject: must be at most ", kMaxSubjectBytes, " bytes"));
  }
  if (internal::HasInvisibleCharacter(claims.subject)) {
    return absl::InvalidArgumentError(
        "subject: must not contain control or invisible characters");
  }
  if (claims.issuer.empty()) {
    return absl::InvalidArgumentError("issuer: is required");
  }
  if (claims.audience.empty()) {
    return absl::InvalidArgumentError("audience: is required");
  }
  if (claims.ttl < absl::Seconds(1)) {
    return absl::InvalidArgumentError("ttl: must be at least one second");
  }
  // Past this, the expiry would not be a time (an infinite ttl overflows).
  if (claims.ttl > kMaxTokenTtl) {
    return absl::InvalidArgumentError("ttl: must be at most 100 years");
  }
  if (claims.roles.empty()) {
    return absl::InvalidArgumentError(
        "roles: at least one of reader, writer, admin is required");
  }
  JsonPtr roles(json_array());
  for (const std::string& role : claims.roles) {
    if (!ParseRole(role).has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "roles: unknown role \"", role, "\" (want reader, writer or admin)"));
    }
    json_array_append_new(roles.get(), json_string(role.c_str()));
  }
  const int64_t iat = absl::ToUnixSeconds(now);
  JsonPtr grants(json_object());
  json_t* values = grants.get();
  struct StringClaim {
    const char* claim;
    const char* setting;
    const std::string& text;
  };
  for (const StringClaim& string_claim :
       {StringClaim{"iss", "issuer", claims.issuer},
        StringClaim{"sub", "subject", claims.subject},
        StringClaim{"aud", "audience", claims.audience}}) {
    // Not UTF-8 (jansson refuses it) is the only way this fails.
    json_t* value =
        json_stringn(string_claim.text.data(), string_claim.text.size());
    if (value == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(string_claim.setting, ": is not UTF-8"));
    }
    json_object_set_new(values, string_claim.claim, value);
  }
  json_object_set(values, "roles", roles.get());
  json_object_set_new(values, "iat", json_integer(iat));
  json_object_set_new(values, "nbf", json_integer(iat));
  json_object_set_new(values, "exp",
                      json_integer(iat + absl::ToInt64Seconds(claims.ttl)));
  const std::string grants_json = internal::DumpJson(values);

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return absl::InternalError("cannot make a token");
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, &jwt_free);
  char* token = nullptr;
  if (jwt_set_alg(
          jwt.get(), JWT_ALG_ES256,
          reinterpret_cast<const unsigned char*>(key.private_pem_.data()),
          static_cast<int>(key.private_pem_.size())) == 0 &&
      jwt_add_header(jwt.get(), "kid", key.kid().c_str()) == 0 &&
      jwt_add_grants_json(jwt.get(), grants_json.c_str()) == 0) {
    token = jwt_encode_str(jwt.get());
  }
  ERR_clear_error();
  if (token == nullptr) return absl::InternalError("cannot sign the token");
  std::string out(token);
  std::free(token);
  return out;
}

}  // namespace rapport::auth
