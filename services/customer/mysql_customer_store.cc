#include "services/customer/mysql_customer_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/base/status_macros.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"
#include "common/validation.h"
#include "services/customer/customer_values.h"

namespace rapport::customer {
namespace {

using Statement = CachedStatement;

Statement Prepare(sql::Connection& c, const char* query) {
  return PrepareCached(c, query);
}

// `event`, and a copy under each record merged into `id` ("<what> with
// <id>"), so that the audit log of a merged record says what became of it,
// as it says where the record went (MergeCustomers).
std::vector<audit::Event> WithMergedRecords(sql::Connection& c,
                                            const audit::Event& event,
                                            const std::string& id,
                                            absl::string_view what) {
  std::vector<audit::Event> events = {event};
  Statement merged =
      Prepare(c, "SELECT id FROM customers WHERE merged_into = ? ORDER BY id");
  merged->setString(1, id);
  Rows rows(merged->executeQuery());
  while (rows->next()) {
    audit::Event& e = events.emplace_back(event);
    e.resource = absl::StrCat("customers/", std::string(rows->getString(1)));
    e.details = absl::StrCat(what, " with ", id);
  }
  return events;
}

std::string EmailKey(const std::string& email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

// Reads the customer row and its identities and attributes; NOT_FOUND if
// absent.
// Reads the customer columns (kCustomerColumns order) from `first` on.
void ReadCustomerColumns(sql::ResultSet& rows, int first, CustomerRecord& r) {
  auto text = [&](int i) {
    return rows.isNull(first + i) ? std::string()
                                  : std::string(rows.getString(first + i));
  };
  r.id = text(0);
  r.display_name = text(1);
  r.email = text(2);
  r.phone = text(3);
  r.create_time_us = rows.getInt64(first + 4);
  r.update_time_us = rows.getInt64(first + 5);
  r.version = rows.getInt64(first + 6);
  r.postal_code = text(7);
  r.erased = !rows.isNull(first + 8);
  r.merged_into = text(9);
  r.created_by = text(10);
}

constexpr char kCustomerColumns[] =
    "id, display_name, email, phone, create_time_us, update_time_us, version, "
    "postal_code, erased_time_us, merged_into, created_by";

// Adds an identity (kind 0) or attribute (kind 1) row to `r`.
void AddChild(int kind, std::string a, std::string b, CustomerRecord& r) {
  if (kind == 0) {
    r.external_ids.push_back({std::move(a), std::move(b)});
  } else {
    r.attributes[std::move(a)] = std::move(b);
  }
}

// Customers read together: at most this many ids per statement.
constexpr size_t kLoadChunk = 256;

// Reads the rows of the given customers with their identities and attributes,
// by id; absent ids are left out. One round trip per kLoadChunk ids: each
// customer's row (kind -1), external ids (0) and attributes (1), their owner's
// id in column 4 (rows of one customer come in any order). Id lists are padded
// to a power of two (repeating the last id) so that a few statement texts serve
// every count. The indexes are forced, being the plan the optimizer picks
// anyway: once, right after a bulk import (while InnoDB recalculated the
// tables' statistics), this read examined 300,000 rows per statement.
absl::flat_hash_map<std::string, CustomerRecord> LoadCustomers(
    sql::Connection& c, const std::vector<std::string>& ids) {
  absl::flat_hash_map<std::string, CustomerRecord> out;
  for (size_t begin = 0; begin < ids.size(); begin += kLoadChunk) {
    const size_t n = std::min(kLoadChunk, ids.size() - begin);
    const size_t slots = std::bit_ceil(n);
    const std::string in = Placeholders(slots);
    Statement s = PrepareCached(
        c,
        absl::StrCat(
            "SELECT -1, NULL, NULL, ", kCustomerColumns,
            " FROM customers FORCE INDEX (PRIMARY) WHERE id IN (", in,
            ") UNION ALL SELECT 0, source, external_id, customer_id, NULL, "
            "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM "
            "customer_external_ids FORCE INDEX "
            "(customer_external_ids_customer) "
            "WHERE customer_id IN (",
            in,
            ") UNION ALL SELECT 1, name, value COLLATE utf8mb4_bin, "
            "customer_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
            "NULL, NULL FROM customer_attributes FORCE INDEX (PRIMARY) WHERE "
            "customer_id IN (",
            in, ")"),
        StatementParameters::kKept);
    for (int part = 0; part < 3; ++part) {
      BindPadded(*s, static_cast<int>(part * slots + 1), ids, begin, n, slots);
    }
    Rows rows(s->executeQuery());
    while (rows->next()) {
      CustomerRecord& r = out[std::string(rows->getString(4))];
      const int kind = rows->getInt(1);
      if (kind < 0) {
        ReadCustomerColumns(*rows, 4, r);
      } else {
        AddChild(kind, rows->getString(2), rows->getString(3), r);
      }
    }
  }
  // One statement reads one snapshot, so identities and attributes come with
  // their customer's row; any without one (a broken foreign key) are left out.
  absl::erase_if(out,
                 [](const auto& entry) { return entry.second.id.empty(); });
  // Sorted here rather than by the statement (a sort in MariaDB cost a fifth
  // of its time): by source, then id, bytewise as their binary collation.
  for (auto& [id, r] : out) {
    std::sort(r.external_ids.begin(), r.external_ids.end(),
              [](const ExternalIdRecord& a, const ExternalIdRecord& b) {
                return std::tie(a.source, a.id) < std::tie(b.source, b.id);
              });
  }
  return out;
}

absl::StatusOr<CustomerRecord> LoadCustomer(sql::Connection& c,
                                            const std::string& id,
                                            bool for_update) {
  if (!for_update) {
    absl::flat_hash_map<std::string, CustomerRecord> found =
        LoadCustomers(c, {id});
    auto it = found.find(id);
    if (it == found.end())
      return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
    return std::move(it->second);
  }
  CustomerRecord r;
  Statement s = Prepare(c, absl::StrCat("SELECT ", kCustomerColumns,
                                        " FROM customers WHERE id = ? FOR "
                                        "UPDATE")
                               .c_str());
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next())
    return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
  ReadCustomerColumns(*rows, 1, r);

  // Identities and attributes in one round trip (kind 0: external id, 1:
  // attribute).
  Statement children = Prepare(c,
                               "SELECT 0, source, external_id FROM "
                               "customer_external_ids WHERE customer_id = ? "
                               "UNION ALL SELECT 1, name, value COLLATE "
                               "utf8mb4_bin FROM customer_attributes "
                               "WHERE customer_id = ? ORDER BY 1, 2, 3");
  children->setString(1, id);
  children->setString(2, id);
  Rows child_rows(children->executeQuery());
  while (child_rows->next()) {
    AddChild(child_rows->getInt(1), child_rows->getString(2),
             child_rows->getString(3), r);
  }
  return r;
}

// Which customer already holds one of r's identities, as a readable sentence;
// empty when none does (the duplicate was something else). An identity a
// merged record keeps is held by the customer it was merged into.
std::string FindIdentityHolder(sql::Connection& c, const CustomerRecord& r) {
  if (!r.email.empty()) {
    Statement s = Prepare(c,
                          "SELECT COALESCE(merged_into, id) FROM customers "
                          "WHERE email_key = ? AND id <> ?");
    s->setString(1, EmailKey(r.email));
    s->setString(2, r.id);
    Rows rows(s->executeQuery());
    if (rows->next())
      return absl::StrCat("email is already used by customer ",
                          std::string(rows->getString(1)));
  }
  if (!r.phone.empty()) {
    Statement s = Prepare(c,
                          "SELECT COALESCE(merged_into, id) FROM customers "
                          "WHERE phone = ? AND id <> ?");
    s->setString(1, r.phone);
    s->setString(2, r.id);
    Rows rows(s->executeQuery());
    if (rows->next())
      return absl::StrCat("phone is already used by customer ",
                          std::string(rows->getString(1)));
  }
  for (const ExternalIdRecord& e : r.external_ids) {
    Statement s =
        Prepare(c,
                "SELECT customer_id FROM customer_external_ids "
                "WHERE source = ? AND external_id = ? AND customer_id <> ?");
    s->setString(1, e.source);
    s->setString(2, e.id);
    s->setString(3, r.id);
    Rows rows(s->executeQuery());
    if (rows->next()) {
      // The source only: the id, like the email and phone, is personal,
      // and the message is logged where erasure does not reach.
      return absl::StrCat("an external id from ", e.source,
                          " is already used by customer ",
                          std::string(rows->getString(1)));
    }
  }
  return "";
}

// Moves an email or phone that r takes (it had another, or none, before)
// from a record merged into r, which kept it, to r. Read first and then
// written by primary key, so that an identity no merged record holds (the
// usual case) takes no gap lock.
void TakeFromMergedRecords(sql::Connection& c, const CustomerRecord& before,
                           const CustomerRecord& r) {
  struct Key {
    bool changed;
    std::string value;
    const char* find;
    const char* release;
  };
  const std::string email_key = EmailKey(r.email);
  const Key keys[] = {
      {!r.email.empty() && email_key != EmailKey(before.email), email_key,
       "SELECT id FROM customers WHERE email_key = ? AND merged_into = ?",
       "UPDATE customers SET email_key = NULL WHERE id = ?"},
      {!r.phone.empty() && r.phone != before.phone, r.phone,
       "SELECT id FROM customers WHERE phone = ? AND merged_into = ?",
       "UPDATE customers SET phone = NULL WHERE id = ?"},
  };
  for (const Key& key : keys) {
    if (!key.changed) continue;
    Statement find = Prepare(c, key.find);
    find->setString(1, key.value);
    find->setString(2, r.id);
    Rows rows(find->executeQuery());
    if (!rows->next()) continue;
    Statement release = Prepare(c, key.release);
    release->setString(1, rows->getString(1));
    release->executeUpdate();
  }
}

// Writes identities and attributes of r (whose row exists) from scratch. A
// new customer has none to delete: its DELETEs would only take gap locks at
// the end of the indexes, where every concurrent creation inserts, and
// deadlock them.
void WriteChildren(sql::Connection& c, const CustomerRecord& r, bool created) {
  if (!created) {
    Statement del_ext =
        Prepare(c, "DELETE FROM customer_external_ids WHERE customer_id = ?");
    del_ext->setString(1, r.id);
    del_ext->executeUpdate();
    Statement del_attr =
        Prepare(c, "DELETE FROM customer_attributes WHERE customer_id = ?");
    del_attr->setString(1, r.id);
    del_attr->executeUpdate();
  }
  if (!r.external_ids.empty()) {
    Statement s = Prepare(c,
                          "INSERT INTO customer_external_ids (source, "
                          "external_id, customer_id) VALUES (?, ?, ?)");
    for (const ExternalIdRecord& e : r.external_ids) {
      s->setString(1, e.source);
      s->setString(2, e.id);
      s->setString(3, r.id);
      s->executeUpdate();
    }
  }
  if (!r.attributes.empty()) {
    Statement s = Prepare(c,
                          "INSERT INTO customer_attributes (customer_id, name, "
                          "value) VALUES (?, ?, ?)");
    for (const auto& [name, value] : r.attributes) {
      s->setString(1, r.id);
      s->setString(2, name);
      s->setString(3, value);
      s->executeUpdate();
    }
  }
}

// Turns a duplicate-key error from writing r into ALREADY_EXISTS naming the
// holder.
absl::Status DuplicateIdentity(MysqlPool& pool, const CustomerRecord& r,
                               absl::Status status) {
  if (!absl::IsAlreadyExists(status)) return status;
  absl::StatusOr<std::string> holder =
      pool.Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
        return FindIdentityHolder(c, r);
      });
  if (!holder.ok()) return holder.status();
  if (holder->empty()) return status;
  return absl::AlreadyExistsError(*holder);
}

