// How rapportctl prints results: a table for people (default), or JSON or CSV
// for programs (--output json|csv).
//
//   Table t({"id", "display_name"});
//   t.AddRow({c.id(), c.display_name()});
//   t.Print(format, std::cout);
#ifndef RAPPORT_TOOLS_RAPPORTCTL_OUTPUT_H_
#define RAPPORT_TOOLS_RAPPORTCTL_OUTPUT_H_

#include <google/protobuf/message.h>

#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rapport::ctl {

enum class Format { kTable, kJson, kCsv };

absl::StatusOr<Format> ParseFormat(const std::string& name);

class Table {
 public:
  explicit Table(std::vector<std::string> columns)
      : columns_(std::move(columns)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  // Table: aligned columns; CSV: RFC 4180 with a header. (JSON is printed
  // from the response message itself, see PrintJson.)
  void Print(Format format, std::ostream& out) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// The message in protobuf's canonical JSON mapping, one object, pretty-printed.
void PrintJson(const google::protobuf::Message& message, std::ostream& out);

// The same mapping on one line, for streams of records (JSON Lines: one
// object a line, no enclosing array, so a reader can start before the end).
void PrintJsonLine(const google::protobuf::Message& message, std::ostream& out);

// What a change did to one record, in each format: `deleted customer ID` for
// people, {"deleted": "ID"} or a one-column CSV ("deleted", then the id).
void PrintDone(Format format, const std::string& done, const std::string& noun,
               const std::string& id, std::ostream& out);
// PrintDone for a delete; with --allow-missing (`allowed_missing`), which
// succeeds whether or not there was one, people are told so.
void PrintDeleted(Format format, const std::string& noun, const std::string& id,
                  bool allowed_missing, std::ostream& out);

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_OUTPUT_H_
