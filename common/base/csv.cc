#include "common/base/csv.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace rapport {

CsvReader::CsvReader(std::istream* in, size_t chunk_bytes)
    : in_(in), buf_(std::max<size_t>(chunk_bytes, 16)) {}

bool CsvReader::Fill() {
  if (pos_ < end_) return true;
  if (eof_) return false;
  in_->read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  std::streamsize got = in_->gcount();
  if (in_->bad()) read_error_ = true;
  if (got <= 0) {
    eof_ = true;
    pos_ = end_ = 0;
    return false;
  }
  pos_ = 0;
  end_ = static_cast<size_t>(got);
  if (!in_->good()) eof_ = true;
  return true;
}

absl::Status CsvReader::Error(int64_t line, absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat("CSV line ", line, ": ", what));
}

absl::Status CsvReader::ExpectFieldCount(size_t n) const {
  if (views_.size() == n) return absl::OkStatus();
  return Error(record_line_,
               absl::StrCat("expected ", n, " fields, got ", views_.size()));
}

absl::StatusOr<bool> CsvReader::Next() {
  record_.clear();
  ends_.clear();
  views_.clear();
  any_quoted_ = false;
  if (!started_) {
    started_ = true;
    // Skip a UTF-8 byte order mark. It may straddle chunk ends only for
    // absurdly small chunks, which the constructor prevents.
    if (Fill() && end_ - pos_ >= 3 &&
        std::memcmp(buf_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) {
      pos_ += 3;
    }
  }
  // Skip empty lines.
  while (true) {
    if (!Fill()) {
      if (read_error_) return absl::DataLossError("CSV read error");
      return false;
    }
    char c = buf_[pos_];
    if (c == '\n') {
      ++pos_;
      ++line_;
      continue;
    }
    if (c == '\r') {
      // Only "\r\n" is an empty line; a lone CR is data.
      ++pos_;
      if (Fill() && buf_[pos_] == '\n') {
        ++pos_;
        ++line_;
        continue;
      }
      record_.push_back('\r');
      break;
    }
    break;
  }
  record_line_ = line_;
  while (true) {  // one field per iteration
    bool quoted = false;
    if (Fill() && buf_[pos_] == '"' &&
        record_.size() == (ends_.empty() ? 0 : ends_.back())) {
      quoted = true;
      any_quoted_ = true;
      const int64_t start_line = line_;
      ++pos_;
      while (true) {
        if (!Fill()) {
          // A file cut off by a failed read is no malformed file.
          if (read_error_) return absl::DataLossError("CSV read error");
          return Error(start_line, "unterminated quoted field");
        }
        const char* begin = buf_.data() + pos_;
        const char* stop =
            static_cast<const char*>(std::memchr(begin, '"', end_ - pos_));
        const char* chunk_end = stop ? stop : buf_.data() + end_;
        line_ += std::count(begin, chunk_end, '\n');
        record_.append(begin, chunk_end);
        pos_ = static_cast<size_t>(chunk_end - buf_.data());
        if (!stop) continue;
        ++pos_;  // the quote
        if (Fill() && buf_[pos_] == '"') {
          record_.push_back('"');
          ++pos_;
          continue;
        }
        break;  // closing quote
      }
    }
    // Unquoted bytes (or what follows a closing quote).
    while (true) {
      if (!Fill()) {
        ends_.push_back(record_.size());
        goto record_done;
      }
      const char* p = buf_.data() + pos_;
      const char* e = buf_.data() + end_;
      const char* q = p;
      while (q < e && *q != ',' && *q != '\n' && *q != '\r' && *q != '"') ++q;
      if (q != p && quoted) {
        return Error(line_, "unexpected character after closing quote");
      }
      record_.append(p, q);
      pos_ = static_cast<size_t>(q - buf_.data());
      if (q == e) continue;
      const char c = *q;
      if (c == '"') {
        return Error(line_, "quote inside an unquoted field");
      }
      ++pos_;
      if (c == ',') {
        ends_.push_back(record_.size());
        break;  // next field
      }
      if (c == '\n') {
        ++line_;
        ends_.push_back(record_.size());
        goto record_done;
      }
      // c == '\r'
      if (Fill() && buf_[pos_] == '\n') {
        ++pos_;
        ++line_;
        ends_.push_back(record_.size());
        goto record_done;
      }
      if (quoted) {
        return Error(line_, "unexpected character after closing quote");
      }
      record_.push_back('\r');  // a lone CR is data
    }
  }
record_done:
  if (read_error_) return absl::DataLossError("CSV read error");
  views_.reserve(ends_.size());
  size_t begin = 0;
  for (size_t end : ends_) {
    views_.emplace_back(record_.data() + begin, end - begin);
    begin = end;
  }
  return true;
}

absl::StatusOr<CsvHeader> CsvHeader::Create(
    absl::Span<const absl::string_view> header_fields,
    std::initializer_list<absl::string_view> required,
    std::initializer_list<absl::string_view> optional) {
  CsvHeader h;
  h.num_columns_ = header_fields.size();
  for (size_t i = 0; i < header_fields.size(); ++i) {
    auto [it, inserted] =
        h.index_.emplace(std::string(header_fields[i]), static_cast<int>(i));
    if (!inserted) {
      bool relevant = std::find(required.begin(), required.end(),
                                header_fields[i]) != required.end() ||
                      std::find(optional.begin(), optional.end(),
                                header_fields[i]) != optional.end();
      if (relevant) {
        return absl::InvalidArgumentError(
            absl::StrCat("duplicate CSV column \"", header_fields[i], "\""));
      }
    }
  }
  for (absl::string_view name : required) {
    if (!h.index_.contains(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("missing required CSV column \"", name, "\""));
    }
  }
  return h;
}

int CsvHeader::Index(absl::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? -1 : it->second;
}

void AppendCsvField(absl::string_view field, std::string* out) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) {
    out->append(field.data(), field.size());
    return;
  }
  out->push_back('"');
  for (char c : field) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

