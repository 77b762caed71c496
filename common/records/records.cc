#include "common/records/records.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/audit/audit.h"
#include "common/identity.h"
#include "common/mysql/sql.h"
#include "common/mysql/statement_cache.h"
#include "common/validation.h"

namespace rapport {

void ReadContacts(
    const google::protobuf::RepeatedPtrField<common::v1::Contact>& in,
    absl::string_view field, absl::string_view phone_region,
    std::vector<ContactInfo>* out, std::vector<FieldViolation>* violations) {
  out->clear();
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    std::vector<FieldViolation> v = FieldViolations(s);
    if (v.empty()) v.push_back({std::string(field), std::string(s.message())});
    violations->insert(violations->end(), v.begin(), v.end());
  };
  if (in.size() > kMaxContacts) {
    violations->push_back({std::string(field),
                           absl::StrCat("has ", in.size(), " entries; at most ",
                                        kMaxContacts, " are allowed")});
  }
  for (int i = 0; i < in.size(); ++i) {
    const common::v1::Contact& c = in.Get(i);
    const std::string at = absl::StrCat(field, "[", i, "]");
    ContactInfo r;
    note(CheckRequiredText(c.name(), at + ".name", 256));
    note(CheckOptionalText(c.role(), at + ".role", 128));
    r.name = std::string(absl::StripAsciiWhitespace(c.name()));
    r.role = c.role();
    if (!c.email().empty()) {
      absl::StatusOr<std::string> email =
          NormalizeEmail(c.email(), at + ".email");
      note(email.status());
      if (email.ok()) r.email = *email;
    }
    if (!c.phone().empty()) {
      absl::StatusOr<std::string> phone =
          NormalizePhone(c.phone(), at + ".phone", phone_region);
      note(phone.status());
      if (phone.ok()) r.phone = *phone;
    }
    out->push_back(std::move(r));
  }
}

void ReadExternalKeys(
    const google::protobuf::RepeatedPtrField<common::v1::ExternalId>& in,
    absl::string_view field, std::vector<ExternalKey>* out,
    std::vector<FieldViolation>* violations) {
  std::vector<std::pair<std::string, std::string>> ids;
  ReadExternalIds(in, field, &ids, violations);
  out->clear();
  for (auto& [source, id] : ids) {
    out->push_back({std::move(source), std::move(id)});
  }
}

void ToProto(const EntityChildren& children,
             google::protobuf::RepeatedPtrField<common::v1::Contact>* contacts,
             google::protobuf::RepeatedPtrField<common::v1::ExternalId>* ids,
             google::protobuf::Map<std::string, std::string>* attributes) {
  for (const ContactInfo& c : children.contacts) {
    common::v1::Contact* out = contacts->Add();
    out->set_name(c.name);
    out->set_role(c.role);
    out->set_email(c.email);
    out->set_phone(c.phone);
  }
  for (const ExternalKey& e : children.external_ids) {
    common::v1::ExternalId* out = ids->Add();
    out->set_source(e.source);
    out->set_id(e.id);
  }
  for (const auto& [k, v] : children.attributes) (*attributes)[k] = v;
}

absl::StatusOr<std::map<std::string, EntityChildren>> LoadChildren(
    sql::Connection& c, const ChildTables& t,
    const std::vector<std::string>& ids) {
  std::map<std::string, EntityChildren> out;
  for (const std::string& id : ids) out[id];
  constexpr size_t kInList = 1024;
  for (size_t begin = 0; begin < ids.size(); begin += kInList) {
    const size_t n = std::min(kInList, ids.size() - begin);
    const size_t slots = PaddedCount(n, kInList);
    const std::string in = Placeholders(slots);
    {
      CachedStatement s = PrepareCached(
          c, absl::StrCat("SELECT ", t.entity_column,
                          ", name, role, email, phone FROM ", t.contacts,
                          " WHERE ", t.entity_column, " IN (", in,
                          ") ORDER BY ", t.entity_column, ", position"));
      BindPadded(*s, 1, ids, begin, n, slots);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        out[TextOrEmpty(*rows, 1)].contacts.push_back(
            {TextOrEmpty(*rows, 2), TextOrEmpty(*rows, 3),
             TextOrEmpty(*rows, 4), TextOrEmpty(*rows, 5)});
      }
    }
    {
      CachedStatement s = PrepareCached(
          c, absl::StrCat(
                 "SELECT ", t.entity_column, ", source, external_id FROM ",
                 t.external_ids, " WHERE ", t.entity_column, " IN (", in,
                 ") ORDER BY ", t.entity_column, ", source, external_id"));
      BindPadded(*s, 1, ids, begin, n, slots);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        out[TextOrEmpty(*rows, 1)].external_ids.push_back(
            {TextOrEmpty(*rows, 2), TextOrEmpty(*rows, 3)});
      }
    }
    {
      CachedStatement s = PrepareCached(
          c, absl::StrCat("SELECT ", t.entity_column,
                          ", attr_key, attr_value FROM ", t.attributes,
                          " WHERE ", t.entity_column, " IN (", in, ")"));
      BindPadded(*s, 1, ids, begin, n, slots);
      Rows rows(s->executeQuery());
      while (rows->next()) {
        out[TextOrEmpty(*rows, 1)].attributes[TextOrEmpty(*rows, 2)] =
            TextOrEmpty(*rows, 3);
      }
    }
  }
  return out;
}