// Looks up an earlier write of `request` by `key` (what `query` takes: the
// request id, or the id made from it): nullopt when none, the id it made when
// the hash matches, INVALID_ARGUMENT on request_id otherwise.
absl::StatusOr<std::optional<std::string>> FindRequest(
    sql::Connection& c, const char* query, const std::string& key,
    const RequestKey& request) {
  if (request.id.empty()) return std::optional<std::string>();
  Statement s = Prepare(c, query);
  s->setString(1, key);
  Rows rows(s->executeQuery());
  if (!rows->next()) return std::optional<std::string>();
  if (rows->getString(2) == CustomerStore::kErasedHash) {
    return absl::FailedPreconditionError(
        absl::StrCat("request_id: ", CustomerStore::kErasedRequest));
  }
  if (rows->getString(2) != request.hash) {
    return InvalidField("request_id",
                        "was already used for a request with other content");
  }
  return std::optional<std::string>(std::string(rows->getString(1)));
}

PurchaseRecord ReadPurchase(sql::ResultSet& rows) {
  PurchaseRecord p;
  p.id = rows.getString(1);
  p.customer_id = rows.getString(2);
  p.purchase_time_us = rows.getInt64(3);
  // DECIMAL(38,9) comes back as exact text; the schema guarantees it parses.
  p.amount = DecimalColumn(rows, 4).value_or(Decimal());
  p.currency = rows.getString(5);
  p.description = rows.getString(6);
  p.create_time_us = rows.getInt64(7);
  p.recorded_by = TextOrEmpty(rows, 8);
  return p;
}

// Locks the customer row for the rest of the transaction and checks that new
// history may be added: NOT_FOUND, FAILED_PRECONDITION when erased, ABORTED
// when it was just merged (the caller resolves the id again and retries).
// `exclusive`: the row locked for update (writers to the customer's own
// rows serialise on it), else shared.
absl::Status CheckLive(sql::Connection& c, const std::string& id,
                       bool exclusive = false) {
  Statement s =
      Prepare(c, exclusive ? "SELECT merged_into, erased_time_us FROM "
                             "customers WHERE id = ? FOR UPDATE"
                           : "SELECT merged_into, erased_time_us FROM "
                             "customers WHERE id = ? LOCK IN SHARE MODE");
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next())
    return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
  if (!rows->isNull(1)) {
    return MergedMeanwhile(id, std::string(rows->getString(1)));
  }
  if (!rows->isNull(2)) {
    return absl::FailedPreconditionError(
        absl::StrCat("customer ", id, " was erased"));
  }
  return absl::OkStatus();
}

constexpr char kPurchaseColumns[] =
    "id, customer_id, purchase_time_us, amount, currency, description, "
    "create_time_us, recorded_by";

// Counts a merge, erasure, deletion or an update that moves an identity in
// customer_changes (see ImportStore::CustomerChanges). The transaction's
// first statement, so that it waits for imports that are writing (they hold
// the row shared) before it locks anything they might need. Merges (dry runs
// too), erasures, deletions and such updates therefore run one at a time,
// each after the import batches being written (tens of milliseconds); they
// are rare next to imports and to other updates. Replicas of
// a version before this count do not bump it: roll out with imports or
// merges paused.
void CountCustomerChange(sql::Connection& c) {
  Statement s = Prepare(
      c, "UPDATE customer_changes SET changes = changes + 1 WHERE id = 1");
  s->executeUpdate();
}

// Whether `a` and `b` are found by different identities (email, phone,
// external ids): imports resolve rows by them.
bool IdentitiesDiffer(const CustomerRecord& a, const CustomerRecord& b) {
  if (EmailKey(a.email) != EmailKey(b.email) || a.phone != b.phone) return true;
  auto keys = [](const CustomerRecord& r) {
    std::set<std::pair<std::string, std::string>> out;
    for (const ExternalIdRecord& e : r.external_ids)
      out.insert({e.source, e.id});
    return out;
  };
  return keys(a) != keys(b);
}

}  // namespace

absl::StatusOr<CustomerRecord> MysqlCustomerStore::CreateCustomer(
    const CustomerRecord& customer, const RequestKey& request,
    const audit::Event& event) {
  constexpr char kFind[] =
      "SELECT customer_id, request_hash FROM customer_create_requests WHERE "
      "request_id = ?";
  absl::StatusOr<CustomerRecord> created = pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
        RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> earlier,
                                 FindRequest(c, kFind, request.id, request));
        if (earlier.has_value()) return LoadCustomer(c, *earlier, false);
        RAPPORT_RETURN_IF_ERROR(CheckNotSuppressed(c, customer));
        Statement s = Prepare(
            c,
            "INSERT INTO customers (id, display_name, email, email_key, phone, "
            "create_time_us, update_time_us, version, postal_code, "
            "email_match_key, created_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)");
        s->setString(1, customer.id);
        s->setString(2, customer.display_name);
        SetNullableString(*s, 3, customer.email);
        SetNullableString(*s, 4, EmailKey(customer.email));
        SetNullableString(*s, 5, customer.phone);
        s->setInt64(6, customer.create_time_us);
        s->setInt64(7, customer.update_time_us);
        SetNullableString(*s, 8, customer.postal_code);
        SetNullableString(
            *s, 9, customer.email.empty() ? "" : EmailMatchKey(customer.email));
        s->setString(10, customer.created_by);
        s->executeUpdate();
        WriteChildren(c, customer, /*created=*/true);
        if (!request.id.empty()) {
          Statement r = Prepare(
              c,
              "INSERT INTO customer_create_requests (request_id, request_hash, "
              "customer_id) VALUES (?, ?, ?)");
          r->setString(1, request.id);
          r->setString(2, request.hash);
          r->setString(3, customer.id);
          r->executeUpdate();
        }
        audit::Write(c, event);
        CustomerRecord stored = customer;
        stored.version = 1;
        return stored;
      });
  if (absl::IsAlreadyExists(created.status()) && !request.id.empty()) {
    // A concurrent retry of the same request may have won the race: answer as
    // it did.
    absl::StatusOr<CustomerRecord> earlier =
        pool_->Run([&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
          RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> id,
                                   FindRequest(c, kFind, request.id, request));
          if (!id.has_value()) return absl::NotFoundError("no earlier request");
          return LoadCustomer(c, *id, false);
        });
    if (earlier.ok() || absl::IsInvalidArgument(earlier.status()))
      return earlier;
  }
  if (!created.ok())
    return DuplicateIdentity(*pool_, customer, created.status());
  return created;
}

absl::StatusOr<std::optional<std::string>>
MysqlCustomerStore::CustomerCreatedBy(const RequestKey& request) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::optional<std::string>> {
        return FindRequest(c,
                           "SELECT customer_id, request_hash FROM "
                           "customer_create_requests WHERE request_id = ?",
                           request.id, request);
      });
}

absl::StatusOr<CustomerRecord> MysqlCustomerStore::GetCustomer(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
    return LoadCustomer(c, id, false);
  });
}

absl::StatusOr<std::vector<CustomerRecord>> MysqlCustomerStore::GetCustomers(
    const std::vector<std::string>& ids) {
  using Result = std::vector<CustomerRecord>;
  // Each id once: one repeated in two statements would get its identities
  // twice.
  std::vector<std::string> unique = ids;
  std::sort(unique.begin(), unique.end());
  unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<Result> {
    absl::flat_hash_map<std::string, CustomerRecord> loaded =
        LoadCustomers(c, unique);
    Result out;
    out.reserve(loaded.size());
    for (auto& [id, record] : loaded) out.push_back(std::move(record));
    return out;
  });
}

