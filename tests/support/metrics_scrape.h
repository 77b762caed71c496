// A server's Prometheus metrics as a test reads them: one scrape of its
// endpoint (curl, as an operator would), and sums over the series that carry
// some labels.
//
//   Scrape before = FetchMetrics(server.metrics_addr());
//   ... calls ...
//   EXPECT_EQ(SumOf(FetchMetrics(addr), "grpc_server_handled_total",
//                   {"grpc_method=\"GetCustomer\"", "grpc_code=\"OK\""}) -
//                 SumOf(before, ...), 1);
#ifndef RAPPORT_TESTS_SUPPORT_METRICS_SCRAPE_H_
#define RAPPORT_TESTS_SUPPORT_METRICS_SCRAPE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rapport::testing {

// Series ("name{labels}", exactly as exposed) -> value.
using Scrape = std::map<std::string, double>;

// GET http://<address>/metrics; a failed scrape, or a line that is no
// sample, fails the test (and gives what could be read).
Scrape FetchMetrics(const std::string& address);

// The sum of the series named `name` whose labels include every one of
// `labels` (each written label="value").
double SumOf(const Scrape& scrape, absl::string_view name,
             const std::vector<std::string>& labels = {});

}  // namespace rapport::testing

#endif  // RAPPORT_TESTS_SUPPORT_METRICS_SCRAPE_H_
