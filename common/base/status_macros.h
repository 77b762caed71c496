// Status propagation macros for absl::Status / absl::StatusOr.
//
// Debian's Abseil (20220623) ships no status macros, so Rapport defines its
// own two, used everywhere a function returns absl::Status or absl::StatusOr:
//
//   absl::Status Load(absl::string_view text) {
//     RAPPORT_ASSIGN_OR_RETURN(rapport::Decimal amount,
//                              rapport::Decimal::Parse(text));
//     RAPPORT_RETURN_IF_ERROR(Store(amount));
//     return absl::OkStatus();
//   }
//
// `RAPPORT_RETURN_IF_ERROR(expr)`: evaluates `expr` (an absl::Status) once and
// returns it from the enclosing function if it is not OK.
//
// `RAPPORT_ASSIGN_OR_RETURN(lhs, expr)`: evaluates `expr` (an
// absl::StatusOr<T>) once; on error returns its status, otherwise moves the
// value into `lhs`, which may be a declaration (`auto x`, `const T& y` is not
// allowed: use a value) or an existing variable. `lhs` must not contain
// unparenthesised commas. Expands to more than one statement, so do not use it
// as the sole body of an unbraced `if`.

#ifndef RAPPORT_COMMON_BASE_STATUS_MACROS_H_
#define RAPPORT_COMMON_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RAPPORT_RETURN_IF_ERROR(expr)                     \
  do {                                                    \
    ::absl::Status rapport_status_macro_status_ = (expr); \
    if (!rapport_status_macro_status_.ok()) {             \
      return rapport_status_macro_status_;                \
    }                                                     \
  } while (false)

#define RAPPORT_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define RAPPORT_STATUS_MACROS_CONCAT_(x, y) \
  RAPPORT_STATUS_MACROS_CONCAT_INNER_(x, y)

#define RAPPORT_ASSIGN_OR_RETURN(lhs, expr)                                   \
  RAPPORT_ASSIGN_OR_RETURN_IMPL_(                                             \
      RAPPORT_STATUS_MACROS_CONCAT_(rapport_status_macro_or_, __LINE__), lhs, \
      expr)

#define RAPPORT_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                   \
  if (!statusor.ok()) {                                     \
    return std::move(statusor).status();                    \
  }                                                         \
  lhs = std::move(statusor).value()

#endif  // RAPPORT_COMMON_BASE_STATUS_MACROS_H_
