#include "services/scoring/engine/gamma_gamma.h"

#include <cmath>
#include <thread>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "services/scoring/engine/optimize.h"
#include "services/scoring/engine/special_functions.h"

namespace rapport::scoring {
namespace {

constexpr size_t kParallelRows = 1 << 14;

struct SpendRow {
  double x, log_x, m, log_m, weight;
};

struct SpendData {
  std::vector<SpendRow> rows;
  double total_weight = 0;
  int64_t excluded = 0;
};

SpendData Collect(absl::Span<const CustomerSummary> customers) {
  SpendData out;
  absl::flat_hash_map<std::pair<int64_t, double>, size_t> index;
  for (const CustomerSummary& c : customers) {
    if (c.x <= 0) continue;
    if (!(c.avg_repeat_spend > 0)) {
      ++out.excluded;
      continue;
    }
    auto [it, inserted] = index.try_emplace(
        std::make_pair(c.x, c.avg_repeat_spend), out.rows.size());
    if (inserted) {
      const double x = static_cast<double>(c.x);
      out.rows.push_back({x, std::log(x), c.avg_repeat_spend,
                          std::log(c.avg_repeat_spend), 0.0});
    }
    out.rows[it->second].weight += 1.0;
    out.total_weight += 1.0;
  }
  return out;
}

struct LlGrad {
  double ll = 0;
  double g[3] = {0, 0, 0};
};

LlGrad Evaluate(const GammaGammaParams& prm, const SpendData& data,
                bool want_grad) {
  const double p = prm.p, q = prm.q, gamma = prm.gamma;
  const double lg_q = LnGamma(q), log_gamma = std::log(gamma);
  const double dg_q = want_grad ? Digamma(q) : 0;
  auto range = [&](size_t begin, size_t end) {
    LlGrad out;
    for (size_t k = begin; k < end; ++k) {
      const SpendRow& r = data.rows[k];
      const double px = p * r.x;
      const double l_den = std::log(gamma + r.m * r.x);
      const double ll = LnGamma(px + q) - LnGamma(px) - lg_q + q * log_gamma +
                        (px - 1) * r.log_m + px * r.log_x - (px + q) * l_den;
      out.ll += r.weight * ll;
      if (want_grad) {
        const double dg_pxq = Digamma(px + q);
        out.g[0] +=
            r.weight * r.x * (dg_pxq - Digamma(px) + r.log_m + r.log_x - l_den);
        out.g[1] += r.weight * (dg_pxq - dg_q + log_gamma - l_den);
        out.g[2] += r.weight * (q / gamma - (px + q) / (gamma + r.m * r.x));
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
  for (int i = 0; i < 3; ++i) mine.g[i] += other.g[i];
  return mine;
}

}  // namespace

absl::Status ValidateGammaGammaParams(const GammaGammaParams& prm) {
  for (auto [name, v] : {std::pair<const char*, double>{"p", prm.p},
                         {"q", prm.q},
                         {"gamma", prm.gamma}}) {
    if (!std::isfinite(v) || v <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("gamma_gamma.", name, ": must be finite and positive"));
    }
  }
  if (prm.q <= 1) {
    return absl::InvalidArgumentError(
        "gamma_gamma.q: must be above 1 for the expected spend to exist");
  }
  return absl::OkStatus();
}

double GammaGammaLogLikelihood(const GammaGammaParams& params,
                               absl::Span<const CustomerSummary> customers) {
  return Evaluate(params, Collect(customers), false).ll;
}

absl::StatusOr<GammaGammaFit> FitGammaGamma(
    absl::Span<const CustomerSummary> customers) {
  RAPPORT_RETURN_IF_ERROR(ValidateSummaries(customers));
  const SpendData data = Collect(customers);
  if (data.total_weight < 2) {
    return absl::FailedPreconditionError(
        "Gamma-Gamma fit needs at least 2 repeat buyers with positive spend");
  }
  double mean = 0;
  for (const SpendRow& r : data.rows) mean += r.weight * r.m;
  mean /= data.total_weight;
  // Start at p = 1, q = 2 and gamma matching the mean spend.
  auto objective = [&](const std::vector<double>& theta,
                       std::vector<double>* grad) {
    GammaGammaParams p{std::exp(theta[0]), std::exp(theta[1]),
                       std::exp(theta[2])};
    LlGrad e = Evaluate(p, data, grad != nullptr);
    const double scale = -1.0 / data.total_weight;
    if (grad != nullptr) {
      (*grad)[0] = scale * e.g[0] * p.p;
      (*grad)[1] = scale * e.g[1] * p.q;
      (*grad)[2] = scale * e.g[2] * p.gamma;
    }
    return scale * e.ll;
  };
  internal::MinimizeResult m = internal::MinimizeSmooth(
      objective, {0.0, std::log(2.0), std::log(mean)}, -30.0, 30.0);
  if (!m.finite) {
    return absl::FailedPreconditionError(
        "Gamma-Gamma fit found no finite likelihood for these customers");
  }
  GammaGammaFit fit;
  fit.params = {std::exp(m.x[0]), std::exp(m.x[1]), std::exp(m.x[2])};
  // Spends so heavy-tailed that the likeliest q is at most 1: the expected
  // spend does not exist under that model, so there is no usable fit (a
  // model that every prediction would refuse).
  if (!(fit.params.q > 1)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Gamma-Gamma fit puts q at ", fit.params.q,
        ", not above 1: these customers' spends are too heavy-tailed for an "
        "expected spend"));
  }
  fit.log_likelihood = Evaluate(fit.params, data, false).ll;
  fit.customers = static_cast<int64_t>(data.total_weight);
  fit.excluded_nonpositive = data.excluded;
  fit.evaluations = m.evaluations;
  return fit;
}

double ConditionalExpectedSpend(const GammaGammaParams& prm,
                                const CustomerSummary& c) {
  const bool usable = c.x > 0 && c.avg_repeat_spend > 0;
  const double x = usable ? static_cast<double>(c.x) : 0.0;
  const double m = usable ? c.avg_repeat_spend : 0.0;
  return prm.p * (prm.gamma + x * m) / (prm.p * x + prm.q - 1.0);
}

absl::Status ValidateClvOptions(const ClvOptions& o) {
  if (o.horizon_months < 1 || o.horizon_months > 120) {
    return absl::InvalidArgumentError(absl::StrCat(
        "horizon_months: must be in 1..120, got ", o.horizon_months));
  }
  if (!(o.monthly_discount >= 0 && o.monthly_discount < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "monthly_discount: must be in [0, 1), got ", o.monthly_discount));
  }
  if (o.unit != TimeUnit::kDay && o.unit != TimeUnit::kWeek) {
    return absl::InvalidArgumentError("unit: must be day or week");
  }
  if (!(o.purchases_horizon >= 0) || !std::isfinite(o.purchases_horizon)) {
    return absl::InvalidArgumentError(
        "purchases_horizon: must be finite and >= 0");
  }
  return absl::OkStatus();
}

