// Prometheus metrics of a Rapport process (prometheus-cpp).
//
// Every component adds its metric families to the one registry of the process,
// Registry(), and the service serves it over HTTP at --metrics_listen, where
// Prometheus scrapes it. Families are made once, where they are used:
//
//   prometheus::Counter& rows = prometheus::BuildCounter()
//                                   .Name("rapport_import_rows_total")
//                                   .Help("...")
//                                   .Register(metrics::Registry())
//                                   .Add({{"outcome", "accepted"}});
//   rows.Increment();
//
// Names follow Prometheus' conventions: a `rapport_` prefix, base units
// (seconds), `_total` on counters; gRPC calls use the names of
// go-grpc-prometheus (see grpc_metrics.h), which dashboards already know.
#ifndef RAPPORT_COMMON_METRICS_METRICS_H_
#define RAPPORT_COMMON_METRICS_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace prometheus {
class Exposer;
}

namespace rapport::metrics {

// The registry of the process.
prometheus::Registry& Registry();

// Bucket bounds, in seconds, of every duration histogram: 0.5 ms to an hour,
// roughly doubling, so that a database round trip and a refresh of millions
// both fall inside.
const prometheus::Histogram::BucketBoundaries& SecondsBuckets();

// rapport_import_rows_total{import, outcome}: import rows by outcome,
// accepted, duplicate (stored by an earlier attempt) or rejected, counted as
// each batch is stored and each row refused (an import cut short counts what
// it stored).
// `import` names what was imported, e.g. "purchases".
void CountImportRows(absl::string_view import, int64_t accepted,
                     int64_t duplicates, int64_t rejected);

// Refresh jobs of the differentiation kit:
//   rapport_refresh_jobs_running                 gauge
//   rapport_refresh_jobs_total{outcome}          succeeded or failed
//   rapport_refresh_duration_seconds{outcome}    histogram
//   rapport_refresh_entities_total               entities valued by
//                                                succeeded refreshes
class RefreshJobMetrics {
 public:
  // Made with every series at zero; a service that refreshes makes it as it
  // starts (Differentiation's constructor).
  static RefreshJobMetrics& Get();
  void Started() { running_.Increment(); }
  void Ended(bool succeeded, absl::Duration elapsed, int64_t entities);
  // A job whose end this process could not record: it runs here no more,
  // and the recovery that ends it counts it (Recovered), on whichever
  // replica runs it.
  void LeftToRecovery() { running_.Decrement(); }
  // A job whose replica stopped, ended by this process's recovery: counted
  // by its outcome (its replica's counts went with it), not timed.
  void Recovered(bool succeeded) { jobs_.Add(Outcome(succeeded)).Increment(); }

 private:
  RefreshJobMetrics();
  static const prometheus::Histogram::BucketBoundaries& Buckets();
  static prometheus::Labels Outcome(bool succeeded);
  prometheus::Gauge& running_;
  prometheus::Family<prometheus::Counter>& jobs_;
  prometheus::Family<prometheus::Histogram>& seconds_;
  prometheus::Counter& entities_;
};

// Serves Registry() as Prometheus' text format at http://<listen>/metrics.
class Endpoint {
 public:
  // `listen` is host:port; port 0 picks a free one. A port in use or a bad
  // address is an error naming --metrics_listen.
  static absl::StatusOr<std::unique_ptr<Endpoint>> Start(
      const std::string& listen);
  // Whether `listen` is host:port, checked before anything starts (a port in
  // use is found only when it is bound).
  static absl::Status CheckListen(const std::string& listen);
  ~Endpoint();

  int port() const { return port_; }

 private:
  Endpoint() = default;

  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace rapport::metrics

#endif  // RAPPORT_COMMON_METRICS_METRICS_H_
