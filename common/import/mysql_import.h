// What every MySQL store of imports (common/import) shares: the table of
// import prefixes, the fingerprints of rows stored already, and the entities
// that rows' references name.
#ifndef RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
#define RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/audit/audit.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/identity.h"
#include "common/ids.h"
#include "common/import/row_import.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/mysql/sql.h"
#include "rapport/common/v1/common.pb.h"

namespace rapport::imports {

// The schema of import_prefixes (migrations numbered from 1201), to apply
// with the service's own.
std::vector<Migration> Migrations();

// The prefix of `import_id`'s rows of `kind`: a new one from `ids` for the
// first call, the stored one afterwards (also for a concurrent first call).
absl::StatusOr<std::string> ImportPrefix(MysqlPool& pool, IdGenerator& ids,
                                         const std::string& kind,
                                         const std::string& import_id,
                                         int64_t now_us);

// The `fingerprint_column` of the rows of `tables` whose `id` is one of
// `ids`, by id (an id stored in several tables: its fingerprint in the first
// of them). The names are the caller's constants; `id` must be a key of each
// table. Row ids of one prefix that lie close together are read as a range of
// ids (a batch of a new import costs one probe per table, however many rows
// it has), the others in lists.
absl::StatusOr<absl::flat_hash_map<std::string, std::string>>
StoredFingerprints(MysqlPool& pool, const std::vector<std::string>& tables,
                   const std::string& fingerprint_column,
                   const std::vector<std::string>& ids);

// Where a counterpart keeps its entities and their external ids. The names
// are the caller's constants.
struct EntityTables {
  std::string noun;           // "partner", in errors
  std::string entities;       // "partners", primary key `id`
  std::string external_ids;   // "partner_external_ids": (source, external_id)
  std::string entity_column;  // "partner_id", in `external_ids`
  // The KeyedId scope of entities created for unknown external ids, so that
  // every stream and retry makes the same id for one external id.
  std::string created_scope;  // "partner-ext"
};

// What each of `refs` names (Store::Resolve), `parse` reading a reference:
// ids that exist, external ids that are stored, and an entity to create for
// an unknown external id; other references carry their error. A few
// statements per batch, whatever its size. With `check_made_before` (a batch
// run again after losing a race), in one snapshot, and an entity to create
// that exists already (made for the external id by an earlier import, which
// an update took away since) is the reference's error instead.
absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> ResolveRefs(
    MysqlPool& pool, const EntityTables& tables,
    const std::vector<std::string>& refs,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse,
    bool check_made_before);

// Entities to create for unknown external ids: (id, the external id).
using CreatedEntities =
    std::vector<std::pair<std::string, EntityRef::External>>;
// Writes them (on the connection, in the caller's transaction), at a time,
// as created by an actor (the subject of the import's token).
using CreateEntities = std::function<void(
    sql::Connection&, const CreatedEntities&, int64_t, const std::string&)>;

// The entities a batch of rows asks to create (each once), with the external
// id that made each, in row order.
template <typename Record>
CreatedEntities EntitiesToCreate(
    const std::vector<Row<Record>>& rows,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse) {
  std::vector<std::pair<std::string, EntityRef::External>> out;
  absl::flat_hash_map<std::string, bool> seen;
  for (const Row<Record>& r : rows) {
    if (!r.entity.create || !seen.emplace(r.entity.id_to_create, true).second) {
      continue;
    }
    absl::StatusOr<EntityRef> ref = parse(r.ref);
    if (ref.ok() && ref->external.has_value()) {
      out.emplace_back(r.entity.id_to_create, *ref->external);
    }
  }
  return out;
}

// The external ids that rows were resolved by, each once with the entity
// that held it then: (the external id, the entity).
using ExternalClaims = std::vector<std::pair<EntityRef::External, std::string>>;
template <typename Record>
ExternalClaims ClaimsOf(
    const std::vector<Row<Record>>& rows,
    const std::function<absl::StatusOr<EntityRef>(const std::string&)>& parse) {
  ExternalClaims out;
  absl::flat_hash_set<absl::string_view> seen;
  for (const Row<Record>& r : rows) {
    if (r.entity.create || r.entity.id.empty() || !seen.insert(r.ref).second)
      continue;
    absl::StatusOr<EntityRef> ref = parse(r.ref);
    if (ref.ok() && ref->external.has_value())
      out.emplace_back(*ref->external, r.entity.id);
  }
  return out;
}

// Checks, at the start of the caller's transaction, that each external id of
// `claims` is still its entity's: an update may have moved it since the rows
// were resolved (outside the transaction, or batches before). ABORTED when
// one moved: the batch is resolved again. The entities are locked shared
// first (as an update locks its entity before it rewrites the ids), so a move
// is either seen or waits until the batch has committed.
absl::Status CheckClaims(sql::Connection& c, const EntityTables& tables,
                         const ExternalClaims& claims);

// The entities that `rows` ask to create and that only rows of `refused`
// name, each once.
template <typename Record>
std::vector<std::string> CreatedForRefusedOnly(
    const std::vector<Row<Record>>& rows, const std::vector<Reject>& refused) {
  if (refused.empty()) return {};
  absl::flat_hash_set<int64_t> refused_rows;
  for (const Reject& r : refused) refused_rows.insert(r.row);
  // Each created entity: whether a row that was kept names it.
  absl::flat_hash_map<std::string, bool> kept;
  std::vector<std::string> order;
  for (const Row<Record>& r : rows) {
    if (!r.entity.create) continue;
    auto [it, added] = kept.emplace(r.entity.id_to_create, false);
    if (added) order.push_back(r.entity.id_to_create);
    if (!refused_rows.contains(r.number)) it->second = true;
  }
  std::vector<std::string> out;
  for (const std::string& id : order) {
    if (!kept[id]) out.push_back(id);
  }
  return out;
}

// Deletes the entities `ids` (made by this transaction, so with no rows but
// their external ids) and their external ids, on `c`.
void DropEntities(sql::Connection& c, const EntityTables& tables,
                  const std::vector<std::string>& ids);

// Stores the external ids of `created` (entity id, external id) in large
// statements, on `c` (in the caller's transaction).
void InsertExternalIds(
    sql::Connection& c, const EntityTables& tables,
    const std::vector<std::pair<std::string, EntityRef::External>>& created);

// The store side of one kind of import on MySQL: prefixes, references,
// fingerprints and audit are the same for every kind; `create` writes the
// entities that unknown external ids name (their external ids are written
// here), `insert` the kind's rows into `table` (with an `id` and a
// `fingerprint` column), all in one transaction per batch. A retry finds its
// rows by id in `table` and in `also_stored_in` (where a kind whose rows may
// correct stored ones keeps the ids of those that did).
//
//   imports::MysqlStore<OrderRecord> store(pool, ids, clock, PartnerTables(),
//       ParsePartnerRef, CreatePartners, "orders", InsertOrders);
template <typename Record>
class MysqlStore final : public Store<Record> {
 public:
  using Rows = std::vector<Row<Record>>;
  using Parse = std::function<absl::StatusOr<EntityRef>(const std::string&)>;
  using Created = CreatedEntities;
  using Create = CreateEntities;
  // Stores the rows but those it refuses (returned, by row).
  using Insert = std::function<absl::StatusOr<std::vector<Reject>>(
      sql::Connection&, const Rows&, const std::string& actor, int64_t now_us)>;

