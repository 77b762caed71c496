// Structured logs: one JSON object per line on stderr, written with one
// write(2) so that lines from many threads never interleave.
//
//   rapport::LogInfo("customer", "listening", {{"address", "0.0.0.0:50051"}});
#ifndef RAPPORT_COMMON_LOG_H_
#define RAPPORT_COMMON_LOG_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace rapport {

using LogFields = std::vector<std::pair<std::string, std::string>>;

// Writes {"ts":..., "level":..., "service":..., "msg":..., <fields>} as one
// line.
void LogLine(absl::string_view level, absl::string_view service,
             absl::string_view message, const LogFields& fields = {});
inline void LogInfo(absl::string_view service, absl::string_view message,
                    const LogFields& fields = {}) {
  LogLine("info", service, message, fields);
}
inline void LogError(absl::string_view service, absl::string_view message,
                     const LogFields& fields = {}) {
  LogLine("error", service, message, fields);
}

// Appends s to out as a JSON string literal, quotes included.
void AppendJsonString(std::string* out, absl::string_view s);

// The name of the service this process runs ("customer"), for log lines
// written by code that does not know it (the status conversion); "rapport"
// until set. Set once in main (InitService does).
void SetProcessService(absl::string_view name);
const std::string& ProcessService();

}  // namespace rapport

#endif  // RAPPORT_COMMON_LOG_H_
