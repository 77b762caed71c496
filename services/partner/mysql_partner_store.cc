#include "services/partner/mysql_partner_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/requests.h"
#include "common/status.h"
#include "services/partner/partner_rules.h"
#include "services/partner/partner_values.h"

namespace rapport::partner {
namespace {

using Statement = CachedStatement;

// ---- reading rows
// ------------------------------------------------------------

std::optional<int64_t> OptionalInt64(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return std::nullopt;
  return rows.getInt64(column);
}

std::string Str(sql::ResultSet& rows, int column) {
  return TextOrEmpty(rows, column);
}

constexpr char kPartnerColumns[] =
    "id, display_name, kind, lifecycle, region, create_time_us, "
    "update_time_us, version, created_by";
constexpr int kPartnerColumnCount = 9;

PartnerRecord ReadPartnerColumns(sql::ResultSet& rows) {
  PartnerRecord r;
  r.id = Str(rows, 1);
  r.display_name = Str(rows, 2);
  r.kind = rows.getInt(3);
  r.lifecycle = rows.getInt(4);
  r.region = Str(rows, 5);
  r.create_time_us = rows.getInt64(6);
  r.update_time_us = rows.getInt64(7);
  r.version = rows.getInt64(8);
  r.created_by = Str(rows, 9);
  return r;
}

// Contacts, external ids and attributes of the partners.
absl::Status LoadChildren(sql::Connection& c, std::vector<PartnerRecord>& out) {
  if (out.empty()) return absl::OkStatus();
  std::vector<std::string> ids;
  for (const PartnerRecord& r : out) ids.push_back(r.id);
  RAPPORT_ASSIGN_OR_RETURN(auto children,
                           rapport::LoadChildren(c, PartnerChildTables(), ids));
  for (PartnerRecord& r : out) {
    EntityChildren& k = children[r.id];
    r.contacts = std::move(k.contacts);
    r.external_ids = std::move(k.external_ids);
    r.attributes = std::move(k.attributes);
  }
  return absl::OkStatus();
}

absl::StatusOr<PartnerRecord> ReadPartner(sql::Connection& c,
                                          const std::string& id,
                                          bool for_update) {
  Statement s = PrepareCached(
      c, absl::StrCat("SELECT ", kPartnerColumns, " FROM partners WHERE id = ?",
                      for_update ? " FOR UPDATE" : ""));
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return absl::NotFoundError(absl::StrCat("partner ", id));
  std::vector<PartnerRecord> out = {ReadPartnerColumns(*rows)};
  RAPPORT_RETURN_IF_ERROR(LoadChildren(c, out));
  return std::move(out.front());
}

absl::Status WriteChildren(sql::Connection& c, const PartnerRecord& r,
                           bool replace) {
  return rapport::WriteChildren(c, PartnerChildTables(), r.id,
                                {r.contacts, r.external_ids, r.attributes},
                                replace);
}

// For a create under a request id: the stored row's fingerprint, when the id
// is stored already.
std::optional<std::string> StoredFingerprint(sql::Connection& c,
                                             const char* table,
                                             const std::string& id) {
  Statement s = PrepareCached(
      c, absl::StrCat("SELECT fingerprint FROM ", table, " WHERE id = ?"));
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return std::nullopt;
  return Str(*rows, 1);
}

// The id and fingerprint of a create: when the id is taken, the stored row
// if the fingerprint matches (`*replay` true), else RequestIdReused.
absl::Status CheckReplay(sql::Connection& c, const char* table,
                         const std::string& id, const std::string& fingerprint,
                         const audit::Event& event, bool* replay) {
  *replay = false;
  std::optional<std::string> stored = StoredFingerprint(c, table, id);
  if (!stored.has_value()) return absl::OkStatus();
  if (event.request_id.empty()) {
    // An id drawn at random that is taken: the next attempt draws another.
    return absl::AbortedError("the new id is taken; retry");
  }
  if (*stored != fingerprint) return RequestIdReused("a request");
  *replay = true;
  return absl::OkStatus();
}

// ---- programs, agreements, deals, orders, funds, interactions ---------------

absl::StatusOr<ProgramRecord> ReadProgram(sql::Connection& c,
                                          const std::string& id) {
  Statement s = PrepareCached(
      c, "SELECT id, name, create_time_us, basis FROM programs WHERE id = ?");
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return absl::NotFoundError(absl::StrCat("program ", id));
  ProgramRecord r{
      Str(*rows, 1), Str(*rows, 2), {}, rows->getInt64(3), rows->getInt(4)};
  Statement t = PrepareCached(
      c,
      "SELECT tier, commission_percent FROM program_terms WHERE program_id = "
      "? ORDER BY tier");
  t->setString(1, id);
  Rows terms(t->executeQuery());
  while (terms->next()) {
    RAPPORT_ASSIGN_OR_RETURN(Decimal percent, DecimalColumn(*terms, 2));
    r.terms.push_back({terms->getInt(1), percent});
  }
  return r;
}

constexpr char kAgreementColumns[] =
    "id, partner_id, program_id, start_time_us, end_time_us, state, "
    "create_time_us, update_time_us, version";

AgreementRecord ReadAgreement(sql::ResultSet& rows) {
  AgreementRecord r;
  r.id = Str(rows, 1);
  r.partner_id = Str(rows, 2);
  r.program_id = Str(rows, 3);
  r.start_time_us = rows.getInt64(4);
  r.end_time_us = OptionalInt64(rows, 5);
  r.state = rows.getInt(6);
  r.create_time_us = rows.getInt64(7);
  r.update_time_us = rows.getInt64(8);
  r.version = rows.getInt64(9);
  return r;
}

constexpr char kOrderColumns[] =
    "id, partner_id, order_time_us, amount, description, create_time_us, "
    "recorded_by";

absl::StatusOr<OrderRecord> ReadOrder(sql::ResultSet& rows) {
  OrderRecord r;
  r.id = Str(rows, 1);
  r.partner_id = Str(rows, 2);
  r.order_time_us = rows.getInt64(3);
  RAPPORT_ASSIGN_OR_RETURN(r.amount, DecimalColumn(rows, 4));
  r.description = Str(rows, 5);
  r.create_time_us = rows.getInt64(6);
  r.recorded_by = Str(rows, 7);
  return r;
}

constexpr char kFundColumns[] =
    "id, partner_id, activity, requested_amount, state, claimed_amount, "
    "claim_time_us, paid_time_us, create_time_us, update_time_us, version, "
    "requested_by, claimed_by";

absl::StatusOr<FundRecord> ReadFund(sql::ResultSet& rows) {
  FundRecord r;
  r.id = Str(rows, 1);
  r.partner_id = Str(rows, 2);
  r.activity = Str(rows, 3);
  RAPPORT_ASSIGN_OR_RETURN(r.requested_amount, DecimalColumn(rows, 4));
  r.state = rows.getInt(5);
  if (!rows.isNull(6)) {
    RAPPORT_ASSIGN_OR_RETURN(r.claimed_amount, DecimalColumn(rows, 6));
  }
  r.claim_time_us = OptionalInt64(rows, 7);
  r.paid_time_us = OptionalInt64(rows, 8);
  r.create_time_us = rows.getInt64(9);
  r.update_time_us = rows.getInt64(10);
  r.version = rows.getInt64(11);
  r.requested_by = Str(rows, 12);
  r.claimed_by = Str(rows, 13);
  return r;
}

constexpr char kInteractionColumns[] =
    "id, partner_id, channel, kind, interaction_time_us, cost, note, "
    "recorded_by";

absl::StatusOr<InteractionRecord> ReadInteraction(sql::ResultSet& rows) {
  InteractionRecord r;
  r.id = Str(rows, 1);
  r.partner_id = Str(rows, 2);
  r.channel = rows.getInt(3);
  r.kind = Str(rows, 4);
  r.interaction_time_us = rows.getInt64(5);
  RAPPORT_ASSIGN_OR_RETURN(r.cost, DecimalColumn(rows, 6));
  r.note = Str(rows, 7);
  r.recorded_by = Str(rows, 8);
  return r;
}

// Rows of `query` (its last two parameters: after-id and limit; `bind` sets
// the others from 1) read with `read`.
template <typename Record, typename Bind, typename Read>
absl::StatusOr<std::vector<Record>> Page(MysqlPool* pool,
                                         const std::string& query, Bind bind,
                                         int params, const std::string& after,
                                         int limit, Read read) {
  return pool->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<Record>> {
        Statement s = PrepareCached(c, query);
        bind(*s);
        s->setString(params + 1, after);
        s->setInt(params + 2, limit);
        Rows rows(s->executeQuery());
        return ReadRecords<Record>(*rows, read);
      });
}

// A page of a partner's history in time order: `table`'s rows of the
// partner after `after` by (`time_column`, id).
template <typename Record, typename Read>
absl::StatusOr<std::vector<Record>> TimePage(
    MysqlPool* pool, absl::string_view columns, absl::string_view table,
    absl::string_view time_column, const std::string& partner_id,
    const TimeCursor& after, int limit, Read read) {
  // The first page starts before any time there is.
  const auto [time_us, id] = after.value_or(
      std::make_pair(std::numeric_limits<int64_t>::min(), std::string()));
  return pool->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<Record>> {
        // (time, id) > (t, i), spelled so that the time bounds an index
        // range (MariaDB takes no range from a row comparison).
        Statement s = PrepareCached(
            c, absl::StrCat("SELECT ", columns, " FROM ", table,
                            " WHERE partner_id = ? AND ", time_column,
                            " >= ? AND (", time_column, " > ? OR id > ?) ",
                            "ORDER BY ", time_column, ", id LIMIT ?"));
        s->setString(1, partner_id);
        s->setInt64(2, time_us);
        s->setInt64(3, time_us);
        s->setString(4, id);
        s->setInt(5, limit);
        Rows rows(s->executeQuery());
        return ReadRecords<Record>(*rows, read);
      });
}

