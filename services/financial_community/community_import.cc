#include "services/financial_community/community_import.h"

#include <cppconn/prepared_statement.h>

#include <algorithm>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
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
#include "services/financial_community/community_rules.h"
#include "services/financial_community/community_values.h"
#include "services/financial_community/mysql_community_store.h"

namespace rapport::community {
namespace {

// The member a row names: its id, or "ext:SOURCE:ID".
absl::StatusOr<EntityRef> ParseMemberRef(const std::string& text) {
  return ParseEntityRef(text, "member_ref", "member", "US",
                        {.email = false, .phone = false, .external = true});
}

const imports::EntityTables& MemberTables() {
  static const imports::EntityTables* const tables =
      new imports::EntityTables{.noun = "member",
                                .entities = "members",
                                .external_ids = "member_external_ids",
                                .entity_column = "member_id",
                                .created_scope = "member-ext"};
  return *tables;
}

// Members for unknown external ids, of `kind`, named after the external id.
imports::CreateEntities CreateMembers(v1::MemberKind kind) {
  return [kind](sql::Connection& c, const imports::CreatedEntities& created,
                int64_t now, const std::string& actor) {
    imports::ForChunks(created.size(), [&](size_t begin, size_t n) {
      CachedStatement s = PrepareCached(
          c,
          absl::StrCat("INSERT INTO members (id, display_name, name_key, "
                       "kind, create_time_us, update_time_us, version, "
                       "created_by) VALUES ",
                       RowPlaceholders(n, 8)),
          StatementParameters::kKept);
      for (size_t i = 0; i < n; ++i) {
        const auto& [id, external] = created[begin + i];
        const std::string name =
            absl::StrCat(external.source, ":", external.id);
        int k = 1 + static_cast<int>(i) * 8;
        s->setString(k++, id);
        const std::string display = Utf8Prefix(name, 256);
        s->setString(k++, display);
        s->setString(k++, FirmNameKey(display));  // as from the stored name
        s->setInt(k++, kind);
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
    differentiation::ClearValuesOfReusedIds(c, MemberValueTables(), ids);
  };
}

template <typename Record>
std::unique_ptr<imports::MysqlStore<Record>> StoreFor(
    MysqlPool* pool, IdGenerator* ids, std::function<absl::Time()> clock,
    v1::MemberKind created_kind, std::string table,
    typename imports::MysqlStore<Record>::Insert insert,
    std::vector<std::string> also_stored_in = {}) {
  return std::make_unique<imports::MysqlStore<Record>>(
      pool, ids, std::move(clock), MemberTables(), ParseMemberRef,
      CreateMembers(created_kind), std::move(table), std::move(insert),
      std::move(also_stored_in));
}

template <typename Record>
const std::string& MemberOf(const imports::Row<Record>& r) {
  return r.entity.create ? r.entity.id_to_create : r.entity.id;
}

// A security's code in a file: as ReadSecurity checks one in a request.
absl::StatusOr<std::string> ParseSecurity(const std::string& text) {
  const absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return InvalidField("security", "is required");
  if (s.size() > 32) {
    return InvalidField("security", "is longer than 32 characters");
  }
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return InvalidField("security",
                          "may hold only letters, digits, '.', '-' and '_'");
    }
  }
  return absl::AsciiStrToUpper(s);
}

absl::StatusOr<Decimal> ParsePrice(const std::string& text,
                                   absl::string_view field) {
  RAPPORT_ASSIGN_OR_RETURN(Decimal price,
                           imports::ParseAmountText(text, field, false));
  if (price > Decimal::FromUnits(kMaxPriceUnits)) {
    return InvalidField(field, "is more than 10^12 per share");
  }
  return price;
}

// ---- holdings
// ----------------------------------------------------------------

// `parse`, and a row whose date (its record's end_time_us) is a day still
// to come refused, naming the date.
template <typename Row, typename Record>
auto DatedByNow(absl::StatusOr<imports::Parsed<Record>> (*parse)(const Row&),
                MysqlCommunityImports::Clock clock) {
  return [parse, clock = std::move(clock)](
             const Row& row) -> absl::StatusOr<imports::Parsed<Record>> {
    absl::StatusOr<imports::Parsed<Record>> parsed = parse(row);
    if (parsed.ok()) {
      RAPPORT_RETURN_IF_ERROR(CheckDateNotFuture(
          parsed->record.end_time_us, absl::ToUnixMicros(clock()), "date"));
    }
    return parsed;
  };
}

absl::StatusOr<imports::Parsed<HoldingRecord>> ParseHolding(
    const v1::HoldingRow& row) {
  imports::Parsed<HoldingRecord> out;
  HoldingRecord& h = out.record;
  RAPPORT_RETURN_IF_ERROR(ParseMemberRef(row.member_ref()).status());
  out.ref = row.member_ref();
  RAPPORT_ASSIGN_OR_RETURN(h.security, ParseSecurity(row.security()));
  if (row.date().empty()) return InvalidField("date", "is required");
  RAPPORT_ASSIGN_OR_RETURN(h.end_time_us, ParseDateEnd(row.date(), "date"));
  if (row.shares().empty()) return InvalidField("shares", "is required");
  // Digits only (no '+', no spaces, as a decimal's); a '-' is named.
  absl::string_view digits = row.shares();
  const bool negative = absl::ConsumePrefix(&digits, "-");
  if (digits.empty() ||
      digits.find_first_not_of("0123456789") != absl::string_view::npos) {
    return InvalidField("shares", "must be a whole number of shares");
  }
  if (!absl::SimpleAtoi(digits, &h.shares)) {
    return InvalidField("shares", "is more than 10^15 shares");
  }
  if (negative && h.shares != 0) {
    return InvalidField("shares", "must not be negative");
  }
  if (h.shares > kMaxShares) {
    return InvalidField("shares", "is more than 10^15 shares");
  }
  RAPPORT_ASSIGN_OR_RETURN(h.price, ParsePrice(row.price(), "price"));
  RAPPORT_RETURN_IF_ERROR(CheckPositionValue(h.shares, h.price, "shares"));
  out.content =
      HoldingContent(out.ref, h.security, h.end_time_us, h.shares, h.price);
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertHoldings(
    sql::Connection& c, const std::vector<imports::Row<HoldingRecord>>& rows,
    const std::string& actor, int64_t now) {
  constexpr int kColumns = 9;
  // A row for a member, security and date stored already corrects it, and the
  // stored row keeps its id. The insert leaves such a row as it is (and
  // locked) and answers, row by row, the row each one ended up in: a row
  // whose own id is not the answer met a stored position. If that says what
  // the row says, the row is a duplicate (and nothing is written); otherwise
  // it corrects it, audited with the values and the recorder it replaces.
  // Either way its id goes to holding_requests, so that a retry of its import
  // finds it there instead of undoing a later correction. (The table was made
  // for RecordHolding's request ids; import rows' ids are of another scope.)
  // A row whose id is already stored for another position, or for this one
  // with other content (the same import or request id sent with other
  // content by a concurrent stream), or stored by another batch (its create
  // time is not this batch's: a concurrent run of the same file stored it
  // after this one looked) lost a race: ALREADY_EXISTS, the batch rolls back
  // and runs again, where the retry check refuses the row or finds it a
  // duplicate.
  struct Met {
    const imports::Row<HoldingRecord>* row;
    int64_t shares;
    Decimal price;
    std::string recorded_by;
  };
  std::vector<Met> met;
  absl::Status clash;
  imports::ForChunks(rows.size(), [&](size_t begin, size_t n) {
    if (!clash.ok()) return;
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO holdings (id, member_id, security, "
                     "end_time_us, shares, price, create_time_us, "
                     "recorded_by, fingerprint) VALUES ",
                     RowPlaceholders(n, kColumns),
                     " ON DUPLICATE KEY UPDATE id = id RETURNING id, "
                     "member_id, security, end_time_us, fingerprint, shares, "
                     "price, recorded_by, create_time_us"),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<HoldingRecord>& r = rows[begin + k];
      int i = 1 + static_cast<int>(k) * kColumns;
      s->setString(i++, r.id);
      s->setString(i++, MemberOf(r));
      s->setString(i++, r.record.security);
      s->setInt64(i++, r.record.end_time_us);
      s->setInt64(i++, r.record.shares);
      s->setString(i++, r.record.price.ToString());
      s->setInt64(i++, now);
      s->setString(i++, actor);
      s->setString(i++, r.fingerprint);
    }
    Rows stored(s->executeQuery());
    size_t k = 0;
    for (; stored->next() && k < n; ++k) {
      const imports::Row<HoldingRecord>& r = rows[begin + k];
      const bool own_row = TextOrEmpty(*stored, 1) == r.id;
      if (TextOrEmpty(*stored, 2) != MemberOf(r) ||
          TextOrEmpty(*stored, 3) != r.record.security ||
          stored->getInt64(4) != r.record.end_time_us ||
          (own_row && (TextOrEmpty(*stored, 5) != r.fingerprint ||
                       stored->getInt64(9) != now))) {
        clash = absl::AlreadyExistsError(absl::StrCat(
            "row ", r.number, ": its id is stored for another holding"));
        return;
      }
      if (own_row) continue;
      absl::StatusOr<Decimal> price = DecimalColumn(*stored, 7);
      if (!price.ok()) {
        clash = price.status();
        return;
      }
      met.push_back({&r, stored->getInt64(6), *price, TextOrEmpty(*stored, 8)});
    }
    if (k != n) {
      clash = absl::InternalError("the holdings insert answered too few rows");
    }
  });
  RAPPORT_RETURN_IF_ERROR(clash);
  // In row order, each against the position as the rows before it left it
  // (the insert answered every row of a key with the value stored before
  // the batch).
  std::vector<imports::Reject> unchanged;
  std::vector<audit::Event> audited;
  absl::flat_hash_map<std::string, const Met*> latest;
  std::vector<Met> now_stored;
  now_stored.reserve(met.size());
  for (const Met& m : met) {
    const HoldingRecord& h = m.row->record;
    const std::string key =
        absl::StrCat(MemberOf(*m.row), " ", h.security, " ", h.end_time_us);
    const Met* before = &m;
    if (auto it = latest.find(key); it != latest.end()) before = it->second;
    now_stored.push_back({m.row, h.shares, h.price, actor});
    latest[key] = &now_stored.back();
    if (before->shares == h.shares && before->price == h.price) {
      unchanged.push_back({.row = m.row->number, .unchanged = true});
      continue;
    }
    CachedStatement correct =
        PrepareCached(c,
                      "UPDATE holdings SET shares = ?, price = ?, recorded_by "
                      "= ? WHERE member_id = ? AND security = ? AND "
                      "end_time_us = ?");
    correct->setInt64(1, h.shares);
    correct->setString(2, h.price.ToString());
    correct->setString(3, actor);
    correct->setString(4, MemberOf(*m.row));
    correct->setString(5, h.security);
    correct->setInt64(6, h.end_time_us);
    correct->executeUpdate();
    audited.push_back(
        {.time_us = now,
         .actor = actor,
         .rpc = "ImportHoldings",
         .resource = absl::StrCat("members/", MemberOf(*m.row)),
         .details = absl::StrCat(
             "corrected ", h.security, " ", DateText(h.end_time_us), " by row ",
             m.row->number, ": shares ", before->shares, " -> ", h.shares,
             ", price ", before->price.ToString(), " -> ", h.price.ToString(),
             " (recorded by ", before->recorded_by, ")")});
  }
  audit::Write(c, audited);
  // An id stored there already was written meanwhile by a concurrent stream
  // or RecordHolding under the same request id (the retry check before this
  // batch did not see it): ALREADY_EXISTS, and the batch runs again, where
  // that check finds it.
  imports::ForChunks(met.size(), [&](size_t begin, size_t n) {
    constexpr int kRequestColumns = 6;
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO holding_requests (id, member_id, security, "
                     "end_time_us, fingerprint, create_time_us) VALUES ",
                     RowPlaceholders(n, kRequestColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<HoldingRecord>& r = *met[begin + k].row;
      int i = 1 + static_cast<int>(k) * kRequestColumns;
      s->setString(i++, r.id);
      s->setString(i++, MemberOf(r));
      s->setString(i++, r.record.security);
      s->setInt64(i++, r.record.end_time_us);
      s->setString(i++, r.fingerprint);
      s->setInt64(i++, now);
    }
    s->executeUpdate();
  });
  return unchanged;
}

// ---- engagements
// -------------------------------------------------------------

struct EngagementRow {
  EngagementRecord record;
  // The key of the engagement the row is part of: its request id up to the
  // last '/'; empty: the row is an engagement of its own.
  std::string group;
};

absl::StatusOr<imports::Parsed<EngagementRow>> ParseEngagement(
    const v1::EngagementRow& row) {
  imports::Parsed<EngagementRow> out;
  EngagementRecord& e = out.record.record;
  RAPPORT_RETURN_IF_ERROR(ParseMemberRef(row.member_ref()).status());
  out.ref = row.member_ref();
  RAPPORT_ASSIGN_OR_RETURN(
      e.time_us, imports::ParseTimeText(row.timestamp(), "timestamp"));
  std::optional<v1::EngagementKind> kind = ParseEngagementKind(row.kind());
  if (!kind.has_value()) {
    return InvalidField("kind",
                        "must be one of meeting, call, roadshow, conference, "
                        "earnings_call, report_sent");
  }
  e.kind = *kind;
  RAPPORT_ASSIGN_OR_RETURN(e.cost,
                           imports::ParseAmountText(row.cost(), "cost", false));
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(row.outcome(), "outcome", 256));
  RAPPORT_RETURN_IF_ERROR(CheckNoteText(row.note(), "note", 1024));
  e.outcome = std::string(absl::StripAsciiWhitespace(row.outcome()));
  e.note = row.note();
  const size_t slash = row.request_id().rfind('/');
  if (slash == 0) {
    return InvalidField("request_id",
                        "needs the engagement's key before its last '/' (rows "
                        "of one engagement share it)");
  }
  out.record.group = slash == std::string::npos
                         ? row.request_id()
                         : row.request_id().substr(0, slash);
  out.content = FingerprintContent({out.ref, absl::StrCat(e.time_us),
                                    absl::StrCat(e.kind), e.cost.ToString(),
                                    e.outcome, e.note});
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertEngagements(
    sql::Connection& c, const std::vector<imports::Row<EngagementRow>>& rows,
    const std::string& actor, int64_t) {
  constexpr int kColumns = 10;
  // A member counts once per engagement: a row naming a member its
  // engagement has already (stored, from this import or LogEngagement under
  // the same request id, or earlier in the batch) is refused.
  std::vector<std::string> engagement_ids(rows.size());
  std::set<std::string> grouped;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string& group = rows[i].record.group;
    engagement_ids[i] =
        group.empty() ? rows[i].id : KeyedId("engagement", group);
    if (!group.empty()) grouped.insert(engagement_ids[i]);
  }
  std::set<std::pair<std::string, std::string>> members;
  absl::flat_hash_map<std::string, int> counted;  // members per engagement
  // One engagement happens once: its rows share one time and one kind (those
  // of its first row stored, or kept earlier in the batch).
  struct Shape {
    int64_t time_us;
    int kind;
  };
  absl::flat_hash_map<std::string, Shape> shapes;
  // The ids of the rows stored for those engagements: a row of this batch
  // among them was stored by a concurrent run of the same file after this
  // one looked for it.
  absl::flat_hash_set<std::string> stored_ids;
  // Locking each engagement (LockEngagements), so that two imports (or an
  // import and a LogEngagement) adding to one engagement at once take turns
  // and each checks what the other stored, first rows of a new one
  // included. The batch runs READ COMMITTED, which locks no gaps: under
  // repeatable read, reading the engagements not stored yet locked gaps,
  // and the two streams of one import, inserting unrelated engagements into
  // each other's gaps, deadlocked until the import gave up. Rows without a
  // request id (each an engagement of its own) take no lock.
  LockEngagements(c, std::vector<std::string>(grouped.begin(), grouped.end()));
  SelectInLists(
      c,
      "SELECT engagement_id, member_id, engagement_time_us, kind, id FROM "
      "engagements WHERE engagement_id",
      std::vector<std::string>(grouped.begin(), grouped.end()), 512,
      [&](sql::ResultSet& found) {
        stored_ids.insert(TextOrEmpty(found, 5));
        members.emplace(TextOrEmpty(found, 1), TextOrEmpty(found, 2));
        ++counted[TextOrEmpty(found, 1)];
        shapes.try_emplace(TextOrEmpty(found, 1),
                           Shape{found.getInt64(3), found.getInt(4)});
      },
      // The same row speaks for the engagement every time.
      " ORDER BY id FOR UPDATE");
  std::vector<size_t> kept;
  std::vector<imports::Reject> refused;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].record.group.empty()) {
      if (stored_ids.contains(rows[i].id)) {
        // The batch rolls back and runs again, where the retry check finds
        // the row a duplicate (or refuses other content under its id).
        return absl::AlreadyExistsError(absl::StrCat(
            "row ", rows[i].number, ": stored meanwhile by another run"));
      }
      const EngagementRecord& e = rows[i].record.record;
      if (auto shape = shapes.find(engagement_ids[i]); shape != shapes.end()) {
        const Shape& first = shape->second;
        const bool same_time = first.time_us == e.time_us;
        if (!same_time || first.kind != e.kind) {
          refused.push_back(
              {rows[i].number, same_time ? "kind" : "timestamp",
               absl::StrCat("engagement \"", rows[i].record.group, "\" is a ",
                            EngagementKindName(first.kind), " at ",
                            FormatRfc3339Micros(first.time_us),
                            "; each of its rows says so")});
          continue;
        }
      }
      if (members.contains({engagement_ids[i], MemberOf(rows[i])})) {
        refused.push_back(
            {rows[i].number, "member_ref",
             absl::StrCat("is a member of engagement \"", rows[i].record.group,
                          "\" already (one row per member)")});
        continue;
      }
      if (counted[engagement_ids[i]] >= kMaxEngagementMembers) {
        refused.push_back(
            {rows[i].number, "request_id",
             absl::StrCat("engagement \"", rows[i].record.group, "\" has ",
                          kMaxEngagementMembers,
                          " members already, the most one engagement counts")});
        continue;
      }
      members.emplace(engagement_ids[i], MemberOf(rows[i]));
      ++counted[engagement_ids[i]];
      shapes.try_emplace(engagement_ids[i], Shape{e.time_us, e.kind});
    }
    kept.push_back(i);
  }
  imports::ForChunks(kept.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO engagements (id, engagement_id, member_id, "
                     "kind, engagement_time_us, cost, outcome, note, "
                     "recorded_by, fingerprint) VALUES ",
                     RowPlaceholders(n, kColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<EngagementRow>& r = rows[kept[begin + k]];
      const EngagementRecord& e = r.record.record;
      int i = 1 + static_cast<int>(k) * kColumns;
      s->setString(i++, r.id);
      s->setString(i++, engagement_ids[kept[begin + k]]);
      s->setString(i++, MemberOf(r));
      s->setInt(i++, e.kind);
      s->setInt64(i++, e.time_us);
      s->setString(i++, e.cost.ToString());
      s->setString(i++, e.outcome);
      s->setString(i++, e.note);
      s->setString(i++, actor);
      s->setString(i++, r.fingerprint);
    }
    s->executeUpdate();
  });
  return refused;
}

