// How rapportctl writes differentiation values, shared by `scoring rfm` and
// `customers export scores` so that both print the same bytes for the same
// values: the CSV columns, exact money, the value with two decimals, tier
// names, and an output file that appears only when complete. (The export
// guards an id that a spreadsheet would run as a formula with a leading ',
// see CsvWriter::GuardFormulas; `scoring rfm` writes the ids of your own
// files exactly.)
//
//   OutputFile out(path);                 // "" or "-" writes to stdout
//   CsvWriter csv(&out.stream());
//   csv.WriteRow(ScoreCsvHeader());
//   std::vector<std::string> fields;
//   ScoreCsvFields(score.entity_id(), score, &fields);  // scoring or customer
//   values csv.WriteRow(fields); RAPPORT_RETURN_IF_ERROR(out.Commit());
#ifndef RAPPORT_TOOLS_RAPPORTCTL_SCORE_FORMAT_H_
#define RAPPORT_TOOLS_RAPPORTCTL_SCORE_FORMAT_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/api_names.h"
#include "common/base/decimal.h"
#include "google/type/money.pb.h"

namespace rapport::ctl {

// Exact decimal text with at least 2 places ("12.50", "-0.125"); "?" when the
// parts disagree in sign.
inline std::string MoneyText(const google::type::Money& m) {
  absl::StatusOr<Decimal> d = Decimal::FromUnitsNanos(m.units(), m.nanos());
  return d.ok() ? d->ToString() : "?";
}

// The value 0.00..100.00 from hundredths: 4250 -> "42.50".
inline std::string ValueText(int32_t hundredths) {
  return absl::StrFormat("%d.%02d", hundredths / 100, hundredths % 100);
}

inline const std::vector<std::string>& ScoreCsvHeader() {
  static const auto* const kHeader = new std::vector<std::string>{
      "entity_id", "recency_days", "frequency",     "monetary", "r",   "f", "m",
      "segment",   "value",        "cost_to_serve", "profit",   "tier"};
  return *kHeader;
}

// The CSV fields of one entity's values. `Score` is
// rapport.scoring.v1.EntityScore or rapport.common.v1.EntityValue (same field
// names).
template <typename Score>
void ScoreCsvFields(const std::string& entity_id, const Score& s,
                    std::vector<std::string>* fields) {
  fields->resize(12);
  (*fields)[0] = entity_id;
  (*fields)[1] = s.has_recency_days() ? absl::StrCat(s.recency_days()) : "";
  (*fields)[2] = absl::StrCat(s.frequency());
  (*fields)[3] = MoneyText(s.monetary());
  (*fields)[4] = absl::StrCat(s.r());
  (*fields)[5] = absl::StrCat(s.f());
  (*fields)[6] = absl::StrCat(s.m());
  (*fields)[7] = s.segment();
  (*fields)[8] = ValueText(s.value_hundredths());
  (*fields)[9] = MoneyText(s.cost_to_serve());
  (*fields)[10] = MoneyText(s.profit());
  (*fields)[11] = TierName(s.tier());
}

// Writes a file that appears only when complete: into a temporary file of
// its own (mkstemp, beside it) renamed over it on Commit, so that a failed
// run leaves no half file and two runs never share one. A symbolic link is
// written through (the file it names is replaced); a path under /dev or
// /proc (/dev/stdout, which may be a redirect to a file that must not be
// replaced) or that is not a regular file (a pipe) is written directly, and
// appended to; "" or "-" writes to stdout.
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)) {
    if (path_.empty() || path_ == "-") {
      path_.clear();
      return;
    }
    struct stat st;
    if (path_.rfind("/dev/", 0) == 0 || path_.rfind("/proc/", 0) == 0 ||
        (stat(path_.c_str(), &st) == 0 && !S_ISREG(st.st_mode))) {
      file_.open(path_, std::ios::binary | std::ios::app);
      return;  // written as it goes, nothing to rename
    }
    if (char resolved[PATH_MAX]; lstat(path_.c_str(), &st) == 0 &&
                                 S_ISLNK(st.st_mode) &&
                                 realpath(path_.c_str(), resolved) != nullptr) {
      path_ = resolved;
    }
    temp_ = path_ + ".XXXXXX";
    const int fd = mkstemp(temp_.data());
    if (fd < 0) {
      temp_.clear();
      return;  // not ok()
    }
    close(fd);
    file_.open(temp_, std::ios::binary | std::ios::trunc);
  }
  ~OutputFile() {
    if (!temp_.empty() && !committed_) unlink(temp_.c_str());
  }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  bool ok() const { return path_.empty() || (file_.is_open() && file_.good()); }
  std::ostream& stream() { return path_.empty() ? std::cout : file_; }
  // Everything but taking the name: the file closed, on disk and given its
  // mode. A command writing two files flushes both before it commits either,
  // so that a full disk leaves neither behind.
  absl::Status Flush() {
    if (path_.empty() || flushed_) return absl::OkStatus();
    file_.close();
    bool written = !file_.fail();
    if (written && !temp_.empty()) {
      // The mode of the file replaced, else readable like any file the user
      // writes (mkstemp makes it 0600); on disk before it takes the name, so
      // that a crash leaves the old file or the whole new one.
      mode_t mode;
      if (struct stat st; stat(path_.c_str(), &st) == 0) {
        mode = st.st_mode & 07777;
      } else {
        const mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
      }
      const int fd = open(temp_.c_str(), O_RDONLY | O_CLOEXEC);
      written = fd >= 0 && fsync(fd) == 0;
      if (fd >= 0) close(fd);
      written = written && chmod(temp_.c_str(), mode) == 0;
    }
    if (!written) return Failed();
    flushed_ = true;
    return absl::OkStatus();
  }

  absl::Status Commit() {
    if (path_.empty()) return absl::OkStatus();
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (!temp_.empty() && std::rename(temp_.c_str(), path_.c_str()) != 0)
      return Failed();
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;
  std::string temp_;  // "" when written directly
  std::ofstream file_;
  bool flushed_ = false;
  bool committed_ = false;

  absl::Status Failed() const {
    return absl::InternalError(absl::StrCat(
        "cannot write ", path_,
        errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : std::string()));
  }
};

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_SCORE_FORMAT_H_