void SetDecimal(sql::PreparedStatement& s, int i, const Decimal& d) {
  s.setString(i, d.ToString());
}

void SetOptionalDecimal(sql::PreparedStatement& s, int i,
                        const std::optional<Decimal>& d) {
  if (d.has_value()) {
    s.setString(i, d->ToString());
  } else {
    s.setNull(i, 0);
  }
}

}  // namespace

const char kDealColumns[] =
    "id, partner_id, reference, account_name, account_domain, domain_key, "
    "name_key, amount, register_time_us, expected_close_time_us, "
    "close_time_us, state, conflict_with, approved_in_conflict, "
    "create_time_us, update_time_us, version, recorded_by";

absl::StatusOr<DealRecord> ReadDeal(sql::ResultSet& rows, int first) {
  DealRecord r;
  const int f = first - 1;
  r.id = Str(rows, f + 1);
  r.partner_id = Str(rows, f + 2);
  r.reference = Str(rows, f + 3);
  r.account_name = Str(rows, f + 4);
  r.account_domain = Str(rows, f + 5);
  r.domain_key = Str(rows, f + 6);
  r.name_key = Str(rows, f + 7);
  RAPPORT_ASSIGN_OR_RETURN(r.amount, DecimalColumn(rows, f + 8));
  r.register_time_us = rows.getInt64(f + 9);
  r.expected_close_time_us = OptionalInt64(rows, f + 10);
  r.close_time_us = OptionalInt64(rows, f + 11);
  r.state = rows.getInt(f + 12);
  r.conflict_with = Str(rows, f + 13);
  r.approved_in_conflict = rows.getBoolean(f + 14);
  r.create_time_us = rows.getInt64(f + 15);
  r.update_time_us = rows.getInt64(f + 16);
  r.version = rows.getInt64(f + 17);
  r.recorded_by = Str(rows, f + 18);
  return r;
}

const ChildTables& PartnerChildTables() {
  static const auto* const kTables =
      new ChildTables{.noun = "partner",
                      .entities = "partners",
                      .entity_column = "partner_id",
                      .contacts = "partner_contacts",
                      .external_ids = "partner_external_ids",
                      .attributes = "partner_attributes"};
  return *kTables;
}

// FAILED_PRECONDITION when the partner may not `what` now: it is ended, or
// suspended and not `while_suspended`. Reads the partner row locked (shared),
// so that ending it waits for this transaction, or this one for the ending,
// and then sees it.
absl::Status CheckPartnerMay(sql::Connection& c, const std::string& id,
                             absl::string_view what, bool while_suspended) {
  Statement s = PrepareCached(
      c, "SELECT lifecycle FROM partners WHERE id = ? LOCK IN SHARE MODE");
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return absl::NotFoundError(absl::StrCat("partner ", id));
  const int lifecycle = rows->getInt(1);
  if (lifecycle == v1::LIFECYCLE_ENDED ||
      (lifecycle == v1::LIFECYCLE_SUSPENDED && !while_suspended)) {
    return absl::FailedPreconditionError(absl::StrCat("partner ", id, " is ",
                                                      LifecycleName(lifecycle),
                                                      "; it cannot ", what));
  }
  return absl::OkStatus();
}

void LockDealAccounts(sql::Connection& c,
                      const std::vector<std::string>& domain_keys,
                      const std::vector<std::string>& name_keys) {
  std::vector<std::string> ids;
  ids.reserve(domain_keys.size() + name_keys.size());
  for (const std::string& k : domain_keys) {
    if (!k.empty()) ids.push_back(KeyedId("deal-domain", k));
  }
  for (const std::string& k : name_keys) {
    ids.push_back(KeyedId("deal-name", k));
  }
  LockRows(c, "deal_account_locks", std::move(ids));
}

namespace {

// The earliest open registration (submitted or approved) of another partner
// for `deal`'s account (by domain or by name), registered within the window
// on either side of when `deal` was registered or filed; with
// `stored_before`, only those stored before it, won ones too when they were
// won since (a conflict holds while the earlier claim is open or won; one
// imported won, or won before `deal` was filed, was no open claim then, and
// RegisterDeal did not name it), and none that names `deal` itself
// (stored-before is judged by clocks, which two registrations racing may read
// in the other order than they commit: two deals never name each other). ""
// when there is none.
std::string EarliestClaim(sql::Connection& c, const DealRecord& deal,
                          int64_t window_us,
                          std::optional<int64_t> stored_before) {
  std::optional<std::pair<int64_t, std::string>> earliest;
  for (const bool by_domain : {true, false}) {
    if (by_domain && deal.domain_key.empty()) continue;
    Statement s = PrepareCached(
        c, absl::StrCat("SELECT register_time_us, id FROM deals WHERE ",
                        by_domain ? "domain_key" : "name_key",
                        " = ? AND (register_time_us BETWEEN ? AND ? OR "
                        "register_time_us BETWEEN ? AND ?) AND "
                        "partner_id <> ? AND ",
                        stored_before.has_value()
                            ? "(state IN (1, 2) OR (state = 4 AND "
                              "update_time_us >= ?)) AND create_time_us < ? "
                              "AND (conflict_with IS NULL OR conflict_with "
                              "<> ?)"
                            : "state IN (1, 2)",
                        " AND ", kDealHoldsItsAccount,
                        " ORDER BY register_time_us, id LIMIT 1"));
    s->setString(1, by_domain ? deal.domain_key : deal.name_key);
    s->setInt64(2, deal.register_time_us - window_us);
    s->setInt64(3, deal.register_time_us + window_us);
    s->setInt64(4, deal.create_time_us - window_us);
    s->setInt64(5, deal.create_time_us + window_us);
    s->setString(6, deal.partner_id);
    if (stored_before.has_value()) {
      s->setInt64(7, *stored_before);
      s->setInt64(8, *stored_before);
      s->setString(9, deal.id);
    }
    Rows rows(s->executeQuery());
    if (rows->next()) {
      std::pair<int64_t, std::string> found(rows->getInt64(1), Str(*rows, 2));
      if (!earliest.has_value() || found < *earliest) {
        earliest = std::move(found);
      }
    }
  }
  return earliest.has_value() ? earliest->second : "";
}

// The submitted deals of other partners in conflict with one of `closed`
// (deals rejected, lost or expired just now, which protect nothing) name the
// next claim that holds their account, when there is one, as an approval
// would find it: ListDealConflicts then shows them against it. Each so moved
// gets a new etag and an event of its own (`event`'s caller, call and time),
// into `events`.
void MoveConflictsOn(sql::Connection& c, const std::vector<std::string>& closed,
                     int64_t window_us, const audit::Event& event,
                     std::vector<audit::Event>* events) {
  if (closed.empty()) return;
  // Their accounts first, as a registration takes them: one racing the
  // close either committed before (and is moved on below) or reads the
  // closed deal as closed.
  {
    std::vector<std::string> domain_keys, name_keys;
    for (const std::string& id : closed) {
      Statement s = PrepareCached(
          c, "SELECT domain_key, name_key FROM deals WHERE id = ?");
      s->setString(1, id);
      Rows rows(s->executeQuery());
      if (rows->next()) {
        domain_keys.push_back(Str(*rows, 1));
        name_keys.push_back(Str(*rows, 2));
      }
    }
    LockDealAccounts(c, domain_keys, name_keys);
  }
  for (const std::string& earlier : closed) {
    std::vector<DealRecord> waiting;
    {
      Statement s = PrepareCached(
          c, absl::StrCat("SELECT ", kDealColumns,
                          " FROM deals WHERE conflict_with = ? AND state = 1 "
                          "ORDER BY id FOR UPDATE"));
      s->setString(1, earlier);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        absl::StatusOr<DealRecord> deal = ReadDeal(*rows);
        if (deal.ok()) waiting.push_back(*std::move(deal));
      }
    }
    for (const DealRecord& deal : waiting) {
      std::string next = EarliestClaim(c, deal, window_us, deal.create_time_us);
      bool forced = false;
      if (next.empty()) {
        // An admin gave another partner the account over the closed claim:
        // that approval holds it against this deal too (approving this one
        // takes force), and ListDealConflicts shows the two.
        Statement over = PrepareCached(
            c,
            "SELECT id FROM deals WHERE conflict_with = ? AND "
            "approved_in_conflict AND state IN (2, 4) AND partner_id <> ? "
            "ORDER BY id LIMIT 1");
        over->setString(1, earlier);
        over->setString(2, deal.partner_id);
        Rows rows(over->executeQuery());
        if (rows->next()) {
          next = Str(*rows, 1);
          forced = true;
        }
      }
      if (next.empty()) continue;
      Statement s = PrepareCached(
          c,
          "UPDATE deals SET conflict_with = ?, update_time_us = ?, version = "
          "version + 1 WHERE id = ?");
      s->setString(1, next);
      s->setInt64(2, event.time_us);
      s->setString(3, deal.id);
      s->executeUpdate();
      audit::Event moved = event;
      moved.resource = absl::StrCat("deals/", deal.id);
      moved.details = absl::StrCat(
          "in conflict with ", next, " now: the earlier registration ", earlier,
          " closed",
          forced ? absl::StrCat(", and ", next, " was approved over it") : "");
      events->push_back(std::move(moved));
    }
  }
}

}  // namespace

