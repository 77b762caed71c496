#include "tools/rapportctl/command.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/channel.h"
#include "common/status.h"

namespace rapport::ctl {
namespace {

std::string FlagOrEnv(const Args& args, const char* flag, const char* env) {
  if (std::optional<std::string> v = args.Get(flag)) return *v;
  const char* e = std::getenv(env);
  return e == nullptr ? "" : e;
}

}  // namespace

const std::set<std::string>& GlobalFlags() {
  static const auto* const kFlags = new std::set<std::string>{
      "addr",    "output", "timeout", "tls-ca",         "tls-cert",
      "tls-key", "help",   "token",   "allow-plaintext"};
  return *kFlags;
}

std::string LocalVarPath(const std::string& relative) {
  const char* var = std::getenv("RAPPORT_VAR");
  return absl::StrCat(var == nullptr || *var == '\0' ? "var" : var, "/",
                      relative);
}

std::string LocalPlatformSetting(absl::string_view name) {
  std::ifstream in(LocalVarPath("run/platform.env"));
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq != std::string::npos &&
        absl::string_view(line).substr(0, eq) == name) {
      return line.substr(eq + 1);
    }
  }
  return "";
}

absl::Status Context::LoadToken() {
  token = FlagOrEnv(args, "token", "RAPPORT_TOKEN");
  if (!token.empty()) return absl::OkStatus();
  // A token given empty (`--token "$T"` or `RAPPORT_TOKEN=$T` with T unset)
  // is a mistake, never a call with the token file's (an admin's on a local
  // platform) instead.
  if (args.Has("token")) {
    return absl::InvalidArgumentError(
        "--token: is empty (leave it out to use RAPPORT_TOKEN or the token "
        "file)");
  }
  if (std::getenv("RAPPORT_TOKEN") != nullptr) {
    return absl::InvalidArgumentError(
        "RAPPORT_TOKEN: is set but empty (unset it to use the token file)");
  }
  static const std::string local = LocalVarPath("auth/operator.token");
  const char* file = std::getenv("RAPPORT_TOKEN_FILE");
  if (file == nullptr || *file == '\0') {
    // In a checkout running the local platform (deploy/local/run), the
    // operator's token is there: no set-up step for the local operator.
    file = local.c_str();
    if (!std::ifstream(file).good()) return absl::OkStatus();
    token_is_local = true;
  } else {
    // The same file named (deploy/local/run prints the line that exports
    // it), from wherever rapportctl runs, is the same admin token of this
    // machine's platform: a local platform's var/auth/operator.token, with
    // the var/run/platform.env that deploy/local/run writes beside it.
    namespace fs = std::filesystem;
    std::error_code ignored;
    const fs::path named = fs::weakly_canonical(fs::path(file), ignored);
    token_is_local =
        fs::equivalent(named, fs::path(local), ignored) ||
        (named.filename() == "operator.token" &&
         named.parent_path().filename() == "auth" &&
         fs::exists(named.parent_path().parent_path() / "run" / "platform.env",
                    ignored));
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("RAPPORT_TOKEN_FILE: cannot read ", file,
                     " (deploy/local/run writes it; or give --token)"));
  }
  token = std::string(absl::StripAsciiWhitespace(text.str()));
  return absl::OkStatus();
}

