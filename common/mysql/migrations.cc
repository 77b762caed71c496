#include "common/mysql/migrations.h"

#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/statement.h>

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/validation.h"

namespace rapport {
namespace {

// A stable digest of a migration's text, to notice edited files.
std::string Checksum(const std::string& text) { return Fingerprint(text); }

}  // namespace

std::vector<std::string> SplitSqlStatements(const std::string& sql) {
  std::vector<std::string> out;
  std::string current;
  // What is open at a line's end: the quote of a literal or a name, or '*'
  // for a /* comment */.
  char open = 0;
  // "--" followed by whitespace or the line's end, and '#', begin a comment
  // to the line's end (MariaDB's rules).
  auto line_comment = [](absl::string_view rest) {
    return rest.front() == '#' ||
           (absl::StartsWith(rest, "--") &&
            (rest.size() == 2 || absl::ascii_isspace(rest[2])));
  };
  for (absl::string_view line : absl::StrSplit(sql, '\n')) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (open == 0 && (trimmed.empty() || line_comment(trimmed))) continue;
    // A statement ends at a ';' outside quotes and comments that only a
    // comment may follow.
    size_t end = absl::string_view::npos;
    for (size_t i = 0; i < line.size() && end == absl::string_view::npos; ++i) {
      const char c = line[i];
      if (open == '*') {
        if (c == '*' && i + 1 < line.size() && line[i + 1] == '/') {
          open = 0;
          ++i;
        }
      } else if (open != 0) {
        if (c == '\\' && open != '`') {
          ++i;  // an escaped character (not in a `name`)
        } else if (c == open) {
          open = 0;  // (a doubled quote closes and opens again)
        }
      } else if (c == '\'' || c == '"' || c == '`') {
        open = c;
      } else if (c == '/' && i + 1 < line.size() && line[i + 1] == '*') {
        open = '*';
        ++i;
      } else if (line_comment(line.substr(i))) {
        break;
      } else if (c == ';') {
        absl::string_view rest = absl::StripAsciiWhitespace(line.substr(i + 1));
        if (rest.empty() || line_comment(rest)) end = i;
      }
    }
    if (end == absl::string_view::npos) {
      absl::StrAppend(&current, line, "\n");
      continue;
    }
    absl::StrAppend(&current, line.substr(0, end));
    out.push_back(std::string(absl::StripAsciiWhitespace(current)));
    current.clear();
  }
  if (!absl::StripAsciiWhitespace(current).empty())
    out.push_back(std::move(current));
  return out;
}

