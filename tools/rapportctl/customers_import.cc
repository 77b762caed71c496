// rapportctl customers import purchases|interactions FILE.csv: the two kinds
// of customer imports, on the file importer of file_import.h.
#include "rapport/customer/v1/customer_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/csv_input.h"
#include "tools/rapportctl/file_import.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::customer::v1;

constexpr char kUsage[] =
    "want: rapportctl customers import purchases|interactions FILE.csv "
    "[--import-id ID] [--batch-rows N] [--streams N] [--force: interactions]";

// What one kind of import reads and sends.
struct PurchaseKind {
  using Stub = v1::CustomerService::Stub;
  using Request = v1::ImportPurchasesRequest;
  using Response = v1::ImportPurchasesResponse;
  static constexpr const char* kName = "purchases";
  static constexpr const char* kCreated = "customers";
  static int64_t Created(const Response& r) { return r.created_customers(); }
  static void SetCreated(Response& r, int64_t n) { r.set_created_customers(n); }
  static std::vector<Column> Columns() {
    return {{{"customer_ref"}},
            {{"timestamp"}},
            {{"amount"}},
            {{"currency"}, false},
            {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::PurchaseRow* row = request.add_rows();
    row->set_row(line);
    row->set_customer_ref(std::string(in.Get(0)));
    row->set_timestamp(std::string(in.Get(1)));
    row->set_amount(std::string(in.Get(2)));
    if (in.Has(3)) row->set_currency(std::string(in.Get(3)));
    if (in.Has(4)) row->set_request_id(std::string(in.Get(4)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      v1::CustomerService::Stub& stub, grpc::ClientContext* call,
      Response* response) {
    return stub.ImportPurchases(call, response);
  }
};

struct InteractionKind {
  using Stub = v1::CustomerService::Stub;
  using Request = v1::ImportInteractionsRequest;
  using Response = v1::ImportInteractionsResponse;
  static constexpr const char* kName = "interactions";
  static constexpr const char* kCreated = "customers";
  static int64_t Created(const Response& r) { return r.created_customers(); }
  static void SetCreated(Response& r, int64_t n) { r.set_created_customers(n); }
  static std::vector<Column> Columns() {
    return {{{"customer_ref"}},     {{"timestamp"}},
            {{"channel"}},          {{"cost"}},
            {{"kind"}, false},      {{"note"}, false},
            {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::InteractionRow* row = request.add_rows();
    row->set_row(line);
    row->set_customer_ref(std::string(in.Get(0)));
    row->set_timestamp(std::string(in.Get(1)));
    row->set_channel(std::string(in.Get(2)));
    row->set_cost(std::string(in.Get(3)));
    if (in.Has(4)) row->set_kind(std::string(in.Get(4)));
    if (in.Has(5)) row->set_note(std::string(in.Get(5)));
    if (in.Has(6)) row->set_request_id(std::string(in.Get(6)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      v1::CustomerService::Stub& stub, grpc::ClientContext* call,
      Response* response) {
    return stub.ImportInteractions(call, response);
  }
};

}  // namespace

int RunCustomersImport(Context& ctx) {
  const std::vector<std::string>& words = ctx.args.positional();
  if (words.size() != 4) return UsageError(kUsage, "");
  const std::string& kind = words[2];
  if (kind != "purchases" && kind != "interactions") {
    return UsageError(absl::StrCat("customers import: unknown kind \"", kind,
                                   "\"; want purchases or interactions"),
                      "");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      ctx.CustomerChannel();
  if (!channel.ok())
    return UsageError(std::string(channel.status().message()), "");
  const file_import::LaneChannel lanes = [&ctx](int lane) {
    return ctx.CustomerChannel(lane);
  };
  if (kind == "purchases")
    return RunFileImport<PurchaseKind>(ctx, lanes, kUsage);
  return RunFileImport<InteractionKind>(ctx, lanes, kUsage);
}

}  // namespace rapport::ctl