// ---- coverage
// ----------------------------------------------------------------

absl::StatusOr<imports::Parsed<CoverageRecord>> ParseCoverage(
    const v1::CoverageRow& row) {
  imports::Parsed<CoverageRecord> out;
  CoverageRecord& r = out.record;
  RAPPORT_RETURN_IF_ERROR(ParseMemberRef(row.member_ref()).status());
  out.ref = row.member_ref();
  RAPPORT_ASSIGN_OR_RETURN(r.security, ParseSecurity(row.security()));
  if (row.date().empty()) return InvalidField("date", "is required");
  RAPPORT_ASSIGN_OR_RETURN(r.end_time_us, ParseDateEnd(row.date(), "date"));
  RAPPORT_RETURN_IF_ERROR(CheckOptionalText(row.rating(), "rating", 64));
  std::optional<v1::Rating> rating = ParseRating(row.rating());
  if (!rating.has_value()) {
    return InvalidField("rating",
                        "must be buy, hold, sell or dropped, or an analyst's "
                        "scale such as outperform or underweight");
  }
  r.rating = *rating;
  r.rating_text = std::string(absl::StripAsciiWhitespace(row.rating()));
  if (!row.target_price().empty()) {
    if (r.rating == v1::RATING_DROPPED) {
      return InvalidField("target_price",
                          "must be empty when the rating is dropped");
    }
    RAPPORT_ASSIGN_OR_RETURN(r.target_price,
                             ParsePrice(row.target_price(), "target_price"));
  }
  out.content = FingerprintContent(
      {out.ref, r.security, absl::StrCat(r.end_time_us), r.rating_text,
       r.target_price ? r.target_price->ToString() : "-"});
  return out;
}

