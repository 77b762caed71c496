// Prepared statements kept per connection, so that a query is prepared on the
// server once per connection instead of once per call (Connector/C++ prepares,
// executes and closes a server-side statement each time otherwise: three
// round trips for one).
//
//   CachedStatement s = PrepareCached(c, "SELECT name FROM t WHERE id = ?");
//   s->setString(1, id);
//   std::unique_ptr<sql::ResultSet> rows(s->executeQuery());
//
// A connection is leased to one thread at a time, so its statements are too.
// Finish with a statement's result set before preparing the same text again
// on the same connection. MysqlPool forgets a connection's statements before
// it closes the connection.
#ifndef RAPPORT_COMMON_MYSQL_STATEMENT_CACHE_H_
#define RAPPORT_COMMON_MYSQL_STATEMENT_CACHE_H_

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>

#include <memory>
#include <string>

namespace rapport {

// A statement from the cache (or, past the cache's size, owned by the handle).
class CachedStatement {
 public:
  CachedStatement(sql::PreparedStatement* cached,
                  std::unique_ptr<sql::PreparedStatement> owned)
      : cached_(cached), owned_(std::move(owned)) {}
  sql::PreparedStatement* operator->() const { return get(); }
  sql::PreparedStatement& operator*() const { return *get(); }
  sql::PreparedStatement* get() const {
    return owned_ ? owned_.get() : cached_;
  }

 private:
  sql::PreparedStatement* cached_;
  std::unique_ptr<sql::PreparedStatement> owned_;
};

// What a cached statement's parameters hold when it is handed out again.
enum class StatementParameters {
  // None set: executing before setting them all throws.
  kCleared,
  // The last call's values, for a statement of hundreds of parameters whose
  // caller sets every one: Connector/C++ clears them one at a time through a
  // std::map, which costs more than binding them anew.
  kKept,
};

// The statement for `query` on `c`. May throw sql::SQLException like
// prepareStatement (call it inside MysqlPool::Run).
CachedStatement PrepareCached(
    sql::Connection& c, const std::string& query,
    StatementParameters parameters = StatementParameters::kCleared);

// Deletes the statements of `c`; call before closing it.
void ForgetStatements(sql::Connection* c);

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_STATEMENT_CACHE_H_
