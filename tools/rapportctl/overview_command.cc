// rapportctl overview: asks the customer, partner and financial-community
// services for their summaries (no service reads another's database) and
// prints the three side by side with the balance (overview.h).
#include <grpcpp/grpcpp.h>

#include <iostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterparts.h"
#include "tools/rapportctl/overview.h"

namespace rapport::ctl {
namespace {

namespace cv1 = ::rapport::common::v1;

std::string CallError(const grpc::Status& s) {
  return absl::StrCat(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
      ": ", s.error_message());
}

// One counterpart's summary, or the counterpart marked unavailable with what
// its service (or the channel) said.
template <typename Api>
overview::Counterpart SummaryOf(const Context& ctx) {
  overview::Counterpart down;
  down.key = Api::kKey;
  down.title = Api::kTitle;
  down.service = Api::kService;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.ServiceChannel(Api::kAddrFlag, Api::kAddrEnv, Api::kAddrDefault);
  if (!channel.ok()) {
    down.error = channel.status().ToString();
    return down;
  }
  auto stub = Api::Service::NewStub(*channel);
  typename Api::SummarizeSegmentsResponse r;
  grpc::Status s = stub->SummarizeSegments(
      ctx.NewCall().get(), typename Api::SummarizeSegmentsRequest(), &r);
  if (!s.ok()) {
    down.error = CallError(s);
    return down;
  }
  overview::Counterpart c = overview::FromSummary(
      Api::kKey, Api::kTitle, Api::kService, r.entities(), r.model_id(),
      r.total(), {r.tiers().begin(), r.tiers().end()},
      {r.segments().begin(), r.segments().end()});
  // The refresh's as_of and bins; without them (an error) the figures still
  // stand.
  if (c.available && !c.model_id.empty()) {
    typename Api::GetRefreshJobRequest get;
    get.set_id(c.model_id);
    typename Api::GetRefreshJobResponse job;
    if (stub->GetRefreshJob(ctx.NewCall().get(), get, &job).ok()) {
      c.as_of = TimeText(job.job().request().as_of());
      c.bins = job.job().request().bins();
    }
  }
  return c;
}

}  // namespace

namespace overview {

Overview Gather(const Context& ctx) {
  // The three at once: a service that does not answer costs one timeout,
  // not one after another.
  std::vector<Counterpart> counterparts(3);
  {
    std::thread partners(
        [&] { counterparts[1] = SummaryOf<PartnersApi>(ctx); });
    std::thread community(
        [&] { counterparts[2] = SummaryOf<CommunityApi>(ctx); });
    counterparts[0] = SummaryOf<CustomersApi>(ctx);
    partners.join();
    community.join();
  }
  return Balance(std::move(counterparts));
}

}  // namespace overview

absl::Status CounterpartAddrFlagsOnly(const Args& args,
                                      std::set<std::string> known) {
  if (args.Has("addr")) {
    return absl::InvalidArgumentError(
        "--addr: this command talks to three services; give "
        "--customer-addr, --partner-addr and --community-addr instead");
  }
  for (const char* flag : kCounterpartAddrFlags) known.insert(flag);
  return KnownFlags(args, std::move(known));
}

int RunOverview(Context& ctx) {
  if (absl::Status s = CounterpartAddrFlagsOnly(ctx.args, {}); !s.ok()) {
    return UsageError(s);
  }
  if (absl::Status s = NoMoreWords(ctx.args, 1); !s.ok()) {
    return UsageError(s);
  }
  const overview::Overview o = overview::Gather(ctx);
  overview::Print(ctx.format, o, std::cout);
  int code = kExitOk;
  for (const overview::Counterpart& c : o.counterparts) {
    if (c.available) continue;
    std::cerr << "rapportctl: " << c.title << " unavailable (" << c.error
              << ")\n";
    code = kExitFailed;
  }
  return code;
}

}  // namespace rapport::ctl