absl::StatusOr<std::vector<std::pair<CustomerRecord, int>>>
MysqlCustomerStore::ListCustomers(const CustomerFilter& filter,
                                  const std::optional<ListCursor>& after,
                                  int limit) {
  using Result = std::vector<std::pair<CustomerRecord, int>>;
  // One snapshot for the ids and the records: a customer deleted between
  // two autocommit reads would shorten the page, which then looks like the
  // last one.
  return pool_->Transaction([&](sql::Connection& c) -> absl::StatusOr<Result> {
    // By value, the scores are read first, in their index's order (value
    // highest first, then id), so that a page reads only its rows; the
    // optimizer would start from the customers not merged, all of them.
    std::string query =
        filter.by_value_desc
            ? "SELECT c.id, s.value_hundredths FROM customer_scores s "
              "STRAIGHT_JOIN customers c ON c.id = s.customer_id WHERE "
              "c.merged_into IS NULL"
        : filter.needs_scores()
            ? "SELECT c.id, s.value_hundredths FROM customers c JOIN "
              "customer_scores s ON s.customer_id = c.id WHERE c.merged_into "
              "IS NULL"
            : "SELECT c.id, -1 FROM customers c WHERE c.merged_into IS NULL";
    if (!filter.segment.empty()) query += " AND s.segment = ?";
    if (filter.tier != 0) query += " AND s.tier = ?";
    if (filter.min_value_hundredths) query += " AND s.value_hundredths >= ?";
    if (filter.max_value_hundredths) query += " AND s.value_hundredths <= ?";
    if (after) {
      query += filter.by_value_desc
                   ? " AND (s.value_hundredths < ? OR (s.value_hundredths = "
                     "? AND s.customer_id > ?))"
                   : " AND c.id > ?";
    }
    query += filter.by_value_desc
                 ? " ORDER BY s.value_hundredths DESC, s.customer_id"
                 : " ORDER BY c.id";
    query += " LIMIT ?";
    Statement s = Prepare(c, query.c_str());
    int i = 1;
    if (!filter.segment.empty()) s->setString(i++, filter.segment);
    if (filter.tier != 0) s->setInt(i++, filter.tier);
    if (filter.min_value_hundredths)
      s->setInt(i++, *filter.min_value_hundredths);
    if (filter.max_value_hundredths)
      s->setInt(i++, *filter.max_value_hundredths);
    if (after) {
      if (filter.by_value_desc) {
        s->setInt(i++, after->value_hundredths);
        s->setInt(i++, after->value_hundredths);
      }
      s->setString(i++, after->id);
    }
    s->setInt(i++, limit);
    std::vector<std::string> ids;
    std::vector<int> values;
    {
      Rows rows(s->executeQuery());
      while (rows->next()) {
        ids.emplace_back(rows->getString(1));
        values.push_back(rows->getInt(2));
      }
    }
    absl::flat_hash_map<std::string, CustomerRecord> loaded =
        LoadCustomers(c, ids);
    Result out;
    out.reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = loaded.find(ids[i]);
      if (it == loaded.end()) continue;  // deleted meanwhile
      out.emplace_back(std::move(it->second), values[i]);
    }
    return out;
  });
}

absl::Status MysqlCustomerStore::CheckNotSuppressed(
    sql::Connection& c, const CustomerRecord& record) {
  if (!suppression_hashes_) return absl::OkStatus();
  return NoneSuppressed(c, suppression_hashes_(record));
}

absl::Status MysqlCustomerStore::CheckNewNotSuppressed(
    sql::Connection& c, const CustomerRecord& before,
    const CustomerRecord& after) {
  if (!suppression_hashes_) return absl::OkStatus();
  const std::vector<std::string> had = suppression_hashes_(before);
  const absl::flat_hash_set<std::string> kept(had.begin(), had.end());
  std::vector<std::string> added;
  for (std::string& h : suppression_hashes_(after)) {
    if (!kept.contains(h)) added.push_back(std::move(h));
  }
  return NoneSuppressed(c, added);
}

absl::Status MysqlCustomerStore::CheckNoneSuppressed(
    sql::Connection& c, const std::vector<CustomerRecord>& records) {
  if (!suppression_hashes_) return absl::OkStatus();
  std::vector<std::string> hashes;
  for (const CustomerRecord& r : records) {
    for (std::string& h : suppression_hashes_(r))
      hashes.push_back(std::move(h));
  }
  return NoneSuppressed(c, hashes);
}

absl::Status MysqlCustomerStore::NoneSuppressed(
    sql::Connection& c, const std::vector<std::string>& hashes) {
  // A shared lock: an erasure inserting one of these hashes waits for this
  // transaction, or this read waits for the erasure and sees its rows.
  // Prepared once per list size (padded to a power of two, as
  // SuppressedAmong does): creates and updates run it every time.
  constexpr size_t kHashesPerList = 512;
  bool suppressed = false;
  SelectInLists(
      c, "SELECT 1 FROM suppressed_identities WHERE identity_hash", hashes,
      kHashesPerList, [&](sql::ResultSet&) { suppressed = true; },
      " LIMIT 1 LOCK IN SHARE MODE");
  if (!suppressed) return absl::OkStatus();
  return absl::FailedPreconditionError(kSuppressedIdentity);
}

absl::StatusOr<CustomerRecord> MysqlCustomerStore::UpdateCustomer(
    const std::string& id,
    const std::function<absl::Status(CustomerRecord&)>& mutate,
    const audit::Event& event) {
  CustomerRecord attempted;
  // An update that gives up or takes an identity counts as a customer change
  // (imports resolved by it check again); the count must come first, so the
  // transaction that finds it changes identities runs again, counting.
  bool count_change = false;
  bool moves_identities = false;
  absl::StatusOr<CustomerRecord> updated;
  do {
    moves_identities = false;  // also when the transaction never runs
    updated = pool_->Transaction([&](sql::Connection& c)
                                     -> absl::StatusOr<CustomerRecord> {
      moves_identities = false;  // each run of the transaction anew
      if (count_change) CountCustomerChange(c);
      RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
      const CustomerRecord before = r;
      RAPPORT_RETURN_IF_ERROR(mutate(r));
      if (r == before) return r;  // nothing to write, nothing to audit
      if (!count_change && IdentitiesDiffer(r, before)) {
        moves_identities = true;
        return absl::AbortedError("to be counted as a customer change");
      }
      RAPPORT_RETURN_IF_ERROR(CheckNewNotSuppressed(c, before, r));
      r.version += 1;
      attempted = r;
      TakeFromMergedRecords(c, before, r);
      Statement s = Prepare(
          c,
          "UPDATE customers SET display_name = ?, email = ?, email_key = ?, "
          "phone = ?, update_time_us = ?, version = ?, postal_code = ?, "
          "email_match_key = ? WHERE id = ?");
      s->setString(1, r.display_name);
      SetNullableString(*s, 2, r.email);
      SetNullableString(*s, 3, EmailKey(r.email));
      SetNullableString(*s, 4, r.phone);
      s->setInt64(5, r.update_time_us);
      s->setInt64(6, r.version);
      SetNullableString(*s, 7, r.postal_code);
      SetNullableString(*s, 8, r.email.empty() ? "" : EmailMatchKey(r.email));
      s->setString(9, r.id);
      s->executeUpdate();
      WriteChildren(c, r, /*created=*/false);
      audit::Write(c, event);
      return r;
    });
    count_change = moves_identities;
  } while (moves_identities);
  if (!updated.ok())
    return DuplicateIdentity(*pool_, attempted, updated.status());
  return updated;
}

absl::Status MysqlCustomerStore::DeleteCustomer(
    const std::string& id, bool force,
    const std::function<absl::Status(const CustomerRecord&)>& check,
    const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    CountCustomerChange(c);
    RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
    RAPPORT_RETURN_IF_ERROR(check(r));
    Statement count =
        Prepare(c, "SELECT COUNT(*) FROM purchases WHERE customer_id = ?");
    count->setString(1, id);
    Rows rows(count->executeQuery());
    rows->next();
    const int64_t purchases = rows->getInt64(1);
    if (purchases > 0 && !force) {
      return absl::FailedPreconditionError(
          absl::StrCat("customer ", id, " has ", purchases,
                       " purchases; set force to delete them too"));
    }
    Statement interactions =
        Prepare(c, "SELECT COUNT(*) FROM interactions WHERE customer_id = ?");
    interactions->setString(1, id);
    Rows irows(interactions->executeQuery());
    irows->next();
    if (irows->getInt64(1) > 0 && !force) {
      return absl::FailedPreconditionError(
          absl::StrCat("customer ", id, " has ", irows->getInt64(1),
                       " interactions; set force to delete them too"));
    }
    // Consents are the proof of what the customer agreed to: deleted with the
    // rest only when asked for too.
    Statement consents = Prepare(
        c,
        "SELECT EXISTS (SELECT 1 FROM consents WHERE customer_id = ?) OR "
        "EXISTS (SELECT 1 FROM consent_history WHERE customer_id = ?) OR "
        "EXISTS (SELECT 1 FROM customers m STRAIGHT_JOIN consent_history x "
        "ON x.customer_id = m.id WHERE m.merged_into = ?)");
    for (int i = 1; i <= 3; ++i) consents->setString(i, id);
    Rows crows(consents->executeQuery());
    if (crows->next() && crows->getInt(1) != 0 && !force) {
      return absl::FailedPreconditionError(
          absl::StrCat("customer ", id,
                       " has consent records; set force to delete them too"));
    }
    const std::vector<audit::Event> events =
        WithMergedRecords(c, event, id, "deleted");
    for (const char* query :
         {"DELETE FROM purchases WHERE customer_id = ?",
          "DELETE FROM interactions WHERE customer_id = ?",
          "DELETE FROM consents WHERE customer_id = ?",
          "DELETE FROM consent_history WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN consent_history x "
          "ON x.customer_id = c.id WHERE c.merged_into = ?",
          "DELETE FROM customer_external_ids WHERE customer_id = ?",
          "DELETE FROM customer_attributes WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN customer_attributes x ON "
          "x.customer_id = c.id WHERE c.merged_into = ?",
          "DELETE FROM customer_create_requests WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN customer_create_requests x "
          "ON x.customer_id = c.id WHERE c.merged_into = ?",
          "DELETE FROM customers WHERE merged_into = ?",
          "DELETE FROM customers WHERE id = ?"}) {
      Statement s = Prepare(c, query);
      s->setString(1, id);
      s->executeUpdate();
    }
    differentiation::DeleteEntityValues(c, CustomerValueTables(), {id});
    audit::Write(c, events);
    return absl::OkStatus();
  });
}

