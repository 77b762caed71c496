// rapportctl <counterpart> refresh-scores|refresh-job|value|summarize|export
// scores, written once for every counterpart service: their differentiation
// RPCs have the same messages (common/differentiation/rpcs.h), so one
// template serves customers, partners and the financial community. A
// service's traits name its stub, its messages and its nouns:
//
//   struct PartnerScores {
//     using Stub = v1::PartnerService::Stub;
//     using RefreshScoresRequest = v1::RefreshScoresRequest; ...
//     static constexpr const char* kCommand = "partners";
//     static grpc::Status GetValue(Stub&, grpc::ClientContext*, ...);
//   };
//   return RunScores<PartnerScores>(ctx, *stub);
#ifndef RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_SCORES_H_
#define RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_SCORES_H_

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/base/csv.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/common/v1/differentiation.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace scores {

namespace cv1 = ::rapport::common::v1;

inline const char* StateText(cv1::RefreshJob::State state) {
  switch (state) {
    case cv1::RefreshJob::STATE_RUNNING:
      return "RUNNING";
    case cv1::RefreshJob::STATE_SUCCEEDED:
      return "SUCCEEDED";
    case cv1::RefreshJob::STATE_FAILED:
      return "FAILED";
    default:
      return "UNSPECIFIED";
  }
}

inline std::string Percent(int64_t done, int64_t total) {
  if (total <= 0) return "";
  return absl::StrFormat(
      "%.0f%%", 100.0 * static_cast<double>(done) / static_cast<double>(total));
}

inline int PrintJob(const Context& ctx, const cv1::RefreshJob& job) {
  if (ctx.format == Format::kJson) {
    PrintJson(job, std::cout);
    return kExitOk;
  }
  Table t({"id", "state", "done", "total", "create_time", "end_time", "error"});
  t.AddRow({job.id(), StateText(job.state()), absl::StrCat(job.done()),
            absl::StrCat(job.total()), TimeText(job.create_time()),
            TimeText(job.end_time()), job.error()});
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

// A progress bar on stderr: one line updated in place on a terminal, else a
// line per second.
class ProgressBar {
 public:
  explicit ProgressBar(std::string noun)
      : noun_(std::move(noun)),
        tty_(isatty(STDERR_FILENO) == 1),
        start_(absl::Now()) {}

  void Show(const cv1::RefreshJob& job) {
    const absl::Time now = absl::Now();
    const double seconds = absl::ToDoubleSeconds(now - start_);
    // A running job has no total until it has counted its entities and its
    // next heartbeat has recorded the count: "counting", not "0/0".
    const bool counting =
        job.state() == cv1::RefreshJob::STATE_RUNNING && job.total() == 0;
    const std::string progress =
        counting ? absl::StrCat("starting (counting the ", noun_, ")")
                 : absl::StrFormat("%d/%d %s %s", job.done(), job.total(),
                                   noun_, Percent(job.done(), job.total()));
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled =
          job.total() > 0
              ? static_cast<int>(kWidth *
                                 std::min<int64_t>(job.done(), job.total()) /
                                 job.total())
              : 0;
      // Padded, so that a shorter line overwrites all of a longer one.
      std::cerr << absl::StrFormat("\rrefresh %s [%s%s] %-40s %.0f s ",
                                   job.id(), std::string(filled, '#'),
                                   std::string(kWidth - filled, '.'), progress,
                                   seconds)
                << std::flush;
      drawn_ = true;
    } else if (now - last_ >= absl::Seconds(1)) {
      last_ = now;
      std::cerr << absl::StrFormat("rapportctl: refresh %s: %s (%.0f s)\n",
                                   job.id(), progress, seconds);
    }
  }
  void End() {
    if (drawn_) std::cerr << "\n";
  }

 private:
  std::string noun_;
  bool tty_;
  absl::Time start_;
  absl::Time last_ = absl::InfinitePast();
  bool drawn_ = false;
};

// Polls the job until it ends; the exit code says how it ended. The job
// runs on whether or not it is watched, so a replica restarting under the
// poll (UNAVAILABLE, a deadline passed, or CANCELLED: a stopping server ends
// the calls it still has, and this client cancels none) is asked again, for
// up to --timeout since the last answer.
template <typename T>
int Follow(const Context& ctx, typename T::Stub& stub, cv1::RefreshJob job) {
  ProgressBar bar(T::kPlural);
  typename T::GetRefreshJobRequest request;
  request.set_id(job.id());
  absl::Time answered = absl::Now();
  while (job.state() == cv1::RefreshJob::STATE_RUNNING) {
    bar.Show(job);
    absl::SleepFor(absl::Milliseconds(250));
    typename T::GetRefreshJobResponse response;
    // Each poll a few seconds at most, so that one that hangs is retried
    // within the budget rather than using it up.
    std::unique_ptr<grpc::ClientContext> call = ctx.NewCall();
    call->set_deadline(absl::ToChronoTime(
        absl::Now() + std::min(ctx.timeout, absl::Seconds(10))));
    grpc::Status s = stub.GetRefreshJob(call.get(), request, &response);
    const bool transient =
        s.error_code() == grpc::StatusCode::UNAVAILABLE ||
        s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        s.error_code() == grpc::StatusCode::CANCELLED;
    if (transient && absl::Now() - answered < ctx.timeout) continue;
    if (!s.ok()) {
      bar.End();
      return ReportError(FromGrpcStatus(s));
    }
    answered = absl::Now();
    job = response.job();
  }
  bar.Show(job);
  bar.End();
  PrintJob(ctx, job);
  if (job.state() != cv1::RefreshJob::STATE_SUCCEEDED) {
    std::cerr << "rapportctl: refresh " << job.id()
              << " failed: " << job.error() << "\n";
    return kExitFailed;
  }
  return kExitOk;
}

template <typename T>
int RefreshScores(Context& ctx, typename T::Stub& stub) {
  if (absl::Status s =
          KnownFlags(ctx.args, {"as-of", "window-days", "bins", "with-clv",
                                "no-wait", "request-id"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  typename T::RefreshScoresRequest request;
  if (std::optional<std::string> as_of = ctx.args.Get("as-of")) {
    absl::StatusOr<int64_t> t = ParseRfc3339Micros(*as_of);
    if (!t.ok())
      return UsageError(absl::StrCat("--as-of: ", t.status().message()), "");
    *request.mutable_as_of() = ToTimestamp(*t);
  }
  absl::StatusOr<int> window = IntFlag(ctx.args, "window-days", 0);
  if (!window.ok())
    return UsageError(std::string(window.status().message()), "");
  if (ctx.args.Has("window-days") && (*window < 1 || *window > 100000)) {
    return UsageError(
        "--window-days: must be 1..100000 days (leave it out for no window)",
        "");
  }
  absl::StatusOr<int> bins = IntFlag(ctx.args, "bins", 5);
  if (!bins.ok()) return UsageError(std::string(bins.status().message()), "");
  if (*bins < 2 || *bins > 10) return UsageError("--bins: must be 2..10", "");
  request.set_window_days(*window);
  request.set_bins(*bins);
  request.set_with_clv(ctx.args.GetOr("with-clv", "false") == "true");
  // A retry under the same id follows the job the first call started.
  request.set_request_id(ctx.args.GetOr("request-id", ""));

  typename T::RefreshScoresResponse response;
  grpc::Status s = stub.RefreshScores(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  // A retry of a request id whose refresh failed finds that job, ended: it
  // does not start another, and says how to.
  if (!request.request_id().empty() &&
      response.job().state() == cv1::RefreshJob::STATE_FAILED) {
    std::cerr << "rapportctl: request id " << request.request_id()
              << " names refresh job " << response.job().id()
              << ", which failed; give another --request-id to refresh "
                 "again\n";
  }
  if (ctx.args.GetOr("no-wait", "false") == "true")
    return PrintJob(ctx, response.job());
  return Follow<T>(ctx, stub, response.job());
}

template <typename T>
int RefreshJob(Context& ctx, typename T::Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {}); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  if (ctx.args.positional().size() != 3) {
    return UsageError(
        absl::StrCat("want: rapportctl ", T::kCommand, " refresh-job ID"), "");
  }
  typename T::GetRefreshJobRequest request;
  request.set_id(ctx.args.positional()[2]);
  typename T::GetRefreshJobResponse response;
  grpc::Status s = stub.GetRefreshJob(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  return PrintJob(ctx, response.job());
}

template <typename T>
int Value(Context& ctx, typename T::Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {}); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  if (ctx.args.positional().size() != 3) {
    return UsageError(
        absl::StrCat("want: rapportctl ", T::kCommand, " value ID"), "");
  }
  typename T::GetValueRequest request;
  request.set_id(ctx.args.positional()[2]);
  typename T::GetValueResponse response;
  grpc::Status s = T::GetValue(stub, ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  const cv1::EntityValue& v = response.value();
  if (ctx.format == Format::kJson) {
    PrintJson(v, std::cout);
    return kExitOk;
  }
  std::vector<std::string> fields;
  ScoreCsvFields(v.entity_id(), v, &fields);
  std::vector<std::string> columns = ScoreCsvHeader();
  columns[0] = absl::StrCat(T::kNoun, "_id");
  std::string channels;
  for (int c : v.contact_policy().channels()) {
    absl::StrAppend(&channels, channels.empty() ? "" : " ", ChannelName(c));
  }
  auto optional_number = [](bool has, double x) {
    return has ? absl::StrFormat("%.10g", x) : std::string();
  };
  for (const char* c :
       {"channels", "service_level", "cost_ceiling", "p_alive",
        "expected_purchases", "clv", "model_id", "score_time"}) {
    columns.push_back(c);
  }
  fields.push_back(channels);
  fields.push_back(v.contact_policy().service_level());
  fields.push_back(v.has_contact_policy()
                       ? MoneyText(v.contact_policy().cost_ceiling())
                       : "");
  fields.push_back(optional_number(v.has_p_alive(), v.p_alive()));
  fields.push_back(
      optional_number(v.has_expected_purchases(), v.expected_purchases()));
  fields.push_back(optional_number(v.has_clv(), v.clv()));
  fields.push_back(v.model_id());
  fields.push_back(TimeText(v.score_time()));
  Table t(columns);
  t.AddRow(fields);
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

template <typename T>
int Summarize(Context& ctx, typename T::Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {}); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  typename T::SummarizeSegmentsResponse response;
  grpc::Status s = stub.SummarizeSegments(
      ctx.NewCall().get(), typename T::SummarizeSegmentsRequest(), &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  Table t({"group", "name", T::kPlural, T::kVolume, "average_value"});
  for (const auto& [group, rows] : {std::pair{"segment", &response.segments()},
                                    std::pair{"tier", &response.tiers()}}) {
    for (const cv1::GroupSummary& g : *rows) {
      t.AddRow({group, g.name(), absl::StrCat(g.entities()),
                MoneyText(g.monetary()),
                ValueText(g.average_value_hundredths())});
    }
  }
  t.Print(ctx.format, std::cout);
  if (ctx.format == Format::kTable)
    std::cerr << "model: " << response.model_id() << "\n";
  return kExitOk;
}

template <typename T>
int ExportScores(Context& ctx, typename T::Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {"key", "out"}); !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  const auto& words = ctx.args.positional();
  if (words.size() != 3 || words[2] != "scores") {
    return UsageError(
        absl::StrCat("want: rapportctl ", T::kCommand,
                     " export scores [--key ext:SOURCE] [--out FILE.csv]"),
        "");
  }
  typename T::ExportScoresRequest request;
  if (std::optional<std::string> key = ctx.args.Get("key")) {
    if (!absl::StartsWith(*key, "ext:") || key->size() == 4) {
      return UsageError(
          absl::StrCat("--key: want ext:SOURCE, not \"", *key, "\""), "");
    }
    request.set_external_id_source(key->substr(4));
  }
  OutputFile out(ctx.args.GetOr("out", ""));
  if (!out.ok()) {
    return ReportError(absl::FailedPreconditionError(
        absl::StrCat("--out: cannot create ", ctx.args.GetOr("out", ""), ": ",
                     std::strerror(errno))));
  }
  // A long export: the deadline is --timeout only when given.
  auto call = std::make_unique<grpc::ClientContext>();
  ctx.Authorize(call.get());
  if (ctx.args.Has("timeout")) {
    call->set_deadline(std::chrono::system_clock::now() +
                       absl::ToChronoMilliseconds(ctx.timeout));
  }
  std::unique_ptr<grpc::ClientReader<typename T::ExportScoresResponse>> reader =
      stub.ExportScores(call.get(), request);
  // CSV unless --output json asks for JSON Lines (one value a line).
  const bool json = ctx.format == Format::kJson;
  // Keys are external ids other people wrote: none runs as a formula in
  // the spreadsheet that opens the file (--output json keeps them exact).
  CsvWriter csv(&out.stream());
  csv.GuardFormulas();
  if (!json) csv.WriteRow(ScoreCsvHeader());
  typename T::ExportScoresResponse response;
  std::vector<std::string> fields;
  int64_t rows = 0;
  while (reader->Read(&response)) {
    for (const cv1::EntityValue& v : response.values()) {
      if (json) {
        PrintJsonLine(v, out.stream());
        continue;
      }
      ScoreCsvFields(v.entity_id(), v, &fields);
      csv.WriteRow(fields);
    }
    rows += response.values_size();
  }
  grpc::Status s = reader->Finish();
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (!csv.ok() || !out.stream())
    return ReportError(absl::InternalError("cannot write the output"));
  if (absl::Status c = out.Commit(); !c.ok()) return ReportError(c);
  if (ctx.args.Has("out"))
    std::cerr << "rapportctl: exported " << rows << " " << T::kPlural << "\n";
  return kExitOk;
}

}  // namespace scores

// True for the verbs RunScores serves.
inline bool IsScoresCommand(const std::string& verb) {
  return verb == "refresh-scores" || verb == "refresh-job" || verb == "value" ||
         verb == "summarize" || verb == "export";
}

// rapportctl <T::kCommand> <verb> ..., on `stub`.
template <typename T>
int RunScores(Context& ctx, typename T::Stub& stub) {
  const auto& words = ctx.args.positional();
  const std::string& verb = words[1];
  if ((verb == "refresh-scores" || verb == "summarize") && words.size() > 2) {
    return UsageError(absl::StrCat("unexpected argument \"", words[2], "\""),
                      "");
  }
  if (verb == "refresh-scores") return scores::RefreshScores<T>(ctx, stub);
  if (verb == "refresh-job") return scores::RefreshJob<T>(ctx, stub);
  if (verb == "value") return scores::Value<T>(ctx, stub);
  if (verb == "summarize") return scores::Summarize<T>(ctx, stub);
  return scores::ExportScores<T>(ctx, stub);
}

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_SCORES_H_
