// What the commands on a counterpart service's resources share (partners.cc,
// community.cc): flags for times, dates, money, counts, contacts and
// attributes; enum values by the names people type; and printing one
// resource as a one-row table or as JSON.
//
//   if (absl::Status s = KnownFlags(args, {"member", "date", "price"});
//       !s.ok()) {
//     return UsageError(s);
//   }
//   v1::Holding h;
//   for (absl::Status s : {DateFlag(args, "date", h.mutable_date(), true),
//                          MoneyFlag(args, "price", h.mutable_price(), true)})
//                          {
//     if (!s.ok()) return UsageError(s);
//   }
//   auto kind = ParseEnum<v1::MemberKind>("investor", "MEMBER_KIND_",
//                                         v1::MemberKind_Parse);
//   EnumText(v1::MemberKind_Name(*kind), "MEMBER_KIND_");  // "investor"
//
// Every flag helper answers INVALID_ARGUMENT naming the flag, for
// UsageError; none of them prints.
#ifndef RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_COMMANDS_H_
#define RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_COMMANDS_H_

#include <cstdint>
#include <initializer_list>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"
#include "google/protobuf/repeated_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "google/type/date.pb.h"
#include "google/type/money.pb.h"
#include "rapport/common/v1/common.pb.h"
#include "tools/rapportctl/command.h"

namespace rapport::ctl {

// ---- names

// An enum value's name as people type it: "high_net_worth" for
// "MEMBER_TYPE_HIGH_NET_WORTH" with the prefix "MEMBER_TYPE_"; "" when the
// name is no longer than the prefix.
std::string EnumText(absl::string_view name, absl::string_view prefix);

// The value that `text` (any case) names, `parse` being the enum's generated
// *_Parse; nullopt for an unknown name and for the *_UNSPECIFIED zero, which
// no flag means to set.
template <typename Enum>
std::optional<Enum> ParseEnum(const std::string& text, absl::string_view prefix,
                              bool (*parse)(const std::string&, Enum*)) {
  Enum out;
  if (text.empty() ||
      !parse(
          absl::StrCat(prefix, absl::StrReplaceAll(absl::AsciiStrToUpper(text),
                                                   {{"-", "_"}, {" ", "_"}})),
          &out) ||
      static_cast<int>(out) == 0) {
    return std::nullopt;
  }
  return out;
}

// "gold" for TIER_GOLD: the tier as the --tier flags take it.
std::string TierText(int tier);

// RFC 3339 in UTC; "" for an unset time.
std::string TimeText(const google::protobuf::Timestamp& t);
// "YYYY-MM-DD"; "" for an unset date.
std::string DateText(const google::type::Date& d);
// The exact amount ("12.50"); "" for an unset amount.
std::string MoneyOrBlank(const google::type::Money& m);

// ---- flags

// The flags given that are neither in `known` nor global: a usage error
// naming the first.
absl::Status KnownFlags(const Args& args, std::set<std::string> known);
// The same, for a command of `words` words and flags alone ("partners deals
// list" has 3): an extra word is a usage error quoting it, not ignored.
absl::Status KnownFlags(const Args& args, size_t words,
                        std::set<std::string> known);

// Each of `names` given, else a usage error naming the first missing:
// "--member is required".
absl::Status RequiredFlags(const Args& args,
                           std::initializer_list<const char*> names);

// No positional word after the first `at` ("community register" has none
// after 2), else a usage error quoting the first extra one.
absl::Status NoMoreWords(const Args& args, size_t at);

// The one positional word after the first `at` words ("partners get ID"
// has it at 2), else a usage error quoting `usage`.
absl::StatusOr<std::string> IdArgument(const Args& args, size_t at,
                                       const std::string& usage);

// --name into `out`, left untouched when the flag is absent (an error when
// `required`):
//   TimeFlag: an RFC 3339 time.
//   DateFlag: a calendar date, YYYY-MM-DD.
//   MoneyFlag: an exact decimal amount; the currency is left empty, so the
//     service takes its deployment currency.
//   Int64Flag: a whole number (shares run past 2^31).
absl::Status TimeFlag(const Args& args, const std::string& name,
                      google::protobuf::Timestamp* out, bool required);
absl::Status DateFlag(const Args& args, const std::string& name,
                      google::type::Date* out, bool required);
absl::Status MoneyFlag(const Args& args, const std::string& name,
                       google::type::Money* out, bool required);
absl::Status Int64Flag(const Args& args, const std::string& name, int64_t* out,
                       bool required);

// Each --contact "NAME[,EMAIL[,PHONE[,ROLE]]]", added to `out`; more than
// four parts is INVALID_ARGUMENT naming the flag.
absl::Status ContactFlags(
    const Args& args,
    google::protobuf::RepeatedPtrField<::rapport::common::v1::Contact>* out);
// Each --attribute KEY=VALUE, set in `out`; one without "=" is
// INVALID_ARGUMENT naming the flag.
absl::Status AttributeFlags(
    const Args& args, google::protobuf::Map<std::string, std::string>* out);

// ---- printing

// Prints one message as JSON, else as a one-row `table` filled by `add`.
template <typename Message, typename Add>
int PrintOne(const Context& ctx, const Message& m, Table table, Add add) {
  if (ctx.format == Format::kJson) {
    PrintJson(m, std::cout);
    return kExitOk;
  }
  add(table, m);
  table.Print(ctx.format, std::cout);
  return kExitOk;
}

// Calls `call` and prints `field(response)` with PrintOne; a failed call is
// reported.
//
//   return CallAndPrint<v1::GetMemberResponse>(ctx,
//       [&](auto* call, auto* out) { return stub.GetMember(call, r, out); },
//       [](const auto& r) -> const v1::Member& { return r.member(); },
//       MemberTable(), AddMember);
template <typename Response, typename Call, typename Field, typename Add>
int CallAndPrint(const Context& ctx, Call call, Field field, Table table,
                 Add add) {
  Response response;
  grpc::Status s = call(ctx.NewCall().get(), &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  return PrintOne(ctx, field(response), std::move(table), add);
}

}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_COUNTERPART_COMMANDS_H_
