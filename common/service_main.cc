#include "common/service_main.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <utility>

#include "absl/base/config.h"
#include "absl/flags/flag.h"
#include "absl/flags/internal/parse.h"
#include "absl/flags/internal/private_handle_accessor.h"
#include "absl/flags/internal/usage.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth/jwt.h"
#include "common/log.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve on (this machine only by default: serving "
          "others, 0.0.0.0:PORT, wants --tls_cert too); port 0 picks one");
ABSL_FLAG(int, max_threads, 64, "most threads serving calls");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(30),
          "how long running calls (and a domain service's refresh under way) "
          "may take to finish on SIGTERM");
ABSL_FLAG(bool, log_requests, true, "log one line per request");
ABSL_FLAG(std::string, port_file, "",
          "write the chosen port to this file once serving");
ABSL_FLAG(int, max_message_bytes, 4 << 20,
          "largest message a caller may send (bytes); with --max_threads "
          "it bounds the memory calls in flight hold (the customer "
          "service's queued GetCustomer and RecordPurchase take 16 KiB)");
ABSL_FLAG(absl::Duration, max_call_time, absl::Seconds(60),
          "server-side deadline of every unary call, whatever its client "
          "asked: past it the call is cancelled");
ABSL_FLAG(absl::Duration, max_stream_time, absl::Hours(1),
          "the same for streaming calls (imports, exports, population "
          "scoring)");
ABSL_FLAG(absl::Duration, max_stream_idle_time, absl::Minutes(10),
          "a stream whose client sends (an import, population scoring) and "
          "from which nothing has been received for this long is ended the "
          "same way");
ABSL_FLAG(int, max_streams_per_connection, 100,
          "calls one client connection may run at once");
ABSL_FLAG(int, max_streams, 0,
          "streaming calls (imports, exports, population scoring) the "
          "service runs at once, all callers together; each holds one of "
          "--max_threads while its client keeps it open, so the rest stay "
          "for short calls. One more is refused at once with "
          "RESOURCE_EXHAUSTED. 0: three quarters of --max_threads");
ABSL_FLAG(int, max_streams_per_caller, 0,
          "streaming calls one caller (a token's subject) runs at once on "
          "this replica, so that no caller holds the streams others need; "
          "one more is refused at once with RESOURCE_EXHAUSTED. 0: a quarter "
          "of --max_threads");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9450",
          "host:port of the Prometheus metrics endpoint (HTTP GET /metrics); "
          "port 0 picks one; empty: none");
ABSL_FLAG(std::string, metrics_port_file, "",
          "write the metrics endpoint's port to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate of this server (enables TLS)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of this server");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA that client certificates must chain to (mutual TLS)");
ABSL_FLAG(std::string, tls_client_certs, "require",
          "with --tls_ca: whether clients must present a certificate "
          "(require), or only have it verified when they do (optional: "
          "services call with certificates, people with bearer tokens)");
ABSL_FLAG(bool, allow_plaintext, false,
          "serve other machines (a --listen address not on loopback) "
          "without TLS: only where the network encrypts by itself (a "
          "service mesh), as bearer tokens would cross it in the clear");
ABSL_FLAG(absl::Duration, tls_reload, absl::Minutes(1),
          "how often the TLS files are read again, so that a renewed "
          "certificate is served (and presented) without a restart");
ABSL_FLAG(std::string, jwks_file, "",
          "JWKS file of the public keys that sign callers' bearer tokens "
          "(required; re-read when it changes, so keys rotate without a "
          "restart)");
ABSL_FLAG(std::string, auth_issuer, "rapport",
          "the `iss` that callers' tokens must carry");
ABSL_FLAG(std::string, auth_audience, "rapport",
          "the `aud` that callers' tokens must carry (the deployment's name)");
ABSL_FLAG(absl::Duration, auth_max_token_lifetime, absl::Hours(7 * 24),
          "tokens whose exp is further than this after their iat (or now, "
          "when earlier) are refused: a leaked token is good for a bounded "
          "time; 0: no bound");

namespace rapport {
namespace {

// Sets every Rapport flag whose RAPPORT_<FLAG> variable is in the
// environment; Abseil's own flags are left alone.
void ApplyEnvironment() {
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "absl/")) continue;
    const std::string var =
        absl::StrCat("RAPPORT_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "bad value for %s: %s\n", var.c_str(),
                   error.c_str());
      std::exit(2);
    }
  }
}

// Gives the common flag `name` this service's default: its value until the
// environment or the command line sets it, and the default --help shows.
void SetDefault(absl::string_view name, const std::string& value) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  std::string error;
#if ABSL_LTS_RELEASE_VERSION == 20220623
  const bool set = flag != nullptr &&
                   absl::flags_internal::PrivateHandleAccessor::ParseFrom(
                       *flag, value, absl::flags_internal::SET_FLAGS_DEFAULT,
                       absl::flags_internal::kProgrammaticChange, error);
