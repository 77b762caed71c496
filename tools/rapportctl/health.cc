// rapportctl health: asks a service's standard health service.
#include <iostream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterparts.h"

namespace rapport::ctl {

int RunHealth(Context& ctx) {
  std::set<std::string> known = {"service", "wait"};
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  if (absl::Status s = NoMoreWords(ctx.args, 1); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  absl::Duration wait = absl::ZeroDuration();
  if (auto w = ctx.args.Get("wait"); w && !absl::ParseDuration(*w, &wait)) {
    return UsageError(
        absl::StrCat("--wait: want a duration such as 30s, not \"", *w, "\""),
        "");
  }
  // The service named is asked where it runs (--addr overrides): the
  // customer service's address for "" or a customer service name.
  const std::string service = ctx.args.GetOr("service", "");
  const char* env = CustomersApi::kAddrEnv;
  const char* fallback = CustomersApi::kAddrDefault;
  if (absl::StartsWith(service, "rapport.partner.")) {
    env = PartnersApi::kAddrEnv;
    fallback = PartnersApi::kAddrDefault;
  } else if (absl::StartsWith(service, "rapport.financial_community.")) {
    env = CommunityApi::kAddrEnv;
    fallback = CommunityApi::kAddrDefault;
  } else if (absl::StartsWith(service, "rapport.scoring.")) {
    env = "RAPPORT_SCORING_ADDR";  // as `rapportctl scoring` finds it
    fallback = "localhost:50054";
  }
  // Health needs no token and sends none, so whatever token is at hand (the
  // local platform's, which must not leave this machine) does not stop a
  // probe of another machine, nor make it need TLS.
  ctx.token.clear();
  ctx.token_is_local = false;
  // One replica (of a list, the first that answers), so that a name it
  // does not know is asked about again there (below).
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.ServiceChannel("addr", env, fallback, /*lane=*/0);
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  const absl::Time give_up = absl::Now() + wait;
  for (;;) {
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext call;
    // Each probe within --timeout (2 s unless given), so that a hung
    // service is asked again until --wait runs out.
    const absl::Duration probe =
        ctx.args.Has("timeout") ? ctx.timeout : absl::Seconds(2);
    call.set_deadline(absl::ToChronoTime(absl::Now() + probe));
    grpc::Status s = stub->Check(&call, request, &response);
    // A name the server does not know, once it has registered its names
    // (it answers for "liveness" from then on, whatever its state), will
    // not come: no use waiting for it.
    bool unknown = false;
    if (s.error_code() == grpc::StatusCode::NOT_FOUND &&
        absl::Now() < give_up) {
      grpc::health::v1::HealthCheckRequest liveness;
      liveness.set_service(std::string(kLivenessName));
      grpc::health::v1::HealthCheckResponse answer;
      grpc::ClientContext again;
      again.set_deadline(absl::ToChronoTime(absl::Now() + probe));
      unknown = stub->Check(&again, liveness, &answer).ok();
    }
    const bool serving =
        s.ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (serving || unknown || absl::Now() >= give_up) {
      // No answer is 1, not 3: scripts (deploy/local/run) tell a service
      // that is there but not serving from a port where nothing answers.
      // A server that answers but knows no such name was asked for the
      // wrong name (or at another service's address): the caller's mistake.
      if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
        std::cerr << "rapportctl: --service: the server at that address "
                     "knows no service named \""
                  << service
                  << "\"; it answers for \"\" (the server as a whole), "
                     "\"liveness\" and the full names of its APIs (such as "
                     "rapport.customer.v1.CustomerService)\n";
        return kExitUsage;
      }
      if (!s.ok()) return ReportError(FromGrpcStatus(s));
      const std::string status =
          grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
              response.status());
      if (ctx.format == Format::kJson) {
        PrintJson(response, std::cout);
      } else if (ctx.format == Format::kCsv) {
        Table t({"status"});
        t.AddRow({status});
        t.Print(ctx.format, std::cout);
      } else {
        std::cout << status << "\n";  // what probes and scripts read
      }
      return serving ? kExitOk : kExitNotServing;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace rapport::ctl
