// Internal: a small NLopt driver shared by the model fits. Not part of the
// engine's public API.
//
//   std::vector<double> x = {0, 0};
//   MinimizeResult m = MinimizeSmooth(
//       [](const std::vector<double>& x, std::vector<double>* grad) {
//         if (grad) *grad = {2 * x[0], 2 * (x[1] - 1)};
//         return x[0] * x[0] + (x[1] - 1) * (x[1] - 1);
//       },
//       x, -25, 25);

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_OPTIMIZE_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_OPTIMIZE_H_

#include <functional>
#include <string>
#include <vector>

namespace rapport::scoring::internal {

// Objective value at x; fills *grad (same size as x) when grad is not null.
using SmoothObjective = std::function<double(const std::vector<double>& x,
                                             std::vector<double>* grad)>;

struct MinimizeResult {
  std::vector<double> x;  // best point seen
  double value = 0;       // objective there
  int evaluations = 0;
  bool finite = false;  // false if no finite value was ever seen
  std::string note;     // last NLopt exception message, if any
};

// Minimises with L-BFGS (analytic gradient) inside the box [lo, hi]^n,
// restarting from the best point until a restart no longer improves, then
// polishes with Newton steps (Hessian by central differences of the
// gradient), each kept only if it lowers the objective. Never throws.
MinimizeResult MinimizeSmooth(const SmoothObjective& f, std::vector<double> x0,
                              double lo, double hi);

}  // namespace rapport::scoring::internal

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_OPTIMIZE_H_
