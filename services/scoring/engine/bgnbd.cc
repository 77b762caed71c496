#include "services/scoring/engine/bgnbd.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <thread>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "services/scoring/engine/optimize.h"
#include "services/scoring/engine/special_functions.h"

namespace rapport::scoring {
namespace {

constexpr size_t kParallelRows = 1 << 14;

// A distinct (x, t_x, T) row with its multiplicity.
struct WeightedRow {
  uint32_t x_index;  // into the distinct x values
  double t_x;
  double T;
  double weight;
};

struct Compressed {
  std::vector<double> xs;  // distinct x values
  std::vector<WeightedRow> rows;
  double total_weight = 0;
};

Compressed Compress(absl::Span<const CustomerSummary> customers) {
  absl::flat_hash_map<std::tuple<int64_t, double, double>, uint32_t> index;
  absl::flat_hash_map<int64_t, uint32_t> x_index;
  Compressed out;
  for (const CustomerSummary& c : customers) {
    auto [xit, xnew] =
        x_index.try_emplace(c.x, static_cast<uint32_t>(out.xs.size()));
    if (xnew) out.xs.push_back(static_cast<double>(c.x));
    auto [it, inserted] =
        index.try_emplace(std::make_tuple(c.x, c.t_x, c.T),
                          static_cast<uint32_t>(out.rows.size()));
    if (inserted) {
      out.rows.push_back({xit->second, c.t_x, c.T, 0.0});
    }
    out.rows[it->second].weight += 1.0;
  }
  out.total_weight = static_cast<double>(customers.size());
  return out;
}

// Log-likelihood and its gradient in (r, alpha, a, b).
struct LlGrad {
  double ll = 0;
  double g[4] = {0, 0, 0, 0};
};

LlGrad Evaluate(const BgNbdParams& p, const Compressed& data, bool want_grad) {
  const double r = p.r, alpha = p.alpha, a = p.a, b = p.b;
  const size_t nx = data.xs.size();
  // Per distinct x.
  struct PerX {
    double a1, a2, log_a_bx1, dr, da, db;
  };
  std::vector<PerX> per_x(nx);
  const double lg_r = LnGamma(r), lg_b = LnGamma(b), lg_ab = LnGamma(a + b);
  const double dg_r = want_grad ? Digamma(r) : 0,
               dg_b = want_grad ? Digamma(b) : 0,
               dg_ab = want_grad ? Digamma(a + b) : 0;
  const double log_alpha = std::log(alpha), log_a = std::log(a);
  for (size_t i = 0; i < nx; ++i) {
    const double x = data.xs[i];
    PerX& q = per_x[i];
    q.a1 = LnGamma(r + x) - lg_r + r * log_alpha;
    q.a2 = lg_ab + LnGamma(b + x) - lg_b - LnGamma(a + b + x);
    q.log_a_bx1 = x > 0 ? log_a - std::log(b + x - 1) : 0;
    if (want_grad) {
      q.dr = Digamma(r + x) - dg_r + log_alpha;
      const double dg_abx = Digamma(a + b + x);
      q.da = dg_ab - dg_abx;
      q.db = dg_ab + Digamma(b + x) - dg_b - dg_abx;
    }
  }
  auto range = [&](size_t begin, size_t end) {
    LlGrad out;
    for (size_t k = begin; k < end; ++k) {
      const WeightedRow& row = data.rows[k];
      const PerX& q = per_x[row.x_index];
      const double x = data.xs[row.x_index];
      const double rx = r + x;
      const double l_T = std::log(alpha + row.T);
      const double a3 = -rx * l_T;
      double ll, w4 = 0, l_t = 0;
      if (x > 0) {
        l_t = std::log(alpha + row.t_x);
        const double a4 = q.log_a_bx1 - rx * l_t;
        const double d = a4 - a3;
        if (d > 0) {
          const double e = std::exp(-d);
          ll = a4 + std::log1p(e);
          w4 = 1.0 / (1.0 + e);
        } else {
          const double e = std::exp(d);
          ll = a3 + std::log1p(e);
          w4 = e / (1.0 + e);
        }
      } else {
        ll = a3;
      }
      const double w = row.weight;
      out.ll += w * (q.a1 + q.a2 + ll);
      if (want_grad) {
        const double w3 = 1.0 - w4;
        out.g[0] += w * (q.dr - w3 * l_T - w4 * l_t);
        out.g[1] += w * (r / alpha - w3 * rx / (alpha + row.T) -
                         (x > 0 ? w4 * rx / (alpha + row.t_x) : 0.0));
        out.g[2] += w * (q.da + (x > 0 ? w4 / a : 0.0));
        out.g[3] += w * (q.db - (x > 0 ? w4 / (b + x - 1) : 0.0));
      }
    }
    return out;
  };
  const size_t n = data.rows.size();
  if (n < kParallelRows) return range(0, n);
  LlGrad other;
  std::thread t([&] { other = range(n / 2, n); });
  LlGrad mine = range(0, n / 2);
  t.join();
  mine.ll += other.ll;
  for (int i = 0; i < 4; ++i) mine.g[i] += other.g[i];
  return mine;
}

double LogBeta(double a, double b) {
  return LnGamma(a) + LnGamma(b) - LnGamma(a + b);
}

}  // namespace

double DaysPerUnit(TimeUnit unit) {
  return unit == TimeUnit::kWeek ? 7.0 : 1.0;
}
double UnitsPerMonth(TimeUnit unit) {
  return unit == TimeUnit::kWeek ? 4.345 : 30.0;
}

absl::StatusOr<SummaryTable> BuildSummaries(
    absl::Span<const ActivityEvent> events, int64_t as_of_micros,
    TimeUnit unit) {
  struct Item {
    absl::string_view id;
    int64_t day;
    Int128 amount;
  };
  std::vector<Item> items;
  items.reserve(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const ActivityEvent& e = events[i];
    if (e.entity_id.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("events[", i, "].entity_id: empty"));
    }
    if (e.time_micros > as_of_micros) continue;
    items.push_back(
        {e.entity_id, FloorDays(e.time_micros), e.amount.raw_nanos()});
  }
  std::sort(items.begin(), items.end(), [](const Item& x, const Item& y) {
    if (x.id != y.id) return x.id < y.id;
    return x.day < y.day;
  });
  const int64_t as_of_day = FloorDays(as_of_micros);
  const double days_per_unit = DaysPerUnit(unit);
  SummaryTable out;
  out.id_offsets.push_back(0);
  for (size_t i = 0; i < items.size();) {
    size_t j = i;
    while (j < items.size() && items[j].id == items[i].id) ++j;
    const int64_t first_day = items[i].day;
    int64_t last_day = first_day, days = 0;
    Int128 repeat_total = 0;
    for (size_t k = i; k < j; ++k) {
      if (k == i || items[k].day != items[k - 1].day) ++days;
      if (items[k].day != first_day) repeat_total += items[k].amount;
      last_day = items[k].day;
    }
    CustomerSummary s;
    s.x = days - 1;
    s.t_x = static_cast<double>(last_day - first_day) / days_per_unit;
    s.T = static_cast<double>(as_of_day - first_day) / days_per_unit;
    s.avg_repeat_spend = s.x > 0
                             ? Decimal::FromRawNanos(repeat_total).ToDouble() /
                                   static_cast<double>(s.x)
                             : 0.0;
    out.id_bytes.append(items[i].id.data(), items[i].id.size());
    out.id_offsets.push_back(out.id_bytes.size());
    out.rows.push_back(s);
    i = j;
  }
  return out;
}

