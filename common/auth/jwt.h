// Bearer tokens for Rapport's gRPC calls: verifying them on the server side,
// minting them on the signing side.
//
// Every call carries `authorization: Bearer <JWT>`, a compact JWS signed with
// ES256 (ECDSA P-256, SHA-256) and no other algorithm. Servers build one
// TokenVerifier from their options and ask it about each call:
//
//   namespace auth = rapport::auth;
//   absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> verifier =
//       auth::TokenVerifier::Create({.jwks_file = "/etc/rapport/jwks.json",
//                                    .issuer = "rapport",
//                                    .audience = "rapport.customer"});
//   absl::StatusOr<auth::Principal> caller =
//       (*verifier)->Verify(authorization_metadata_value);
//   if (!caller.ok()) return rapport::ToGrpcStatus(caller.status());
//   if (caller->role < auth::Role::kWriter) ...  // PERMISSION_DENIED
//
// `rapportctl auth token` and services that call other services mint them:
//
//   absl::StatusOr<auth::SigningKey> key =
//       auth::SigningKey::Load("/etc/rapport/signing-key.pem");
//   absl::StatusOr<std::string> token = auth::MintToken(
//       *key, {.subject = "svc:scoring", .roles = {"reader"},
//              .issuer = "rapport", .audience = "rapport.customer"},
//       absl::Now());
//
// Tokens are checked with Debian's libjwt 1.10 for the signature, after this
// library has read the JOSE header itself and refused every algorithm but
// ES256 (libjwt 1.x would otherwise verify an HS256 token using the public
// key's PEM as the HMAC secret). The claims (exp, nbf, iss, aud, sub, roles)
// are checked here: libjwt 1.10 does not check claims.
#ifndef RAPPORT_COMMON_AUTH_JWT_H_
#define RAPPORT_COMMON_AUTH_JWT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/auth/jwks.h"  // IWYU pragma: export (MergeJwks)