void DeleteChildren(sql::Connection& c, const ChildTables& t,
                    const std::string& id) {
  for (const std::string* table :
       {&t.contacts, &t.external_ids, &t.attributes}) {
    CachedStatement s =
        PrepareCached(c, absl::StrCat("DELETE FROM ", *table, " WHERE ",
                                      t.entity_column, " = ?"));
    s->setString(1, id);
    s->executeUpdate();
  }
}

absl::Status WriteChildren(sql::Connection& c, const ChildTables& t,
                           const std::string& id, const EntityChildren& r,
                           bool replace) {
  if (replace) DeleteChildren(c, t, id);
  for (const ExternalKey& k : r.external_ids) {
    CachedStatement s = PrepareCached(
        c, absl::StrCat("SELECT ", t.entity_column, " FROM ", t.external_ids,
                        " WHERE source = ? AND external_id = ?"));
    s->setString(1, k.source);
    s->setString(2, k.id);
    Rows rows(s->executeQuery());
    if (rows->next() && TextOrEmpty(*rows, 1) != id) {
      // The source only, as for customers: a member may be a person, and
      // the message reaches the request log.
      return absl::AlreadyExistsError(
          absl::StrCat("an external id from ", k.source, " is already used by ",
                       t.noun, " ", TextOrEmpty(*rows, 1)));
    }
  }
  for (size_t i = 0; i < r.contacts.size(); ++i) {
    const ContactInfo& k = r.contacts[i];
    CachedStatement s = PrepareCached(
        c, absl::StrCat("INSERT INTO ", t.contacts, " (", t.entity_column,
                        ", position, name, role, email, email_key, phone) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    s->setString(1, id);
    s->setInt(2, static_cast<int>(i));
    s->setString(3, k.name);
    s->setString(4, k.role);
    s->setString(5, k.email);
    s->setString(6, k.email.empty() ? "" : EmailMatchKey(k.email));
    s->setString(7, k.phone);
    s->executeUpdate();
  }
  for (const ExternalKey& k : r.external_ids) {
    CachedStatement s =
        PrepareCached(c, absl::StrCat("INSERT INTO ", t.external_ids,
                                      " (source, external_id, ",
                                      t.entity_column, ") VALUES (?, ?, ?)"));
    s->setString(1, k.source);
    s->setString(2, k.id);
    s->setString(3, id);
    s->executeUpdate();
  }
  for (const auto& [key, value] : r.attributes) {
    CachedStatement s = PrepareCached(
        c, absl::StrCat("INSERT INTO ", t.attributes, " (", t.entity_column,
                        ", attr_key, attr_value) VALUES (?, ?, ?)"));
    s->setString(1, id);
    s->setString(2, key);
    s->setString(3, value);
    s->executeUpdate();
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> EntityExists(MysqlPool& pool, absl::string_view table,
                                  const std::string& id) {
  return pool.Run([&](sql::Connection& c) -> absl::StatusOr<bool> {
    CachedStatement s = PrepareCached(
        c, absl::StrCat("SELECT 1 FROM ", table, " WHERE id = ?"));
    s->setString(1, id);
    Rows rows(s->executeQuery());
    return rows->next();
  });
}

absl::StatusOr<std::vector<std::string>> FindByIdentities(
    sql::Connection& c, const ChildTables& t,
    const std::vector<ExternalKey>& external_ids,
    const std::string& email_key) {
  std::vector<std::string> out;
  for (const ExternalKey& k : external_ids) {
    CachedStatement s = PrepareCached(
        c, absl::StrCat("SELECT ", t.entity_column, " FROM ", t.external_ids,
                        " WHERE source = ? AND external_id = ?"));
    s->setString(1, k.source);
    s->setString(2, k.id);
    Rows rows(s->executeQuery());
    while (rows->next()) out.push_back(TextOrEmpty(*rows, 1));
  }
  if (!email_key.empty()) {
    CachedStatement s = PrepareCached(
        c, absl::StrCat("SELECT DISTINCT ", t.entity_column, " FROM ",
                        t.contacts, " WHERE email_key = ?"));
    s->setString(1, email_key);
    Rows rows(s->executeQuery());
    while (rows->next()) out.push_back(TextOrEmpty(*rows, 1));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Migration TrimmedContactEmailsMigration(int version, const ChildTables& t) {
  return Migration{
      version, "trimmed_contact_emails",
      absl::StrCat("-- Emails of ", t.contacts,
                   " with invisible characters at their ends trimmed, and "
                   "their keys made again\n"),
      [t, version](sql::Connection& c) {
        std::unique_ptr<sql::PreparedStatement> read(
            c.prepareStatement(absl::StrCat(
                "SELECT ", t.entity_column, ", position, email FROM ",
                t.contacts, " WHERE LENGTH(email) <> CHAR_LENGTH(email) ",
                "ORDER BY ", t.entity_column, ", position")));
        struct Changed {
          std::string entity;
          int position;
          std::string email;
        };
        std::vector<Changed> changed;
        {
          Rows rows(read->executeQuery());
          while (rows->next()) {
            const std::string email = rows->getString(3);
            absl::StatusOr<std::string> trimmed =
                NormalizeEmail(email, "email");
            if (trimmed.ok() && *trimmed != email) {
              changed.push_back(
                  {rows->getString(1), rows->getInt(2), *std::move(trimmed)});
            }
          }
        }
        std::unique_ptr<sql::PreparedStatement> write(
            c.prepareStatement(absl::StrCat(
                "UPDATE ", t.contacts, " SET email = ?, email_key = ? WHERE ",
                t.entity_column, " = ? AND position = ?")));
        // The version bump and the audit event came after the migration's
        // first release (b6ab4e9): a database that applied it then has its
        // trimmed rows unaudited. The description, whose checksum applied
        // databases keep, is unchanged.
        const std::string& entities = t.entities;
        std::unique_ptr<sql::PreparedStatement> touch(c.prepareStatement(
            absl::StrCat("UPDATE ", entities,
                         " SET version = version + 1, update_time_us = ? WHERE "
                         "id = ?")));
        const int64_t now_us = absl::ToUnixMicros(absl::Now());
        std::vector<audit::Event> events;
        for (const Changed& row : changed) {
          write->setString(1, row.email);
          write->setString(2, EmailMatchKey(row.email));
          write->setString(3, row.entity);
          write->setInt(4, row.position);
          write->executeUpdate();
          const std::string resource = absl::StrCat(entities, "/", row.entity);
          if (!events.empty() && events.back().resource == resource) continue;
          touch->setInt64(1, now_us);
          touch->setString(2, row.entity);
          touch->executeUpdate();
          events.push_back(audit::MigrationEvent(now_us, version, resource,
                                                 "contact email trimmed"));
        }
        audit::Write(c, events);
      }};
}

Migration FirmNameKeyMigration(int version,
                               std::vector<FirmNameKeyColumn> columns) {
  std::string what =
      "-- Firm name keys made again with FirmNameKey (Unicode "
      "NFKC_Casefold of non-ASCII names):";
  for (const FirmNameKeyColumn& col : columns) {
    absl::StrAppend(&what, " ", col.table, ".", col.key);
  }
  return Migration{
      version, "firm_name_keys", what + "\n",
      [columns = std::move(columns)](sql::Connection& c) {
        for (const FirmNameKeyColumn& col : columns) {
          // LENGTH counts bytes, CHAR_LENGTH characters: they differ exactly
          // when the name has a character past ASCII.
          std::unique_ptr<sql::PreparedStatement> read(c.prepareStatement(
              absl::StrCat("SELECT id, ", col.name, ", ", col.key, " FROM ",
                           col.table, " WHERE LENGTH(", col.name,
                           ") <> CHAR_LENGTH(", col.name, ")")));
          struct Change {
            std::string id, name, key;
          };
          std::vector<Change> changed;
          {
            Rows rows(read->executeQuery());
            while (rows->next()) {
              std::string name = rows->getString(2);
              std::string key = FirmNameKey(name);
              if (key != TextOrEmpty(*rows, 3))
                changed.push_back(
                    {rows->getString(1), std::move(name), std::move(key)});
            }
          }
          // Each by the name it was read with: a row a serving replica
          // renamed meanwhile keeps the key that replica gave it.
          std::unique_ptr<sql::PreparedStatement> write(c.prepareStatement(
              absl::StrCat("UPDATE ", col.table, " SET ", col.key,
                           " = ? WHERE id = ? AND ", col.name, " = ?")));
          for (const Change& change : changed) {
            write->setString(1, change.key);
            write->setString(2, change.id);
            write->setString(3, change.name);
            write->executeUpdate();
          }
        }
      }};
}

}  // namespace rapport
