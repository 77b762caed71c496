#include "tools/rapportctl/csv_input.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"

namespace rapport::ctl {

absl::Status CheckRegularFile(const std::string& path) {
  struct stat st;
  // One that is not there is said so by opening it.
  if (stat(path.c_str(), &st) != 0) return absl::OkStatus();
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, not a CSV file"));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": not a regular file (a pipe or a device); the file is read more "
        "than once, so save it to a file first"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<CsvInput>> CsvInput::Open(
    const std::string& path, std::vector<Column> columns) {
  RAPPORT_RETURN_IF_ERROR(CheckRegularFile(path));
  std::unique_ptr<CsvInput> input(new CsvInput());
  input->path_ = path;
  input->in_.open(path, std::ios::binary | std::ios::ate);
  if (!input->in_)
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot open the file (", std::strerror(errno), ")"));
  input->size_ = static_cast<int64_t>(input->in_.tellg());
  input->in_.seekg(0);
  input->reader_ = std::make_unique<CsvReader>(&input->in_);
  absl::StatusOr<bool> header = input->reader_->Next();
  if (!header.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", header.status().message()));
  if (!*header)
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the file is empty; want a header row"));
  input->header_line_ = input->reader_->line();
  input->width_ = input->reader_->field_count();
  // A file in UTF-16: said so, rather than that the header lacks a column.
  if (input->width_ > 0) {
    const absl::string_view first = input->reader_->field(0);
    if (absl::StartsWith(first, "\xff\xfe") ||
        absl::StartsWith(first, "\xfe\xff")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the file is UTF-16; save it as UTF-8"));
    }
  }
  for (size_t i = 0; i < input->width_; ++i) {
    input->header_.emplace_back(input->reader_->field(i));
  }
  input->columns_ = std::move(columns);
  for (const Column& c : input->columns_) {
    // A header written by hand or by a spreadsheet may differ in case or
    // have spaces around a name: taken for the column all the same (left
    // unused, an optional column's values would be dropped silently). Named
    // twice, the column is ambiguous.
    int found = -1;
    for (size_t i = 0; i < input->width_; ++i) {
      const absl::string_view field =
          absl::StripAsciiWhitespace(input->reader_->field(i));
      const bool matches = std::any_of(
          c.names.begin(), c.names.end(), [&](const std::string& name) {
            return absl::EqualsIgnoreCase(field, name);
          });
      if (!matches) continue;
      if (found >= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ":", input->header_line_, ": the header names the column ",
            c.names[0], " twice (fields ", found + 1, " and ", i + 1, ")"));
      }
      found = static_cast<int>(i);
    }
    if (found < 0 && c.required) {
      // A file whose lines end in CR alone reads as one long header: said
      // so, rather than that the header lacks the column.
      for (size_t i = 0; i < input->width_; ++i) {
        if (absl::StrContains(input->reader_->field(i), '\r')) {
          return absl::InvalidArgumentError(absl::StrCat(
              path,
              ": the lines end in a carriage return alone; save the file "
              "with line feeds (LF or CRLF)"));
        }
      }
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", input->header_line_, ": the header has no column ",
          c.names[0],
          c.names.size() > 1 ? absl::StrCat(" (or ",
                                            absl::StrJoin(c.names.begin() + 1,
                                                          c.names.end(), ", "),
                                            ")")
                             : "",
          "; want ",
          absl::StrJoin(
              input->columns_, ",", [](std::string* out, const Column& col) {
                absl::StrAppend(out, col.required ? "" : "[", col.names[0],
                                col.required ? "" : "]");
              })));
    }
    input->index_.push_back(found);
  }
  for (size_t i = 0; i < input->width_; ++i) {
    if (std::find(input->index_.begin(), input->index_.end(),
                  static_cast<int>(i)) == input->index_.end()) {
      input->unused_.emplace_back(input->reader_->field(i));
    }
  }
  return input;
}

absl::StatusOr<bool> CsvInput::Next() {
  absl::StatusOr<bool> more;
  // A line of nothing but separators and spaces (",,," where a spreadsheet
  // saved an empty row) is as blank as an empty line, which the reader
  // skips: no row. A quoted field is written, though empty or spaces (an id
  // of one space is an id; an empty one is an error to report).
  for (;;) {
    more = reader_->Next();
    if (!more.ok() || !*more) break;
    bool blank = !reader_->any_quoted();
    for (size_t i = 0; i < reader_->field_count() && blank; ++i) {
      blank = absl::StripAsciiWhitespace(reader_->field(i)).empty();
    }
    if (!blank) break;
  }
  if (!more.ok())
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": ", more.status().message()));
  if (!*more) return false;
  if (ragged() && !accept_ragged_) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ":", reader_->line(), ": ", RaggedMessage()));
  }
  ++rows_;
  return true;
}

int64_t CsvInput::LineBreaksInRow() const {
  int64_t breaks = 0;
  for (size_t i = 0; i < reader_->field_count(); ++i) {
    const absl::string_view field = reader_->field(i);
    breaks += std::count(field.begin(), field.end(), '\n');
  }
  return breaks;
}

std::string CsvInput::RaggedMessage() const {
  const size_t got = reader_->field_count();
  std::string message =
      absl::StrCat("expected ", width_, " fields like the header, got ", got);
  if (got < width_) {
    absl::StrAppend(&message, ": no ",
                    absl::StrJoin(header_.begin() + got, header_.end(), ", "));
  } else if (width_ > 0) {
    absl::StrAppend(&message, ": ", got - width_, " past ", header_.back());
  }
  return message;
}

absl::Status CsvInput::Error(size_t c, absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(
      path_, ":", reader_->line(), ": ", columns_[c].names[0], ": ", what));
}

}  // namespace rapport::ctl
