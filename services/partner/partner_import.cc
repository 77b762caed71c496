#include "services/partner/partner_import.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/api_names.h"
#include "common/audit/audit.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/identity.h"
#include "common/import/mysql_import.h"
#include "common/import/row_import.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"
#include "services/partner/mysql_partner_store.h"
#include "services/partner/partner_rules.h"
#include "services/partner/partner_values.h"

namespace rapport::partner {
namespace {

namespace cv1 = ::rapport::common::v1;

// The partner a row names: its id, or "ext:SOURCE:ID".
absl::StatusOr<EntityRef> ParsePartnerRef(const std::string& text) {
  return ParseEntityRef(text, "partner_ref", "partner", "US",
                        {.email = false, .phone = false, .external = true});
}

const imports::EntityTables& PartnerTables() {
  static const imports::EntityTables* const tables =
      new imports::EntityTables{.noun = "partner",
                                .entities = "partners",
                                .external_ids = "partner_external_ids",
                                .entity_column = "partner_id",
                                .created_scope = "partner-ext"};
  return *tables;
}

// Partners for unknown external ids: channels, prospects, named after the
// external id.
void CreatePartners(sql::Connection& c, const imports::CreatedEntities& created,
                    int64_t now, const std::string& actor) {
  imports::ForChunks(created.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO partners (id, display_name, name_key, kind, "
                     "lifecycle, region, create_time_us, update_time_us, "
                     "version, created_by) VALUES ",
                     RowPlaceholders(n, 10)),
        StatementParameters::kKept);
    for (size_t i = 0; i < n; ++i) {
      const auto& [id, external] = created[begin + i];
      const std::string name = absl::StrCat(external.source, ":", external.id);
      int k = 1 + static_cast<int>(i) * 10;
      s->setString(k++, id);
      const std::string display = Utf8Prefix(name, 256);
      s->setString(k++, display);
      s->setString(k++, FirmNameKey(display));  // as from the stored name
      s->setInt(k++, v1::PARTNER_KIND_CHANNEL);
      s->setInt(k++, v1::LIFECYCLE_PROSPECT);
      s->setString(k++, "");
      s->setInt64(k++, now);
      s->setInt64(k++, now);
      s->setInt(k++, 1);
      s->setString(k++, actor);
    }
    s->executeUpdate();
  });
  std::vector<std::string> ids;
  ids.reserve(created.size());
  for (const auto& [id, external] : created) ids.push_back(id);
  // Ids made from external ids: an entity deleted earlier may have had one.
  differentiation::ClearValuesOfReusedIds(c, PartnerValueTables(), ids);
}

template <typename Record>
using ImportStore = imports::MysqlStore<Record>;

template <typename Record>
std::unique_ptr<ImportStore<Record>> StoreFor(
    MysqlPool* pool, IdGenerator* ids, std::function<absl::Time()> clock,
    std::string table, typename ImportStore<Record>::Insert insert) {
  return std::make_unique<ImportStore<Record>>(
      pool, ids, std::move(clock), PartnerTables(), ParsePartnerRef,
      CreatePartners, std::move(table), std::move(insert));
}

// The partner id a row goes to.
template <typename Record>
const std::string& PartnerOf(const imports::Row<Record>& r) {
  return r.entity.create ? r.entity.id_to_create : r.entity.id;
}

// ---- deals
// --------------------------------------------------------------------

