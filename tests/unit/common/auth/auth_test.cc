#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/auth/internal.h"
#include "common/auth/jwks.h"
#include "common/auth/jwt.h"

namespace rapport::auth {

// How gTest shows a verification result (found by argument-dependent lookup,
// so it lives in the namespace of Principal).
void PrintTo(const absl::StatusOr<Principal>& result, std::ostream* os) {
  if (!result.ok()) {
    *os << result.status();
    return;
  }
  *os << "Principal{subject=\"" << result->subject
      << "\", role=" << RoleName(result->role) << "}";
}

namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kIssuer[] = "https://auth.rapport.test";
constexpr char kAudience[] = "rapport.customer";

// A fixed key, generated with `openssl ecparam -name prime256v1 -genkey`, in
// both PEM forms; its thumbprint was computed outside this library (Python's
// hashlib over the RFC 7638 canonical JWK).
constexpr char kSec1Pem[] = R"(-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIK2/W0WERnlRTx/hkzY1245ZDlu+KmwxLA7aZVOYHhdooAoGCCqGSM49
AwEHoUQDQgAExRbpD6X+CUsWeCE2cBLiKQGtbCHqmPFFXgmDhBmdc6NOLF4xPwh2
f8l4hmeF5Ouilj7l5YE7hXLpwK27qppziA==
-----END EC PRIVATE KEY-----
)";
constexpr char kPkcs8Pem[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgrb9bRYRGeVFPH+GT
NjXbjlkOW74qbDEsDtplU5geF2ihRANCAATFFukPpf4JSxZ4ITZwEuIpAa1sIeqY
8UVeCYOEGZ1zo04sXjE/CHZ/yXiGZ4Xk66KWPuXlgTuFcunArbuqmnOI
-----END PRIVATE KEY-----
)";
constexpr char kFixedX[] = "xRbpD6X-CUsWeCE2cBLiKQGtbCHqmPFFXgmDhBmdc6M";
constexpr char kFixedY[] = "TixeMT8Idn_JeIZnheTropY-5eWBO4Vy6cCtu6qac4g";
constexpr char kFixedKid[] = "V5xElJlEpjtQVYPJXkTkaNuBF7qlrqrpk0UblzmXx9M";
constexpr char kP384Pem[] = R"(-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDCIi19exSBPwiTykzx+nzqXI08XD18C+IZuf6/F3iJ+Lc8vcgV5F6Uj
UF2B/0G+z9ugBwYFK4EEACKhZANiAAShFJ1z2BivS3k2+TrLmBCxp6tKEBsGbl1/
KYPQbXVyGFgZdVAsTWLLQg1aim7g3bs+cUMvG48FOr+RM8ywDFoSVFZjek7qiyff
YXpRKJZUEhD04fmTXFcwANhzv0P4w9M=
-----END EC PRIVATE KEY-----
)";

// The message of `status`, as a std::string for gMock's string matchers
// (Debian's absl::string_view is not std::string_view).
std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

std::string B64(absl::string_view data) {
  return internal::Base64UrlEncode(data);
}

// A P-256 key the tests also sign with by hand, through OpenSSL alone.
struct TestKey {
  internal::PkeyPtr pkey;
  std::string public_pem;  // SPKI PEM, the form the verifier gives libjwt
  std::optional<SigningKey> signing;
};

TestKey MakeTestKey() {
  TestKey key;
  key.pkey.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_NE(key.pkey, nullptr);
  internal::BioPtr priv(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(priv.get(), key.pkey.get(), nullptr,
                                     nullptr, 0, nullptr, nullptr),
            1);
  internal::BioPtr pub(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(pub.get(), key.pkey.get()), 1);
  key.public_pem = internal::BioContents(pub.get());
  absl::StatusOr<SigningKey> signing =
      SigningKey::FromPem(internal::BioContents(priv.get()));
  EXPECT_TRUE(signing.ok()) << signing.status();
  if (signing.ok()) key.signing = *std::move(signing);
  return key;
}

// An ES256 JWS over `header` and `claims` (JSON texts), signed with OpenSSL
// and encoded by hand: R || S, 32 bytes each.
std::string SignEs256(EVP_PKEY* key, absl::string_view header,
                      absl::string_view claims) {
  std::string input = absl::StrCat(B64(header), ".", B64(claims));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t size = 0;
  EXPECT_EQ(EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestSign(ctx, nullptr, &size,
                           reinterpret_cast<const unsigned char*>(input.data()),
                           input.size()),
            1);
  std::string der(size, '\0');
  EXPECT_EQ(
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &size,
                     reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()),
      1);
  EVP_MD_CTX_free(ctx);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(size));
  EXPECT_NE(sig, nullptr);
  std::string raw(64, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(&raw[0]),
               32);
  BN_bn2binpad(ECDSA_SIG_get0_s(sig),
               reinterpret_cast<unsigned char*>(&raw[32]), 32);
  ECDSA_SIG_free(sig);
  return absl::StrCat(input, ".", B64(raw));
}

// Whether the ES256 signature of compact JWS `token` verifies with `key`,
// checked with OpenSSL alone (R || S turned back into DER).
bool VerifyEs256ByHand(EVP_PKEY* key, absl::string_view token) {
  size_t dot = token.rfind('.');
  if (dot == absl::string_view::npos) return false;
  absl::string_view input = token.substr(0, dot);
  std::optional<std::string> raw =
      internal::Base64UrlDecode(token.substr(dot + 1));
  if (!raw.has_value() || raw->size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(
      sig,
      BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()), 32,
                nullptr),
      BN_bin2bn(reinterpret_cast<const unsigned char*>(raw->data()) + 32, 32,
                nullptr));
  unsigned char* der = nullptr;
  int der_size = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      der_size > 0 &&
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<size_t>(der_size),
                       reinterpret_cast<const unsigned char*>(input.data()),
                       input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ERR_clear_error();
  return ok;
}

// An HS256 JWS with `secret` as the HMAC key.
std::string SignHs256(absl::string_view secret, absl::string_view header,
                      absl::string_view claims) {
  std::string input = absl::StrCat(B64(header), ".", B64(claims));
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EXPECT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                 reinterpret_cast<const unsigned char*>(input.data()),
                 input.size(), mac, &size),
            nullptr);
  return absl::StrCat(
      input, ".", B64(absl::string_view(reinterpret_cast<char*>(mac), size)));
}

std::string EsHeader(absl::string_view kid) {
  return absl::StrCat(R"({"alg":"ES256","typ":"JWT","kid":")", kid, R"("})");
}

// The claims of a hand-made token as raw JSON values; an empty value leaves
// the claim out.
struct RawClaims {
  std::string iss = absl::StrCat("\"", kIssuer, "\"");
  std::string sub = "\"alice\"";
  std::string aud = absl::StrCat("\"", kAudience, "\"");
  std::string roles = R"(["reader"])";
  std::string iat;
  std::string nbf;
  std::string exp;

  std::string Json() const {
    std::vector<std::string> members;
    auto add = [&members](absl::string_view name, const std::string& value) {
      if (!value.empty())
        members.push_back(absl::StrCat("\"", name, "\":", value));
    };
    add("iss", iss);
    add("sub", sub);
    add("aud", aud);
    add("roles", roles);
    add("iat", iat);
    add("nbf", nbf);
    add("exp", exp);
    return absl::StrCat("{", absl::StrJoin(members, ","), "}");
  }
};

void WriteFile(const std::string& path, absl::string_view text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  ASSERT_TRUE(out.good()) << path;
}