namespace rapport::auth {

namespace internal {
struct FileStamp;
// A verified token's `exp`, and its `nbf` (the infinite past without one).
struct TokenValidity {
  absl::Time exp;
  absl::Time nbf = absl::InfinitePast();
};
}  // namespace internal

struct TokenClaims;

// What the subject of a service's own token begins with ("service:customer").
// Only a key published scoped to such a subject signs for it.
inline constexpr absl::string_view kServiceSubjectPrefix = "service:";

// The longest subject a token may name, in bytes: what every change records
// as its actor.
inline constexpr size_t kMaxSubjectBytes = 256;

// Whether subjects `a` and `b` read as one name: equal after ICU's
// NFKC_Casefold (case, full-width forms), or confusable across scripts
// (uspoof_areConfusable, UTS #39: "аda" with a Cyrillic а and "ada"); names
// that only look alike within one script ("dorn", "dom") are two. True when
// ICU cannot say. A four-eyes rule compares with it, so that one person under
// two spellings of a name ("ada", "Ada": an identity provider that keeps the
// case a name was typed in) is not taken for two.
bool SubjectsLookAlike(absl::string_view a, absl::string_view b);

// What a caller may do; each role includes the ones below it, so compare:
// `principal.role >= Role::kWriter`.
enum class Role { kNone = 0, kReader = 1, kWriter = 2, kAdmin = 3 };

// "reader", "writer", "admin" ("none" for kNone).
absl::string_view RoleName(Role role);

// The role named "reader", "writer" or "admin" (exactly so, lower case);
// nullopt for anything else, "none" included.
std::optional<Role> ParseRole(absl::string_view name);

// Who is calling, as a verified token says.
struct Principal {
  std::string subject;             // `sub`
  Role role = Role::kNone;         // the highest of its known roles
  std::vector<std::string> roles;  // `roles` as given, unknown names included
};

// What a TokenVerifier trusts.
struct VerifierOptions {
  // Path of a JWKS (RFC 7517) file with one or more EC P-256 public keys
  // ("kty":"EC","crv":"P-256","x","y", optional "kid"; see jwks.h).
  std::string jwks_file;
  // Required value of `iss`.
  std::string issuer;
  // Required in `aud`, which is a string or an array of strings.
  std::string audience;
  // Accepted in `aud` as well: the scoring service takes the tokens that the
  // domain services make for their calls to it, which no other service takes
  // (see ServiceAudience in common/service_main.h).
  std::vector<std::string> other_audiences;
  // Clock skew allowed on `exp` and `nbf`.
  absl::Duration leeway = absl::Seconds(30);
  // The longest a token may be valid: `exp` at most this long after `iat`
  // (or after now, when that is earlier or there is no `iat`), so that a
  // leaked token is good for a bounded time, since revoking one means
  // rotating its key. Zero: no bound.
  absl::Duration max_lifetime = absl::Hours(7 * 24);
  // How often at most Verify looks whether jwks_file changed (its size, time
  // stamps or inode) and re-reads it, so keys rotate without a restart. Replace
  // the file by rename (write a temp file, then rename it over the old one):
  // that is atomic for readers and always noticed. Zero looks on every call.
  absl::Duration reload_every = absl::Seconds(5);
};

// Verifies the bearer tokens of incoming calls against the keys of a JWKS
// file. Thread-safe: one instance serves every RPC thread. The keys are parsed
// once per version of the file; the only I/O on the call path is a stat(2) of
// the file at most once per `reload_every`. A token's first verification costs
// about 0.45 ms of CPU (mostly OpenSSL 3.0 parsing the key PEM inside libjwt);
// the same token again costs a hash lookup and a check of its times, as the
// verifier remembers the tokens that verified with the current keys.
//
// A token is accepted when all of these hold, checked in this order; the error
// says which check failed and nothing of the token's content:
//   - the value is "Bearer <token>" (scheme in any case)
//       else UNAUTHENTICATED "missing bearer token";
//   - the token is three base64url segments (at most 8 KiB), its header and
//     claims are JSON objects without duplicate names, the header has no
//     "crit", its "typ" (if any) is "JWT" and its "kid" (if any) a string
//       else "malformed token";
//   - the header's "alg" is exactly "ES256"
//       else "algorithm X is not allowed" for X in a short list of known
//       algorithms (none, HS256, RS256, ...), "unsupported algorithm" for
//       anything else;
//   - a key of the JWKS has the header's "kid" (a token without "kid" is tried
//     against every key)
//       else "unknown signing key";
//   - libjwt verifies the signature with that key, as ES256
//       else "signature does not verify";
//   - `exp` (required; a NumericDate) is after now - leeway
//       else "token has no expiry" / "token expired";
//   - `nbf` (optional) is before now + leeway
//       else "token not yet valid";
//   - `exp` is at most max_lifetime after `iat` (or now, when earlier) else
//     "token lives too long";
//   - `iss` is the issuer else "wrong issuer";
//   - `aud` is the audience (or one of other_audiences), or an array holding
//     one, else "wrong audience";
//   - `sub` is a non-empty string else "token has no subject", of at most
//     256 bytes else "token subject is longer than 256 bytes", with no
//     control character (line breaks included), line separator or invisible
//     format character (zero-width, bidirectional controls, ...) else "token
//     subject contains a control or invisible character";
//   - `roles` is an array of strings (a lone string, even "admin", is
//     "malformed token": roles are never guessed from a string) holding at
//     least one of reader, writer, admin
//       else PERMISSION_DENIED "token has no known role";
//   - a subject that begins with kServiceSubjectPrefix (in any case, or in
//     characters that look the same: full-width forms, other scripts'
//     look-alike letters, by ICU's confusable skeletons) was
//     signed by a key scoped to it (a people's key may not name a service)
//       else "the signing key may not sign for a service (...)";
//   - a key scoped to a subject and a role (jwks.h) signed for that subject
//     and no higher role, and for one of other_audiences (such a key is a
//     service's own, for its calls to the scoring service)
//       else "the signing key may not sign for this subject" / "... may not
//       grant this role" / "... may not sign for this service".
// A claim of the wrong JSON type (e.g. a string `exp`) is "malformed token".
class TokenVerifier {
 public:
  using Clock = std::function<absl::Time()>;

