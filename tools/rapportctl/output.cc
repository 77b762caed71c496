#include "tools/rapportctl/output.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/base/csv.h"

namespace rapport::ctl {

absl::StatusOr<Format> ParseFormat(const std::string& name) {
  if (name == "table") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "csv") return Format::kCsv;
  return absl::InvalidArgumentError(
      absl::StrCat("--output must be table, json or csv, not \"", name, "\""));
}

namespace {

// A cell as a terminal shows it: control characters (a line break that
// would forge a row, an escape sequence that would rewrite the screen)
// written as \n, \r, \t or \xHH. CSV and JSON carry the text as it is.
std::string Visible(const std::string& cell) {
  auto plain = [](unsigned char c) { return c >= 0x20 && c != 0x7f; };
  if (std::all_of(cell.begin(), cell.end(), [&](char c) {
        return plain(static_cast<unsigned char>(c));
      })) {
    return cell;
  }
  std::string out;
  for (const char ch : cell) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!plain(c)) {
      absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
    } else {
      out += ch;
    }
  }
  return out;
}

// The columns a terminal gives `text` (valid UTF-8 assumed; a stray byte
// counts one): one a character, two for the wide ones of East Asian scripts
// and emoji, none for combining marks, so that a column of names such as
// "Zoë" or "李小龙" lines up.
size_t DisplayWidth(absl::string_view text) {
  size_t width = 0;
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const int length = lead < 0x80   ? 1
                       : lead < 0xc0 ? 1  // a stray continuation byte
                       : lead < 0xe0 ? 2
                       : lead < 0xf0 ? 3
                                     : 4;
    uint32_t c = length == 1 ? lead : lead & (0x7f >> length);
    for (int k = 1; k < length && i + k < text.size(); ++k) {
      c = (c << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    }
    i += length;
    // Combining marks, zero-width spaces and joiners, variation selectors.
    const bool combining =
        (c >= 0x0300 && c <= 0x036f) || (c >= 0x1ab0 && c <= 0x1aff) ||
        (c >= 0x20d0 && c <= 0x20ff) || (c >= 0xfe20 && c <= 0xfe2f) ||
        (c >= 0x200b && c <= 0x200f) || (c >= 0x2060 && c <= 0x2064) ||
        (c >= 0xfe00 && c <= 0xfe0f) || (c >= 0xe0100 && c <= 0xe01ef);
    const bool wide =
        (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0x303e) ||
        (c >= 0x3041 && c <= 0x33ff) || (c >= 0x3400 && c <= 0x4dbf) ||
        (c >= 0x4e00 && c <= 0x9fff) || (c >= 0xa000 && c <= 0xa4cf) ||
        (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
        (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
        (c >= 0x1f680 && c <= 0x1f6ff) || (c >= 0x1f900 && c <= 0x1f9ff) ||
        (c >= 0x1fa70 && c <= 0x1faff) || (c >= 0x20000 && c <= 0x3fffd);
    width += combining ? 0 : wide ? 2 : 1;
  }
  return width;
}

}  // namespace

void Table::Print(Format format, std::ostream& out) const {
  if (format == Format::kCsv) {
    // What other people wrote (names, notes, external ids) is opened in
    // spreadsheets: none of it runs there as a formula.
    CsvWriter writer(&out);
    writer.GuardFormulas();
    std::vector<absl::string_view> fields(columns_.begin(), columns_.end());
    writer.WriteRow(fields);
    for (const auto& row : rows_) {
      fields.assign(row.begin(), row.end());
      writer.WriteRow(fields);
    }
    return;
  }
  std::vector<std::vector<std::string>> rows;
  rows.reserve(rows_.size());
  for (const auto& row : rows_) {
    std::vector<std::string>& shown = rows.emplace_back();
    for (const std::string& cell : row) shown.push_back(Visible(cell));
  }
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].size();
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
      width[i] = std::max(width[i], DisplayWidth(row[i]));
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size() && i < width.size())
        line += std::string(width[i] - DisplayWidth(row[i]) + 2, ' ');
    }
    // Empty cells at the end leave no spaces behind.
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  std::vector<std::string> header;
  for (const std::string& c : columns_) {
    std::string upper = c;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    header.push_back(upper);
  }
  print_row(header);
  for (const auto& row : rows) print_row(row);
}

namespace {

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.preserve_proto_field_names = true;
  // Zero counts, empty strings and first enum values printed too: a script
  // reads "done": 0 rather than guessing what a missing key means.
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    json = "{}";  // only for a message that cannot be printed at all
  }
  return json;
}

}  // namespace

void PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  std::string json = ToJson(message, /*pretty=*/true);
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
}

void PrintJsonLine(const google::protobuf::Message& message,
                   std::ostream& out) {
  out << ToJson(message, /*pretty=*/false) << "\n";
}

void PrintDeleted(Format format, const std::string& noun, const std::string& id,
                  bool allowed_missing, std::ostream& out) {
  if (allowed_missing && format == Format::kTable) {
    out << "deleted " << noun << " " << id << ", or there was none "
        << "(--allow-missing)\n";
    return;
  }
  PrintDone(format, "deleted", noun, id, out);
}

void PrintDone(Format format, const std::string& done, const std::string& noun,
               const std::string& id, std::ostream& out) {
  switch (format) {
    case Format::kTable:
      out << done << " " << noun << " " << id << "\n";
      return;
    case Format::kJson: {
      google::protobuf::Value text;
      text.set_string_value(id);
      std::string quoted;
      (void)google::protobuf::util::MessageToJsonString(text, &quoted);
      out << "{\"" << done << "\": " << quoted << "}\n";
      return;
    }
    case Format::kCsv: {
      Table t({done});
      t.AddRow({id});
      t.Print(format, out);
      return;
    }
  }
}

}  // namespace rapport::ctl
