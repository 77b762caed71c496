// rapport-partner: flags and environment -> options -> the common server
// runner. Wiring only.
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/call_guard.h"
#include "common/counterpart_main.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/mysql_counterpart.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/differentiation/scoring_client.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/service_main.h"
#include "services/partner/mysql_partner_store.h"
#include "services/partner/partner_import.h"
#include "services/partner/partner_logic.h"
#include "services/partner/partner_service.h"
#include "services/partner/partner_values.h"

ABSL_FLAG(std::string, phone_region, "US",
          "region (ISO 3166 alpha-2) of contacts' phone numbers given without "
          "a country code");
ABSL_FLAG(int, deal_protection_days, 90,
          "how long an open deal registration protects its account from "
          "other partners' registrations (days)");

namespace {

namespace partner = ::rapport::partner;
namespace differentiation = ::rapport::differentiation;

// The partner service's own settings, checked; errors name the flag.
absl::StatusOr<partner::PartnerLogicOptions> ReadPartnerFlags(
    const rapport::CounterpartOptions& counterpart) {
  partner::PartnerLogicOptions options;
  options.currency = counterpart.currency;
  options.phone_region = absl::GetFlag(FLAGS_phone_region);
  if (!rapport::IsKnownPhoneRegion(options.phone_region)) {
    return absl::InvalidArgumentError(
        absl::StrCat("phone_region: \"", options.phone_region,
                     "\" is not a region code such as US or GB"));
  }
  const int days = absl::GetFlag(FLAGS_deal_protection_days);
  if (days < 1 || days > 3650) {
    return absl::InvalidArgumentError(
        "deal_protection_days: must be from 1 to 3650");
  }
  options.protection_window = absl::Hours(24) * days;
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const rapport::ServiceDefaults defaults{.name = "partner",
                                          .port = 50052,
                                          .metrics_port = 9452,
                                          .max_threads = 64,
                                          .database = "rapport_partner"};
  rapport::InitService(argc, argv, defaults, "The Rapport partner service.");
  absl::StatusOr<rapport::ServerOptions> server = rapport::ReadServerFlags(
      defaults, {rapport::partner::v1::PartnerService::service_full_name()});
  if (!server.ok()) return rapport::FailToStart(defaults, server.status());
  absl::StatusOr<rapport::CounterpartOptions> counterpart =
      rapport::ReadCounterpartFlags(defaults);
  if (!counterpart.ok()) {
    return rapport::FailToStart(defaults, counterpart.status());
  }
  absl::StatusOr<partner::PartnerLogicOptions> logic_options =
      ReadPartnerFlags(*counterpart);
  if (!logic_options.ok()) {
    return rapport::FailToStart(defaults, logic_options.status());
  }
  absl::StatusOr<std::unique_ptr<differentiation::GrpcScoringClient>> scoring =
      rapport::ScoringClientFor(*server, *counterpart);
  if (!scoring.ok()) return rapport::FailToStart(defaults, scoring.status());
  absl::StatusOr<std::unique_ptr<rapport::MysqlPool>> pool =
      rapport::OpenDatabase(defaults, *counterpart, partner::PartnerSchema());
  if (!pool.ok()) return rapport::FailToStart(defaults, pool.status());

  auto clock = [] { return absl::Now(); };
  rapport::IdGenerator ids;
  partner::MysqlPartnerStore store(pool->get());
  differentiation::MysqlCounterpart facts(pool->get(),
                                          partner::PartnerCounterpartTables());
  differentiation::MysqlValueStore value_store(pool->get(),
                                               partner::PartnerValueTables());
  differentiation::Differentiation values(
      &facts, &value_store, scoring->get(), &ids, clock,
      {.entity = "partner", .currency = counterpart->currency});
  if (absl::Status s = values.Recover(); !s.ok()) {
    rapport::LogError(defaults.name,
                      "cannot recover stopped refreshes now; will retry",
                      {{"error", std::string(s.message())}});
  }
  partner::PartnerLogic logic(&store, &ids, clock, *logic_options, &values);
  partner::MysqlPartnerImports imports(pool->get(), &ids, clock, *logic_options,
                                       &values);
  const rapport::CallGuard guard(server->verifier.get(),
                                 partner::PartnerMethodRoles());
  partner::PartnerServiceImpl service(
      &guard, &logic, &imports, &values,
      [p = pool->get()](const rapport::audit::Filter& filter,
                        const std::optional<rapport::audit::Cursor>& after,
                        int limit) {
        return rapport::audit::List(*p, filter, after, limit);
      });
  return rapport::ServeCounterpart(*server, &service, pool->get(), &values);
}