absl::StatusOr<std::vector<imports::Reject>> InsertCoverage(
    sql::Connection& c, const std::vector<imports::Row<CoverageRecord>>& rows,
    const std::string& actor, int64_t now) {
  constexpr int kColumns = 10;
  // Coverage is an analyst's: a row naming a stored member of another kind
  // is refused (members the import creates for it are analysts). The kinds
  // stay as read until the batch commits.
  std::set<std::string> named;
  for (const imports::Row<CoverageRecord>& r : rows) {
    if (!r.entity.create) named.insert(r.entity.id);
  }
  const absl::flat_hash_map<std::string, int> kinds =
      IntColumnLocked(c, "members", "kind",
                      std::vector<std::string>(named.begin(), named.end()));
  std::vector<size_t> kept;
  std::vector<imports::Reject> refused;
  for (size_t i = 0; i < rows.size(); ++i) {
    const imports::Row<CoverageRecord>& r = rows[i];
    if (!r.entity.create) {
      auto it = kinds.find(r.entity.id);
      if (it == kinds.end()) {
        // Deleted since it was resolved: the batch resolves its references
        // again, and the row is refused as naming no member.
        return absl::NotFoundError(
            absl::StrCat("member ", r.entity.id, " deleted meanwhile"));
      }
      if (it->second != v1::MEMBER_KIND_ANALYST) {
        const std::string name = KindName(it->second);
        refused.push_back(
            {r.number, "member_ref",
             absl::StrCat(
                 "names ",
                 absl::StrContains("aeiou", name.substr(0, 1)) ? "an " : "a ",
                 name, "; coverage is an analyst's")});
        continue;
      }
    }
    kept.push_back(i);
  }
  imports::ForChunks(kept.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO coverage (id, member_id, security, "
                     "end_time_us, rating, rating_text, target_price, "
                     "create_time_us, recorded_by, fingerprint) VALUES ",
                     RowPlaceholders(n, kColumns)),
        StatementParameters::kKept);
    for (size_t k = 0; k < n; ++k) {
      const imports::Row<CoverageRecord>& r = rows[kept[begin + k]];
      int i = 1 + static_cast<int>(k) * kColumns;
      s->setString(i++, r.id);
      s->setString(i++, MemberOf(r));
      s->setString(i++, r.record.security);
      s->setInt64(i++, r.record.end_time_us);
      s->setInt(i++, r.record.rating);
      s->setString(i++, r.record.rating_text);
      SetNullableString(
          *s, i++,
          r.record.target_price ? r.record.target_price->ToString() : "");
      // The rows of a batch a microsecond apart, in file order (the order
      // the ratings count in is the insert's, by coverage.seq).
      s->setInt64(i++, now + static_cast<int64_t>(begin + k));
      s->setString(i++, actor);
      s->setString(i++, r.fingerprint);
    }
    s->executeUpdate();
  });
  return refused;
}

}  // namespace

