// Conversions between Rapport's exact types and their protobuf forms.
//
//   RAPPORT_ASSIGN_OR_RETURN(Decimal amount, FromMoney(p.amount(),
//   "purchase.amount")); *p.mutable_amount() = ToMoney(amount, "USD");
#ifndef RAPPORT_COMMON_PROTO_CONVERT_H_
#define RAPPORT_COMMON_PROTO_CONVERT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/type/money.pb.h"

namespace rapport {

// google.type.Money -> Decimal; INVALID_ARGUMENT naming `field` when units and
// nanos disagree in sign or nanos is out of range.
absl::StatusOr<Decimal> FromMoney(const google::type::Money& money,
                                  absl::string_view field);
// The largest amount, in magnitude, that a service stores (a purchase, a
// cost, a deal, a price): far above any real one, and small enough that an
// entity's sum of a million of them still scores (the scoring service takes
// sums below 10^18) and is answered as a google.type.Money.
inline constexpr int64_t kMaxAmountUnits = 1'000'000'000'000;  // 10^12
// INVALID_ARGUMENT naming `field` when |amount| is above kMaxAmountUnits.
absl::Status CheckAmountMagnitude(const Decimal& amount,
                                  absl::string_view field);
// FromMoney for an amount a service stores, checked by CheckAmountMagnitude.
absl::StatusOr<Decimal> FromMoneyAmount(const google::type::Money& money,
                                        absl::string_view field);
// Decimal -> google.type.Money; INVALID_ARGUMENT naming `field` when the value
// does not fit (more than 9 decimals cannot happen: Decimal holds nanos).
absl::StatusOr<google::type::Money> ToMoney(const Decimal& value,
                                            absl::string_view currency,
                                            absl::string_view field);

// Timestamp -> microseconds since the epoch; INVALID_ARGUMENT naming `field`
// when out of range or finer than a microsecond.
absl::StatusOr<int64_t> FromTimestamp(const google::protobuf::Timestamp& t,
                                      absl::string_view field);
google::protobuf::Timestamp ToTimestamp(int64_t micros);

}  // namespace rapport

#endif  // RAPPORT_COMMON_PROTO_CONVERT_H_
