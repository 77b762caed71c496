// RFC 4180 CSV: a fast streaming reader, a header helper and a writer.
//
// CsvReader reads records from a std::istream in large chunks and hands out
// the fields of the current record as string_views into a buffer it reuses,
// so reading a 10M-row file allocates almost nothing per row. Quoted fields
// may contain commas, doubled quotes and CR/LF line breaks; records end with
// LF or CRLF (the last one may have no line end); a UTF-8 byte order mark at
// the start is skipped; completely empty lines are skipped.
//
//   std::ifstream file("purchases.csv", std::ios::binary);
//   rapport::CsvReader reader(&file);
//   RAPPORT_ASSIGN_OR_RETURN(bool has_header, reader.Next());
//   RAPPORT_ASSIGN_OR_RETURN(
//       rapport::CsvHeader header,
//       rapport::CsvHeader::Create(reader.fields(), {"id", "amount"},
//       {"note"}));
//   const int amount = header.Index("amount");
//   while (true) {
//     RAPPORT_ASSIGN_OR_RETURN(bool more, reader.Next());
//     if (!more) break;
//     RAPPORT_RETURN_IF_ERROR(reader.ExpectFieldCount(header.num_columns()));
//     absl::string_view a = reader.field(amount);  // valid until next Next()
//     ... reader.line() is the 1-based line where this record starts ...
//   }
//
// CsvWriter writes rows, quoting a field only when it contains a comma, a
// quote, CR or LF (quotes are doubled).

#ifndef RAPPORT_COMMON_BASE_CSV_H_
#define RAPPORT_COMMON_BASE_CSV_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace rapport {

class CsvReader {
 public:
  // Reads from `in` (not owned; must outlive the reader). Open files in
  // binary mode.
  explicit CsvReader(std::istream* in, size_t chunk_bytes = 1 << 20);
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Advances to the next record: true if there is one, false at the end of
  // the input. Malformed quoting is InvalidArgument naming the line, e.g.
  // `CSV line 7: unterminated quoted field`. A stream read error is
  // DataLoss.
  absl::StatusOr<bool> Next();

  // The current record's fields; valid until the next call to Next().
  absl::Span<const absl::string_view> fields() const { return views_; }
  size_t field_count() const { return views_.size(); }
  absl::string_view field(size_t i) const { return views_[i]; }

  // 1-based physical line on which the current record starts (quoted line
  // breaks count as lines).
  int64_t line() const { return record_line_; }
  // Whether one of the current record's fields was quoted (`""` is an
  // empty field someone wrote, not a blank line).
  bool any_quoted() const { return any_quoted_; }

  // InvalidArgument `CSV line N: expected 4 fields, got 3` unless the
  // current record has exactly `n` fields.
  absl::Status ExpectFieldCount(size_t n) const;

 private:
  // Makes at least one unread byte available; false at end of input.
  bool Fill();
  absl::Status Error(int64_t line, absl::string_view what) const;

  std::istream* in_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  bool started_ = false;
  bool read_error_ = false;
  int64_t line_ = 1;  // line of the next unread byte
  int64_t record_line_ = 0;
  bool any_quoted_ = false;
  std::string record_;        // unescaped bytes of all fields
  std::vector<size_t> ends_;  // end offset of each field in record_
  std::vector<absl::string_view> views_;
};

// Maps header names to column indexes, checking that the required ones are
// there. Names match exactly (case-sensitive, no trimming); other columns are
// allowed and ignored.
//
//   auto header = CsvHeader::Create(reader.fields(), {"id", "timestamp"},
//                                   {"amount"});
//   // error: `missing required CSV column "timestamp"`
class CsvHeader {
 public:
  static absl::StatusOr<CsvHeader> Create(
      absl::Span<const absl::string_view> header_fields,
      std::initializer_list<absl::string_view> required,
      std::initializer_list<absl::string_view> optional = {});

  // Column index of `name`, or -1 if the header does not have it.
  int Index(absl::string_view name) const;
  bool Has(absl::string_view name) const { return Index(name) >= 0; }
  // Number of columns in the header row.
  size_t num_columns() const { return num_columns_; }

 private:
  absl::flat_hash_map<std::string, int> index_;
  size_t num_columns_ = 0;
};

// Appends `field` to `out`, quoted if it contains ',', '"', CR or LF.
void AppendCsvField(absl::string_view field, std::string* out);

// Writes CSV rows to a stream (not owned), one line end per row.
//
//   rapport::CsvWriter writer(&std::cout);
//   writer.WriteRow({"id", "note"});
//   writer.WriteRow({"c1", "said \"hi\", left"});  // c1,"said ""hi"", left"
class CsvWriter {
 public:
  explicit CsvWriter(std::ostream* out, absl::string_view line_end = "\n");
  // From now on, a field that a spreadsheet would run as a formula (text
  // that begins with =, +, -, @, a tab or a CR) is written with a ' before
  // it, which spreadsheets show as text; a plain number (-12.50) is left
  // as it is. For files of what other people wrote (names, external ids),
  // opened by people; a file a program reads back wants the exact text.
  void GuardFormulas() { guard_formulas_ = true; }
  void WriteRow(absl::Span<const absl::string_view> fields);
  void WriteRow(std::initializer_list<absl::string_view> fields) {
    WriteRow(absl::MakeConstSpan(fields.begin(), fields.size()));
  }
  void WriteRow(const std::vector<std::string>& fields);
  // False once the stream has failed.
  bool ok() const { return out_->good(); }

 private:
  void Append(absl::string_view field);

  std::ostream* out_;
  std::string line_end_;
  std::string row_;
  bool guard_formulas_ = false;
};

// Whether a spreadsheet opening a CSV cell of `text` would take it for a
// formula: it begins with =, +, -, @, a tab or a CR, and is not a plain
// decimal number.
bool LooksLikeFormula(absl::string_view text);

}  // namespace rapport

#endif  // RAPPORT_COMMON_BASE_CSV_H_