absl::Status ValidateSummaries(absl::Span<const CustomerSummary> customers) {
  for (size_t i = 0; i < customers.size(); ++i) {
    const CustomerSummary& c = customers[i];
    // Named as the API names a summary's fields (x frequency, t_x recency,
    // T age, the mean repeat spend monetary_value).
    auto bad = [&](absl::string_view field, absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("summaries[", i, "].", field, ": ", what));
    };
    if (c.x < 0) return bad("frequency", "must not be negative");
    if (!std::isfinite(c.t_x) || c.t_x < 0) {
      return bad("recency", "must be finite and >= 0");
    }
    if (!std::isfinite(c.T) || c.T < c.t_x) {
      return bad("age", "must be finite and >= recency");
    }
    if (c.x == 0 && c.t_x != 0) {
      return bad("recency", "must be 0 when frequency is 0");
    }
    if (!std::isfinite(c.avg_repeat_spend)) {
      return bad("monetary_value", "must be finite");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateBgNbdParams(const BgNbdParams& p) {
  for (auto [name, v] : {std::pair<const char*, double>{"r", p.r},
                         {"alpha", p.alpha},
                         {"a", p.a},
                         {"b", p.b}}) {
    if (!std::isfinite(v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("bgnbd.", name, ": must be finite and positive"));
    }
  }
  return absl::OkStatus();
}

double BgNbdLogLikelihood(const BgNbdParams& params,
                          absl::Span<const CustomerSummary> customers) {
  return Evaluate(params, Compress(customers), false).ll;
}

absl::StatusOr<BgNbdFit> FitBgNbd(absl::Span<const CustomerSummary> customers) {
  RAPPORT_RETURN_IF_ERROR(ValidateSummaries(customers));
  if (customers.empty()) {
    return absl::FailedPreconditionError(
        "BG/NBD fit needs at least one customer");
  }
  const Compressed data = Compress(customers);
  // Start: r = 1 and alpha from the mean purchase rate; a = b = 1.
  double purchases = 0, exposure = 0;
  for (const CustomerSummary& c : customers) {
    purchases += static_cast<double>(c.x) + 1.0;
    exposure += c.T + 1.0;
  }
  const double alpha0 = std::max(1e-3, exposure / purchases);
  auto objective = [&](const std::vector<double>& theta,
                       std::vector<double>* grad) {
    BgNbdParams p{std::exp(theta[0]), std::exp(theta[1]), std::exp(theta[2]),
                  std::exp(theta[3])};
    LlGrad e = Evaluate(p, data, grad != nullptr);
    const double scale = -1.0 / data.total_weight;
    if (grad != nullptr) {
      (*grad)[0] = scale * e.g[0] * p.r;
      (*grad)[1] = scale * e.g[1] * p.alpha;
      (*grad)[2] = scale * e.g[2] * p.a;
      (*grad)[3] = scale * e.g[3] * p.b;
    }
    return scale * e.ll;
  };
  internal::MinimizeResult m = internal::MinimizeSmooth(
      objective, {0.0, std::log(alpha0), 0.0, 0.0}, -30.0, 30.0);
  if (!m.finite) {
    return absl::FailedPreconditionError(
        "BG/NBD fit found no finite likelihood for these customers");
  }
  BgNbdFit fit;
  fit.params = {std::exp(m.x[0]), std::exp(m.x[1]), std::exp(m.x[2]),
                std::exp(m.x[3])};
  fit.log_likelihood = Evaluate(fit.params, data, false).ll;
  fit.customers = static_cast<int64_t>(customers.size());
  fit.distinct_rows = static_cast<int64_t>(data.rows.size());
  fit.evaluations = m.evaluations;
  return fit;
}

double ProbabilityAlive(const BgNbdParams& p, const CustomerSummary& c) {
  if (c.x == 0) return 1.0;
  const double x = static_cast<double>(c.x);
  const double log_odds =
      std::log(p.a) - std::log(p.b + x - 1) +
      (p.r + x) * (std::log(p.alpha + c.T) - std::log(p.alpha + c.t_x));
  return 1.0 / (1.0 + std::exp(log_odds));
}

namespace {

// The expected purchases below divide (1 - g) by (a - 1), and both vanish at
// a = 1 (a fit with no repeat purchase stays there, and a caller may give
// it): the ratio has a finite limit, taken just beside it, where it is
// exact to about 1e-9 and within 1e-6 of the limit. The same at a + b = 1,
// where 2F1's third parameter (a+b+x-1, for x = 0) is 0: the product of
// (a+b-1) and (1 - g) has a finite limit too.
BgNbdParams AwayFromOne(BgNbdParams p) {
  if (std::abs(p.a - 1.0) < 1e-6) p.a = 1.0 + 1e-6;
  if (std::abs(p.a + p.b - 1.0) < 1e-6) p.b += 2e-6;
  return p;
}

// (1-z)^A 2F1(A, B; C; z) for A, B, C > 0 and 0 < z < 1: a sum of
// positive terms, each at most the sum (which is at most 1 here), summed from
// their logarithms so that none overflows or underflows on the way; NaN when
// it would take more than kMaxTerms.
double DampedHyp2F1(double A, double B, double C, double z) {
  constexpr int64_t kMaxTerms = 10'000'000;
  const double log_z = std::log(z);
  // Past this index the terms only shrink: their ratio
  // z (A+k)(B+k) / ((C+k)(k+1)) is about z (1 + (A+B-C-1)/k).
  const double peak = std::max(0.0, z * (A + B - C - 1.0) / (1.0 - z));
  // Too many to sum (z within about 3e-6 of 1; past the peak the terms
  // take some 37 to 46 / (1 - z) more to fade): said at once, not after
  // seconds of summing.
  if (peak + 30.0 / (1.0 - z) > static_cast<double>(kMaxTerms)) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  double log_term = A * std::log1p(-z);
  double sum = 0;
  for (int64_t k = 0; k < kMaxTerms; ++k) {
    const double term = std::exp(log_term);
    sum += term;
    const double kd = static_cast<double>(k);
    const double ratio = z * (A + kd) * (B + kd) / ((C + kd) * (kd + 1.0));
    if (kd > peak && ratio < 1.0 &&
        term * ratio <= 1e-17 * (1.0 - ratio) * sum) {
      return sum;
    }
    log_term += log_z + std::log((A + kd) * (B + kd) / ((C + kd) * (kd + 1.0)));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// g = (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z), of the expected purchases.
double ExpectedPurchasesG(const BgNbdParams& p, double x, double z) {
  const double c = p.a + p.b + x - 1.0;
  // Rewritten by Euler's transformation, no factor grows with x; but when r
  // is above a+b-1 its series alternates, with terms far larger than the
  // sum, and doubles keep only noise of it (expected purchases off by
  // orders of magnitude). The form as it is then, with positive terms.
  if (p.a + p.b - 1.0 - p.r < 0 && c > 0) {
    const double g = DampedHyp2F1(p.r + x, p.b + x, c, z);
    if (std::isfinite(g)) return g;
  }
  return std::pow(1.0 - z, p.a - 1.0) *
         Hyp2F1(p.a + p.b - 1.0 - p.r, p.a - 1.0, c, z);
}

}  // namespace

double ConditionalExpectedPurchases(const BgNbdParams& given, double t,
                                    const CustomerSummary& c) {
  if (!(t > 0)) return 0.0;
  const BgNbdParams p = AwayFromOne(given);
  const double x = static_cast<double>(c.x);
  const double z = t / (p.alpha + c.T + t);
  const double g = ExpectedPurchasesG(p, x, z);
  const double numerator = (p.a + p.b + x - 1.0) / (p.a - 1.0) * (1.0 - g);
  return numerator * ProbabilityAlive(p, c);
}

double ExpectedPurchases(const BgNbdParams& given, double t) {
  if (!(t > 0)) return 0.0;
  const BgNbdParams p = AwayFromOne(given);
  const double z = t / (p.alpha + t);
  const double g = ExpectedPurchasesG(p, 0.0, z);
  return (p.a + p.b - 1.0) / (p.a - 1.0) * (1.0 - g);
}

double ProbabilityOfPurchases(const BgNbdParams& p, double t, int64_t n) {
  if (n < 0) return 0.0;
  const double x = static_cast<double>(n);
  const double log_q =
      std::log(p.alpha / (p.alpha + t));  // log(alpha/(alpha+t))
  const double log_u = std::log(t / (p.alpha + t));
  const double lb_ab = LogBeta(p.a, p.b);
  const double term1 =
      std::exp(LogBeta(p.a, p.b + x) - lb_ab + LnGamma(p.r + x) - LnGamma(p.r) -
               LnGamma(x + 1) + p.r * log_q + x * log_u);
  if (n == 0) return term1;
  double partial = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double jj = static_cast<double>(j);
    partial += std::exp(LnGamma(p.r + jj) - LnGamma(p.r) - LnGamma(jj + 1) +
                        p.r * log_q + jj * log_u);
  }
  const double term2 =
      std::exp(LogBeta(p.a + 1, p.b + x - 1) - lb_ab) * (1.0 - partial);
  return term1 + term2;
}

}  // namespace rapport::scoring
