// CSV as imports and rapportctl read it: any bytes, read record by record
// with a small chunk size (so records cross buffer refills); every record's
// fields, written back with CsvWriter and read again, come back the same.
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::istringstream in(text);
  rapport::CsvReader reader(&in, /*chunk_bytes=*/7);
  std::vector<std::vector<std::string>> records;
  for (int i = 0; i < 10000; ++i) {
    absl::StatusOr<bool> more = reader.Next();
    if (!more.ok() || !*more) break;
    records.emplace_back(reader.fields().begin(), reader.fields().end());
    if (records.size() == 1) {
      // The header path: any field names, required or not.
      (void)rapport::CsvHeader::Create(reader.fields(), {"a"}, {"b"});
    }
  }
  // Round trip: every record, written with CsvWriter and read again, comes
  // back the same. Each is written after a marker field, so that no record
  // is an empty line (which readers skip) and no byte-order mark opens the
  // output (which readers drop).
  std::ostringstream out;
  rapport::CsvWriter writer(&out);
  for (const auto& r : records) {
    std::vector<std::string> row = {"r"};
    row.insert(row.end(), r.begin(), r.end());
    writer.WriteRow(row);
  }
  std::istringstream again(out.str());
  rapport::CsvReader reread(&again);
  for (const auto& r : records) {
    absl::StatusOr<bool> more = reread.Next();
    if (!more.ok() || !*more) __builtin_trap();
    std::vector<std::string> got(reread.fields().begin() + 1,
                                 reread.fields().end());
    if (reread.field(0) != "r" || got != r) __builtin_trap();
  }
  return 0;
}
