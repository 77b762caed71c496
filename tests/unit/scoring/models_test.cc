// Special functions, and BG/NBD / Gamma-Gamma fits on simulated data.

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/timestamp.h"
#include "gtest/gtest.h"
#include "services/scoring/engine/bgnbd.h"
#include "services/scoring/engine/gamma_gamma.h"
#include "services/scoring/engine/special_functions.h"

namespace rapport::scoring {
namespace {

struct Hyp2F1Case {
  double a, b, c, z, want;
};

// Reference values from mpmath.hyp2f1 at 30 digits.
constexpr Hyp2F1Case kHyp2F1Cases[] = {
    {0.5, 0.5, 1.5, 0.25, 1.0471975511965977},  // asin(1/2) / (1/2)
    {1.3, 2.7, 0.4, 0.97, 1762703.6708189773},
    {0.5, 0.7, 1.2, 0.999999, 6.3231885326562779},
    {2, 3, 5, -3, 0.15160751850681251},
    {0.3, 0.4, 1.7, 0.9999, 1.1409583556394113},
    {1, 1, 2, 0.95, 3.1534023932147274},         // c - a - b = 0
    {1.5, 2.5, 4.0, 0.95, 7.8242263412350192},   // c - a - b = 0
    {0.7, 1.3, 3.0, 0.999, 1.8763521071174997},  // c - a - b = 1
    {-3, 2, 1.5, 0.99, -0.029781028571428571},   // polynomial
    {0.2, -0.21, 2.5, 0.5, 0.99092562964151791},
    {1.25, -0.2, 30.5, 0.93, 0.99216214458272238},
    {2.5, -0.2, 300.0, 0.999, 0.99832719356882103},
    {0.8, 0.6, 0.5, -50, 0.0073028990471917616},
    {3.2, 1.1, 4.3, 0.95, 6.4358946075391739},
};

TEST(Hyp2F1, MatchesHighPrecisionReferenceValues) {
  for (const Hyp2F1Case& t : kHyp2F1Cases) {
    const double got = Hyp2F1(t.a, t.b, t.c, t.z);
    EXPECT_NEAR(got / t.want, 1.0, 1e-8)
        << "2F1(" << t.a << ", " << t.b << "; " << t.c << "; " << t.z
        << ") = " << got << ", want " << t.want;
  }
}

TEST(Hyp2F1, ClosedFormsAcrossTheUnitInterval) {
  for (double z = -20; z < 1; z += (z < 0.9 ? 0.05 : 0.001)) {
    if (z == 0) continue;
    // 2F1(1, 1; 2; z) = -log(1 - z) / z.
    EXPECT_NEAR(Hyp2F1(1, 1, 2, z) / (-std::log1p(-z) / z), 1, 1e-8) << z;
    // 2F1(a, b; b; z) = (1 - z)^(-a).
    EXPECT_NEAR(Hyp2F1(0.37, 1.9, 1.9, z) / std::pow(1 - z, -0.37), 1, 1e-8)
        << z;
  }
  // Gauss's theorem at z = 1.
  EXPECT_NEAR(Hyp2F1(0.5, 0.25, 2.0, 1.0),
              std::tgamma(2.0) * std::tgamma(1.25) /
                  (std::tgamma(1.5) * std::tgamma(1.75)),
              1e-13);
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 0, 0.5)));    // c a pole
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 1.5, 1.0)));  // diverges at z = 1
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 2, 1.5)));
}

TEST(Hyp2F1, FiniteAndContinuousApproachingOne) {
  // Large parameters as for customers with hundreds of purchases.
  double previous = Hyp2F1(1.2, -0.2, 400.0, 0.5);
  double z = 0.5;
  for (int i = 0; i < 80; ++i, z = 1.0 - (1.0 - z) * 0.7) {
    const double v = Hyp2F1(1.2, -0.2, 400.0, z);
    ASSERT_TRUE(std::isfinite(v)) << z;
    EXPECT_LE(v, previous + 1e-12) << z;  // decreasing in z for these params
    previous = v;
  }
  // No jump where the algorithm switches from the series (z <= 0.9) to the
  // connection formula.
  EXPECT_NEAR(Hyp2F1(0.45, 0.8, 1.7, 0.9) / Hyp2F1(0.45, 0.8, 1.7, 0.9 + 1e-12),
              1, 1e-9);
}