// ---- partners
// ----------------------------------------------------------------

absl::StatusOr<PartnerRecord> MysqlPartnerStore::CreatePartner(
    const PartnerRecord& partner, const std::string& fingerprint,
    const audit::Event& event, const std::string& identify_email_key) {
  return CreateClaimingEmail(
      *pool_, PartnerChildTables(), identify_email_key,
      [&](sql::Connection& c) -> absl::StatusOr<PartnerRecord> {
        bool replay = false;
        RAPPORT_RETURN_IF_ERROR(CheckReplay(c, "partners", partner.id,
                                            fingerprint, event, &replay));
        if (replay) return ReadPartner(c, partner.id, false);
        Statement s = PrepareCached(
            c,
            "INSERT INTO partners (id, display_name, name_key, kind, "
            "lifecycle, region, create_time_us, update_time_us, version, "
            "fingerprint, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?)");
        s->setString(1, partner.id);
        s->setString(2, partner.display_name);
        s->setString(3, FirmNameKey(partner.display_name));
        s->setInt(4, partner.kind);
        s->setInt(5, partner.lifecycle);
        s->setString(6, partner.region);
        s->setInt64(7, partner.create_time_us);
        s->setInt64(8, partner.update_time_us);
        s->setInt64(9, partner.version);
        s->setString(10, fingerprint);
        s->setString(11, partner.created_by);
        s->executeUpdate();
        // Made from the request id: a partner deleted earlier may have had it.
        if (!event.request_id.empty()) {
          differentiation::ClearValuesOfReusedIds(c, PartnerValueTables(),
                                                  {partner.id});
        }
        RAPPORT_RETURN_IF_ERROR(WriteChildren(c, partner, false));
        audit::Write(c, event);
        return ReadPartner(c, partner.id, false);
      });
}

absl::StatusOr<PartnerRecord> MysqlPartnerStore::GetPartner(
    const std::string& id) {
  // The row and its children in one snapshot (one version of the partner).
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<PartnerRecord> {
        return ReadPartner(c, id, false);
      });
}

absl::StatusOr<bool> MysqlPartnerStore::PartnerExists(const std::string& id) {
  return EntityExists(*pool_, "partners", id);
}

absl::StatusOr<std::optional<std::string>>
MysqlPartnerStore::PartnerFingerprint(const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        return StoredFingerprint(c, "partners", id);
      });
}

absl::StatusOr<std::vector<PartnerRecord>> MysqlPartnerStore::ListPartners(
    const PartnerFilter& filter, const PageCursor& after, int limit) {
  // One statement text per shape of filter, so that the cache serves them.
  std::vector<std::string> where;
  const bool by_values =
      filter.by_value || filter.tier != 0 || !filter.segment.empty();
  // By value, the scores first, in their index's order (value highest
  // first, then id): a page reads only its rows. Not with a filter of the
  // partners' own (a rare kind would read every score for a page): the
  // optimizer then starts from its index.
  std::string from =
      filter.by_value && filter.kind == 0 && filter.lifecycle == 0
          ? "partner_scores s STRAIGHT_JOIN partners p ON p.id = s.partner_id"
      : by_values ? "partners p JOIN partner_scores s ON s.partner_id = p.id"
                  : "partners p";
  if (filter.kind != 0) where.push_back("p.kind = ?");
  if (filter.lifecycle != 0) where.push_back("p.lifecycle = ?");
  if (filter.tier != 0) where.push_back("s.tier = ?");
  if (!filter.segment.empty()) where.push_back("s.segment = ?");
  if (filter.by_value) {
    if (after.value_hundredths.has_value()) {
      where.push_back(
          "(s.value_hundredths < ? OR (s.value_hundredths = ? AND "
          "s.partner_id > ?))");
    }
  } else if (!after.id.empty()) {
    where.push_back("p.id > ?");
  }
  std::string query = absl::StrCat(
      "SELECT p.id, p.display_name, p.kind, p.lifecycle, p.region, "
      "p.create_time_us, p.update_time_us, p.version, p.created_by",
      filter.by_value ? ", s.value_hundredths" : "", " FROM ", from,
      where.empty() ? "" : " WHERE ", absl::StrJoin(where, " AND "),
      filter.by_value ? " ORDER BY s.value_hundredths DESC, s.partner_id"
                      : " ORDER BY p.id",
      " LIMIT ?");
  // The rows and their children in one snapshot.
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<PartnerRecord>> {
        Statement s = PrepareCached(c, query);
        int i = 0;
        if (filter.kind != 0) s->setInt(++i, filter.kind);
        if (filter.lifecycle != 0) s->setInt(++i, filter.lifecycle);
        if (filter.tier != 0) s->setInt(++i, filter.tier);
        if (!filter.segment.empty()) s->setString(++i, filter.segment);
        if (filter.by_value) {
          if (after.value_hundredths.has_value()) {
            s->setInt(++i, *after.value_hundredths);
            s->setInt(++i, *after.value_hundredths);
            s->setString(++i, after.id);
          }
        } else if (!after.id.empty()) {
          s->setString(++i, after.id);
        }
        s->setInt(++i, limit);
        Rows rows(s->executeQuery());
        std::vector<PartnerRecord> out;
        while (rows->next()) {
          out.push_back(ReadPartnerColumns(*rows));
          if (filter.by_value) {
            out.back().listed_value_hundredths =
                rows->getInt(kPartnerColumnCount + 1);
          }
        }
        RAPPORT_RETURN_IF_ERROR(LoadChildren(c, out));
        return out;
      });
}