// Rewrites `path` in place and gives it the mtime `seconds`, so that the
// change is seen whatever the file system's time stamp granularity.
void RewriteFile(const std::string& path, absl::string_view text,
                 int64_t seconds) {
  WriteFile(path, text);
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

// Replaces `path` by rename, as operators are told to.
void ReplaceFile(const std::string& path, absl::string_view text) {
  std::string temp = path + ".new";
  WriteFile(temp, text);
  ASSERT_EQ(std::rename(temp.c_str(), path.c_str()), 0);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir =
        (std::filesystem::temp_directory_path() / "rapport_auth_test.XXXXXX")
            .string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    jwks_path_ = dir_ + "/jwks.json";
    key_ = MakeTestKey();
    ASSERT_TRUE(key_.signing.has_value());
    WriteFile(jwks_path_, key_.signing->PublicJwks());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  VerifierOptions Options() const {
    return {.jwks_file = jwks_path_, .issuer = kIssuer, .audience = kAudience};
  }
  TokenVerifier::Clock Clock() {
    return [this] { return now_; };
  }
  std::unique_ptr<TokenVerifier> Verifier(
      std::optional<VerifierOptions> options = std::nullopt) {
    absl::StatusOr<std::unique_ptr<TokenVerifier>> verifier =
        TokenVerifier::Create(options.value_or(Options()), Clock());
    EXPECT_TRUE(verifier.ok()) << verifier.status();
    return verifier.ok() ? *std::move(verifier) : nullptr;
  }

  TokenClaims Claims(std::vector<std::string> roles = {"reader"}) const {
    return {.subject = "alice",
            .roles = std::move(roles),
            .issuer = kIssuer,
            .audience = kAudience,
            .ttl = absl::Hours(1)};
  }
  std::string Mint(const SigningKey& key, const TokenClaims& claims) {
    absl::StatusOr<std::string> token = MintToken(key, claims, now_);
    EXPECT_TRUE(token.ok()) << token.status();
    return token.value_or("");
  }
  std::string Mint(const SigningKey& key) { return Mint(key, Claims()); }

  // Claims valid for an hour from now.
  RawClaims Raw() const {
    RawClaims raw;
    int64_t now = absl::ToUnixSeconds(now_);
    raw.iat = raw.nbf = absl::StrCat(now);
    raw.exp = absl::StrCat(now + 3600);
    return raw;
  }
  std::string HandToken(const RawClaims& claims) {
    return SignEs256(key_.pkey.get(), EsHeader(key_.signing->kid()),
                     claims.Json());
  }

  static std::string Bearer(absl::string_view token) {
    return absl::StrCat("Bearer ", token);
  }

  std::string dir_;
  std::string jwks_path_;
  TestKey key_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

MATCHER_P2(IsStatus, code, message,
           absl::StrCat("is ", absl::StatusCodeToString(code), " \"", message,
                        "\"")) {
  return arg.status().code() == code && arg.status().message() == message;
}

auto Unauthenticated(absl::string_view message) {
  return IsStatus(absl::StatusCode::kUnauthenticated, std::string(message));
}

// --- Roles ------------------------------------------------------------------

TEST(Role, NamesRoundTripAndUnknownNamesAreRefused) {
  for (Role role : {Role::kReader, Role::kWriter, Role::kAdmin}) {
    EXPECT_EQ(ParseRole(RoleName(role)), role);
  }
  EXPECT_EQ(RoleName(Role::kAdmin), "admin");
  EXPECT_EQ(ParseRole("none"), std::nullopt);
  EXPECT_EQ(ParseRole("Admin"), std::nullopt);
  EXPECT_EQ(ParseRole(""), std::nullopt);
}

// --- Accepted tokens
// ----------------------------------------------------------

TEST_F(AuthTest, MintedTokenVerifiesWithSubjectAndRole) {
  auto verifier = Verifier();
  absl::StatusOr<Principal> principal =
      verifier->Verify(Bearer(Mint(*key_.signing)));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "alice");
  EXPECT_EQ(principal->role, Role::kReader);
  EXPECT_THAT(principal->roles, ::testing::ElementsAre("reader"));
}

TEST_F(AuthTest, MintedTokenHasTheDocumentedHeaderAndClaims) {
  std::string token = Mint(*key_.signing, Claims({"writer"}));
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  ASSERT_EQ(parts.size(), 3u);
  internal::JsonPtr header =
      internal::ParseJsonObject(*internal::Base64UrlDecode(parts[0]));
  internal::JsonPtr claims =
      internal::ParseJsonObject(*internal::Base64UrlDecode(parts[1]));
  ASSERT_NE(header, nullptr);
  ASSERT_NE(claims, nullptr);
  EXPECT_EQ(internal::StringMember(header.get(), "alg"), "ES256");
  EXPECT_EQ(internal::StringMember(header.get(), "typ"), "JWT");
  EXPECT_EQ(internal::StringMember(header.get(), "kid"), key_.signing->kid());
  EXPECT_EQ(internal::StringMember(claims.get(), "iss"), kIssuer);
  EXPECT_EQ(internal::StringMember(claims.get(), "aud"), kAudience);
  EXPECT_EQ(internal::StringMember(claims.get(), "sub"), "alice");
  const int64_t now = absl::ToUnixSeconds(now_);
  EXPECT_EQ(json_integer_value(json_object_get(claims.get(), "iat")), now);
  EXPECT_EQ(json_integer_value(json_object_get(claims.get(), "nbf")), now);
  EXPECT_EQ(json_integer_value(json_object_get(claims.get(), "exp")),
            now + 3600);
  const json_t* roles = json_object_get(claims.get(), "roles");
  ASSERT_TRUE(json_is_array(roles));
  EXPECT_STREQ(json_string_value(json_array_get(roles, 0)), "writer");
  // A standard JWS signature (R || S, 64 bytes), not something only libjwt
  // reads: OpenSSL alone verifies it.
  EXPECT_EQ(internal::Base64UrlDecode(parts[2])->size(), 64u);
  EXPECT_TRUE(VerifyEs256ByHand(key_.pkey.get(), token));
  TestKey other = MakeTestKey();
  EXPECT_FALSE(VerifyEs256ByHand(other.pkey.get(), token));
}

TEST_F(AuthTest, HighestRoleWins) {
  auto verifier = Verifier();
  absl::StatusOr<Principal> principal = verifier->Verify(
      Bearer(Mint(*key_.signing, Claims({"reader", "admin", "writer"}))));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->role, Role::kAdmin);
  EXPECT_THAT(principal->roles,
              ::testing::ElementsAre("reader", "admin", "writer"));
}

TEST_F(AuthTest, UnknownRolesAreKeptButGrantNothing) {
  auto verifier = Verifier();
  RawClaims claims = Raw();
  claims.roles = R"(["auditor","writer"])";
  absl::StatusOr<Principal> principal =
      verifier->Verify(Bearer(HandToken(claims)));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->role, Role::kWriter);
  EXPECT_THAT(principal->roles, ::testing::ElementsAre("auditor", "writer"));
}

TEST_F(AuthTest, SchemeIsCaseInsensitive) {
  auto verifier = Verifier();
  std::string token = Mint(*key_.signing);
  for (absl::string_view scheme : {"bearer", "BEARER", "BeArEr"}) {
    EXPECT_TRUE(verifier->Verify(absl::StrCat(scheme, " ", token)).ok())
        << scheme;
  }
  EXPECT_THAT(verifier->Verify(absl::StrCat("Basic ", token)),
              Unauthenticated("missing bearer token"));
}

