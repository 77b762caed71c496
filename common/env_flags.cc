#include "common/env_flags.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace rapport {

void ApplyEnvOverrides(std::initializer_list<absl::string_view> flag_names) {
  for (absl::string_view name : flag_names) {
    const std::string var =
        absl::StrCat("RAPPORT_", absl::AsciiStrToUpper(name));
    const char* value = std::getenv(var.c_str());
    if (value == nullptr) continue;
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) {
      std::fprintf(stderr, "internal error: no flag --%s for %s\n",
                   std::string(name).c_str(), var.c_str());
      std::exit(2);
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      std::fprintf(stderr, "bad value for %s: %s\n", var.c_str(),
                   error.c_str());
      std::exit(2);
    }
  }
}

}  // namespace rapport
