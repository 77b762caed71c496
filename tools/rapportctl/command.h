// What every rapportctl command gets: its arguments, the output format, and
// a way to reach a service. Commands return an exit code:
// 0 done, 1 the call failed, 2 bad usage, 3 not serving (health).
#ifndef RAPPORT_TOOLS_RAPPORTCTL_COMMAND_H_
#define RAPPORT_TOOLS_RAPPORTCTL_COMMAND_H_

#include <grpcpp/grpcpp.h>

#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/paging.h"
#include "common/status.h"
#include "rapport/customer/v1/customer_service.pb.h"
#include "tools/rapportctl/args.h"
#include "tools/rapportctl/output.h"

namespace rapport::ctl {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitNotServing = 3;

// Flags that every command accepts.
const std::set<std::string>& GlobalFlags();

struct Context {
  Args args;
  Format format = Format::kTable;
  absl::Duration timeout = absl::Seconds(30);
  // What a list of one page says on stderr once it is printed: how to get
  // the next (FetchForListing sets it, main prints it last).
  mutable std::string more_hint;

  // The channel to a service: --addr, else the environment variable `env`,
  // else that variable in the local platform's var/run/platform.env (see
  // LocalPlatformSetting), else `fallback` (e.g. "localhost:50051").
  // With a `lane`, one of several channels whose calls each go to a replica
  // of their own (MakeLaneChannel: the streams of an import).
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Channel(
      const char* env, const char* fallback,
      std::optional<int> lane = std::nullopt) const;
  // The same for commands that talk to several services: --`flag` (such as
  // "partner-addr") instead of --addr.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ServiceChannel(
      const char* flag, const char* env, const char* fallback,
      std::optional<int> lane = std::nullopt) const;
  // The channel to the customer service: --addr, $RAPPORT_CUSTOMER_ADDR or
  // localhost:50051.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> CustomerChannel(
      std::optional<int> lane = std::nullopt) const {
    return Channel("RAPPORT_CUSTOMER_ADDR", "localhost:50051", lane);
  }
  // A client context with the --timeout deadline and the caller's token.
  std::unique_ptr<grpc::ClientContext> NewCall() const;
  // Adds the caller's token to `call`: --token, else $RAPPORT_TOKEN, else
  // the contents of the file $RAPPORT_TOKEN_FILE names, else those of
  // var/auth/operator.token when run in a checkout whose local platform runs
  // (see LoadToken).
  void Authorize(grpc::ClientContext* call) const;
  // Resolves the caller's token once, before any call; a usage error (the
  // file named cannot be read) says why. No token at all is not an error
  // here: the service answers UNAUTHENTICATED.
  absl::Status LoadToken();

  std::string token;  // as LoadToken found it; empty: none
  // The token is the local platform's operator token, found in the checkout
  // and not named by the caller: it goes to this machine's addresses only.
  bool token_is_local = false;
};

// Prints "rapportctl: CODE: message" and each field violation; returns
// kExitFailed (kExitUsage for a usage error made before any call).
int ReportError(const absl::Status& status);
// What to try when a call could not reach its service (UNAVAILABLE: nothing
// listens there, or TLS on one side only), from what gRPC said; "" when
// there is nothing to add. ReportError prints it under the error.
std::string ConnectionHint(const absl::Status& status);
int UsageError(const std::string& message, const std::string& usage);
// The usage error that `status` (as a flag helper returns it) says.
int UsageError(const absl::Status& status);

// `relative` under the local platform's state directory: $RAPPORT_VAR, as
// deploy/local/run takes it, else var/ of the current directory.
std::string LocalVarPath(const std::string& relative);

// The value of `name` in run/platform.env under LocalVarPath, the settings
// deploy/local/run writes there (NAME=VALUE lines) for the platform it runs
// and deploy/local/stop removes; "" when there is none.
std::string LocalPlatformSetting(absl::string_view name);

// The whole number given as --name, else `fallback`; INVALID_ARGUMENT naming
// the flag when it is not one.
absl::StatusOr<int> IntFlag(const Args& args, const std::string& name,
                            int fallback);
// INVALID_ARGUMENT for `text` given as --`flag` where a whole number was
// wanted: "out of range" when it is one, too large for its type.
absl::Status NotAWholeNumber(absl::string_view flag, absl::string_view text);