absl::StatusOr<imports::Parsed<DealRecord>> ParseDeal(const v1::DealRow& row) {
  imports::Parsed<DealRecord> out;
  DealRecord& d = out.record;
  RAPPORT_RETURN_IF_ERROR(ParsePartnerRef(row.partner_ref()).status());
  out.ref = row.partner_ref();
  RAPPORT_RETURN_IF_ERROR(CheckRequiredText(row.deal_id(), "deal_id", 128));
  d.reference = row.deal_id();
  RAPPORT_RETURN_IF_ERROR(CheckRequiredText(row.account(), "account", 256));
  d.account_name = std::string(absl::StripAsciiWhitespace(row.account()));
  d.name_key = FirmNameKey(d.account_name);
  if (d.name_key.empty()) {
    return InvalidField("account", "needs a letter or a digit");
  }
  RAPPORT_RETURN_IF_ERROR(
      CheckOptionalText(row.account_domain(), "account_domain", 253));
  d.account_domain =
      std::string(absl::StripAsciiWhitespace(row.account_domain()));
  RAPPORT_ASSIGN_OR_RETURN(
      d.domain_key,
      CheckedAccountDomainKey(d.account_domain, "account_domain"));
  RAPPORT_ASSIGN_OR_RETURN(
      d.amount, imports::ParseAmountText(row.amount(), "amount", false));
  if (row.registered_at().empty()) {
    return InvalidField("registered_at", "is required");
  }
  RAPPORT_ASSIGN_OR_RETURN(
      d.register_time_us,
      imports::ParseTimeText(row.registered_at(), "registered_at"));
  std::optional<v1::DealState> state = ParseDealState(row.state());
  if (!state.has_value()) {
    return InvalidField("state",
                        absl::StrCat("\"", Utf8Prefix(row.state(), 32),
                                     "\" is not one of submitted, approved, "
                                     "rejected, won, lost, expired"));
  }
  d.state = *state;
  const bool closes =
      *state == v1::DEAL_STATE_WON || *state == v1::DEAL_STATE_LOST;
  if (closes && row.closed_at().empty()) {
    return InvalidField("closed_at", "is required for won and lost deals");
  }
  if (!row.closed_at().empty()) {
    // A rejected or expired deal from another system may carry when that
    // happened: kept as its close time. An open one cannot have closed.
    if (DealIsOpen(*state)) {
      return InvalidField("closed_at",
                          "is only for closed deals (won, lost, rejected or "
                          "expired), not a submitted or approved one");
    }
    RAPPORT_ASSIGN_OR_RETURN(
        int64_t closed, imports::ParseTimeText(row.closed_at(), "closed_at"));
    if (closed < d.register_time_us) {
      return InvalidField("closed_at", "must not be before registered_at");
    }
    d.close_time_us = closed;
  }
  out.content = FingerprintContent(
      {out.ref, d.reference, d.account_name, d.account_domain,
       d.amount.ToString(), absl::StrCat(d.register_time_us),
       absl::StrCat(d.state), absl::StrCat(d.close_time_us.value_or(-1))});
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertNewDeals(
    sql::Connection& c, const std::vector<imports::Row<DealRecord>>& rows,
    const std::string& actor, int64_t now, int64_t window_us,
    int64_t import_start) {
  constexpr int kColumns = 16;
  auto bind = [&](sql::PreparedStatement& s, int first,
                  const imports::Row<DealRecord>& r,
                  const std::string& conflict_with) {
    const DealRecord& d = r.record;
    int i = first;
    s.setString(i++, r.id);
    s.setString(i++, PartnerOf(r));
    s.setString(i++, d.reference);
    s.setString(i++, d.account_name);
    s.setString(i++, d.account_domain);
    s.setString(i++, d.domain_key);
    s.setString(i++, d.name_key);
    s.setString(i++, d.amount.ToString());
    s.setInt64(i++, d.register_time_us);
    SetOptionalInt64(s, i++, d.close_time_us);
    s.setInt(i++, d.state);
    SetNullableString(s, i++, conflict_with);
    s.setInt64(i++, now);
    s.setInt64(i++, now);
    s.setString(i++, actor);
    s.setString(i++, r.fingerprint);
  };
  const std::string insert =
      "INSERT INTO deals (id, partner_id, reference, account_name, "
      "account_domain, domain_key, name_key, amount, register_time_us, "
      "close_time_us, state, conflict_with, create_time_us, update_time_us, "
      "recorded_by, fingerprint) VALUES ";
  // An open registration conflicts with the earliest open registration of
  // another partner (by domain or by name) within the window before it:
  // those stored, read at once for the whole batch, and those of the batch
  // registered before it (the batch is matched in the order of registration,
  // whatever the order of its rows). The batch locks the accounts of its
  // open rows (LockDealAccounts, as RegisterDeal does), and the read then
  // sees every claim committed before (the batch runs READ COMMITTED), so
  // that an import racing another stream, another import or a RegisterDeal
  // for one account sees the claim that went first. The read itself does not
  // lock: imports run on several streams at once, and the next-key locks of
  // a locking read made them deadlock on each other's inserts. The closed
  // rows, which claim nothing, are stored before the accounts are locked, so
  // that a stream waiting for another's account waits for less.
  struct Open {
    int64_t time;
    std::string id;
    std::string partner;
    // Stored before this import: a claim that keeps its place within the
    // window on either side, and within the window of the import itself, so
    // that a row dated back cannot step around it (as for RegisterDeal); a
    // row of the batch conflicts only with those registered before it.
    bool stored = false;
    // When a stored claim was stored (a won deal meets those stored before
    // it was won).
    int64_t create_time = 0;
  };
  absl::flat_hash_map<std::string, std::vector<Open>> by_domain, by_name;
  std::set<std::string> domains, names;
  int64_t earliest = std::numeric_limits<int64_t>::max();
  int64_t latest = std::numeric_limits<int64_t>::min();
  // The open rows (sorted by registration below; a registration dated after
  // the import was refused when parsed), and the closed ones.
  std::vector<size_t> open, closed, won;
  std::vector<imports::Reject> refused;
  // An open registration of a suspended or ended partner is refused, as
  // RegisterDeal refuses it (closed rows are history, and go in). The
  // partner rows are read locked (shared): ending a partner waits for the
  // batch, and then expires what it stored.
  std::set<std::string> partners;
  for (const imports::Row<DealRecord>& r : rows) {
    if (DealIsOpen(static_cast<v1::DealState>(r.record.state))) {
      partners.insert(PartnerOf(r));
    }
  }
  const absl::flat_hash_map<std::string, int> lifecycles = IntColumnLocked(
      c, "partners", "lifecycle",
      std::vector<std::string>(partners.begin(), partners.end()));
  for (size_t i = 0; i < rows.size(); ++i) {
    const imports::Row<DealRecord>& r = rows[i];
    if (r.record.state == v1::DEAL_STATE_WON) {
      won.push_back(i);
      continue;
    }
    if (!DealIsOpen(static_cast<v1::DealState>(r.record.state))) {
      closed.push_back(i);
      continue;
    }
    if (auto l = lifecycles.find(PartnerOf(r));
        l != lifecycles.end() && (l->second == v1::LIFECYCLE_SUSPENDED ||
                                  l->second == v1::LIFECYCLE_ENDED)) {
      refused.push_back(
          {r.number, "partner_ref",
           absl::StrCat("partner ", PartnerOf(r), " is ",
                        LifecycleName(l->second), "; it registers no deals")});
      continue;
    }
    open.push_back(i);
    if (!r.record.domain_key.empty()) domains.insert(r.record.domain_key);
    names.insert(r.record.name_key);
    earliest = std::min(earliest, r.record.register_time_us - window_us);
    latest = std::max(latest, r.record.register_time_us + window_us);
  }
  std::vector<std::string> conflicts(rows.size());
  // Stores rows[i] for each i of `which`, in that order.
  auto store = [&](const std::vector<size_t>& which) {
    imports::ForChunks(which.size(), [&](size_t begin, size_t n) {
      CachedStatement s =
          PrepareCached(c, absl::StrCat(insert, RowPlaceholders(n, kColumns)),
                        StatementParameters::kKept);
      for (size_t i = 0; i < n; ++i) {
        const size_t row = which[begin + i];
        bind(*s, 1 + static_cast<int>(i) * kColumns, rows[row], conflicts[row]);
      }
      s->executeUpdate();
    });
  };
  // The open registrations stored on `domain_keys` and `name_keys` made
  // between `from` and `to` that hold their account (kDealHoldsItsAccount),
  // into `domain_claims` and `name_claims`.
  auto read_claims =
      [&](const std::set<std::string>& domain_keys,
          const std::set<std::string>& name_keys, int64_t from, int64_t to,
          absl::flat_hash_map<std::string, std::vector<Open>>& domain_claims,
          absl::flat_hash_map<std::string, std::vector<Open>>& name_claims) {
        for (const bool by_domain_key : {true, false}) {
          const std::vector<std::string> keys(
              by_domain_key ? domain_keys.begin() : name_keys.begin(),
              by_domain_key ? domain_keys.end() : name_keys.end());
          constexpr size_t kInList = 512;
          for (size_t begin = 0; begin < keys.size(); begin += kInList) {
            const size_t n = std::min(kInList, keys.size() - begin);
            const size_t slots = PaddedCount(n, kInList);
            const char* column = by_domain_key ? "domain_key" : "name_key";
            CachedStatement s = PrepareCached(
                c, absl::StrCat("SELECT ", column,
                                ", register_time_us, id, partner_id, "
                                "create_time_us FROM deals "
                                "WHERE ",
                                column, " IN (", Placeholders(slots),
                                ") AND register_time_us BETWEEN ? AND ? AND "
                                "state IN (1, 2) AND ",
                                kDealHoldsItsAccount));
            BindPadded(*s, 1, keys, begin, n, slots);
            s->setInt64(static_cast<int>(slots) + 1, from);
            s->setInt64(static_cast<int>(slots) + 2, to);
            rapport::Rows found(s->executeQuery());
            while (found->next()) {
              (by_domain_key ? domain_claims
                             : name_claims)[TextOrEmpty(*found, 1)]
                  .push_back(Open{found->getInt64(2), TextOrEmpty(*found, 3),
                                  TextOrEmpty(*found, 4), true,
                                  found->getInt64(5)});
            }
          }
        }
      };
  // A won deal counts for its partner. One whose account another partner
  // holds is what was won, and stored, but names that claim, so that
  // ListDealConflicts shows it for review: through the RPCs it would have
  // taken an approval with force (admin, audited). The claim is the earliest
  // open registration of another partner, not itself in conflict, that
  // protects the account still (made within the window before the import)
  // and was there first: registered before the deal, or stored before the
  // deal was won (a claim stored first keeps its place, as for RegisterDeal,
  // so that dating a won deal back cannot step around it; the file's own
  // registrations, stored since the import started, count only when
  // registered before the deal). History won before that window meets no
  // such claim, and is stored with the closed rows; the others wait for the
  // batch's registrations to be settled (see resolve_won), their accounts
  // locked with those of the open rows.
  auto won_at = [&](size_t i) {
    return rows[i].record.close_time_us.value_or(
        rows[i].record.register_time_us);
  };
  std::vector<size_t> recent_won;
  std::set<std::string> won_domains, won_names;
  for (size_t i : won) {
    if (won_at(i) >= now - window_us) {
      recent_won.push_back(i);
      const DealRecord& d = rows[i].record;
      if (!d.domain_key.empty()) won_domains.insert(d.domain_key);
      won_names.insert(d.name_key);
    } else {
      closed.push_back(i);
    }
  }
  // Finds the claims on recent_won among the stored registrations that are
  // not in conflict themselves (those of this batch, stored by then,
  // included: a file's rows see each other whatever the batches they fall
  // in), and stores them.
  auto resolve_won = [&]() {
    if (recent_won.empty()) return;
    const int64_t from = now - window_us;
    int64_t to = std::numeric_limits<int64_t>::min();
    for (size_t i : recent_won) to = std::max(to, won_at(i));
    // A claim is registered at most the clocks' difference after it was
    // stored.
    absl::flat_hash_map<std::string, std::vector<Open>> domain_claims,
        name_claims;
    read_claims(won_domains, won_names, from, to + kClockSkewUs, domain_claims,
                name_claims);
    for (size_t i : recent_won) {
      const imports::Row<DealRecord>& r = rows[i];
      const int64_t t = r.record.register_time_us;
      const int64_t stored_by = std::min(won_at(i), import_start - 1);
      const Open* best = nullptr;
      auto consider = [&](const std::vector<Open>& claims) {
        for (const Open& o : claims) {
          if (o.time < from || (o.time > t && o.create_time > stored_by)) {
            continue;
          }
          if (best == nullptr ||
              std::tie(o.time, o.id) < std::tie(best->time, best->id)) {
            best = &o;
          }
        }
      };
      if (!r.record.domain_key.empty()) {
        consider(domain_claims[r.record.domain_key]);
      }
      consider(name_claims[r.record.name_key]);
      if (best != nullptr && best->partner != PartnerOf(r)) {
        conflicts[i] = best->id;
      }
    }
    store(recent_won);
    // Each counts for its partner over another's claim, which through the
    // RPCs takes an approval with force: audited as that is, by the importer.
    std::vector<audit::Event> events;
    for (size_t i : recent_won) {
      if (conflicts[i].empty()) continue;
      events.push_back(
          {.time_us = now,
           .actor = actor,
           .rpc = "ImportDeals",
           .resource = absl::StrCat("deals/", rows[i].id),
           .details = absl::StrCat("won over registration ", conflicts[i],
                                   " of another partner, which held the "
                                   "account first")});
    }
    audit::Write(c, events);
  };
  store(closed);
  // The accounts of the open rows and of the recent won ones, at once (one
  // lock order for every stream).
  std::set<std::string> locked_domains = won_domains, locked_names = won_names;
  locked_domains.insert(domains.begin(), domains.end());
  locked_names.insert(names.begin(), names.end());
  LockDealAccounts(
      c, std::vector<std::string>(locked_domains.begin(), locked_domains.end()),
      std::vector<std::string>(locked_names.begin(), locked_names.end()));
  if (open.empty()) {
    resolve_won();
    return refused;
  }
  earliest = std::min(earliest, now - window_us);
  latest = std::max(latest, now + window_us);
  std::stable_sort(open.begin(), open.end(), [&](size_t a, size_t b) {
    return rows[a].record.register_time_us < rows[b].record.register_time_us;
  });
  read_claims(domains, names, earliest, latest, by_domain, by_name);
  // The earliest claim of `claims` that `r` conflicts with, if any.
  auto earliest_conflict = [&](const std::vector<Open>& claims,
                               const imports::Row<DealRecord>& r,
                               const Open* best) {
    const int64_t t = r.record.register_time_us;
    for (const Open& o : claims) {
      if (o.partner == PartnerOf(r)) continue;
      const bool near_row =
          o.time >= t - window_us && o.time <= (o.stored ? t + window_us : t);
      const bool near_import =
          o.stored && o.time >= now - window_us && o.time <= now + window_us;
      if (!near_row && !near_import) continue;
      if (best == nullptr ||
          std::tie(o.time, o.id) < std::tie(best->time, best->id)) {
        best = &o;
      }
    }
    return best;
  };
  // An approved registration in conflict is refused: approving over another
  // partner's claim takes TransitionDeal with force, which is audited.
  std::vector<size_t> kept;
  for (size_t i : open) {
    const imports::Row<DealRecord>& r = rows[i];
    const Open* best = nullptr;
    if (!r.record.domain_key.empty()) {
      best = earliest_conflict(by_domain[r.record.domain_key], r, best);
    }
    best = earliest_conflict(by_name[r.record.name_key], r, best);
    if (best != nullptr) conflicts[i] = best->id;
    if (r.record.state == v1::DEAL_STATE_APPROVED && !conflicts[i].empty()) {
      refused.push_back(
          {r.number, "state",
           absl::StrCat("approves a registration that conflicts with the "
                        "earlier registration ",
                        conflicts[i],
                        " of another partner; import it as submitted and "
                        "approve it with force (TransitionDeal, admin)")});
      continue;
    }
    kept.push_back(i);
    // One in conflict itself yields to a claim that holds the account: it
    // protects nothing for the rows after it (kDealHoldsItsAccount).
    if (!conflicts[i].empty()) continue;
    const Open self{r.record.register_time_us, r.id, PartnerOf(r)};
    if (!r.record.domain_key.empty()) {
      by_domain[r.record.domain_key].push_back(self);
    }
    by_name[r.record.name_key].push_back(self);
  }
  store(kept);
  resolve_won();
  return refused;  // the importer sorts them by row
}

// A deal_id names one deal of its partner. A row whose deal its partner has
// stored already (by an earlier import, or registered under that reference),
// or that an earlier row of the batch gives, is not stored again: unchanged
// when it says the same (a file imported twice), refused naming deal_id when
// it says otherwise (a row does not change a stored deal). Returns those
// rows' answers, each with the number of the batch's row that gives its
// deal (0 for a stored one); `fresh` gets the others. A deal stored meanwhile
// by another stream makes the insert meet the unique key, and the batch runs
// again (MysqlPool retries a duplicate key once), to find it here.
struct KnownDealAnswer {
  imports::Reject answer;
  int64_t first_row = 0;
};
absl::StatusOr<std::vector<KnownDealAnswer>> SeparateKnownDeals(
    sql::Connection& c, const std::vector<imports::Row<DealRecord>>& rows,
    std::vector<imports::Row<DealRecord>>& fresh) {
  // A deal stored, or given by the batch's row `row` (0: stored).
  struct Known {
    DealRecord deal;
    int64_t row = 0;
  };
  auto key = [](const std::string& partner, const std::string& reference) {
    return absl::StrCat(partner, " ", reference);
  };
  absl::flat_hash_map<std::string, Known> known;
  // The batch's (partner, deal_id) pairs, each once, looked up by the unique
  // key, padded as the statement cache likes (the last pair repeated). A
  // partner this batch created (its transaction, before this) has no deal
  // stored (deals hold a foreign key to it): its pairs are not looked up.
  std::vector<std::pair<std::string, std::string>> pairs;
  {
    std::set<std::pair<std::string, std::string>> seen;
    for (const imports::Row<DealRecord>& r : rows) {
      if (r.entity.create) continue;
      if (seen.emplace(PartnerOf(r), r.record.reference).second) {
        pairs.emplace_back(PartnerOf(r), r.record.reference);
      }
    }
  }
  constexpr size_t kInList = 512;
  for (size_t begin = 0; begin < pairs.size(); begin += kInList) {
    const size_t n = std::min(kInList, pairs.size() - begin);
    const size_t slots = PaddedCount(n, kInList);
    std::string list;
    for (size_t i = 0; i < slots; ++i)
      absl::StrAppend(&list, i ? ", " : "", "(?, ?)");
    CachedStatement s = PrepareCached(
        c, absl::StrCat("SELECT ", kDealColumns,
                        " FROM deals WHERE (partner_id, reference_key) IN (",
                        list, ")"));
    for (size_t i = 0; i < slots; ++i) {
      const auto& [partner, reference] = pairs[begin + std::min(i, n - 1)];
      s->setString(static_cast<int>(2 * i + 1), partner);
      s->setString(static_cast<int>(2 * i + 2), reference);
    }
    rapport::Rows found(s->executeQuery());
    while (found->next()) {
      RAPPORT_ASSIGN_OR_RETURN(DealRecord deal, ReadDeal(*found));
      std::string k = key(deal.partner_id, deal.reference);
      known[std::move(k)] = Known{std::move(deal)};
    }
  }
  std::vector<KnownDealAnswer> answered;
  fresh.clear();
  fresh.reserve(rows.size());
  for (const imports::Row<DealRecord>& r : rows) {
    const DealRecord& d = r.record;
    const std::string k = key(PartnerOf(r), d.reference);
    auto it = known.find(k);
    if (it == known.end()) {
      known[k] = Known{d, r.number};
      fresh.push_back(r);
      continue;
    }
    const Known& was = it->second;
    if (was.deal.state == d.state && was.deal.amount == d.amount &&
        was.deal.account_name == d.account_name &&
        was.deal.account_domain == d.account_domain &&
        was.deal.register_time_us == d.register_time_us &&
        was.deal.close_time_us == d.close_time_us) {
      answered.push_back({{.row = r.number, .unchanged = true}, was.row});
      continue;
    }
    answered.push_back(
        {{.row = r.number,
          .field = "deal_id",
          .message =
              was.row != 0
                  ? absl::StrCat("names the deal of row ", was.row,
                                 " of this import, which says otherwise")
                  : absl::StrCat(
                        "is deal ", was.deal.id, " of this partner, stored ",
                        DealStateName(was.deal.state), " for ",
                        was.deal.amount.ToString(),
                        " and saying otherwise; a row does not change a "
                        "stored deal (TransitionDeal does)")},
         was.row});
  }
  return answered;
}

absl::StatusOr<std::vector<imports::Reject>> InsertDeals(
    sql::Connection& c, const std::vector<imports::Row<DealRecord>>& all_rows,
    const std::string& actor, int64_t now, int64_t window_us,
    int64_t import_start) {
  std::vector<imports::Row<DealRecord>> rows;
  RAPPORT_ASSIGN_OR_RETURN(std::vector<KnownDealAnswer> known,
                           SeparateKnownDeals(c, all_rows, rows));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<imports::Reject> refused,
      InsertNewDeals(c, rows, actor, now, window_us, import_start));
  // A row that gives the deal of an earlier row refused here was not met by
  // a stored deal either: refused with it.
  std::set<int64_t> refused_rows;
  for (const imports::Reject& r : refused) {
    if (!r.unchanged) refused_rows.insert(r.row);
  }
  for (KnownDealAnswer& k : known) {
    if (k.first_row != 0 && refused_rows.count(k.first_row) > 0) {
      k.answer = {
          .row = k.answer.row,
          .field = "deal_id",
          .message = absl::StrCat("names the deal of row ", k.first_row,
                                  " of this import, which was refused")};
    }
    refused.push_back(std::move(k.answer));
  }
  return refused;
}