absl::StatusOr<PartnerRecord> MysqlPartnerStore::UpdatePartner(
    const std::string& id, const Mutation<PartnerRecord>& mutate,
    const audit::Event& event, int64_t window_us) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<PartnerRecord> {
        RAPPORT_ASSIGN_OR_RETURN(PartnerRecord row, ReadPartner(c, id, true));
        const PartnerRecord before = row;
        RAPPORT_RETURN_IF_ERROR(mutate(row));
        if (row == before) return row;  // nothing to write, nothing to audit
        Statement s = PrepareCached(
            c,
            "UPDATE partners SET display_name = ?, name_key = ?, kind = ?, "
            "lifecycle = ?, region = ?, update_time_us = ?, version = ? "
            "WHERE id = ?");
        s->setString(1, row.display_name);
        s->setString(2, FirmNameKey(row.display_name));
        s->setInt(3, row.kind);
        s->setInt(4, row.lifecycle);
        s->setString(5, row.region);
        s->setInt64(6, row.update_time_us);
        s->setInt64(7, row.version);
        s->setString(8, row.id);
        s->executeUpdate();
        RAPPORT_RETURN_IF_ERROR(WriteChildren(c, row, true));
        audit::Event e = event;
        // An ended partnership holds no claim and no agreement: its open
        // registrations expire (so that they protect no account from other
        // partners) and its active agreements are terminated, with it.
        if (row.lifecycle == v1::LIFECYCLE_ENDED &&
            before.lifecycle != v1::LIFECYCLE_ENDED) {
          // Each deal and agreement ended with the partner has an event of
          // its own, so that its history says who ended it. The partner's row
          // is locked, so these are all the rows the updates below change.
          std::vector<audit::Event> cascaded;
          // (`timed`: the query's second parameter is the time now.)
          auto cascade = [&](const char* query, bool timed,
                             const char* resource, const char* what) {
            Statement s = PrepareCached(c, query);
            s->setString(1, row.id);
            if (timed) s->setInt64(2, row.update_time_us);
            Rows ids(s->executeQuery());
            while (ids->next()) {
              audit::Event changed = event;
              changed.resource = absl::StrCat(resource, Str(*ids, 1));
              changed.details =
                  absl::StrCat(what, ": partner ", row.id, " ended");
              cascaded.push_back(std::move(changed));
            }
          };
          cascade(
              "SELECT id FROM deals WHERE partner_id = ? AND state IN (1, 2) "
              "ORDER BY id FOR UPDATE",
              false, "deals/", "expired");
          cascade(
              "SELECT id FROM agreements WHERE partner_id = ? AND state = 2 "
              "AND (end_time_us IS NULL OR end_time_us > ?) ORDER BY id FOR "
              "UPDATE",
              true, "agreements/", "terminated");
          cascade(
              "SELECT id FROM agreements WHERE partner_id = ? AND state = 2 "
              "AND end_time_us <= ? ORDER BY id FOR UPDATE",
              true, "agreements/", "expired");
          // Funds requested or approved and not yet claimed would wait
          // forever: an ended partner claims none.
          cascade(
              "SELECT id FROM fund_requests WHERE partner_id = ? AND state IN "
              "(1, 2) ORDER BY id FOR UPDATE",
              false, "fundRequests/", "rejected");
          audit::Write(c, cascaded);
          // Each update's parameters: the time now, the partner, and for
          // `timed` ones the time now again.
          auto end_rows = [&](const char* query, bool timed) {
            Statement s = PrepareCached(c, query);
            s->setInt64(1, row.update_time_us);
            s->setString(2, row.id);
            if (timed) s->setInt64(3, row.update_time_us);
            return s->executeUpdate();
          };
          const int expired = end_rows(
              "UPDATE deals SET state = 6, update_time_us = ?, version = "
              "version + 1 WHERE partner_id = ? AND state IN (1, 2)",
              false);
          // Other partners' registrations that waited on them meet the next
          // claim, if any.
          std::vector<std::string> expired_ids;
          for (const audit::Event& e : cascaded) {
            absl::string_view resource = e.resource;
            if (absl::ConsumePrefix(&resource, "deals/")) {
              expired_ids.emplace_back(resource);
            }
          }
          std::vector<audit::Event> moved;
          MoveConflictsOn(c, expired_ids, window_us, event, &moved);
          audit::Write(c, moved);
          const int terminated = end_rows(
              "UPDATE agreements SET state = 4, active_key = NULL, "
              "update_time_us = ?, version = version + 1 WHERE partner_id = ? "
              "AND state = 2 AND (end_time_us IS NULL OR end_time_us > ?)",
              true);
          // Those whose period ended are stored as what they read as,
          // expired, and give up their place (the partner enters no other).
          end_rows(
              "UPDATE agreements SET state = 3, active_key = NULL, "
              "update_time_us = ?, version = version + 1 WHERE partner_id = ? "
              "AND state = 2 AND end_time_us <= ?",
              true);
          const int rejected = end_rows(
              "UPDATE fund_requests SET state = 3, update_time_us = ?, "
              "version = version + 1 WHERE partner_id = ? AND state IN (1, 2)",
              false);
          absl::StrAppend(&e.details, "; ", expired, " open deal",
                          expired == 1 ? "" : "s", " expired, ", terminated,
                          " active agreement", terminated == 1 ? "" : "s",
                          " terminated");
          if (rejected > 0) {
            absl::StrAppend(&e.details, ", ", rejected, " fund request",
                            rejected == 1 ? "" : "s", " not yet claimed ",
                            "rejected");
          }
        }
        audit::Write(c, e);
        return ReadPartner(c, id, false);
      },
      // Read committed: the claims MoveConflictsOn reads after locking
      // their accounts are those committed then, not a snapshot taken before
      // the lock (which would miss a registration committed meanwhile).
      MysqlPool::Isolation::kReadCommitted);
}

absl::Status MysqlPartnerStore::DeletePartner(const std::string& id, bool force,
                                              int64_t window_us,
                                              const Check<PartnerRecord>& check,
                                              const audit::Event& event) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::Status {
        RAPPORT_ASSIGN_OR_RETURN(PartnerRecord row, ReadPartner(c, id, true));
        RAPPORT_RETURN_IF_ERROR(check(row));
        // The history that a delete without force keeps: table, and its name
        // in the API.
        static constexpr std::pair<const char*, const char*> kHistory[] = {
            {"deals", "deals"},
            {"orders", "orders"},
            {"fund_requests", "fund requests"},
            {"interactions", "interactions"},
            {"agreements", "agreements"}};
        if (!force) {
          for (const auto& [table, noun] : kHistory) {
            Statement s =
                PrepareCached(c, absl::StrCat("SELECT 1 FROM ", table,
                                              " WHERE partner_id = ? LIMIT 1"));
            s->setString(1, id);
            Rows rows(s->executeQuery());
            if (rows->next()) {
              return absl::FailedPreconditionError(absl::StrCat(
                  "partner ", id, " has ", noun,
                  "; delete with force (admin) to delete them with it"));
            }
          }
        }
        // A registration of another partner racing for the account of one of
        // this partner's open deals takes the account's lock first: one that
        // read such a deal as its earlier claim commits before the conflicts
        // are cleared below, one after finds the deals gone. (This partner's
        // row is locked: it gets no new deals meanwhile.)
        if (force) {
          std::vector<std::string> domain_keys, name_keys;
          Statement open = PrepareCached(
              c,
              "SELECT domain_key, name_key FROM deals WHERE partner_id = ? AND "
              "state IN (?, ?)");
          open->setString(1, id);
          open->setInt(2, v1::DEAL_STATE_SUBMITTED);
          open->setInt(3, v1::DEAL_STATE_APPROVED);
          Rows rows(open->executeQuery());
          while (rows->next()) {
            domain_keys.push_back(rows->getString(1));
            name_keys.push_back(rows->getString(2));
          }
          LockDealAccounts(c, domain_keys, name_keys);
        }
        // Deals of other partners that named one of this partner's as the
        // earlier registration no longer conflict with it (only those: through
        // the index on conflict_with), and so have a new etag.
        std::vector<std::pair<std::string, std::string>>
            freed;  // deal, earlier
        {
          Statement cleared = PrepareCached(
              c,
              "SELECT d.id, e.id FROM deals d JOIN deals e ON d.conflict_with "
              "= "
              "e.id WHERE e.partner_id = ? AND d.partner_id <> e.partner_id "
              "ORDER BY d.id FOR UPDATE");
          cleared->setString(1, id);
          Rows rows(cleared->executeQuery());
          while (rows->next()) freed.emplace_back(Str(*rows, 1), Str(*rows, 2));
          Statement s = PrepareCached(
              c,
              "UPDATE deals d JOIN deals e ON d.conflict_with = e.id SET "
              "d.conflict_with = NULL, d.version = d.version + 1, "
              "d.update_time_us = ? WHERE e.partner_id = ? AND d.partner_id <> "
              "e.partner_id");
          s->setInt64(1, event.time_us);
          s->setString(2, id);
          s->executeUpdate();
        }
        for (const char* table :
             {"deals", "orders", "fund_requests", "interactions", "agreements",
              "partner_contacts", "partner_external_ids",
              "partner_attributes"}) {
          Statement s = PrepareCached(
              c, absl::StrCat("DELETE FROM ", table, " WHERE partner_id = ?"));
          s->setString(1, id);
          s->executeUpdate();
        }
        // A freed deal still waiting for its decision meets the next claim that
        // holds its account, as an approval would; each has an event of its
        // own, saying whose deletion freed it.
        std::vector<audit::Event> events;
        for (const auto& [deal_id, earlier] : freed) {
          audit::Event changed = event;
          changed.resource = absl::StrCat("deals/", deal_id);
          changed.details =
              absl::StrCat("no longer in conflict: the earlier registration ",
                           earlier, " was deleted with partner ", id);
          Statement read =
              PrepareCached(c, absl::StrCat("SELECT ", kDealColumns,
                                            " FROM deals WHERE id = ?"));
          read->setString(1, deal_id);
          Rows rows(read->executeQuery());
          if (rows->next()) {
            RAPPORT_ASSIGN_OR_RETURN(DealRecord deal, ReadDeal(*rows));
            const std::string next =
                deal.state == v1::DEAL_STATE_SUBMITTED
                    ? EarliestClaim(c, deal, window_us, deal.create_time_us)
                    : "";
            if (!next.empty()) {
              Statement repoint = PrepareCached(
                  c, "UPDATE deals SET conflict_with = ? WHERE id = ?");
              repoint->setString(1, next);
              repoint->setString(2, deal_id);
              repoint->executeUpdate();
              absl::StrAppend(&changed.details, "; in conflict with ", next,
                              " now");
            }
          }
          events.push_back(std::move(changed));
        }
        audit::Write(c, events);
        differentiation::DeleteEntityValues(c, PartnerValueTables(), {id});
        Statement s = PrepareCached(c, "DELETE FROM partners WHERE id = ?");
        s->setString(1, id);
        s->executeUpdate();
        audit::Write(c, event);
        return absl::OkStatus();
      },
      // Read committed, as UpdateDeal (MoveConflictsOn, the freed deals'
      // claims).
      MysqlPool::Isolation::kReadCommitted);
}