TEST_F(AuthTest, HandBuiltTokenVerifies) {
  // The hand-built tokens below differ from this one in one thing each.
  auto verifier = Verifier();
  absl::StatusOr<Principal> principal =
      verifier->Verify(Bearer(HandToken(Raw())));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "alice");
}

// --- Time
// ---------------------------------------------------------------------

TEST_F(AuthTest, ExpiredTokenIsRefusedBeyondLeeway) {
  auto verifier = Verifier();
  std::string token = Bearer(Mint(*key_.signing));  // exp = now + 1h
  const absl::Time minted = now_;
  now_ = minted + absl::Hours(1) + absl::Seconds(29);
  EXPECT_TRUE(verifier->Verify(token).ok());
  // The verifier remembers the token's signature, not its validity.
  now_ = minted + absl::Hours(1) + absl::Seconds(30);
  EXPECT_THAT(verifier->Verify(token), Unauthenticated("token expired"));
}

// A verifier with other audiences takes them as well as its own (the scoring
// service, the services' own tokens); one without refuses them.
TEST_F(AuthTest, OtherAudiencesAreTakenOnlyWhereListed) {
  TokenClaims claims = Claims();
  claims.audience = "elsewhere.scoring";
  const std::string token = Bearer(Mint(*key_.signing, claims));
  EXPECT_THAT(Verifier()->Verify(token), Unauthenticated("wrong audience"));
  VerifierOptions scoring = Options();
  scoring.other_audiences = {"elsewhere.scoring"};
  auto verifier = Verifier(scoring);
  EXPECT_TRUE(verifier->Verify(token).ok());
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*key_.signing))).ok());
}

// A token valid for longer than max_lifetime (7 days by default) when first
// seen is refused: a leaked one is good for a bounded time.
TEST_F(AuthTest, ATokenThatLivesTooLongIsRefused) {
  auto verifier = Verifier();
  TokenClaims claims = Claims();
  claims.ttl = absl::Hours(7 * 24);
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*key_.signing, claims))).ok());
  claims.ttl = absl::Hours(7 * 24) + absl::Minutes(1);
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*key_.signing, claims))),
              Unauthenticated("token lives too long"));
  // Counted from `iat`: a 30-day token is refused on its last days too.
  claims.ttl = absl::Hours(30 * 24);
  const std::string month = Bearer(Mint(*key_.signing, claims));
  now_ += absl::Hours(25 * 24);
  EXPECT_THAT(verifier->Verify(month), Unauthenticated("token lives too long"));
  now_ -= absl::Hours(25 * 24);
  VerifierOptions unbounded = Options();
  unbounded.max_lifetime = absl::ZeroDuration();
  EXPECT_TRUE(
      Verifier(unbounded)->Verify(Bearer(Mint(*key_.signing, claims))).ok());
  VerifierOptions negative = Options();
  negative.max_lifetime = -absl::Seconds(1);
  EXPECT_FALSE(TokenVerifier::Create(negative).ok());
}

TEST_F(AuthTest, NotYetValidTokenIsRefusedBeyondLeeway) {
  auto verifier = Verifier();
  std::string token = Bearer(Mint(*key_.signing));  // nbf = now
  const absl::Time minted = now_;
  now_ = minted - absl::Seconds(30);
  EXPECT_TRUE(verifier->Verify(token).ok());
  now_ = minted - absl::Seconds(31);
  EXPECT_THAT(verifier->Verify(token), Unauthenticated("token not yet valid"));
}

TEST_F(AuthTest, ExpiryIsRequiredAndMustBeANumber) {
  auto verifier = Verifier();
  RawClaims claims = Raw();
  claims.exp = "";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(claims))),
              Unauthenticated("token has no expiry"));
  claims.exp = absl::StrCat("\"", absl::ToUnixSeconds(now_) + 60, "\"");
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(claims))),
              Unauthenticated("malformed token"));
  claims.exp = absl::StrCat(absl::ToUnixSeconds(now_) + 60, ".5");  // a real
  EXPECT_TRUE(verifier->Verify(Bearer(HandToken(claims))).ok());
}

// --- Issuer, audience, subject, roles
// -----------------------------------------

TEST_F(AuthTest, WrongIssuerIsRefused) {
  auto verifier = Verifier();
  TokenClaims claims = Claims();
  claims.issuer = "https://evil.example";
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*key_.signing, claims))),
              Unauthenticated("wrong issuer"));
  RawClaims raw = Raw();
  raw.iss = "";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("wrong issuer"));
}

TEST_F(AuthTest, WrongAudienceIsRefused) {
  auto verifier = Verifier();
  TokenClaims claims = Claims();
  claims.audience = "rapport.scoring";
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*key_.signing, claims))),
              Unauthenticated("wrong audience"));
  RawClaims raw = Raw();
  raw.aud = "";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("wrong audience"));
}

TEST_F(AuthTest, AudienceMayBeAnArray) {
  auto verifier = Verifier();
  RawClaims raw = Raw();
  raw.aud = absl::StrCat(R"(["rapport.scoring",")", kAudience, R"("])");
  EXPECT_TRUE(verifier->Verify(Bearer(HandToken(raw))).ok());
  raw.aud = R"(["rapport.scoring","rapport.other"])";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("wrong audience"));
  raw.aud = R"([])";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("wrong audience"));
  raw.aud = absl::StrCat(R"([7,")", kAudience, R"("])");
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("malformed token"));
}

TEST_F(AuthTest, MissingSubjectIsRefused) {
  auto verifier = Verifier();
  RawClaims raw = Raw();
  raw.sub = "";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("token has no subject"));
  raw.sub = R"("")";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("token has no subject"));
  raw.sub = "42";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("malformed token"));
  // Every change records the subject as its actor (256 bytes at most).
  raw.sub = absl::StrCat("\"", std::string(256, 'a'), "\"");
  EXPECT_TRUE(verifier->Verify(Bearer(HandToken(raw))).ok());
  raw.sub = absl::StrCat("\"", std::string(257, 'a'), "\"");
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
              Unauthenticated("token subject is longer than 256 bytes"));
  // Nor a line break (or another control character) into those records,
  // nor anything invisible that makes one name look like another.
  for (const char* sub : {R"("evil\n{\"actor\":\"x\"}")",
                          R"("tab\there")",
                          R"("del\u007f")",
                          R"("c1\u0085")",
                          R"("line\u2028sep")",
                          R"("\u200bservice:customer")",
                          R"("admin\u200d")",
                          R"("bidi\u202eoverride")",
                          R"("isolate\u2066")",
                          R"("\ufeffbom")",
                          R"("soft\u00adhyphen")",
                          "\"tag\xf3\xa0\x80\x81\"",
                          R"("alice\u3164")" /* Hangul filler */,
                          R"("vs\ufe0f")",
                          R"("cgj\u034f")",
                          R"("braille\u2800")",
                          R"("alice ")",
                          R"("\u00a0alice")",
                          R"(" alice")",
                          R"("ad\u200amin")",
                          R"("a\u00a0b")"}) {
    raw.sub = sub;
    EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
                Unauthenticated(
                    "token subject contains a control or invisible character"))
        << sub;
  }
  for (const char* sub : {R"("ünïcode:ok")", R"("名前")", R"("emoji 🙂")",
                          R"("Ada Lovelace")", R"("superscript\u2070")"}) {
    raw.sub = sub;
    EXPECT_TRUE(verifier->Verify(Bearer(HandToken(raw))).ok()) << sub;
  }
}

TEST_F(AuthTest, NoKnownRoleIsPermissionDenied) {
  auto verifier = Verifier();
  const auto denied =
      IsStatus(absl::StatusCode::kPermissionDenied, "token has no known role");
  RawClaims raw = Raw();
  raw.roles = R"(["guest","Admin"])";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))), denied);
  raw.roles = "[]";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))), denied);
  raw.roles = "";
  EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))), denied);
}