absl::StatusOr<int> ApplyMigrations(MysqlPool& pool,
                                    const std::vector<Migration>& given) {
  // Lists joined from several owners (a service's, the kit's, the audit
  // log's) apply in version order whatever order they were joined in.
  std::vector<const Migration*> migrations;
  for (const Migration& m : given) migrations.push_back(&m);
  std::stable_sort(migrations.begin(), migrations.end(),
                   [](const Migration* a, const Migration* b) {
                     return a->version < b->version;
                   });
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i]->version == migrations[i - 1]->version) {
      return absl::InvalidArgumentError(absl::StrCat(
          "two migrations have the version ", migrations[i]->version, ": ",
          migrations[i - 1]->name, " and ", migrations[i]->name));
    }
  }
  return pool.Run([&](sql::Connection& c) -> absl::StatusOr<int> {
    std::unique_ptr<sql::Statement> s(c.createStatement());
    auto lock = [&](int seconds) {
      std::unique_ptr<sql::ResultSet> rs(s->executeQuery(absl::StrCat(
          "SELECT GET_LOCK(CONCAT('rapport.migrate.', DATABASE()), ", seconds,
          ")")));
      return rs->next() && rs->getInt(1) == 1;
    };
    if (!lock(0)) {
      // Said before the wait, which may take as long as the other replica's
      // migration does.
      LogInfo(ProcessService(), "waiting for the schema",
              {{"error", "another replica holds the migration lock"}});
      if (!lock(120)) {
        return absl::DeadlineExceededError(
            "another replica has held the migration lock for 120 s (it is "
            "migrating the schema)");
      }
    }
    struct Unlock {
      sql::Statement* s;
      ~Unlock() {
        try {
          s->execute("DO RELEASE_LOCK(CONCAT('rapport.migrate.', DATABASE()))");
        } catch (const sql::SQLException&) {
          // The lock goes with the connection anyway.
        }
      }
    } unlock{s.get()};

    s->execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INT NOT NULL PRIMARY KEY,"
        " name VARCHAR(200) NOT NULL,"
        " checksum CHAR(16) NOT NULL,"
        " applied_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)"
        ") ENGINE=InnoDB");
    std::map<int, std::string> applied;
    {
      std::unique_ptr<sql::ResultSet> rs(
          s->executeQuery("SELECT version, checksum FROM schema_migrations"));
      while (rs->next()) applied[rs->getInt(1)] = rs->getString(2);
    }
    // A binary older than the schema (a rollback, an old replica restarted
    // during a rolling update) serves, but its writes may miss what a newer
    // migration requires: the log says so at every start.
    std::vector<std::string> unknown;
    for (const auto& [version, sum] : applied) {
      if (std::none_of(migrations.begin(), migrations.end(),
                       [version = version](const Migration* m) {
                         return m->version == version;
                       })) {
        unknown.push_back(absl::StrCat(version));
      }
    }
    if (!unknown.empty()) {
      LogLine("warn", ProcessService(),
              "the database has migrations this binary does not know: it is "
              "older than the schema; run the newer version",
              {{"migrations", absl::StrJoin(unknown, ",")}});
    }
    // A bound on waiting for a table's metadata lock (the pool's
    // metadata_lock_wait_timeout) holds until a migration has changed
    // something: giving up then leaves nothing half done, and the migration
    // runs again whole. Its later statements wait as long as they must, as
    // not every migration can run again from its middle.
    int64_t bounded_wait = 0;
    {
      std::unique_ptr<sql::ResultSet> rs(
          s->executeQuery("SELECT @@SESSION.lock_wait_timeout"));
      if (rs->next()) bounded_wait = rs->getInt64(1);
    }
    const bool bounded = bounded_wait > 0 && bounded_wait < 86400;
    auto wait_for_locks = [&](bool bound) {
      if (!bounded) return;
      s->execute(absl::StrCat("SET SESSION lock_wait_timeout = ",
                              bound ? bounded_wait : 31536000));
    };
    int count = 0;
    for (const Migration* next : migrations) {
      const Migration& m = *next;
      const std::string sum = Checksum(m.sql);
      auto it = applied.find(m.version);
      if (it != applied.end()) {
        if (it->second != sum) {
          return absl::FailedPreconditionError(
              absl::StrCat("migration ", m.version, "_", m.name,
                           " was changed after it was applied; add a new "
                           "migration instead"));
        }
        continue;
      }
      // Named in the log before it runs: one that rebuilds a large table
      // takes minutes, and the operator waiting for the replica sees which.
      LogInfo(ProcessService(), "applying a migration",
              {{"migration", absl::StrCat(absl::Dec(m.version, absl::kZeroPad4),
                                          "_", m.name)}});
      wait_for_locks(true);
      bool changed = false;
      for (const std::string& statement : SplitSqlStatements(m.sql)) {
        s->execute(statement);
        if (!changed) wait_for_locks(false);
        changed = true;
      }
      const auto record = [&] {
        std::unique_ptr<sql::PreparedStatement> insert(
            c.prepareStatement("INSERT INTO schema_migrations (version, "
                               "name, checksum) VALUES (?, ?, ?)"));
        insert->setInt(1, m.version);
        insert->setString(2, m.name);
        insert->setString(3, sum);
        insert->execute();
      };
      if (m.code) {
        // The code's row changes, their audit events and the record that it
        // ran commit as one: a crash between them would leave changes the
        // rerun no longer finds to audit. (Its statements are DML; the DDL
        // above commits by itself and is written to run again.)
        // (Statements, not the connector's commit and rollback, which do
        // not look at the server's answer: see MysqlPool::InTransaction.)
        s->execute("START TRANSACTION");
        try {
          m.code(c);
          record();
          s->execute("COMMIT");
        } catch (...) {
          try {
            s->execute("ROLLBACK");
          } catch (const sql::SQLException&) {
            // The connection is gone, and the transaction with it.
          }
          throw;
        }
      } else {
        record();
      }
      ++count;
    }
    return count;
  });
}

}  // namespace rapport
