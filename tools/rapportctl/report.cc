// rapportctl report --out FILE.html: gathers what the page shows from the
// three counterpart services (summaries, exported values, the financial
// community's targets, the partner deal conflicts) and writes the page that
// report_html.cc renders. A service that does not answer leaves its parts
// marked unavailable; the page is written all the same.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterparts.h"
#include "tools/rapportctl/report.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace cv1 = ::rapport::common::v1;
namespace fv1 = ::rapport::financial_community::v1;
namespace pv1 = ::rapport::partner::v1;

constexpr char kUsage[] =
    "rapportctl report --out FILE.html [--as-of RFC3339] [--targets N]";

template <typename Api>
std::unique_ptr<typename Api::Service::Stub> StubOf(const Context& ctx) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.ServiceChannel(Api::kAddrFlag, Api::kAddrEnv, Api::kAddrDefault);
  if (!channel.ok()) return nullptr;
  return Api::Service::NewStub(*channel);
}

// The R-by-F grid and the value distribution of one counterpart, from its
// exported values.
template <typename Api>
report::Detail DetailOf(const Context& ctx) {
  report::Detail detail;
  detail.key = Api::kKey;
  auto stub = StubOf<Api>(ctx);
  if (stub == nullptr) return detail;
  std::unique_ptr<grpc::ClientContext> call = ctx.NewCall();
  auto reader = stub->ExportScores(call.get(),
                                   typename Api::ExportScoresRequest());
  typename Api::ExportScoresResponse batch;
  while (reader->Read(&batch)) {
    for (const auto& v : batch.values()) {
      detail.bins = std::max({detail.bins, v.r(), v.f()});
      report::AddToDetail(v.r(), v.f(), v.value_hundredths(), &detail);
    }
  }
  detail.available = reader->Finish().ok();
  return detail;
}

void GatherTargets(const Context& ctx, const google::protobuf::Timestamp& as_of,
                   int limit, report::ReportData* data) {
  auto stub = StubOf<CommunityApi>(ctx);
  if (stub == nullptr) return;
  fv1::ListEngagementTargetsRequest request;
  *request.mutable_as_of() = as_of;
  request.set_limit(limit);
  fv1::ListEngagementTargetsResponse response;
  if (!stub->ListEngagementTargets(ctx.NewCall().get(), request, &response)
           .ok()) {
    return;
  }
  data->targets_available = true;
  for (const fv1::EngagementTarget& t : response.targets()) {
    data->targets.push_back(
        {t.member_id(), t.display_name(),
         EnumText(fv1::MemberKind_Name(t.kind()), "MEMBER_KIND_"),
         MoneyText(t.score()), t.reason()});
  }
}

void GatherConflicts(const Context& ctx, report::ReportData* data) {
  auto stub = StubOf<PartnersApi>(ctx);
  if (stub == nullptr) return;
  pv1::ListDealConflictsRequest request;
  request.set_page_size(20);
  pv1::ListDealConflictsResponse response;
  if (!stub->ListDealConflicts(ctx.NewCall().get(), request, &response).ok()) {
    return;
  }
  data->conflicts_available = true;
  for (const pv1::DealConflict& c : response.conflicts()) {
    report::Conflict conflict{c.account_key(), {}};
    for (const pv1::DealClaim& claim : c.claims()) {
      const pv1::Deal& d = claim.deal();
      const cv1::EntityValue& v = claim.scorecard().value();
      conflict.claims.push_back(
          {d.id(), d.partner_id(), claim.scorecard().display_name(),
           d.account_domain().empty()
               ? d.account_name()
               : absl::StrCat(d.account_name(), " (", d.account_domain(), ")"),
           MoneyText(d.amount()),
           EnumText(pv1::DealState_Name(d.state()), "DEAL_STATE_"),
           TimeText(d.register_time()), TierName(v.tier()),
           v.model_id().empty() ? ""
                                : ValueText(v.value_hundredths())});
    }
    data->conflicts.push_back(std::move(conflict));
  }
}

}  // namespace

int RunReport(Context& ctx) {
  if (absl::Status s =
          CounterpartAddrFlagsOnly(ctx.args, {"out", "as-of", "targets"});
      !s.ok()) {
    return UsageError(std::string(s.message()), kUsage);
  }
  if (absl::Status s = NoMoreWords(ctx.args, 1); !s.ok()) {
    return UsageError(std::string(s.message()), kUsage);
  }
  const std::string out = ctx.args.GetOr("out", "");
  if (out.empty()) return UsageError("--out FILE.html is required", kUsage);
  absl::StatusOr<int> limit = IntFlag(ctx.args, "targets", 10);
  if (!limit.ok()) return UsageError(limit.status());
  if (*limit < 1 || *limit > 1000) {
    return UsageError("--targets: want 1 to 1000", kUsage);
  }
  const int64_t now = absl::ToUnixMicros(absl::Now());
  google::protobuf::Timestamp as_of = ToTimestamp(now);
  if (absl::Status s = TimeFlag(ctx.args, "as-of", &as_of, false); !s.ok()) {
    return UsageError(s);
  }

  report::ReportData data;
  data.generated_at = FormatRfc3339Micros(now);
  data.overview = overview::Gather(ctx);
  for (const overview::Counterpart& c : data.overview.counterparts) {
    report::Detail detail;
    if (c.available) {
      if (c.key == CustomersApi::kKey) detail = DetailOf<CustomersApi>(ctx);
      if (c.key == PartnersApi::kKey) detail = DetailOf<PartnersApi>(ctx);
      if (c.key == CommunityApi::kKey) detail = DetailOf<CommunityApi>(ctx);
    }
    detail.key = c.key;
    data.details.push_back(std::move(detail));
  }
  GatherTargets(ctx, as_of, *limit, &data);
  GatherConflicts(ctx, &data);

  // Written next to the target and renamed, so that a reader never sees
  // half a page.
  const std::string temp = out + ".tmp";
  {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << report::RenderHtml(data);
    file.close();
    if (!file) {
      std::remove(temp.c_str());
      return ReportError(absl::FailedPreconditionError(
          absl::StrCat("cannot write ", out)));
    }
  }
  if (std::rename(temp.c_str(), out.c_str()) != 0) {
    std::remove(temp.c_str());
    return ReportError(
        absl::FailedPreconditionError(absl::StrCat("cannot write ", out)));
  }
  int code = kExitOk;
  for (const overview::Counterpart& c : data.overview.counterparts) {
    if (c.available) continue;
    std::cerr << "rapportctl: " << c.title << " unavailable (" << c.error
              << "); the report shows it so\n";
    code = kExitFailed;
  }
  std::cerr << "report: wrote " << out << "\n";
  return code;
}

}  // namespace rapport::ctl
