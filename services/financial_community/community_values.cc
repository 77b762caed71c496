#include "services/financial_community/community_values.h"

#include <algorithm>
#include <utility>

#include "common/audit/audit.h"
#include "common/base/status_macros.h"
#include "common/import/mysql_import.h"
#include "common/records/records.h"
#include "services/financial_community/mysql_community_store.h"

namespace rapport::community {

namespace d = ::rapport::differentiation;

d::CounterpartTables MemberCounterpartTables() {
  d::CounterpartTables t;
  t.noun = "member";
  t.entities = "members";
  // One row per member of an engagement, amount 0: the index on (member,
  // time, amount, cost) serves both the events and the costs from the index
  // alone, in member order.
  t.events.push_back({.table = "engagements",
                      .entity_column = "member_id",
                      .time_column = "engagement_time_us",
                      .amount_column = "amount",
                      .scan_index = "engagements_member_time"});
  t.costs.push_back({.table = "engagements",
                     .entity_column = "member_id",
                     .time_column = "engagement_time_us",
                     .amount_column = "cost",
                     .scan_index = "engagements_member_time"});
  return t;
}

d::ValueTables MemberValueTables() {
  d::ValueTables t;
  t.values = "member_scores";
  t.entity_column = "member_id";
  t.jobs = "refresh_jobs";
  t.entities = "members";
  t.external_ids = "member_external_ids";
  return t;
}

std::vector<Migration> CommunitySchema() {
  std::vector<Migration> all = CommunityMigrations();
  for (Migration& m : d::ValueTableMigrations(MemberValueTables())) {
    all.push_back(std::move(m));
  }
  for (Migration& m : audit::Migrations()) all.push_back(std::move(m));
  for (Migration& m : imports::Migrations()) all.push_back(std::move(m));
  // After the tables exist (a new database makes its keys the new way
  // already and finds nothing to change).
  all.push_back(
      FirmNameKeyMigration(2001, {{"members", "display_name", "name_key"}}));
  all.push_back(TrimmedContactEmailsMigration(2002, MemberChildTables()));
  return all;
}

MemberFacts::MemberFacts(MysqlPool* pool, int scan_threads)
    : pool_(pool),
      engagements_(pool, MemberCounterpartTables(), scan_threads) {}

absl::StatusOr<int64_t> MemberFacts::CountEntities() {
  return engagements_.CountEntities();
}

absl::StatusOr<std::map<std::string, Decimal>> MemberFacts::ValuesOf(
    const std::vector<std::string>& ids, int64_t as_of_us, bool page) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::map<std::string, Decimal>> {
    return MarketValues(c, ids, as_of_us, page);
  });
}

// Members with a counted engagement get their market value as monetary;
// the others stay prospects (monetary 0) whatever they hold.
absl::Status MemberFacts::ScanFacts(const d::CountWindow& window,
                                    int batch_size,
                                    const d::Sink<d::EntityFacts>& sink) {
  return engagements_.ScanFacts(
      window, batch_size,
      [&](std::vector<d::EntityFacts>& batch) -> absl::Status {
        std::vector<std::string> engaged;
        for (const d::EntityFacts& f : batch) {
          if (f.frequency > 0) engaged.push_back(f.entity_id);
        }
        RAPPORT_ASSIGN_OR_RETURN(auto values,
                                 ValuesOf(engaged, window.as_of_us, true));
        for (d::EntityFacts& f : batch) {
          f.monetary = Decimal();
          if (f.frequency == 0) continue;
          if (auto it = values.find(f.entity_id); it != values.end()) {
            f.monetary = it->second;
          }
        }
        return sink(batch);
      });
}

absl::StatusOr<std::vector<d::EntityFacts>> MemberFacts::FactsOf(
    const std::vector<std::string>& ids, const d::CountWindow& window) {
  RAPPORT_ASSIGN_OR_RETURN(std::vector<d::EntityFacts> facts,
                           engagements_.FactsOf(ids, window));
  std::vector<std::string> engaged;
  for (const d::EntityFacts& f : facts) {
    if (f.frequency > 0) engaged.push_back(f.entity_id);
  }
  RAPPORT_ASSIGN_OR_RETURN(auto values,
                           ValuesOf(engaged, window.as_of_us, false));
  for (d::EntityFacts& f : facts) {
    f.monetary = Decimal();
    if (f.frequency == 0) continue;
    if (auto it = values.find(f.entity_id); it != values.end()) {
      f.monetary = it->second;
    }
  }
  return facts;
}

// The market value is one more amount on the member's latest counted
// engagement (SCORING.md section 10): added to its last event day. A batch
// holds whole members, by id then day.
absl::Status MemberFacts::ScanEventDays(const d::CountWindow& window,
                                        int batch_size,
                                        const d::Sink<d::EventDay>& sink) {
  return engagements_.ScanEventDays(
      window, batch_size, [&](std::vector<d::EventDay>& batch) -> absl::Status {
        std::vector<std::string> members;
        for (const d::EventDay& day : batch) {
          if (members.empty() || members.back() != day.entity_id) {
            members.push_back(day.entity_id);
          }
        }
        RAPPORT_ASSIGN_OR_RETURN(auto values,
                                 ValuesOf(members, window.as_of_us, true));
        for (size_t i = 0; i < batch.size(); ++i) {
          d::EventDay& day = batch[i];
          day.amount = Decimal();
          const bool last =
              i + 1 == batch.size() || batch[i + 1].entity_id != day.entity_id;
          if (!last) continue;
          if (auto it = values.find(day.entity_id); it != values.end()) {
            day.amount = it->second;
          }
        }
        return sink(batch);
      });
}

absl::StatusOr<std::string> MemberFacts::ResolveEntity(const std::string& id) {
  return engagements_.ResolveEntity(id);
}

}  // namespace rapport::community