TEST_F(AuthTest, RolesMustBeAnArrayOfStrings) {
  auto verifier = Verifier();
  RawClaims raw = Raw();
  for (const char* roles : {R"("admin")", R"("reader writer")",
                            R"(["admin",3])", R"({"admin":true})"}) {
    raw.roles = roles;
    EXPECT_THAT(verifier->Verify(Bearer(HandToken(raw))),
                Unauthenticated("malformed token"))
        << roles;
  }
}

// --- Keys and signatures
// ------------------------------------------------------

TEST_F(AuthTest, TokenOfAnotherKeyIsRefused) {
  auto verifier = Verifier();
  TestKey other = MakeTestKey();
  // Minted by the other key: its kid is not in the JWKS.
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*other.signing))),
              Unauthenticated("unknown signing key"));
  // Signed by the other key under the trusted key's kid.
  EXPECT_THAT(
      verifier->Verify(Bearer(SignEs256(
          other.pkey.get(), EsHeader(key_.signing->kid()), Raw().Json()))),
      Unauthenticated("signature does not verify"));
}

// A service's own key is published held to its subject: whoever holds it
// can call as that service, where services' tokens go (the scoring
// service's audience), and mint nothing else.
TEST_F(AuthTest, AKeyHeldToASubjectSignsForItAlone) {
  TestKey service = MakeTestKey();
  ASSERT_TRUE(service.signing.has_value());
  absl::StatusOr<std::string> jwks =
      MergeJwks({key_.signing->PublicJwks(),
                 service.signing->PublicJwks({.subject = "service:partner"})});
  ASSERT_TRUE(jwks.ok()) << jwks.status();
  WriteFile(jwks_path_, *jwks);
  VerifierOptions scoring_options = Options();
  scoring_options.other_audiences = {"rapport.scoring"};
  auto scoring = Verifier(scoring_options);
  TokenClaims own = Claims({"reader"});
  own.subject = "service:partner";
  own.audience = "rapport.scoring";
  absl::StatusOr<Principal> principal =
      scoring->Verify(Bearer(Mint(*service.signing, own)));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->subject, "service:partner");
  TokenClaims other = Claims();
  other.audience = "rapport.scoring";
  EXPECT_THAT(scoring->Verify(Bearer(Mint(*service.signing, other))),
              Unauthenticated("the signing key may not sign for this subject"));
  TokenClaims admin = own;
  admin.roles = {"admin"};
  EXPECT_THAT(scoring->Verify(Bearer(Mint(*service.signing, admin))),
              Unauthenticated("the signing key may not grant this role"));
  // Its tokens for the deployment's own audience count nowhere, not even
  // where that audience is taken: a thief of the key reads nothing there.
  TokenClaims everywhere = own;
  everywhere.audience = Options().audience;
  auto plain = Verifier();
  for (TokenVerifier* v : {scoring.get(), plain.get()}) {
    EXPECT_THAT(
        v->Verify(Bearer(Mint(*service.signing, everywhere))),
        Unauthenticated("the signing key may not sign for this service"));
  }
  // The people's key, held to nothing, signs for anyone, anywhere, but a
  // service: "service:" subjects are the services' own keys' alone.
  for (auto [v, claims] : std::vector<std::pair<TokenVerifier*, TokenClaims>>{
           {scoring.get(), admin},
           {scoring.get(), everywhere},
           {plain.get(), everywhere}}) {
    EXPECT_THAT(v->Verify(Bearer(Mint(*key_.signing, claims))),
                Unauthenticated("the signing key may not sign for a service "
                                "(a \"service:\" subject needs that "
                                "service's own key)"));
    // Each of these reads as the service all the same.
    for (const char* subject :
         {"SERVICE:partner",
          "\uff53\uff45\uff52\uff56\uff49\uff43\uff45\uff1apartner",
          "service\uff1apartner", "Service\u2236partner",
          "\u0455\u0435rvice:partner" /* Cyrillic dze and ie */,
          "SERVlCE:partner" /* a lower-case L for the capital I */,
          "Servlce:partner", "serv1ce:partner",
          "\u017fervice:partner" /* long s */}) {
      claims.subject = subject;
      EXPECT_THAT(v->Verify(Bearer(Mint(*key_.signing, claims))),
                  Unauthenticated("the signing key may not sign for a service "
                                  "(a \"service:\" subject needs that "
                                  "service's own key)"))
          << subject;
    }
    claims.subject = "ops:partner";
    EXPECT_TRUE(v->Verify(Bearer(Mint(*key_.signing, claims))).ok());
  }
  // "service" with no colon, or the prefix elsewhere, is anyone's name.
  TokenClaims near = everywhere;
  for (const char* subject : {"service", "services:partner", "a service:x",
                              "servic\uff45", "\uff53ervice-partner"}) {
    near.subject = subject;
    EXPECT_TRUE(plain->Verify(Bearer(Mint(*key_.signing, near))).ok())
        << subject;
  }
}

// A key held to a role alone (published so by hand) stays held to it when
// written again, as a rerun of `rapportctl auth keygen` writes it.
TEST_F(AuthTest, AKeyHeldToARoleAloneKeepsItsLimitWhenWrittenAgain) {
  absl::StatusOr<std::vector<EcPublicKey>> keys =
      ParseJwks(key_.signing->PublicJwks({.max_role = "reader"}));
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  EXPECT_EQ((*keys)[0].subject, "");
  EXPECT_EQ((*keys)[0].max_role, "reader");
  WriteFile(jwks_path_, key_.signing->PublicJwks({.max_role = "reader"}));
  auto verifier = Verifier();
  EXPECT_TRUE(
      verifier->Verify(Bearer(Mint(*key_.signing, Claims({"reader"})))).ok());
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*key_.signing, Claims({"admin"})))),
              Unauthenticated("the signing key may not grant this role"));
  // Unscoped, it says nothing of a limit.
  keys = ParseJwks(key_.signing->PublicJwks());
  ASSERT_TRUE(keys.ok()) << keys.status();
  EXPECT_EQ((*keys)[0].max_role, "");
}

TEST_F(AuthTest, TamperedClaimsDoNotVerify) {
  auto verifier = Verifier();
  std::string token = Mint(*key_.signing, Claims({"reader"}));
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  std::string claims = *internal::Base64UrlDecode(parts[1]);
  size_t at = claims.find("\"reader\"");
  ASSERT_NE(at, std::string::npos);
  claims.replace(at, 8, "\"admin\"");
  parts[1] = B64(claims);
  EXPECT_THAT(verifier->Verify(Bearer(absl::StrJoin(parts, "."))),
              Unauthenticated("signature does not verify"));
}

TEST_F(AuthTest, UnknownKidIsRefused) {
  auto verifier = Verifier();
  EXPECT_THAT(verifier->Verify(Bearer(SignEs256(
                  key_.pkey.get(), EsHeader("no-such-key"), Raw().Json()))),
              Unauthenticated("unknown signing key"));
}