TEST(Digamma, KnownValues) {
  EXPECT_NEAR(Digamma(1), -0.57721566490153286, 1e-14);
  EXPECT_NEAR(Digamma(0.1), -10.423754940411077, 1e-12);
  EXPECT_NEAR(Digamma(2.5), 0.70315664064524319, 1e-14);
  EXPECT_NEAR(Digamma(7.9), 2.002238487563571, 1e-14);
  EXPECT_NEAR(Digamma(30), 3.3844381326855249, 1e-14);
  EXPECT_NEAR(Digamma(1e-3), -1000.5755719318103, 1e-9);
  EXPECT_TRUE(std::isnan(Digamma(0)));
}

// Simulates BG/NBD customers (and Gamma-Gamma spends) with a fixed seed.
std::vector<CustomerSummary> Simulate(const BgNbdParams& bg,
                                      const GammaGammaParams& gg, size_t n,
                                      uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> lambda_dist(bg.r, 1.0 / bg.alpha);
  std::gamma_distribution<double> pa(bg.a, 1.0), pb(bg.b, 1.0);
  std::gamma_distribution<double> nu_dist(gg.q, 1.0 / gg.gamma);
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  std::vector<CustomerSummary> out;
  for (size_t i = 0; i < n; ++i) {
    const double lambda = lambda_dist(rng);
    const double ga = pa(rng), gb = pb(rng);
    const double p = ga / (ga + gb);
    const double T = 26.0 + 13.0 * unif(rng);
    CustomerSummary c;
    c.T = T;
    double t = 0;
    while (true) {
      t += std::exponential_distribution<double>(lambda)(rng);
      if (t > T) break;
      ++c.x;
      c.t_x = t;
      if (unif(rng) < p) break;  // drops out after this purchase
    }
    if (c.x > 0) {
      const double nu = nu_dist(rng);
      std::gamma_distribution<double> spend(gg.p, 1.0 / nu);
      double total = 0;
      for (int64_t k = 0; k < c.x; ++k) total += spend(rng);
      c.avg_repeat_spend = total / static_cast<double>(c.x);
    }
    out.push_back(c);
  }
  return out;
}

// Standard errors from the observed information (numerical Hessian of the
// log-likelihood `ll` at `theta`).
std::vector<double> StandardErrors(
    const std::function<double(const std::vector<double>&)>& ll,
    const std::vector<double>& theta) {
  const size_t n = theta.size();
  std::vector<double> h(n * n);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      const double ei = 1e-4 * theta[i], ej = 1e-4 * theta[j];
      auto at = [&](double si, double sj) {
        std::vector<double> x = theta;
        x[i] += si * ei;
        x[j] += sj * ej;
        return ll(x);
      };
      h[i * n + j] =
          -(at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1)) / (4 * ei * ej);
    }
  }
  // Invert by Gauss-Jordan.
  std::vector<double> inv(n * n, 0.0);
  for (size_t i = 0; i < n; ++i) inv[i * n + i] = 1;
  for (size_t c = 0; c < n; ++c) {
    const double d = h[c * n + c];
    for (size_t k = 0; k < n; ++k) {
      h[c * n + k] /= d;
      inv[c * n + k] /= d;
    }
    for (size_t r = 0; r < n; ++r) {
      if (r == c) continue;
      const double f = h[r * n + c];
      for (size_t k = 0; k < n; ++k) {
        h[r * n + k] -= f * h[c * n + k];
        inv[r * n + k] -= f * inv[c * n + k];
      }
    }
  }
  std::vector<double> se(n);
  for (size_t i = 0; i < n; ++i) se[i] = std::sqrt(inv[i * n + i]);
  return se;
}

TEST(BgNbd, RecoversSimulatedParametersWithinStandardErrors) {
  const BgNbdParams truth{0.8, 6.0, 0.9, 3.5};
  std::vector<CustomerSummary> data = Simulate(truth, {6, 4, 15}, 20000, 2024);
  absl::StatusOr<BgNbdFit> fit = FitBgNbd(data);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_GE(fit->log_likelihood, BgNbdLogLikelihood(truth, data));
  const BgNbdParams& p = fit->params;
  std::vector<double> se = StandardErrors(
      [&](const std::vector<double>& v) {
        return BgNbdLogLikelihood({v[0], v[1], v[2], v[3]}, data);
      },
      {p.r, p.alpha, p.a, p.b});
  const double got[] = {p.r, p.alpha, p.a, p.b};
  const double want[] = {truth.r, truth.alpha, truth.a, truth.b};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(std::isfinite(se[i]) && se[i] > 0);
    EXPECT_LT(std::fabs(got[i] - want[i]), 4 * se[i])
        << "param " << i << " got " << got[i] << " se " << se[i];
  }
}

