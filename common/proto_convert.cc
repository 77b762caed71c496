#include "common/proto_convert.h"

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/status.h"

namespace rapport {
namespace {
// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of Timestamp.
constexpr int64_t kMinSeconds = -62135596800;
constexpr int64_t kMaxSeconds = 253402300799;
}  // namespace

absl::StatusOr<Decimal> FromMoney(const google::type::Money& money,
                                  absl::string_view field) {
  absl::StatusOr<Decimal> d =
      Decimal::FromUnitsNanos(money.units(), money.nanos());
  if (!d.ok()) return InvalidField(field, d.status().message());
  return *d;
}

absl::Status CheckAmountMagnitude(const Decimal& amount,
                                  absl::string_view field) {
  const Decimal most = Decimal::FromUnits(kMaxAmountUnits);
  if (amount > most || amount < -most) {
    return InvalidField(field, "must be at most 10^12 in magnitude");
  }
  return absl::OkStatus();
}

absl::StatusOr<Decimal> FromMoneyAmount(const google::type::Money& money,
                                        absl::string_view field) {
  if (money.units() > kMaxAmountUnits || money.units() < -kMaxAmountUnits) {
    return InvalidField(field, "must be at most 10^12 in magnitude");
  }
  RAPPORT_ASSIGN_OR_RETURN(Decimal d, FromMoney(money, field));
  RAPPORT_RETURN_IF_ERROR(CheckAmountMagnitude(d, field));
  return d;
}

absl::StatusOr<google::type::Money> ToMoney(const Decimal& value,
                                            absl::string_view currency,
                                            absl::string_view field) {
  absl::StatusOr<int64_t> units = value.units();
  if (!units.ok())
    return InvalidField(field, "is too large for google.type.Money");
  google::type::Money money;
  money.set_currency_code(std::string(currency));
  money.set_units(*units);
  money.set_nanos(value.nanos());
  return money;
}

absl::StatusOr<int64_t> FromTimestamp(const google::protobuf::Timestamp& t,
                                      absl::string_view field) {
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds) {
    return InvalidField(field, "is outside years 1..9999");
  }
  if (t.nanos() < 0 || t.nanos() > 999'999'999) {
    return InvalidField(field, "nanos must be in 0..999999999");
  }
  if (t.nanos() % 1000 != 0) {
    return InvalidField(field, "must not be finer than a microsecond");
  }
  return t.seconds() * 1'000'000 + t.nanos() / 1000;
}

google::protobuf::Timestamp ToTimestamp(int64_t micros) {
  google::protobuf::Timestamp t;
  int64_t seconds = micros / 1'000'000;
  int64_t rest = micros % 1'000'000;
  if (rest < 0) {
    rest += 1'000'000;
    --seconds;
  }
  t.set_seconds(seconds);
  t.set_nanos(static_cast<int32_t>(rest * 1000));
  return t;
}

}  // namespace rapport
