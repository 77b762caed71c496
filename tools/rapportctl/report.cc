// rapportctl report --out FILE.html: gathers what the page shows from the
// three counterpart services (summaries, exported values, the financial
// community's targets, the partner deal conflicts) and writes the page that
// report_html.cc renders. A service that does not answer leaves its parts
// marked unavailable; the page is written all the same.
#include "tools/rapportctl/report.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterparts.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace cv1 = ::rapport::common::v1;
namespace fv1 = ::rapport::financial_community::v1;
namespace pv1 = ::rapport::partner::v1;

// The deal conflicts the page lists at most; it says when more wait.
constexpr int kConflictsShown = 50;

constexpr char kUsage[] =
    "rapportctl report --out FILE.html [--as-of RFC3339] [--targets N] "
    "[--peer SECURITY]...";

// Says on stderr what part of the page is missing and why (the page itself
// says only that it is unavailable).
// Adds to `warnings` (printed once the questions asked at once are all
// answered) that `what` is left out.
void Warn(absl::string_view what, const grpc::Status& s,
          std::string* warnings) {
  absl::StrAppend(
      warnings, "rapportctl: ", what, " unavailable: ",
      absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())),
      ": ", s.error_message(), "\n");
}

template <typename Api>
std::unique_ptr<typename Api::Service::Stub> StubOf(const Context& ctx) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.ServiceChannel(Api::kAddrFlag, Api::kAddrEnv, Api::kAddrDefault);
  if (!channel.ok()) return nullptr;
  return Api::Service::NewStub(*channel);
}

// The R-by-F grid and the value distribution of one counterpart, from its
// exported values, which must be those of the refresh its summary named
// (`c.model_id`): a refresh that published in between makes them another
// set's, and the page says to make it again.
template <typename Api>
report::Detail DetailOf(const Context& ctx, const overview::Counterpart& c,
                        std::string* warnings) {
  report::Detail detail;
  detail.key = Api::kKey;
  // The refresh's bins (a grid of k by k, whatever scores the values
  // reached), raised to the largest R or F exported if it was not told.
  detail.bins = std::max(1, c.bins);
  auto stub = StubOf<Api>(ctx);
  if (stub == nullptr) return detail;
  // The whole export in one call: give it more than one call's deadline.
  std::unique_ptr<grpc::ClientContext> call = ctx.NewCall();
  call->set_deadline(
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(std::max(ctx.timeout, absl::Minutes(10))));
  auto reader =
      stub->ExportScores(call.get(), typename Api::ExportScoresRequest());
  typename Api::ExportScoresResponse batch;
  bool other_set = false;
  while (reader->Read(&batch)) {
    for (const auto& v : batch.values()) {
      other_set = other_set || v.model_id() != c.model_id;
      detail.bins = std::max({detail.bins, v.r(), v.f()});
      report::AddToDetail(v.r(), v.f(), v.value_hundredths(), &detail);
    }
  }
  if (grpc::Status s = reader->Finish(); !s.ok()) {
    Warn(absl::StrCat(Api::kTitle, ": exported values"), s, warnings);
    return detail;
  }
  if (other_set) {
    absl::StrAppend(warnings, "rapportctl: ", Api::kTitle,
                    ": a refresh published new values while the report was "
                    "read; the grid and the distribution are left out: make "
                    "the report again\n");
    return detail;
  }
  detail.available = true;
  return detail;
}

void GatherTargets(const Context& ctx, const google::protobuf::Timestamp& as_of,
                   int limit, report::ReportData* data, std::string* warnings) {
  auto stub = StubOf<CommunityApi>(ctx);
  if (stub == nullptr) return;
  fv1::ListEngagementTargetsRequest request;
  *request.mutable_as_of() = as_of;
  request.set_limit(limit);
  for (const std::string& p : ctx.args.GetAll("peer"))
    request.add_peer_securities(p);
  fv1::ListEngagementTargetsResponse response;
  if (grpc::Status s =
          stub->ListEngagementTargets(ctx.NewCall().get(), request, &response);
      !s.ok()) {
    Warn("the financial community's targets", s, warnings);
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

void GatherConflicts(const Context& ctx, report::ReportData* data,
                     std::string* warnings) {
  auto stub = StubOf<PartnersApi>(ctx);
  if (stub == nullptr) return;
  pv1::ListDealConflictsRequest request;
  request.set_page_size(kConflictsShown);
  pv1::ListDealConflictsResponse response;
  if (grpc::Status s =
          stub->ListDealConflicts(ctx.NewCall().get(), request, &response);
      !s.ok()) {
    Warn("the partner deal conflicts", s, warnings);
    return;
  }
  data->conflicts_available = true;
  data->more_conflicts = !response.next_page_token().empty();
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
           v.model_id().empty() ? "" : ValueText(v.value_hundredths())});
    }
    data->conflicts.push_back(std::move(conflict));
  }
}

