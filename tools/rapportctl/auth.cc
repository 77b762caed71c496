// rapportctl auth token: mints a bearer token from a signing key, for people
// and scripts (`authorization: Bearer $(rapportctl auth token ...)`);
// rapportctl auth keygen: makes a deployment's signing key and adds its
// public key to the JWKS file the services trust.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/auth/jwt.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

std::string FromEnv(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value == nullptr || *value == '\0' ? fallback : value;
}

// auth keygen --key FILE [--jwks FILE] [--subject S [--max-role R]]: the
// deployment's keys, made once; a key with --subject signs tokens for that
// subject only (a service's own key).
int KeyGen(Context& ctx) {
  std::set<std::string> known = {"key", "jwks", "subject", "max-role"};
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok())
    return UsageError(std::string(s.message()), "");
  const std::string key_file = ctx.args.GetOr("key", "");
  if (key_file.empty()) return UsageError("--key: is required", "");
  auth::KeyScope scope{.subject = ctx.args.GetOr("subject", ""),
                       .max_role = ctx.args.GetOr("max-role", "")};
  if (!scope.max_role.empty() && !auth::ParseRole(scope.max_role)) {
    return UsageError(absl::StrCat("--max-role: want reader, writer or admin, "
                                   "not \"",
                                   scope.max_role, "\""),
                      "");
  }
  if (!scope.max_role.empty() && scope.subject.empty()) {
    return UsageError("--max-role: needs --subject", "");
  }
  absl::StatusOr<auth::SigningKey> key = auth::SigningKey::Load(key_file);
  if (!key.ok()) {
    // There but not a key, or there but not readable by this user: kept,
    // never replaced; only a file that does not exist is made.
    if (struct stat st; stat(key_file.c_str(), &st) == 0 || errno != ENOENT) {
      return ReportError(key.status());
    }
    key = auth::SigningKey::Generate();
    if (!key.ok()) return ReportError(key.status());
    if (absl::Status s = key->Save(key_file); !s.ok()) return ReportError(s);
  }
  if (std::optional<std::string> jwks_file = ctx.args.Get("jwks")) {
    // The key joins the keys already trusted (rotation: old and new side by
    // side until the old one's tokens have expired).
    std::vector<std::string> documents;
    if (std::ifstream in(*jwks_file); in.good()) {
      std::stringstream text;
      text << in.rdbuf();
      documents.push_back(text.str());
      // Without --subject the key keeps the scope it was published with: a
      // rerun of an old command must not let a service's key sign for
      // anyone again.
      if (scope.subject.empty()) {
        if (absl::StatusOr<std::vector<auth::EcPublicKey>> known =
                auth::ParseJwks(documents.back());
            known.ok()) {
          for (const auth::EcPublicKey& k : *known) {
            if (k.kid == key->kid()) scope = {k.subject, k.max_role};
          }
        }
      }
    }
    documents.push_back(key->PublicJwks(scope));
    absl::StatusOr<std::string> merged = auth::MergeJwks(documents);
    if (!merged.ok()) {
      return ReportError(absl::InvalidArgumentError(
          absl::StrCat(*jwks_file, ": ", merged.status().message())));
    }
    // Whole or not at all, through a temporary file of its own.
    OutputFile out(*jwks_file);
    out.stream() << *merged << "\n";
    if (absl::Status written = out.ok() ? out.Commit()
                                        : absl::InternalError(absl::StrCat(
                                              "cannot write ", *jwks_file));
        !written.ok()) {
      return ReportError(written);
    }
  }
  std::cout << key->kid() << "\n";
  return kExitOk;
}

}  // namespace

int RunAuth(Context& ctx) {
  const auto& words = ctx.args.positional();
  if (words.size() == 2 && words[1] == "keygen") return KeyGen(ctx);
  if (words.size() != 2 || words[1] != "token") {
    return UsageError(
        "want: rapportctl auth token --role reader|writer|admin --subject NAME "
        "[--ttl 1h] [--key FILE]",
        "");
  }
  std::set<std::string> known = {"role", "subject", "ttl",
                                 "key",  "issuer",  "audience"};
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok())
    return UsageError(std::string(s.message()), "");
  const std::string role = ctx.args.GetOr("role", "");
  if (!auth::ParseRole(role).has_value()) {
    return UsageError(
        absl::StrCat("--role: want reader, writer or admin, not \"", role,
                     "\""),
        "");
  }
  const std::string subject = ctx.args.GetOr("subject", "");
  if (subject.empty()) return UsageError("--subject: is required", "");
  absl::Duration ttl = absl::Hours(1);
  if (std::optional<std::string> text = ctx.args.Get("ttl")) {
    if (!absl::ParseDuration(*text, &ttl) || ttl < absl::Seconds(1)) {
      return UsageError(
          absl::StrCat("--ttl: want a duration such as 1h, not \"", *text,
                       "\""),
          "");
    }
    if (ttl > absl::Hours(7 * 24)) {
      std::cerr << "rapportctl: warning: services refuse a token valid for "
                   "longer than their --auth_max_token_lifetime (7 days "
                   "unless set otherwise)\n";
    }
  }
  // The local platform's key by default (deploy/local/run names it in
  // var/run/platform.env).
  const std::string key_file = ctx.args.GetOr(
      "key", FromEnv("RAPPORT_SIGNING_KEY_FILE",
                     LocalVarPath("auth/signing-key.pem").c_str()));
  absl::StatusOr<auth::SigningKey> key = auth::SigningKey::Load(key_file);
  if (!key.ok()) {
    return UsageError(absl::StrCat("--key: ", key.status().message()), "");
  }
  absl::StatusOr<std::string> token = auth::MintToken(
      *key,
      {.subject = subject,
       .roles = {role},
       .issuer =
           ctx.args.GetOr("issuer", FromEnv("RAPPORT_AUTH_ISSUER", "rapport")),
       .audience = ctx.args.GetOr("audience",
                                  FromEnv("RAPPORT_AUTH_AUDIENCE", "rapport")),
       .ttl = ttl},
      absl::Now());
  if (!token.ok()) return ReportError(token.status());
  std::cout << *token << "\n";
  return kExitOk;
}

}  // namespace rapport::ctl
