#include "tools/rapportctl/output.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
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
      width[i] = std::max(width[i], row[i].size());
    }
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size())
        line += std::string(width[i] - row[i].size() + 2, ' ');
    }
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
