#include "services/customer/mysql_import_store.h"

#include <cppconn/datatype.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/identity.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/validation.h"

namespace rapport::customer {
namespace {

using Statement = std::unique_ptr<sql::PreparedStatement>;

constexpr size_t kChunk = MysqlImportStore::kRowsPerStatement;

// Runs one statement per chunk of up to kChunk items: `query(n)` is the text
// for n items (the full size is prepared once and reused), `bind` binds one
// item's parameters from `index` on (advancing it; it must set every one),
// `run` executes it.
template <typename T, typename Bind, typename Exec>
void Chunked(sql::Connection& c, const std::vector<T>& items,
             absl::FunctionRef<std::string(size_t)> query, Bind bind,
             Exec run) {
  for (size_t begin = 0; begin < items.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, items.size() - begin);
    // The full size is kept prepared on the connection; other sizes are
    // prepared for this call only.
    std::optional<CachedStatement> full;
    Statement part;
    sql::PreparedStatement* s;
    if (n == kChunk) {
      full.emplace(PrepareCached(c, query(n), StatementParameters::kKept));
      s = full->get();
    } else {
      part.reset(c.prepareStatement(query(n)));
      s = part.get();
    }
    int index = 1;
    for (size_t i = begin; i < begin + n; ++i) bind(*s, index, items[i]);
    run(*s);
  }
}

void Execute(sql::PreparedStatement& s) { s.executeUpdate(); }

// The unique form of an email, as customers.email_key holds it.
std::string EmailKey(const std::string& email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

constexpr char kStateColumns[] =
    "c.id, c.merged_into, c.erased_time_us IS NOT NULL";

// Reads kStateColumns starting at column `first`.
CustomerState ReadState(sql::ResultSet& rows, int first) {
  CustomerState state;
  state.id = rows.getString(first);
  state.merged_into =
      rows.isNull(first + 1) ? "" : std::string(rows.getString(first + 1));
  state.erased = rows.getInt(first + 2) != 0;
  return state;
}

// Inserts customers with their email, phone and external ids.
void InsertCustomers(sql::Connection& c,
                     const std::vector<CustomerRecord>& customers) {
  if (customers.empty()) return;
  Chunked(
      c, customers,
      [](size_t n) {
        return absl::StrCat(
            "INSERT INTO customers (id, display_name, email, email_key, "
            "email_match_key, phone, "
            "create_time_us, update_time_us, version, created_by) VALUES ",
            Repeat("(?, ?, ?, ?, ?, ?, ?, ?, 1, ?)", n, ", "));
      },
      [](sql::PreparedStatement& s, int& i, const CustomerRecord& r) {
        s.setString(i++, r.id);
        s.setString(i++, r.display_name);
        SetNullableString(s, i++, r.email);
        SetNullableString(s, i++, EmailKey(r.email));
        SetNullableString(s, i++,
                          r.email.empty() ? "" : EmailMatchKey(r.email));
        SetNullableString(s, i++, r.phone);
        s.setInt64(i++, r.create_time_us);
        s.setInt64(i++, r.update_time_us);
        s.setString(i++, r.created_by);
      },
      Execute);
  std::vector<std::pair<const ExternalIdRecord*, const std::string*>>
      external_ids;
  for (const CustomerRecord& r : customers) {
    for (const ExternalIdRecord& e : r.external_ids)
      external_ids.push_back({&e, &r.id});
  }
  if (external_ids.empty()) return;
  Chunked(
      c, external_ids,
      [](size_t n) {
        return absl::StrCat(
            "INSERT INTO customer_external_ids (source, external_id, "
            "customer_id) VALUES ",
            Repeat("(?, ?, ?)", n, ", "));
      },
      [](sql::PreparedStatement& s, int& i,
         const std::pair<const ExternalIdRecord*, const std::string*>& e) {
        s.setString(i++, e.first->source);
        s.setString(i++, e.first->id);
        s.setString(i++, *e.second);
      },
      Execute);
}

// Looks up one kind of identity: `query(n)` selects (identity columns...,
// kStateColumns) for n identities bound by `bind`.
template <typename Bind>
void LookUp(sql::Connection& c, const std::vector<Identity>& identities,
            Identity::Kind kind, absl::FunctionRef<std::string(size_t)> query,
            Bind bind, std::vector<IdentityMatch>& out) {
  std::vector<Identity> of_kind;
  for (const Identity& identity : identities) {
    if (identity.kind == kind) of_kind.push_back(identity);
  }
  if (of_kind.empty()) return;
  Chunked(c, of_kind, query, bind, [&](sql::PreparedStatement& s) {
    Rows rows(s.executeQuery());
    while (rows->next()) {
      IdentityMatch match;
      match.identity.kind = kind;
      if (kind == Identity::Kind::kExternalId) {
        match.identity.source = rows->getString(1);
        match.identity.value = rows->getString(2);
        match.customer = ReadState(*rows, 3);
      } else {
        match.identity.value = rows->getString(1);
        match.customer = ReadState(*rows, 2);
      }
      out.push_back(std::move(match));
    }
  });
}

void BindValue(sql::PreparedStatement& s, int& i, const Identity& identity) {
  s.setString(i++, identity.value);
}

// The stored customers holding any of `identities` into `out`; with `share`,
// their rows locked shared for the rest of the transaction.
void FindHolders(sql::Connection& c, const std::vector<Identity>& identities,
                 bool share, std::vector<IdentityMatch>& out) {
  const char* const lock = share ? " LOCK IN SHARE MODE" : "";
  // Emails and phones: a column of customers each.
  for (const auto& [kind, column] :
       {std::pair{Identity::Kind::kEmail, "c.email_key"},
        std::pair{Identity::Kind::kPhone, "c.phone"}}) {
    LookUp(
        c, identities, kind,
        [lock, column = column](size_t n) {
          return absl::StrCat("SELECT ", column, ", ", kStateColumns,
                              " FROM customers c WHERE ", column, " IN (",
                              Repeat("?", n, ", "), ")", lock);
        },
        BindValue, out);
  }
  // External ids source by source: one key range and an IN list each.
  std::map<std::string, std::vector<Identity>> by_source;
  for (const Identity& identity : identities) {
    if (identity.kind == Identity::Kind::kExternalId)
      by_source[identity.source].push_back(identity);
  }
  for (const auto& [source, ids] : by_source) {
    LookUp(
        c, ids, Identity::Kind::kExternalId,
        [lock](size_t n) {
          return absl::StrCat("SELECT e.source, e.external_id, ", kStateColumns,
                              " FROM customer_external_ids e JOIN customers c"
                              " ON c.id = e.customer_id WHERE e.source = ? AND "
                              "e.external_id IN (",
                              Repeat("?", n, ", "), ")", lock);
        },
        [&source](sql::PreparedStatement& s, int& i, const Identity& identity) {
          if (i == 1) s.setString(i++, source);  // the first parameter
          s.setString(i++, identity.value);
        },
        out);
  }
}

}  // namespace

absl::StatusOr<std::vector<CustomerState>> MysqlImportStore::GetCustomerStates(
    const std::vector<std::string>& ids) {
  std::vector<CustomerState> out;
  if (ids.empty()) return out;
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<CustomerState>> {
        Chunked(
            c, ids,
            [](size_t n) {
              return absl::StrCat("SELECT ", kStateColumns,
                                  " FROM customers c WHERE c.id IN (",
                                  Repeat("?", n, ", "), ")");
            },
            [](sql::PreparedStatement& s, int& i, const std::string& id) {
              s.setString(i++, id);
            },
            [&](sql::PreparedStatement& s) {
              Rows rows(s.executeQuery());
              while (rows->next()) out.push_back(ReadState(*rows, 1));
            });
        return out;
      });
}

