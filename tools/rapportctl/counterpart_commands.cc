#include "tools/rapportctl/counterpart_commands.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/decimal.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "rapport/common/v1/differentiation.pb.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace cv1 = ::rapport::common::v1;

absl::Status Missing(const std::string& name) {
  return absl::InvalidArgumentError(absl::StrCat("--", name, " is required"));
}

// "YYYY-MM-DD" exactly: its digits, and a day that the month has (checked by
// the RFC 3339 parser, which knows February 30 from March 1).
bool IsDate(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return false;
  for (int i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(text[i]))) {
      return false;
    }
  }
  return ParseRfc3339Micros(absl::StrCat(text, "T00:00:00Z")).ok();
}

}  // namespace

std::string EnumText(absl::string_view name, absl::string_view prefix) {
  if (name.size() <= prefix.size()) return "";
  return absl::AsciiStrToLower(name.substr(prefix.size()));
}

std::string TierText(int tier) {
  return EnumText(cv1::Tier_Name(static_cast<cv1::Tier>(tier)), "TIER_");
}

std::string TimeText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return FormatRfc3339Micros(t.seconds() * 1'000'000 + t.nanos() / 1000);
}

std::string DateText(const google::type::Date& d) {
  if (d.year() == 0 && d.month() == 0 && d.day() == 0) return "";
  return absl::StrFormat("%04d-%02d-%02d", d.year(), d.month(), d.day());
}

std::string MoneyOrBlank(const google::type::Money& m) {
  if (m.units() == 0 && m.nanos() == 0 && m.currency_code().empty()) return "";
  return MoneyText(m);
}

absl::Status KnownFlags(const Args& args, std::set<std::string> known) {
  known.insert(GlobalFlags().begin(), GlobalFlags().end());
  return args.CheckKnown(known);
}

absl::Status KnownFlags(const Args& args, size_t words,
                        std::set<std::string> known) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, words));
  return KnownFlags(args, std::move(known));
}

absl::Status RequiredFlags(const Args& args,
                           std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (!args.Has(name)) return Missing(name);
  }
  return absl::OkStatus();
}

absl::Status NoMoreWords(const Args& args, size_t at) {
  if (args.positional().size() <= at) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("unexpected argument \"", args.positional()[at], "\""));
}

absl::StatusOr<std::string> IdArgument(const Args& args, size_t at,
                                       const std::string& usage) {
  if (args.positional().size() != at + 1) {
    return absl::InvalidArgumentError(absl::StrCat("want: rapportctl ", usage));
  }
  return args.positional()[at];
}

absl::Status TimeFlag(const Args& args, const std::string& name,
                      google::protobuf::Timestamp* out, bool required) {
  std::optional<std::string> v = args.Get(name);
  if (!v.has_value()) return required ? Missing(name) : absl::OkStatus();
  absl::StatusOr<int64_t> t = ParseRfc3339Micros(*v);
  if (!t.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", t.status().message()));
  }
  *out = ToTimestamp(*t);
  return absl::OkStatus();
}

absl::Status DateFlag(const Args& args, const std::string& name,
                      google::type::Date* out, bool required) {
  std::optional<std::string> v = args.Get(name);
  if (!v.has_value()) return required ? Missing(name) : absl::OkStatus();
  if (!IsDate(*v)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": want a date YYYY-MM-DD, not \"", *v, "\""));
  }
  int year = 0, month = 0, day = 0;
  (void)absl::SimpleAtoi(v->substr(0, 4), &year);
  (void)absl::SimpleAtoi(v->substr(5, 2), &month);
  (void)absl::SimpleAtoi(v->substr(8, 2), &day);
  out->set_year(year);
  out->set_month(month);
  out->set_day(day);
  return absl::OkStatus();
}

absl::Status MoneyFlag(const Args& args, const std::string& name,
                       google::type::Money* out, bool required) {
  std::optional<std::string> v = args.Get(name);
  if (!v.has_value()) return required ? Missing(name) : absl::OkStatus();
  absl::StatusOr<Decimal> d = Decimal::Parse(*v);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, ": ", d.status().message()));
  }
  absl::StatusOr<google::type::Money> m = ToMoney(*d, "", name);
  if (!m.ok()) return m.status();
  *out = *m;
  return absl::OkStatus();
}

absl::Status Int64Flag(const Args& args, const std::string& name, int64_t* out,
                       bool required) {
  std::optional<std::string> v = args.Get(name);
  if (!v.has_value()) return required ? Missing(name) : absl::OkStatus();
  int64_t n = 0;
  if (!absl::SimpleAtoi(*v, &n)) return NotAWholeNumber(name, *v);
  *out = n;
  return absl::OkStatus();
}

absl::Status ContactFlags(
    const Args& args, google::protobuf::RepeatedPtrField<cv1::Contact>* out) {
  for (const std::string& c : args.GetAll("contact")) {
    std::vector<std::string> parts = absl::StrSplit(c, ',');
    if (parts.size() > 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--contact: want NAME[,EMAIL[,PHONE[,ROLE]]], not \"", c, "\""));
    }
    cv1::Contact* contact = out->Add();
    contact->set_name(parts[0]);
    if (parts.size() > 1) contact->set_email(parts[1]);
    if (parts.size() > 2) contact->set_phone(parts[2]);
    if (parts.size() > 3) contact->set_role(parts[3]);
  }
  return absl::OkStatus();
}

absl::Status AttributeFlags(
    const Args& args, google::protobuf::Map<std::string, std::string>* out) {
  for (const std::string& a : args.GetAll("attribute")) {
    if (a.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--attribute: want KEY=VALUE, not \"", a, "\""));
    }
    std::pair<std::string, std::string> kv =
        absl::StrSplit(a, absl::MaxSplits('=', 1));
    (*out)[kv.first] = kv.second;
  }
  return absl::OkStatus();
}

}  // namespace rapport::ctl