absl::StatusOr<std::vector<std::string>> MysqlPartnerStore::FindPartners(
    const std::vector<ExternalKey>& external_ids,
    const std::string& email_key) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        return FindByIdentities(c, PartnerChildTables(), external_ids,
                                email_key);
      });
}

absl::StatusOr<std::vector<DuplicateGroupRecord>>
MysqlPartnerStore::FindDuplicates(const std::string& after, int limit) {
  // Groups in (reason, key) order: "contact_email" groups before
  // "name_region" ones; `after` is "reason\nkey".
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<DuplicateGroupRecord>> {
    Statement s = PrepareCached(
        c,
        "SELECT reason, k, GROUP_CONCAT(partner_id ORDER BY partner_id "
        "SEPARATOR ',') FROM ("
        " SELECT DISTINCT 'contact_email' AS reason, email_key AS k, "
        "  partner_id FROM partner_contacts WHERE email_key <> ''"
        " UNION ALL"
        " SELECT 'name_region', CONCAT(name_key, ' / ', region COLLATE "
        "utf8mb4_bin), id"
        "  FROM partners) g"
        " WHERE CONCAT(reason, '\\n', k) > ?"
        " GROUP BY reason, k HAVING COUNT(DISTINCT partner_id) > 1"
        " ORDER BY reason, k LIMIT ?");
    s->setString(1, after);
    s->setInt(2, limit);
    Rows rows(s->executeQuery());
    std::vector<DuplicateGroupRecord> out;
    while (rows->next()) {
      DuplicateGroupRecord g;
      g.reason = Str(*rows, 1);
      g.key = Str(*rows, 2);
      g.partner_ids = absl::StrSplit(Str(*rows, 3), ',');
      g.partner_ids.erase(
          std::unique(g.partner_ids.begin(), g.partner_ids.end()),
          g.partner_ids.end());
      out.push_back(std::move(g));
    }
    return out;
  });
}

// ---- programs and agreements
// -------------------------------------------------

absl::StatusOr<ProgramRecord> MysqlPartnerStore::CreateProgram(
    const ProgramRecord& program, const std::string& fingerprint,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c)
                                -> absl::StatusOr<ProgramRecord> {
    bool replay = false;
    RAPPORT_RETURN_IF_ERROR(
        CheckReplay(c, "programs", program.id, fingerprint, event, &replay));
    if (replay) return ReadProgram(c, program.id);
    {
      Statement s = PrepareCached(c, "SELECT id FROM programs WHERE name = ?");
      s->setString(1, program.name);
      Rows rows(s->executeQuery());
      if (rows->next()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "program \"", program.name, "\" exists already: ", Str(*rows, 1)));
      }
    }
    Statement s = PrepareCached(
        c,
        "INSERT INTO programs (id, name, create_time_us, fingerprint, basis) "
        "VALUES (?, ?, ?, ?, ?)");
    s->setString(1, program.id);
    s->setString(2, program.name);
    s->setInt64(3, program.create_time_us);
    s->setString(4, fingerprint);
    s->setInt(5, program.basis);
    s->executeUpdate();
    for (const ProgramTermsRecord& t : program.terms) {
      Statement terms =
          PrepareCached(c,
                        "INSERT INTO program_terms (program_id, tier, "
                        "commission_percent) VALUES (?, ?, ?)");
      terms->setString(1, program.id);
      terms->setInt(2, t.tier);
      SetDecimal(*terms, 3, t.commission_percent);
      terms->executeUpdate();
    }
    audit::Write(c, event);
    return ReadProgram(c, program.id);
  });
}

absl::StatusOr<ProgramRecord> MysqlPartnerStore::GetProgram(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) { return ReadProgram(c, id); });
}

absl::StatusOr<std::vector<ProgramRecord>> MysqlPartnerStore::ListPrograms(
    const std::string& after, int limit) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<ProgramRecord>> {
        Statement s = PrepareCached(
            c, "SELECT id FROM programs WHERE id > ? ORDER BY id LIMIT ?");
        s->setString(1, after);
        s->setInt(2, limit);
        std::vector<std::string> ids;
        {
          Rows rows(s->executeQuery());
          while (rows->next()) ids.push_back(Str(*rows, 1));
        }
        std::vector<ProgramRecord> out;
        for (const std::string& id : ids) {
          RAPPORT_ASSIGN_OR_RETURN(ProgramRecord p, ReadProgram(c, id));
          out.push_back(std::move(p));
        }
        return out;
      });
}

absl::StatusOr<AgreementRecord> MysqlPartnerStore::CreateAgreement(
    const AgreementRecord& agreement, const std::string& fingerprint,
    const audit::Event& event) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<AgreementRecord> {
        bool replay = false;
        RAPPORT_RETURN_IF_ERROR(CheckReplay(c, "agreements", agreement.id,
                                            fingerprint, event, &replay));
        if (!replay) {
          RAPPORT_RETURN_IF_ERROR(CheckPartnerMay(c, agreement.partner_id,
                                                  "enter agreements", true));
          Statement s = PrepareCached(
              c,
              "INSERT INTO agreements (id, partner_id, program_id, "
              "start_time_us, end_time_us, state, active_key, create_time_us, "
              "update_time_us, version, fingerprint) VALUES (?, ?, ?, ?, ?, ?, "
              "NULL, ?, ?, ?, ?)");
          s->setString(1, agreement.id);
          s->setString(2, agreement.partner_id);
          s->setString(3, agreement.program_id);
          s->setInt64(4, agreement.start_time_us);
          SetOptionalInt64(*s, 5, agreement.end_time_us);
          s->setInt(6, agreement.state);
          s->setInt64(7, agreement.create_time_us);
          s->setInt64(8, agreement.update_time_us);
          s->setInt64(9, agreement.version);
          s->setString(10, fingerprint);
          s->executeUpdate();
          audit::Write(c, event);
        }
        Statement s =
            PrepareCached(c, absl::StrCat("SELECT ", kAgreementColumns,
                                          " FROM agreements WHERE id = ?"));
        s->setString(1, agreement.id);
        Rows rows(s->executeQuery());
        if (!rows->next()) return absl::InternalError("agreement not stored");
        return ReadAgreement(*rows);
      });
}

absl::StatusOr<AgreementRecord> MysqlPartnerStore::GetAgreement(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<AgreementRecord> {
    Statement s =
        PrepareCached(c, absl::StrCat("SELECT ", kAgreementColumns,
                                      " FROM agreements WHERE id = ?"));
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next())
      return absl::NotFoundError(absl::StrCat("agreement ", id));
    return ReadAgreement(*rows);
  });
}

absl::StatusOr<std::vector<AgreementRecord>> MysqlPartnerStore::ListAgreements(
    const std::string& partner_id, const std::string& program_id, int state,
    const std::string& after, int limit, int64_t now_us) {
  std::vector<std::string> where;
  if (!partner_id.empty()) where.push_back("partner_id = ?");
  if (!program_id.empty()) where.push_back("program_id = ?");
  // An active agreement whose period ended is expired (AgreementStateAt).
  const bool by_time = state == v1::AGREEMENT_STATE_ACTIVE ||
                       state == v1::AGREEMENT_STATE_EXPIRED;
  if (state == v1::AGREEMENT_STATE_ACTIVE) {
    where.push_back("state = 2 AND (end_time_us IS NULL OR end_time_us > ?)");
  } else if (state == v1::AGREEMENT_STATE_EXPIRED) {
    where.push_back("(state = 3 OR state = 2 AND end_time_us <= ?)");
  } else if (state != 0) {
    where.push_back("state = ?");
  }
  where.push_back("id > ?");
  const std::string query =
      absl::StrCat("SELECT ", kAgreementColumns, " FROM agreements WHERE ",
                   absl::StrJoin(where, " AND "), " ORDER BY id LIMIT ?");
  const int params = static_cast<int>(where.size()) - 1;
  return Page<AgreementRecord>(
      pool_, query,
      [&](sql::PreparedStatement& s) {
        int i = 0;
        if (!partner_id.empty()) s.setString(++i, partner_id);
        if (!program_id.empty()) s.setString(++i, program_id);
        if (by_time) {
          s.setInt64(++i, now_us);
        } else if (state != 0) {
          s.setInt(++i, state);
        }
      },
      params, after, limit,
      [](sql::ResultSet& rows) -> absl::StatusOr<AgreementRecord> {
        return ReadAgreement(rows);
      });
}

