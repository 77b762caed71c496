// What the records of the counterparts that are firms and people share
// (partners, members of the financial community): contacts, external ids and
// attributes, checked the same way in every service and stored in three child
// tables of the entity's, named per service.
//
//   EntityChildren children;
//   std::vector<FieldViolation> violations;
//   ReadContacts(request.partner().contacts(), "partner.contacts", "US",
//                &children.contacts, &violations);
//   ...
//   RAPPORT_RETURN_IF_ERROR(WriteChildren(c, kPartnerChildTables, id,
//                                         children, /*replace=*/true));
#ifndef RAPPORT_COMMON_RECORDS_RECORDS_H_
#define RAPPORT_COMMON_RECORDS_RECORDS_H_

#include <cppconn/connection.h>

#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/mysql/migrations.h"
#include "common/mysql/mysql_pool.h"
#include "common/mysql/named_lock.h"
#include "common/status.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "rapport/common/v1/common.pb.h"

namespace rapport {

inline constexpr int kMaxContacts = 20;

// A column of firm name keys (FirmNameKey of another column) in a table keyed
// by `id`.
struct FirmNameKeyColumn {
  const char* table;
  const char* name;  // the name the key is made from
  const char* key;
};

// A migration that makes every key of `columns` again with today's
// FirmNameKey: keys made before it case-folded and normalised non-ASCII
// names differ for those names (only rows whose name has a non-ASCII
// character are read).
Migration FirmNameKeyMigration(int version,
                               std::vector<FirmNameKeyColumn> columns);

struct ContactInfo {
  std::string name;
  std::string role;
  std::string email;  // as NormalizeEmail leaves it
  std::string phone;  // E.164
  friend bool operator==(const ContactInfo&, const ContactInfo&) = default;
};

struct ExternalKey {
  std::string source;
  std::string id;
  friend bool operator==(const ExternalKey&, const ExternalKey&) = default;
};

// A record's children, as its child tables hold them.
struct EntityChildren {
  std::vector<ContactInfo> contacts;      // in their order
  std::vector<ExternalKey> external_ids;  // by source and id
  std::map<std::string, std::string> attributes;
};

// Each contact checked (a name up to 256 bytes, a role up to 128, an email
// and a phone normalised, the phone read in `phone_region` when it has no
// "+"), at most kMaxContacts; every problem is added to `violations` under
// `field` ("partner.contacts[2].email").
void ReadContacts(
    const google::protobuf::RepeatedPtrField<common::v1::Contact>& in,
    absl::string_view field, absl::string_view phone_region,
    std::vector<ContactInfo>* out, std::vector<FieldViolation>* violations);
// The same for external ids (ReadExternalIds, common/validation.h).
void ReadExternalKeys(
    const google::protobuf::RepeatedPtrField<common::v1::ExternalId>& in,
    absl::string_view field, std::vector<ExternalKey>* out,
    std::vector<FieldViolation>* violations);

void ToProto(const EntityChildren& children,
             google::protobuf::RepeatedPtrField<common::v1::Contact>* contacts,
             google::protobuf::RepeatedPtrField<common::v1::ExternalId>* ids,
             google::protobuf::Map<std::string, std::string>* attributes);

// The child tables of one kind of entity: (`entity_column`, position, name,
// role, email, email_key, phone), (source, external_id, `entity_column`)
// and (`entity_column`, attr_key, attr_value). Names are the service's
// constants.
struct ChildTables {
  std::string noun;      // "partner", for messages
  std::string entities;  // "partners": the table, and the API's collection
  std::string entity_column;
  std::string contacts;
  std::string external_ids;
  std::string attributes;
};

// Contacts' emails stored before NormalizeEmail trimmed Unicode spaces and
// invisible characters at their ends (a no-break space from a spreadsheet),
// trimmed now with their keys, so that the same address finds them (only
// rows whose email has a character past ASCII are read). Each entity changed
// gets a new version (its etag changes) and an audit event by
// "system:migration".
Migration TrimmedContactEmailsMigration(int version, const ChildTables& t);

// Whether `table` (the entities: partners, members) has a row `id`; one
// statement, for the checks that writes make.
absl::StatusOr<bool> EntityExists(MysqlPool& pool, absl::string_view table,
                                  const std::string& id);

// The children of the entities `ids`, by id (every id gets an entry).
absl::StatusOr<std::map<std::string, EntityChildren>> LoadChildren(
    sql::Connection& c, const ChildTables& tables,
    const std::vector<std::string>& ids);

// Stores the children of entity `id` (replacing what it had when `replace`);
// an external id held by another entity is ALREADY_EXISTS naming it.
absl::Status WriteChildren(sql::Connection& c, const ChildTables& tables,
                           const std::string& id,
                           const EntityChildren& children, bool replace);

// The entities holding any of the external ids, or a contact whose email has
// `email_key` (EmailMatchKey), sorted, each once.
absl::StatusOr<std::vector<std::string>> FindByIdentities(
    sql::Connection& c, const ChildTables& tables,
    const std::vector<ExternalKey>& external_ids, const std::string& email_key);

// Runs fn(c) in a transaction, as pool.Transaction does. With `email_key`
// (an identify-or-create by a contact email, EmailMatchKey), first takes a
// lock on that key across replicas and refuses with ALREADY_EXISTS when an
// entity has a contact with it: contact emails are not unique (two firms may
// share an agent), so no key of the database stops a second identify by the
// same email from creating a second entity; the lock does.
template <typename Fn>
auto CreateClaimingEmail(MysqlPool& pool, const ChildTables& tables,
                         const std::string& email_key, Fn&& fn)
    -> std::invoke_result_t<Fn, sql::Connection&> {
  using Result = std::invoke_result_t<Fn, sql::Connection&>;
  if (email_key.empty()) return pool.Transaction(fn);
  return pool.TransactionUnderLock(
      KeyedLockName("rapport.identify.", pool.options().database,
                    tables.contacts, email_key),
      absl::StrCat("another call is identifying a ", tables.noun,
                   " by the same email; retry"),
      [&](sql::Connection& c) -> Result {
        absl::StatusOr<std::vector<std::string>> holders =
            FindByIdentities(c, tables, {}, email_key);
        if (!holders.ok()) return Result(holders.status());
        if (!holders->empty()) {
          return Result(absl::AlreadyExistsError(
              absl::StrCat(tables.noun, " ", holders->front(),
                           " has a contact with this email")));
        }
        return fn(c);
      });
}

// Deletes the children of entity `id`.
void DeleteChildren(sql::Connection& c, const ChildTables& tables,
                    const std::string& id);

}  // namespace rapport

#endif  // RAPPORT_COMMON_RECORDS_RECORDS_H_
