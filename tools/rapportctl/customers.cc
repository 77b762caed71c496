// rapportctl customers ... and purchases ...
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::customer::v1;
namespace cv1 = ::rapport::common::v1;
using Stub = v1::CustomerService::Stub;

std::string FormatTime(const google::protobuf::Timestamp& t) {
  return FormatRfc3339Micros(t.seconds() * 1'000'000 + t.nanos() / 1000);
}

std::string FormatMoney(const google::type::Money& m) {
  absl::StatusOr<Decimal> d = Decimal::FromUnitsNanos(m.units(), m.nanos());
  return d.ok() ? d->ToString() : "?";
}

std::string JoinExternalIds(const v1::Customer& c) {
  std::string out;
  for (const v1::ExternalId& e : c.external_ids()) {
    absl::StrAppend(&out, out.empty() ? "" : " ", e.source(), ":", e.id());
  }
  return out;
}

}  // namespace

Table CustomerTable() {
  return Table({"id", "display_name", "email", "phone", "external_ids",
                "create_time", "etag", "segment", "value", "tier"});
}

void AddCustomer(Table& t, const v1::Customer& c) {
  std::string value, tier;
  if (c.has_value()) {
    value = absl::StrFormat("%d.%02d", c.value().value_hundredths() / 100,
                            c.value().value_hundredths() % 100);
    tier = absl::AsciiStrToLower(cv1::Tier_Name(c.value().tier()).substr(5));
  }
  t.AddRow({c.id(), c.display_name(), c.email(), c.phone(), JoinExternalIds(c),
            FormatTime(c.create_time()), c.etag(),
            c.has_value() ? c.value().segment() : "", value, tier});
}

namespace {

Table PurchaseTable() {
  return Table({"id", "customer_id", "purchase_time", "amount", "currency",
                "description"});
}

void AddPurchase(Table& t, const v1::Purchase& p) {
  t.AddRow({p.id(), p.customer_id(), FormatTime(p.purchase_time()),
            FormatMoney(p.amount()), p.amount().currency_code(),
            p.description()});
}

// Prints one customer-bearing response in the chosen format.
template <typename Response>
int PrintCustomer(const Context& ctx, const Response& response) {
  if (ctx.format == Format::kJson) {
    PrintJson(response.customer(), std::cout);
  } else {
    Table t = CustomerTable();
    AddCustomer(t, response.customer());
    t.Print(ctx.format, std::cout);
  }
  return kExitOk;
}

// Fills customer fields from flags; returns the update-mask paths it set.
absl::StatusOr<std::vector<std::string>> CustomerFromFlags(const Args& args,
                                                           v1::Customer* c) {
  std::vector<std::string> paths;
  if (auto v = args.Get("display-name")) {
    c->set_display_name(*v);
    paths.push_back("display_name");
  }
  if (auto v = args.Get("email")) {
    c->set_email(*v);
    paths.push_back("email");
  }
  if (auto v = args.Get("phone")) {
    c->set_phone(*v);
    paths.push_back("phone");
  }
  if (auto v = args.Get("postal-code")) {
    c->set_postal_code(*v);
    paths.push_back("postal_code");
  }
  if (args.Has("external-id")) {
    RAPPORT_RETURN_IF_ERROR(ExternalIdFlags(args, c->mutable_external_ids()));
    paths.push_back("external_ids");
  }
  if (args.Has("attribute")) {
    RAPPORT_RETURN_IF_ERROR(AttributeFlags(args, c->mutable_attributes()));
    paths.push_back("attributes");
  }
  return paths;
}

absl::StatusOr<int> ParsePageSize(const Args& args) {
  int size = 0;
  if (auto v = args.Get("page-size")) {
    if (!absl::SimpleAtoi(*v, &size) || size < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--page-size: want a number, not \"", *v, "\""));
    }
  }
  return size;
}