TEST_F(AuthTest, TokenWithoutKidIsTriedAgainstEveryKey) {
  TestKey second = MakeTestKey();
  absl::StatusOr<std::string> both =
      MergeJwks({key_.signing->PublicJwks(), second.signing->PublicJwks()});
  ASSERT_TRUE(both.ok()) << both.status();
  WriteFile(jwks_path_, *both);
  auto verifier = Verifier();
  constexpr char kNoKid[] = R"({"alg":"ES256","typ":"JWT"})";
  EXPECT_TRUE(
      verifier->Verify(Bearer(SignEs256(key_.pkey.get(), kNoKid, Raw().Json())))
          .ok());
  EXPECT_TRUE(
      verifier
          ->Verify(Bearer(SignEs256(second.pkey.get(), kNoKid, Raw().Json())))
          .ok());
  TestKey stranger = MakeTestKey();
  EXPECT_THAT(verifier->Verify(
                  Bearer(SignEs256(stranger.pkey.get(), kNoKid, Raw().Json()))),
              Unauthenticated("signature does not verify"));
}

// --- Algorithms
// ---------------------------------------------------------------

TEST_F(AuthTest, AlgNoneIsRefused) {
  auto verifier = Verifier();
  for (const std::string& header :
       {std::string(R"({"alg":"none","typ":"JWT"})"),
        absl::StrCat(R"({"alg":"none","kid":")", key_.signing->kid(),
                     R"("})")}) {
    std::string token = absl::StrCat(B64(header), ".", B64(Raw().Json()), ".");
    EXPECT_THAT(verifier->Verify(Bearer(token)),
                Unauthenticated("algorithm none is not allowed"));
  }
}

TEST_F(AuthTest, Hs256SignedWithThePublicKeyPemIsRefused) {
  auto verifier = Verifier();
  std::string header = absl::StrCat(R"({"alg":"HS256","typ":"JWT","kid":")",
                                    key_.signing->kid(), R"("})");
  std::string token = SignHs256(key_.public_pem, header, Raw().Json());

  // The forgery is real: libjwt alone accepts it with the key the verifier
  // holds, which is what the header check is there for.
  jwt_t* jwt = nullptr;
  EXPECT_EQ(
      jwt_decode(&jwt, token.c_str(),
                 reinterpret_cast<const unsigned char*>(key_.public_pem.data()),
                 static_cast<int>(key_.public_pem.size())),
      0);
  jwt_free(jwt);
  absl::StatusOr<std::vector<EcPublicKey>> keys =
      ParseJwks(key_.signing->PublicJwks());
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ((*keys)[0].spki_pem, key_.public_pem);

  EXPECT_THAT(verifier->Verify(Bearer(token)),
              Unauthenticated("algorithm HS256 is not allowed"));
}

TEST_F(AuthTest, OtherAlgorithmsAreRefusedWithoutEchoingUnknownNames) {
  auto verifier = Verifier();
  auto token_with = [this](absl::string_view alg) {
    return Bearer(SignEs256(key_.pkey.get(),
                            absl::StrCat(R"({"alg":")", alg, R"(","kid":")",
                                         key_.signing->kid(), R"("})"),
                            Raw().Json()));
  };
  EXPECT_THAT(verifier->Verify(token_with("RS256")),
              Unauthenticated("algorithm RS256 is not allowed"));
  EXPECT_THAT(verifier->Verify(token_with("ES512")),
              Unauthenticated("algorithm ES512 is not allowed"));
  // libjwt reads "es256" as ES256; this library does not.
  EXPECT_THAT(verifier->Verify(token_with("es256")),
              Unauthenticated("unsupported algorithm"));
  EXPECT_THAT(verifier->Verify(token_with("<script>")),
              Unauthenticated("unsupported algorithm"));
  EXPECT_THAT(verifier->Verify(Bearer(SignEs256(
                  key_.pkey.get(), R"({"typ":"JWT"})", Raw().Json()))),
              Unauthenticated("malformed token"));
}

// --- Malformed input
// ----------------------------------------------------------

TEST_F(AuthTest, MissingBearerToken) {
  auto verifier = Verifier();
  for (const char* value : {"", "Bearer", "Bearer ", "  Bearer   ", "Basic abc",
                            "Bearertoken", "eyJhbGciOiJFUzI1NiJ9.e30.sig"}) {
    EXPECT_THAT(verifier->Verify(value),
                Unauthenticated("missing bearer token"))
        << "\"" << value << "\"";
  }
}

TEST_F(AuthTest, MalformedTokens) {
  auto verifier = Verifier();
  std::string good = Mint(*key_.signing);
  std::vector<std::string> parts = absl::StrSplit(good, '.');
  const std::string es_header = B64(EsHeader(key_.signing->kid()));
  std::vector<std::string> tokens = {
      "a.b",
      "a.b.c.d",
      "!!!.###.$$$",
      "....",
      absl::StrCat(parts[0], ".", parts[1]),                      // two parts
      absl::StrCat(parts[0], ".", parts[1], "."),                 // empty sig
      absl::StrCat(parts[0], ".", parts[1], ".", parts[2], "."),  // four parts
      absl::StrCat(good, "=="),                                   // padding
      absl::StrCat(parts[0], ".", parts[1], ".", parts[2].substr(1)),
      absl::StrCat(parts[0], ".", parts[1], ".+", parts[2].substr(1)),
      absl::StrCat(parts[0], " .", parts[1], ".", parts[2]),
      absl::StrCat(B64("not json"), ".", parts[1], ".", parts[2]),
      absl::StrCat(B64("[1,2]"), ".", parts[1], ".", parts[2]),
      absl::StrCat(es_header, ".", B64("not json"), ".", parts[2]),
      absl::StrCat(es_header, ".", B64("\"a string\""), ".", parts[2]),
      absl::StrCat(es_header, ".", B64("{\"sub\":\"a\",\"sub\":\"b\"}"), ".",
                   parts[2]),
      std::string(9000, 'A') + "." + parts[1] + "." + parts[2],
  };
  for (const std::string& token : tokens) {
    EXPECT_THAT(verifier->Verify(Bearer(token)),
                Unauthenticated("malformed token"))
        << token;
  }
}

TEST_F(AuthTest, HeaderMustBeClean) {
  auto verifier = Verifier();
  const std::string kid = key_.signing->kid();
  for (const std::string& header : {
           absl::StrCat(R"({"alg":"ES256","kid":")", kid,
                        R"(","crit":["exp"]})"),
           absl::StrCat(R"({"alg":"ES256","kid":")", kid,
                        R"(","typ":"at+jwt"})"),
           std::string(R"({"alg":"ES256","kid":7})"),
           absl::StrCat(R"({"alg":"ES256","alg":"ES256","kid":")", kid,
                        R"("})"),
       }) {
    EXPECT_THAT(verifier->Verify(
                    Bearer(SignEs256(key_.pkey.get(), header, Raw().Json()))),
                Unauthenticated("malformed token"))
        << header;
  }
}

TEST_F(AuthTest, ErrorMessagesNeverContainTheTokensContent) {
  auto verifier = Verifier();
  TestKey other = MakeTestKey();
  RawClaims raw = Raw();
  raw.sub = R"("secret-subject-42")";
  raw.iss = R"("secret-issuer-42")";
  raw.aud = R"(["secret-audience-42"])";
  raw.roles = R"(["secret-role-42"])";
  std::vector<std::string> tokens = {
      HandToken(raw),  // wrong issuer
      SignEs256(other.pkey.get(), EsHeader(key_.signing->kid()), raw.Json()),
      SignEs256(key_.pkey.get(), EsHeader("secret-kid-42"), raw.Json()),
      SignEs256(key_.pkey.get(), R"({"alg":"secret-alg-42"})", raw.Json()),
  };
  RawClaims expired = raw;
  expired.exp = "1";
  tokens.push_back(HandToken(expired));
  raw.iss = absl::StrCat("\"", kIssuer, "\"");
  tokens.push_back(HandToken(raw));  // wrong audience
  raw.aud = absl::StrCat("\"", kAudience, "\"");
  tokens.push_back(HandToken(raw));  // no known role
  raw.roles = R"("secret-role-42")";
  tokens.push_back(HandToken(raw));  // roles not an array
  for (const std::string& token : tokens) {
    absl::StatusOr<Principal> result = verifier->Verify(Bearer(token));
    ASSERT_FALSE(result.ok());
    EXPECT_THAT(Message(result.status()), Not(HasSubstr("secret")));
    EXPECT_THAT(Message(result.status()), Not(HasSubstr("42")));
    for (absl::string_view part : absl::StrSplit(token, '.')) {
      if (part.size() > 4) {
        EXPECT_THAT(Message(result.status()), Not(HasSubstr(part)));
      }
    }
  }
}

