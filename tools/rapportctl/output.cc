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

void Table::Print(Format format, std::ostream& out) const {
  if (format == Format::kCsv) {
    CsvWriter writer(&out);
    std::vector<absl::string_view> fields(columns_.begin(), columns_.end());
    writer.WriteRow(fields);
    for (const auto& row : rows_) {
      fields.assign(row.begin(), row.end());
      writer.WriteRow(fields);
    }
    return;
  }
  std::vector<size_t> width(columns_.size());
  for (size_t i = 0; i < columns_.size(); ++i) width[i] = columns_[i].size();
  for (const auto& row : rows_) {
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
  for (const auto& row : rows_) print_row(row);
}

void PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
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
