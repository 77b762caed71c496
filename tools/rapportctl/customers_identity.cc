// rapportctl customers identify|duplicates|merge|erase|interactions|consent.
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/api_names.h"
#include "common/base/decimal.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tools/rapportctl/command.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::customer::v1;
namespace cv1 = ::rapport::common::v1;
using Stub = v1::CustomerService::Stub;

int Usage(const std::string& message) { return UsageError(message, ""); }

absl::Status Known(const Args& args, std::set<std::string> known) {
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  return args.CheckKnown(known);
}

// Known() for a command of `words` words and flags alone: an extra word is
// refused, quoted, rather than ignored.
absl::Status Known(const Args& args, size_t words,
                   std::set<std::string> known) {
  if (args.positional().size() > words) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", args.positional()[words], "\""));
  }
  return Known(args, std::move(known));
}

std::unique_ptr<Stub> Connect(const Context& ctx, int* rc) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.CustomerChannel();
  if (!channel.ok()) {
    *rc = Usage(std::string(channel.status().message()));
    return nullptr;
  }
  return v1::CustomerService::NewStub(*channel);
}

absl::StatusOr<cv1::Channel> ChannelFlag(const std::string& name) {
  std::optional<cv1::Channel> c = rapport::ParseChannel(name);
  if (!c.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--channel: want email, phone, sms, visit, web, mail or event, not \"",
        name, "\""));
  }
  return *c;
}

