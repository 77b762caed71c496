#include "services/financial_community/mysql_community_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <limits>
#include <map>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "common/base/best_of.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/identity.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/requests.h"
#include "common/status.h"
#include "services/financial_community/community_rules.h"
#include "services/financial_community/community_values.h"

namespace rapport::community {
namespace {

using Statement = CachedStatement;

std::string Str(sql::ResultSet& rows, int column) {
  return TextOrEmpty(rows, column);
}

constexpr char kMemberColumns[] =
    "m.id, m.display_name, m.kind, m.member_type, m.organisation, "
    "m.create_time_us, m.update_time_us, m.version, m.created_by";
constexpr int kMemberColumnCount = 9;

MemberRecord ReadMemberColumns(sql::ResultSet& rows) {
  MemberRecord r;
  r.id = Str(rows, 1);
  r.display_name = Str(rows, 2);
  r.kind = rows.getInt(3);
  r.type = rows.getInt(4);
  r.organisation = Str(rows, 5);
  r.create_time_us = rows.getInt64(6);
  r.update_time_us = rows.getInt64(7);
  r.version = rows.getInt64(8);
  r.created_by = Str(rows, 9);
  return r;
}

absl::Status LoadChildren(sql::Connection& c, std::vector<MemberRecord>& out) {
  if (out.empty()) return absl::OkStatus();
  std::vector<std::string> ids;
  for (const MemberRecord& r : out) ids.push_back(r.id);
  RAPPORT_ASSIGN_OR_RETURN(auto children,
                           rapport::LoadChildren(c, MemberChildTables(), ids));
  for (MemberRecord& r : out) {
    EntityChildren& k = children[r.id];
    r.contacts = std::move(k.contacts);
    r.external_ids = std::move(k.external_ids);
    r.attributes = std::move(k.attributes);
  }
  return absl::OkStatus();
}

absl::StatusOr<MemberRecord> ReadMember(sql::Connection& c,
                                        const std::string& id,
                                        bool for_update) {
  Statement s = PrepareCached(c, absl::StrCat("SELECT ", kMemberColumns,
                                              " FROM members m WHERE m.id = ?",
                                              for_update ? " FOR UPDATE" : ""));
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return absl::NotFoundError(absl::StrCat("member ", id));
  std::vector<MemberRecord> out = {ReadMemberColumns(*rows)};
  RAPPORT_RETURN_IF_ERROR(LoadChildren(c, out));
  return std::move(out.front());
}

absl::Status WriteMemberRow(sql::Connection& c, const MemberRecord& m,
                            const std::string& fingerprint, bool insert) {
  Statement s = PrepareCached(
      c, insert ? "INSERT INTO members (display_name, name_key, kind, "
                  "member_type, organisation, create_time_us, update_time_us, "
                  "version, fingerprint, created_by, id) VALUES (?, ?, ?, ?, "
                  "?, ?, ?, ?, ?, ?, ?)"
                : "UPDATE members SET display_name = ?, name_key = ?, kind = "
                  "?, member_type = ?, organisation = ?, create_time_us = ?, "
                  "update_time_us = ?, version = ?, fingerprint = "
                  "COALESCE(?, fingerprint) WHERE id = ?");
  s->setString(1, m.display_name);
  s->setString(2, FirmNameKey(m.display_name));
  s->setInt(3, m.kind);
  s->setInt(4, m.type);
  s->setString(5, m.organisation);
  s->setInt64(6, m.create_time_us);
  s->setInt64(7, m.update_time_us);
  s->setInt64(8, m.version);
  SetNullableString(*s, 9, fingerprint);
  if (insert) s->setString(10, m.created_by);  // kept by updates
  s->setString(insert ? 11 : 10, m.id);
  s->executeUpdate();
  return absl::OkStatus();
}

HoldingRecord ReadHolding(sql::ResultSet& rows, int first,
                          absl::Status* error) {
  HoldingRecord h;
  const int f = first - 1;
  h.id = Str(rows, f + 1);
  h.member_id = Str(rows, f + 2);
  h.security = Str(rows, f + 3);
  h.end_time_us = rows.getInt64(f + 4);
  h.shares = rows.getInt64(f + 5);
  absl::StatusOr<Decimal> price = DecimalColumn(rows, f + 6);
  if (!price.ok()) {
    *error = price.status();
  } else {
    h.price = *price;
  }
  h.recorded_by = Str(rows, f + 7);
  return h;
}

constexpr char kHoldingColumns[] =
    "id, member_id, security, end_time_us, shares, price, recorded_by";

absl::StatusOr<EngagementRecord> ReadEngagement(sql::ResultSet& rows) {
  EngagementRecord e;
  e.id = Str(rows, 1);
  e.engagement_id = Str(rows, 2);
  e.member_id = Str(rows, 3);
  e.kind = rows.getInt(4);
  e.time_us = rows.getInt64(5);
  RAPPORT_ASSIGN_OR_RETURN(e.cost, DecimalColumn(rows, 6));
  e.outcome = Str(rows, 7);
  e.note = Str(rows, 8);
  e.recorded_by = Str(rows, 9);
  return e;
}

constexpr char kEngagementColumns[] =
    "id, engagement_id, member_id, kind, engagement_time_us, cost, outcome, "
    "note, recorded_by";

absl::StatusOr<CoverageRecord> ReadCoverage(sql::ResultSet& rows) {
  CoverageRecord r;
  r.id = Str(rows, 1);
  r.member_id = Str(rows, 2);
  r.security = Str(rows, 3);
  r.end_time_us = rows.getInt64(4);
  r.rating = rows.getInt(5);
  r.rating_text = Str(rows, 6);
  if (!rows.isNull(7)) {
    RAPPORT_ASSIGN_OR_RETURN(r.target_price, DecimalColumn(rows, 7));
  }
  r.recorded_by = Str(rows, 8);
  return r;
}

constexpr char kCoverageColumns[] =
    "id, member_id, security, end_time_us, rating, rating_text, target_price, "
    "recorded_by";

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

// Positions at `at_us`: each member's latest row per security at or before
// then (zero shares included). Statements that use it start with kWholeGroups.
constexpr char kLatestRows[] =
    "SELECT h.member_id, h.security, h.end_time_us, h.shares, h.price, "
    "h.shares * h.price AS v FROM holdings h JOIN (SELECT member_id, "
    "security, MAX(end_time_us) AS t FROM holdings WHERE end_time_us <= ? "
    "AND (? = '' OR security = ?) GROUP BY member_id, security) l ON "
    "l.member_id = h.member_id AND l.security = h.security AND l.t = "
    "h.end_time_us";

// Left to itself, MariaDB 10.11 runs kLatestRows's GROUP BY once per holding
// row it joins ("LATERAL DERIVED", split materialization): 4.4 s for 1,000,000
// rows of 100,000 members. Grouping the whole table once, by the primary key,
// takes 0.7 s.
constexpr char kWholeGroups[] =
    "SET STATEMENT optimizer_switch='split_materialized=off' FOR ";

}  // namespace

const ChildTables& MemberChildTables() {
  static const auto* const kTables =
      new ChildTables{.noun = "member",
                      .entities = "members",
                      .entity_column = "member_id",
                      .contacts = "member_contacts",
                      .external_ids = "member_external_ids",
                      .attributes = "member_attributes"};
  return *kTables;
}

void LockEngagements(sql::Connection& c, std::vector<std::string> ids) {
  LockRows(c, "engagement_locks", std::move(ids));
}

absl::StatusOr<std::map<std::string, Decimal>> MarketValues(
    sql::Connection& c, const std::vector<std::string>& ids, int64_t as_of_us,
    bool page) {
  std::map<std::string, Decimal> out;
  if (ids.empty()) return out;
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());
  constexpr size_t kList = 64;
  if (!page && sorted.size() > kList) {
    // Ids from all over the id space: their range would read nearly every
    // holding, so they go as lists.
    for (size_t begin = 0; begin < sorted.size(); begin += kList) {
      std::vector<std::string> part(
          sorted.begin() + static_cast<std::ptrdiff_t>(begin),
          sorted.begin() + static_cast<std::ptrdiff_t>(
                               std::min(sorted.size(), begin + kList)));
      RAPPORT_ASSIGN_OR_RETURN(auto values,
                               MarketValues(c, part, as_of_us, false));
      out.merge(values);
    }
    return out;
  }
  // Each member's rows in key order (member, security, date): the last row of
  // a security at or before as_of is the one before the security changes.
  // Many ids of one page (a refresh's, in id order) are read as their range,
  // a few as a list.
  const bool range = sorted.size() > kList;
  const size_t slots = range ? 0 : PaddedCount(sorted.size(), kList);
  Statement s = PrepareCached(
      c, absl::StrCat(
             "SELECT member_id, security, shares, price FROM "
             "holdings WHERE ",
             range ? "member_id BETWEEN ? AND ?"
                   : absl::StrCat("member_id IN (", Placeholders(slots), ")"),
             " AND end_time_us <= ? ORDER BY member_id, security, "
             "end_time_us"));
  int next = 1;
  if (range) {
    s->setString(next++, sorted.front());
    s->setString(next++, sorted.back());
  } else {
    BindPadded(*s, 1, sorted, 0, sorted.size(), slots);
    next += static_cast<int>(slots);
  }
  s->setInt64(next, as_of_us);
  Rows rows(s->executeQuery());
  std::string member, security;
  int64_t shares = 0;
  Decimal price;
  auto close = [&]() -> absl::Status {
    if (member.empty()) return absl::OkStatus();
    if (range && !std::binary_search(sorted.begin(), sorted.end(), member)) {
      return absl::OkStatus();
    }
    RAPPORT_ASSIGN_OR_RETURN(
        Decimal value, StoredPositionValue(member, security, shares, price));
    Decimal& sum = out[member];
    absl::StatusOr<Decimal> added = sum.CheckedAdd(value);
    if (!added.ok()) {
      return absl::OutOfRangeError(
          absl::StrCat("the positions of member ", member,
                       " add up past the largest amount"));
    }
    sum = *added;
    return absl::OkStatus();
  };
  while (rows->next()) {
    std::string m = Text(rows->getString(1));
    std::string sec = Text(rows->getString(2));
    if (m != member || sec != security) {
      RAPPORT_RETURN_IF_ERROR(close());
      member = std::move(m);
      security = std::move(sec);
    }
    shares = rows->getInt64(3);
    RAPPORT_ASSIGN_OR_RETURN(price, DecimalColumn(*rows, 4));
  }
  RAPPORT_RETURN_IF_ERROR(close());
  return out;
}