absl::StatusOr<AgreementRecord> MysqlPartnerStore::UpdateAgreement(
    const std::string& id, const Mutation<AgreementRecord>& mutate,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c)
                                -> absl::StatusOr<AgreementRecord> {
    // The partner row first (shared), then the agreement's: the order in
    // which ending a partner locks them, so that the two never deadlock.
    // (An agreement's partner never changes: a plain read finds it.)
    std::string owner;
    {
      Statement s =
          PrepareCached(c, "SELECT partner_id FROM agreements WHERE id = ?");
      s->setString(1, id);
      Rows rows(s->executeQuery());
      if (rows->next()) owner = Str(*rows, 1);
    }
    if (!owner.empty()) {
      Statement s = PrepareCached(
          c, "SELECT id FROM partners WHERE id = ? LOCK IN SHARE MODE");
      s->setString(1, owner);
      Rows rows(s->executeQuery());
    }
    Statement read = PrepareCached(
        c, absl::StrCat("SELECT ", kAgreementColumns,
                        " FROM agreements WHERE id = ? FOR UPDATE"));
    read->setString(1, id);
    AgreementRecord row;
    {
      Rows rows(read->executeQuery());
      if (!rows->next()) {
        return absl::NotFoundError(absl::StrCat("agreement ", id));
      }
      row = ReadAgreement(*rows);
    }
    const AgreementRecord before = row;
    RAPPORT_RETURN_IF_ERROR(mutate(row));
    if (row == before) return row;  // nothing to write, nothing to audit
    const bool active = row.state == v1::AGREEMENT_STATE_ACTIVE;
    if (active) {
      // An agreement is active within its period, for a partner who may
      // enter one (the partner row is read locked: a partner ended meanwhile
      // terminates what is active, and must see this one).
      if (row.end_time_us.has_value() &&
          *row.end_time_us <= row.update_time_us) {
        return absl::FailedPreconditionError(
            absl::StrCat("agreement ", row.id, " ended at ",
                         FormatRfc3339Micros(*row.end_time_us),
                         "; it cannot become active"));
      }
      RAPPORT_RETURN_IF_ERROR(
          CheckPartnerMay(c, row.partner_id, "activate agreements", false));
      // Locking: of two activations at once, the second waits for the
      // first (or, both holding the gap, one deadlocks and runs again) and
      // then names it.
      Statement other = PrepareCached(
          c,
          "SELECT id, end_time_us FROM agreements WHERE active_key = ? AND id "
          "<> ? FOR UPDATE");
      other->setString(1, absl::StrCat(row.partner_id, ":", row.program_id));
      other->setString(2, row.id);
      std::string lapsed;
      {
        Rows rows(other->executeQuery());
        if (rows->next()) {
          const std::optional<int64_t> end = OptionalInt64(*rows, 2);
          if (!end.has_value() || *end > row.update_time_us) {
            return absl::AlreadyExistsError(
                absl::StrCat("partner ", row.partner_id,
                             " has an active agreement in program ",
                             row.program_id, " already: ", Str(*rows, 1)));
          }
          lapsed = Str(*rows, 1);
        }
      }
      // One whose period ended is expired (it reads so already), under its
      // own name in the audit log, and this one takes its place.
      if (!lapsed.empty()) {
        Statement expire = PrepareCached(
            c,
            "UPDATE agreements SET state = 3, active_key = NULL, "
            "update_time_us = ?, version = version + 1 WHERE id = ?");
        expire->setInt64(1, row.update_time_us);
        expire->setString(2, lapsed);
        expire->executeUpdate();
        audit::Event expired = event;
        expired.resource = absl::StrCat("agreements/", lapsed);
        expired.details =
            absl::StrCat("expired: its period ended, and agreement ", row.id,
                         " became active");
        audit::Write(c, expired);
      }
    }
    Statement s = PrepareCached(
        c,
        "UPDATE agreements SET state = ?, active_key = ?, update_time_us "
        "= ?, version = ? WHERE id = ?");
    s->setInt(1, row.state);
    SetNullableString(
        *s, 2, active ? absl::StrCat(row.partner_id, ":", row.program_id) : "");
    s->setInt64(3, row.update_time_us);
    s->setInt64(4, row.version);
    s->setString(5, row.id);
    s->executeUpdate();
    audit::Write(c, event);
    return row;
  });
}

// ---- deals
// -------------------------------------------------------------------

absl::StatusOr<DealRecord> MysqlPartnerStore::RegisterDeal(
    const DealRecord& deal, const std::string& fingerprint, int64_t window_us,
    const audit::Event& event) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<DealRecord> {
        bool replay = false;
        RAPPORT_RETURN_IF_ERROR(
            CheckReplay(c, "deals", deal.id, fingerprint, event, &replay));
        if (!replay) {
          RAPPORT_RETURN_IF_ERROR(
              CheckPartnerMay(c, deal.partner_id, "register deals", false));
          DealRecord row = deal;
          // A reference names one deal of its partner (a registration racing
          // this one for it makes the insert meet the unique key, and the
          // transaction runs again, to find it here).
          if (!row.reference.empty()) {
            Statement taken =
                PrepareCached(c,
                              "SELECT id FROM deals WHERE partner_id = ? AND "
                              "reference_key = ?");
            taken->setString(1, row.partner_id);
            taken->setString(2, row.reference);
            Rows found(taken->executeQuery());
            if (found->next()) {
              return absl::AlreadyExistsError(absl::StrCat(
                  "partner ", row.partner_id, " has deal ",
                  TextOrEmpty(*found, 1), " under the reference \"",
                  row.reference, "\" already"));
            }
          }
          // The earliest open registration of another partner for the account
          // (by domain or by name), within the window on either side of this
          // one: a claim stored first keeps its place even when this one says
          // it was registered before it. A registration dated back is also
          // checked against the claims within the window of when it is filed,
          // so that dating it back cannot step around them. The account is
          // locked first and the claims read as committed then, so that two
          // registrations racing for one account, filed or imported, see
          // each other. The read does not lock: its next-key locks would wait
          // for an import's uncommitted rows of the account while the import
          // waits for the account (a deadlock).
          LockDealAccounts(c, {row.domain_key}, {row.name_key});
          row.conflict_with = EarliestClaim(c, row, window_us, std::nullopt);
          Statement s = PrepareCached(
              c,
              "INSERT INTO deals (id, partner_id, reference, account_name, "
              "account_domain, domain_key, name_key, amount, register_time_us, "
              "expected_close_time_us, close_time_us, state, conflict_with, "
              "approved_in_conflict, create_time_us, update_time_us, version, "
              "recorded_by, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
              "?, ?, ?, FALSE, ?, ?, ?, ?, ?)");
          s->setString(1, row.id);
          s->setString(2, row.partner_id);
          s->setString(3, row.reference);
          s->setString(4, row.account_name);
          s->setString(5, row.account_domain);
          s->setString(6, row.domain_key);
          s->setString(7, row.name_key);
          SetDecimal(*s, 8, row.amount);
          s->setInt64(9, row.register_time_us);
          SetOptionalInt64(*s, 10, row.expected_close_time_us);
          SetOptionalInt64(*s, 11, row.close_time_us);
          s->setInt(12, row.state);
          SetNullableString(*s, 13, row.conflict_with);
          s->setInt64(14, row.create_time_us);
          s->setInt64(15, row.update_time_us);
          s->setInt64(16, row.version);
          s->setString(17, row.recorded_by);
          s->setString(18, fingerprint);
          s->executeUpdate();
          audit::Event e = event;
          if (!row.conflict_with.empty()) {
            e.details = absl::StrCat("conflicts with ", row.conflict_with);
          }
          audit::Write(c, e);
        }
        Statement s = PrepareCached(
            c,
            absl::StrCat("SELECT ", kDealColumns, " FROM deals WHERE id = ?"));
        s->setString(1, deal.id);
        Rows rows(s->executeQuery());
        if (!rows->next()) return absl::InternalError("deal not stored");
        return ReadDeal(*rows);
      },
      MysqlPool::Isolation::kReadCommitted);  // for the claims read above
}