#else
  // Its value only (--help then shows the common default).
  const bool set = flag != nullptr && flag->ParseFrom(value, &error);
#endif
  if (!set) {
    std::fprintf(stderr, "cannot give --%s the default %s: %s\n",
                 std::string(name).c_str(), value.c_str(), error.c_str());
    std::abort();
  }
}

// Until Serve waits for it, SIGTERM or SIGINT ends the process at once: a
// replica told to stop while it waits for its database or migrates has no
// calls to drain, and holding the signal until it serves would only get it
// killed later (by an orchestrator's grace period, or by hand).
class StopBeforeServing {
 public:
  explicit StopBeforeServing(std::string service)
      : service_(std::move(service)), watcher_([this] { Watch(); }) {}
  // Once stopped, a signal waits (blocked) for WaitForTerminationSignal.
  ~StopBeforeServing() {
    serving_.store(true);
    watcher_.join();
  }

 private:
  void Watch() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    const timespec tick = {0, 100'000'000};
    while (!serving_.load()) {
      const int signal = sigtimedwait(&set, nullptr, &tick);
      if (signal > 0) {
        LogInfo(service_, "stopped before serving",
                {{"signal", absl::StrCat(signal)}});
        std::_Exit(0);
      }
    }
  }

  const std::string service_;
  std::atomic<bool> serving_{false};
  std::thread watcher_;  // last: it reads the members above
};

StopBeforeServing* stop_before_serving = nullptr;

}  // namespace

void InitService(int argc, char** argv, const ServiceDefaults& defaults,
                 absl::string_view description) {
  BlockTerminationSignals();
  SetProcessService(defaults.name);
  stop_before_serving = new StopBeforeServing(defaults.name);
  absl::SetProgramUsageMessage(absl::StrCat(
      description,
      "\nEvery flag may also come from the environment as RAPPORT_<FLAG>, "
      "e.g. RAPPORT_LISTEN; a flag on the command line wins."));
  // This machine only unless told otherwise (every deployment says where):
  // a service started by hand does not serve the network in plain text.
  // As defaults, so that --help shows the service's own.
  SetDefault("listen", absl::StrCat("127.0.0.1:", defaults.port));
  SetDefault("metrics_listen",
             absl::StrCat("127.0.0.1:", defaults.metrics_port));
  SetDefault("max_threads", absl::StrCat(defaults.max_threads));
  SetDefault("shutdown_grace", absl::FormatDuration(defaults.shutdown_grace));
  // --help lists the flags of Rapport's own files (common/ and services/),
  // named from the source tree's root; Abseil's default lists only those of
  // a file named like the program, and no file is. --helpshort and
  // --helppackage list those of the service's own directory (services/),
  // without the server, TLS and database flags of common/; --helpfull adds
  // Abseil's.
  absl::FlagsUsageConfig usage;
  usage.normalize_filename = [](absl::string_view file) -> std::string {
    for (absl::string_view root : {"/common/", "/services/"}) {
      if (size_t at = file.rfind(root); at != absl::string_view::npos) {
        return std::string(file.substr(at + 1));
      }
    }
    return std::string(file);
  };
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::StartsWith(file, "common/") ||
           absl::StartsWith(file, "services/");
  };
  usage.contains_helpshort_flags = [](absl::string_view file) {
    return absl::StartsWith(file, "services/");
  };
  usage.contains_helppackage_flags = usage.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(std::move(usage));
  ApplyEnvironment();
  // Abseil's own ParseCommandLine ends --help (and its kinds) with exit
  // status 1, as if the command line were wrong; help that was asked for is
  // an answer, so it ends with 0. --version and --only_check_args keep
  // Abseil's status. (Through internals of the release Debian 12 has; later
  // releases changed them.)
#if ABSL_LTS_RELEASE_VERSION == 20220623
  namespace fi = absl::flags_internal;
  fi::ParseCommandLineImpl(argc, argv, fi::ArgvListAction::kRemoveParsedArgs,
                           fi::UsageFlagsAction::kIgnoreUsage,
                           fi::OnUndefinedFlag::kAbortIfUndefined);
  const bool help = fi::GetFlagsHelpMode() != fi::HelpMode::kNone &&
                    fi::GetFlagsHelpMode() != fi::HelpMode::kVersion &&
                    fi::GetFlagsHelpMode() != fi::HelpMode::kOnlyCheckArgs;
  if (int rc = fi::HandleUsageFlags(std::cout, absl::ProgramUsageMessage());
      rc != -1) {
    std::exit(help ? 0 : rc);
  }
#else
  absl::ParseCommandLine(argc, argv);