absl::StatusOr<google::protobuf::Timestamp> ParseTimeFlag(
    const std::string& flag, const std::string& value) {
  absl::StatusOr<int64_t> micros = ParseRfc3339Micros(value);
  if (!micros.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", micros.status().message()));
  }
  return ToTimestamp(*micros);
}

int OneId(const Context& ctx, const char* usage, std::string* id) {
  if (ctx.args.positional().size() != 3) {
    return UsageError(absl::StrCat("want: ", usage), "");
  }
  *id = ctx.args.positional()[2];
  return kExitOk;
}

absl::Status CheckFlags(const Args& args, std::set<std::string> known) {
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  return args.CheckKnown(known);
}

int Create(Context& ctx, Stub& stub) {
  if (absl::Status s =
          CheckFlags(ctx.args, {"display-name", "email", "phone", "external-id",
                                "attribute", "request-id", "postal-code"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  v1::CreateCustomerRequest request;
  if (auto paths = CustomerFromFlags(ctx.args, request.mutable_customer());
      !paths.ok()) {
    return UsageError(std::string(paths.status().message()), "");
  }
  request.set_request_id(ctx.args.GetOr("request-id", ""));
  v1::CreateCustomerResponse response;
  grpc::Status s = stub.CreateCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  return PrintCustomer(ctx, response);
}

int Get(Context& ctx, Stub& stub) {
  v1::GetCustomerRequest request;
  std::string id;
  if (int rc = OneId(ctx, "rapportctl customers get ID", &id); rc != kExitOk)
    return rc;
  if (absl::Status s = CheckFlags(ctx.args, {}); !s.ok())
    return UsageError(std::string(s.message()), "");
  request.set_id(id);
  v1::GetCustomerResponse response;
  grpc::Status s = stub.GetCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (!response.merged_id().empty()) {
    std::cerr << "customer " << response.merged_id() << " was merged into "
              << response.customer().id() << "\n";
  }
  return PrintCustomer(ctx, response);
}

int List(Context& ctx, Stub& stub) {
  if (absl::Status s =
          CheckFlags(ctx.args, {"page-size", "page-token", "all", "segment",
                                "tier", "min-value", "max-value", "order-by"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  absl::StatusOr<int> size = ParsePageSize(ctx.args);
  if (!size.ok()) return UsageError(std::string(size.status().message()), "");
  v1::ListCustomersRequest request;
  request.set_segment(ctx.args.GetOr("segment", ""));
  if (auto tier = ctx.args.Get("tier")) {
    cv1::Tier t;
    std::string name = absl::AsciiStrToUpper("TIER_" + *tier);
    if (!cv1::Tier_Parse(name, &t)) {
      return UsageError("--tier: want lead, iron, gold or platinum", "");
    }
    request.set_tier(t);
  }
  for (const char* flag : {"min-value", "max-value"}) {
    if (auto v = ctx.args.Get(flag)) {
      absl::StatusOr<Decimal> d = Decimal::Parse(*v);
      if (!d.ok() || d->is_negative() || *d > Decimal::FromUnits(100) ||
          d->raw_nanos() % 10'000'000 != 0) {
        return UsageError(
            absl::StrCat("--", flag, ": want a value 0.00..100.00"), "");
      }
      const int hundredths = static_cast<int>(d->raw_nanos() / 10'000'000);
      if (std::string(flag) == "min-value") {
        request.set_min_value_hundredths(hundredths);
      } else {
        request.set_max_value_hundredths(hundredths);
      }
    }
  }
  if (request.has_min_value_hundredths() &&
      request.has_max_value_hundredths() &&
      request.max_value_hundredths() < request.min_value_hundredths()) {
    return UsageError("--max-value: is below --min-value", "");
  }
  if (auto order = ctx.args.Get("order-by")) {
    if (*order != "value" && *order != "id")
      return UsageError("--order-by: want value or id", "");
    request.set_order_by(*order == "value" ? "value desc" : "id");
  }
  request.set_page_size(*size);
  v1::ListCustomersResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](grpc::ClientContext* call, const auto& r, auto* out) {
            return stub.ListCustomers(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t = CustomerTable();
  for (const v1::Customer& c : all.customers()) AddCustomer(t, c);
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

int Update(Context& ctx, Stub& stub) {
  std::string id;
  if (int rc = OneId(
          ctx, "rapportctl customers update ID [--display-name N] ...", &id);
      rc != kExitOk) {
    return rc;
  }
  if (absl::Status s =
          CheckFlags(ctx.args, {"display-name", "email", "phone", "external-id",
                                "attribute", "etag", "postal-code"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  v1::UpdateCustomerRequest request;
  request.mutable_customer()->set_id(id);
  request.mutable_customer()->set_etag(ctx.args.GetOr("etag", ""));
  absl::StatusOr<std::vector<std::string>> paths =
      CustomerFromFlags(ctx.args, request.mutable_customer());
  if (!paths.ok()) return UsageError(std::string(paths.status().message()), "");
  if (paths->empty())
    return UsageError("nothing to update: give at least one field flag", "");
  for (const std::string& p : *paths)
    request.mutable_update_mask()->add_paths(p);
  v1::UpdateCustomerResponse response;
  grpc::Status s = stub.UpdateCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  return PrintCustomer(ctx, response);
}

int Delete(Context& ctx, Stub& stub) {
  std::string id;
  if (int rc = OneId(ctx,
                     "rapportctl customers delete ID [--etag E] [--force] "
                     "[--allow-missing]",
                     &id);
      rc != kExitOk) {
    return rc;
  }
  if (absl::Status s = CheckFlags(ctx.args, {"etag", "force", "allow-missing"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  v1::DeleteCustomerRequest request;
  request.set_id(id);
  request.set_etag(ctx.args.GetOr("etag", ""));
  request.set_force(ctx.args.Has("force"));
  request.set_allow_missing(ctx.args.Has("allow-missing"));
  v1::DeleteCustomerResponse response;
  grpc::Status s = stub.DeleteCustomer(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  PrintDeleted(ctx.format, "customer", id, ctx.args.Has("allow-missing"),
               std::cout);
  return kExitOk;
}

int RecordPurchase(Context& ctx, Stub& stub) {
  if (absl::Status s =
          CheckFlags(ctx.args, {"customer", "amount", "currency", "time",
                                "description", "request-id"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  v1::RecordPurchaseRequest request;
  std::optional<std::string> customer = ctx.args.Get("customer");
  std::optional<std::string> amount_text = ctx.args.Get("amount");
  if (!customer || !amount_text) {
    return UsageError(
        "want: rapportctl purchases record --customer ID --amount DECIMAL", "");
  }
  request.set_customer_id(*customer);
  absl::StatusOr<Decimal> amount = Decimal::Parse(*amount_text);
  if (!amount.ok())
    return UsageError(absl::StrCat("--amount: ", amount.status().message()),
                      "");
  absl::StatusOr<google::type::Money> money =
      ToMoney(*amount, ctx.args.GetOr("currency", ""), "amount");
  if (!money.ok())
    return UsageError(absl::StrCat("--amount: ", money.status().message()), "");
  if (ctx.args.Has("request-id") && !ctx.args.Has("time")) {
    return UsageError(
        "--time: is required with --request-id (the time is part of what "
        "the request says, so that its retry says the same)",
        "");
  }
  v1::Purchase* purchase = request.mutable_purchase();
  *purchase->mutable_amount() = *money;
  if (auto t = ctx.args.Get("time")) {
    absl::StatusOr<google::protobuf::Timestamp> ts = ParseTimeFlag("time", *t);
    if (!ts.ok()) return UsageError(std::string(ts.status().message()), "");
    *purchase->mutable_purchase_time() = *ts;
  } else {
    *purchase->mutable_purchase_time() =
        ToTimestamp(absl::ToUnixMicros(absl::Now()));
  }
  purchase->set_description(ctx.args.GetOr("description", ""));
  request.set_request_id(ctx.args.GetOr("request-id", ""));
  v1::RecordPurchaseResponse response;
  grpc::Status s = stub.RecordPurchase(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response.purchase(), std::cout);
  } else {
    Table t = PurchaseTable();
    AddPurchase(t, response.purchase());
    t.Print(ctx.format, std::cout);
  }
  return kExitOk;
}

int ListPurchases(Context& ctx, Stub& stub) {
  if (absl::Status s = CheckFlags(ctx.args, {"customer", "start", "end",
                                             "page-size", "page-token", "all"});
      !s.ok()) {
    return UsageError(std::string(s.message()), "");
  }
  std::optional<std::string> customer = ctx.args.Get("customer");
  if (!customer)
    return UsageError("want: rapportctl purchases list --customer ID", "");
  absl::StatusOr<int> size = ParsePageSize(ctx.args);
  if (!size.ok()) return UsageError(std::string(size.status().message()), "");
  v1::ListPurchasesRequest request;
  request.set_customer_id(*customer);
  request.set_page_size(*size);
  for (const char* flag : {"start", "end"}) {
    if (auto t = ctx.args.Get(flag)) {
      absl::StatusOr<google::protobuf::Timestamp> ts = ParseTimeFlag(flag, *t);
      if (!ts.ok()) return UsageError(std::string(ts.status().message()), "");
      *(std::string(flag) == "start" ? request.mutable_start_time()
                                     : request.mutable_end_time()) = *ts;
    }
  }
  v1::ListPurchasesResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](grpc::ClientContext* call, const auto& r, auto* out) {
            return stub.ListPurchases(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t = PurchaseTable();
  for (const v1::Purchase& p : all.purchases()) AddPurchase(t, p);
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

std::unique_ptr<Stub> Connect(const Context& ctx, int* rc) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.CustomerChannel();
  if (!channel.ok()) {
    *rc = UsageError(std::string(channel.status().message()), "");
    return nullptr;
  }
  return v1::CustomerService::NewStub(*channel);
}

}  // namespace

int RunCustomers(Context& ctx) {
  const auto& words = ctx.args.positional();
  if (words.size() < 2)
    return UsageError(
        "want: rapportctl customers create|get|list|update|delete", "");
  if (IsCustomerScoresCommand(words[1])) return RunCustomerScores(ctx);
  int rc = kExitOk;
  std::unique_ptr<Stub> stub = Connect(ctx, &rc);
  if (stub == nullptr) return rc;
  const std::string& verb = words[1];
  // Commands of other files: identification, interactions and consent.
  if (std::optional<int> rc = RunCustomersIdentity(ctx, verb)) return *rc;
  if (verb == "import") return RunCustomersImport(ctx);
  if (verb != "get" && verb != "update" && verb != "delete" &&
      words.size() > 2) {
    return UsageError(absl::StrCat("unexpected argument \"", words[2], "\""),
                      "");
  }
  if (verb == "create") return Create(ctx, *stub);
  if (verb == "get") return Get(ctx, *stub);
  if (verb == "list") return List(ctx, *stub);
  if (verb == "update") return Update(ctx, *stub);
  if (verb == "delete") return Delete(ctx, *stub);
  return UsageError(absl::StrCat("unknown customers command \"", verb, "\""),
                    "");
}

int RunPurchases(Context& ctx) {
  const auto& words = ctx.args.positional();
  if (words.size() != 2)
    return UsageError("want: rapportctl purchases record|list ...", "");
  int rc = kExitOk;
  std::unique_ptr<Stub> stub = Connect(ctx, &rc);
  if (stub == nullptr) return rc;
  if (words[1] == "record") return RecordPurchase(ctx, *stub);
  if (words[1] == "list") return ListPurchases(ctx, *stub);
  return UsageError(
      absl::StrCat("unknown purchases command \"", words[1], "\""), "");
}

}  // namespace rapport::ctl