absl::StatusOr<std::vector<IdentityMatch>> MysqlImportStore::FindIdentities(
    const std::vector<Identity>& identities) {
  std::vector<IdentityMatch> out;
  if (identities.empty()) return out;
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<IdentityMatch>> {
        FindHolders(c, identities, /*share=*/false, out);
        return out;
      });
}

absl::StatusOr<std::vector<std::string>> MysqlImportStore::SuppressedAmong(
    const std::vector<std::string>& hashes) {
  if (hashes.empty()) return std::vector<std::string>();
  return customers_->SuppressedAmong(hashes);
}

absl::StatusOr<std::vector<StoredRow>> MysqlImportStore::FindRows(
    ImportKind kind, const std::vector<std::string>& ids) {
  std::vector<StoredRow> out;
  if (ids.empty()) return out;
  const char* table =
      kind == ImportKind::kPurchases ? "purchases" : "interactions";
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::vector<StoredRow>> {
        Chunked(
            c, ids,
            [&](size_t n) {
              return absl::StrCat("SELECT id, request_hash FROM ", table,
                                  " WHERE id IN (", Repeat("?", n, ", "), ")");
            },
            [](sql::PreparedStatement& s, int& i, const std::string& id) {
              s.setString(i++, id);
            },
            [&](sql::PreparedStatement& s) {
              Rows rows(s.executeQuery());
              while (rows->next()) {
                out.push_back(
                    {std::string(rows->getString(1)),
                     rows->isNull(2) ? "" : std::string(rows->getString(2))});
              }
            });
        return out;
      });
}