absl::StatusOr<google::protobuf::Timestamp> TimeFlag(const Args& args,
                                                     const std::string& flag) {
  std::optional<std::string> v = args.Get(flag);
  if (!v) return ToTimestamp(absl::ToUnixMicros(absl::Now()));
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(*v);
  if (!t.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", t.status().message()));
  return ToTimestamp(*t);
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  return FormatRfc3339Micros(t.seconds() * 1'000'000 + t.nanos() / 1000);
}

int PrintCustomer(const Context& ctx, const v1::Customer& c) {
  if (ctx.format == Format::kJson) {
    PrintJson(c, std::cout);
    return kExitOk;
  }
  Table t = CustomerTable();
  AddCustomer(t, c);
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

int Identify(Context& ctx, Stub& stub) {
  if (absl::Status s = Known(ctx.args, 2,
                             {"email", "phone", "external-id", "display-name",
                              "request-id", "link"});
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  v1::IdentifyCustomerRequest request;
  request.set_email(ctx.args.GetOr("email", ""));
  request.set_phone(ctx.args.GetOr("phone", ""));
  request.set_display_name(ctx.args.GetOr("display-name", ""));
  request.set_request_id(ctx.args.GetOr("request-id", ""));
  request.set_link_identities(ctx.args.Has("link"));
  if (absl::Status e =
          ExternalIdFlags(ctx.args, request.mutable_external_ids());
      !e.ok()) {
    return Usage(std::string(e.message()));
  }
  v1::IdentifyCustomerResponse response;
  grpc::Status s =
      stub.IdentifyCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  if (ctx.format == Format::kTable)
    std::cerr << (response.created() ? "created\n" : "found\n");
  return PrintCustomer(ctx, response.customer());
}

int Duplicates(Context& ctx, Stub& stub) {
  if (absl::Status s = Known(ctx.args, 2, {"page-size", "page-token", "all"});
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  absl::StatusOr<int> size = IntFlag(ctx.args, "page-size", 0);
  if (!size.ok()) return Usage(std::string(size.status().message()));
  v1::FindDuplicatesRequest request;
  request.set_page_size(*size);
  v1::FindDuplicatesResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](grpc::ClientContext* call, const auto& r, auto* out) {
            return stub.FindDuplicates(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t({"reason", "key", "customer_ids"});
  for (const v1::DuplicateGroup& g : all.groups()) {
    t.AddRow({g.reason(), g.key(), absl::StrJoin(g.customer_ids(), " ")});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

int Merge(Context& ctx, Stub& stub) {
  const auto& words = ctx.args.positional();
  if (words.size() < 4)
    return Usage(
        "want: rapportctl customers merge PRIMARY DUPLICATE... [--dry-run]");
  if (absl::Status s = Known(ctx.args, {"dry-run"}); !s.ok()) {
    return Usage(std::string(s.message()));
  }
  v1::MergeCustomersRequest request;
  request.set_primary_id(words[2]);
  for (size_t i = 3; i < words.size(); ++i) request.add_duplicate_ids(words[i]);
  request.set_dry_run(ctx.args.Has("dry-run"));
  v1::MergeCustomersResponse response;
  grpc::Status s = stub.MergeCustomers(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  if (ctx.format == Format::kTable) {
    std::cerr << (response.dry_run() ? "dry run, nothing written: would move "
                                     : "moved ")
              << response.moved_purchases() << " purchases, "
              << response.moved_interactions() << " interactions, "
              << response.moved_consents() << " consents, "
              << response.moved_identities() << " identities\n";
  }
  return PrintCustomer(ctx, response.customer());
}

int Erase(Context& ctx, Stub& stub) {
  const auto& words = ctx.args.positional();
  if (words.size() != 3)
    return Usage("want: rapportctl customers erase ID [--etag E]");
  if (absl::Status s = Known(ctx.args, {"etag"}); !s.ok())
    return Usage(std::string(s.message()));
  v1::EraseCustomerRequest request;
  request.set_id(words[2]);
  request.set_etag(ctx.args.GetOr("etag", ""));
  v1::EraseCustomerResponse response;
  grpc::Status s = stub.EraseCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  PrintDone(ctx.format, "erased", "customer", words[2], std::cout);
  return kExitOk;
}

// Consents as `customers consent list` prints them.
void PrintConsents(Format format,
                   const google::protobuf::RepeatedPtrField<v1::Consent>& all) {
  Table t({"purpose", "channel", "granted", "capture_time", "source"});
  for (const v1::Consent& c : all) {
    t.AddRow({c.purpose(), ChannelName(c.channel()), c.granted() ? "yes" : "no",
              TimeText(c.capture_time()), c.source()});
  }
  t.Print(format, std::cout);
}

int Interactions(Context& ctx, Stub& stub) {
  const auto& words = ctx.args.positional();
  if (words.size() != 3 || (words[2] != "log" && words[2] != "list")) {
    return Usage(
        "want: rapportctl customers interactions log|list --customer ID ...");
  }
  std::optional<std::string> customer = ctx.args.Get("customer");
  if (!customer) return Usage("--customer ID is required");
  if (words[2] == "list") {
    if (absl::Status s =
            Known(ctx.args, {"customer", "page-size", "page-token", "all"});
        !s.ok()) {
      return Usage(std::string(s.message()));
    }
    absl::StatusOr<int> size = IntFlag(ctx.args, "page-size", 0);
    if (!size.ok()) return Usage(std::string(size.status().message()));
    v1::ListInteractionsRequest request;
    request.set_customer_id(*customer);
    request.set_page_size(*size);
    v1::ListInteractionsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](grpc::ClientContext* call, const auto& r, auto* out) {
              return stub.ListInteractions(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t({"id", "customer_id", "interaction_time", "channel", "kind", "cost",
             "note"});
    for (const v1::Interaction& i : all.interactions()) {
      absl::StatusOr<Decimal> cost =
          Decimal::FromUnitsNanos(i.cost().units(), i.cost().nanos());
      t.AddRow({i.id(), i.customer_id(), TimeText(i.interaction_time()),
                ChannelName(i.channel()), i.kind(),
                cost.ok() ? cost->ToString() : "?", i.note()});
    }
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  if (absl::Status s = Known(ctx.args, {"customer", "channel", "cost", "time",
                                        "kind", "note", "force", "request-id"});
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (ctx.args.Has("request-id") && !ctx.args.Has("time")) {
    return Usage(
        "--time: is required with --request-id (the time is part of what "
        "the request says, so that its retry says the same)");
  }
  v1::LogInteractionRequest request;
  request.set_customer_id(*customer);
  request.set_force(ctx.args.Has("force"));
  request.set_request_id(ctx.args.GetOr("request-id", ""));
  v1::Interaction* i = request.mutable_interaction();
  absl::StatusOr<cv1::Channel> channel =
      ChannelFlag(ctx.args.GetOr("channel", ""));
  if (!channel.ok()) return Usage(std::string(channel.status().message()));
  i->set_channel(*channel);
  absl::StatusOr<Decimal> cost = Decimal::Parse(ctx.args.GetOr("cost", "0"));
  if (!cost.ok())
    return Usage(absl::StrCat("--cost: ", cost.status().message()));
  absl::StatusOr<google::type::Money> money = ToMoney(*cost, "", "cost");
  if (!money.ok()) return Usage("--cost: too large");
  *i->mutable_cost() = *money;
  absl::StatusOr<google::protobuf::Timestamp> time = TimeFlag(ctx.args, "time");
  if (!time.ok()) return Usage(std::string(time.status().message()));
  *i->mutable_interaction_time() = *time;
  i->set_kind(ctx.args.GetOr("kind", ""));
  i->set_note(ctx.args.GetOr("note", ""));
  v1::LogInteractionResponse response;
  grpc::Status s = stub.LogInteraction(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response.interaction(), std::cout);
  } else {
    Table t({"id", "customer_id", "interaction_time", "channel", "cost"});
    t.AddRow({response.interaction().id(), response.interaction().customer_id(),
              TimeText(response.interaction().interaction_time()),
              ChannelName(response.interaction().channel()), cost->ToString()});
    t.Print(ctx.format, std::cout);
  }
  return kExitOk;
}

int Consent(Context& ctx, Stub& stub) {
  const auto& words = ctx.args.positional();
  if (words.size() != 3 || (words[2] != "set" && words[2] != "list")) {
    return Usage(
        "want: rapportctl customers consent set|list --customer ID ...");
  }
  std::optional<std::string> customer = ctx.args.Get("customer");
  if (!customer) return Usage("--customer ID is required");
  if (words[2] == "list") {
    if (absl::Status s = Known(ctx.args, {"customer"}); !s.ok())
      return Usage(std::string(s.message()));
    v1::ListConsentsRequest request;
    request.set_customer_id(*customer);
    v1::ListConsentsResponse response;
    grpc::Status s = stub.ListConsents(ctx.NewCall().get(), request, &response);
    if (!s.ok()) return ReportError(FromGrpcStatus(s));
    if (ctx.format == Format::kJson) {
      PrintJson(response, std::cout);
      return kExitOk;
    }
    PrintConsents(ctx.format, response.consents());
    return kExitOk;
  }
  if (absl::Status s = Known(ctx.args, {"customer", "purpose", "channel",
                                        "grant", "withdraw", "source", "time"});
      !s.ok()) {
    return Usage(std::string(s.message()));
  }
  if (ctx.args.Has("grant") == ctx.args.Has("withdraw"))
    return Usage("give one of --grant or --withdraw");
  v1::SetConsentRequest request;
  request.set_customer_id(*customer);
  v1::Consent* c = request.mutable_consent();
  c->set_purpose(ctx.args.GetOr("purpose", ""));
  absl::StatusOr<cv1::Channel> channel =
      ChannelFlag(ctx.args.GetOr("channel", ""));
  if (!channel.ok()) return Usage(std::string(channel.status().message()));
  c->set_channel(*channel);
  c->set_granted(ctx.args.Has("grant"));
  c->set_source(ctx.args.GetOr("source", ""));
  absl::StatusOr<google::protobuf::Timestamp> time = TimeFlag(ctx.args, "time");
  if (!time.ok()) return Usage(std::string(time.status().message()));
  *c->mutable_capture_time() = *time;
  // The service knows a repeat by its capture time: one taken from the
  // clock here makes a second run (after an answer was lost) a second
  // record, unless it is given the same time. Said before the call, so
  // that it is there when the call fails.
  if (!ctx.args.Has("time")) {
    std::cerr << "rapportctl: capture time " << TimeText(c->capture_time())
              << " (to repeat this call without recording the consent twice, "
                 "give --time "
              << TimeText(c->capture_time()) << ")\n";
  }
  v1::SetConsentResponse response;
  grpc::Status s = stub.SetConsent(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response.consent(), std::cout);
  } else if (ctx.format == Format::kCsv) {
    google::protobuf::RepeatedPtrField<v1::Consent> one;
    *one.Add() = response.consent();
    PrintConsents(ctx.format, one);
  } else {
    // The answer is the consent that holds now: a choice captured before
    // a later one is recorded, but does not hold.
    const v1::Consent& holds = response.consent();
    const bool this_one = holds.granted() == c->granted() &&
                          holds.capture_time() == c->capture_time();
    if (this_one) {
      std::cout << (c->granted() ? "granted " : "withdrawn ") << c->purpose()
                << " by " << ChannelName(c->channel()) << " for customer "
                << *customer << " at " << TimeText(c->capture_time()) << "\n";
    } else {
      std::cout << "recorded " << (c->granted() ? "a grant" : "a withdrawal")
                << " of " << c->purpose() << " by " << ChannelName(c->channel())
                << " for customer " << *customer << " at "
                << TimeText(c->capture_time()) << "; the later choice holds: "
                << (holds.granted() ? "granted" : "withdrawn") << " at "
                << TimeText(holds.capture_time())
                << (holds.source().empty() ? "" : " (" + holds.source() + ")")
                << "\n";
    }
  }
  return kExitOk;
}

}  // namespace

std::optional<int> RunCustomersIdentity(Context& ctx, const std::string& verb) {
  using Command = int (*)(Context&, Stub&);
  static const std::map<std::string, Command>* const kCommands =
      new std::map<std::string, Command>{{"identify", Identify},
                                         {"duplicates", Duplicates},
                                         {"merge", Merge},
                                         {"erase", Erase},
                                         {"interactions", Interactions},
                                         {"consent", Consent}};
  auto it = kCommands->find(verb);
  if (it == kCommands->end()) return std::nullopt;
  int rc = kExitOk;
  std::unique_ptr<Stub> stub = Connect(ctx, &rc);
  if (stub == nullptr) return rc;
  return it->second(ctx, *stub);
}

}  // namespace rapport::ctl
