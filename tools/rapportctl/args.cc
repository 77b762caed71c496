#include "tools/rapportctl/args.h"

#include <sys/stat.h>

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/validation.h"

namespace rapport::ctl {

namespace {

// Text that goes into a request must be UTF-8: the service cannot even read
// a request holding anything else (protobuf refuses it before any check of
// ours could name the field). A path may be any bytes: the value of a flag
// that names a file, and a positional word that names one that exists (the
// file of an import).
bool IsPathFlag(const std::string& flag) {
  static const std::set<std::string>* const kPaths = new std::set<std::string>{
      "out",          "model-out", "cdnow",        "entities",
      "interactions", "summary",   "transactions", "jwks",
      "key",          "tls-ca",    "tls-cert",     "tls-key"};
  return kPaths->count(flag) > 0;
}

bool MayBeSentAsWord(const std::string& word) {
  if (IsValidUtf8(word)) return true;
  struct stat st;
  return stat(word.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

absl::StatusOr<Args> Args::Parse(int argc, char** argv,
                                 const std::set<std::string>& switches) {
  Args args;
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (only_positional || !absl::StartsWith(word, "--") || word == "-") {
      if (!MayBeSentAsWord(word)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "argument ", i, " is not valid UTF-8 (nor a file that exists)"));
      }
      args.positional_.push_back(word);
      continue;
    }
    if (word == "--") {
      only_positional = true;
      continue;
    }
    std::string name = word.substr(2);
    const int flag_index = i;
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (switches.count(name) > 0) {
      if (value.has_value() && *value != "true" && *value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
      // `--force=false` is as if no --force had been given (so that every
      // caller asking Has() reads it right); the last one given wins.
      if (value == "false") {
        args.flags_.erase(name);
      } else {
        args.flags_[name].push_back("true");
      }
      continue;
    }
    if (!value.has_value()) {
      if (i + 1 >= argc)
        return absl::InvalidArgumentError(
            absl::StrCat("--", name,
                         " needs a value, or is no flag of rapportctl "
                         "(rapportctl help lists them)"));
      value = argv[++i];
    }
    if (!IsValidUtf8(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("argument ", flag_index, " is not valid UTF-8"));
    }
    // An empty --out (an unset variable, say) is not the standard output
    // by accident: that is "-".
    if (name == "out" && value->empty()) {
      return absl::InvalidArgumentError(
          "--out: give a file name, or - for the standard output");
    }
    if (!IsPathFlag(name) && !IsValidUtf8(*value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, ": is not valid UTF-8"));
    }
    args.flags_[name].push_back(*value);
  }
  return args;
}

std::optional<std::string> Args::Get(const std::string& name) const {
  auto it = flags_.find(name);
  if (it == flags_.end()) return std::nullopt;
  return it->second.back();
}

std::string Args::GetOr(const std::string& name,
                        const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

std::vector<std::string> Args::GetAll(const std::string& name) const {
  auto it = flags_.find(name);
  return it == flags_.end() ? std::vector<std::string>{} : it->second;
}

absl::Status Args::CheckSingle(const std::set<std::string>& repeatable) const {
  for (const auto& [name, values] : flags_) {
    if (repeatable.count(name) > 0) continue;
    for (const std::string& value : values) {
      if (value != values.front()) {
        // The values are not quoted back: one may be a token.
        return absl::InvalidArgumentError(absl::StrCat(
            "--", name, ": given twice with two values; it takes one"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Args::CheckKnown(const std::set<std::string>& known) const {
  for (const auto& [name, values] : flags_) {
    if (known.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return absl::OkStatus();
}

}  // namespace rapport::ctl
