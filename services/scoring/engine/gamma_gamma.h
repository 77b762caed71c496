// Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of
// monetary value") and customer lifetime value (SCORING.md section 7).
//
//   RAPPORT_ASSIGN_OR_RETURN(GammaGammaFit gg, FitGammaGamma(summaries.rows));
//   double spend = ConditionalExpectedSpend(gg.params, row);
//   RAPPORT_ASSIGN_OR_RETURN(std::vector<CustomerPrediction> out,
//       PredictCustomers(bg.params, gg.params, summaries.rows,
//                        {.horizon_months = 12, .monthly_discount = 0.01,
//                         .unit = TimeUnit::kWeek, .purchases_horizon = 39}));
//
// The fit uses the repeat buyers (x > 0) with a positive average spend;
// repeat buyers whose average is <= 0 (refunds) cannot enter the model's
// likelihood and are counted in `excluded_nonpositive`, not dropped silently.
// CLV = sum_{i=1..H} S (E[Y(i f)] - E[Y((i-1) f)]) / (1+d)^i with f units per
// month (30 for days, 4.345 for weeks) and S the conditional expected average
// spend (the `lifetimes` convention).

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_GAMMA_GAMMA_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_GAMMA_GAMMA_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "services/scoring/engine/bgnbd.h"

namespace rapport::scoring {

struct GammaGammaParams {
  double p = 0, q = 0, gamma = 0;
};

struct GammaGammaFit {
  GammaGammaParams params;
  double log_likelihood = 0;  // summed over the customers used
  int64_t customers = 0;      // repeat buyers used
  int64_t excluded_nonpositive = 0;
  int evaluations = 0;
};

// InvalidArgument unless p, q, gamma are finite and positive, and q > 1 (the
// population mean spend p gamma / (q - 1) must exist).
absl::Status ValidateGammaGammaParams(const GammaGammaParams& params);

// FailedPrecondition if fewer than 2 usable repeat buyers.
absl::StatusOr<GammaGammaFit> FitGammaGamma(
    absl::Span<const CustomerSummary> customers);

// Log-likelihood over the usable repeat buyers.
double GammaGammaLogLikelihood(const GammaGammaParams& params,
                               absl::Span<const CustomerSummary> customers);

// E[M | x, avg]: (p (gamma + x avg)) / (p x + q - 1); the population mean
// p gamma / (q - 1) when x == 0, and when avg <= 0 (refunds): the model is
// of positive spends, and such a buyer is left out of the fit, so its
// history says nothing the model can use (it would give a negative spend).
double ConditionalExpectedSpend(const GammaGammaParams& params,
                                const CustomerSummary& customer);

struct ClvOptions {
  int horizon_months = 12;         // H, 1..120
  double monthly_discount = 0.01;  // d, in [0, 1)
  TimeUnit unit = TimeUnit::kDay;
  double purchases_horizon = 0;  // t for expected_purchases (units), >= 0
};

// InvalidArgument naming `horizon_months` or `monthly_discount` etc.
absl::Status ValidateClvOptions(const ClvOptions& options);

double CustomerLifetimeValue(const BgNbdParams& bg, const GammaGammaParams& gg,
                             const CustomerSummary& customer,
                             const ClvOptions& options);

struct CustomerPrediction {
  double probability_alive = 0;
  double expected_purchases = 0;  // in the next purchases_horizon units
  double expected_spend = 0;      // conditional expected average spend
  double clv = 0;
};

// Predictions for every customer (two threads for large inputs; identical
// customers are computed once).
absl::StatusOr<std::vector<CustomerPrediction>> PredictCustomers(
    const BgNbdParams& bg, const GammaGammaParams& gg,
    absl::Span<const CustomerSummary> customers, const ClvOptions& options);

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_GAMMA_GAMMA_H_
