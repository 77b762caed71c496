// rapportctl health: asks a service's standard health service.
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"

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
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.CustomerChannel();
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  auto stub = grpc::health::v1::Health::NewStub(*channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(ctx.args.GetOr("service", ""));
  const absl::Time give_up = absl::Now() + wait;
  for (;;) {
    grpc::health::v1::HealthCheckResponse response;
    grpc::ClientContext call;
    call.set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
    grpc::Status s = stub->Check(&call, request, &response);
    const bool serving =
        s.ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
    if (serving || absl::Now() >= give_up) {
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