absl::StatusOr<std::string> MysqlImportStore::ImportPrefix(
    ImportKind kind, const std::string& import_id,
    const std::string& candidate) {
  const int kind_number = kind == ImportKind::kPurchases ? 1 : 2;
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::string> {
    // A no-op when the import is known or the candidate taken; the read
    // after it tells which.
    Statement insert(c.prepareStatement(
        "INSERT INTO imports (kind, import_id, id_prefix, create_time_us) "
        "VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE kind = kind"));
    insert->setInt(1, kind_number);
    insert->setString(2, import_id);
    insert->setString(3, candidate);
    insert->setInt64(4, absl::ToUnixMicros(absl::Now()));
    insert->executeUpdate();
    Statement read(c.prepareStatement(
        "SELECT id_prefix FROM imports WHERE kind = ? AND import_id = ?"));
    read->setInt(1, kind_number);
    read->setString(2, import_id);
    Rows rows(read->executeQuery());
    if (!rows->next()) {
      return absl::AlreadyExistsError(
          absl::StrCat("id prefix ", candidate, " is another import's"));
    }
    return std::string(rows->getString(1));
  });
}

namespace {

// Whether any of `rows` has a request id of its own.
template <typename Row>
bool AnyRequestId(const std::vector<Row>& rows) {
  return std::any_of(rows.begin(), rows.end(),
                     [](const Row& r) { return !r.request.id.empty(); });
}

// The count of customer_changes; with `share`, locked for the rest of the
// transaction (so that no merge, erasure or deletion commits before it).
absl::StatusOr<int64_t> ReadChanges(sql::Connection& c, bool share) {
  CachedStatement s = PrepareCached(
      c, share ? "SELECT changes FROM customer_changes WHERE id = 1 LOCK IN "
                 "SHARE MODE"
               : "SELECT changes FROM customer_changes WHERE id = 1");
  Rows rows(s->executeQuery());
  if (!rows->next()) {
    return absl::InternalError("customer_changes has no row; is it migrated?");
  }
  return rows->getInt64(1);
}

// Makes sure the rows' existing customers can still take history and still
// hold the identities `claims` found them by, and the new ones' identities
// are still not suppressed, until the transaction ends. When no merge,
// erasure, deletion or move of an identity happened since they were resolved
// (the change count is still `changes_seen`), its shared lock is enough.
// Else the claims are looked up again, the new customers' identities are
// checked against the suppressed ones, and each existing customer is locked
// and checked; an identity held by another record now, a new customer whose
// identity is suppressed now, or an existing one that changed, is
// FAILED_PRECONDITION (the batch is resolved again).
template <typename Row, typename CustomerOf>
absl::Status LockLiveCustomers(sql::Connection& c,
                               MysqlCustomerStore& customers,
                               const std::vector<CustomerRecord>& created,
                               const std::vector<Row>& rows,
                               CustomerOf customer_of,
                               const std::vector<IdentityClaim>& claims,
                               int64_t changes_seen) {
  RAPPORT_ASSIGN_OR_RETURN(int64_t changes, ReadChanges(c, /*share=*/true));
  if (changes == changes_seen) return absl::OkStatus();
  if (!claims.empty()) {
    std::vector<Identity> identities;
    identities.reserve(claims.size());
    for (const IdentityClaim& claim : claims)
      identities.push_back(claim.identity);
    std::vector<IdentityMatch> held;
    FindHolders(c, identities, /*share=*/true, held);
    absl::flat_hash_map<std::tuple<Identity::Kind, std::string, std::string>,
                        const std::string*>
        holders;
    for (const IdentityMatch& m : held) {
      holders[{m.identity.kind, m.identity.source, m.identity.value}] =
          &m.customer.id;
    }
    size_t kept = 0;
    for (const IdentityClaim& claim : claims) {
      auto it = holders.find(
          {claim.identity.kind, claim.identity.source, claim.identity.value});
      if (it != holders.end() && *it->second == claim.holder) ++kept;
    }
    if (kept != claims.size()) {
      return absl::FailedPreconditionError(
          "an identity of this batch moved to another customer since it was "
          "looked up");
    }
  }
  // Checked before the count moved: an erasure since may have suppressed
  // one of them (one its customer had taken over in a merge, say). A merge
  // or a deletion makes no unknown identity known, so the rest stands.
  RAPPORT_RETURN_IF_ERROR(customers.CheckNoneSuppressed(c, created));
  std::set<std::string> new_ids;
  for (const CustomerRecord& r : created) new_ids.insert(r.id);
  std::set<std::string> ids;
  for (const Row& row : rows) {
    if (!new_ids.contains(customer_of(row))) ids.insert(customer_of(row));
  }
  std::vector<std::string> wanted(ids.begin(), ids.end());
  size_t live = 0;
  Chunked(
      c, wanted,
      [](size_t n) {
        return absl::StrCat(
            "SELECT COUNT(*) FROM customers WHERE id IN (",
            Repeat("?", n, ", "),
            ") AND merged_into IS NULL AND erased_time_us IS NULL "
            "LOCK IN SHARE MODE");
      },
      [](sql::PreparedStatement& s, int& i, const std::string& id) {
        s.setString(i++, id);
      },
      [&](sql::PreparedStatement& s) {
        Rows count(s.executeQuery());
        if (count->next()) live += static_cast<size_t>(count->getInt64(1));
      });
  if (live != wanted.size()) {
    return absl::FailedPreconditionError(
        "a customer of this batch was merged, erased or deleted since it was "
        "looked up");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> MysqlImportStore::CustomerChanges() {
  return pool_->Run([](sql::Connection& c) -> absl::StatusOr<int64_t> {
    return ReadChanges(c, /*share=*/false);
  });
}

namespace {

// The rows of one import batch were all recorded by one caller: it is set
// once per batch, as a session variable the inserts name, instead of a
// parameter per row.
template <typename Row, typename Get>
absl::Status SetRecordedBy(sql::Connection& c, const std::vector<Row>& rows,
                           Get recorded_by) {
  if (rows.empty()) return absl::OkStatus();
  const std::string& who = recorded_by(rows.front());
  for (const Row& r : rows) {
    if (recorded_by(r) != who) {
      return absl::InternalError("an import batch from more than one caller");
    }
  }
  CachedStatement s = PrepareCached(c, "SET @rapport_recorded_by = ?");
  SetNullableString(*s, 1, who);
  s->execute();
  return absl::OkStatus();
}

}  // namespace

absl::Status MysqlImportStore::WritePurchases(
    const std::vector<CustomerRecord>& new_customers,
    const std::vector<ImportedPurchase>& rows,
    const std::vector<IdentityClaim>& claims, int64_t changes_seen) {
  if (new_customers.empty() && rows.empty()) return absl::OkStatus();
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    RAPPORT_RETURN_IF_ERROR(LockLiveCustomers(
        c, *customers_, new_customers, rows,
        [](const ImportedPurchase& r) -> const std::string& {
          return r.purchase.customer_id;
        },
        claims, changes_seen));
    InsertCustomers(c, new_customers);
    // Columns that no row sets are left to their defaults ('' and NULL): an
    // import's rows have no description, and most have no request id.
    const bool described =
        std::any_of(rows.begin(), rows.end(), [](const ImportedPurchase& r) {
          return !r.purchase.description.empty();
        });
    const bool keyed = AnyRequestId(rows);
    RAPPORT_RETURN_IF_ERROR(SetRecordedBy(
        c, rows, [](const ImportedPurchase& r) -> const std::string& {
          return r.purchase.recorded_by;
        }));
    Chunked(
        c, rows,
        [&](size_t n) {
          return absl::StrCat(
              "INSERT INTO purchases (id, customer_id, purchase_time_us, "
              "amount, currency, create_time_us, request_hash, recorded_by",
              described ? ", description" : "", keyed ? ", request_id" : "",
              ") VALUES ",
              Repeat(
                  absl::StrCat("(?, ?, ?, ?, ?, ?, ?, @rapport_recorded_by",
                               described ? ", ?" : "", keyed ? ", ?" : "", ")"),
                  n, ", "));
        },
        [&](sql::PreparedStatement& s, int& i, const ImportedPurchase& row) {
          const PurchaseRecord& p = row.purchase;
          s.setString(i++, p.id);
          s.setString(i++, p.customer_id);
          s.setInt64(i++, p.purchase_time_us);
          s.setString(i++, p.amount.ToString());
          s.setString(i++, p.currency);
          s.setInt64(i++, p.create_time_us);
          s.setString(i++, row.request.hash);
          if (described) s.setString(i++, p.description);
          if (keyed) SetNullableString(s, i++, row.request.id);
        },
        Execute);
    return absl::OkStatus();
  });
}

absl::Status MysqlImportStore::WriteInteractions(
    const std::vector<CustomerRecord>& new_customers,
    const std::vector<ImportedInteraction>& rows,
    const std::vector<IdentityClaim>& claims, int64_t changes_seen) {
  if (new_customers.empty() && rows.empty()) return absl::OkStatus();
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    RAPPORT_RETURN_IF_ERROR(LockLiveCustomers(
        c, *customers_, new_customers, rows,
        [](const ImportedInteraction& r) -> const std::string& {
          return r.interaction.customer_id;
        },
        claims, changes_seen));
    InsertCustomers(c, new_customers);
    const bool keyed = AnyRequestId(rows);  // else request_id is left NULL
    RAPPORT_RETURN_IF_ERROR(SetRecordedBy(
        c, rows, [](const ImportedInteraction& r) -> const std::string& {
          return r.interaction.recorded_by;
        }));
    Chunked(
        c, rows,
        [&](size_t n) {
          return absl::StrCat(
              "INSERT INTO interactions (id, customer_id, channel, kind, "
              "interaction_time_us, cost, note, create_time_us, request_hash, "
              "recorded_by",
              keyed ? ", request_id" : "", ") VALUES ",
              Repeat(
                  keyed ? "(?, ?, ?, ?, ?, ?, ?, ?, ?, @rapport_recorded_by, ?)"
                        : "(?, ?, ?, ?, ?, ?, ?, ?, ?, @rapport_recorded_by)",
                  n, ", "));
        },
        [&](sql::PreparedStatement& s, int& i, const ImportedInteraction& row) {
          const InteractionRecord& r = row.interaction;
          s.setString(i++, r.id);
          s.setString(i++, r.customer_id);
          s.setInt(i++, r.channel);
          s.setString(i++, r.kind);
          s.setInt64(i++, r.interaction_time_us);
          s.setString(i++, r.cost.ToString());
          s.setString(i++, r.note);
          s.setInt64(i++, r.create_time_us);
          s.setString(i++, row.request.hash);
          if (keyed) SetNullableString(s, i++, row.request.id);
        },
        Execute);
    return absl::OkStatus();
  });
}

absl::Status MysqlImportStore::WriteAuditEvent(const audit::Event& event) {
  return audit::Write(*pool_, event);
}

}  // namespace rapport::customer
