#include "tests/support/metrics_scrape.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tests/support/process.h"

namespace rapport::testing {

Scrape FetchMetrics(const std::string& address) {
  const RunResult r =
      Run({"/usr/bin/curl", "--silent", "--show-error", "--fail", "--max-time",
           "10", absl::StrCat("http://", address, "/metrics")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Scrape out;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (line.empty() || line.front() == '#') continue;
    const size_t space = line.rfind(' ');
    double value = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &value)) {
      ADD_FAILURE() << "not a sample: " << line;
      continue;
    }
    out[std::string(line.substr(0, space))] = value;
  }
  return out;
}

double SumOf(const Scrape& scrape, absl::string_view name,
             const std::vector<std::string>& labels) {
  double sum = 0;
  for (const auto& [series, value] : scrape) {
    absl::string_view s = series;
    if (!absl::ConsumePrefix(&s, name) || (!s.empty() && s.front() != '{')) {
      continue;
    }
    bool all = true;
    for (const std::string& label : labels) all &= absl::StrContains(s, label);
    if (all) sum += value;
  }
  return sum;
}

}  // namespace rapport::testing
