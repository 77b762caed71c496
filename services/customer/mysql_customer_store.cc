#include "services/customer/mysql_customer_store.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/status.h"

namespace rapport::customer {
namespace {

using Statement = std::unique_ptr<sql::PreparedStatement>;
using Rows = std::unique_ptr<sql::ResultSet>;

Statement Prepare(sql::Connection& c, const char* query) {
  return Statement(c.prepareStatement(query));
}

void SetNullableString(sql::PreparedStatement& s, int index, const std::string& value) {
  if (value.empty()) {
    s.setNull(index, sql::DataType::VARCHAR);
  } else {
    s.setString(index, value);
  }
}

std::string EmailKey(const std::string& email) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(email));
}

// Reads the customer row and its identities and attributes; NOT_FOUND if absent.
absl::StatusOr<CustomerRecord> LoadCustomer(sql::Connection& c, const std::string& id,
                                            bool for_update) {
  Statement s = Prepare(c, for_update
                               ? "SELECT id, display_name, email, phone, create_time_us, "
                                 "update_time_us, version FROM customers WHERE id = ? FOR UPDATE"
                               : "SELECT id, display_name, email, phone, create_time_us, "
                                 "update_time_us, version FROM customers WHERE id = ?");
  s->setString(1, id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return absl::NotFoundError(absl::StrCat("customer ", id, " not found"));
  CustomerRecord r;
  r.id = rows->getString(1);
  r.display_name = rows->getString(2);
  r.email = rows->isNull(3) ? "" : std::string(rows->getString(3));
  r.phone = rows->isNull(4) ? "" : std::string(rows->getString(4));
  r.create_time_us = rows->getInt64(5);
  r.update_time_us = rows->getInt64(6);
  r.version = rows->getInt64(7);

  Statement ext = Prepare(c,
                          "SELECT source, external_id FROM customer_external_ids "
                          "WHERE customer_id = ? ORDER BY source, external_id");
  ext->setString(1, id);
  Rows ext_rows(ext->executeQuery());
  while (ext_rows->next()) {
    r.external_ids.push_back({ext_rows->getString(1), ext_rows->getString(2)});
  }
  Statement attr =
      Prepare(c, "SELECT name, value FROM customer_attributes WHERE customer_id = ?");
  attr->setString(1, id);
  Rows attr_rows(attr->executeQuery());
  while (attr_rows->next()) r.attributes[attr_rows->getString(1)] = attr_rows->getString(2);
  return r;
}

// Which customer already holds one of r's identities, as a readable sentence;
// empty when none does (the duplicate was something else).
std::string FindIdentityHolder(sql::Connection& c, const CustomerRecord& r) {
  if (!r.email.empty()) {
    Statement s = Prepare(c, "SELECT id FROM customers WHERE email_key = ? AND id <> ?");
    s->setString(1, EmailKey(r.email));
    s->setString(2, r.id);
    Rows rows(s->executeQuery());
    if (rows->next()) return absl::StrCat("email is already used by customer ", std::string(rows->getString(1)));
  }
  if (!r.phone.empty()) {
    Statement s = Prepare(c, "SELECT id FROM customers WHERE phone = ? AND id <> ?");
    s->setString(1, r.phone);
    s->setString(2, r.id);
    Rows rows(s->executeQuery());
    if (rows->next()) return absl::StrCat("phone is already used by customer ", std::string(rows->getString(1)));
  }
  for (const ExternalIdRecord& e : r.external_ids) {
    Statement s = Prepare(c,
                          "SELECT customer_id FROM customer_external_ids "
                          "WHERE source = ? AND external_id = ? AND customer_id <> ?");
    s->setString(1, e.source);
    s->setString(2, e.id);
    s->setString(3, r.id);
    Rows rows(s->executeQuery());
    if (rows->next()) {
      return absl::StrCat("external id ", e.source, ":", e.id, " is already used by customer ",
                          std::string(rows->getString(1)));
    }
  }
  return "";
}

// Writes identities and attributes of r (whose row exists) from scratch.
void WriteChildren(sql::Connection& c, const CustomerRecord& r) {
  Statement del_ext = Prepare(c, "DELETE FROM customer_external_ids WHERE customer_id = ?");
  del_ext->setString(1, r.id);
  del_ext->executeUpdate();
  Statement del_attr = Prepare(c, "DELETE FROM customer_attributes WHERE customer_id = ?");
  del_attr->setString(1, r.id);
  del_attr->executeUpdate();
  if (!r.external_ids.empty()) {
    Statement s = Prepare(
        c, "INSERT INTO customer_external_ids (source, external_id, customer_id) VALUES (?, ?, ?)");
    for (const ExternalIdRecord& e : r.external_ids) {
      s->setString(1, e.source);
      s->setString(2, e.id);
      s->setString(3, r.id);
      s->executeUpdate();
    }
  }
  if (!r.attributes.empty()) {
    Statement s =
        Prepare(c, "INSERT INTO customer_attributes (customer_id, name, value) VALUES (?, ?, ?)");
    for (const auto& [name, value] : r.attributes) {
      s->setString(1, r.id);
      s->setString(2, name);
      s->setString(3, value);
      s->executeUpdate();
    }
  }
}

// Turns a duplicate-key error from writing r into ALREADY_EXISTS naming the holder.
absl::Status DuplicateIdentity(MysqlPool& pool, const CustomerRecord& r, absl::Status status) {
  if (!absl::IsAlreadyExists(status)) return status;
  absl::StatusOr<std::string> holder = pool.Run(
      [&](sql::Connection& c) -> absl::StatusOr<std::string> { return FindIdentityHolder(c, r); });
  if (!holder.ok()) return holder.status();
  if (holder->empty()) return status;
  return absl::AlreadyExistsError(*holder);
}

// Looks up an earlier write by request id: nullopt when none, the id it made
// when the hash matches, INVALID_ARGUMENT on request_id otherwise.
absl::StatusOr<std::optional<std::string>> FindRequest(sql::Connection& c, const char* query,
                                                       const RequestKey& request) {
  if (request.id.empty()) return std::optional<std::string>();
  Statement s = Prepare(c, query);
  s->setString(1, request.id);
  Rows rows(s->executeQuery());
  if (!rows->next()) return std::optional<std::string>();
  if (rows->getString(2) != request.hash) {
    return InvalidField("request_id", "was already used for a request with other content");
  }
  return std::optional<std::string>(std::string(rows->getString(1)));
}

PurchaseRecord ReadPurchase(sql::ResultSet& rows) {
  PurchaseRecord p;
  p.id = rows.getString(1);
  p.customer_id = rows.getString(2);
  p.purchase_time_us = rows.getInt64(3);
  // DECIMAL(38,9) comes back as exact text; the schema guarantees it parses.
  p.amount = Decimal::Parse(std::string(rows.getString(4))).value_or(Decimal());
  p.currency = rows.getString(5);
  p.description = rows.getString(6);
  p.create_time_us = rows.getInt64(7);
  return p;
}

constexpr char kPurchaseColumns[] =
    "id, customer_id, purchase_time_us, amount, currency, description, create_time_us";

}  // namespace