// Each --external-id SOURCE:ID, added to `out` (any repeated field of
// messages with set_source and set_id); a usage error names the flag.
template <typename Repeated>
absl::Status ExternalIdFlags(const Args& args, Repeated* out) {
  for (const std::string& e : args.GetAll("external-id")) {
    const size_t colon = e.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == e.size()) {
      return absl::InvalidArgumentError(
          "--external-id: want SOURCE:ID, not \"" + e + "\"");
    }
    auto* x = out->Add();
    x->set_source(e.substr(0, colon));
    x->set_id(e.substr(colon + 1));
  }
  return absl::OkStatus();
}

// Calls a List method once, or with --all page after page, merging every
// page's items into `all` (whose next_page_token is the last page's).
//
//   FetchPages(ctx, request, [&](auto* call, const auto& r, auto* out) {
//     return stub.ListCustomers(call, r, out); }, &all);
template <typename Request, typename Response, typename Call>
grpc::Status FetchPages(const Context& ctx, Request request, Call call,
                        Response* all) {
  // --all without --page-size asks for the largest pages: the fewest calls,
  // which matters where each page costs as much as the whole listing (the
  // register, ranked anew for every page).
  if (ctx.args.Has("all") && request.page_size() == 0) {
    request.set_page_size(kMaxPageSize);
  }
  if (std::optional<std::string> token = ctx.args.Get("page-token")) {
    request.set_page_token(*token);
  }
  for (;;) {
    Response page;
    grpc::Status s = call(ctx.NewCall().get(), request, &page);
    if (!s.ok()) return s;
    const std::string next = page.next_page_token();
    all->MergeFrom(page);  // repeated items append
    all->set_next_page_token(next);
    if (!ctx.args.Has("all") || next.empty()) return grpc::Status::OK;
    request.set_page_token(next);
  }
}

// What every list command does first: FetchPages, an error reported, or with
// --format json the whole response printed (a table of one page is left to
// the caller, with a line on stderr saying how to get the next). The exit code
// when that is all; nullopt when the caller goes on to print `all` as a table.
template <typename Request, typename Response, typename Call>
std::optional<int> FetchForListing(const Context& ctx, Request request,
                                   Call call, Response* all) {
  if (grpc::Status s = FetchPages(ctx, std::move(request), call, all);
      !s.ok()) {
    return ReportError(FromGrpcStatus(s));
  }
  if (ctx.format == Format::kJson) {
    PrintJson(*all, std::cout);
    return kExitOk;
  }
  // One page of a table or CSV says on stderr that there are more, and how
  // to get them (JSON carries next_page_token), after it is printed.
  if (!all->next_page_token().empty()) {
    ctx.more_hint =
        absl::StrCat("rapportctl: more on the next page: ", "--page-token ",
                     all->next_page_token(), ", or --all lists them all\n");
  }
  return std::nullopt;
}

int RunCustomers(Context& ctx);
// partners ... (partners.cc).
int RunPartners(Context& ctx);
// community ... (community.cc).
int RunCommunity(Context& ctx);
// customers refresh-scores|refresh-job|value|summarize|export
// (customers_scores.cc).
bool IsCustomerScoresCommand(const std::string& verb);
int RunCustomerScores(Context& ctx);
int RunPurchases(Context& ctx);
// overview (overview_command.cc), report --out FILE.html (report.cc), demo
// load (demo.cc).
int RunOverview(Context& ctx);
// The usage check of commands that talk to the three counterpart services:
// `known` and --customer-addr, --partner-addr, --community-addr; --addr is
// refused as ambiguous.
absl::Status CounterpartAddrFlagsOnly(const Args& args,
                                      std::set<std::string> known);
int RunReport(Context& ctx);
int RunDemo(Context& ctx);
int RunHealth(Context& ctx);
int RunScoring(Context& ctx);
// auth token --role R --subject S [--ttl D] [--key FILE] (auth.cc).
int RunAuth(Context& ctx);
// audit list [--actor A] [--resource R] [--since T] (audit.cc).
int RunAudit(Context& ctx);
// customers import purchases|interactions FILE.csv (customers_import.cc).
int RunCustomersImport(Context& ctx);

// customers identify|duplicates|merge|erase|interactions|consent; nullopt when
// `verb` is not one of them.
std::optional<int> RunCustomersIdentity(Context& ctx, const std::string& verb);

// The customers table view, shared by the customers commands.
Table CustomerTable();
void AddCustomer(Table& table,
                 const ::rapport::customer::v1::Customer& customer);

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_COMMAND_H_