// ---- members
// -------------------------------------------------------------------

absl::StatusOr<MemberRecord> MysqlCommunityStore::CreateMember(
    const MemberRecord& member, const std::string& fingerprint,
    const audit::Event& event, const std::string& identify_email_key) {
  return CreateClaimingEmail(
      *pool_, MemberChildTables(), identify_email_key,
      [&](sql::Connection& c) -> absl::StatusOr<MemberRecord> {
        if (std::optional<std::string> stored =
                StoredFingerprint(c, "members", member.id)) {
          if (*stored != fingerprint || event.request_id.empty()) {
            return RequestIdReused("a member");
          }
          return ReadMember(c, member.id, false);
        }
        RAPPORT_RETURN_IF_ERROR(WriteMemberRow(c, member, fingerprint, true));
        // Made from the request id: a member deleted earlier may have had it.
        if (!event.request_id.empty()) {
          differentiation::ClearValuesOfReusedIds(c, MemberValueTables(),
                                                  {member.id});
        }
        RAPPORT_RETURN_IF_ERROR(rapport::WriteChildren(
            c, MemberChildTables(), member.id,
            {member.contacts, member.external_ids, member.attributes}, false));
        audit::Write(c, event);
        return ReadMember(c, member.id, false);
      });
}

absl::StatusOr<MemberRecord> MysqlCommunityStore::GetMember(
    const std::string& id) {
  // The row and its children in one snapshot (one version of the member).
  return pool_->Transaction(
      [&](sql::Connection& c) { return ReadMember(c, id, false); });
}