absl::StatusOr<CustomerRecord> MysqlCustomerStore::CreateCustomer(const CustomerRecord& customer,
                                                                  const RequestKey& request) {
  constexpr char kFind[] =
      "SELECT id, create_request_hash FROM customers WHERE create_request_id = ?";
  absl::StatusOr<CustomerRecord> created =
      pool_->Transaction([&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
        RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> earlier, FindRequest(c, kFind, request));
        if (earlier.has_value()) return LoadCustomer(c, *earlier, false);
        Statement s = Prepare(c,
                              "INSERT INTO customers (id, display_name, email, email_key, phone, "
                              "create_time_us, update_time_us, version, create_request_id, "
                              "create_request_hash) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)");
        s->setString(1, customer.id);
        s->setString(2, customer.display_name);
        SetNullableString(*s, 3, customer.email);
        SetNullableString(*s, 4, EmailKey(customer.email));
        SetNullableString(*s, 5, customer.phone);
        s->setInt64(6, customer.create_time_us);
        s->setInt64(7, customer.update_time_us);
        SetNullableString(*s, 8, request.id);
        SetNullableString(*s, 9, request.id.empty() ? "" : request.hash);
        s->executeUpdate();
        WriteChildren(c, customer);
        CustomerRecord stored = customer;
        stored.version = 1;
        return stored;
      });
  if (absl::IsAlreadyExists(created.status()) && !request.id.empty()) {
    // A concurrent retry of the same request may have won the race: answer as it did.
    absl::StatusOr<CustomerRecord> earlier =
        pool_->Run([&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
          RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> id, FindRequest(c, kFind, request));
          if (!id.has_value()) return absl::NotFoundError("no earlier request");
          return LoadCustomer(c, *id, false);
        });
    if (earlier.ok() || absl::IsInvalidArgument(earlier.status())) return earlier;
  }
  if (!created.ok()) return DuplicateIdentity(*pool_, customer, created.status());
  return created;
}

