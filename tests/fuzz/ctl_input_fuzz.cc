// What rapportctl reads from the people who run it: its command line (Args,
// words split here at NUL bytes) and the CSV files it imports (CsvInput,
// the same bytes as a file with a header). Properties:
// - the command line: words kept as positional stay in their order; a
//   switch reads "true" or not at all; every flag parsed is named by a
//   word; a refusal names a flag (--X takes no value, or needs one, or its
//   text is not UTF-8) or the argument that is not UTF-8;
// - the file: every error starts with "path:", and a column's error with
//   "path:line:"; rows are counted, in line order, and a row starts below
//   the lines the one before it spans; the columns the header names are read
//   in every row as wide as the header (AddressSanitizer watches the reads).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/rapportctl/args.h"
#include "tools/rapportctl/csv_input.h"

namespace {
using rapport::ctl::Args;
using rapport::ctl::Column;
using rapport::ctl::CsvInput;

void Check(bool property) {
  if (!property) __builtin_trap();
}

void CommandLine(const std::string& text) {
  std::vector<std::string> words = {"rapportctl"};
  for (absl::string_view w : absl::StrSplit(text, '\0')) {
    if (words.size() > 64) break;
    words.emplace_back(w);
  }
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  const std::set<std::string> switches = {"yes", "json"};
  absl::StatusOr<Args> args =
      Args::Parse(static_cast<int>(argv.size()), argv.data(), switches);
  if (!args.ok()) {
    const absl::string_view m = args.status().message();
    Check(args.status().code() == absl::StatusCode::kInvalidArgument);
    if (absl::StartsWith(m, "argument ")) {  // a word that is not UTF-8
      Check(absl::EndsWith(m, " is not valid UTF-8") ||
            absl::EndsWith(m, " is not valid UTF-8 (nor a file that exists)"));
      return;
    }
    Check(absl::StartsWith(m, "--"));
    Check(absl::EndsWith(m, " takes no value") ||
          absl::StrContains(m, " needs a value, or is no flag") ||
          absl::EndsWith(m, ": is not valid UTF-8") ||
          m == "--out: give a file name, or - for the standard output");
    return;
  }
  // Positional words are a subsequence of the words, in order.
  size_t at = 1;
  for (const std::string& p : args->positional()) {
    while (at < words.size() && words[at] != p) ++at;
    Check(at < words.size());
    ++at;
  }
  for (const std::string& s : switches) {
    std::optional<std::string> value = args->Get(s);
    Check(!value.has_value() || *value == "true");
    Check(args->Has(s) == value.has_value());
  }
  // Every flag parsed is named by a word.
  std::set<std::string> named;
  for (size_t i = 1; i < words.size(); ++i) {
    if (!absl::StartsWith(words[i], "--")) continue;
    const std::string name = words[i].substr(2);
    named.insert(name.substr(0, name.find('=')));
  }
  Check(args->CheckKnown(named).ok());
}

void File(const std::string& text) {
  // The file is in memory (memfd), opened by its /proc path, so that no run
  // leaves a file behind.
  static const int fd = memfd_create("rapport-ctl-input-fuzz", MFD_CLOEXEC);
  static const std::string path = absl::StrCat("/proc/self/fd/", fd);
  Check(fd >= 0);
  Check(ftruncate(fd, 0) == 0);
  for (size_t done = 0; done < text.size();) {
    const ssize_t n = pwrite(fd, text.data() + done, text.size() - done,
                             static_cast<off_t>(done));
    Check(n > 0);
    done += static_cast<size_t>(n);
  }
  const std::string prefix = path + ":";
  absl::StatusOr<std::unique_ptr<CsvInput>> file =
      CsvInput::Open(path, {Column{{"id"}}, Column{{"amount", "value"}},
                            Column{{"note"}, /*required=*/false}});
  if (!file.ok()) {
    Check(file.status().code() == absl::StatusCode::kInvalidArgument);
    Check(absl::StartsWith(file.status().message(), prefix));
    return;
  }
  CsvInput& in = **file;
  in.AcceptRaggedRows();
  Check(in.header_line() >= 1);
  int64_t rows = 0;
  int64_t next_line = in.header_line() + 1;
  for (int i = 0; i < 10000; ++i) {
    absl::StatusOr<bool> more = in.Next();
    if (!more.ok()) {
      Check(more.status().code() == absl::StatusCode::kInvalidArgument);
      Check(absl::StartsWith(more.status().message(), prefix));
      break;
    }
    if (!*more) break;
    ++rows;
    Check(in.rows() == rows);
    Check(in.line() >= next_line);
    next_line = in.line() + in.LineBreaksInRow() + 1;
    if (in.ragged()) {
      Check(!in.RaggedMessage().empty());
      continue;
    }
    for (size_t c = 0; c < 3; ++c) {
      if (!in.Has(c)) continue;
      const absl::string_view field = in.Get(c);
      Check(field.size() <= text.size());
      Check(absl::StartsWith(in.Error(c, "bad").message(),
                             absl::StrCat(prefix, in.line(), ": ")));
    }
  }
  Check(in.bytes_read() <= in.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  CommandLine(text);
  File(text);
  return 0;
}