  MysqlStore(MysqlPool* pool, IdGenerator* ids,
             std::function<absl::Time()> clock, const EntityTables& entities,
             Parse parse, Create create, std::string table, Insert insert,
             std::vector<std::string> also_stored_in = {})
      : pool_(pool),
        ids_(ids),
        clock_(std::move(clock)),
        entities_(entities),
        parse_(std::move(parse)),
        create_(std::move(create)),
        stored_in_(std::move(also_stored_in)),
        insert_(std::move(insert)) {
    stored_in_.insert(stored_in_.begin(), std::move(table));
  }

  absl::StatusOr<std::string> Prefix(const std::string& kind,
                                     const std::string& import_id) override {
    return ImportPrefix(*pool_, *ids_, kind, import_id, Now());
  }

  absl::StatusOr<absl::flat_hash_map<std::string, Resolved>> Resolve(
      const std::vector<std::string>& refs, bool after_lost_race) override {
    return ResolveRefs(*pool_, entities_, refs, parse_, after_lost_race);
  }

  absl::StatusOr<absl::flat_hash_map<std::string, std::string>> Stored(
      const std::vector<std::string>& ids) override {
    return StoredFingerprints(*pool_, stored_in_, "fingerprint", ids);
  }

  // Each batch's transaction runs READ COMMITTED (MysqlPool::Isolation).
  void ReadCommitted() { read_committed_ = true; }