absl::StatusOr<bool> MysqlCommunityStore::MemberExists(const std::string& id) {
  return EntityExists(*pool_, "members", id);
}

absl::StatusOr<std::optional<std::string>>
MysqlCommunityStore::MemberFingerprint(const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        return StoredFingerprint(c, "members", id);
      });
}

absl::StatusOr<std::vector<MemberRecord>> MysqlCommunityStore::ListMembers(
    int kind, int tier, const std::string& segment, bool by_value,
    const std::string& after_id, std::optional<int> after_value, int limit) {
  std::vector<std::string> where;
  const bool joined = by_value || tier != 0 || !segment.empty();
  if (kind != 0) where.push_back("m.kind = ?");
  if (tier != 0) where.push_back("s.tier = ?");
  if (!segment.empty()) where.push_back("s.segment = ?");
  if (by_value) {
    if (after_value.has_value()) {
      where.push_back(
          "(s.value_hundredths < ? OR (s.value_hundredths = ? AND "
          "s.member_id > ?))");
    }
  } else if (!after_id.empty()) {
    where.push_back("m.id > ?");
  }
  const std::string query = absl::StrCat(
      "SELECT ", kMemberColumns, by_value ? ", s.value_hundredths" : "",
      // By value, the scores first, in their index's order (value highest
      // first, then id): a page reads only its rows. Not with a kind (a rare
      // one would read every score for a page): the optimizer then starts
      // from its index.
      by_value && kind == 0
          ? " FROM member_scores s STRAIGHT_JOIN members m ON m.id = "
            "s.member_id"
      : joined ? " FROM members m JOIN member_scores s ON s.member_id = m.id"
               : " FROM members m",
      where.empty() ? "" : " WHERE ", absl::StrJoin(where, " AND "),
      by_value ? " ORDER BY s.value_hundredths DESC, s.member_id"
               : " ORDER BY m.id",
      " LIMIT ?");
  // The rows and their children in one snapshot.
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<MemberRecord>> {
        Statement s = PrepareCached(c, query);
        int i = 0;
        if (kind != 0) s->setInt(++i, kind);
        if (tier != 0) s->setInt(++i, tier);
        if (!segment.empty()) s->setString(++i, segment);
        if (by_value) {
          if (after_value.has_value()) {
            s->setInt(++i, *after_value);
            s->setInt(++i, *after_value);
            s->setString(++i, after_id);
          }
        } else if (!after_id.empty()) {
          s->setString(++i, after_id);
        }
        s->setInt(++i, limit);
        Rows rows(s->executeQuery());
        std::vector<MemberRecord> out;
        while (rows->next()) {
          out.push_back(ReadMemberColumns(*rows));
          if (by_value) {
            out.back().listed_value_hundredths =
                rows->getInt(kMemberColumnCount + 1);
          }
        }
        RAPPORT_RETURN_IF_ERROR(LoadChildren(c, out));
        return out;
      });
}

absl::StatusOr<MemberRecord> MysqlCommunityStore::UpdateMember(
    const std::string& id, const Mutation<MemberRecord>& mutate,
    const audit::Event& event) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<MemberRecord> {
        RAPPORT_ASSIGN_OR_RETURN(MemberRecord row, ReadMember(c, id, true));
        const MemberRecord before = row;
        RAPPORT_RETURN_IF_ERROR(mutate(row));
        if (row == before) return row;  // nothing to write, nothing to audit
        RAPPORT_RETURN_IF_ERROR(WriteMemberRow(c, row, "", false));
        RAPPORT_RETURN_IF_ERROR(rapport::WriteChildren(
            c, MemberChildTables(), row.id,
            {row.contacts, row.external_ids, row.attributes}, true));
        audit::Write(c, event);
        return ReadMember(c, id, false);
      });
}

absl::Status MysqlCommunityStore::DeleteMember(
    const std::string& id, bool force,
    const std::function<absl::Status(const MemberRecord&)>& check,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    RAPPORT_ASSIGN_OR_RETURN(MemberRecord row, ReadMember(c, id, true));
    RAPPORT_RETURN_IF_ERROR(check(row));
    // The history that a delete without force keeps: table, and its name
    // in the API.
    static constexpr std::pair<const char*, const char*> kHistory[] = {
        {"holdings", "holdings"},
        {"engagements", "engagements"},
        {"coverage", "coverage"}};
    if (!force) {
      for (const auto& [table, noun] : kHistory) {
        Statement s =
            PrepareCached(c, absl::StrCat("SELECT 1 FROM ", table,
                                          " WHERE member_id = ? LIMIT 1"));
        s->setString(1, id);
        Rows rows(s->executeQuery());
        if (rows->next()) {
          return absl::FailedPreconditionError(absl::StrCat(
              "member ", id, " has ", noun,
              "; delete with force (admin) to delete them with it"));
        }
      }
    }
    for (const char* table :
         {"holdings", "holding_requests", "engagements", "coverage"}) {
      Statement s = PrepareCached(
          c, absl::StrCat("DELETE FROM ", table, " WHERE member_id = ?"));
      s->setString(1, id);
      s->executeUpdate();
    }
    DeleteChildren(c, MemberChildTables(), id);
    differentiation::DeleteEntityValues(c, MemberValueTables(), {id});
    Statement s = PrepareCached(c, "DELETE FROM members WHERE id = ?");
    s->setString(1, id);
    s->executeUpdate();
    audit::Write(c, event);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> MysqlCommunityStore::FindMembers(
    const std::vector<ExternalKey>& external_ids,
    const std::string& email_key) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        return FindByIdentities(c, MemberChildTables(), external_ids,
                                email_key);
      });
}

