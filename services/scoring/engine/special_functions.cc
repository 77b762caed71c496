#include "services/scoring/engine/special_functions.h"

#include <cmath>
#include <limits>
#include <utility>

namespace rapport::scoring {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool IsNonPositiveInteger(double v) { return v <= 0 && v == std::floor(v); }

// Power series; exact (terminating) when a or b is a non-positive integer.
double Series(double a, double b, double c, double z) {
  double sum = 1.0, term = 1.0;
  for (int n = 0; n < 200000; ++n) {
    const double ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
    term *= ratio;
    sum += term;
    if (term == 0.0) return sum;
    if (std::fabs(ratio) < 1.0 &&
        std::fabs(term) <= 1e-17 * std::fabs(sum) * (1.0 - std::fabs(ratio))) {
      return sum;
    }
    if (!std::isfinite(sum)) return kNaN;
  }
  return kNaN;
}

// sign(Gamma(x)) * exp(-lgamma(x)) = 1/Gamma(x), 0 at the poles; returned as
// (log magnitude, sign) so products of many of them stay in range.
struct LogGamma {
  double log_abs;
  int sign;  // 0 at a pole (1/Gamma is zero there)
};

LogGamma LGamma(double x) {
  if (IsNonPositiveInteger(x))
    return {std::numeric_limits<double>::infinity(), 0};
  int sign = 1;
  const double v = lgamma_r(x, &sign);
  return {v, sign};
}

// Connection formula in 1 - z for 0 < z < 1 (c - a - b not an integer).
double Connection(double a, double b, double c, double z) {
  const double m = c - a - b;
  const double w = 1.0 - z;
  const LogGamma gc = LGamma(c), gm = LGamma(m), gmm = LGamma(-m);
  const LogGamma gca = LGamma(c - a), gcb = LGamma(c - b), ga = LGamma(a),
                 gb = LGamma(b);
  double total = 0.0;
  // Term 1: G(c) G(m) / (G(c-a) G(c-b)) F(a, b; 1 - m; w).
  if (gca.sign != 0 && gcb.sign != 0) {
    const double coef =
        std::exp(gc.log_abs + gm.log_abs - gca.log_abs - gcb.log_abs);
    total += gc.sign * gm.sign * gca.sign * gcb.sign * coef *
             Series(a, b, 1.0 - m, w);
  }
  // Term 2: w^m G(c) G(-m) / (G(a) G(b)) F(c-a, c-b; 1 + m; w).
  if (ga.sign != 0 && gb.sign != 0) {
    const double coef = std::exp(gc.log_abs + gmm.log_abs - ga.log_abs -
                                 gb.log_abs + m * std::log(w));
    total += gc.sign * gmm.sign * ga.sign * gb.sign * coef *
             Series(c - a, c - b, 1.0 + m, w);
  }
  return total;
}

}  // namespace

double Hyp2F1(double a, double b, double c, double z) {
  if (std::isnan(a) || std::isnan(b) || std::isnan(c) || std::isnan(z))
    return kNaN;
  if (IsNonPositiveInteger(c)) return kNaN;
  if (z == 0.0 || a == 0.0 || b == 0.0) return 1.0;
  if (z > 1.0) return kNaN;
  const bool polynomial = IsNonPositiveInteger(a) || IsNonPositiveInteger(b);
  if (z < 0.0) {
    if (polynomial && z >= -1.0) return Series(a, b, c, z);
    // Pfaff: F(a,b;c;z) = (1-z)^(-a) F(a, c-b; c; z/(z-1)).
    const double w = z / (z - 1.0);
    return std::pow(1.0 - z, -a) * Hyp2F1(a, c - b, c, w);
  }
  if (polynomial || z <= 0.9) return Series(a, b, c, z);
  const double m = c - a - b;
  if (z == 1.0) {
    if (m <= 0) return kNaN;
    const LogGamma gc = LGamma(c), gm = LGamma(m), gca = LGamma(c - a),
                   gcb = LGamma(c - b);
    if (gca.sign == 0 || gcb.sign == 0) return 0.0;
    return gc.sign * gm.sign * gca.sign * gcb.sign *
           std::exp(gc.log_abs + gm.log_abs - gca.log_abs - gcb.log_abs);
  }
  if (std::fabs(m - std::nearbyint(m)) < 1e-6) {
    constexpr double kEps = 1e-5;
    return 0.5 *
           (Connection(a, b, c + kEps, z) + Connection(a, b, c - kEps, z));
  }
  return Connection(a, b, c, z);
}

double Digamma(double x) {
  if (!(x > 0)) return kNaN;
  double result = 0.0;
  while (x < 10.0) {
    result -= 1.0 / x;
    x += 1.0;
  }
  const double inv = 1.0 / x, inv2 = inv * inv;
  // Asymptotic series: sum of B_2k / (2k x^2k), Bernoulli numbers B_2..B_14.
  const double tail =
      inv2 *
      (1.0 / 12 -
       inv2 *
           (1.0 / 120 -
            inv2 * (1.0 / 252 -
                    inv2 * (1.0 / 240 -
                            inv2 * (1.0 / 132 - inv2 * (691.0 / 32760 -
                                                        inv2 * (1.0 / 12)))))));
  result += std::log(x) - 0.5 * inv - tail;
  return result;
}

double LogAddExp(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == -std::numeric_limits<double>::infinity()) return a;
  return a + std::log1p(std::exp(b - a));
}

double LnGamma(double x) {
  int sign = 1;
  return lgamma_r(x, &sign);
}

}  // namespace rapport::scoring