#endif
  // With its pid: a supervisor that finds the process not answering tells
  // from its log whether it is still starting (waiting for its database, or
  // migrating it, which takes minutes on a large one) or has served and hangs.
  LogInfo(defaults.name, "starting", {{"pid", absl::StrCat(getpid())}});
}

absl::StatusOr<ServerOptions> ReadServerFlags(
    const ServiceDefaults& defaults,
    std::vector<std::string> health_service_names) {
  ServerOptions options;
  options.service_name = defaults.name;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.max_threads = absl::GetFlag(FLAGS_max_threads);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.log_requests = absl::GetFlag(FLAGS_log_requests);
  options.port_file = absl::GetFlag(FLAGS_port_file);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_call_time = absl::GetFlag(FLAGS_max_call_time);
  options.max_stream_time = absl::GetFlag(FLAGS_max_stream_time);
  options.max_stream_idle_time = absl::GetFlag(FLAGS_max_stream_idle_time);
  options.max_streams_per_connection =
      absl::GetFlag(FLAGS_max_streams_per_connection);
  options.max_streams = absl::GetFlag(FLAGS_max_streams);
  options.max_streams_per_caller = absl::GetFlag(FLAGS_max_streams_per_caller);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.metrics_port_file = absl::GetFlag(FLAGS_metrics_port_file);
  options.allow_plaintext = absl::GetFlag(FLAGS_allow_plaintext);
  options.tls = {.cert_file = absl::GetFlag(FLAGS_tls_cert),
                 .key_file = absl::GetFlag(FLAGS_tls_key),
                 .ca_file = absl::GetFlag(FLAGS_tls_ca)};
  absl::StatusOr<TlsOptions::ClientCerts> client_certs =
      ParseClientCerts(absl::GetFlag(FLAGS_tls_client_certs));
  if (!client_certs.ok()) return client_certs.status();
  options.tls.client_certs = *client_certs;
  const absl::Duration reload = absl::GetFlag(FLAGS_tls_reload);
  if (reload < absl::Seconds(1) || reload > absl::Hours(24)) {
    return absl::InvalidArgumentError("tls_reload: must be from 1s to 24h");
  }
  options.tls.reload_seconds = static_cast<int>(absl::ToInt64Seconds(reload));
  options.health_service_names = std::move(health_service_names);
  // The other settings first (their errors say more than a missing key).
  if (absl::Status s = options.Validate();
      !s.ok() && !absl::StartsWith(s.message(), "jwks_file")) {
    return s;
  }
  if (absl::GetFlag(FLAGS_jwks_file).empty()) {
    return absl::InvalidArgumentError(
        "jwks_file: required (every call is authenticated)");
  }
  if (absl::GetFlag(FLAGS_auth_max_token_lifetime) < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "auth_max_token_lifetime: must not be negative");
  }
  absl::StatusOr<std::unique_ptr<auth::TokenVerifier>> verifier =
      auth::TokenVerifier::Create(
          {.jwks_file = absl::GetFlag(FLAGS_jwks_file),
           .issuer = absl::GetFlag(FLAGS_auth_issuer),
           .audience = absl::GetFlag(FLAGS_auth_audience),
           .other_audiences = defaults.takes_service_tokens
                                  ? std::vector<std::string>{ServiceAudience()}
                                  : std::vector<std::string>{},
           .max_lifetime = absl::GetFlag(FLAGS_auth_max_token_lifetime)});
  if (!verifier.ok()) return verifier.status();
  options.verifier = *std::move(verifier);
  if (absl::Status s = options.Validate(); !s.ok()) return s;
  return options;
}

std::string AuthIssuer() { return absl::GetFlag(FLAGS_auth_issuer); }
std::string AuthAudience() { return absl::GetFlag(FLAGS_auth_audience); }
std::string ServiceAudience() { return AuthAudience() + ".scoring"; }

int Serve(const ServerOptions& options, std::vector<grpc::Service*> services,
          Server::Probe probe, std::function<void(absl::Time deadline)> drain) {
  // From here a signal is Shutdown's to handle, after the calls drain.
  delete stop_before_serving;
  stop_before_serving = nullptr;
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(options, std::move(services), std::move(probe));
  if (!server.ok()) {
    LogError(options.service_name, "cannot start",
             {{"error", std::string(server.status().message())}});
    return 1;
  }
  WaitForTerminationSignal();
  const absl::Time deadline = absl::Now() + options.shutdown_grace;
  (*server)->Shutdown();
  if (drain) drain(deadline);
  return 0;
}

int FailToStart(const ServiceDefaults& defaults, const absl::Status& status) {
  LogError(defaults.name, "cannot start",
           {{"error", std::string(status.message())}});
  return 1;
}

}  // namespace rapport
