// JSON Web Key Sets (RFC 7517) of the EC P-256 public keys that verify
// Rapport's tokens.
//
// A JWKS file is what a TokenVerifier trusts. A key may be held to one
// subject: "rapport_subject":"service:partner" in its JWK means that tokens
// it signs are trusted only when they name that subject, and only up to the
// role "rapport_max_role" says (reader when absent). A service's own key is
// published so, so that whoever holds it cannot mint tokens for anyone else.
// Keys rotate by publishing the new
// key next to the old one, then dropping the old one once its tokens expired:
//
//   absl::StatusOr<std::string> both = rapport::auth::MergeJwks(
//       {old_key.PublicJwks(), new_key.PublicJwks()});
//   // write *both to the verifiers' jwks_file (write a temp file, rename it)
//
// Only keys with "kty":"EC" and "crv":"P-256" are used; keys of other types, or
// marked for another "use" or "alg" than "sig"/"ES256", are skipped, so a JWKS
// shared with other systems may hold them. A P-256 key that is broken (bad
// coordinates, a point not on the curve) or that holds its private part ("d")
// is an error, not skipped.
#ifndef RAPPORT_COMMON_AUTH_JWKS_H_
#define RAPPORT_COMMON_AUTH_JWKS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rapport::auth {

// One EC P-256 public key of a JWKS, ready to verify with.
struct EcPublicKey {
  // The key's "kid", or its RFC 7638 thumbprint when the JWK has none (which is
  // the kid SigningKey gives its tokens).
  std::string kid;
  // The affine coordinates, 32 big-endian bytes each.
  std::string x;
  std::string y;
  // The key as a SubjectPublicKeyInfo PEM, the form libjwt verifies with.
  std::string spki_pem;
  // "rapport_subject": the one subject its tokens may name; empty: any.
  std::string subject;
  // "rapport_max_role" ("reader", "writer" or "admin"): the highest role its
  // tokens may hold; empty: any ("reader" when `subject` is set and the JWK
  // names none).
  std::string max_role;
};

// The restriction a published key carries (see above); empty: none.
struct KeyScope {
  std::string subject;
  std::string max_role;  // "reader" when empty and `subject` is set
};

// The usable keys of a JWKS document, in document order. INVALID_ARGUMENT when
// the text is not a JWKS, a P-256 key is broken or private, two keys share a
// kid, or no key is usable.
//
//   absl::StatusOr<std::vector<EcPublicKey>> keys = ParseJwks(text);
absl::StatusOr<std::vector<EcPublicKey>> ParseJwks(absl::string_view json);

// The RFC 7638 thumbprint of the EC P-256 public key (x, y): the base64url
// SHA-256 of {"crv":"P-256","kty":"EC","x":"...","y":"..."}. `x` and `y` are
// the 32-byte coordinates.
std::string JwkThumbprint(absl::string_view x, absl::string_view y);

// Merges the keys of several JWKS documents into one document, for key
// rotation: old and new keys side by side. Keys appear in the order given; a
// key present in several documents appears once, with the scope of its last
// appearance (so that a key can be given a scope). Keys that are not P-256 pass
// through unchanged. INVALID_ARGUMENT ("documents[i]: ...") when a document is
// not a valid JWKS, when two different keys share a kid, or when the result
// would hold no usable key.
absl::StatusOr<std::string> MergeJwks(
    const std::vector<std::string>& documents);

}  // namespace rapport::auth

#endif  // RAPPORT_COMMON_AUTH_JWKS_H_
