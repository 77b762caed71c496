// References to customers, partners and members in requests and import rows
// ("ID", "email:...", "phone:...", "ext:SOURCE:ID"), and the email and phone
// normalisation behind them (libphonenumber): any text is parsed or refused
// as INVALID_ARGUMENT; what parses is normalised for good
// (normalising it again changes nothing).
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/identity.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<rapport::EntityRef> ref =
      rapport::ParseEntityRef(text, "customer_ref", "customer", "GB");
  if (!ref.ok()) {
    // Bad input is the caller's error, never an internal one.
    if (ref.status().code() != absl::StatusCode::kInvalidArgument) {
      __builtin_trap();
    }
  } else {
    const int set = !ref->id.empty() + !ref->email.empty() +
                    !ref->phone.empty() + ref->external.has_value();
    if (set != 1) __builtin_trap();
    if (!ref->email.empty()) {
      absl::StatusOr<std::string> again =
          rapport::NormalizeEmail(ref->email, "email");
      if (!again.ok() || *again != ref->email) __builtin_trap();
    }
    if (!ref->phone.empty()) {
      absl::StatusOr<std::string> again =
          rapport::NormalizePhone(ref->phone, "phone", "GB");
      if (!again.ok() || *again != ref->phone) __builtin_trap();
    }
  }
  // The normalisers on their own: refusals are the caller's error, and what
  // they give is normalised for good; and the duplicate key.
  absl::StatusOr<std::string> phone =
      rapport::NormalizePhone(text, "phone", "US");
  if (phone.ok()) {
    absl::StatusOr<std::string> again =
        rapport::NormalizePhone(*phone, "phone", "US");
    if (!again.ok() || *again != *phone) __builtin_trap();
  } else if (phone.status().code() != absl::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  absl::StatusOr<std::string> email = rapport::NormalizeEmail(text, "email");
  if (email.ok()) {
    absl::StatusOr<std::string> again =
        rapport::NormalizeEmail(*email, "email");
    if (!again.ok() || *again != *email) __builtin_trap();
    // Nothing that shows as space or as nothing is left in an address.
    const auto* s = reinterpret_cast<const uint8_t*>(email->data());
    const int32_t n = static_cast<int32_t>(email->size());
    for (int32_t i = 0; i < n;) {
      UChar32 c;
      U8_NEXT(s, i, n, c);
      if (c < 0 || u_isUWhiteSpace(c) || u_iscntrl(c) ||
          u_charType(c) == U_FORMAT_CHAR) {
        __builtin_trap();
      }
    }
    (void)rapport::EmailMatchKey(*email);
  } else if (email.status().code() != absl::StatusCode::kInvalidArgument) {
    __builtin_trap();
  }
  (void)rapport::IsKnownPhoneRegion(text);
  return 0;
}