void Context::Authorize(grpc::ClientContext* call) const {
  if (!token.empty()) call->AddMetadata("authorization", "Bearer " + token);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::Channel(
    const char* env, const char* fallback, std::optional<int> lane) const {
  return ServiceChannel("addr", env, fallback, lane);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::ServiceChannel(
    const char* flag, const char* env, const char* fallback,
    std::optional<int> lane) const {
  std::string address = FlagOrEnv(args, flag, env);
  if (address.empty() && absl::string_view(env) == "RAPPORT_COMMUNITY_ADDR") {
    // platform.env names it both ways; the service's whole name too.
    const char* whole = std::getenv("RAPPORT_FINANCIAL_COMMUNITY_ADDR");
    if (whole != nullptr) address = whole;
  }
  // In a checkout running the local platform, its addresses, which a
  // --base-port moves: no set-up step, as for its token (LoadToken).
  if (address.empty()) address = LocalPlatformSetting(env);
  if (address.empty()) address = fallback;
  // The operator's admin token of the local platform (picked up without
  // being asked for, or named in RAPPORT_TOKEN_FILE): it must not reach
  // another machine, least of all in plain text.
  if (token_is_local && !token.empty() && !IsLoopbackAddress(address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": ", address,
        " is not this machine, and the only token at hand is the local "
        "platform's (",
        LocalVarPath("auth/operator.token"),
        "), which is sent to this machine only; give the token for that "
        "service in RAPPORT_TOKEN_FILE or RAPPORT_TOKEN"));
  }
  TlsOptions tls{FlagOrEnv(args, "tls-cert", "RAPPORT_TLS_CERT"),
                 FlagOrEnv(args, "tls-key", "RAPPORT_TLS_KEY"),
                 FlagOrEnv(args, "tls-ca", "RAPPORT_TLS_CA")};
  // Any token goes to another machine over TLS only, unless asked (as the
  // services are, with the same variable).
  const char* allow_env = std::getenv("RAPPORT_ALLOW_PLAINTEXT");
  bool plaintext_allowed = args.Has("allow-plaintext");
  if (!plaintext_allowed && allow_env != nullptr &&
      !absl::SimpleAtob(allow_env, &plaintext_allowed)) {
    return absl::InvalidArgumentError(
        absl::StrCat("RAPPORT_ALLOW_PLAINTEXT: \"", allow_env,
                     "\" is not a boolean (1 or 0, true or false)"));
  }
  if (!token.empty() && !plaintext_allowed) {
    if (absl::Status s = PlaintextRefusal(address, tls); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, ": ", s.message(),
          "; give --tls-ca (the service's CA), or --allow-plaintext where "
          "the network encrypts by itself"));
    }
  }
  if (lane.has_value()) return MakeLaneChannel(address, tls, *lane);
  return MakeChannel(address, tls);
}

std::unique_ptr<grpc::ClientContext> Context::NewCall() const {
  auto call = std::make_unique<grpc::ClientContext>();
  call->set_deadline(std::chrono::system_clock::now() +
                     absl::ToChronoMilliseconds(timeout));
  Authorize(call.get());
  return call;
}

std::string ConnectionHint(const absl::Status& status) {
  if (!absl::IsUnavailable(status)) return "";
  const absl::string_view said = status.message();
  if (absl::StrContains(said, "Connection refused")) {
    return "nothing listens at that address: is the service running, and is "
           "the address right? (rapportctl health --addr HOST:PORT asks it)";
  }
  if (absl::StrContains(said, "wrong version number")) {
    return "the service does not speak TLS there: leave --tls-ca and "
           "RAPPORT_TLS_CA out for it";
  }
  if (absl::StrContains(said, "before receiving SETTINGS frame")) {
    return "something took the connection but did not answer as a gRPC "
           "server would: the service is frozen or hung, or another program "
           "listens there";
  }
  if (absl::StrContains(said, "Socket closed")) {
    return "the service closed the connection; if it did so as the call "
           "began, it may serve TLS: give its CA with --tls-ca (or "
           "RAPPORT_TLS_CA)";
  }
  return "";
}

int ReportError(const absl::Status& status) {
  std::cerr << "rapportctl: " << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  if (const std::string hint = ConnectionHint(status); !hint.empty()) {
    std::cerr << "  hint: " << hint << "\n";
  }
  std::vector<FieldViolation> violations = FieldViolations(status);
  if (violations.size() > 1) {
    for (const FieldViolation& v : violations) {
      std::cerr << "  - " << v.field << ": " << v.description << "\n";
    }
  }
  return kExitFailed;
}

int UsageError(const std::string& message, const std::string& usage) {
  std::cerr << "rapportctl: " << message << "\n";
  std::cerr << "Run 'rapportctl help' for usage.\n";
  (void)usage;
  return kExitUsage;
}

int UsageError(const absl::Status& status) {
  return UsageError(std::string(status.message()), "");
}

absl::StatusOr<int> IntFlag(const Args& args, const std::string& name,
                            int fallback) {
  std::optional<std::string> v = args.Get(name);
  if (!v) return fallback;
  int out = 0;
  if (!absl::SimpleAtoi(*v, &out)) return NotAWholeNumber(name, *v);
  return out;
}

absl::Status NotAWholeNumber(absl::string_view flag, absl::string_view text) {
  absl::string_view digits = text;
  absl::ConsumePrefix(&digits, "-") || absl::ConsumePrefix(&digits, "+");
  if (!digits.empty() &&
      digits.find_first_not_of("0123456789") == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", text, " is out of range"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, ": want a whole number, not \"", text, "\""));
}

}  // namespace rapport::ctl
