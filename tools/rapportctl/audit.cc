// rapportctl audit list: who changed what, from a service's audit log
// (admins only): customer, partner or financial community.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"
#include "tools/rapportctl/command.h"

namespace rapport::ctl {
namespace {

std::string TimeText(const google::protobuf::Timestamp& t) {
  return FormatRfc3339Micros(t.seconds() * 1'000'000 + t.nanos() / 1000);
}

// --since: an RFC 3339 time, or a duration back from now ("24h").
absl::StatusOr<int64_t> SinceFlag(const std::string& text) {
  absl::Duration ago;
  if (absl::ParseDuration(text, &ago) && ago >= absl::ZeroDuration()) {
    return absl::ToUnixMicros(absl::Now() - ago);
  }
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(text);
  if (!t.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--since: want an RFC 3339 time or a duration such as 24h, not \"",
        text, "\""));
  }
  return *t;
}

// Lists the audit log of the service `Service` (every service's
// ListAuditEvents has the same messages).
template <typename Service>
int ListAudit(Context& ctx, const char* env, const char* fallback) {
  typename Service::ListAuditEventsRequest request;
  request.set_actor(ctx.args.GetOr("actor", ""));
  request.set_resource(ctx.args.GetOr("resource", ""));
  if (std::optional<std::string> since = ctx.args.Get("since")) {
    absl::StatusOr<int64_t> t = SinceFlag(*since);
    if (!t.ok()) return UsageError(std::string(t.status().message()), "");
    *request.mutable_start_time() = ToTimestamp(*t);
  }
  absl::StatusOr<int> size = IntFlag(ctx.args, "page-size", 0);
  if (!size.ok()) return UsageError(std::string(size.status().message()), "");
  request.set_page_size(*size);

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.Channel(env, fallback);
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  auto stub = Service::Service::NewStub(*channel);
  typename Service::ListAuditEventsResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](grpc::ClientContext* call, const auto& r, auto* out) {
            return stub->ListAuditEvents(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t(
      {"time", "actor", "rpc", "resource", "request_id", "outcome", "details"});
  for (const auto& e : all.events()) {
    t.AddRow({TimeText(e.time()), e.actor(), e.rpc(), e.resource(),
              e.request_id(), e.outcome(), e.details()});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

struct CustomerAudit {
  using Service = ::rapport::customer::v1::CustomerService;
  using ListAuditEventsRequest =
      ::rapport::customer::v1::ListAuditEventsRequest;
  using ListAuditEventsResponse =
      ::rapport::customer::v1::ListAuditEventsResponse;
};
struct PartnerAudit {
  using Service = ::rapport::partner::v1::PartnerService;
  using ListAuditEventsRequest = ::rapport::partner::v1::ListAuditEventsRequest;
  using ListAuditEventsResponse =
      ::rapport::partner::v1::ListAuditEventsResponse;
};
struct CommunityAudit {
  using Service = ::rapport::financial_community::v1::FinancialCommunityService;
  using ListAuditEventsRequest =
      ::rapport::financial_community::v1::ListAuditEventsRequest;
  using ListAuditEventsResponse =
      ::rapport::financial_community::v1::ListAuditEventsResponse;
};

}  // namespace

int RunAudit(Context& ctx) {
  const auto& words = ctx.args.positional();
  if (words.size() != 2 || words[1] != "list") {
    return UsageError(
        "want: rapportctl audit list [--service customer|partner|community] "
        "[--actor A] [--resource R] [--since T]",
        "");
  }
  std::set<std::string> known = {"actor",     "resource",   "since",
                                 "page-size", "page-token", "all",
                                 "service"};
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  if (absl::Status s = ctx.args.CheckKnown(known); !s.ok())
    return UsageError(std::string(s.message()), "");
  const std::string service = ctx.args.GetOr("service", "customer");
  if (service == "customer") {
    return ListAudit<CustomerAudit>(ctx, "RAPPORT_CUSTOMER_ADDR",
                                    "localhost:50051");
  }
  if (service == "partner") {
    return ListAudit<PartnerAudit>(ctx, "RAPPORT_PARTNER_ADDR",
                                   "localhost:50052");
  }
  // The service's own name too, as deploy/local/run --replicas spells it.
  if (service == "community" || service == "financial-community") {
    return ListAudit<CommunityAudit>(ctx, "RAPPORT_COMMUNITY_ADDR",
                                     "localhost:50053");
  }
  return UsageError(
      absl::StrCat("--service: want customer, partner or community "
                   "(financial-community), not \"",
                   service, "\""),
      "");
}

}  // namespace rapport::ctl