absl::StatusOr<std::vector<DuplicateMemberGroupRecord>>
MysqlCommunityStore::FindDuplicates(const std::string& after, int limit) {
  return pool_->Run(
      [&](sql::Connection& c)
          -> absl::StatusOr<std::vector<DuplicateMemberGroupRecord>> {
        Statement s = PrepareCached(
            c,
            "SELECT reason, k, GROUP_CONCAT(member_id ORDER BY member_id "
            "SEPARATOR ',') FROM ("
            " SELECT DISTINCT 'contact_email' AS reason, email_key AS k, "
            "  member_id FROM member_contacts WHERE email_key <> ''"
            " UNION ALL"
            " SELECT 'name_organisation', CONCAT(name_key, ' / ', "
            "LOWER(organisation) COLLATE utf8mb4_bin), id FROM members) g"
            " WHERE CONCAT(reason, '\\n', k) > ?"
            " GROUP BY reason, k HAVING COUNT(DISTINCT member_id) > 1"
            " ORDER BY reason, k LIMIT ?");
        s->setString(1, after);
        s->setInt(2, limit);
        Rows rows(s->executeQuery());
        std::vector<DuplicateMemberGroupRecord> out;
        while (rows->next()) {
          DuplicateMemberGroupRecord g;
          g.reason = Str(*rows, 1);
          g.key = Str(*rows, 2);
          g.member_ids = absl::StrSplit(Str(*rows, 3), ',');
          g.member_ids.erase(
              std::unique(g.member_ids.begin(), g.member_ids.end()),
              g.member_ids.end());
          out.push_back(std::move(g));
        }
        return out;
      });
}

// ---- register
// ------------------------------------------------------------------

absl::StatusOr<HoldingRecord> MysqlCommunityStore::RecordHolding(
    const HoldingRecord& h, const std::string& fingerprint, bool keyed,
    const audit::Event& correction) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<HoldingRecord> {
        // The position a holding (or its request) names, as it stands.
        const auto read =
            [&c](const std::string& member, const std::string& security,
                 int64_t end_time_us,
                 bool lock) -> absl::StatusOr<std::optional<HoldingRecord>> {
          Statement s = PrepareCached(
              c, absl::StrCat("SELECT ", kHoldingColumns,
                              " FROM holdings WHERE member_id = ? AND "
                              "security = ? AND end_time_us = ?",
                              lock ? " FOR UPDATE" : ""));
          s->setString(1, member);
          s->setString(2, security);
          s->setInt64(3, end_time_us);
          Rows rows(s->executeQuery());
          if (!rows->next()) return std::optional<HoldingRecord>();
          absl::Status error;
          HoldingRecord out = ReadHolding(*rows, 1, &error);
          RAPPORT_RETURN_IF_ERROR(error);
          return std::optional<HoldingRecord>(std::move(out));
        };
        if (keyed) {
          Statement s = PrepareCached(
              c,
              "SELECT fingerprint, member_id, security, end_time_us FROM "
              "holding_requests WHERE id = ?");
          s->setString(1, h.id);
          Rows rows(s->executeQuery());
          if (rows->next()) {
            if (Str(*rows, 1) != fingerprint)
              return RequestIdReused("a holding");
            RAPPORT_ASSIGN_OR_RETURN(
                std::optional<HoldingRecord> now,
                read(Str(*rows, 2), Str(*rows, 3), rows->getInt64(4), false));
            if (!now.has_value()) {
              return absl::NotFoundError(
                  absl::StrCat("the holding request_id ", correction.request_id,
                               " recorded is gone (its member was deleted)"));
            }
            return *std::move(now);
          }
          // Recorded before request ids were kept: the holding's own id.
          if (std::optional<std::string> stored =
                  StoredFingerprint(c, "holdings", h.id)) {
            if (*stored != fingerprint) return RequestIdReused("a holding");
            RAPPORT_ASSIGN_OR_RETURN(
                std::optional<HoldingRecord> now,
                read(h.member_id, h.security, h.end_time_us, false));
            if (now.has_value()) return *std::move(now);
          }
        }
        RAPPORT_ASSIGN_OR_RETURN(
            std::optional<HoldingRecord> before,
            read(h.member_id, h.security, h.end_time_us, true));
        // The position as it is recorded already (sent again without a
        // request id, or under a new one): nothing to correct or audit.
        const bool unchanged = before.has_value() &&
                               before->shares == h.shares &&
                               before->price == h.price;
        if (!unchanged) {
          Statement s = PrepareCached(
              c,
              "INSERT INTO holdings (id, member_id, security, end_time_us, "
              "shares, price, create_time_us, recorded_by, fingerprint) "
              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE "
              "shares = VALUES(shares), price = VALUES(price), recorded_by = "
              "VALUES(recorded_by)");
          s->setString(1, h.id);
          s->setString(2, h.member_id);
          s->setString(3, h.security);
          s->setInt64(4, h.end_time_us);
          s->setInt64(5, h.shares);
          s->setString(6, h.price.ToString());
          s->setInt64(7, h.create_time_us);
          s->setString(8, h.recorded_by);
          s->setString(9, fingerprint);
          s->executeUpdate();
        }
        if (keyed) {
          Statement r = PrepareCached(
              c,
              "INSERT INTO holding_requests (id, member_id, security, "
              "end_time_us, fingerprint, create_time_us) VALUES (?, ?, ?, ?, "
              "?, ?)");
          r->setString(1, h.id);
          r->setString(2, h.member_id);
          r->setString(3, h.security);
          r->setInt64(4, h.end_time_us);
          r->setString(5, fingerprint);
          r->setInt64(6, h.create_time_us);
          r->executeUpdate();
        }
        if (unchanged) return *std::move(before);
        if (before.has_value()) {
          audit::Event e = correction;
          e.details = absl::StrCat(
              "corrected ", h.security, " ", DateText(before->end_time_us),
              ": shares ", before->shares, " -> ", h.shares, ", price ",
              before->price.ToString(), " -> ", h.price.ToString(),
              ", recorded by ", before->recorded_by);
          audit::Write(c, e);
        }
        RAPPORT_ASSIGN_OR_RETURN(
            std::optional<HoldingRecord> out,
            read(h.member_id, h.security, h.end_time_us, false));
        if (!out.has_value()) return absl::InternalError("holding not stored");
        return *std::move(out);
      });
}