absl::StatusOr<DealRecord> MysqlPartnerStore::GetDeal(const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<DealRecord> {
    Statement s = PrepareCached(
        c, absl::StrCat("SELECT ", kDealColumns, " FROM deals WHERE id = ?"));
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next()) return absl::NotFoundError(absl::StrCat("deal ", id));
    return ReadDeal(*rows);
  });
}

absl::StatusOr<std::string> MysqlPartnerStore::OpenClaimBefore(
    const DealRecord& deal, int64_t window_us) {
  // Claims only close once stored, and later ones do not count: no lock.
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    return EarliestClaim(c, deal, window_us, deal.create_time_us);
  });
}

absl::StatusOr<std::vector<DealRecord>> MysqlPartnerStore::ListDeals(
    const std::string& partner_id, int state, const std::string& after,
    int limit) {
  std::vector<std::string> where;
  if (!partner_id.empty()) where.push_back("partner_id = ?");
  if (state != 0) where.push_back("state = ?");
  where.push_back("id > ?");
  const std::string query =
      absl::StrCat("SELECT ", kDealColumns, " FROM deals WHERE ",
                   absl::StrJoin(where, " AND "), " ORDER BY id LIMIT ?");
  return Page<DealRecord>(
      pool_, query,
      [&](sql::PreparedStatement& s) {
        int i = 0;
        if (!partner_id.empty()) s.setString(++i, partner_id);
        if (state != 0) s.setInt(++i, state);
      },
      static_cast<int>(where.size()) - 1, after, limit,
      [](sql::ResultSet& rows) { return ReadDeal(rows); });
}

absl::StatusOr<DealRecord> MysqlPartnerStore::UpdateDeal(
    const std::string& id, const Mutation<DealRecord>& mutate,
    const audit::Event& event, int64_t window_us) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<DealRecord> {
        Statement read = PrepareCached(
            c, absl::StrCat("SELECT ", kDealColumns,
                            " FROM deals WHERE id = ? FOR UPDATE"));
        read->setString(1, id);
        DealRecord row;
        {
          Rows rows(read->executeQuery());
          if (!rows->next())
            return absl::NotFoundError(absl::StrCat("deal ", id));
          RAPPORT_ASSIGN_OR_RETURN(row, ReadDeal(*rows));
        }
        // A claim of another partner approved with force over this one, or
        // over the claim this one is in conflict with (committed: read
        // committed): an admin gave that partner the account. Racing this
        // deal's own approval, a forced one that commits after it is the
        // admin's decision over an approved claim, as if it came after.
        // Only a submitted deal may be approved: the others need not look.
        if (row.state == v1::DEAL_STATE_SUBMITTED) {
          Statement over = PrepareCached(
              c,
              "SELECT id FROM deals WHERE conflict_with IN (?, ?) AND "
              "approved_in_conflict AND state IN (2, 4) AND partner_id <> ? "
              "ORDER BY id LIMIT 1");
          over->setString(1, row.id);
          over->setString(
              2, row.conflict_with.empty() ? row.id : row.conflict_with);
          over->setString(3, row.partner_id);
          Rows rows(over->executeQuery());
          if (rows->next()) row.approved_over_by = Str(*rows, 1);
        }
        const DealRecord before = row;
        RAPPORT_RETURN_IF_ERROR(mutate(row));
        if (row == before) return row;  // nothing to write, nothing to audit
        Statement s = PrepareCached(
            c,
            "UPDATE deals SET state = ?, close_time_us = ?, conflict_with = ?, "
            "approved_in_conflict = ?, update_time_us = ?, version = ? "
            "WHERE id = ?");
        s->setInt(1, row.state);
        SetOptionalInt64(*s, 2, row.close_time_us);
        SetNullableString(*s, 3, row.conflict_with);
        s->setBoolean(4, row.approved_in_conflict);
        s->setInt64(5, row.update_time_us);
        s->setInt64(6, row.version);
        s->setString(7, row.id);
        s->executeUpdate();
        audit::Write(c, event);
        const auto closed = [](int state) {
          return state == v1::DEAL_STATE_REJECTED ||
                 state == v1::DEAL_STATE_LOST ||
                 state == v1::DEAL_STATE_EXPIRED;
        };
        if (closed(row.state) && !closed(before.state)) {
          std::vector<audit::Event> moved;
          MoveConflictsOn(c, {row.id}, window_us, event, &moved);
          audit::Write(c, moved);
        }
        return row;
      },
      // Read committed: the claims MoveConflictsOn reads after locking
      // their accounts are those committed then, not a snapshot taken before
      // the lock (which would miss a registration committed meanwhile).
      MysqlPool::Isolation::kReadCommitted);
}

absl::StatusOr<std::vector<DealConflictRecord>>
MysqlPartnerStore::ListConflicts(const std::string& after, int limit,
                                 bool undecided_only) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<DealConflictRecord>> {
    std::string columns_e, columns_l;
    for (absl::string_view col : absl::StrSplit(kDealColumns, ", ")) {
      absl::StrAppend(&columns_e, columns_e.empty() ? "" : ", ", "e.", col);
      absl::StrAppend(&columns_l, columns_l.empty() ? "" : ", ", "l.", col);
    }
    Statement s = PrepareCached(
        c,
        absl::StrCat(
            "SELECT ", columns_e, ", ", columns_l,
            " FROM deals l JOIN deals e ON e.id = l.conflict_with "
            "WHERE l.conflict_with IS NOT NULL AND l.id > ? ",
            // Waiting: the later one submitted, the earlier
            // still open (submitted, approved) or won.
            undecided_only ? "AND l.state = 1 AND e.state IN (1, 2, 4) " : "",
            "ORDER BY l.id LIMIT ?"));
    s->setString(1, after);
    s->setInt(2, limit);
    Rows rows(s->executeQuery());
    std::vector<DealConflictRecord> out;
    while (rows->next()) {
      DealConflictRecord r;
      RAPPORT_ASSIGN_OR_RETURN(r.earlier, ReadDeal(*rows, 1));
      RAPPORT_ASSIGN_OR_RETURN(r.later, ReadDeal(*rows, 19));
      out.push_back(std::move(r));
    }
    return out;
  });
}

// ---- orders, funds, interactions
// ---------------------------------------------

absl::StatusOr<OrderRecord> MysqlPartnerStore::RecordOrder(
    const OrderRecord& order, const std::string& fingerprint) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<OrderRecord> {
        bool replay = false;
        if (std::optional<std::string> stored =
                StoredFingerprint(c, "orders", order.id);
            stored.has_value()) {
          if (*stored != fingerprint) {
            return RequestIdReused("an order");
          }
          replay = true;
        }
        if (!replay) {
          Statement s = PrepareCached(
              c,
              "INSERT INTO orders (id, partner_id, order_time_us, amount, "
              "description, create_time_us, recorded_by, fingerprint) VALUES "
              "(?, ?, ?, ?, ?, ?, ?, ?)");
          s->setString(1, order.id);
          s->setString(2, order.partner_id);
          s->setInt64(3, order.order_time_us);
          SetDecimal(*s, 4, order.amount);
          s->setString(5, order.description);
          s->setInt64(6, order.create_time_us);
          s->setString(7, order.recorded_by);
          s->setString(8, fingerprint);
          s->executeUpdate();
        }
        Statement s =
            PrepareCached(c, absl::StrCat("SELECT ", kOrderColumns,
                                          " FROM orders WHERE id = ?"));
        s->setString(1, order.id);
        Rows rows(s->executeQuery());
        if (!rows->next()) return absl::InternalError("order not stored");
        return ReadOrder(*rows);
      });
}

absl::StatusOr<std::vector<OrderRecord>> MysqlPartnerStore::ListOrders(
    const std::string& partner_id, const TimeCursor& after, int limit) {
  return TimePage<OrderRecord>(
      pool_, kOrderColumns, "orders", "order_time_us", partner_id, after, limit,
      [](sql::ResultSet& rows) { return ReadOrder(rows); });
}