TEST(GammaGamma, RecoversSimulatedParametersWithinStandardErrors) {
  const GammaGammaParams truth{6.0, 4.0, 15.0};
  std::vector<CustomerSummary> data =
      Simulate({0.8, 6.0, 0.9, 3.5}, truth, 20000, 99);
  absl::StatusOr<GammaGammaFit> fit = FitGammaGamma(data);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_GE(fit->log_likelihood, GammaGammaLogLikelihood(truth, data));
  const GammaGammaParams& p = fit->params;
  std::vector<double> se = StandardErrors(
      [&](const std::vector<double>& v) {
        return GammaGammaLogLikelihood({v[0], v[1], v[2]}, data);
      },
      {p.p, p.q, p.gamma});
  const double got[] = {p.p, p.q, p.gamma};
  const double want[] = {truth.p, truth.q, truth.gamma};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(std::isfinite(se[i]) && se[i] > 0);
    EXPECT_LT(std::fabs(got[i] - want[i]), 4 * se[i])
        << "param " << i << " got " << got[i] << " se " << se[i];
  }
}

// The fits run on several threads, and on every scoring request's: their
// log-gamma must not write glibc's global `signgam`, as std::lgamma does.
TEST(Fits, LeaveTheGlobalSignOfGammaAlone) {
  std::vector<CustomerSummary> data =
      Simulate({0.8, 6.0, 0.9, 3.5}, GammaGammaParams{6.0, 4.0, 15.0}, 2000, 7);
  signgam = 42;  // any std::lgamma call sets it to 1 or -1
  ASSERT_TRUE(FitBgNbd(data).ok());
  ASSERT_TRUE(FitGammaGamma(data).ok());
  EXPECT_EQ(signgam, 42);
  EXPECT_DOUBLE_EQ(LnGamma(5), std::log(24.0));
  EXPECT_DOUBLE_EQ(LnGamma(-0.5), std::log(2 * std::sqrt(M_PI)));  // |Gamma|
}

TEST(BgNbd, HeavyBuyersStayFinite) {
  const BgNbdParams p{0.5, 3.0, 0.8, 2.5};
  CustomerSummary heavy{800, 364.0, 365.0, 20.0};
  EXPECT_TRUE(std::isfinite(BgNbdLogLikelihood(p, {&heavy, 1})));
  const double e = ConditionalExpectedPurchases(p, 30, heavy);
  EXPECT_TRUE(std::isfinite(e));
  // About 800/365 a day while alive.
  EXPECT_NEAR(e / 30, 800.0 / 365.0, 0.2);
  EXPECT_GT(ProbabilityAlive(p, heavy), 0.99);
  CustomerSummary gone{800, 10.0, 365.0, 20.0};
  EXPECT_LT(ProbabilityAlive(p, gone), 1e-100);
  EXPECT_GE(ConditionalExpectedPurchases(p, 30, gone), 0.0);
}

// When r is above a+b-1 (buyers who buy at much the same rate), the series
// of the rewritten form alternates with terms far larger than its sum; the
// expected purchases must stay exact there. The references are the positive
// series (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z) summed to 60 digits
// (Python's decimal), outside this code.
TEST(BgNbd, ExpectedPurchasesStayExactWhenRIsAboveAPlusBMinusOne) {
  const CustomerSummary fresh{0, 0.0, 30.0, 0.0};
  EXPECT_NEAR(ConditionalExpectedPurchases({200.3, 400.6, 2, 10}, 365, fresh),
              10.382134970545878, 1e-9);
  EXPECT_NEAR(ConditionalExpectedPurchases({400.3, 2802.1, 2, 10}, 720, fresh),
              10.005581866990601, 1e-9);
  const CustomerSummary back{5, 30.0, 41.0, 0.0};
  EXPECT_NEAR(ConditionalExpectedPurchases({200.3, 400.6, 2, 10}, 365, back),
              0.55744829248989949, 1e-9);
  EXPECT_NEAR(ExpectedPurchases({200.3, 400.6, 2, 10}, 365), 10.423118576264401,
              1e-9);
  EXPECT_NEAR(ExpectedPurchases({400.3, 2802.1, 2, 10}, 3600),
              10.789288419239124, 1e-9);
}

// At a + b = 1 the third parameter of 2F1 is 0 for a customer without
// repeat purchases, and the expected purchases 0 times infinity as written:
// their limit is (1-z)^(a-1) z, here with z = 1/12 (and finite beside it).
TEST(BgNbd, ExpectedPurchasesAtAPlusBEqualToOneAreTheirLimit) {
  const CustomerSummary once{0, 0.0, 10.0, 0.0};
  const double limit = std::pow(11.0 / 12.0, -0.5) / 12.0;
  EXPECT_NEAR(ConditionalExpectedPurchases({1, 1, 0.5, 0.5}, 1, once), limit,
              1e-5);
  EXPECT_NEAR(ExpectedPurchases({1, 11, 0.5, 0.5}, 1), limit, 1e-5);
}