absl::StatusOr<CommunityStore::RegisterPage> MysqlCommunityStore::Register(
    int64_t as_of_us, const std::string& security,
    const std::optional<PositionKey>& after, int limit) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<RegisterPage> {
    RegisterPage page;
    // The page and the totals in one pass over the positions: the totals ride
    // on every row of the page (window sums over all positions), and each
    // holder's first position counts it once. Only the page's rows meet
    // `members`. A page starts after the last position of the one before it
    // (the order is total), so that positions recorded or corrected between
    // pages shift nothing: none is shown twice or passed over for that.
    bool totals_read = false;
    {
      Statement s = PrepareCached(
          c,
          absl::StrCat(
              kWholeGroups,
              "SELECT p.member_id, m.display_name, p.security, "
              "p.end_time_us, p.shares, p.price, p.v, p.total, p.holders FROM "
              "(SELECT w.* FROM (SELECT q.*, SUM(q.v) OVER () AS total, "
              "SUM(q.first) OVER () AS holders FROM (SELECT x.*, ROW_NUMBER() "
              "OVER (PARTITION BY x.member_id) = 1 AS first FROM (",
              kLatestRows,
              ") x WHERE x.shares > 0) q) w WHERE ? OR w.v < CAST(? AS "
              "DECIMAL(65, 9)) OR (w.v = CAST(? AS DECIMAL(65, 9)) AND "
              "(w.member_id > ? OR (w.member_id = ? AND w.security > ?))) "
              "ORDER BY w.v DESC, w.member_id, w.security LIMIT ?) p JOIN "
              "members m ON m.id = p.member_id ORDER BY p.v DESC, "
              "p.member_id, p.security"));
      s->setInt64(1, as_of_us);
      s->setString(2, security);
      s->setString(3, security);
      s->setBoolean(4, !after.has_value());
      const std::string value = after ? after->value.ToString() : "0";
      s->setString(5, value);
      s->setString(6, value);
      s->setString(7, after ? after->member_id : "");
      s->setString(8, after ? after->member_id : "");
      s->setString(9, after ? after->security : "");
      s->setInt(10, limit);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        PositionRecord p;
        p.member_id = Str(*rows, 1);
        p.display_name = Str(*rows, 2);
        p.security = Str(*rows, 3);
        p.end_time_us = rows->getInt64(4);
        p.shares = rows->getInt64(5);
        RAPPORT_ASSIGN_OR_RETURN(p.price, DecimalColumn(*rows, 6));
        RAPPORT_ASSIGN_OR_RETURN(p.market_value, DecimalColumn(*rows, 7));
        if (!totals_read) {
          RAPPORT_ASSIGN_OR_RETURN(page.total, DecimalColumn(*rows, 8));
          page.holders = rows->getInt64(9);
          totals_read = true;
        }
        page.positions.push_back(std::move(p));
      }
    }
    if (totals_read || !after.has_value()) {
      return page;  // none at all: zero totals
    }
    // A page past the end: the totals on their own.
    Statement s = PrepareCached(
        c, absl::StrCat(kWholeGroups,
                        "SELECT COALESCE(SUM(p.v), 0), COUNT(DISTINCT "
                        "p.member_id) FROM (",
                        kLatestRows, ") p WHERE p.shares > 0"));
    s->setInt64(1, as_of_us);
    s->setString(2, security);
    s->setString(3, security);
    Rows rows(s->executeQuery());
    if (rows->next()) {
      RAPPORT_ASSIGN_OR_RETURN(page.total, DecimalColumn(*rows, 1));
      page.holders = rows->getInt64(2);
    }
    return page;
  });
}

absl::StatusOr<std::vector<HoldingRecord>> MysqlCommunityStore::PositionHistory(
    const std::string& member_id, const std::string& security,
    const std::string& after_security, int64_t after_time_us, int limit) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<HoldingRecord>> {
        // Compared as a pair, in the order of the key: a text made of both
        // would sort "BRK:..." after "BRK.B:...".
        Statement s = PrepareCached(
            c, absl::StrCat("SELECT ", kHoldingColumns,
                            " FROM holdings WHERE member_id = ? AND (? = '' OR "
                            "security = ?) AND (? = '' OR security > ? OR "
                            "(security = ? AND end_time_us > ?)) ORDER BY "
                            "security, end_time_us LIMIT ?"));
        s->setString(1, member_id);
        s->setString(2, security);
        s->setString(3, security);
        s->setString(4, after_security);
        s->setString(5, after_security);
        s->setString(6, after_security);
        s->setInt64(7, after_time_us);
        s->setInt(8, limit);
        Rows rows(s->executeQuery());
        std::vector<HoldingRecord> out;
        absl::Status error;
        while (rows->next()) out.push_back(ReadHolding(*rows, 1, &error));
        RAPPORT_RETURN_IF_ERROR(error);
        return out;
      });
}