// ---- orders
// -------------------------------------------------------------------

absl::StatusOr<imports::Parsed<OrderRecord>> ParseOrder(
    const v1::OrderRow& row) {
  imports::Parsed<OrderRecord> out;
  RAPPORT_RETURN_IF_ERROR(ParsePartnerRef(row.partner_ref()).status());
  out.ref = row.partner_ref();
  if (row.timestamp().empty()) return InvalidField("timestamp", "is required");
  RAPPORT_ASSIGN_OR_RETURN(
      out.record.order_time_us,
      imports::ParseTimeText(row.timestamp(), "timestamp"));
  RAPPORT_ASSIGN_OR_RETURN(
      out.record.amount,
      imports::ParseAmountText(row.amount(), "amount", true));
  out.content =
      FingerprintContent({out.ref, absl::StrCat(out.record.order_time_us),
                          out.record.amount.ToString()});
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertOrders(
    sql::Connection& c, const std::vector<imports::Row<OrderRecord>>& rows,
    const std::string& actor, int64_t now) {
  constexpr int kColumns = 7;
  imports::ForChunks(rows.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO orders (id, partner_id, order_time_us, "
                     "amount, create_time_us, recorded_by, fingerprint) "
                     "VALUES ",
                     RowPlaceholders(n, kColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<OrderRecord>& r = rows[begin + k];
      int i = 1 + static_cast<int>(k) * kColumns;
      s->setString(i++, r.id);
      s->setString(i++, PartnerOf(r));
      s->setInt64(i++, r.record.order_time_us);
      s->setString(i++, r.record.amount.ToString());
      s->setInt64(i++, now);
      s->setString(i++, actor);
      s->setString(i++, r.fingerprint);
    }
    s->executeUpdate();
  });
  return std::vector<imports::Reject>();
}

// ---- interactions
// -------------------------------------------------------------

absl::StatusOr<imports::Parsed<InteractionRecord>> ParseInteraction(
    const v1::InteractionRow& row) {
  imports::Parsed<InteractionRecord> out;
  InteractionRecord& r = out.record;
  RAPPORT_RETURN_IF_ERROR(ParsePartnerRef(row.partner_ref()).status());
  out.ref = row.partner_ref();
  if (row.timestamp().empty()) return InvalidField("timestamp", "is required");
  RAPPORT_ASSIGN_OR_RETURN(
      r.interaction_time_us,
      imports::ParseTimeText(row.timestamp(), "timestamp"));
  std::optional<cv1::Channel> channel = ParseChannel(row.channel());
  if (!channel.has_value()) {
    return InvalidField("channel",
                        "must be one of email, phone, sms, visit, web, mail, "
                        "event");
  }
  r.channel = *channel;
  RAPPORT_ASSIGN_OR_RETURN(r.cost,
                           imports::ParseAmountText(row.cost(), "cost", false));
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(row.kind(), "kind", 64));
  RAPPORT_RETURN_IF_ERROR(CheckNoteText(row.note(), "note", 1024));
  r.kind = row.kind();
  r.note = row.note();
  out.content = FingerprintContent(
      {out.ref, absl::StrCat(r.interaction_time_us), absl::StrCat(r.channel),
       r.cost.ToString(), r.kind, r.note});
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertInteractions(
    sql::Connection& c,
    const std::vector<imports::Row<InteractionRecord>>& rows,
    const std::string& actor, int64_t) {
  constexpr int kColumns = 9;
  imports::ForChunks(rows.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO interactions (id, partner_id, channel, "
                     "kind, interaction_time_us, cost, note, recorded_by, "
                     "fingerprint) VALUES ",
                     RowPlaceholders(n, kColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<InteractionRecord>& r = rows[begin + k];
      int i = 1 + static_cast<int>(k) * kColumns;
      s->setString(i++, r.id);
      s->setString(i++, PartnerOf(r));
      s->setInt(i++, r.record.channel);
      s->setString(i++, r.record.kind);
      s->setInt64(i++, r.record.interaction_time_us);
      s->setString(i++, r.record.cost.ToString());
      s->setString(i++, r.record.note);
      s->setString(i++, actor);
      s->setString(i++, r.fingerprint);
    }
    s->executeUpdate();
  });
  return std::vector<imports::Reject>();
}

// `parse`, refusing a row whose time (`time`, named `field`) is after the
// import's clock: what happened is not dated ahead.
template <typename Row, typename Record>
auto NotDatedAhead(absl::StatusOr<imports::Parsed<Record>> (*parse)(const Row&),
                   int64_t Record::*time, const char* field,
                   MysqlPartnerImports::Clock clock) {
  return [=](const Row& row) -> absl::StatusOr<imports::Parsed<Record>> {
    absl::StatusOr<imports::Parsed<Record>> parsed = parse(row);
    if (parsed.ok()) {
      RAPPORT_RETURN_IF_ERROR(CheckNotFuture(
          parsed->record.*time, absl::ToUnixMicros(clock()), field));
    }
    return parsed;
  };
}

}  // namespace