absl::StatusOr<PurchaseRecord> MysqlCustomerStore::RecordOnePurchase(
    const PurchaseRecord& purchase, const RequestKey& request) {
  constexpr char kFind[] =
      "SELECT id, request_hash FROM purchases WHERE id = ?";
  auto load = [](sql::Connection& c,
                 const std::string& id) -> absl::StatusOr<PurchaseRecord> {
    Statement s = Prepare(c, absl::StrCat("SELECT ", kPurchaseColumns,
                                          " FROM purchases WHERE id = ?")
                                 .c_str());
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next())
      return absl::NotFoundError(absl::StrCat("purchase ", id, " not found"));
    return ReadPurchase(*rows);
  };
  // The usual case in one statement: a new request for a live customer. The
  // INSERT ... SELECT share-locks the customer's row like CheckLive does; a
  // retried request id fails on its unique key.
  absl::StatusOr<bool> inserted =
      pool_->Run([&](sql::Connection& c) -> absl::StatusOr<bool> {
        Statement s = Prepare(
            c,
            "INSERT INTO purchases (id, customer_id, purchase_time_us, amount, "
            "currency, description, create_time_us, request_id, request_hash, "
            "recorded_by) SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ? FROM customers "
            "WHERE id = ? AND merged_into IS NULL AND erased_time_us IS NULL");
        s->setString(1, purchase.id);
        s->setInt64(2, purchase.purchase_time_us);
        s->setString(3, purchase.amount.ToString());
        s->setString(4, purchase.currency);
        s->setString(5, purchase.description);
        s->setInt64(6, purchase.create_time_us);
        SetNullableString(*s, 7, request.id);
        SetNullableString(*s, 8, request.id.empty() ? "" : request.hash);
        SetNullableString(*s, 9, purchase.recorded_by);
        s->setString(10, purchase.customer_id);
        return s->executeUpdate() == 1;
      });
  if (inserted.ok() && *inserted) return purchase;
  // Otherwise the customer is unknown, merged or erased, or this is a retry:
  // sort it out under a transaction, retry first.
  absl::StatusOr<PurchaseRecord> recorded =
      inserted.ok() || absl::IsAlreadyExists(inserted.status())
          ? pool_->Transaction(
                [&](sql::Connection& c) -> absl::StatusOr<PurchaseRecord> {
                  RAPPORT_ASSIGN_OR_RETURN(
                      std::optional<std::string> earlier,
                      FindRequest(c, kFind, purchase.id, request));
                  if (earlier.has_value()) return load(c, *earlier);
                  RAPPORT_RETURN_IF_ERROR(CheckLive(c, purchase.customer_id));
                  return absl::AbortedError(
                      absl::StrCat("customer ", purchase.customer_id,
                                   " changed just now; retry"));
                })
          : absl::StatusOr<PurchaseRecord>(inserted.status());
  if (absl::IsAlreadyExists(recorded.status()) && !request.id.empty()) {
    // A concurrent retry won the race on the unique request id: answer as it
    // did.
    return pool_->Run(
        [&](sql::Connection& c) -> absl::StatusOr<PurchaseRecord> {
          RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> id,
                                   FindRequest(c, kFind, purchase.id, request));
          if (!id.has_value()) return recorded.status();
          return load(c, *id);
        });
  }
  return recorded;
}

std::vector<absl::StatusOr<PurchaseRecord>> MysqlCustomerStore::RecordPurchases(
    const std::vector<NewPurchase>& purchases) {
  std::vector<absl::StatusOr<PurchaseRecord>> out;
  out.reserve(purchases.size());
  // In chunks of up to 32, each one INSERT ... SELECT of the purchases of
  // live customers. What a chunk did not insert (customers that are not live
  // are left out; a retried request id fails the whole chunk on its unique
  // key) is settled one purchase at a time on the checked path.
  for (size_t begin = 0; begin < purchases.size();) {
    const size_t n = std::min<size_t>(32, purchases.size() - begin);
    absl::StatusOr<std::vector<bool>> inserted =
        n == 1 ? std::vector<bool>{false}
               : InsertLivePurchases(purchases, begin, n);
    if (absl::IsAlreadyExists(inserted.status()))
      inserted = std::vector<bool>(n, false);
    for (size_t i = begin; i < begin + n; ++i) {
      if (!inserted.ok()) {
        out.push_back(inserted.status());
      } else if ((*inserted)[i - begin]) {
        out.push_back(purchases[i].purchase);
      } else {
        out.push_back(
            RecordOnePurchase(purchases[i].purchase, purchases[i].request));
      }
    }
    begin += n;
  }
  return out;
}

absl::StatusOr<std::vector<bool>> MysqlCustomerStore::InsertLivePurchases(
    const std::vector<NewPurchase>& purchases, size_t begin, size_t n) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<bool>> {
    // Rows padded to a power of two, so that a few statement texts serve every
    // chunk: a padding row names no customer (empty id) and joins nothing.
    const size_t slots = std::bit_ceil(n);
    std::vector<std::string> rows(slots, "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?");
    rows[0] =
        "SELECT ? AS id, ? AS customer_id, ? AS purchase_time_us, ? AS amount, "
        "? AS currency, ? AS description, ? AS create_time_us, ? AS "
        "request_id, ? AS request_hash, ? AS recorded_by";
    Statement s = PrepareCached(
        c,
        absl::StrCat(
            "INSERT INTO purchases (id, customer_id, purchase_time_us, "
            "amount, currency, description, create_time_us, request_id, "
            "request_hash, recorded_by) SELECT t.id, c.id, "
            "t.purchase_time_us, t.amount, t.currency, t.description, "
            "t.create_time_us, t.request_id, t.request_hash, t.recorded_by "
            "FROM (",
            absl::StrJoin(rows, " UNION ALL "),
            ") t JOIN customers c ON c.id = t.customer_id WHERE "
            "c.merged_into IS NULL AND c.erased_time_us IS NULL"),
        StatementParameters::kKept);
    static const NewPurchase* const kPadding = new NewPurchase();
    for (size_t k = 0; k < slots; ++k) {
      const NewPurchase& p = k < n ? purchases[begin + k] : *kPadding;
      const int i = static_cast<int>(k) * 10;
      s->setString(i + 1, p.purchase.id);
      s->setString(i + 2, p.purchase.customer_id);
      s->setInt64(i + 3, p.purchase.purchase_time_us);
      s->setString(i + 4, p.purchase.amount.ToString());
      s->setString(i + 5, p.purchase.currency);
      s->setString(i + 6, p.purchase.description);
      s->setInt64(i + 7, p.purchase.create_time_us);
      SetNullableString(*s, i + 8, p.request.id);
      SetNullableString(*s, i + 9, p.request.id.empty() ? "" : p.request.hash);
      SetNullableString(*s, i + 10, p.purchase.recorded_by);
    }
    std::vector<bool> inserted(n, true);
    if (s->executeUpdate() == static_cast<int>(n)) return inserted;
    // Some customers were not live: which purchases went in?
    Statement which =
        Prepare(c, absl::StrCat("SELECT id FROM purchases WHERE id IN (",
                                Placeholders(n), ")")
                       .c_str());
    for (size_t k = 0; k < n; ++k)
      which->setString(static_cast<int>(k + 1),
                       purchases[begin + k].purchase.id);
    std::set<std::string> found;
    Rows ids(which->executeQuery());
    while (ids->next()) found.insert(ids->getString(1));
    // An id found is this statement's row when it was random; one keyed by
    // a request id may be an earlier request's (its customer merged or
    // erased since, so that the join left this one out): those go the
    // checked way, which compares the requests.
    for (size_t k = 0; k < n; ++k) {
      const NewPurchase& p = purchases[begin + k];
      inserted[k] = p.request.id.empty() && found.count(p.purchase.id) > 0;
    }
    return inserted;
  });
}

absl::StatusOr<std::vector<PurchaseRecord>> MysqlCustomerStore::ListPurchases(
    const PurchaseQuery& q) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<PurchaseRecord>> {
        std::string query =
            absl::StrCat("SELECT ", kPurchaseColumns,
                         " FROM purchases WHERE customer_id = ?");
        if (q.start_time_us) query += " AND purchase_time_us >= ?";
        if (q.end_time_us) query += " AND purchase_time_us < ?";
        // (time, id) > (t, i), spelled so that the time bounds an index range
        // (MariaDB takes no range from a row comparison).
        if (q.after) {
          query +=
              " AND purchase_time_us >= ? AND (purchase_time_us > ? OR id > ?)";
        }
        query += " ORDER BY purchase_time_us, id LIMIT ?";
        Statement s = Prepare(c, query.c_str());
        int i = 1;
        s->setString(i++, q.customer_id);
        if (q.start_time_us) s->setInt64(i++, *q.start_time_us);
        if (q.end_time_us) s->setInt64(i++, *q.end_time_us);
        if (q.after) {
          s->setInt64(i++, q.after->first);
          s->setInt64(i++, q.after->first);
          s->setString(i++, q.after->second);
        }
        s->setInt(i++, q.limit);
        Rows rows(s->executeQuery());
        std::vector<PurchaseRecord> out;
        while (rows->next()) out.push_back(ReadPurchase(*rows));
        if (out.empty()) {
          Statement exists = Prepare(c, "SELECT 1 FROM customers WHERE id = ?");
          exists->setString(1, q.customer_id);
          Rows found(exists->executeQuery());
          if (!found->next()) {
            return absl::NotFoundError(
                absl::StrCat("customer ", q.customer_id, " not found"));
          }
        }
        return out;
      });
}

