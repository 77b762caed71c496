// Environment overrides for command-line flags, read only from main().
//
// For each named flag, an environment variable RAPPORT_<NAME IN CAPITALS> sets
// its value; a flag given on the command line wins over the environment.
//
//   int main(int argc, char** argv) {
//     rapport::ApplyEnvOverrides({"listen", "mysql_uri"});  // before parsing
//     absl::ParseCommandLine(argc, argv);
#ifndef RAPPORT_COMMON_ENV_FLAGS_H_
#define RAPPORT_COMMON_ENV_FLAGS_H_

#include <initializer_list>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rapport {

// Sets flags from RAPPORT_* variables; on a bad value prints which variable is
// wrong and exits with status 2.
void ApplyEnvOverrides(std::initializer_list<absl::string_view> flag_names);

}  // namespace rapport

#endif  // RAPPORT_COMMON_ENV_FLAGS_H_
