// BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"):
// per-customer summaries from raw events, maximum-likelihood fit of
// (r, alpha, a, b), and predictions (SCORING.md section 7).
//
//   RAPPORT_ASSIGN_OR_RETURN(SummaryTable summaries,
//       BuildSummaries(events, as_of_micros, TimeUnit::kWeek));
//   RAPPORT_ASSIGN_OR_RETURN(BgNbdFit fit, FitBgNbd(summaries.rows));
//   double alive = ProbabilityAlive(fit.params, summaries.rows[0]);
//   double next = ConditionalExpectedPurchases(fit.params, 39.0,
//                                              summaries.rows[0]);
//
// Summaries: events with time <= as_of on the same UTC calendar day are one
// purchase (amounts summed); x = purchase days after the first, t_x = (last
// day - first day) / unit, T = (day of as_of - first day) / unit, and
// avg_repeat_spend = mean of the merged amounts of the x repeat days (0 when
// x = 0), computed from exact sums.
//
// The fit maximises the log-likelihood over log-parameters with NLopt's
// L-BFGS and an analytic gradient (log-gamma / log-sum-exp forms, so
// customers with hundreds of purchases stay finite), restarted until it no
// longer improves; identical (x, t_x, T) rows are merged with integer weights
// first, so day- or week-granular populations of millions fit in milliseconds.

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_BGNBD_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_BGNBD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "services/scoring/engine/facts.h"

namespace rapport::scoring {

enum class TimeUnit { kDay = 1, kWeek = 7 };

// Days per unit (1 or 7) and units per month (30 or 4.345).
double DaysPerUnit(TimeUnit unit);
double UnitsPerMonth(TimeUnit unit);

// One customer's repeat-purchase summary.
struct CustomerSummary {
  int64_t x = 0;   // repeat purchases (purchase days after the first)
  double t_x = 0;  // time of the last purchase, from the first
  double T = 0;    // time of as_of, from the first purchase
  double avg_repeat_spend = 0;  // for Gamma-Gamma; 0 when x == 0
};

// Summaries of the entities with at least one event at or before as_of,
// sorted by id bytes.
struct SummaryTable {
  std::string id_bytes;
  std::vector<uint64_t> id_offsets;  // size() + 1
  std::vector<CustomerSummary> rows;

  size_t size() const { return rows.size(); }
  absl::string_view id(size_t i) const {
    return absl::string_view(id_bytes.data() + id_offsets[i],
                             id_offsets[i + 1] - id_offsets[i]);
  }
};

// InvalidArgument naming `events[i].entity_id` for an empty id.
absl::StatusOr<SummaryTable> BuildSummaries(
    absl::Span<const ActivityEvent> events, int64_t as_of_micros,
    TimeUnit unit);

struct BgNbdParams {
  double r = 0, alpha = 0, a = 0, b = 0;
};

struct BgNbdFit {
  BgNbdParams params;
  double log_likelihood = 0;  // at params, summed over all customers
  int64_t customers = 0;
  int64_t distinct_rows = 0;  // after merging identical (x, t_x, T)
  int evaluations = 0;        // objective evaluations
};

// InvalidArgument naming the row and field (`customers[3].t_x: ...`) unless
// x >= 0, 0 <= t_x <= T (finite), t_x == 0 when x == 0.
absl::Status ValidateSummaries(absl::Span<const CustomerSummary> customers);
// InvalidArgument unless all four parameters are finite and positive.
absl::Status ValidateBgNbdParams(const BgNbdParams& params);

// Maximum-likelihood fit. FailedPrecondition if there are no customers or the
// optimiser cannot find a finite maximum.
absl::StatusOr<BgNbdFit> FitBgNbd(absl::Span<const CustomerSummary> customers);

// Log-likelihood of the population (sum over customers).
double BgNbdLogLikelihood(const BgNbdParams& params,
                          absl::Span<const CustomerSummary> customers);

// P(alive | x, t_x, T).
double ProbabilityAlive(const BgNbdParams& p, const CustomerSummary& c);

// E[Y(t) | x, t_x, T]: expected purchases in (T, T + t].
double ConditionalExpectedPurchases(const BgNbdParams& p, double t,
                                    const CustomerSummary& c);

// E[X(t)]: expected purchases of a new customer in (0, t].
double ExpectedPurchases(const BgNbdParams& p, double t);

// P(X(t) = n) for a new customer.
double ProbabilityOfPurchases(const BgNbdParams& p, double t, int64_t n);

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_BGNBD_H_