absl::StatusOr<std::vector<PositionChangeRecord>>
MysqlCommunityStore::PositionChanges(int64_t from_us, int64_t to_us,
                                     const std::string& security,
                                     const std::optional<PositionKey>& after,
                                     int limit) {
  // The positions at each time, by member and security, kept small: the
  // register has hundreds of thousands of them.
  struct Position {
    std::string member_id;
    std::string security;
    int64_t end_time_us = 0;
    int64_t shares = 0;
    Decimal price;
    Decimal value;
  };
  // A changed position: indexes into the two lists (-1: held none then).
  struct Change {
    Decimal traded;
    int from = -1;
    int to = -1;
  };
  std::vector<Position> at[2];
  // Both times from one snapshot (a read-only transaction): a row written
  // between the two reads cannot show as a change.
  absl::Status read =
      pool_->Transaction([&](sql::Connection& c) -> absl::Status {
        at[0].clear();  // a transaction tried again starts afresh
        at[1].clear();
        for (int side = 0; side < 2; ++side) {
          Statement s = PrepareCached(
              c, absl::StrCat(kWholeGroups,
                              "SELECT p.member_id, p.security, p.end_time_us, "
                              "p.shares, p.price, p.v FROM (",
                              kLatestRows,
                              ") p ORDER BY p.member_id, p.security"));
          s->setInt64(1, side == 0 ? from_us : to_us);
          s->setString(2, security);
          s->setString(3, security);
          Rows rows(s->executeQuery());
          while (rows->next()) {
            Position p;
            p.member_id = Str(*rows, 1);
            p.security = Str(*rows, 2);
            p.end_time_us = rows->getInt64(3);
            p.shares = rows->getInt64(4);
            RAPPORT_ASSIGN_OR_RETURN(p.price, DecimalColumn(*rows, 5));
            RAPPORT_ASSIGN_OR_RETURN(p.value, DecimalColumn(*rows, 6));
            at[side].push_back(std::move(p));
          }
        }
        return absl::OkStatus();
      });
  RAPPORT_RETURN_IF_ERROR(read);
  // Both lists merged by (member, security); only the first `limit` changes
  // after `after` in the answer's order are kept.
  const auto key = [&](int side, int i) {
    return std::tie(at[side][i].member_id, at[side][i].security);
  };
  const auto name_of = [&](const Change& c) {
    return c.to >= 0 ? key(1, c.to) : key(0, c.from);
  };
  const auto before = [&](const Change& a, const Change& b) {
    if (a.traded != b.traded) return a.traded > b.traded;
    return name_of(a) < name_of(b);
  };
  BestOf<Change, decltype(before)> best(static_cast<size_t>(limit), before);
  const int n0 = static_cast<int>(at[0].size());
  const int n1 = static_cast<int>(at[1].size());
  for (int i = 0, j = 0; i < n0 || j < n1;) {
    Change c;
    if (j == n1 || (i < n0 && key(0, i) < key(1, j))) {
      c.from = i++;
    } else if (i == n0 || key(1, j) < key(0, i)) {
      c.to = j++;
    } else {
      c.from = i++;
      c.to = j++;
    }
    const int64_t shares_from = c.from < 0 ? 0 : at[0][c.from].shares;
    const int64_t shares_to = c.to < 0 ? 0 : at[1][c.to].shares;
    if (shares_from == shares_to) continue;
    // Both are at least 0: the difference fits.
    const int64_t traded_shares = shares_to > shares_from
                                      ? shares_to - shares_from
                                      : shares_from - shares_to;
    // At the price in force at `to`; a sell-out reported at a price of 0
    // (as ListAtRiskHolders reads it) at the price in force at `from`.
    const bool unpriced_exit = c.to >= 0 && c.from >= 0 && shares_to == 0 &&
                               at[1][c.to].price.is_zero();
    const Position& priced =
        c.to >= 0 && !unpriced_exit ? at[1][c.to] : at[0][c.from];
    absl::StatusOr<Decimal> traded = PositionValue(traded_shares, priced.price);
    if (!traded.ok()) {
      return absl::OutOfRangeError(absl::StrCat(
          "the change of member ", priced.member_id, "'s position in ",
          priced.security, " is past what an amount can hold"));
    }
    c.traded = *traded;
    if (after.has_value() &&
        (c.traded > after->value ||
         (c.traded == after->value &&
          name_of(c) <= std::tie(after->member_id, after->security)))) {
      continue;  // on an earlier page
    }
    best.Add(c);
  }
  const std::vector<Change> kept = std::move(best).Take();
  std::vector<PositionChangeRecord> out;
  std::vector<std::string> ids;
  for (size_t k = 0; k < kept.size(); ++k) {
    PositionChangeRecord change;
    change.traded_value = kept[k].traded;
    for (int side = 0; side < 2; ++side) {
      const int i = side == 0 ? kept[k].from : kept[k].to;
      PositionRecord& p = side == 0 ? change.from : change.to;
      const Position& named =
          kept[k].to >= 0 ? at[1][kept[k].to] : at[0][kept[k].from];
      p.member_id = named.member_id;
      p.security = named.security;
      if (i < 0) continue;  // held none then
      const Position& held = at[side][i];
      p.end_time_us = held.end_time_us;
      p.shares = held.shares;
      p.price = held.price;
      p.market_value = held.value;
    }
    ids.push_back(change.from.member_id);
    out.push_back(std::move(change));
  }
  RAPPORT_ASSIGN_OR_RETURN(auto names, NamesOf(ids));
  for (PositionChangeRecord& change : out) {
    change.from.display_name = change.to.display_name =
        names[change.from.member_id];
  }
  return out;
}

// ---- engagements and coverage
// ----------------------------------------------------

