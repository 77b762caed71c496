// rapport-financial-community: flags and environment -> options -> the common
// server runner. Wiring only.
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/call_guard.h"
#include "common/counterpart_main.h"
#include "common/differentiation/differentiation.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/differentiation/scoring_client.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/service_main.h"
#include "services/financial_community/community_import.h"
#include "services/financial_community/community_logic.h"
#include "services/financial_community/community_rules.h"
#include "services/financial_community/community_service.h"
#include "services/financial_community/community_values.h"
#include "services/financial_community/mysql_community_store.h"

ABSL_FLAG(std::string, phone_region, "US",
          "region (ISO 3166 alpha-2) of contacts' phone numbers given without "
          "a country code");
ABSL_FLAG(std::string, tier_management_time,
          rapport::community::kDefaultManagementTime,
          "the management time each tier's members deserve, as their contact "
          "policy's service level says it: platinum=TEXT;gold=TEXT;iron=TEXT;"
          "lead=TEXT (a tier left out, or every tier when empty: the scoring "
          "service's words)");

namespace {

namespace community = ::rapport::community;
namespace differentiation = ::rapport::differentiation;

absl::StatusOr<community::CommunityLogicOptions> ReadCommunityFlags(
    const rapport::CounterpartOptions& counterpart) {
  community::CommunityLogicOptions options;
  options.currency = counterpart.currency;
  options.phone_region = absl::GetFlag(FLAGS_phone_region);
  if (!rapport::IsKnownPhoneRegion(options.phone_region)) {
    return absl::InvalidArgumentError(
        absl::StrCat("phone_region: \"", options.phone_region,
                     "\" is not a region code such as US or GB"));
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const rapport::ServiceDefaults defaults{
      .name = "financial-community",
      .port = 50053,
      .metrics_port = 9453,
      .max_threads = 64,
      .database = "rapport_financial_community"};
  rapport::InitService(argc, argv, defaults,
                       "The Rapport financial-community service.");
  absl::StatusOr<rapport::ServerOptions> server = rapport::ReadServerFlags(
      defaults, {rapport::financial_community::v1::FinancialCommunityService::
                     service_full_name()});
  if (!server.ok()) return rapport::FailToStart(defaults, server.status());
  absl::StatusOr<rapport::CounterpartOptions> counterpart =
      rapport::ReadCounterpartFlags(defaults);
  if (!counterpart.ok()) {
    return rapport::FailToStart(defaults, counterpart.status());
  }
  absl::StatusOr<community::CommunityLogicOptions> logic_options =
      ReadCommunityFlags(*counterpart);
  if (!logic_options.ok()) {
    return rapport::FailToStart(defaults, logic_options.status());
  }
  absl::StatusOr<absl::flat_hash_map<int, std::string>> management_time =
      community::ParseTierTexts(absl::GetFlag(FLAGS_tier_management_time),
                                "tier_management_time");
  if (!management_time.ok()) {
    return rapport::FailToStart(defaults, management_time.status());
  }

  absl::StatusOr<std::unique_ptr<differentiation::GrpcScoringClient>> scoring =
      rapport::ScoringClientFor(*server, *counterpart);
  if (!scoring.ok()) return rapport::FailToStart(defaults, scoring.status());
  absl::StatusOr<std::unique_ptr<rapport::MysqlPool>> pool =
      rapport::OpenDatabase(defaults, *counterpart,
                            community::CommunitySchema());
  if (!pool.ok()) return rapport::FailToStart(defaults, pool.status());

  auto clock = [] { return absl::Now(); };
  rapport::IdGenerator ids;
  community::MysqlCommunityStore store(pool->get());
  community::MemberFacts facts(pool->get());
  differentiation::MysqlValueStore value_store(pool->get(),
                                               community::MemberValueTables());
  differentiation::Differentiation values(
      &facts, &value_store, scoring->get(), &ids, clock,
      {.entity = "member",
       .currency = counterpart->currency,
       .tier_service_levels = *std::move(management_time)});
  if (absl::Status s = values.Recover(); !s.ok()) {
    rapport::LogError(defaults.name,
                      "cannot recover stopped refreshes now; will retry",
                      {{"error", std::string(s.message())}});
  }
  community::CommunityLogic logic(&store, &ids, clock, *logic_options, &values);
  community::MysqlCommunityImports imports(pool->get(), &ids, clock,
                                           *logic_options, &values);
  const rapport::CallGuard guard(server->verifier.get(),
                                 community::CommunityMethodRoles());
  community::CommunityServiceImpl service(
      &guard, &logic, &imports, &values,
      [p = pool->get()](const rapport::audit::Filter& filter,
                        const std::optional<rapport::audit::Cursor>& after,
                        int limit) {
        return rapport::audit::List(*p, filter, after, limit);
      });
  return rapport::ServeCounterpart(*server, &service, pool->get(), &values);
}