CsvWriter::CsvWriter(std::ostream* out, absl::string_view line_end)
    : out_(out), line_end_(line_end) {}

bool LooksLikeFormula(absl::string_view text) {
  if (text.empty()) return false;
  switch (text.front()) {
    case '=':
    case '@':
    case '\t':
    case '\r':
      return true;
    case '+':
    case '-':
      break;
    default:
      return false;
  }
  // A signed plain number is a number to the spreadsheet too.
  absl::string_view digits = text.substr(1);
  const size_t point = digits.find('.');
  const absl::string_view whole = digits.substr(0, point);
  const absl::string_view fraction = point == absl::string_view::npos
                                         ? absl::string_view("0")
                                         : digits.substr(point + 1);
  const auto all_digits = [](absl::string_view part) {
    return !part.empty() && std::all_of(part.begin(), part.end(), [](char c) {
      return c >= '0' && c <= '9';
    });
  };
  return !(all_digits(whole) && all_digits(fraction));
}

void CsvWriter::Append(absl::string_view field) {
  if (guard_formulas_ && LooksLikeFormula(field)) {
    AppendCsvField(absl::StrCat("'", field), &row_);
  } else {
    AppendCsvField(field, &row_);
  }
}

void CsvWriter::WriteRow(absl::Span<const absl::string_view> fields) {
  row_.clear();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) row_.push_back(',');
    Append(fields[i]);
  }
  row_.append(line_end_);
  out_->write(row_.data(), static_cast<std::streamsize>(row_.size()));
}

void CsvWriter::WriteRow(const std::vector<std::string>& fields) {
  row_.clear();
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) row_.push_back(',');
    Append(fields[i]);
  }
  row_.append(line_end_);
  out_->write(row_.data(), static_cast<std::streamsize>(row_.size()));
}

}  // namespace rapport