absl::StatusOr<FundRecord> MysqlPartnerStore::RequestFunds(
    const FundRecord& fund, const std::string& fingerprint,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c)
                                -> absl::StatusOr<FundRecord> {
    bool replay = false;
    RAPPORT_RETURN_IF_ERROR(
        CheckReplay(c, "fund_requests", fund.id, fingerprint, event, &replay));
    if (!replay) {
      RAPPORT_RETURN_IF_ERROR(
          CheckPartnerMay(c, fund.partner_id, "request funds", false));
      Statement s = PrepareCached(
          c,
          "INSERT INTO fund_requests (id, partner_id, activity, "
          "requested_amount, state, create_time_us, update_time_us, version, "
          "fingerprint, requested_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      s->setString(1, fund.id);
      s->setString(2, fund.partner_id);
      s->setString(3, fund.activity);
      SetDecimal(*s, 4, fund.requested_amount);
      s->setInt(5, fund.state);
      s->setInt64(6, fund.create_time_us);
      s->setInt64(7, fund.update_time_us);
      s->setInt64(8, fund.version);
      s->setString(9, fingerprint);
      s->setString(10, fund.requested_by);
      s->executeUpdate();
      audit::Write(c, event);
    }
    Statement s =
        PrepareCached(c, absl::StrCat("SELECT ", kFundColumns,
                                      " FROM fund_requests WHERE id = ?"));
    s->setString(1, fund.id);
    Rows rows(s->executeQuery());
    if (!rows->next()) return absl::InternalError("fund request not stored");
    return ReadFund(*rows);
  });
}

absl::StatusOr<FundRecord> MysqlPartnerStore::GetFundRequest(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<FundRecord> {
    Statement s =
        PrepareCached(c, absl::StrCat("SELECT ", kFundColumns,
                                      " FROM fund_requests WHERE id = ?"));
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next()) {
      return absl::NotFoundError(absl::StrCat("fund request ", id));
    }
    return ReadFund(*rows);
  });
}

absl::StatusOr<std::vector<FundRecord>> MysqlPartnerStore::ListFundRequests(
    const std::string& partner_id, int state, const std::string& after,
    int limit) {
  std::vector<std::string> where;
  if (!partner_id.empty()) where.push_back("partner_id = ?");
  if (state != 0) where.push_back("state = ?");
  where.push_back("id > ?");
  const std::string query =
      absl::StrCat("SELECT ", kFundColumns, " FROM fund_requests WHERE ",
                   absl::StrJoin(where, " AND "), " ORDER BY id LIMIT ?");
  return Page<FundRecord>(
      pool_, query,
      [&](sql::PreparedStatement& s) {
        int i = 0;
        if (!partner_id.empty()) s.setString(++i, partner_id);
        if (state != 0) s.setInt(++i, state);
      },
      static_cast<int>(where.size()) - 1, after, limit,
      [](sql::ResultSet& rows) { return ReadFund(rows); });
}

absl::StatusOr<FundRecord> MysqlPartnerStore::UpdateFundRequest(
    const std::string& id, const Mutation<FundRecord>& mutate,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c)
                                -> absl::StatusOr<FundRecord> {
    // The partner's row first, then the request's: the order in which
    // ending the partner takes them (it rejects the requests not yet
    // claimed), so that the two wait for each other instead of deadlocking.
    // (A request's partner never changes: read without a lock.)
    {
      Statement owner =
          PrepareCached(c, "SELECT partner_id FROM fund_requests WHERE id = ?");
      owner->setString(1, id);
      Rows found(owner->executeQuery());
      if (found->next()) {
        Statement partner = PrepareCached(
            c, "SELECT id FROM partners WHERE id = ? LOCK IN SHARE MODE");
        partner->setString(1, Str(*found, 1));
        Rows(partner->executeQuery());
      }
    }
    Statement read = PrepareCached(
        c, absl::StrCat("SELECT ", kFundColumns,
                        " FROM fund_requests WHERE id = ? FOR UPDATE"));
    read->setString(1, id);
    FundRecord row;
    {
      Rows rows(read->executeQuery());
      if (!rows->next()) {
        return absl::NotFoundError(absl::StrCat("fund request ", id));
      }
      RAPPORT_ASSIGN_OR_RETURN(row, ReadFund(*rows));
    }
    const FundRecord before = row;
    RAPPORT_RETURN_IF_ERROR(mutate(row));
    if (row == before) return row;  // nothing to write, nothing to audit
    // Funds go to a partner that may ask for them: none are approved or
    // claimed for one suspended or ended since (a claim made before is
    // still paid or rejected).
    if (row.state != before.state &&
        (row.state == v1::FUND_REQUEST_STATE_APPROVED ||
         row.state == v1::FUND_REQUEST_STATE_CLAIMED)) {
      RAPPORT_RETURN_IF_ERROR(CheckPartnerMay(
          c, row.partner_id,
          row.state == v1::FUND_REQUEST_STATE_APPROVED ? "have funds approved"
                                                       : "claim funds",
          false));
    }
    Statement s = PrepareCached(
        c,
        "UPDATE fund_requests SET state = ?, claimed_amount = ?, "
        "claim_time_us = ?, paid_time_us = ?, update_time_us = ?, version = "
        "?, claimed_by = ? WHERE id = ?");
    s->setInt(1, row.state);
    SetOptionalDecimal(*s, 2, row.claimed_amount);
    SetOptionalInt64(*s, 3, row.claim_time_us);
    SetOptionalInt64(*s, 4, row.paid_time_us);
    s->setInt64(5, row.update_time_us);
    s->setInt64(6, row.version);
    s->setString(7, row.claimed_by);
    s->setString(8, row.id);
    s->executeUpdate();
    audit::Write(c, event);
    return row;
  });
}

absl::StatusOr<InteractionRecord> MysqlPartnerStore::LogInteraction(
    const InteractionRecord& interaction, const std::string& fingerprint,
    const std::optional<audit::Event>& forced,
    const std::function<absl::Status()>& admit) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<InteractionRecord> {
        if (std::optional<std::string> stored =
                StoredFingerprint(c, "interactions", interaction.id);
            stored.has_value()) {
          if (*stored != fingerprint) {
            return RequestIdReused("an interaction");
          }
        } else {
          if (admit) RAPPORT_RETURN_IF_ERROR(admit());
          Statement s = PrepareCached(
              c,
              "INSERT INTO interactions (id, partner_id, channel, kind, "
              "interaction_time_us, cost, note, recorded_by, fingerprint) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
          s->setString(1, interaction.id);
          s->setString(2, interaction.partner_id);
          s->setInt(3, interaction.channel);
          s->setString(4, interaction.kind);
          s->setInt64(5, interaction.interaction_time_us);
          SetDecimal(*s, 6, interaction.cost);
          s->setString(7, interaction.note);
          s->setString(8, interaction.recorded_by);
          s->setString(9, fingerprint);
          s->executeUpdate();
          if (forced.has_value()) audit::Write(c, *forced);
        }
        Statement s =
            PrepareCached(c, absl::StrCat("SELECT ", kInteractionColumns,
                                          " FROM interactions WHERE id = ?"));
        s->setString(1, interaction.id);
        Rows rows(s->executeQuery());
        if (!rows->next()) return absl::InternalError("interaction not stored");
        return ReadInteraction(*rows);
      });
}

absl::StatusOr<std::vector<InteractionRecord>>
MysqlPartnerStore::ListInteractions(const std::string& partner_id,
                                    const TimeCursor& after, int limit) {
  return TimePage<InteractionRecord>(
      pool_, kInteractionColumns, "interactions", "interaction_time_us",
      partner_id, after, limit,
      [](sql::ResultSet& rows) { return ReadInteraction(rows); });
}

absl::StatusOr<PartnerTotals> MysqlPartnerStore::TotalsOf(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<PartnerTotals> {
    PartnerTotals t;
    Statement deals = PrepareCached(
        c,
        "SELECT COALESCE(SUM(state = 4), 0), COALESCE(SUM(state = 5), 0), "
        "COALESCE(SUM(IF(state = 4, amount, 0)), 0) FROM deals WHERE "
        "partner_id = ?");
    deals->setString(1, id);
    Decimal won_volume;
    {
      Rows rows(deals->executeQuery());
      if (rows->next()) {
        t.deals_won = rows->getInt64(1);
        t.deals_lost = rows->getInt64(2);
        RAPPORT_ASSIGN_OR_RETURN(won_volume, DecimalColumn(*rows, 3));
      }
    }
    Statement orders = PrepareCached(
        c, "SELECT COALESCE(SUM(amount), 0) FROM orders WHERE partner_id = ?");
    orders->setString(1, id);
    Decimal order_volume;
    {
      Rows rows(orders->executeQuery());
      if (rows->next()) {
        RAPPORT_ASSIGN_OR_RETURN(order_volume, DecimalColumn(*rows, 1));
      }
    }
    RAPPORT_ASSIGN_OR_RETURN(t.volume, won_volume.CheckedAdd(order_volume));
    Statement funds = PrepareCached(
        c,
        "SELECT COALESCE(SUM(claimed_amount), 0) FROM fund_requests WHERE "
        "partner_id = ? AND state = 5");
    funds->setString(1, id);
    {
      Rows rows(funds->executeQuery());
      if (rows->next()) {
        RAPPORT_ASSIGN_OR_RETURN(t.funds_paid, DecimalColumn(*rows, 1));
      }
    }
    return t;
  });
}

}  // namespace rapport::partner
