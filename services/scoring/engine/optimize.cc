#include "services/scoring/engine/optimize.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <nlopt.hpp>
#include <utility>

namespace rapport::scoring::internal {
namespace {

struct Context {
  const SmoothObjective* f;
  MinimizeResult* result;
};

double Thunk(const std::vector<double>& x, std::vector<double>& grad,
             void* data) {
  Context* ctx = static_cast<Context*>(data);
  MinimizeResult& r = *ctx->result;
  ++r.evaluations;
  std::vector<double>* g = grad.empty() ? nullptr : &grad;
  double v = (*ctx->f)(x, g);
  bool ok = std::isfinite(v);
  if (g != nullptr) {
    for (double d : *g) ok = ok && std::isfinite(d);
  }
  if (!ok) {
    // Steer the search away: a huge value with a zero gradient.
    if (g != nullptr) g->assign(g->size(), 0.0);
    return 1e300;
  }
  if (!r.finite || v < r.value) {
    r.finite = true;
    r.value = v;
    r.x = x;
  }
  return v;
}

void Run(nlopt::algorithm algorithm, const SmoothObjective& f,
         std::vector<double> x, double lo, double hi, MinimizeResult* result) {
  Context ctx{&f, result};
  try {
    nlopt::opt opt(algorithm, static_cast<unsigned>(x.size()));
    opt.set_lower_bounds(lo);
    opt.set_upper_bounds(hi);
    opt.set_min_objective(Thunk, &ctx);
    opt.set_ftol_rel(1e-15);
    opt.set_xtol_rel(1e-12);
    opt.set_maxeval(1000);
    double value = 0;
    opt.optimize(x, value);
  } catch (const std::exception& e) {
    // roundoff_limited and friends: the best point seen is kept anyway.
    result->note = e.what();
  }
}

// Solves A d = b (n x n, row-major) by Gaussian elimination with partial
// pivoting; false if singular.
bool Solve(std::vector<double> a, std::vector<double> b, size_t n,
           std::vector<double>* d) {
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t row = col + 1; row < n; ++row) {
      if (std::fabs(a[row * n + col]) > std::fabs(a[pivot * n + col]))
        pivot = row;
    }
    if (a[pivot * n + col] == 0.0) return false;
    for (size_t k = 0; k < n; ++k) std::swap(a[col * n + k], a[pivot * n + k]);
    std::swap(b[col], b[pivot]);
    for (size_t row = col + 1; row < n; ++row) {
      const double factor = a[row * n + col] / a[col * n + col];
      for (size_t k = col; k < n; ++k)
        a[row * n + k] -= factor * a[col * n + k];
      b[row] -= factor * b[col];
    }
  }
  d->assign(n, 0.0);
  for (size_t i = n; i-- > 0;) {
    double s = b[i];
    for (size_t k = i + 1; k < n; ++k) s -= a[i * n + k] * (*d)[k];
    (*d)[i] = s / a[i * n + i];
  }
  return true;
}

// Newton steps with a Hessian from central differences of the gradient;
// each step is taken only if it lowers the objective.
void NewtonPolish(const SmoothObjective& f, double lo, double hi,
                  MinimizeResult* result) {
  const size_t n = result->x.size();
  std::vector<double> grad(n), gp(n), gm(n), h(n * n), step;
  for (int iter = 0; iter < 6; ++iter) {
    std::vector<double> x = result->x;
    f(x, &grad);
    ++result->evaluations;
    for (size_t j = 0; j < n; ++j) {
      const double eps = 1e-5 * std::max(1.0, std::fabs(x[j]));
      std::vector<double> xp = x, xm = x;
      xp[j] += eps;
      xm[j] -= eps;
      f(xp, &gp);
      f(xm, &gm);
      result->evaluations += 2;
      for (size_t i = 0; i < n; ++i) h[i * n + j] = (gp[i] - gm[i]) / (2 * eps);
    }
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = i + 1; j < n; ++j) {
        const double s = 0.5 * (h[i * n + j] + h[j * n + i]);
        h[i * n + j] = h[j * n + i] = s;
      }
    }
    std::vector<double> minus_grad(n);
    for (size_t i = 0; i < n; ++i) minus_grad[i] = -grad[i];
    if (!Solve(h, minus_grad, n, &step)) return;
    std::vector<double> candidate = x;
    for (size_t i = 0; i < n; ++i) {
      candidate[i] = std::min(hi, std::max(lo, x[i] + step[i]));
    }
    const double before = result->value;
    const double value = f(candidate, nullptr);
    ++result->evaluations;
    if (!std::isfinite(value) || value >= before) return;
    result->value = value;
    result->x = candidate;
  }
}

}  // namespace

MinimizeResult MinimizeSmooth(const SmoothObjective& f, std::vector<double> x0,
                              double lo, double hi) {
  MinimizeResult result;
  for (double& v : x0) v = std::min(hi, std::max(lo, v));
  result.x = x0;
  double previous = std::numeric_limits<double>::infinity();
  for (int round = 0; round < 8; ++round) {
    Run(nlopt::LD_LBFGS, f, result.finite ? result.x : x0, lo, hi, &result);
    if (!result.finite) break;
    if (previous - result.value <= 1e-14 * std::fabs(result.value)) break;
    previous = result.value;
  }
  if (!result.finite) return result;
  NewtonPolish(f, lo, hi, &result);
  return result;
}

}  // namespace rapport::scoring::internal
