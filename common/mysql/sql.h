// Small helpers for code that talks to MySQL through Connector/C++: reading
// columns, binding nullable values, and the placeholder lists of multi-row
// and IN (...) statements. Call them inside MysqlPool::Run or Transaction,
// which turn the connector's exceptions into a status.
//
//   const size_t slots = PaddedCount(ids.size(), 1000);  // 3 -> 4
//   CachedStatement s = PrepareCached(c, absl::StrCat(
//       "SELECT id, note FROM t WHERE id IN (", Placeholders(slots), ")"));
//   BindPadded(*s, 1, ids, 0, ids.size(), slots);
//   Rows rows(s->executeQuery());
//   while (rows->next()) notes[Text(rows->getString(1))] = TextOrEmpty(*rows,
//   2);
#ifndef RAPPORT_COMMON_MYSQL_SQL_H_
#define RAPPORT_COMMON_MYSQL_SQL_H_

#include <cppconn/connection.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"

namespace rapport {

using Rows = std::unique_ptr<sql::ResultSet>;

// Every row of `rows` as a record made by `read` (an absl::StatusOr<Record>
// of the current row); the first error it answers ends the reading.
template <typename Record, typename Read>
absl::StatusOr<std::vector<Record>> ReadRecords(sql::ResultSet& rows,
                                                Read read) {
  std::vector<Record> out;
  while (rows.next()) {
    absl::StatusOr<Record> r = read(rows);
    if (!r.ok()) return r.status();
    out.push_back(*std::move(r));
  }
  return out;
}

inline std::string Text(const sql::SQLString& s) {
  return std::string(s.asStdString());
}
// A text column; "" when NULL.
std::string TextOrEmpty(sql::ResultSet& rows, int column);
// A DECIMAL column as an exact Decimal; zero when NULL; OUT_OF_RANGE when it
// does not fit.
absl::StatusOr<Decimal> DecimalColumn(sql::ResultSet& rows, int column);
std::optional<double> OptionalDouble(sql::ResultSet& rows, int column);

// NULL for "" (optional text columns whose absence is NULL).
void SetNullableString(sql::PreparedStatement& s, int index,
                       const std::string& value);
void SetOptionalDouble(sql::PreparedStatement& s, int index,
                       std::optional<double> value);
void SetOptionalInt64(sql::PreparedStatement& s, int index,
                      std::optional<int64_t> value);

// `group` repeated n times, joined by `separator`.
std::string Repeat(absl::string_view group, size_t n,
                   absl::string_view separator);
// "?,?,...,?": n placeholders.
std::string Placeholders(size_t n);
// "(?,...,?),(?,...,?)": `rows` groups of `columns` placeholders.
std::string RowPlaceholders(size_t rows, size_t columns);

// Runs `fn(begin, n)` over [0, n) in chunks of at most 1024, in counts of
// powers of two, so that a few statement texts (cached, see
// statement_cache.h) serve multi-row statements of every size.
template <typename Fn>
void ForChunks(size_t n, Fn fn) {
  size_t begin = 0;
  for (size_t size = 1024; size >= 1; size /= 2) {
    while (n - begin >= size) {
      fn(begin, size);
      begin += size;
    }
  }
}

// The number of slots for n values in lists padded to a power of two (at
// most `most`), so that a few statement texts serve every count.
size_t PaddedCount(size_t n, size_t most);
// Binds values[begin, begin + n) to `slots` parameters from `first`, the last
// value repeated in the slots past n.
void BindPadded(sql::PreparedStatement& s, int first,
                const std::vector<std::string>& values, size_t begin, size_t n,
                size_t slots);

// Locks the rows `ids` of `table` (a lock table: one column, `id`, its
// primary key), inserting those missing, until the transaction on `c` ends.
// In ascending order, as InnoDB takes a multi-row insert's rows in their
// order: two callers never hold each other's next lock, and no gap of a
// data table is locked. Sorts and dedupes `ids`.
void LockRows(sql::Connection& c, absl::string_view table,
              std::vector<std::string> ids);

// Runs `select` followed by " IN (...)" once per list of up to `most` of
// `keys` (padded as above, through the statement cache) and calls `row` for
// every row they return. `select` ends with the column the keys are
// compared to: "SELECT id, kind FROM members WHERE id"; `then` follows the
// list (" LOCK IN SHARE MODE").
void SelectInLists(sql::Connection& c, absl::string_view select,
                   const std::vector<std::string>& keys, size_t most,
                   const std::function<void(sql::ResultSet&)>& row,
                   absl::string_view then = "");

// The integer `column` of the rows of `table` whose `id` is among `ids`, by
// id, read locked (shared) until the transaction on `c` ends: what a batch
// checks of the entities its rows name (a kind, a lifecycle) holds until it
// commits. Ids that name no row are absent.
absl::flat_hash_map<std::string, int> IntColumnLocked(
    sql::Connection& c, absl::string_view table, absl::string_view column,
    const std::vector<std::string>& ids);

// Runs a statement without parameters or results (DDL), unprepared.
void Execute(sql::Connection& c, const std::string& query);

}  // namespace rapport

#endif  // RAPPORT_COMMON_MYSQL_SQL_H_