// At a = 1 the expected purchases are 0/0 as written; their limit is
// finite, and between the values beside it. A fit on buyers who never came
// back stays at a = 1: its predictions are numbers, not NaN.
TEST(BgNbd, ExpectedPurchasesAtAEqualToOneAreTheirLimit) {
  const CustomerSummary once{0, 0.0, 30.0, 0.0};
  const CustomerSummary twice{1, 10.0, 30.0, 5.0};
  for (const CustomerSummary& c : {once, twice}) {
    const double at = ConditionalExpectedPurchases({0.5, 3.0, 1.0, 2.5}, 30, c);
    const double below =
        ConditionalExpectedPurchases({0.5, 3.0, 1.0 - 1e-3, 2.5}, 30, c);
    const double above =
        ConditionalExpectedPurchases({0.5, 3.0, 1.0 + 1e-3, 2.5}, 30, c);
    ASSERT_TRUE(std::isfinite(at)) << c.x;
    EXPECT_GT(at, std::min(below, above)) << c.x;
    EXPECT_LT(at, std::max(below, above)) << c.x;
  }
  const double at = ExpectedPurchases({0.5, 3.0, 1.0, 2.5}, 30);
  EXPECT_TRUE(std::isfinite(at));
  EXPECT_NEAR(at, ExpectedPurchases({0.5, 3.0, 1.0 + 1e-3, 2.5}, 30),
              1e-3 * at);
  std::vector<CustomerSummary> one_time(50, once);
  absl::StatusOr<BgNbdFit> fit = FitBgNbd(one_time);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_TRUE(
      std::isfinite(ConditionalExpectedPurchases(fit->params, 30, once)));
  EXPECT_TRUE(std::isfinite(ExpectedPurchases(fit->params, 30)));
}

TEST(BgNbd, SummariesMergeSameDayEventsAndMeasureInUnits) {
  const int64_t day = kMicrosPerDay;
  const int64_t d0 = *ParseRfc3339Micros("2024-01-01T00:00:00Z");
  const int64_t as_of = *ParseRfc3339Micros("2024-01-29T18:00:00Z");
  std::vector<ActivityEvent> events = {
      {"b", d0 + 3, *Decimal::Parse("10")},
      {"a", d0 + 7 * day + 100, *Decimal::Parse("5.00")},
      {"a", d0 + 7 * day + 2000, *Decimal::Parse("2.50")},  // same day: merged
      {"a", d0 + 1, *Decimal::Parse("1")},
      {"a", d0 + 21 * day, *Decimal::Parse("-0.50")},
      {"a", as_of + 1, *Decimal::Parse("100")},  // after as_of: ignored
  };
  absl::StatusOr<SummaryTable> s =
      BuildSummaries(events, as_of, TimeUnit::kWeek);
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ(s->id(0), "a");
  EXPECT_EQ(s->rows[0].x, 2);
  EXPECT_DOUBLE_EQ(s->rows[0].t_x, 3.0);
  EXPECT_DOUBLE_EQ(s->rows[0].T, 4.0);
  EXPECT_DOUBLE_EQ(s->rows[0].avg_repeat_spend, 3.5);  // (7.50 - 0.50) / 2
  EXPECT_EQ(s->rows[1].x, 0);
  EXPECT_DOUBLE_EQ(s->rows[1].avg_repeat_spend, 0.0);
  absl::StatusOr<SummaryTable> days =
      BuildSummaries(events, as_of, TimeUnit::kDay);
  EXPECT_DOUBLE_EQ(days->rows[0].t_x, 21.0);
  EXPECT_DOUBLE_EQ(days->rows[0].T, 28.0);
}

// A repeat buyer whose repeat purchases were refunds on average (a mean
// spend of 0 or less) is out of the Gamma-Gamma fit, and its expected spend
// is the population mean, as for one with no repeat purchase; never
// negative.
// Spends so heavy-tailed that the likeliest q is at most 1 give no usable
// model (its expected spend would not exist): the fit says so, and a
// refresh's CLV then goes without Gamma-Gamma instead of failing.
TEST(GammaGamma, AFitWhoseQIsNotAboveOneIsNoFit) {
  std::vector<CustomerSummary> buyers;
  for (double spend : {5.0, 10.0, 20.0, 50.0, 2000.0, 100000.0}) {
    buyers.push_back({1, 10.0, 30.0, spend});
  }
  absl::StatusOr<GammaGammaFit> fit = FitGammaGamma(buyers);
  EXPECT_TRUE(absl::IsFailedPrecondition(fit.status()))
      << fit.status() << (fit.ok() ? absl::StrCat(" q ", fit->params.q) : "");
}