  // Reads `options.jwks_file`. INVALID_ARGUMENT naming the setting
  // ("jwks_file: <path>: ...", "issuer: is required", ...) when the file is
  // missing, unreadable or has no usable key, or a setting is empty or
  // negative. Tests inject `clock`.
  static absl::StatusOr<std::unique_ptr<TokenVerifier>> Create(
      VerifierOptions options, Clock clock = [] { return absl::Now(); });

  TokenVerifier(const TokenVerifier&) = delete;
  TokenVerifier& operator=(const TokenVerifier&) = delete;
  ~TokenVerifier();

  // Verifies the value of the `authorization` metadata ("Bearer <token>").
  absl::StatusOr<Principal> Verify(absl::string_view authorization) const;

  // OK, or why the last attempt to re-read a changed jwks_file failed (it
  // looks at the file first when it is time, as a call would). The verifier
  // then keeps the keys it had, so that a key taken out of the file stays
  // trusted, and tries again after reload_every; servers report it (Server:
  // a log line and rapport_auth_keys_stale).
  absl::Status ReloadStatus() const;

  // How many signatures this verifier has checked (each key tried on a token
  // counts), for rapport_auth_signature_checks_total: a remembered token
  // costs none, so a rate near the call rate means tokens that are not
  // remembered (new ones on every call, or forged ones).
  int64_t SignatureChecks() const {
    return signature_checks_.load(std::memory_order_relaxed);
  }
  // The checks made since the last call, for a counter that adds them up
  // (once, however many servers share this verifier).
  int64_t TakeNewSignatureChecks() const {
    return unreported_checks_.exchange(0, std::memory_order_relaxed);
  }

 private:
  using KeyList = std::vector<EcPublicKey>;

  TokenVerifier(VerifierOptions options, Clock clock,
                std::shared_ptr<const KeyList> keys,
                std::unique_ptr<internal::FileStamp> stamp);

  // The keys to verify with at `now`, re-read first when it is time to look
  // at the file and no other thread is looking.
  std::shared_ptr<const KeyList> CurrentKeys(absl::Time now) const;
  void MaybeReload(absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(reload_mu_);
  // What a token that passed every check says, for its next calls.
  struct VerifiedToken {
    Principal principal;
    internal::TokenValidity validity;
  };
  // Remembers that `token` verified with `keys`, unless those are no longer
  // the current keys.
  void RememberVerified(const KeyList& keys, std::string token,
                        VerifiedToken verified) const;
  void RememberForged(const KeyList& keys, absl::string_view token,
                      absl::Time now) const;

  const VerifierOptions options_;
  const Clock clock_;

  mutable absl::Mutex mu_;
  mutable std::shared_ptr<const KeyList> keys_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time next_check_ ABSL_GUARDED_BY(mu_);
  mutable absl::Status reload_status_ ABSL_GUARDED_BY(mu_);
  // The tokens that passed every check with `keys_` (the same bytes always
  // verify alike), emptied when the keys change and when full. Clients send
  // one token for many calls, and a first verification costs ~0.45 ms (libjwt
  // 1.10 makes OpenSSL 3.0 parse the key's PEM each time); a remembered token
  // costs a lookup and the check of its times, which are all that can change.
  mutable absl::flat_hash_map<std::string, VerifiedToken> verified_
      ABSL_GUARDED_BY(mu_);
  // The tokens whose signature no key of `keys_` verified, by a hash of
  // their bytes, with when: a refused stream is looked at twice (its log
  // line's caller, its guard), and a client may send a forged token again
  // and again. Emptied with `verified_`, and forgotten after a minute (a
  // refusal for another reason than the signature, such as a key that did
  // not parse, does not last).
  mutable absl::flat_hash_map<size_t, absl::Time> forged_ ABSL_GUARDED_BY(mu_);
  mutable std::atomic<int64_t> signature_checks_{0};
  mutable std::atomic<int64_t> unreported_checks_{0};

  // Held by the one thread that looks at the file; the others go on with the
  // keys they have rather than wait for its I/O.
  mutable absl::Mutex reload_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  const std::unique_ptr<internal::FileStamp> stamp_
      ABSL_PT_GUARDED_BY(reload_mu_);
};

// An EC P-256 private key that signs tokens, and the public JWKS that
// verifies them.
//
//   absl::StatusOr<SigningKey> key = SigningKey::Generate();
//   RAPPORT_RETURN_IF_ERROR(key->Save("signing-key.pem"));   // mode 0600
//   std::string jwks = key->PublicJwks();  // give this to the verifiers
//
// Copyable; each copy wipes its private key from memory when destroyed.
class SigningKey {
 public:
  // Reads a PEM EC P-256 private key, PKCS#8 ("BEGIN PRIVATE KEY") or SEC1
  // ("BEGIN EC PRIVATE KEY"), unencrypted. Errors name the path.
  static absl::StatusOr<SigningKey> Load(const std::string& pem_path);
  // The same from the PEM text.
  static absl::StatusOr<SigningKey> FromPem(std::string pem);
  // Makes a new P-256 key pair.
  static absl::StatusOr<SigningKey> Generate();