// --- JWKS file and rotation
// ---------------------------------------------------

TEST_F(AuthTest, CreateNamesTheBadSetting) {
  VerifierOptions options = Options();
  options.jwks_file = dir_ + "/missing.json";
  absl::StatusOr<std::unique_ptr<TokenVerifier>> verifier =
      TokenVerifier::Create(options, Clock());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(verifier.status()),
              StartsWith(absl::StrCat("jwks_file: ", options.jwks_file)));

  WriteFile(jwks_path_, R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})");
  verifier = TokenVerifier::Create(Options(), Clock());
  EXPECT_EQ(verifier.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(verifier.status()), StartsWith("jwks_file: "));
  EXPECT_THAT(Message(verifier.status()), HasSubstr("no usable key"));

  WriteFile(jwks_path_, "not json");
  verifier = TokenVerifier::Create(Options(), Clock());
  EXPECT_THAT(Message(verifier.status()), StartsWith("jwks_file: "));

  WriteFile(jwks_path_, key_.signing->PublicJwks());
  options = Options();
  options.issuer = "";
  EXPECT_THAT(Message(TokenVerifier::Create(options, Clock()).status()),
              StartsWith("issuer: "));
  options = Options();
  options.audience = "";
  EXPECT_THAT(Message(TokenVerifier::Create(options, Clock()).status()),
              StartsWith("audience: "));
  options = Options();
  options.leeway = absl::Seconds(-1);
  EXPECT_THAT(Message(TokenVerifier::Create(options, Clock()).status()),
              StartsWith("leeway: "));
}

TEST_F(AuthTest, KeyRotationIsPickedUpAfterReloadEvery) {
  auto verifier = Verifier();
  TestKey next = MakeTestKey();
  const std::string old_token = Bearer(Mint(*key_.signing));
  const std::string new_token = Bearer(Mint(*next.signing));
  ASSERT_THAT(verifier->Verify(new_token),
              Unauthenticated("unknown signing key"));

  // Publish old and new side by side.
  absl::StatusOr<std::string> both =
      MergeJwks({key_.signing->PublicJwks(), next.signing->PublicJwks()});
  ASSERT_TRUE(both.ok()) << both.status();
  RewriteFile(jwks_path_, *both, 1'000'000'001);
  now_ += absl::Seconds(4);  // not yet time to look
  EXPECT_THAT(verifier->Verify(new_token),
              Unauthenticated("unknown signing key"));
  now_ += absl::Seconds(1);
  EXPECT_TRUE(verifier->Verify(new_token).ok());
  EXPECT_TRUE(verifier->Verify(old_token).ok());
  EXPECT_TRUE(verifier->ReloadStatus().ok());

  // Drop the old key.
  RewriteFile(jwks_path_, next.signing->PublicJwks(), 1'000'000'002);
  now_ += absl::Seconds(5);
  EXPECT_THAT(verifier->Verify(old_token),
              Unauthenticated("unknown signing key"));
  EXPECT_TRUE(verifier->Verify(new_token).ok());
}

// A token refused for its signature is refused again at the cost of a
// lookup (a refused stream is looked at twice, and a client may resend a
// forged token), until the keys change: then it is verified anew.
TEST_F(AuthTest, ARefusedSignatureIsRememberedUntilTheKeysChange) {
  auto verifier = Verifier();
  TestKey next = MakeTestKey();
  // No kid: tried against every key; only `next`, not yet published, signed.
  const std::string token = Bearer(SignEs256(
      next.pkey.get(), R"({"alg":"ES256","typ":"JWT"})", Raw().Json()));
  EXPECT_THAT(verifier->Verify(token),
              Unauthenticated("signature does not verify"));
  const int64_t checked = verifier->SignatureChecks();
  EXPECT_EQ(checked, 1);  // the one key there is
  EXPECT_THAT(verifier->Verify(token),
              Unauthenticated("signature does not verify"));
  EXPECT_EQ(verifier->SignatureChecks(), checked) << "checked again";

  // Forgotten after a minute: checked again (and refused again).
  now_ += absl::Seconds(61);
  EXPECT_THAT(verifier->Verify(token),
              Unauthenticated("signature does not verify"));
  EXPECT_EQ(verifier->SignatureChecks(), checked + 1);

  absl::StatusOr<std::string> both =
      MergeJwks({key_.signing->PublicJwks(), next.signing->PublicJwks()});
  ASSERT_TRUE(both.ok()) << both.status();
  RewriteFile(jwks_path_, *both, 1'000'000'001);
  now_ += absl::Seconds(5);
  EXPECT_TRUE(verifier->Verify(token).ok());
  EXPECT_GT(verifier->SignatureChecks(), checked + 1);
}

// A token that verified is remembered: its next calls check no signature.
TEST_F(AuthTest, AVerifiedTokenIsNotCheckedAgain) {
  auto verifier = Verifier();
  const std::string token = Bearer(Mint(*key_.signing));
  ASSERT_TRUE(verifier->Verify(token).ok());
  const int64_t checked = verifier->SignatureChecks();
  EXPECT_EQ(checked, 1);
  ASSERT_TRUE(verifier->Verify(token).ok());
  EXPECT_EQ(verifier->SignatureChecks(), checked);
}

TEST_F(AuthTest, ReplacingTheFileByRenameIsNoticed) {
  VerifierOptions options = Options();
  options.reload_every = absl::ZeroDuration();
  auto verifier = Verifier(options);
  TestKey next = MakeTestKey();
  ReplaceFile(jwks_path_, next.signing->PublicJwks());
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*next.signing))).ok());
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*key_.signing))),
              Unauthenticated("unknown signing key"));
}

TEST_F(AuthTest, BrokenJwksRewriteKeepsTheOldKeysAndIsReported) {
  auto verifier = Verifier();
  const std::string token = Bearer(Mint(*key_.signing));
  RewriteFile(jwks_path_, R"({"keys":[)", 1'000'000'001);  // half written
  now_ += absl::Seconds(5);
  EXPECT_TRUE(verifier->Verify(token).ok());
  EXPECT_THAT(Message(verifier->ReloadStatus()), StartsWith("jwks_file: "));

  // Fixed later: picked up although the file's stamp was seen before.
  TestKey next = MakeTestKey();
  RewriteFile(jwks_path_, next.signing->PublicJwks(), 1'000'000'002);
  now_ += absl::Seconds(5);
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*next.signing))).ok());
  EXPECT_TRUE(verifier->ReloadStatus().ok());

  // Asked with no call meanwhile (a server's health thread asks), it looks.
  std::filesystem::remove(jwks_path_);
  now_ += absl::Seconds(5);
  EXPECT_EQ(verifier->ReloadStatus().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*next.signing))).ok());
}

