// Reading the CSV files rapportctl imports, with errors that name the file,
// the line and the column: "T.csv:12: amount: not a decimal number: \"1e5\"".
//
//   RAPPORT_ASSIGN_OR_RETURN(auto file, CsvInput::Open(path, {{"entity_id"},
//   {"amount"}})); while (true) {
//     RAPPORT_ASSIGN_OR_RETURN(bool more, file->Next());
//     if (!more) break;
//     absl::string_view id = file->Get(0);
//   }
#ifndef RAPPORT_TOOLS_RAPPORTCTL_CSV_INPUT_H_
#define RAPPORT_TOOLS_RAPPORTCTL_CSV_INPUT_H_

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/csv.h"

namespace rapport::ctl {

// A column and the other header names accepted for it (the first is its name).
struct Column {
  std::vector<std::string> names;
  bool required = true;
};

// INVALID_ARGUMENT naming `path` when it is no regular file (a pipe, as
// `<(zcat f.gz)` gives, or a device): an input file is read more than once
// (checked whole before a row is sent), and a pipe can be read once.
absl::Status CheckRegularFile(const std::string& path);

class CsvInput {
 public:
  // Opens the file and reads its header; a missing required column is an error.
  static absl::StatusOr<std::unique_ptr<CsvInput>> Open(
      const std::string& path, std::vector<Column> columns);
  // Moves to the next row; false at the end. A row whose number of fields is
  // not the header's is an error, unless ragged rows are accepted.
  absl::StatusOr<bool> Next();
  // From now on Next() moves onto a row of the wrong width too, and ragged()
  // says so (an import rejects that row alone; its fields are not read).
  void AcceptRaggedRows() { accept_ragged_ = true; }
  bool ragged() const { return reader_->field_count() != width_; }
  // "expected 4 fields like the header, got 3: no currency" (the header's
  // names of the fields missing), or "..., got 5: 1 past currency".
  std::string RaggedMessage() const;
  // The line the current row starts on.
  int64_t line() const { return reader_->line(); }
  // The header's line (blank lines before it are skipped).
  int64_t header_line() const { return header_line_; }
  // The line breaks inside the current row's quoted fields: the lines it
  // spans past its first.
  int64_t LineBreaksInRow() const;
  // The header's names that are none of the columns given to Open, in the
  // file's order (a misspelt optional column is one).
  const std::vector<std::string>& unused() const { return unused_; }
  // Whether optional column `c` is in the file.
  bool Has(size_t c) const { return index_[c] >= 0; }
  // The value of column `c` (in the order given to Open) in the current row.
  absl::string_view Get(size_t c) const { return reader_->field(index_[c]); }
  // "path:line: column: what", as INVALID_ARGUMENT.
  absl::Status Error(size_t c, absl::string_view what) const;
  int64_t rows() const { return rows_; }
  int64_t bytes_read() {
    return in_.good() ? static_cast<int64_t>(in_.tellg()) : size_;
  }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  CsvInput() = default;
  std::string path_;
  std::ifstream in_;
  int64_t header_line_ = 1;
  std::unique_ptr<CsvReader> reader_;
  std::vector<Column> columns_;
  std::vector<int> index_;
  std::vector<std::string> unused_;
  size_t width_ = 0;
  std::vector<std::string> header_;
  bool accept_ragged_ = false;
  int64_t rows_ = 0;
  int64_t size_ = 0;
};

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_CSV_INPUT_H_