absl::StatusOr<std::string> MysqlCustomerStore::ResolveCustomerId(
    const std::string& id) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    Statement s = Prepare(c, "SELECT merged_into FROM customers WHERE id = ?");
    std::string current = id;
    for (int hop = 0; hop < 16; ++hop) {
      s->setString(1, current);
      Rows rows(s->executeQuery());
      if (!rows->next())
        return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
      if (rows->isNull(1)) return current;
      current = rows->getString(1);
    }
    return absl::InternalError(
        absl::StrCat("customer ", id, ": merge chain too long"));
  });
}

absl::StatusOr<std::vector<std::string>> MysqlCustomerStore::FindByIdentities(
    const IdentityQuery& q) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        // An email or phone held by a merged record names the customer it was
        // merged into (merges keep merged_into pointing at one that stayed).
        std::set<std::string> ids;
        if (!q.email.empty()) {
          Statement s =
              Prepare(c,
                      "SELECT COALESCE(merged_into, id) FROM customers "
                      "WHERE email_key = ?");
          s->setString(1, EmailKey(q.email));
          Rows rows(s->executeQuery());
          while (rows->next()) ids.insert(rows->getString(1));
        }
        if (!q.phone.empty()) {
          Statement s =
              Prepare(c,
                      "SELECT COALESCE(merged_into, id) FROM customers "
                      "WHERE phone = ?");
          s->setString(1, q.phone);
          Rows rows(s->executeQuery());
          while (rows->next()) ids.insert(rows->getString(1));
        }
        if (!q.external_ids.empty()) {
          Statement s = Prepare(c,
                                "SELECT customer_id FROM customer_external_ids "
                                "WHERE source = ? AND external_id = ?");
          for (const ExternalIdRecord& e : q.external_ids) {
            s->setString(1, e.source);
            s->setString(2, e.id);
            Rows rows(s->executeQuery());
            while (rows->next()) ids.insert(rows->getString(1));
          }
        }
        return std::vector<std::string>(ids.begin(), ids.end());
      });
}

absl::StatusOr<std::vector<DuplicateGroupRecord>>
MysqlCustomerStore::FindDuplicates(const std::string& after_key, int limit) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<DuplicateGroupRecord>> {
    // Each query yields (key, ids oldest first); identities that must be unique
    // (phone, external ids) cannot form groups, so email and name + postal code
    // do. Two groups may show one key ("a|b" in "c" and "a" in "b|c"), so
    // a page ends after a key and a group's oldest id (see DuplicatesAfter).
    const std::pair<const char*, const char*> kQueries[] = {
        {"email",
         "SELECT email_match_key, GROUP_CONCAT(id ORDER BY create_time_us, id "
         "SEPARATOR ',') "
         "FROM customers WHERE merged_into IS NULL AND email_match_key IS NOT "
         "NULL "
         "GROUP BY email_match_key HAVING COUNT(*) > 1"},
        // The name in lower case with its runs of spaces as one; the
        // postal code in upper case without spaces, and a ZIP+4 as its ZIP
        // ("sw1a 1aa" is SW1A1AA, "94105-1234" is 94105).
        {"name_postal_code",
         "SELECT CONCAT(n, '|', p), "
         "GROUP_CONCAT(id ORDER BY create_time_us, id SEPARATOR ',') "
         "FROM (SELECT id, create_time_us, "
         "LOWER(TRIM(REGEXP_REPLACE(display_name, '[[:space:]]+', ' '))) AS n, "
         "REGEXP_REPLACE(UPPER(REGEXP_REPLACE(postal_code, '[[:space:]]+', "
         "'')), '^([0-9]{5})-[0-9]{4}$', '\\\\1') AS p "
         "FROM customers WHERE merged_into IS NULL AND erased_time_us IS NULL "
         "AND postal_code IS NOT NULL AND postal_code <> '') AS keyed "
         "WHERE p <> '' GROUP BY n, p HAVING COUNT(*) > 1"},
    };
    std::vector<DuplicateGroupRecord> groups;
    std::unique_ptr<sql::Statement> s(c.createStatement());
    for (const auto& [reason, query] : kQueries) {
      Rows rows(s->executeQuery(query));
      while (rows->next()) {
        DuplicateGroupRecord g;
        g.reason = reason;
        g.key = rows->getString(1);
        g.customer_ids = absl::StrSplit(std::string(rows->getString(2)), ',');
        if (DuplicatesAfter(g, after_key)) groups.push_back(std::move(g));
      }
    }
    std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
      return std::tie(a.reason, a.key, a.customer_ids.front()) <
             std::tie(b.reason, b.key, b.customer_ids.front());
    });
    if (static_cast<int>(groups.size()) > limit) groups.resize(limit);
    return groups;
  });
}

namespace {

// Runs `update` (one '?' for the duplicate id, then one for the primary, or
// the reverse as `primary_first` says) for each duplicate; returns rows
// changed.
int64_t MoveRows(sql::Connection& c, const char* update,
                 const std::string& primary,
                 const std::vector<std::string>& duplicates) {
  Statement s = Prepare(c, update);
  int64_t moved = 0;
  for (const std::string& d : duplicates) {
    s->setString(1, primary);
    s->setString(2, d);
    moved += s->executeUpdate();
  }
  return moved;
}

}  // namespace

namespace {

// The merge of exactly `duplicates` into `primary` when it is done already
// (every duplicate merged into the primary, by one merge, and the primary
// itself not merged), with the counts it recorded; nullopt otherwise.
absl::StatusOr<std::optional<MergeResult>> RecordedMerge(
    sql::Connection& c, const std::string& primary,
    const std::vector<std::string>& duplicates,
    const std::map<std::string, std::string>& merged_into) {
  if (merged_into.contains(primary) ||
      merged_into.size() != duplicates.size()) {
    return std::optional<MergeResult>();
  }
  for (const auto& [id, into] : merged_into) {
    if (into != primary) return std::optional<MergeResult>();
  }
  Statement s =
      Prepare(c,
              "SELECT primary_id, merge_time_us, actor, moved_purchases, "
              "moved_interactions, moved_consents, moved_identities FROM "
              "customer_merges WHERE merged_id = ?");
  std::optional<std::tuple<int64_t, std::string>> merge;
  MergeResult out;
  for (const std::string& d : duplicates) {
    s->setString(1, d);
    Rows rows(s->executeQuery());
    if (!rows->next() || rows->getString(1) != primary) {
      return std::optional<MergeResult>();
    }
    std::tuple<int64_t, std::string> this_merge(rows->getInt64(2),
                                                rows->getString(3));
    if (merge.has_value() && *merge != this_merge) {
      return std::optional<MergeResult>();
    }
    merge = std::move(this_merge);
    out.moved_purchases = rows->getInt64(4);
    out.moved_interactions = rows->getInt64(5);
    out.moved_consents = rows->getInt64(6);
    out.moved_identities = rows->getInt64(7);
  }
  // And that merge took no others: a part of it is not a retry of it.
  Statement all = Prepare(c,
                          "SELECT COUNT(*) FROM customer_merges WHERE "
                          "primary_id = ? AND merge_time_us = ? AND actor = ?");
  all->setString(1, primary);
  all->setInt64(2, std::get<0>(*merge));
  all->setString(3, std::get<1>(*merge));
  Rows count(all->executeQuery());
  if (!count->next() ||
      count->getInt64(1) != static_cast<int64_t>(duplicates.size())) {
    return std::optional<MergeResult>();
  }
  return std::optional<MergeResult>(std::move(out));
}

}  // namespace