TEST_F(AuthTest, ConcurrentVerifyWhileTheFileRotates) {
  TestKey second = MakeTestKey();
  TestKey third = MakeTestKey();
  absl::StatusOr<std::string> with_second =
      MergeJwks({key_.signing->PublicJwks(), second.signing->PublicJwks()});
  absl::StatusOr<std::string> with_third =
      MergeJwks({key_.signing->PublicJwks(), third.signing->PublicJwks()});
  ASSERT_TRUE(with_second.ok() && with_third.ok());
  VerifierOptions options = Options();
  options.reload_every = absl::ZeroDuration();
  auto verifier = Verifier(options);
  const std::string token = Bearer(Mint(*key_.signing));

  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 50; ++i) {
      ReplaceFile(jwks_path_, i % 2 == 0 ? *with_second : *with_third);
    }
    done = true;
  });
  std::atomic<int> failures{0};
  std::atomic<int> successes{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < 100 || !done; ++i) {
        (verifier->Verify(token).ok() ? successes : failures)++;
      }
    });
  }
  writer.join();
  for (std::thread& reader : readers) reader.join();
  EXPECT_EQ(failures, 0);
  EXPECT_GE(successes, 400);
}

// --- JWKS parsing and merging
// -------------------------------------------------

TEST(Jwks, ParsesP256KeysAndSkipsOthers) {
  std::string jwks = absl::StrCat(
      R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"},)",
      R"({"kty":"EC","crv":"P-384","x":"AA","y":"AA"},)",
      R"({"kty":"EC","crv":"P-256","use":"enc","x":"AA","y":"AA"},)",
      R"({"kty":"EC","crv":"P-256","x":")", kFixedX, R"(","y":")", kFixedY,
      R"("}]})");
  absl::StatusOr<std::vector<EcPublicKey>> keys = ParseJwks(jwks);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 1u);
  // No kid in the JWK: the thumbprint stands in.
  EXPECT_EQ((*keys)[0].kid, kFixedKid);
  EXPECT_THAT((*keys)[0].spki_pem, StartsWith("-----BEGIN PUBLIC KEY-----"));
}

TEST(Jwks, BrokenP256KeysAreErrors) {
  auto parse = [](absl::string_view x, absl::string_view y,
                  absl::string_view extra = "") {
    return ParseJwks(absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","x":")",
                                  x, R"(","y":")", y, "\"", extra, "}]}"));
  };
  EXPECT_TRUE(parse(kFixedX, kFixedY).ok());
  // Not on the curve.
  EXPECT_THAT(Message(parse(kFixedX, kFixedX).status()),
              HasSubstr("not a point of P-256"));
  // Too short, padded, not base64url.
  EXPECT_THAT(Message(parse("AAAA", kFixedY).status()), HasSubstr("x is not"));
  EXPECT_THAT(Message(parse(kFixedX, absl::StrCat(kFixedY, "=")).status()),
              HasSubstr("y is not"));
  // A private key published by mistake.
  EXPECT_THAT(Message(parse(kFixedX, kFixedY, R"(,"d":"AAAA")").status()),
              HasSubstr("private key"));
  EXPECT_EQ(ParseJwks(R"({"keys":{}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseJwks(R"([])").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Jwks, SameKidForTwoKeysIsAnError) {
  absl::StatusOr<SigningKey> a = SigningKey::Generate();
  ASSERT_TRUE(a.ok());
  absl::StatusOr<std::vector<EcPublicKey>> a_keys = ParseJwks(a->PublicJwks());
  ASSERT_TRUE(a_keys.ok());
  auto jwk = [](absl::string_view x, absl::string_view y) {
    return absl::StrCat(R"({"kty":"EC","crv":"P-256","kid":"k","x":")", x,
                        R"(","y":")", y, R"("})");
  };
  const std::string fixed = jwk(kFixedX, kFixedY);
  const std::string other = jwk(B64((*a_keys)[0].x), B64((*a_keys)[0].y));
  const std::string two_keys =
      absl::StrCat(R"({"keys":[)", fixed, ",", other, "]}");
  absl::Status status = ParseJwks(two_keys).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("names two different keys"));
  // The same key twice is no conflict.
  absl::StatusOr<std::vector<EcPublicKey>> same =
      ParseJwks(absl::StrCat(R"({"keys":[)", fixed, ",", fixed, "]}"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->size(), 1u);
  EXPECT_THAT(Message(MergeJwks({absl::StrCat(R"({"keys":[)", fixed, "]}"),
                                 absl::StrCat(R"({"keys":[)", other, "]}")})
                          .status()),
              StartsWith("documents[1]: keys[0]: "));
}