absl::StatusOr<std::vector<EngagementRecord>>
MysqlCommunityStore::LogEngagement(const std::vector<EngagementRecord>& rows,
                                   const std::string& fingerprint) {
  return pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<EngagementRecord>> {
        if (std::optional<std::string> stored =
                StoredFingerprint(c, "engagements", rows.front().id)) {
          if (*stored != fingerprint) return RequestIdReused("an engagement");
        } else {
          // An engagement counts once for each member: one that an import
          // (or another call) stored under the same request id already
          // holds is not stored again. Import rows under the request id
          // join an engagement, but another call's engagement is its own:
          // a call naming other members under its request id is refused.
          // Locking: a concurrent call under the request id waits for this
          // one (or deadlocks and is retried), then sees its rows, which
          // the plain read above could not (they were not committed when
          // this transaction's snapshot was taken): a twin of this call
          // (same fingerprint) is answered from them.
          LockEngagements(c, {rows.front().engagement_id});
          Statement held = PrepareCached(
              c,
              "SELECT member_id, id, kind, engagement_time_us, fingerprint "
              "FROM engagements WHERE engagement_id = ? FOR UPDATE");
          held->setString(1, rows.front().engagement_id);
          Rows members(held->executeQuery());
          absl::flat_hash_set<std::string> holds;
          bool twin = false;
          while (members->next()) {
            const std::string member = Str(*members, 1);
            if (Str(*members, 2) ==
                LoggedEngagementRowId(rows.front().engagement_id, member)) {
              if (Str(*members, 5) != fingerprint) {
                return RequestIdReused("an engagement");
              }
              twin = true;
              continue;
            }
            // One engagement has one time and kind, those of its rows
            // stored already (by an import under this request id).
            if (members->getInt(3) != rows.front().kind ||
                members->getInt64(4) != rows.front().time_us) {
              return InvalidField(
                  "request_id",
                  absl::StrCat("names a ",
                               EngagementKindName(members->getInt(3)), " at ",
                               FormatRfc3339Micros(members->getInt64(4)),
                               " (stored by an import); another engagement "
                               "needs a request_id of its own"));
            }
            holds.insert(member);
          }
          // A twin's rows are this call's own: nothing to check or store.
          const absl::Span<const EngagementRecord> to_store =
              twin ? absl::Span<const EngagementRecord>()
                   : absl::MakeConstSpan(rows);
          for (const EngagementRecord& e : to_store) {
            if (holds.contains(e.member_id)) {
              return InvalidField(
                  "request_id",
                  absl::StrCat(
                      "names an engagement that already counts member ",
                      e.member_id,
                      " (stored by an import or another call); a retry of "
                      "that request is answered from what it stored, another "
                      "engagement needs a request_id of its own"));
            }
          }
          if (holds.size() + to_store.size() >
              static_cast<size_t>(kMaxEngagementMembers)) {
            return InvalidField(
                "member_ids",
                absl::StrCat("would make the engagement under this request "
                             "id count ",
                             holds.size() + to_store.size(),
                             " members (at most ", kMaxEngagementMembers,
                             "; it counts ", holds.size(), " already)"));
          }
          for (const EngagementRecord& e : to_store) {
            Statement s = PrepareCached(
                c,
                "INSERT INTO engagements (id, engagement_id, member_id, kind, "
                "engagement_time_us, cost, outcome, note, recorded_by, "
                "fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            s->setString(1, e.id);
            s->setString(2, e.engagement_id);
            s->setString(3, e.member_id);
            s->setInt(4, e.kind);
            s->setInt64(5, e.time_us);
            s->setString(6, e.cost.ToString());
            s->setString(7, e.outcome);
            s->setString(8, e.note);
            s->setString(9, e.recorded_by);
            s->setString(10, fingerprint);
            s->executeUpdate();
          }
        }
        // Read locking, so that a twin's rows, committed after this
        // transaction's snapshot, are seen.
        std::vector<EngagementRecord> out;
        for (const EngagementRecord& e : rows) {
          Statement s = PrepareCached(
              c, absl::StrCat("SELECT ", kEngagementColumns,
                              " FROM engagements WHERE id = ? LOCK IN SHARE "
                              "MODE"));
          s->setString(1, e.id);
          Rows r(s->executeQuery());
          if (!r->next()) return absl::InternalError("engagement not stored");
          RAPPORT_ASSIGN_OR_RETURN(EngagementRecord stored, ReadEngagement(*r));
          out.push_back(std::move(stored));
        }
        return out;
      },
      // Adders to one engagement take turns on its lock row
      // (LockEngagements), so no gap of engagements needs locking: read
      // committed, like the imports that add to engagements too.
      MysqlPool::Isolation::kReadCommitted);
}

absl::StatusOr<std::vector<EngagementRecord>>
MysqlCommunityStore::ListEngagements(const std::string& member_id,
                                     const TimeCursor& after, int limit) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<EngagementRecord>> {
        // The first page starts before any time there is.
        const auto [time_us, id] = after.value_or(
            std::make_pair(std::numeric_limits<int64_t>::min(), std::string()));
        // (time, id) > (t, i), spelled so that the time bounds an index
        // range (MariaDB takes no range from a row comparison).
        Statement s = PrepareCached(
            c, absl::StrCat("SELECT ", kEngagementColumns,
                            " FROM engagements WHERE member_id = ? AND "
                            "engagement_time_us >= ? AND "
                            "(engagement_time_us > ? OR id > ?) "
                            "ORDER BY engagement_time_us, id LIMIT ?"));
        s->setString(1, member_id);
        s->setInt64(2, time_us);
        s->setInt64(3, time_us);
        s->setString(4, id);
        s->setInt(5, limit);
        Rows rows(s->executeQuery());
        return ReadRecords<EngagementRecord>(
            *rows, [](sql::ResultSet& r) { return ReadEngagement(r); });
      });
}

absl::StatusOr<CoverageRecord> MysqlCommunityStore::RecordCoverage(
    const CoverageRecord& r, const std::string& fingerprint) {
  return pool_->Transaction([&](sql::Connection& c)
                                -> absl::StatusOr<CoverageRecord> {
    if (std::optional<std::string> stored =
            StoredFingerprint(c, "coverage", r.id)) {
      if (*stored != fingerprint) return RequestIdReused("a rating");
    } else {
      // The member is an analyst until this commits.
      Statement kind = PrepareCached(
          c, "SELECT kind FROM members WHERE id = ? LOCK IN SHARE MODE");
      kind->setString(1, r.member_id);
      Rows member(kind->executeQuery());
      if (!member->next()) {
        return absl::NotFoundError(
            absl::StrCat("member ", r.member_id, " not found"));
      }
      if (const int kind = member->getInt(1); kind != v1::MEMBER_KIND_ANALYST) {
        const std::string name = KindName(kind);
        return absl::FailedPreconditionError(absl::StrCat(
            "member ", r.member_id, " is ",
            !name.empty() && absl::StrContains("aeiou", name.substr(0, 1))
                ? "an "
                : "a ",
            name,
            "; coverage is an analyst's (record the analyst as a member "
            "of kind analyst)"));
      }
      Statement s = PrepareCached(
          c,
          "INSERT INTO coverage (id, member_id, security, end_time_us, "
          "rating, rating_text, target_price, create_time_us, "
          "recorded_by, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, "
          "?)");
      s->setString(1, r.id);
      s->setString(2, r.member_id);
      s->setString(3, r.security);
      s->setInt64(4, r.end_time_us);
      s->setInt(5, r.rating);
      s->setString(6, r.rating_text);
      SetNullableString(*s, 7,
                        r.target_price ? r.target_price->ToString() : "");
      s->setInt64(8, r.create_time_us);
      s->setString(9, r.recorded_by);
      s->setString(10, fingerprint);
      s->executeUpdate();
    }
    Statement s = PrepareCached(c, absl::StrCat("SELECT ", kCoverageColumns,
                                                " FROM coverage WHERE id = ?"));
    s->setString(1, r.id);
    Rows rows(s->executeQuery());
    if (!rows->next()) return absl::InternalError("rating not stored");
    return ReadCoverage(*rows);
  });
}