absl::StatusOr<MergeResult> MysqlCustomerStore::MergeCustomers(
    const std::string& primary, const std::vector<std::string>& duplicates,
    const audit::Event& event, bool dry_run) {
  const int64_t now_us = event.time_us;
  const std::string& actor = event.actor;
  MergeResult result;
  // READ COMMITTED: each customer's row is locked before its attributes and
  // external ids are read, which then are what an update that held the lock
  // left (a snapshot taken at the first read would bring back what it
  // removed).
  absl::Status done = pool_->Transaction(
      [&](sql::Connection& c) -> absl::Status {
        result = MergeResult();
        CountCustomerChange(c);
        // Lock every row in id order, so concurrent merges cannot deadlock.
        std::vector<std::string> all = duplicates;
        all.push_back(primary);
        std::sort(all.begin(), all.end());
        std::map<std::string, CustomerRecord> records;
        std::map<std::string, std::string> merged_into;
        Statement merged =
            Prepare(c, "SELECT merged_into FROM customers WHERE id = ?");
        for (const std::string& id : all) {
          RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
          merged->setString(1, id);
          Rows rows(merged->executeQuery());
          rows->next();
          if (!rows->isNull(1)) merged_into[id] = rows->getString(1);
          if (r.erased) {
            return absl::FailedPreconditionError(
                absl::StrCat("customer ", id, " was erased"));
          }
          records[id] = std::move(r);
        }
        if (!merged_into.empty()) {
          // This very merge, done already (a retry whose answer was lost): its
          // answer again, from what it recorded, and nothing written.
          RAPPORT_ASSIGN_OR_RETURN(
              std::optional<MergeResult> recorded,
              RecordedMerge(c, primary, duplicates, merged_into));
          if (recorded.has_value()) {
            result = *std::move(recorded);
            result.primary = records[primary];
            return absl::OkStatus();
          }
          const auto& [id, into] = *merged_into.begin();
          return absl::FailedPreconditionError(
              absl::StrCat("customer ", id, " was already merged into ", into));
        }
        CustomerRecord& p = records[primary];
        // What the merged record would hold stays within what one customer may
        // hold (a later update sending it back would be refused otherwise).
        {
          size_t external_ids = p.external_ids.size();
          std::set<std::string> attribute_keys;
          for (const auto& [key, value] : p.attributes)
            attribute_keys.insert(key);
          for (const std::string& d : duplicates) {
            external_ids += records[d].external_ids.size();
            for (const auto& [key, value] : records[d].attributes)
              attribute_keys.insert(key);
          }
          if (external_ids > static_cast<size_t>(kMaxExternalIds) ||
              attribute_keys.size() > static_cast<size_t>(kMaxAttributes)) {
            return absl::FailedPreconditionError(
                absl::StrCat("the merged customer would have ", external_ids,
                             " external ids and ", attribute_keys.size(),
                             " attributes; a customer has at most ",
                             kMaxExternalIds, " and ", kMaxAttributes,
                             ": remove some from the duplicates first"));
          }
        }
        // Identities: the primary keeps its own; it takes an email, phone or
        // postal code it lacks from the first duplicate that has one. A
        // duplicate's email and phone that the primary does not take stay on
        // the merged record, their unique keys with them, so that they go on
        // finding the primary (lookups follow merged_into) and no one else can
        // claim them. The phone is also copied to merged_phone, which erasure
        // reads.
        Statement keep_keys = Prepare(
            c,
            "UPDATE customers SET merged_phone = phone, email_match_key = "
            "NULL, "
            "email_key = IF(?, NULL, email_key), phone = IF(?, NULL, phone) "
            "WHERE id = ?");
        for (const std::string& d : duplicates) {
          const CustomerRecord& r = records[d];
          const bool takes_email = p.email.empty() && !r.email.empty();
          const bool takes_phone = p.phone.empty() && !r.phone.empty();
          keep_keys->setBoolean(1, takes_email);
          keep_keys->setBoolean(2, takes_phone);
          keep_keys->setString(3, d);
          keep_keys->executeUpdate();
          if (takes_email) {
            p.email = r.email;
            ++result.moved_identities;
          }
          if (takes_phone) {
            p.phone = r.phone;
            ++result.moved_identities;
          }
          if (p.postal_code.empty()) p.postal_code = r.postal_code;
          for (const auto& [key, value] : r.attributes)
            p.attributes.emplace(key, value);
        }
        result.moved_identities +=
            MoveRows(c,
                     "UPDATE customer_external_ids SET "
                     "customer_id = ? WHERE customer_id = ?",
                     primary, duplicates);
        result.moved_purchases += MoveRows(
            c, "UPDATE purchases SET customer_id = ? WHERE customer_id = ?",
            primary, duplicates);
        result.moved_interactions += MoveRows(
            c, "UPDATE interactions SET customer_id = ? WHERE customer_id = ?",
            primary, duplicates);
        // Consents: per (purpose, channel) the most recently captured one wins.
        Statement take_consent = Prepare(
            c,
            "INSERT INTO consents (customer_id, purpose, channel, granted, "
            "capture_time_us, source) "
            "SELECT ?, purpose, channel, granted, capture_time_us, source "
            "FROM consents d "
            "WHERE d.customer_id = ? ON DUPLICATE KEY UPDATE "
            "granted = IF(VALUES(capture_time_us) > "
            "consents.capture_time_us, VALUES(granted), "
            "consents.granted), "
            "source = IF(VALUES(capture_time_us) > "
            "consents.capture_time_us, VALUES(source), "
            "consents.source), "
            "capture_time_us = GREATEST(consents.capture_time_us, "
            "VALUES(capture_time_us))");
        Statement count_consents =
            Prepare(c, "SELECT COUNT(*) FROM consents WHERE customer_id = ?");
        for (const std::string& d : duplicates) {
          count_consents->setString(1, d);
          Rows rows(count_consents->executeQuery());
          rows->next();
          result.moved_consents += rows->getInt64(1);
          take_consent->setString(1, primary);
          take_consent->setString(2, d);
          take_consent->executeUpdate();
        }
        {
          Statement held =
              Prepare(c, "SELECT COUNT(*) FROM consents WHERE customer_id = ?");
          held->setString(1, primary);
          Rows rows(held->executeQuery());
          rows->next();
          if (rows->getInt64(1) > kMaxConsents) {
            return absl::FailedPreconditionError(absl::StrCat(
                "the merged customer would hold ", rows->getInt64(1),
                " consents (a purpose on a channel each); a customer holds at "
                "most ",
                kMaxConsents));
          }
        }
        // The consent history follows the consents.
        MoveRows(
            c,
            "UPDATE consent_history SET customer_id = ? WHERE customer_id = ?",
            primary, duplicates);
        for (const char* query :
             {"DELETE FROM consents WHERE customer_id = ?",
              "DELETE FROM customer_attributes WHERE customer_id = ?"}) {
          Statement s = Prepare(c, query);
          for (const std::string& d : duplicates) {
            s->setString(1, d);
            s->executeUpdate();
          }
        }
        differentiation::DeleteEntityValues(c, CustomerValueTables(),
                                            duplicates);
        Statement mark = Prepare(
            c,
            "UPDATE customers SET merged_into = ?, version = version + 1, "
            "update_time_us = ? WHERE id = ?");
        Statement audit = Prepare(
            c,
            "INSERT INTO customer_merges (merged_id, primary_id, actor, "
            "merge_time_us, moved_purchases, moved_interactions, "
            "moved_consents, moved_identities) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "?)");
        for (const std::string& d : duplicates) {
          mark->setString(1, primary);
          mark->setInt64(2, now_us);
          mark->setString(3, d);
          mark->executeUpdate();
          audit->setString(1, d);
          audit->setString(2, primary);
          audit->setString(3, actor);
          audit->setInt64(4, now_us);
          audit->setInt64(5, result.moved_purchases);
          audit->setInt64(6, result.moved_interactions);
          audit->setInt64(7, result.moved_consents);
          audit->setInt64(8, result.moved_identities);
          audit->executeUpdate();
        }
        // Merges that pointed at a duplicate now point at the primary.
        MoveRows(c,
                 "UPDATE customers SET merged_into = ? WHERE merged_into = ?",
                 primary, duplicates);
        // The primary, with what it took over.
        p.version += 1;
        p.update_time_us = std::max(now_us, p.update_time_us);
        Statement s =
            Prepare(c,
                    "UPDATE customers SET email = ?, email_key = ?, phone = ?, "
                    "postal_code = ?, email_match_key = ?, version = ?, "
                    "update_time_us = ? "
                    "WHERE id = ?");
        SetNullableString(*s, 1, p.email);
        SetNullableString(*s, 2, EmailKey(p.email));
        SetNullableString(*s, 3, p.phone);
        SetNullableString(*s, 4, p.postal_code);
        SetNullableString(*s, 5, p.email.empty() ? "" : EmailMatchKey(p.email));
        s->setInt64(6, p.version);
        s->setInt64(7, p.update_time_us);
        s->setString(8, primary);
        s->executeUpdate();
        Statement attr = Prepare(
            c,
            "INSERT IGNORE INTO customer_attributes (customer_id, name, value) "
            "VALUES (?, ?, ?)");
        for (const auto& [key, value] : p.attributes) {
          attr->setString(1, primary);
          attr->setString(2, key);
          attr->setString(3, value);
          attr->executeUpdate();
        }
        RAPPORT_ASSIGN_OR_RETURN(result.primary,
                                 LoadCustomer(c, primary, false));
        // A dry run computes everything and then rolls it all back.
        if (dry_run) return absl::CancelledError("dry run");
        // The primary's event, and one under each duplicate, so that the
        // audit log of a merged record says where it went (and a merge of
        // many is not cut to the first ids by the details' length).
        std::vector<audit::Event> events = {event};
        for (const std::string& d : duplicates) {
          audit::Event& merged = events.emplace_back(event);
          merged.resource = absl::StrCat("customers/", d);
          merged.details = absl::StrCat("merged into ", primary);
        }
        audit::Write(c, events);
        return absl::OkStatus();
      },
      MysqlPool::Isolation::kReadCommitted);
  if (dry_run && absl::IsCancelled(done)) return result;
  if (!done.ok()) return done;
  return result;
}

Migration TrimmedEmailsMigration(int version) {
  return Migration{
      version, "trimmed_emails",
      "-- Emails with invisible characters at their ends trimmed, and their "
      "keys made again.\n",
      [version](sql::Connection& c) {
        // (id, the email as read, the email trimmed)
        std::vector<std::tuple<std::string, std::string, std::string>> changed;
        {
          // LENGTH counts bytes, CHAR_LENGTH characters: they differ exactly
          // when the email has a character past ASCII.
          std::unique_ptr<sql::Statement> read(c.createStatement());
          Rows rows(read->executeQuery(
              "SELECT id, email FROM customers WHERE email IS NOT NULL AND "
              "LENGTH(email) <> CHAR_LENGTH(email)"));
          while (rows->next()) {
            const std::string email = rows->getString(2);
            absl::StatusOr<std::string> trimmed =
                NormalizeEmail(email, "email");
            if (trimmed.ok() && *trimmed != email)
              changed.emplace_back(rows->getString(1), email,
                                   *std::move(trimmed));
          }
        }
        // A merged record keeps no match key (merges clear it). A customer
        // changed gets a new version (its etag changes), and an audit event.
        // Both came after the migration's first release (b6ab4e9): a
        // database that applied it then has its trimmed rows unaudited. The
        // description, whose checksum applied databases keep, is unchanged.
        std::unique_ptr<sql::PreparedStatement> write(c.prepareStatement(
            "UPDATE customers SET email = ?, email_match_key = IF(merged_into "
            "IS NULL, ?, NULL), email_key = IF(email_key IS NULL, NULL, ?), "
            "version = version + 1, update_time_us = ? WHERE id = ? AND "
            "email = ?"));
        const int64_t now_us = absl::ToUnixMicros(absl::Now());
        std::vector<audit::Event> events;
        std::unique_ptr<sql::PreparedStatement> match_only(c.prepareStatement(
            "UPDATE customers SET email_match_key = ? WHERE id = ? AND "
            "merged_into IS NULL AND email = ?"));
        std::vector<std::string> held;
        // Each by the email it was read with: one that a serving replica
        // (an older one, during a rolling update) changed meanwhile is left
        // as that change made it.
        for (const auto& [id, read, email] : changed) {
          write->setString(1, email);
          write->setString(2, EmailMatchKey(email));
          write->setString(3, EmailKey(email));
          write->setInt64(4, now_us);
          write->setString(5, id);
          write->setString(6, read);
          try {
            if (write->executeUpdate() == 0) continue;
            events.push_back(audit::MigrationEvent(
                now_us, version, absl::StrCat("customers/", id),
                "email trimmed"));
          } catch (const sql::SQLException& e) {
            if (e.getErrorCode() != 1062) throw;
            // Another customer holds the trimmed address: this one keeps
            // its email, and takes the match key that shows the two as
            // duplicates to merge (FindDuplicates).
            match_only->setString(1, EmailMatchKey(email));
            match_only->setString(2, id);
            match_only->setString(3, read);
            match_only->executeUpdate();
            held.push_back(id);
          }
        }
        audit::Write(c, events);
        if (!held.empty()) {
          LogLine("warn", ProcessService(),
                  "customers whose email, trimmed, another customer holds: "
                  "kept as they were, shown as duplicates to merge",
                  {{"customers", absl::StrJoin(held, ",")}});
        }
      }};
}