std::function<absl::StatusOr<std::optional<imports::Reject>>(
    const imports::Row<InteractionRecord>&)>
MysqlPartnerImports::HeldToPolicy() const {
  if (values_ == nullptr) return nullptr;
  auto recent = std::make_shared<differentiation::RecentInteractions>(
      [values = values_](const std::string& partner) {
        return values->ContactPolicyOf(partner);
      },
      "partner");
  return [recent, clock = clock_](const imports::Row<InteractionRecord>& row)
             -> absl::StatusOr<std::optional<imports::Reject>> {
    RAPPORT_ASSIGN_OR_RETURN(
        std::optional<differentiation::PolicyRefusal> refused,
        recent->Check(row.entity.id, row.record.interaction_time_us,
                      absl::ToUnixMicros(clock()), row.record.channel,
                      row.record.cost));
    if (!refused.has_value()) return std::nullopt;
    return imports::Reject{row.number, std::move(refused->field),
                           std::move(refused->message)};
  };
}

std::function<void(const std::vector<std::string>&)>
MysqlPartnerImports::Rescorer() const {
  if (values_ == nullptr) return nullptr;
  return [values = values_](const std::vector<std::string>& ids) {
    values->RescoreSoon(ids);
  };
}

absl::StatusOr<v1::ImportDealsResponse> MysqlPartnerImports::ImportDeals(
    const std::function<bool(v1::ImportDealsRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  const int64_t window_us =
      absl::ToInt64Microseconds(options_.protection_window);
  auto store = StoreFor<DealRecord>(
      pool_, ids_, clock_, "deals",
      [window_us, import_start = absl::ToUnixMicros(clock_())](
          sql::Connection& c, const std::vector<imports::Row<DealRecord>>& rows,
          const std::string& actor, int64_t now) {
        return InsertDeals(c, rows, actor, now, window_us, import_start);
      });
  store->ReadCommitted();
  imports::Importer<v1::ImportDealsRequest, v1::DealRow, DealRecord> importer(
      store.get(),
      {.kind = "deals",
       .rpc = "ImportDeals",
       .ref_field = "partner_ref",
       .request_scope = "deal",
       .clock = clock_},
      // A registration dated after the import would claim the account ahead
      // of its time, and a deal closed after it would count as won before it
      // is: refused with the row's other errors, before any partner is
      // created for it.
      [clock = clock_](const v1::DealRow& row)
          -> absl::StatusOr<imports::Parsed<DealRecord>> {
        absl::StatusOr<imports::Parsed<DealRecord>> parsed = ParseDeal(row);
        if (!parsed.ok()) return parsed;
        const int64_t now = absl::ToUnixMicros(clock());
        RAPPORT_RETURN_IF_ERROR(CheckNotFuture(parsed->record.register_time_us,
                                               now, "registered_at"));
        RAPPORT_RETURN_IF_ERROR(CheckNotFuture(
            parsed->record.close_time_us.value_or(now), now, "closed_at"));
        return parsed;
      },
      imports::EntitiesOfStored<DealRecord>(
          Rescorer(), [](const DealRecord& d) {
            return d.state == v1::DEAL_STATE_WON;  // a won deal is an event
          }));
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(std::move(totals),
                             &v1::ImportDealsResponse::set_created_partners);
}

absl::StatusOr<v1::ImportOrdersResponse> MysqlPartnerImports::ImportOrders(
    const std::function<bool(v1::ImportOrdersRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  auto store =
      StoreFor<OrderRecord>(pool_, ids_, clock_, "orders", InsertOrders);
  imports::Importer<v1::ImportOrdersRequest, v1::OrderRow, OrderRecord>
      importer(store.get(),
               {.kind = "orders",
                .rpc = "ImportOrders",
                .ref_field = "partner_ref",
                .request_scope = "order",
                .clock = clock_},
               NotDatedAhead(ParseOrder, &OrderRecord::order_time_us,
                             "timestamp", clock_),
               imports::EntitiesOfStored<OrderRecord>(Rescorer()));
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(std::move(totals),
                             &v1::ImportOrdersResponse::set_created_partners);
}

absl::StatusOr<v1::ImportInteractionsResponse>
MysqlPartnerImports::ImportInteractions(
    const std::function<bool(v1::ImportInteractionsRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled,
    bool force) {
  auto store = StoreFor<InteractionRecord>(pool_, ids_, clock_, "interactions",
                                           InsertInteractions);
  imports::Importer<v1::ImportInteractionsRequest, v1::InteractionRow,
                    InteractionRecord>
      importer(store.get(),
               {.kind = "partner_interactions",
                .rpc = "ImportInteractions",
                .ref_field = "partner_ref",
                .request_scope = "interaction",
                .clock = clock_,
                .audit_note = force ? "force" : ""},
               NotDatedAhead(ParseInteraction,
                             &InteractionRecord::interaction_time_us,
                             "timestamp", clock_),
               imports::EntitiesOfStored<InteractionRecord>(Rescorer()),
               force ? nullptr : HeldToPolicy());
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(
      std::move(totals), &v1::ImportInteractionsResponse::set_created_partners);
}

}  // namespace rapport::partner