std::function<void(const std::vector<std::string>&)>
MysqlCommunityImports::Rescorer() const {
  if (values_ == nullptr) return nullptr;
  return [values = values_](const std::vector<std::string>& ids) {
    values->RescoreSoon(ids);
  };
}

absl::StatusOr<v1::ImportHoldingsResponse>
MysqlCommunityImports::ImportHoldings(
    const std::function<bool(v1::ImportHoldingsRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  auto store =
      StoreFor<HoldingRecord>(pool_, ids_, clock_, v1::MEMBER_KIND_INVESTOR,
                              "holdings", InsertHoldings, {"holding_requests"});
  imports::Importer<v1::ImportHoldingsRequest, v1::HoldingRow, HoldingRecord>
      importer(store.get(),
               {.kind = "holdings",
                .rpc = "ImportHoldings",
                .ref_field = "member_ref",
                // RecordHolding's scope: a row and a call under one request
                // id are one request.
                .request_scope = "holding",
                .clock = clock_},
               // A position at a day still to come is not known yet.
               DatedByNow(ParseHolding, clock_),
               imports::EntitiesOfStored<HoldingRecord>(Rescorer()));
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(std::move(totals),
                             &v1::ImportHoldingsResponse::set_created_members);
}

absl::StatusOr<v1::ImportEngagementsResponse>
MysqlCommunityImports::ImportEngagements(
    const std::function<bool(v1::ImportEngagementsRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  auto store =
      StoreFor<EngagementRow>(pool_, ids_, clock_, v1::MEMBER_KIND_INVESTOR,
                              "engagements", InsertEngagements);
  store->ReadCommitted();  // see InsertEngagements
  imports::Importer<v1::ImportEngagementsRequest, v1::EngagementRow,
                    EngagementRow>
      importer(
          store.get(),
          {.kind = "engagements",
           .rpc = "ImportEngagements",
           .ref_field = "member_ref",
           .clock = clock_},
          // An engagement dated after the import has not happened: refused.
          [clock = clock_](const v1::EngagementRow& row)
              -> absl::StatusOr<imports::Parsed<EngagementRow>> {
            absl::StatusOr<imports::Parsed<EngagementRow>> parsed =
                ParseEngagement(row);
            if (parsed.ok()) {
              RAPPORT_RETURN_IF_ERROR(
                  CheckNotFuture(parsed->record.record.time_us,
                                 absl::ToUnixMicros(clock()), "timestamp"));
            }
            return parsed;
          },
          imports::EntitiesOfStored<EngagementRow>(Rescorer()));
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(
      std::move(totals), &v1::ImportEngagementsResponse::set_created_members);
}

absl::StatusOr<v1::ImportCoverageResponse>
MysqlCommunityImports::ImportCoverage(
    const std::function<bool(v1::ImportCoverageRequest*)>& next,
    const std::string& actor, const std::function<bool()>& cancelled) {
  auto store = StoreFor<CoverageRecord>(
      pool_, ids_, clock_, v1::MEMBER_KIND_ANALYST, "coverage", InsertCoverage);
  imports::Importer<v1::ImportCoverageRequest, v1::CoverageRow, CoverageRecord>
      importer(store.get(),
               {.kind = "coverage",
                .rpc = "ImportCoverage",
                .ref_field = "member_ref",
                .clock = clock_},
               // Nor a rating at a day still to come.
               DatedByNow(ParseCoverage, clock_));
  RAPPORT_ASSIGN_OR_RETURN(imports::Totals totals,
                           importer.Run(next, actor, cancelled));
  return imports::ToResponse(std::move(totals),
                             &v1::ImportCoverageResponse::set_created_members);
}

}  // namespace rapport::community