Migration MergedIdentitiesMigration(int version) {
  return Migration{
      version, "merged_identities",
      "-- Merged records get back the unique keys of their email "
      "(email_key) and phone (from merged_phone), where no record holds "
      "them.\n",
      [](sql::Connection& c) {
        std::unique_ptr<sql::Statement> read(c.createStatement());
        std::vector<std::tuple<std::string, std::string, std::string>> rows;
        {
          Rows found(read->executeQuery(
              "SELECT id, COALESCE(email, ''), COALESCE(merged_phone, '') "
              "FROM customers WHERE merged_into IS NOT NULL AND "
              "erased_time_us IS NULL AND ((email_key IS NULL AND email IS "
              "NOT NULL) OR (phone IS NULL AND merged_phone IS NOT NULL))"));
          while (found->next()) {
            rows.emplace_back(found->getString(1), found->getString(2),
                              found->getString(3));
          }
        }
        Statement email_holder =
            Prepare(c, "SELECT 1 FROM customers WHERE email_key = ?");
        Statement phone_holder =
            Prepare(c, "SELECT 1 FROM customers WHERE phone = ?");
        Statement set_email =
            Prepare(c,
                    "UPDATE customers SET email_key = ? WHERE id = ? AND "
                    "email_key IS NULL");
        Statement set_phone = Prepare(
            c, "UPDATE customers SET phone = ? WHERE id = ? AND phone IS NULL");
        for (const auto& [id, email, phone] : rows) {
          if (!email.empty()) {
            const std::string key = EmailKey(email);
            email_holder->setString(1, key);
            Rows held(email_holder->executeQuery());
            if (!held->next()) {
              set_email->setString(1, key);
              set_email->setString(2, id);
              set_email->executeUpdate();
            }
          }
          if (!phone.empty()) {
            phone_holder->setString(1, phone);
            Rows held(phone_holder->executeQuery());
            if (!held->next()) {
              set_phone->setString(1, phone);
              set_phone->setString(2, id);
              set_phone->executeUpdate();
            }
          }
        }
      }};
}

absl::StatusOr<std::vector<IdentityQuery>> MysqlCustomerStore::MergedIdentities(
    const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<IdentityQuery>> {
        Statement s = Prepare(c,
                              "SELECT id, email, merged_phone FROM customers "
                              "WHERE merged_into = ? ORDER BY id");
        s->setString(1, id);
        std::vector<std::pair<std::string, IdentityQuery>> merged;
        {
          Rows rows(s->executeQuery());
          while (rows->next()) {
            IdentityQuery q;
            q.email = TextOrEmpty(*rows, 2);
            q.phone = TextOrEmpty(*rows, 3);
            merged.emplace_back(rows->getString(1), std::move(q));
          }
        }
        // An identity the customer gave up since the merge, and someone
        // else holds now, is that someone's: not this person's to suppress.
        Statement email_holder =
            Prepare(c, "SELECT id FROM customers WHERE email_key = ?");
        Statement phone_holder =
            Prepare(c, "SELECT id FROM customers WHERE phone = ?");
        auto held_by_another = [&](Statement& holder, const std::string& key,
                                   const std::string& record) {
          holder->setString(1, key);
          Rows rows(holder->executeQuery());
          if (!rows->next()) return false;
          const std::string by = rows->getString(1);
          return by != record && by != id;
        };
        std::vector<IdentityQuery> out;
        for (auto& [record, q] : merged) {
          if (!q.email.empty() &&
              held_by_another(email_holder, EmailKey(q.email), record)) {
            q.email.clear();
          }
          if (!q.phone.empty() &&
              held_by_another(phone_holder, q.phone, record)) {
            q.phone.clear();
          }
          out.push_back(std::move(q));
        }
        return out;
      });
}

absl::StatusOr<std::vector<std::string>> MysqlCustomerStore::CreateRequestsOf(
    const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<std::string>> {
        Statement s =
            Prepare(c,
                    "SELECT request_id FROM customer_create_requests WHERE "
                    "customer_id = ? UNION ALL SELECT r.request_id FROM "
                    "customers c JOIN customer_create_requests r ON "
                    "r.customer_id = c.id WHERE c.merged_into = ? ORDER BY 1");
        s->setString(1, id);
        s->setString(2, id);
        Rows rows(s->executeQuery());
        std::vector<std::string> out;
        while (rows->next()) out.push_back(rows->getString(1));
        return out;
      });
}

absl::Status MysqlCustomerStore::EraseCustomer(
    const std::string& id, const std::vector<std::string>& suppression_hashes,
    const std::function<absl::Status(const CustomerRecord&)>& check,
    const audit::Event& event) {
  const int64_t now_us = event.time_us;
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    CountCustomerChange(c);
    RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
    // Erased by a copy of this call that ran first: done, and audited once.
    if (r.erased) return absl::OkStatus();
    // Merged since the caller looked: the person's data is on the customer
    // it was merged into, which is the one to erase.
    if (!r.merged_into.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat("customer ", id, " was merged into ", r.merged_into,
                       "; erase that one instead"));
    }
    RAPPORT_RETURN_IF_ERROR(check(r));
    const std::vector<audit::Event> events =
        WithMergedRecords(c, event, id, "erased");
    // The customer and every record merged into it are the same person.
    // Each statement by one key (an OR of two keys, or of a key and a
    // subquery, would read and lock every row of its table).
    for (const char* which : {"id = ?", "merged_into = ?"}) {
      Statement anonymise = PrepareCached(
          c, absl::StrCat(
                 "UPDATE customers SET display_name = '(erased)', email = "
                 "NULL, email_key = NULL, email_match_key = NULL, phone = "
                 "NULL, merged_phone = NULL, postal_code = NULL, "
                 "erased_time_us = ?, update_time_us = ?, version = version "
                 "+ 1 WHERE ",
                 which));
      anonymise->setInt64(1, now_us);
      anonymise->setInt64(2, now_us);
      anonymise->setString(3, id);
      anonymise->executeUpdate();
    }
    for (const char* query :
         {"DELETE FROM customer_external_ids WHERE customer_id = ?",
          "DELETE FROM customer_attributes WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN customer_attributes x ON "
          "x.customer_id = c.id WHERE c.merged_into = ?",
          "DELETE FROM consents WHERE customer_id = ?",
          "DELETE FROM consent_history WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN consent_history x "
          "ON x.customer_id = c.id WHERE c.merged_into = ?",
          "DELETE FROM customer_create_requests WHERE customer_id = ?",
          "DELETE x FROM customers c STRAIGHT_JOIN customer_create_requests x "
          "ON x.customer_id = c.id WHERE c.merged_into = ?",
          // A request id may have been made of personal data (an email, an
          // order reference): retries find rows by their keyed ids, and the
          // 'erased' hash answers them.
          "UPDATE interactions SET note = '', request_id = NULL, request_hash "
          "= 'erased' WHERE customer_id = ?",
          "UPDATE purchases SET description = '', request_id = NULL, "
          "request_hash = 'erased' WHERE customer_id = ?"}) {
      Statement s = Prepare(c, query);
      s->setString(1, id);
      s->executeUpdate();
    }
    // Its values go too (those of the records merged into it went with
    // their merge), in the live set and the previous one.
    differentiation::DeleteEntityValues(c, CustomerValueTables(), {id});
    Statement suppress =
        Prepare(c,
                "INSERT IGNORE INTO suppressed_identities (identity_hash, "
                "erase_time_us) VALUES (?, ?)");
    for (const std::string& h : suppression_hashes) {
      suppress->setString(1, h);
      suppress->setInt64(2, now_us);
      suppress->executeUpdate();
    }
    audit::Write(c, events);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> MysqlCustomerStore::SuppressedAmong(
    const std::vector<std::string>& hashes) {
  if (hashes.empty()) return std::vector<std::string>();
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<std::string>> {
    // kLoadChunk hashes per statement.
    absl::flat_hash_set<std::string> found;
    for (size_t begin = 0; begin < hashes.size(); begin += kLoadChunk) {
      const size_t n = std::min(kLoadChunk, hashes.size() - begin);
      const size_t slots = std::bit_ceil(n);
      Statement s = PrepareCached(
          c,
          absl::StrCat("SELECT identity_hash FROM suppressed_identities WHERE "
                       "identity_hash IN (",
                       Placeholders(slots), ")"),
          StatementParameters::kKept);
      BindPadded(*s, 1, hashes, begin, n, slots);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        found.insert(absl::AsciiStrToLower(rows->getString(1).asStdString()));
      }
    }
    // The hashes as asked, each once (the column compares them without
    // case).
    std::vector<std::string> out;
    for (const std::string& h : hashes) {
      if (found.erase(absl::AsciiStrToLower(h)) > 0) out.push_back(h);
    }
    return out;
  });
}