  absl::StatusOr<Written> Write(const Rows& rows,
                                const std::string& actor) override {
    const int64_t now = Now();
    return pool_->Transaction(
        [&](sql::Connection& c) -> absl::StatusOr<Written> {
          RAPPORT_RETURN_IF_ERROR(
              CheckClaims(c, entities_, ClaimsOf(rows, parse_)));
          const Created created = EntitiesToCreate(rows, parse_);
          if (!created.empty()) {
            create_(c, created, now, actor);
            InsertExternalIds(c, entities_, created);
          }
          Written out;
          RAPPORT_ASSIGN_OR_RETURN(out.rejects, insert_(c, rows, actor, now));
          // An entity made only for rows that were then refused is not
          // kept: a refused row leaves no data behind (a row of a lock
          // table it took, which holds none, may stay).
          const std::vector<std::string> unused =
              CreatedForRefusedOnly(rows, out.rejects);
          DropEntities(c, entities_, unused);
          out.created = static_cast<int64_t>(created.size() - unused.size());
          return out;
        },
        read_committed_ ? MysqlPool::Isolation::kReadCommitted
                        : MysqlPool::Isolation::kRepeatableRead);
  }

  absl::Status Audit(const audit::Event& event) override {
    return audit::Write(*pool_, event);
  }

 private:
  int64_t Now() const { return absl::ToUnixMicros(clock_()); }

  MysqlPool* const pool_;
  IdGenerator* const ids_;
  const std::function<absl::Time()> clock_;
  const EntityTables& entities_;
  const Parse parse_;
  const Create create_;
  std::vector<std::string> stored_in_;  // the rows' table first
  const Insert insert_;
  bool read_committed_ = false;
};

// A row's time (RFC 3339) and amount (exact decimal text); errors name
// `field`.
absl::StatusOr<int64_t> ParseTimeText(const std::string& text,
                                      absl::string_view field);
absl::StatusOr<Decimal> ParseAmountText(const std::string& text,
                                        absl::string_view field,
                                        bool negative_ok);

// The answer of an import, from what it did; `created` is the answer's count
// of created entities (created_partners, created_members).
template <typename Response>
Response ToResponse(Totals totals, void (Response::*set_created)(int64_t)) {
  Response r;
  r.set_accepted(totals.accepted);
  r.set_duplicates(totals.duplicates);
  (r.*set_created)(totals.created);
  for (Reject& j : totals.rejects) {
    ::rapport::common::v1::RowError* e = r.add_rejected();
    e->set_row(j.row);
    e->set_field(std::move(j.field));
    e->set_message(std::move(j.message));
  }
  return r;
}

using ::rapport::ForChunks;  // common/mysql/sql.h

}  // namespace rapport::imports

#endif  // RAPPORT_COMMON_IMPORT_MYSQL_IMPORT_H_
