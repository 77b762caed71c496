#include "common/mysql/sql.h"

#include <cppconn/statement.h>

#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "common/mysql/statement_cache.h"
#include "common/status.h"

namespace rapport {

std::string TextOrEmpty(sql::ResultSet& rows, int column) {
  return rows.isNull(column) ? std::string() : Text(rows.getString(column));
}

absl::StatusOr<Decimal> DecimalColumn(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return Decimal();
  absl::StatusOr<Decimal> d =
      Decimal::ParseStored(Text(rows.getString(column)));
  if (!d.ok()) {
    // What is stored is for the log, not for the caller.
    return MarkInternal(absl::DataLossError(
        absl::StrCat("stored decimal does not fit: ", d.status().message())));
  }
  return *d;
}

std::optional<double> OptionalDouble(sql::ResultSet& rows, int column) {
  if (rows.isNull(column)) return std::nullopt;
  return static_cast<double>(rows.getDouble(column));
}

void SetNullableString(sql::PreparedStatement& s, int index,
                       const std::string& value) {
  if (value.empty()) {
    s.setNull(index, sql::DataType::VARCHAR);
  } else {
    s.setString(index, value);
  }
}

void SetOptionalDouble(sql::PreparedStatement& s, int index,
                       std::optional<double> value) {
  if (value.has_value()) {
    s.setDouble(index, *value);
  } else {
    s.setNull(index, sql::DataType::DOUBLE);
  }
}

void SetOptionalInt64(sql::PreparedStatement& s, int index,
                      std::optional<int64_t> value) {
  if (value.has_value()) {
    s.setInt64(index, *value);
  } else {
    s.setNull(index, sql::DataType::BIGINT);
  }
}

std::string Repeat(absl::string_view group, size_t n,
                   absl::string_view separator) {
  std::string out;
  out.reserve((group.size() + separator.size()) * n);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out.append(separator.data(), separator.size());
    out.append(group.data(), group.size());
  }
  return out;
}

std::string Placeholders(size_t n) { return Repeat("?", n, ","); }

std::string RowPlaceholders(size_t rows, size_t columns) {
  return Repeat(absl::StrCat("(", Placeholders(columns), ")"), rows, ",");
}

void LockRows(sql::Connection& c, absl::string_view table,
              std::vector<std::string> ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  constexpr size_t kMost = 256;
  for (size_t begin = 0; begin < ids.size(); begin += kMost) {
    const size_t n = std::min(kMost, ids.size() - begin);
    const size_t slots = PaddedCount(n, kMost);
    CachedStatement s =
        PrepareCached(c, absl::StrCat("INSERT INTO ", table, " (id) VALUES ",
                                      RowPlaceholders(slots, 1),
                                      " ON DUPLICATE KEY UPDATE id = id"));
    BindPadded(*s, 1, ids, begin, n, slots);
    s->executeUpdate();
  }
}

absl::flat_hash_map<std::string, int> IntColumnLocked(
    sql::Connection& c, absl::string_view table, absl::string_view column,
    const std::vector<std::string>& ids) {
  absl::flat_hash_map<std::string, int> out;
  SelectInLists(
      c, absl::StrCat("SELECT id, ", column, " FROM ", table, " WHERE id"), ids,
      512,
      [&](sql::ResultSet& found) {
        out[TextOrEmpty(found, 1)] = found.getInt(2);
      },
      " LOCK IN SHARE MODE");
  return out;
}

size_t PaddedCount(size_t n, size_t most) {
  return std::min(most, std::bit_ceil(std::max<size_t>(n, 1)));
}

void BindPadded(sql::PreparedStatement& s, int first,
                const std::vector<std::string>& values, size_t begin, size_t n,
                size_t slots) {
  for (size_t i = 0; i < slots; ++i) {
    s.setString(first + static_cast<int>(i),
                values[begin + std::min(i, n - 1)]);
  }
}

void Execute(sql::Connection& c, const std::string& query) {
  std::unique_ptr<sql::Statement> s(c.createStatement());
  s->execute(query);
}

void SelectInLists(sql::Connection& c, absl::string_view select,
                   const std::vector<std::string>& keys, size_t most,
                   const std::function<void(sql::ResultSet&)>& row,
                   absl::string_view then) {
  for (size_t begin = 0; begin < keys.size(); begin += most) {
    const size_t n = std::min(most, keys.size() - begin);
    const size_t slots = PaddedCount(n, most);
    CachedStatement s = PrepareCached(
        c, absl::StrCat(select, " IN (", Placeholders(slots), ")", then));
    BindPadded(*s, 1, keys, begin, n, slots);
    Rows rows(s->executeQuery());
    while (rows->next()) row(*rows);
  }
}

}  // namespace rapport