  SigningKey(const SigningKey&) = default;
  SigningKey(SigningKey&&) = default;
  SigningKey& operator=(const SigningKey&) = default;
  SigningKey& operator=(SigningKey&&) = default;
  ~SigningKey();

  // Writes the private key as PKCS#8 PEM to `path` with mode 0600, atomically:
  // a temp file of mode 0600 next to it is written, synced and renamed over
  // `path`. Errors name the path.
  absl::Status Save(const std::string& path) const;

  // The key id: the RFC 7638 JWK thumbprint (base64url SHA-256 of the
  // canonical public JWK), so the same key always has the same kid.
  const std::string& kid() const { return kid_; }

  // A JWKS document holding the public key:
  // {"keys":[{"kty":"EC","crv":"P-256","x":...,"y":...,"kid":...,
  //           "use":"sig","alg":"ES256"}]}
  // With a `scope`, the JWK also says which subject and role its tokens may
  // name ("rapport_subject", "rapport_max_role"; see jwks.h).
  std::string PublicJwks(const KeyScope& scope = {}) const;

 private:
  friend absl::StatusOr<std::string> MintToken(const SigningKey& key,
                                               const TokenClaims& claims,
                                               absl::Time now);
  SigningKey(std::string private_pem, std::string x, std::string y);

  std::string private_pem_;  // PKCS#8 PEM, what libjwt signs with
  std::string x_;            // public point, 32 bytes each
  std::string y_;
  std::string kid_;
};

// What a minted token says.
struct TokenClaims {
  std::string subject;             // `sub`; required
  std::vector<std::string> roles;  // `roles`; one or more of reader, writer,
                                   // admin
  std::string issuer;              // `iss`; required
  std::string audience;            // `aud`, a single string; required
  absl::Duration ttl = absl::Hours(1);  // exp - iat; at least one second
};

// A compact JWS signed by `key`: header {"alg":"ES256","typ":"JWT","kid":...},
// claims iss, sub, aud, roles (an array), iat (now, whole seconds), nbf (= iat)
// and exp (= iat + ttl). INVALID_ARGUMENT naming the claim when one is empty,
// a role is unknown or ttl is under a second.
absl::StatusOr<std::string> MintToken(const SigningKey& key,
                                      const TokenClaims& claims,
                                      absl::Time now);

}  // namespace rapport::auth

#endif  // RAPPORT_COMMON_AUTH_JWT_H_