// Writes `content` to a new file of its own next to `path` (mkstemp: no
// other writer, no link followed) and renames it over `path`, so that a
// reader never sees half a page.
absl::Status WriteWhole(const std::string& path, const std::string& content) {
  std::string temp = path + ".XXXXXX";
  const int fd = mkstemp(temp.data());
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n =
        write(fd, content.data() + written, content.size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  // Readable like any file the user writes (mkstemp makes it 0600).
  const mode_t mask = umask(0);
  umask(mask);
  const bool ok = written == content.size() && fchmod(fd, 0666 & ~mask) == 0 &&
                  close(fd) == 0 &&
                  std::rename(temp.c_str(), path.c_str()) == 0;
  if (!ok) {
    const int error = errno;
    unlink(temp.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

}  // namespace

int RunReport(Context& ctx) {
  if (absl::Status s = CounterpartAddrFlagsOnly(
          ctx.args, {"out", "as-of", "targets", "peer"});
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
  // Then each counterpart's details from its service, the three services at
  // once; one that did not answer its summary is asked nothing more (each
  // question would wait out another timeout).
  const std::vector<overview::Counterpart>& counterparts =
      data.overview.counterparts;
  data.details.resize(counterparts.size());
  std::vector<std::string> warnings(counterparts.size());
  {
    std::vector<std::thread> asking;
    for (size_t i = 0; i < counterparts.size(); ++i) {
      asking.emplace_back([&, i] {
        const overview::Counterpart& c = counterparts[i];
        std::string* w = &warnings[i];
        report::Detail& detail = data.details[i];
        if (c.available) {
          if (c.key == CustomersApi::kKey) {
            detail = DetailOf<CustomersApi>(ctx, c, w);
          }
          if (c.key == PartnersApi::kKey) {
            detail = DetailOf<PartnersApi>(ctx, c, w);
          }
          if (c.key == CommunityApi::kKey) {
            detail = DetailOf<CommunityApi>(ctx, c, w);
          }
        }
        detail.key = c.key;
        const bool answered = overview::Answered(c);
        if (c.key == CommunityApi::kKey) {
          if (answered) {
            GatherTargets(ctx, as_of, *limit, &data, w);
          } else {
            absl::StrAppend(w,
                            "rapportctl: the financial community's targets "
                            "unavailable: its service did not answer\n");
          }
        }
        if (c.key == PartnersApi::kKey) {
          if (answered) {
            GatherConflicts(ctx, &data, w);
          } else {
            absl::StrAppend(w,
                            "rapportctl: the partner deal conflicts "
                            "unavailable: their service did not answer\n");
          }
        }
      });
    }
    for (std::thread& t : asking) t.join();
  }
  for (const std::string& w : warnings) std::cerr << w;

  if (absl::Status s = WriteWhole(out, report::RenderHtml(data)); !s.ok()) {
    return ReportError(s);
  }
  // The page is written whatever was missing; the exit status says if
  // anything was.
  bool complete = data.targets_available && data.conflicts_available;
  for (size_t i = 0; i < data.overview.counterparts.size(); ++i) {
    const overview::Counterpart& c = data.overview.counterparts[i];
    if (!c.available) {
      std::cerr << "rapportctl: " << c.title << " unavailable (" << c.error
                << "); the report shows it so\n";
    }
    complete = complete && c.available && data.details[i].available;
  }
  std::cerr << "report: wrote " << out << "\n";
  return complete ? kExitOk : kExitFailed;
}

}  // namespace rapport::ctl
