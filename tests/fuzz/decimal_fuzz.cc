// Decimal amounts as every API and import reads them: any text parses or is
// refused with an error, never crashes; what parses prints back to a text that
// parses to the same value, and checked arithmetic never overflows silently.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/base/decimal.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<rapport::Decimal> d = rapport::Decimal::Parse(text);
  if (!d.ok()) return 0;
  const std::string printed = d->ToString();
  absl::StatusOr<rapport::Decimal> again = rapport::Decimal::Parse(printed);
  if (!again.ok() || again->raw_nanos() != d->raw_nanos()) __builtin_trap();
  (void)d->ToDouble();
  (void)d->units();
  (void)d->RoundTo2HalfAwayFromZero();
  absl::StatusOr<rapport::Decimal> sum = d->CheckedAdd(*d);
  absl::StatusOr<rapport::Decimal> difference = d->CheckedSub(*d);
  if (!difference.ok() || !difference->is_zero()) __builtin_trap();
  if (sum.ok()) {
    absl::StatusOr<rapport::Decimal> back = sum->CheckedSub(*d);
    if (!back.ok() || back->raw_nanos() != d->raw_nanos()) __builtin_trap();
  }
  return 0;
}