double CustomerLifetimeValue(const BgNbdParams& bg, const GammaGammaParams& gg,
                             const CustomerSummary& customer,
                             const ClvOptions& options) {
  const double spend = ConditionalExpectedSpend(gg, customer);
  const double f = UnitsPerMonth(options.unit);
  double previous = 0, discount = 1, total = 0;
  for (int i = 1; i <= options.horizon_months; ++i) {
    discount /= 1.0 + options.monthly_discount;
    const double current = ConditionalExpectedPurchases(bg, i * f, customer);
    total += spend * (current - previous) * discount;
    previous = current;
  }
  return total;
}

absl::StatusOr<std::vector<CustomerPrediction>> PredictCustomers(
    const BgNbdParams& bg, const GammaGammaParams& gg,
    absl::Span<const CustomerSummary> customers, const ClvOptions& options) {
  RAPPORT_RETURN_IF_ERROR(ValidateBgNbdParams(bg));
  RAPPORT_RETURN_IF_ERROR(ValidateGammaGammaParams(gg));
  RAPPORT_RETURN_IF_ERROR(ValidateClvOptions(options));
  RAPPORT_RETURN_IF_ERROR(ValidateSummaries(customers));
  // Identical customers are computed once.
  using Key = std::tuple<int64_t, double, double, double>;
  absl::flat_hash_map<Key, uint32_t> index;
  std::vector<uint32_t> slot(customers.size());
  std::vector<const CustomerSummary*> distinct;
  for (size_t i = 0; i < customers.size(); ++i) {
    const CustomerSummary& c = customers[i];
    auto [it, inserted] = index.try_emplace(
        Key{c.x, c.t_x, c.T, c.x > 0 ? c.avg_repeat_spend : 0.0},
        static_cast<uint32_t>(distinct.size()));
    if (inserted) distinct.push_back(&c);
    slot[i] = it->second;
  }
  std::vector<CustomerPrediction> unique(distinct.size());
  auto compute = [&](size_t begin, size_t end) {
    for (size_t k = begin; k < end; ++k) {
      const CustomerSummary& c = *distinct[k];
      CustomerPrediction& p = unique[k];
      p.probability_alive = ProbabilityAlive(bg, c);
      p.expected_purchases =
          ConditionalExpectedPurchases(bg, options.purchases_horizon, c);
      p.expected_spend = ConditionalExpectedSpend(gg, c);
      p.clv = CustomerLifetimeValue(bg, gg, c, options);
    }
  };
  const size_t n = distinct.size();
  if (n < 256) {
    compute(0, n);
  } else {
    std::thread t([&] { compute(n / 2, n); });
    compute(0, n / 2);
    t.join();
  }
  std::vector<CustomerPrediction> out(customers.size());
  for (size_t i = 0; i < customers.size(); ++i) out[i] = unique[slot[i]];
  return out;
}

}  // namespace rapport::scoring
