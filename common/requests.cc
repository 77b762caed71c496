#include "common/requests.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_macros.h"
#include "common/ids.h"
#include "common/proto_convert.h"
#include "common/validation.h"

namespace rapport {

std::string RequestFingerprint(const google::protobuf::MessageLite& m,
                               absl::string_view extra) {
  (void)m.ByteSizeLong();  // caches sizes for SerializeWithCachedSizes
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeWithCachedSizes(&coded);
  }
  return Fingerprint(absl::StrCat(bytes, "|", extra));
}

void ClearOutputOnlyFields(google::protobuf::Message* entity) {
  const google::protobuf::Descriptor* d = entity->GetDescriptor();
  const google::protobuf::Reflection* reflection = entity->GetReflection();
  for (const char* name :
       {"id", "create_time", "update_time", "etag", "value", "created_by"}) {
    if (const google::protobuf::FieldDescriptor* f = d->FindFieldByName(name))
      reflection->ClearField(entity, f);
  }
}

std::string EntityFingerprint(const google::protobuf::Message& entity) {
  std::unique_ptr<google::protobuf::Message> copy(entity.New());
  copy->CopyFrom(entity);
  ClearOutputOnlyFields(copy.get());
  return RequestFingerprint(*copy);
}

namespace {

// Names `currency` in every google.type.Money of `m` that names none.
void FillCurrency(google::protobuf::Message* m, const std::string& currency) {
  if (m->GetDescriptor() == google::type::Money::descriptor()) {
    auto* money = static_cast<google::type::Money*>(m);
    if (money->currency_code().empty()) money->set_currency_code(currency);
    return;
  }
  const google::protobuf::Reflection* reflection = m->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(*m, &fields);
  for (const google::protobuf::FieldDescriptor* f : fields) {
    if (f->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE)
      continue;
    if (f->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*m, f); ++i)
        FillCurrency(reflection->MutableRepeatedMessage(m, f, i), currency);
    } else {
      FillCurrency(reflection->MutableMessage(m, f), currency);
    }
  }
}

}  // namespace

std::string RequestFingerprintIn(const std::string& currency,
                                 const google::protobuf::Message& m,
                                 absl::string_view extra) {
  std::unique_ptr<google::protobuf::Message> filled(m.New());
  filled->CopyFrom(m);
  FillCurrency(filled.get(), currency);
  return RequestFingerprint(*filled, extra);
}

absl::Status CheckUpdateMask(const google::protobuf::FieldMask& mask,
                             absl::Span<const absl::string_view> updatable) {
  if (mask.paths_size() == 0) {
    return InvalidField("update_mask", "names no field to update");
  }
  for (const std::string& path : mask.paths()) {
    if (std::find(updatable.begin(), updatable.end(), path) ==
        updatable.end()) {
      const size_t last = updatable.size() - 1;
      return InvalidField(
          "update_mask",
          absl::StrCat("\"", Utf8Prefix(path, 64), "\" cannot be updated; ",
                       absl::StrJoin(updatable.first(last), ", "), " or ",
                       updatable[last], " can"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckNotFuture(int64_t time_us, int64_t now_us,
                            absl::string_view field) {
  if (time_us > now_us + kClockSkewUs) {
    return InvalidField(
        field, absl::StrCat("must not be in the future (more than ",
                            kClockSkewUs / 60'000'000,
                            " minutes ahead of this service's clock)"));
  }
  return absl::OkStatus();
}

absl::Status CheckRequestId(const std::string& request_id) {
  if (request_id.empty()) return absl::OkStatus();
  // A key: MariaDB compares keys without their trailing spaces.
  return CheckKeyText(request_id, "request_id", kMaxRequestIdBytes);
}

absl::Status RequestIdReused(absl::string_view what) {
  return InvalidField("request_id", absl::StrCat("was used before for ", what,
                                                 " that said something else"));
}

std::string EnumRefusal(int value, bool known, absl::string_view allowed) {
  if (value == 0) return absl::StrCat("is required: ", allowed);
  if (!known) {
    return absl::StrCat(value, " is not a known value; it must be ", allowed);
  }
  return absl::StrCat("must be ", allowed);
}

absl::Status CheckId(const std::string& id, absl::string_view field) {
  if (id.empty()) return InvalidField(field, "is required");
  if (!IsValidId(id)) {
    return InvalidField(field, "is not an id (26 characters of base32)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Decimal> ReadAmount(const google::type::Money& money,
                                   absl::string_view field,
                                   const std::string& currency,
                                   bool negative_ok) {
  if (!money.currency_code().empty() && money.currency_code() != currency) {
    return InvalidField(field,
                        absl::StrCat("must be in ", currency, ", not ",
                                     Utf8Prefix(money.currency_code(), 16)));
  }
  RAPPORT_ASSIGN_OR_RETURN(Decimal d, FromMoneyAmount(money, field));
  if (!negative_ok && d.is_negative()) {
    return InvalidField(field, "must not be negative");
  }
  return d;
}

google::type::Money MoneyIn(const Decimal& d, const std::string& currency) {
  absl::StatusOr<google::type::Money> m = ToMoney(d, currency, "amount");
  return m.ok() ? *m : google::type::Money();
}

std::string EtagOf(int64_t version) { return absl::StrCat(version); }

absl::Status CheckEtag(const std::string& given, int64_t version,
                       absl::string_view what, const std::string& id,
                       absl::string_view field) {
  if (given.empty() || given == EtagOf(version)) return absl::OkStatus();
  if (given.size() > 19 ||
      !std::all_of(given.begin(), given.end(), absl::ascii_isdigit)) {
    return InvalidField(std::string(field),
                        "is not an etag this service issued (the number a "
                        "read of the record gives)");
  }
  // Older than the record (changed since it was read) or never its etag:
  // either way, the current one is what a read gives now.
  return absl::AbortedError(absl::StrCat(
      what, " ", id, " is at etag \"", EtagOf(version), "\", not \"", given,
      "\" (changed since that was read, or never its etag); read it again "
      "and retry"));
}

absl::Status EntityNotFound(absl::string_view what, const std::string& id) {
  return absl::NotFoundError(absl::StrCat(what, " ", id, " does not exist"));
}

absl::StatusOr<ListCursor> ReadListCursor(const std::string& key,
                                          bool by_value) {
  ListCursor cursor;
  if (!by_value || key.empty()) {
    cursor.id = key;
    return cursor;
  }
  std::pair<std::string, std::string> parts =
      absl::StrSplit(key, absl::MaxSplits(':', 1));
  int value = 0;
  if (!absl::SimpleAtoi(parts.first, &value)) {
    return InvalidField("page_token", "is not a token this service issued");
  }
  cursor.value_hundredths = value;
  cursor.id = parts.second;
  return cursor;
}

std::string ListCursorKey(bool by_value, int value_hundredths,
                          const std::string& id) {
  return by_value ? absl::StrCat(value_hundredths, ":", id) : id;
}

}  // namespace rapport
