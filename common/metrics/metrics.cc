#include "common/metrics/metrics.h"

#include <prometheus/exposer.h>

#include <exception>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rapport::metrics {

namespace {

std::shared_ptr<prometheus::Registry> SharedRegistry() {
  // Made on first use and never destroyed: metrics are updated from threads
  // that may outlive main()'s locals, up to the process's exit.
  static auto* const registry = new std::shared_ptr<prometheus::Registry>(
      std::make_shared<prometheus::Registry>());
  return *registry;
}

}  // namespace

prometheus::Registry& Registry() { return *SharedRegistry(); }

const prometheus::Histogram::BucketBoundaries& SecondsBuckets() {
  static const auto* const buckets =
      new prometheus::Histogram::BucketBoundaries{
          0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
          2.5, 5, 10, 30, 60, 120, 300, 600, 1800,
          // Streams (imports, population calls) may run an hour.
          3600};
  return *buckets;
}

void CountImportRows(absl::string_view import, int64_t accepted,
                     int64_t duplicates, int64_t rejected) {
  static auto& rows = prometheus::BuildCounter()
                          .Name("rapport_import_rows_total")
                          .Help(
                              "Import rows, by outcome, as each batch is "
                              "stored or each row refused")
                          .Register(Registry());
  const std::string name(import);
  rows.Add({{"import", name}, {"outcome", "accepted"}})
      .Increment(static_cast<double>(accepted));
  rows.Add({{"import", name}, {"outcome", "duplicate"}})
      .Increment(static_cast<double>(duplicates));
  rows.Add({{"import", name}, {"outcome", "rejected"}})
      .Increment(static_cast<double>(rejected));
}

RefreshJobMetrics& RefreshJobMetrics::Get() {
  static auto* const metrics = new RefreshJobMetrics();
  return *metrics;
}

RefreshJobMetrics::RefreshJobMetrics()
    : running_(prometheus::BuildGauge()
                   .Name("rapport_refresh_jobs_running")
                   .Help("Refresh jobs running in this process")
                   .Register(Registry())
                   .Add({})),
      jobs_(prometheus::BuildCounter()
                .Name("rapport_refresh_jobs_total")
                .Help("Refresh jobs ended in this process, by outcome")
                .Register(Registry())),
      seconds_(prometheus::BuildHistogram()
                   .Name("rapport_refresh_duration_seconds")
                   .Help("How long refresh jobs ran, by outcome")
                   .Register(Registry())),
      entities_(prometheus::BuildCounter()
                    .Name("rapport_refresh_entities_total")
                    .Help("Entities valued by succeeded refresh jobs")
                    .Register(Registry())
                    .Add({})) {
  // Both outcomes from the start, at zero: a rate of failed refreshes reads
  // 0 until one fails, not nothing.
  for (const bool succeeded : {true, false}) {
    jobs_.Add(Outcome(succeeded));
    seconds_.Add(Outcome(succeeded), Buckets());
  }
}

const prometheus::Histogram::BucketBoundaries& RefreshJobMetrics::Buckets() {
  static const auto* const buckets =
      new prometheus::Histogram::BucketBoundaries{
          0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
  return *buckets;
}

prometheus::Labels RefreshJobMetrics::Outcome(bool succeeded) {
  return {{"outcome", succeeded ? "succeeded" : "failed"}};
}

void RefreshJobMetrics::Ended(bool succeeded, absl::Duration elapsed,
                              int64_t entities) {
  running_.Decrement();
  jobs_.Add(Outcome(succeeded)).Increment();
  seconds_.Add(Outcome(succeeded), Buckets())
      .Observe(absl::ToDoubleSeconds(elapsed));
  if (succeeded) entities_.Increment(static_cast<double>(entities));
}

absl::Status Endpoint::CheckListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen: want host:port with port 0..65535, got \"", listen,
        "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Endpoint>> Endpoint::Start(
    const std::string& listen) {
  if (absl::Status s = CheckListen(listen); !s.ok()) return s;
  std::unique_ptr<Endpoint> endpoint(new Endpoint());
  try {
    // Two threads: Prometheus scrapes every few seconds, and a scrape only
    // copies counters.
    endpoint->exposer_ =
        std::make_unique<prometheus::Exposer>(std::vector<std::string>{
            "listening_ports", listen, "num_threads", "2"});
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat(
        "metrics_listen: cannot serve on ", listen, ": ", e.what()));
  }
  endpoint->exposer_->RegisterCollectable(SharedRegistry());
  const std::vector<int> ports = endpoint->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics_listen: cannot serve on ", listen));
  }
  endpoint->port_ = ports.front();
  return endpoint;
}

Endpoint::~Endpoint() = default;

}  // namespace rapport::metrics
