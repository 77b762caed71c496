// rapport-customer: flags and environment -> options -> the common server
// runner. Wiring only.
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/call_guard.h"
#include "common/counterpart_main.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/differentiation/scoring_client.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/service_main.h"
#include "services/customer/bulk_import.h"
#include "services/customer/customer_logic.h"
#include "services/customer/customer_service.h"
#include "services/customer/customer_values.h"
#include "services/customer/mysql_customer_store.h"
#include "services/customer/mysql_import_store.h"

ABSL_FLAG(
    std::string, phone_region, "US",
    "region (ISO 3166 alpha-2) of phone numbers given without a country code");
ABSL_FLAG(bool, suppression, true,
          "keep erased customers' identities as salted hashes and refuse them "
          "afterwards");
ABSL_FLAG(
    std::string, suppression_salt, "",
    "secret salt of the suppression hashes; required while suppression is on "
    "(or --suppression_salt_file)");
ABSL_FLAG(std::string, suppression_salt_file, "",
          "file holding the suppression salt (a mounted Secret), instead of "
          "--suppression_salt");

ABSL_FLAG(int, purchase_writers, 2,
          "threads writing batches of concurrent RecordPurchase calls (each "
          "holds a database connection while it writes and re-scores)");
ABSL_FLAG(int, readers, 2,
          "threads reading batches of concurrent GetCustomer calls");

namespace {

namespace customer = ::rapport::customer;
namespace differentiation = ::rapport::differentiation;

// The customer service's own settings, checked; errors name the flag.
absl::StatusOr<customer::CustomerLogicOptions> ReadCustomerFlags(
    const rapport::CounterpartOptions& counterpart) {
  customer::CustomerLogicOptions options;
  options.currency = counterpart.currency;
  options.phone_region = absl::GetFlag(FLAGS_phone_region);
  if (!rapport::IsKnownPhoneRegion(options.phone_region)) {
    return absl::InvalidArgumentError(
        absl::StrCat("phone_region: \"", options.phone_region,
                     "\" is not a region code such as US or GB"));
  }
  options.purchase_writers = absl::GetFlag(FLAGS_purchase_writers);
  options.readers = absl::GetFlag(FLAGS_readers);
  if (options.purchase_writers < 1 || options.purchase_writers > 64) {
    return absl::InvalidArgumentError("purchase_writers: must be 1 to 64");
  }
  if (options.readers < 1 || options.readers > 64) {
    return absl::InvalidArgumentError("readers: must be 1 to 64");
  }
  options.suppression = absl::GetFlag(FLAGS_suppression);
  options.suppression_salt = absl::GetFlag(FLAGS_suppression_salt);
  if (const std::string file = absl::GetFlag(FLAGS_suppression_salt_file);
      !file.empty()) {
    if (!options.suppression_salt.empty()) {
      return absl::InvalidArgumentError(
          "suppression_salt_file: give it or --suppression_salt, not both");
    }
    absl::StatusOr<std::string> salt =
        rapport::ReadSecretFile(file, "suppression_salt_file");
    if (!salt.ok()) return salt.status();
    options.suppression_salt = *std::move(salt);
  }
  if (options.suppression && options.suppression_salt.empty()) {
    return absl::InvalidArgumentError(
        "suppression_salt: required while suppression is on (a secret of the "
        "deployment; without it erased people's identities could be "
        "recovered from their hashes)");
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const rapport::ServiceDefaults defaults{.name = "customer",
                                          .port = 50051,
                                          .metrics_port = 9451,
                                          .max_threads = 64,
                                          .database = "rapport_customer"};
  rapport::InitService(argc, argv, defaults, "The Rapport customer service.");
  absl::StatusOr<rapport::ServerOptions> server = rapport::ReadServerFlags(
      defaults, {rapport::customer::v1::CustomerService::service_full_name()});
  if (!server.ok()) return rapport::FailToStart(defaults, server.status());
  absl::StatusOr<rapport::CounterpartOptions> counterpart =
      rapport::ReadCounterpartFlags(defaults);
  if (!counterpart.ok())
    return rapport::FailToStart(defaults, counterpart.status());
  absl::StatusOr<customer::CustomerLogicOptions> logic_options =
      ReadCustomerFlags(*counterpart);
  if (!logic_options.ok())
    return rapport::FailToStart(defaults, logic_options.status());
  absl::StatusOr<std::unique_ptr<differentiation::GrpcScoringClient>> scoring =
      rapport::ScoringClientFor(*server, *counterpart);
  if (!scoring.ok()) return rapport::FailToStart(defaults, scoring.status());
  absl::StatusOr<std::unique_ptr<rapport::MysqlPool>> pool =
      rapport::OpenDatabase(defaults, *counterpart, customer::CustomerSchema());
  if (!pool.ok()) return rapport::FailToStart(defaults, pool.status());

  auto clock = [] { return absl::Now(); };
  rapport::IdGenerator ids;
  customer::MysqlCustomerStore store(pool->get());
  differentiation::MysqlCounterpart facts(
      pool->get(), customer::CustomerCounterpartTables());
  differentiation::MysqlValueStore value_store(pool->get(),
                                               customer::CustomerValueTables());
  differentiation::Differentiation values(
      &facts, &value_store, scoring->get(), &ids, clock,
      {.entity = "customer", .currency = counterpart->currency});
  if (absl::Status s = values.Recover(); !s.ok()) {
    rapport::LogError(defaults.name,
                      "cannot recover stopped refreshes now; will retry",
                      {{"error", std::string(s.message())}});
  }
  customer::CustomerLogic logic(&store, &ids, clock, *logic_options, &values);
  store.RefuseSuppressedIdentities([&logic](const customer::CustomerRecord& r) {
    return logic.SuppressionHashesOf(r);
  });
  customer::MysqlImportStore import_store(pool->get(), &store);
  customer::BulkImportLogic imports(
      &import_store, &logic, &ids, clock, *logic_options,
      customer::BulkImportLogic::kDefaultBatchRows,
      [&values](const std::vector<std::string>& customers) {
        values.RescoreSoon(customers);
      },
      [&values](const std::string& customer) {
        return values.ContactPolicyOf(customer);
      });
  const rapport::CallGuard guard(server->verifier.get(),
                                 customer::CustomerMethodRoles());
  customer::CustomerServiceImpl service(&guard, &logic, &imports, &values);
  return rapport::ServeCounterpart(*server, &service, pool->get(), &values);
}