absl::StatusOr<std::vector<CoverageRecord>> MysqlCommunityStore::CoverageOf(
    const std::string& security, int64_t as_of_us) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<CoverageRecord>> {
        Statement s = PrepareCached(
            c, absl::StrCat("SELECT ", kCoverageColumns,
                            " FROM coverage WHERE security = ? AND "
                            "end_time_us <= ? AND member_id IN (SELECT id "
                            "FROM members WHERE kind = ?) ORDER BY member_id, "
                            "end_time_us, seq"));
        s->setString(1, security);
        s->setInt64(2, as_of_us);
        s->setInt(3, v1::MEMBER_KIND_ANALYST);
        Rows rows(s->executeQuery());
        std::vector<CoverageRecord> out;
        while (rows->next()) {
          RAPPORT_ASSIGN_OR_RETURN(CoverageRecord r, ReadCoverage(*rows));
          out.push_back(std::move(r));
        }
        return out;
      });
}

// ---- targeting
// ----------------------------------------------------------------

absl::Status MysqlCommunityStore::VisitHoldingsViews(
    int64_t as_of_us, const HoldingsVisitor& visit) {
  // Members in chunks of ids (lower, upper]; ids are ASCII letters and digits,
  // so "~" is above every one of them and closes the last chunk.
  const std::string kAfterAll = "~";
  std::string lower;
  for (;;) {
    std::string upper = kAfterAll;
    std::map<std::string, MemberHoldingsView> views;
    // A chunk's three reads from one snapshot (a read-only transaction): a
    // holding or an engagement written between them cannot give a member a
    // view that never was.
    absl::Status read = pool_->Transaction([&](sql::Connection& c)
                                               -> absl::Status {
      {
        Statement s = PrepareCached(
            c,
            "SELECT id FROM members WHERE id > ? ORDER BY id LIMIT 1 OFFSET ?");
        s->setString(1, lower);
        s->setInt(2, std::max(1, visit_chunk_) - 1);
        Rows rows(s->executeQuery());
        if (rows->next()) upper = Str(*rows, 1);
      }
      {
        // Each security's last two rows at or before as_of, by member.
        Statement s = PrepareCached(
            c,
            "SELECT r.member_id, r.security, r.end_time_us, r.shares, "
            "r.price, r.n, m.display_name, m.kind FROM (SELECT member_id, "
            "security, end_time_us, shares, price, ROW_NUMBER() OVER "
            "(PARTITION BY member_id, security ORDER BY end_time_us DESC) AS "
            "n FROM holdings WHERE member_id > ? AND member_id <= ? AND "
            "end_time_us <= ?) r JOIN members m ON m.id = r.member_id WHERE "
            "r.n <= 2 ORDER BY r.member_id, r.security, r.n");
        s->setString(1, lower);
        s->setString(2, upper);
        s->setInt64(3, as_of_us);
        Rows rows(s->executeQuery());
        while (rows->next()) {
          HoldingRecord h;
          h.member_id = Str(*rows, 1);
          h.security = Str(*rows, 2);
          h.end_time_us = rows->getInt64(3);
          h.shares = rows->getInt64(4);
          RAPPORT_ASSIGN_OR_RETURN(h.price, DecimalColumn(*rows, 5));
          const int n = rows->getInt(6);
          MemberHoldingsView& v = views[h.member_id];
          if (v.member_id.empty()) {
            v.member_id = h.member_id;
            v.display_name = Str(*rows, 7);
            v.kind = rows->getInt(8);
          }
          h.member_id.clear();  // the view has it
          if (n == 1) {
            v.securities.push_back({h.security, std::move(h), std::nullopt});
          } else if (!v.securities.empty() &&
                     v.securities.back().security == h.security) {
            v.securities.back().previous = std::move(h);
          }
        }
      }
      Statement s = PrepareCached(
          c,
          "SELECT e.member_id, MAX(e.engagement_time_us), m.display_name, "
          "m.kind FROM engagements e JOIN members m ON m.id = e.member_id "
          "WHERE e.member_id > ? AND e.member_id <= ? AND "
          "e.engagement_time_us <= ? GROUP BY e.member_id");
      s->setString(1, lower);
      s->setString(2, upper);
      s->setInt64(3, as_of_us);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        MemberHoldingsView& v = views[Str(*rows, 1)];
        v.last_engagement_us = rows->getInt64(2);
        if (v.member_id.empty()) {
          v.member_id = Str(*rows, 1);
          v.display_name = Str(*rows, 3);
          v.kind = rows->getInt(4);
        }
      }
      return absl::OkStatus();
    });
    RAPPORT_RETURN_IF_ERROR(read);
    for (const auto& [id, view] : views) RAPPORT_RETURN_IF_ERROR(visit(view));
    if (upper == kAfterAll) return absl::OkStatus();
    lower = std::move(upper);
  }
}

absl::StatusOr<std::map<std::string, std::string>> MysqlCommunityStore::NamesOf(
    const std::vector<std::string>& ids) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::map<std::string, std::string>> {
    std::map<std::string, std::string> out;
    SelectInLists(
        c, "SELECT id, display_name FROM members WHERE id", ids, 256,
        [&](sql::ResultSet& rows) { out[Str(rows, 1)] = Str(rows, 2); });
    return out;
  });
}

}  // namespace rapport::community