TEST(GammaGamma, ANonPositiveMeanSpendGetsThePopulationMean) {
  const GammaGammaParams gg{6.25, 3.74, 15.44};
  const double mean = gg.p * gg.gamma / (gg.q - 1.0);
  EXPECT_DOUBLE_EQ(ConditionalExpectedSpend(gg, {0, 0, 10, 0}), mean);
  EXPECT_DOUBLE_EQ(ConditionalExpectedSpend(gg, {2, 5, 10, -50}), mean);
  EXPECT_DOUBLE_EQ(ConditionalExpectedSpend(gg, {2, 5, 10, 0}), mean);
  EXPECT_GT(ConditionalExpectedSpend(gg, {2, 5, 10, 40}), mean);
}

TEST(Clv, MatchesTheDefinitionAndValidatesOptions) {
  const BgNbdParams bg{0.243, 4.414, 0.793, 2.426};
  const GammaGammaParams gg{6.25, 3.74, 15.44};
  const CustomerSummary c{2, 30.43, 38.86, 22.35};
  ClvOptions o{12, 0.01, TimeUnit::kWeek, 39};
  double want = 0;
  const double s = ConditionalExpectedSpend(gg, c);
  for (int i = 1; i <= 12; ++i) {
    want += s *
            (ConditionalExpectedPurchases(bg, i * 4.345, c) -
             ConditionalExpectedPurchases(bg, (i - 1) * 4.345, c)) /
            std::pow(1.01, i);
  }
  EXPECT_NEAR(CustomerLifetimeValue(bg, gg, c, o), want, 1e-9 * want);
  // No discount: spend times expected purchases over the horizon.
  ClvOptions flat{12, 0.0, TimeUnit::kWeek, 39};
  EXPECT_NEAR(CustomerLifetimeValue(bg, gg, c, flat),
              s * ConditionalExpectedPurchases(bg, 12 * 4.345, c), 1e-9);
  std::vector<CustomerSummary> many(1000, c);
  many[10] = {0, 0, 20, 0};
  absl::StatusOr<std::vector<CustomerPrediction>> pred =
      PredictCustomers(bg, gg, many, o);
  ASSERT_TRUE(pred.ok()) << pred.status();
  EXPECT_NEAR((*pred)[0].clv, want, 1e-9 * want);
  EXPECT_NEAR((*pred)[999].expected_purchases, 1.2259, 5e-4);
  EXPECT_EQ((*pred)[10].probability_alive, 1.0);
  EXPECT_NEAR((*pred)[10].expected_spend, 6.25 * 15.44 / 2.74, 1e-9);

  EXPECT_NE(ValidateClvOptions({0, 0.01, TimeUnit::kDay, 0})
                .message()
                .find("horizon_months"),
            absl::string_view::npos);
  EXPECT_FALSE(ValidateClvOptions({121, 0.01, TimeUnit::kDay, 0}).ok());
  EXPECT_NE(ValidateClvOptions({12, 1.0, TimeUnit::kDay, 0})
                .message()
                .find("monthly_discount"),
            absl::string_view::npos);
  EXPECT_FALSE(ValidateClvOptions({12, -0.1, TimeUnit::kDay, 0}).ok());
  EXPECT_FALSE(PredictCustomers(bg, {1, 0.5, 1}, many, o).ok());  // q <= 1
}

TEST(Fits, RejectInvalidSummaries) {
  std::vector<CustomerSummary> bad = {{1, 5, 4, 10}};
  absl::StatusOr<BgNbdFit> fit = FitBgNbd(bad);
  EXPECT_EQ(fit.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(fit.status().message().find("summaries[0].age"),
            absl::string_view::npos);
  EXPECT_FALSE(FitBgNbd({}).ok());
  std::vector<CustomerSummary> refunds = {
      {2, 5, 10, -3}, {1, 2, 9, 4}, {3, 4, 9, 5}};
  absl::StatusOr<GammaGammaFit> gg = FitGammaGamma(refunds);
  ASSERT_TRUE(gg.ok()) << gg.status();
  EXPECT_EQ(gg->excluded_nonpositive, 1);
  EXPECT_EQ(gg->customers, 2);
}

}  // namespace
}  // namespace rapport::scoring
