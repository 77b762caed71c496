#include "tests/support/test_auth.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rapport::testing {
namespace {

// Exits the test process: without keys no test of a server can say
// anything.
[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "cannot make the test deployment's keys: %s\n",
               status.ToString().c_str());
  std::abort();
}

// The keys' directory, removed when the test process exits (the TestAuth
// itself lives until then and is never destroyed).
std::string* keys_dir = nullptr;

void RemoveKeysDir() {
  std::error_code ignored;
  if (keys_dir != nullptr) std::filesystem::remove_all(*keys_dir, ignored);
}

}  // namespace

TestAuth::TestAuth() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/rapport-test-auth.XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) Die(absl::InternalError("mkdtemp"));
  dir_ = pattern;
  keys_dir = new std::string(dir_);
  std::atexit(RemoveKeysDir);
  people_key_file_ = dir_ + "/people-key.pem";
  jwks_file_ = dir_ + "/jwks.json";
  absl::StatusOr<auth::SigningKey> people = auth::SigningKey::Generate();
  if (!people.ok()) Die(people.status());
  if (absl::Status s = people->Save(people_key_file_); !s.ok()) Die(s);
  std::vector<std::string> published = {people->PublicJwks()};
  for (const char* service : {"customer", "partner", "financial-community"}) {
    absl::StatusOr<auth::SigningKey> key = auth::SigningKey::Generate();
    if (!key.ok()) Die(key.status());
    if (absl::Status s = key->Save(service_key_file(service)); !s.ok()) Die(s);
    published.push_back(key->PublicJwks(
        {.subject = absl::StrCat(auth::kServiceSubjectPrefix, service)}));
  }
  absl::StatusOr<std::string> jwks = auth::MergeJwks(published);
  if (!jwks.ok()) Die(jwks.status());
  std::ofstream(jwks_file_) << *jwks;
}

std::string TestAuth::service_key_file(absl::string_view service) const {
  return absl::StrCat(dir_, "/", service, "-key.pem");
}

std::string TestAuth::ServiceBearer(absl::string_view service) const {
  auth::ServiceTokens* tokens;
  {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<auth::ServiceTokens>& made =
        service_tokens_[std::string(service)];
    if (made == nullptr) {
      absl::StatusOr<auth::SigningKey> key =
          auth::SigningKey::Load(service_key_file(service));
      if (!key.ok()) Die(key.status());
      made = std::make_unique<auth::ServiceTokens>(
          *std::move(key),
          auth::TokenClaims{
              .subject = absl::StrCat(auth::kServiceSubjectPrefix, service),
              .roles = {"reader"},
              .issuer = "rapport",
              .audience = "rapport.scoring",
              .ttl = absl::Hours(1)});
    }
    tokens = made.get();
  }
  absl::StatusOr<std::string> bearer = tokens->Authorization();
  if (!bearer.ok()) Die(bearer.status());
  return *bearer;
}

const TestAuth& TestAuth::Get() {
  static const TestAuth* const kAuth = new TestAuth();
  return *kAuth;
}

std::string TestAuth::Token(absl::string_view role, absl::string_view subject,
                            absl::Duration ttl) const {
  const bool usual = ttl == absl::Hours(1);
  const std::string cache_key = absl::StrCat(role, "\n", subject);
  if (usual) {
    absl::MutexLock lock(&mu_);
    if (auto it = tokens_.find(cache_key); it != tokens_.end())
      return it->second;
  }
  absl::StatusOr<auth::SigningKey> key =
      auth::SigningKey::Load(people_key_file_);
  if (!key.ok()) Die(key.status());
  // An expired token: minted as if long ago.
  const absl::Time now =
      ttl > absl::ZeroDuration() ? absl::Now() : absl::Now() + 2 * ttl;
  absl::StatusOr<std::string> token =
      auth::MintToken(*key,
                      {.subject = std::string(subject),
                       .roles = {std::string(role)},
                       .issuer = "rapport",
                       .audience = "rapport",
                       .ttl = ttl > absl::ZeroDuration() ? ttl : -ttl},
                      now);
  if (!token.ok()) Die(token.status());
  if (usual) {
    absl::MutexLock lock(&mu_);
    tokens_[cache_key] = *token;
  }
  return *token;
}

std::string TestAuth::Bearer(absl::string_view role,
                             absl::string_view subject) const {
  return absl::StrCat("Bearer ", Token(role, subject));
}

std::shared_ptr<const auth::TokenVerifier> TestAuth::Verifier(
    bool scoring) const {
  absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> verifier =
      auth::TokenVerifier::Create(
          {.jwks_file = jwks_file_,
           .issuer = "rapport",
           .audience = "rapport",
           .other_audiences = scoring
                                  ? std::vector<std::string>{"rapport.scoring"}
                                  : std::vector<std::string>{}});
  if (!verifier.ok()) Die(verifier.status());
  return *std::move(verifier);
}

}  // namespace rapport::testing