namespace {

constexpr char kInteractionColumns[] =
    "id, customer_id, channel, kind, interaction_time_us, cost, note, "
    "create_time_us, recorded_by";

InteractionRecord ReadInteraction(sql::ResultSet& rows) {
  InteractionRecord r;
  r.id = rows.getString(1);
  r.customer_id = rows.getString(2);
  r.channel = rows.getInt(3);
  r.kind = rows.getString(4);
  r.interaction_time_us = rows.getInt64(5);
  r.cost = DecimalColumn(rows, 6).value_or(Decimal());
  r.note = rows.getString(7);
  r.create_time_us = rows.getInt64(8);
  r.recorded_by = TextOrEmpty(rows, 9);
  return r;
}

}  // namespace

absl::StatusOr<InteractionRecord> MysqlCustomerStore::LogInteraction(
    const InteractionRecord& interaction, const RequestKey& request,
    const std::optional<audit::Event>& event,
    const std::function<absl::Status()>& admit) {
  constexpr char kFind[] =
      "SELECT id, request_hash FROM interactions WHERE id = ?";
  auto load = [](sql::Connection& c,
                 const std::string& id) -> absl::StatusOr<InteractionRecord> {
    Statement s = Prepare(c, absl::StrCat("SELECT ", kInteractionColumns,
                                          " FROM interactions WHERE id = ?")
                                 .c_str());
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next())
      return absl::NotFoundError(
          absl::StrCat("interaction ", id, " not found"));
    return ReadInteraction(*rows);
  };
  absl::StatusOr<InteractionRecord> logged = pool_->Transaction(
      [&](sql::Connection& c) -> absl::StatusOr<InteractionRecord> {
        RAPPORT_ASSIGN_OR_RETURN(
            std::optional<std::string> earlier,
            FindRequest(c, kFind, interaction.id, request));
        if (earlier.has_value()) return load(c, *earlier);
        RAPPORT_RETURN_IF_ERROR(CheckLive(c, interaction.customer_id));
        if (admit) RAPPORT_RETURN_IF_ERROR(admit());
        Statement s = Prepare(
            c,
            "INSERT INTO interactions (id, customer_id, channel, kind, "
            "interaction_time_us, cost, note, create_time_us, request_id, "
            "request_hash, recorded_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?)");
        s->setString(1, interaction.id);
        s->setString(2, interaction.customer_id);
        s->setInt(3, interaction.channel);
        s->setString(4, interaction.kind);
        s->setInt64(5, interaction.interaction_time_us);
        s->setString(6, interaction.cost.ToString());
        s->setString(7, interaction.note);
        s->setInt64(8, interaction.create_time_us);
        SetNullableString(*s, 9, request.id);
        SetNullableString(*s, 10, request.id.empty() ? "" : request.hash);
        SetNullableString(*s, 11, interaction.recorded_by);
        s->executeUpdate();
        if (event.has_value()) audit::Write(c, *event);
        return interaction;
      });
  if (absl::IsAlreadyExists(logged.status()) && !request.id.empty()) {
    return pool_->Run(
        [&](sql::Connection& c) -> absl::StatusOr<InteractionRecord> {
          RAPPORT_ASSIGN_OR_RETURN(
              std::optional<std::string> id,
              FindRequest(c, kFind, interaction.id, request));
          if (!id.has_value()) return logged.status();
          return load(c, *id);
        });
  }
  return logged;
}

absl::StatusOr<std::vector<InteractionRecord>>
MysqlCustomerStore::ListInteractions(const InteractionQuery& q) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<InteractionRecord>> {
    std::string query =
        absl::StrCat("SELECT ", kInteractionColumns,
                     " FROM interactions WHERE customer_id = ?");
    // (time, id) > (t, i), spelled so that the time bounds an index range
    // (MariaDB takes no range from a row comparison).
    if (q.after) {
      query +=
          " AND interaction_time_us >= ? AND (interaction_time_us > ? OR id > "
          "?)";
    }
    query += " ORDER BY interaction_time_us, id LIMIT ?";
    Statement s = Prepare(c, query.c_str());
    int i = 1;
    s->setString(i++, q.customer_id);
    if (q.after) {
      s->setInt64(i++, q.after->first);
      s->setInt64(i++, q.after->first);
      s->setString(i++, q.after->second);
    }
    s->setInt(i++, q.limit);
    Rows rows(s->executeQuery());
    std::vector<InteractionRecord> out;
    while (rows->next()) out.push_back(ReadInteraction(*rows));
    return out;
  });
}

absl::Status MysqlCustomerStore::SetConsent(const std::string& customer_id,
                                            const ConsentRecord& consent,
                                            const audit::Event& event) {
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    // Checked here, with the row locked, and not only before: an erasure or
    // merge committed since would otherwise get the consent written to an
    // erased person or to a merged record that no one reads.
    // The customer's row locked for update: consents to one customer are
    // recorded one at a time, so that two copies of one call in flight at
    // once cannot both miss each other below. (A locking read of the history
    // would lock its index gaps, which unrelated consents share, and make
    // them deadlock.)
    RAPPORT_RETURN_IF_ERROR(CheckLive(c, customer_id, /*exclusive=*/true));
    // A retry of a call whose answer was lost finds its capture recorded:
    // the same purpose, channel, capture time, grant and source. It changes
    // nothing and is not audited again.
    Statement same = Prepare(
        c,
        "SELECT granted, source FROM consent_history WHERE customer_id = ? "
        "AND purpose = ? AND channel = ? AND capture_time_us = ?");
    same->setString(1, customer_id);
    same->setString(2, consent.purpose);
    same->setInt(3, consent.channel);
    same->setInt64(4, consent.capture_time_us);
    Rows recorded(same->executeQuery());
    while (recorded->next()) {
      // Compared here, byte for byte: the column's collation ignores case.
      if (recorded->getBoolean(1) == consent.granted &&
          std::string(recorded->getString(2)) == consent.source) {
        return absl::OkStatus();
      }
    }
    // A new (purpose, channel) within what one customer may hold.
    Statement held = Prepare(
        c,
        "SELECT COUNT(*), COALESCE(SUM(purpose = ? AND channel = ?), 0) "
        "FROM consents WHERE customer_id = ?");
    held->setString(1, consent.purpose);
    held->setInt(2, consent.channel);
    held->setString(3, customer_id);
    Rows count(held->executeQuery());
    count->next();
    if (count->getInt64(2) == 0 && count->getInt64(1) >= kMaxConsents) {
      return absl::FailedPreconditionError(absl::StrCat(
          "consent.purpose: customer ", customer_id, " holds ",
          count->getInt64(1), " consents (a purpose on a channel each), the ",
          "most one may; set one it holds instead"));
    }
    Statement history = Prepare(
        c,
        "INSERT INTO consent_history (customer_id, purpose, channel, granted, "
        "capture_time_us, source, record_time_us, recorded_by) VALUES "
        "(?, ?, ?, ?, ?, ?, ?, ?)");
    history->setString(1, customer_id);
    history->setString(2, consent.purpose);
    history->setInt(3, consent.channel);
    history->setBoolean(4, consent.granted);
    history->setInt64(5, consent.capture_time_us);
    history->setString(6, consent.source);
    history->setInt64(7, event.time_us);
    history->setString(8, event.actor);
    history->executeUpdate();
    // The current consent is the one captured last: an older capture (a late
    // retry, an old paper form) never overwrites a newer withdrawal. On a tie
    // the later write wins.
    Statement s = Prepare(
        c,
        "INSERT INTO consents (customer_id, purpose, channel, granted, "
        "capture_time_us, source) VALUES (?, ?, ?, ?, ?, ?) "
        "ON DUPLICATE KEY UPDATE "
        "granted = IF(VALUES(capture_time_us) >= consents.capture_time_us, "
        "VALUES(granted), consents.granted), "
        "source = IF(VALUES(capture_time_us) >= consents.capture_time_us, "
        "VALUES(source), consents.source), "
        "capture_time_us = GREATEST(consents.capture_time_us, "
        "VALUES(capture_time_us))");
    s->setString(1, customer_id);
    s->setString(2, consent.purpose);
    s->setInt(3, consent.channel);
    s->setBoolean(4, consent.granted);
    s->setInt64(5, consent.capture_time_us);
    s->setString(6, consent.source);
    s->executeUpdate();
    audit::Write(c, event);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ConsentRecord>> MysqlCustomerStore::ListConsents(
    const std::string& customer_id) {
  return pool_->Run([&](sql::Connection& c)
                        -> absl::StatusOr<std::vector<ConsentRecord>> {
    Statement s = Prepare(c,
                          "SELECT purpose, channel, granted, capture_time_us, "
                          "source FROM consents "
                          "WHERE customer_id = ? ORDER BY purpose, channel");
    s->setString(1, customer_id);
    Rows rows(s->executeQuery());
    std::vector<ConsentRecord> out;
    while (rows->next()) {
      out.push_back({rows->getString(1), rows->getInt(2), rows->getBoolean(3),
                     rows->getInt64(4), rows->getString(5)});
    }
    return out;
  });
}

absl::Status MysqlCustomerStore::WriteAuditEvent(const audit::Event& event) {
  return audit::Write(*pool_, event);
}

absl::StatusOr<std::vector<audit::Event>> MysqlCustomerStore::ListAuditEvents(
    const audit::Filter& filter, const std::optional<audit::Cursor>& after,
    int limit) {
  return audit::List(*pool_, filter, after, limit);
}

}  // namespace rapport::customer
