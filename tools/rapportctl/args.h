// Command-line arguments of rapportctl: positional words and --flags, in any
// order.
//
//   rapportctl customers create --display-name "Ada" --email ada@example.com
//
// Flags take `--name value` or `--name=value`; a flag declared as a switch
// takes no value, or `=true` / `=false` (the last one given counts). A flag
// that takes several values repeats (--external-id a:1 --external-id b:2).
#ifndef RAPPORT_TOOLS_RAPPORTCTL_ARGS_H_
#define RAPPORT_TOOLS_RAPPORTCTL_ARGS_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rapport::ctl {

class Args {
 public:
  // Parses argv[1..]; `switches` are the flags that take no value.
  static absl::StatusOr<Args> Parse(int argc, char** argv,
                                    const std::set<std::string>& switches);

  const std::vector<std::string>& positional() const { return positional_; }
  // The last value of a flag, if given.
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  std::vector<std::string> GetAll(const std::string& name) const;
  bool Has(const std::string& name) const { return flags_.count(name) > 0; }
  // Flags given but not in `known`: a usage error naming the first one.
  absl::Status CheckKnown(const std::set<std::string>& known) const;
  // A flag not in `repeatable` given twice with two values (--amount 10
  // --amount 100): a usage error naming it, rather than the last one
  // silently winning. The same value twice is that value.
  absl::Status CheckSingle(const std::set<std::string>& repeatable) const;

 private:
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> flags_;
};

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_ARGS_H_
