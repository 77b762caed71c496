#include "common/import/mysql_import.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/base/timestamp.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/proto_convert.h"
#include "common/status.h"

namespace rapport {
const std::vector<Migration>& ImportMigrationFiles();
}

namespace rapport::imports {

std::vector<Migration> Migrations() { return ImportMigrationFiles(); }

absl::StatusOr<std::string> ImportPrefix(MysqlPool& pool, IdGenerator& ids,
                                         const std::string& kind,
                                         const std::string& import_id,
                                         int64_t now_us) {
  const std::string fresh = ids.Next().substr(0, kRowIdPrefixSize);
  return pool.Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    {
      CachedStatement s = PrepareCached(
          c,
          "INSERT IGNORE INTO import_prefixes (kind, import_id, prefix, "
          "create_time_us) VALUES (?, ?, ?, ?)");
      s->setString(1, kind);
      s->setString(2, import_id);
      s->setString(3, fresh);
      s->setInt64(4, now_us);
      s->executeUpdate();
    }
    CachedStatement s = PrepareCached(
        c,
        "SELECT prefix FROM import_prefixes WHERE kind = ? AND import_id = ?");
    s->setString(1, kind);
    s->setString(2, import_id);
    Rows rows(s->executeQuery());
    if (!rows->next()) {
      return absl::InternalError("the import's prefix was not stored");
    }
    return Text(rows->getString(1));
  });
}

namespace {

// Ids of one RowId prefix whose rows are at most this far apart are read as
// one range of ids.
constexpr int64_t kMaxRowGap = 4;
// Fewer ids than this are not worth a statement of their own.
constexpr size_t kMinRangeIds = 8;

struct IdRange {
  std::string first, last;
};

// Splits `ids` into ranges of ids close together under one RowId prefix (a
// new import's batch is one range), each holding at most kMaxRowGap times
// as many ids as it was asked for, and the ids left over.
void SplitIntoRanges(std::vector<std::string> ids, std::vector<IdRange>* ranges,
                     std::vector<std::string>* rest) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const auto same_prefix = [](const std::string& a, const std::string& b) {
    return a.compare(0, kRowIdPrefixSize, b, 0, kRowIdPrefixSize) == 0;
  };
  size_t i = 0;
  while (i < ids.size()) {
    std::optional<int64_t> last = RowOfId(ids[i]);
    size_t j = i + 1;
    while (last.has_value() && j < ids.size() && same_prefix(ids[i], ids[j])) {
      const std::optional<int64_t> row = RowOfId(ids[j]);
      if (!row.has_value() || *row - *last > kMaxRowGap) break;
      last = row;
      ++j;
    }
    if (j - i >= kMinRangeIds) {
      ranges->push_back({ids[i], ids[j - 1]});
    } else {
      rest->insert(rest->end(), ids.begin() + static_cast<std::ptrdiff_t>(i),
                   ids.begin() + static_cast<std::ptrdiff_t>(j));
    }
    i = j;
  }
}

}  // namespace

absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
StoredFingerprints(MysqlPool& pool, const std::vector<std::string>& tables,
                   const std::string& fingerprint_column,
                   const std::vector<std::string>& ids) {
  std::vector<IdRange> ranges;
  std::vector<std::string> rest;
  SplitIntoRanges(ids, &ranges, &rest);
  const absl::flat_hash_set<std::string> wanted(ids.begin(), ids.end());
  absl::flat_hash_map<std::string, std::string> out;
  // A range may hold stored ids that were not asked for (rows of the same
  // import in other batches); only those asked for are answered.
  const auto read_row = [&](sql::ResultSet& row) {
    std::string id = Text(row.getString(1));
    if (wanted.contains(id))
      out.try_emplace(std::move(id), TextOrEmpty(row, 2));
  };
  absl::Status read = pool.Run([&](sql::Connection& c) -> absl::Status {
    for (const std::string& table : tables) {
      const std::string select =
          absl::StrCat("SELECT id, ", fingerprint_column, " FROM ", table);
      for (const IdRange& range : ranges) {
        CachedStatement s =
            PrepareCached(c, absl::StrCat(select, " WHERE id BETWEEN ? AND ?"));
        s->setString(1, range.first);
        s->setString(2, range.last);
        Rows rows(s->executeQuery());
        while (rows->next()) read_row(*rows);
      }
      SelectInLists(c, absl::StrCat(select, " WHERE id"), rest, 1000, read_row);
    }
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  return out;
}

absl::StatusOr<int64_t> ParseTimeText(const std::string& text,
                                      absl::string_view field) {
  if (text.empty()) return InvalidField(field, "is required");
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(text);
  if (!t.ok()) return InvalidField(field, t.status().message());
  return *t;
}

absl::StatusOr<Decimal> ParseAmountText(const std::string& text,
                                        absl::string_view field,
                                        bool negative_ok) {
  if (text.empty()) return InvalidField(field, "is required");
  absl::StatusOr<Decimal> d = Decimal::Parse(text);
  if (!d.ok()) return InvalidField(field, d.status().message());
  if (!negative_ok && d->is_negative()) {
    return InvalidField(field, "must not be negative");
  }
  RAPPORT_RETURN_IF_ERROR(CheckAmountMagnitude(*d, field));
  return *d;
}

absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> ResolveRefs(
    MysqlPool& pool, const EntityTables& t,
    const std::vector<std::string>& refs,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse,
    bool check_made_before) {
  absl::flat_hash_map<std::string, Resolved> out;
  std::vector<std::string> ids;
  // External ids by source, each with the references that name it.
  std::map<std::string, std::map<std::string, std::vector<std::string>>>
      externals;
  for (const std::string& ref : refs) {
    absl::StatusOr<EntityRef> parsed = parse(ref);
    if (!parsed.ok()) {
      out[ref].error = std::string(parsed.status().message());
    } else if (parsed->external.has_value()) {
      externals[parsed->external->source][parsed->external->id].push_back(ref);
    } else {
      ids.push_back(parsed->id);
    }
  }
  constexpr size_t kInList = 512;
  const auto as_parsed = out;
  const auto read_all = [&](sql::Connection& c) -> absl::Status {
    // A transaction may run this again (its connection lost midway): each
    // run starts from what parsing found, not from the last run's half.
    out = as_parsed;
    // Which of `of` are entities.
    const auto existing = [&](const std::vector<std::string>& of) {
      std::set<std::string> found;
      SelectInLists(c, absl::StrCat("SELECT id FROM ", t.entities, " WHERE id"),
                    of, kInList, [&](sql::ResultSet& rows) {
                      found.insert(TextOrEmpty(rows, 1));
                    });
      return found;
    };
    const std::set<std::string> found = existing(ids);
    for (const std::string& id : ids) {
      if (found.contains(id)) {
        out[id].id = id;
      } else {
        out[id].error = absl::StrCat(t.noun, " ", id, " does not exist");
      }
    }
    for (const auto& [source, by_id] : externals) {
      std::vector<std::string> names;
      for (const auto& [id, unused] : by_id) names.push_back(id);
      for (size_t begin = 0; begin < names.size(); begin += kInList) {
        const size_t n = std::min(kInList, names.size() - begin);
        const size_t slots = PaddedCount(n, kInList);
        CachedStatement s = PrepareCached(
            c, absl::StrCat("SELECT external_id, ", t.entity_column, " FROM ",
                            t.external_ids,
                            " WHERE source = ? AND external_id IN (",
                            Placeholders(slots), ")"));
        s->setString(1, source);
        BindPadded(*s, 2, names, begin, n, slots);
        Rows rows(s->executeQuery());
        absl::flat_hash_map<std::string, std::string> found;
        while (rows->next()) {
          found[TextOrEmpty(*rows, 1)] = TextOrEmpty(*rows, 2);
        }
        for (size_t i = begin; i < begin + n; ++i) {
          auto it = found.find(names[i]);
          for (const std::string& ref : by_id.at(names[i])) {
            Resolved& r = out[ref];
            if (it != found.end()) {
              r.id = it->second;
            } else {
              r.create = true;
              r.id_to_create = KeyedId(
                  t.created_scope,
                  absl::StrCat(source.size(), ":", source, ":", names[i]));
            }
          }
        }
      }
    }
    // The entity an earlier import made for an external id that it no
    // longer holds (an update took the id away): making it again fails on
    // its key at every attempt, so after a lost race the row is refused,
    // saying why. (Only then: it costs a statement, and it is rare.)
    if (!check_made_before) return absl::OkStatus();
    std::vector<std::string> to_create;
    for (const auto& [ref, r] : out) {
      if (r.create) to_create.push_back(r.id_to_create);
    }
    const std::set<std::string> made_before = existing(to_create);
    for (auto& [ref, r] : out) {
      if (!r.create || !made_before.contains(r.id_to_create)) continue;
      r.create = false;
      r.error = absl::StrCat(
          "no ", t.noun, " holds ", ref, "; ", t.noun, " ", r.id_to_create,
          " was made for it by an earlier import and no longer holds it: add "
          "it back to that ",
          t.noun, ", or name a ", t.noun, " by its id");
      r.id_to_create.clear();
    }
    return absl::OkStatus();
  };
  // After a lost race, one snapshot for every read, so that an entity and
  // the external ids created with it are seen together or not at all.
  absl::Status read =
      check_made_before ? pool.Transaction(read_all) : pool.Run(read_all);
  if (!read.ok()) return read;
  return out;
}

absl::Status CheckClaims(sql::Connection& c, const EntityTables& t,
                         const ExternalClaims& claims) {
  constexpr size_t kInList = 512;
  // The entities first, shared, in id order: every change of an entity's
  // external ids locks the entity first, so one in flight has committed
  // before the read below (which then sees it), or waits for this batch.
  std::set<std::string> entities;
  for (const auto& [external, entity] : claims) entities.insert(entity);
  SelectInLists(
      c, absl::StrCat("SELECT id FROM ", t.entities, " WHERE id"),
      std::vector<std::string>(entities.begin(), entities.end()), kInList,
      [](sql::ResultSet&) {}, " LOCK IN SHARE MODE");
  // Then the ids, by a plain read: the first one of the transaction, so that
  // under REPEATABLE READ too it sees what committed before the locks.
  // Source by source: the external id -> the entity the rows hold it by.
  std::map<std::string, std::map<std::string, std::string>> by_source;
  for (const auto& [external, entity] : claims)
    by_source[external.source][external.id] = entity;
  for (const auto& [source, wanted] : by_source) {
    std::vector<std::string> names;
    for (const auto& [name, unused] : wanted) names.push_back(name);
    for (size_t begin = 0; begin < names.size(); begin += kInList) {
      const size_t n = std::min(kInList, names.size() - begin);
      const size_t slots = PaddedCount(n, kInList);
      CachedStatement s = PrepareCached(
          c,
          absl::StrCat("SELECT external_id, ", t.entity_column, " FROM ",
                       t.external_ids, " WHERE source = ? AND external_id IN (",
                       Placeholders(slots), ")"));
      s->setString(1, source);
      BindPadded(*s, 2, names, begin, n, slots);
      Rows rows(s->executeQuery());
      size_t kept = 0;
      while (rows->next()) {
        auto it = wanted.find(TextOrEmpty(*rows, 1));
        if (it != wanted.end() && it->second == TextOrEmpty(*rows, 2)) ++kept;
      }
      if (kept != n) {
        return absl::AbortedError(
            absl::StrCat("an external id of this batch moved to another ",
                         t.noun, " since it was looked up"));
      }
    }
  }
  return absl::OkStatus();
}

void InsertExternalIds(
    sql::Connection& c, const EntityTables& t,
    const std::vector<std::pair<std::string, EntityRef::External>>& created) {
  ForChunks(created.size(), [&](size_t begin, size_t n) {
    CachedStatement s = PrepareCached(
        c,
        absl::StrCat("INSERT INTO ", t.external_ids, " (source, external_id, ",
                     t.entity_column, ") VALUES ", RowPlaceholders(n, 3)),
        StatementParameters::kKept);
    for (size_t i = 0; i < n; ++i) {
      const auto& [id, external] = created[begin + i];
      const int first = 1 + static_cast<int>(i) * 3;
      s->setString(first, external.source);
      s->setString(first + 1, external.id);
      s->setString(first + 2, id);
    }
    s->executeUpdate();
  });
}

void DropEntities(sql::Connection& c, const EntityTables& t,
                  const std::vector<std::string>& ids) {
  static const std::string kId = "id";
  ForChunks(ids.size(), [&](size_t begin, size_t n) {
    // The external ids first: they refer to their entity.
    const std::pair<const std::string&, const std::string&> tables[] = {
        {t.external_ids, t.entity_column}, {t.entities, kId}};
    for (const auto& [table, column] : tables) {
      CachedStatement s =
          PrepareCached(c,
                        absl::StrCat("DELETE FROM ", table, " WHERE ", column,
                                     " IN (", Placeholders(n), ")"),
                        StatementParameters::kKept);
      for (size_t i = 0; i < n; ++i) {
        s->setString(static_cast<int>(i) + 1, ids[begin + i]);
      }
      s->executeUpdate();
    }
  });
}

}  // namespace rapport::imports