absl::StatusOr<CustomerRecord> MysqlCustomerStore::GetCustomer(const std::string& id) {
  return pool_->Run(
      [&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> { return LoadCustomer(c, id, false); });
}

absl::StatusOr<std::vector<CustomerRecord>> MysqlCustomerStore::ListCustomers(
    const std::string& after_id, int limit) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::vector<CustomerRecord>> {
    Statement s = Prepare(c, "SELECT id FROM customers WHERE id > ? ORDER BY id LIMIT ?");
    s->setString(1, after_id);
    s->setInt(2, limit);
    Rows rows(s->executeQuery());
    std::vector<std::string> ids;
    while (rows->next()) ids.push_back(std::string(rows->getString(1)));
    std::vector<CustomerRecord> out;
    out.reserve(ids.size());
    for (const std::string& id : ids) {
      absl::StatusOr<CustomerRecord> r = LoadCustomer(c, id, false);
      if (absl::IsNotFound(r.status())) continue;  // deleted meanwhile
      if (!r.ok()) return r.status();
      out.push_back(*std::move(r));
    }
    return out;
  });
}

absl::StatusOr<CustomerRecord> MysqlCustomerStore::UpdateCustomer(
    const std::string& id, const std::function<absl::Status(CustomerRecord&)>& mutate) {
  CustomerRecord attempted;
  absl::StatusOr<CustomerRecord> updated =
      pool_->Transaction([&](sql::Connection& c) -> absl::StatusOr<CustomerRecord> {
        RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
        RAPPORT_RETURN_IF_ERROR(mutate(r));
        r.version += 1;
        attempted = r;
        Statement s = Prepare(c,
                              "UPDATE customers SET display_name = ?, email = ?, email_key = ?, "
                              "phone = ?, update_time_us = ?, version = ? WHERE id = ?");
        s->setString(1, r.display_name);
        SetNullableString(*s, 2, r.email);
        SetNullableString(*s, 3, EmailKey(r.email));
        SetNullableString(*s, 4, r.phone);
        s->setInt64(5, r.update_time_us);
        s->setInt64(6, r.version);
        s->setString(7, r.id);
        s->executeUpdate();
        WriteChildren(c, r);
        return r;
      });
  if (!updated.ok()) return DuplicateIdentity(*pool_, attempted, updated.status());
  return updated;
}

