// Special functions for the BG/NBD and Gamma-Gamma models.
//
//   double f = rapport::scoring::Hyp2F1(0.5, 0.5, 1.5, 0.25);  // asin(.5)/.5
//   double d = rapport::scoring::Digamma(1.0);                  // -0.5772...
//
// Hyp2F1 is the Gauss hypergeometric function 2F1(a, b; c; z) for real
// parameters and z < 1 (z = 1 when c - a - b > 0). It sums the power series
// for 0 <= z <= 0.9, uses Pfaff's transformation z -> z / (z - 1) for z < 0
// and the connection formula in 1 - z for 0.9 < z < 1 (Abramowitz & Stegun
// 15.3.6), with the coefficients in log-gamma form so large parameters do not
// overflow; when c - a - b is within 1e-6 of an integer (where that formula
// degenerates) it averages the values at c +- 1e-5 (relative error about
// 1e-9). Returns NaN where the function is undefined (c a non-positive
// integer, z > 1, divergence at z = 1).

#ifndef RAPPORT_SERVICES_SCORING_ENGINE_SPECIAL_FUNCTIONS_H_
#define RAPPORT_SERVICES_SCORING_ENGINE_SPECIAL_FUNCTIONS_H_

namespace rapport::scoring {

double Hyp2F1(double a, double b, double c, double z);

// psi(x) = d/dx log Gamma(x), for x > 0 (NaN otherwise).
double Digamma(double x);

// ln|Gamma(x)|, as std::lgamma, without writing glibc's global `signgam`
// (std::lgamma does, which makes it unsafe on the fits' threads).
double LnGamma(double x);

// log(exp(a) + exp(b)) without overflow.
double LogAddExp(double a, double b);

}  // namespace rapport::scoring

#endif  // RAPPORT_SERVICES_SCORING_ENGINE_SPECIAL_FUNCTIONS_H_