TEST(Jwks, MergeKeepsEachKeyOnceInOrder) {
  absl::StatusOr<SigningKey> a = SigningKey::Generate();
  absl::StatusOr<SigningKey> b = SigningKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  absl::StatusOr<std::string> merged =
      MergeJwks({b->PublicJwks(), a->PublicJwks(), b->PublicJwks()});
  ASSERT_TRUE(merged.ok()) << merged.status();
  absl::StatusOr<std::vector<EcPublicKey>> keys = ParseJwks(*merged);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[0].kid, b->kid());
  EXPECT_EQ((*keys)[1].kid, a->kid());

  // A key merged again with a scope takes it, in its place.
  merged = MergeJwks({*merged, a->PublicJwks({.subject = "service:customer"})});
  ASSERT_TRUE(merged.ok()) << merged.status();
  keys = ParseJwks(*merged);
  ASSERT_TRUE(keys.ok()) << keys.status();
  ASSERT_EQ(keys->size(), 2u);
  EXPECT_EQ((*keys)[1].kid, a->kid());
  EXPECT_EQ((*keys)[1].subject, "service:customer");
  EXPECT_EQ((*keys)[1].max_role, "reader");
  EXPECT_EQ((*keys)[0].subject, "");
  // One document listing a key twice with two scopes is refused.
  const std::string twice = absl::StrCat(
      R"({"keys":[)",
      std::string(absl::StripSuffix(
          absl::StripPrefix(a->PublicJwks(), "{\n  \"keys\": ["), "]\n}")),
      ",",
      std::string(absl::StripSuffix(
          absl::StripPrefix(
              a->PublicJwks({.subject = "x", .max_role = "admin"}),
              "{\n  \"keys\": ["),
          "]\n}")),
      "]}");
  EXPECT_THAT(Message(ParseJwks(twice).status()),
              ::testing::HasSubstr("listed twice with other scopes"))
      << twice;
  // So is one key under two kids with two scopes: a token would pick the
  // unscoped one.
  const std::string other_kid = absl::StrReplaceAll(
      a->PublicJwks({.subject = "service:customer"}),
      {{absl::StrCat("\"", a->kid(), "\""), "\"hand-written\""}});
  ASSERT_NE(other_kid.find("hand-written"), std::string::npos) << other_kid;
  EXPECT_THAT(Message(MergeJwks({a->PublicJwks(), other_kid}).status()),
              ::testing::HasSubstr("is the key of kid"));
  // Under two kids with one scope it is only listed twice.
  EXPECT_TRUE(
      MergeJwks({a->PublicJwks(),
                 absl::StrReplaceAll(
                     a->PublicJwks(),
                     {{absl::StrCat("\"", a->kid(), "\""), "\"copy\""}})})
          .ok());
  // A role that is not one, on a key that is fine otherwise.
  const std::string root =
      absl::StrReplaceAll(a->PublicJwks({.subject = "x", .max_role = "admin"}),
                          {{"\"admin\"", "\"root\""}});
  ASSERT_NE(root.find("\"root\""), std::string::npos) << root;
  EXPECT_THAT(Message(ParseJwks(root).status()),
              ::testing::HasSubstr("rapport_max_role"));

  EXPECT_THAT(Message(MergeJwks({a->PublicJwks(), "garbage"}).status()),
              StartsWith("documents[1]: "));
  EXPECT_EQ(MergeJwks({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MergeJwks({R"({"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]})"})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Signing keys
// -------------------------------------------------------------

TEST(SigningKey, KidIsTheRfc7638Thumbprint) {
  absl::StatusOr<SigningKey> sec1 = SigningKey::FromPem(kSec1Pem);
  absl::StatusOr<SigningKey> pkcs8 = SigningKey::FromPem(kPkcs8Pem);
  ASSERT_TRUE(sec1.ok()) << sec1.status();
  ASSERT_TRUE(pkcs8.ok()) << pkcs8.status();
  EXPECT_EQ(sec1->kid(), kFixedKid);
  EXPECT_EQ(pkcs8->kid(), kFixedKid);
  EXPECT_EQ(JwkThumbprint(*internal::Base64UrlDecode(kFixedX),
                          *internal::Base64UrlDecode(kFixedY)),
            kFixedKid);
  std::string jwks = sec1->PublicJwks();
  EXPECT_THAT(jwks, HasSubstr(kFixedX));
  EXPECT_THAT(jwks, HasSubstr(kFixedY));
  EXPECT_THAT(jwks, HasSubstr(absl::StrCat("\"kid\": \"", kFixedKid, "\"")));
  EXPECT_THAT(jwks, HasSubstr(R"("alg": "ES256")"));
  EXPECT_THAT(jwks, HasSubstr(R"("use": "sig")"));
  EXPECT_THAT(jwks, Not(HasSubstr("\"d\"")));
}

TEST(SigningKey, RefusesOtherKeys) {
  EXPECT_EQ(SigningKey::FromPem(kP384Pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SigningKey::FromPem("not a pem").status().code(),
            absl::StatusCode::kInvalidArgument);
  // A public key is not a signing key.
  absl::StatusOr<std::vector<EcPublicKey>> keys =
      ParseJwks(absl::StrCat(R"({"keys":[{"kty":"EC","crv":"P-256","x":")",
                             kFixedX, R"(","y":")", kFixedY, R"("}]})"));
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(SigningKey::FromPem((*keys)[0].spki_pem).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<SigningKey> missing = SigningKey::Load("/nonexistent/key.pem");
  EXPECT_THAT(Message(missing.status()), HasSubstr("/nonexistent/key.pem"));
}

TEST_F(AuthTest, SaveWritesMode0600AndLoadReadsItBack) {
  const std::string path = dir_ + "/signing-key.pem";
  WriteFile(path, "old contents");
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  const mode_t old_umask = umask(0);
  absl::Status saved = key_.signing->Save(path);
  umask(old_umask);
  ASSERT_TRUE(saved.ok()) << saved;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600);
  // No temp file left behind.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2);  // jwks.json, signing-key.pem

  absl::StatusOr<SigningKey> loaded = SigningKey::Load(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->kid(), key_.signing->kid());
  auto verifier = Verifier();
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*loaded))).ok());

  EXPECT_THAT(Message(key_.signing->Save(dir_ + "/no/such/dir/key.pem")),
              HasSubstr(dir_ + "/no/such/dir/key.pem"));
}

TEST_F(AuthTest, GeneratedKeysDifferAndVerifyThroughTheirJwks) {
  absl::StatusOr<SigningKey> a = SigningKey::Generate();
  absl::StatusOr<SigningKey> b = SigningKey::Generate();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->kid(), b->kid());
  WriteFile(jwks_path_, a->PublicJwks());
  auto verifier = Verifier();
  EXPECT_TRUE(verifier->Verify(Bearer(Mint(*a))).ok());
  EXPECT_THAT(verifier->Verify(Bearer(Mint(*b))),
              Unauthenticated("unknown signing key"));
}

TEST(SubjectsLookAlike, CaseWidthAndLookAlikeLettersAreOneName) {
  EXPECT_TRUE(SubjectsLookAlike("user:ada", "user:ada"));
  EXPECT_TRUE(SubjectsLookAlike("user:ada", "USER:Ada"));
  EXPECT_TRUE(SubjectsLookAlike("wally", "\uff37\uff41\uff4c\uff4c\uff59"));
  EXPECT_TRUE(SubjectsLookAlike("user:ada", "user:\u0430da"));  // Cyrillic a
  EXPECT_FALSE(SubjectsLookAlike("user:ada", "user:adam"));
  EXPECT_FALSE(SubjectsLookAlike("user:ada", "user:bob"));
  EXPECT_FALSE(SubjectsLookAlike("user:ada", ""));
  EXPECT_FALSE(SubjectsLookAlike("jose", "jos\u00e9"));
  // Within one script, names that only look alike are different people's.
  EXPECT_FALSE(SubjectsLookAlike("user:dorn", "user:dom"));
  EXPECT_FALSE(SubjectsLookAlike("user:jsmith1", "user:jsmithl"));
}

TEST_F(AuthTest, MintRefusesBadClaims) {
  auto code = [this](TokenClaims claims) {
    return MintToken(*key_.signing, claims, now_).status();
  };
  TokenClaims claims = Claims();
  claims.subject = "";
  EXPECT_THAT(Message(code(claims)), StartsWith("subject: "));
  claims = Claims({"root"});
  EXPECT_THAT(Message(code(claims)), StartsWith("roles: "));
  claims = Claims({});
  EXPECT_THAT(Message(code(claims)), StartsWith("roles: "));
  claims = Claims();
  claims.issuer = "";
  EXPECT_THAT(Message(code(claims)), StartsWith("issuer: "));
  claims = Claims();
  claims.audience = "";
  EXPECT_THAT(Message(code(claims)), StartsWith("audience: "));
  claims = Claims();
  claims.ttl = absl::ZeroDuration();
  EXPECT_THAT(Message(code(claims)), StartsWith("ttl: "));
  claims.ttl = absl::InfiniteDuration();  // `--ttl inf`
  EXPECT_THAT(Message(code(claims)), StartsWith("ttl: "));
  claims = Claims();
  claims.subject = "\xff\xfe";
  EXPECT_THAT(Message(code(claims)), StartsWith("subject: "));
  claims.subject = "two\nlines";
  EXPECT_THAT(Message(code(claims)), StartsWith("subject: "));
  claims.subject = "\u200bservice:customer";
  EXPECT_THAT(Message(code(claims)), StartsWith("subject: "));
  EXPECT_TRUE(code(Claims()).ok());
}

// --- Base64url
// ----------------------------------------------------------------

TEST(Base64Url, RoundTripsAndRefusesNonCanonicalText) {
  for (const std::string& data :
       {std::string(""), std::string("f"), std::string("fo"),
        std::string("foo"), std::string("\xfb\xff\xfe", 3)}) {
    EXPECT_EQ(internal::Base64UrlDecode(B64(data)), data);
  }
  EXPECT_EQ(B64("\xfb\xff\xfe"), "-__-");
  EXPECT_EQ(internal::Base64UrlDecode("Zg=="), std::nullopt);  // padding
  EXPECT_EQ(internal::Base64UrlDecode("Zh"), std::nullopt);    // stray bits
  EXPECT_EQ(internal::Base64UrlDecode("Z"), std::nullopt);     // length
  EXPECT_EQ(internal::Base64UrlDecode("+/8="), std::nullopt);  // base64
  EXPECT_EQ(internal::Base64UrlDecode("Zm 9v"), std::nullopt);
}

}  // namespace
}  // namespace rapport::auth