absl::Status MysqlCustomerStore::DeleteCustomer(
    const std::string& id, bool force,
    const std::function<absl::Status(const CustomerRecord&)>& check) {
  return pool_->Transaction([&](sql::Connection& c) -> absl::Status {
    RAPPORT_ASSIGN_OR_RETURN(CustomerRecord r, LoadCustomer(c, id, true));
    RAPPORT_RETURN_IF_ERROR(check(r));
    Statement count = Prepare(c, "SELECT COUNT(*) FROM purchases WHERE customer_id = ?");
    count->setString(1, id);
    Rows rows(count->executeQuery());
    rows->next();
    const int64_t purchases = rows->getInt64(1);
    if (purchases > 0 && !force) {
      return absl::FailedPreconditionError(absl::StrCat(
          "customer ", id, " has ", purchases, " purchases; set force to delete them too"));
    }
    for (const char* query : {"DELETE FROM purchases WHERE customer_id = ?",
                              "DELETE FROM customer_external_ids WHERE customer_id = ?",
                              "DELETE FROM customer_attributes WHERE customer_id = ?",
                              "DELETE FROM customers WHERE id = ?"}) {
      Statement s = Prepare(c, query);
      s->setString(1, id);
      s->executeUpdate();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<PurchaseRecord> MysqlCustomerStore::RecordPurchase(const PurchaseRecord& purchase,
                                                                  const RequestKey& request) {
  constexpr char kFind[] = "SELECT id, request_hash FROM purchases WHERE request_id = ?";
  auto load = [](sql::Connection& c, const std::string& id) -> absl::StatusOr<PurchaseRecord> {
    Statement s = Prepare(c, absl::StrCat("SELECT ", kPurchaseColumns,
                                          " FROM purchases WHERE id = ?").c_str());
    s->setString(1, id);
    Rows rows(s->executeQuery());
    if (!rows->next()) return absl::NotFoundError(absl::StrCat("purchase ", id, " not found"));
    return ReadPurchase(*rows);
  };
  absl::StatusOr<PurchaseRecord> recorded =
      pool_->Transaction([&](sql::Connection& c) -> absl::StatusOr<PurchaseRecord> {
        RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> earlier, FindRequest(c, kFind, request));
        if (earlier.has_value()) return load(c, *earlier);
        Statement exists = Prepare(c, "SELECT 1 FROM customers WHERE id = ? LOCK IN SHARE MODE");
        exists->setString(1, purchase.customer_id);
        Rows rows(exists->executeQuery());
        if (!rows->next()) {
          return absl::NotFoundError(absl::StrCat("customer ", purchase.customer_id, " not found"));
        }
        Statement s = Prepare(c,
                              "INSERT INTO purchases (id, customer_id, purchase_time_us, amount, "
                              "currency, description, create_time_us, request_id, request_hash) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
        s->setString(1, purchase.id);
        s->setString(2, purchase.customer_id);
        s->setInt64(3, purchase.purchase_time_us);
        s->setString(4, purchase.amount.ToString());
        s->setString(5, purchase.currency);
        s->setString(6, purchase.description);
        s->setInt64(7, purchase.create_time_us);
        SetNullableString(*s, 8, request.id);
        SetNullableString(*s, 9, request.id.empty() ? "" : request.hash);
        s->executeUpdate();
        return purchase;
      });
  if (absl::IsAlreadyExists(recorded.status()) && !request.id.empty()) {
    // A concurrent retry won the race on the unique request id: answer as it did.
    return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<PurchaseRecord> {
      RAPPORT_ASSIGN_OR_RETURN(std::optional<std::string> id, FindRequest(c, kFind, request));
      if (!id.has_value()) return recorded.status();
      return load(c, *id);
    });
  }
  return recorded;
}

absl::StatusOr<std::vector<PurchaseRecord>> MysqlCustomerStore::ListPurchases(
    const PurchaseQuery& q) {
  return pool_->Run([&](sql::Connection& c) -> absl::StatusOr<std::vector<PurchaseRecord>> {
    std::string query = absl::StrCat("SELECT ", kPurchaseColumns,
                                     " FROM purchases WHERE customer_id = ?");
    if (q.start_time_us) query += " AND purchase_time_us >= ?";
    if (q.end_time_us) query += " AND purchase_time_us < ?";
    if (q.after) query += " AND (purchase_time_us, id) > (?, ?)";
    query += " ORDER BY purchase_time_us, id LIMIT ?";
    Statement s = Prepare(c, query.c_str());
    int i = 1;
    s->setString(i++, q.customer_id);
    if (q.start_time_us) s->setInt64(i++, *q.start_time_us);
    if (q.end_time_us) s->setInt64(i++, *q.end_time_us);
    if (q.after) {
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
        return absl::NotFoundError(absl::StrCat("customer ", q.customer_id, " not found"));
      }
    }
    return out;
  });
}

}  // namespace rapport::customer
