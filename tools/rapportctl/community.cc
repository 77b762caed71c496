// rapportctl community ...: the financial community (shareholders, investors
// and analysts), its holdings register, engagements and analysts' coverage,
// imports, scores, whom to meet next and who may sell, on the
// financial-community service ($RAPPORT_COMMUNITY_ADDR, default
// localhost:50053).
#include <google/protobuf/util/message_differencer.h>

#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/status_macros.h"
#include "common/status.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterpart_scores.h"
#include "tools/rapportctl/csv_input.h"
#include "tools/rapportctl/file_import.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::financial_community::v1;
namespace cv1 = ::rapport::common::v1;
using Stub = v1::FinancialCommunityService::Stub;

constexpr char kImportUsage[] =
    "want: rapportctl community import holdings|engagements|coverage "
    "FILE.csv [--import-id ID] [--batch-rows N] [--streams N]";

// ---- names
// ---------------------------------------------------------------------

// How one of the API's enums is typed on the command line.
template <typename Enum>
struct Spelling {
  const char* prefix;                        // "MEMBER_KIND_"
  bool (*parse)(const std::string&, Enum*);  // v1::MemberKind_Parse
  const char* want;                          // the names, for errors
};

constexpr Spelling<v1::MemberKind> kKinds{"MEMBER_KIND_", v1::MemberKind_Parse,
                                          "shareholder, investor or analyst"};
constexpr Spelling<v1::MemberType> kTypes{
    "MEMBER_TYPE_", v1::MemberType_Parse,
    "institutional, retail, high_net_worth, sell_side or buy_side"};
constexpr Spelling<v1::EngagementKind> kEngagementKinds{
    "ENGAGEMENT_KIND_", v1::EngagementKind_Parse,
    "meeting, call, roadshow, conference, earnings_call or report_sent"};
constexpr Spelling<v1::Rating> kRatings{"RATING_", v1::Rating_Parse,
                                        "buy, hold, sell or dropped"};

// --name as a value of the enum `spelling` describes; a usage error when it
// is absent or names none.
template <typename Enum>
absl::StatusOr<Enum> EnumFlag(const Args& args, const std::string& name,
                              const Spelling<Enum>& spelling) {
  std::optional<std::string> v = args.Get(name);
  if (!v.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " is required: want ", spelling.want));
  }
  std::optional<Enum> e = ParseEnum<Enum>(*v, spelling.prefix, spelling.parse);
  if (!e.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", name, ": want ", spelling.want, ", not \"", *v, "\""));
  }
  return *e;
}

std::string KindText(v1::MemberKind k) {
  return EnumText(v1::MemberKind_Name(k), kKinds.prefix);
}
// Blank for a member of no type (the type is optional).
std::string TypeText(v1::MemberType t) {
  if (t == v1::MEMBER_TYPE_UNSPECIFIED) return "";
  return EnumText(v1::MemberType_Name(t), kTypes.prefix);
}
std::string EngagementKindText(v1::EngagementKind k) {
  return EnumText(v1::EngagementKind_Name(k), kEngagementKinds.prefix);
}
// Blank for a rating the service has not mapped (its text says it).
std::string RatingText(v1::Rating r) {
  if (r == v1::RATING_UNSPECIFIED) return "";
  return EnumText(v1::Rating_Name(r), kRatings.prefix);
}

// A factor of a target's score, as people compare them.
std::string FactorText(double x) { return absl::StrFormat("%.3f", x); }

// ---- tables
// --------------------------------------------------------------------

Table MemberTable() {
  return Table({"id", "display_name", "kind", "type", "organisation",
                "external_ids", "etag", "segment", "value", "tier"});
}

void AddMember(Table& t, const v1::Member& m) {
  std::string ids;
  for (const cv1::ExternalId& e : m.external_ids()) {
    absl::StrAppend(&ids, ids.empty() ? "" : " ", e.source(), ":", e.id());
  }
  t.AddRow({m.id(), m.display_name(), KindText(m.kind()), TypeText(m.type()),
            m.organisation(), ids, m.etag(),
            m.has_value() ? m.value().segment() : "",
            m.has_value() ? ValueText(m.value().value_hundredths()) : "",
            m.has_value() ? TierText(m.value().tier()) : ""});
}

Table HoldingTable() {
  return Table({"id", "member_id", "security", "date", "shares", "price",
                "recorded_by"});
}

void AddHolding(Table& t, const v1::Holding& h) {
  t.AddRow({h.id(), h.member_id(), h.security(), DateText(h.date()),
            absl::StrCat(h.shares()), MoneyOrBlank(h.price()),
            h.recorded_by()});
}

Table EngagementTable() {
  return Table({"id", "engagement_id", "member_id", "kind", "time", "cost",
                "outcome", "note", "recorded_by"});
}

void AddEngagement(Table& t, const v1::Engagement& e) {
  t.AddRow({e.id(), e.engagement_id(), e.member_id(),
            EngagementKindText(e.kind()), TimeText(e.time()),
            MoneyOrBlank(e.cost()), e.outcome(), e.note(), e.recorded_by()});
}

Table CoverageTable() {
  return Table({"member_id", "security", "date", "rating", "rating_text",
                "target_price", "recorded_by"});
}

void AddCoverage(Table& t, const v1::Coverage& c) {
  t.AddRow({c.member_id(), c.security(), DateText(c.date()),
            RatingText(c.rating()), c.rating_text(),
            MoneyOrBlank(c.target_price()), c.recorded_by()});
}

// ---- members
// -------------------------------------------------------------------

// The member's fields that flags give, and their update_mask paths.
absl::Status MemberFields(const Args& args, v1::Member* m,
                          std::vector<std::string>* paths) {
  if (auto v = args.Get("display-name")) {
    m->set_display_name(*v);
    paths->push_back("display_name");
  }
  if (args.Has("kind")) {
    RAPPORT_ASSIGN_OR_RETURN(v1::MemberKind kind,
                             EnumFlag(args, "kind", kKinds));
    m->set_kind(kind);
    paths->push_back("kind");
  }
  if (args.Has("type")) {
    RAPPORT_ASSIGN_OR_RETURN(v1::MemberType type,
                             EnumFlag(args, "type", kTypes));
    m->set_type(type);
    paths->push_back("type");
  }
  if (auto v = args.Get("organisation")) {
    m->set_organisation(*v);
    paths->push_back("organisation");
  }
  if (args.Has("external-id")) {
    RAPPORT_RETURN_IF_ERROR(ExternalIdFlags(args, m->mutable_external_ids()));
    paths->push_back("external_ids");
  }
  if (args.Has("contact")) {
    RAPPORT_RETURN_IF_ERROR(ContactFlags(args, m->mutable_contacts()));
    paths->push_back("contacts");
  }
  if (args.Has("attribute")) {
    RAPPORT_RETURN_IF_ERROR(AttributeFlags(args, m->mutable_attributes()));
    paths->push_back("attributes");
  }
  return absl::OkStatus();
}

// The member of a response, for CallAndPrint.
constexpr auto kMemberOf = [](const auto& r) -> const v1::Member& {
  return r.member();
};

int CreateMember(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(
          args, {"display-name", "kind", "type", "organisation", "external-id",
                 "contact", "attribute", "request-id"});
      !s.ok()) {
    return UsageError(s);
  }
  if (!args.Has("display-name") || !args.Has("kind") ||
      !NoMoreWords(args, 2).ok()) {
    return UsageError(
        "want: rapportctl community create --display-name N --kind "
        "shareholder|investor|analyst [--type T] [--organisation O] "
        "[--external-id SOURCE:ID]... [--request-id R]",
        "");
  }
  v1::CreateMemberRequest request;
  std::vector<std::string> paths;
  if (absl::Status s = MemberFields(args, request.mutable_member(), &paths);
      !s.ok()) {
    return UsageError(s);
  }
  request.set_request_id(args.GetOr("request-id", ""));
  return CallAndPrint<v1::CreateMemberResponse>(
      ctx,
      [&](auto* call, auto* out) {
        return stub.CreateMember(call, request, out);
      },
      kMemberOf, MemberTable(), AddMember);
}

int GetMember(Context& ctx, Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {}); !s.ok()) return UsageError(s);
  absl::StatusOr<std::string> id = IdArgument(ctx.args, 2, "community get ID");
  if (!id.ok()) return UsageError(id.status());
  v1::GetMemberRequest request;
  request.set_id(*id);
  return CallAndPrint<v1::GetMemberResponse>(
      ctx,
      [&](auto* call, auto* out) { return stub.GetMember(call, request, out); },
      kMemberOf, MemberTable(), AddMember);
}

int UpdateMember(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s =
          KnownFlags(args, {"display-name", "kind", "type", "organisation",
                            "external-id", "contact", "attribute", "etag"});
      !s.ok()) {
    return UsageError(s);
  }
  absl::StatusOr<std::string> id =
      IdArgument(args, 2,
                 "community update ID [--display-name N] [--kind K] [--type T] "
                 "[--organisation O] [--external-id SOURCE:ID]... [--etag E]");
  if (!id.ok()) return UsageError(id.status());
  v1::UpdateMemberRequest request;
  std::vector<std::string> paths;
  if (absl::Status s = MemberFields(args, request.mutable_member(), &paths);
      !s.ok()) {
    return UsageError(s);
  }
  request.mutable_member()->set_id(*id);
  request.mutable_member()->set_etag(args.GetOr("etag", ""));
  for (const std::string& p : paths) {
    request.mutable_update_mask()->add_paths(p);
  }
  return CallAndPrint<v1::UpdateMemberResponse>(
      ctx,
      [&](auto* call, auto* out) {
        return stub.UpdateMember(call, request, out);
      },
      kMemberOf, MemberTable(), AddMember);
}

int DeleteMember(Context& ctx, Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {"etag", "force", "allow-missing"});
      !s.ok()) {
    return UsageError(s);
  }
  absl::StatusOr<std::string> id =
      IdArgument(ctx.args, 2,
                 "community delete ID [--etag E] [--force] [--allow-missing]");
  if (!id.ok()) return UsageError(id.status());
  v1::DeleteMemberRequest request;
  request.set_id(*id);
  request.set_etag(ctx.args.GetOr("etag", ""));
  request.set_force(ctx.args.Has("force"));
  request.set_allow_missing(ctx.args.Has("allow-missing"));
  v1::DeleteMemberResponse response;
  grpc::Status s = stub.DeleteMember(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  PrintDeleted(ctx.format, "member", *id, ctx.args.Has("allow-missing"),
               std::cout);
  return kExitOk;
}

// The filters and order of `community list`.
absl::Status ListMembersRequestOf(const Args& args,
                                  v1::ListMembersRequest* request) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, 2));
  if (args.Has("kind")) {
    RAPPORT_ASSIGN_OR_RETURN(v1::MemberKind kind,
                             EnumFlag(args, "kind", kKinds));
    request->set_kind(kind);
  }
  if (auto t = args.Get("tier")) {
    std::optional<cv1::Tier> tier = ParseTier(*t);
    if (!tier) {
      return absl::InvalidArgumentError(
          "--tier: want lead, iron, gold or platinum");
    }
    request->set_tier(*tier);
  }
  request->set_segment(args.GetOr("segment", ""));
  const std::string order = args.GetOr("order-by", "");
  if (order != "" && order != "value" && order != "id") {
    return absl::InvalidArgumentError("--order-by: want value or id");
  }
  request->set_order_by(order == "value" ? "value" : "");
  RAPPORT_ASSIGN_OR_RETURN(int size, IntFlag(args, "page-size", 0));
  request->set_page_size(size);
  return absl::OkStatus();
}

int ListMembers(Context& ctx, Stub& stub) {
  if (absl::Status s =
          KnownFlags(ctx.args, {"kind", "tier", "segment", "order-by",
                                "page-size", "page-token", "all"});
      !s.ok()) {
    return UsageError(s);
  }
  v1::ListMembersRequest request;
  if (absl::Status s = ListMembersRequestOf(ctx.args, &request); !s.ok()) {
    return UsageError(s);
  }
  v1::ListMembersResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](auto* call, const auto& r, auto* out) {
            return stub.ListMembers(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t = MemberTable();
  for (const v1::Member& m : all.members()) AddMember(t, m);
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

int IdentifyMember(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(args, {"external-id", "contact-email",
                                         "display-name", "kind", "request-id"});
      !s.ok()) {
    return UsageError(s);
  }
  if (absl::Status s = NoMoreWords(args, 2); !s.ok()) return UsageError(s);
  v1::IdentifyMemberRequest request;
  if (absl::Status s = ExternalIdFlags(args, request.mutable_external_ids());
      !s.ok()) {
    return UsageError(s);
  }
  request.set_contact_email(args.GetOr("contact-email", ""));
  if (request.external_ids().empty() && request.contact_email().empty()) {
    return UsageError("give --external-id SOURCE:ID or --contact-email", "");
  }
  request.set_display_name(args.GetOr("display-name", ""));
  if (args.Has("kind")) {
    absl::StatusOr<v1::MemberKind> kind = EnumFlag(args, "kind", kKinds);
    if (!kind.ok()) return UsageError(kind.status());
    request.set_kind(*kind);
  }
  request.set_request_id(args.GetOr("request-id", ""));
  v1::IdentifyMemberResponse response;
  grpc::Status s = stub.IdentifyMember(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);  // "created" with the member, for scripts
    return kExitOk;
  }
  if (response.created()) std::cerr << "rapportctl: created the member\n";
  return PrintOne(ctx, response.member(), MemberTable(), AddMember);
}

int Duplicates(Context& ctx, Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {"page-token", "all"}); !s.ok()) {
    return UsageError(s);
  }
  if (absl::Status s = NoMoreWords(ctx.args, 2); !s.ok()) return UsageError(s);
  v1::FindDuplicateMembersResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, v1::FindDuplicateMembersRequest(),
          [&](auto* call, const auto& r, auto* out) {
            return stub.FindDuplicateMembers(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t({"reason", "key", "member_ids"});
  for (const v1::DuplicateMemberGroup& g : all.groups()) {
    t.AddRow({g.reason(), g.key(), absl::StrJoin(g.member_ids(), " ")});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

// ---- holdings, engagements and coverage
// ------------------------------------------------

// The words after "community holdings|engagements|coverage".
std::string SubVerb(const Args& args) {
  return args.positional().size() > 2 ? args.positional()[2] : "";
}

absl::Status RecordHoldingRequestOf(const Args& args,
                                    v1::RecordHoldingRequest* request) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, 3));
  RAPPORT_RETURN_IF_ERROR(
      RequiredFlags(args, {"member", "security", "date", "shares", "price"}));
  v1::Holding* h = request->mutable_holding();
  h->set_member_id(args.GetOr("member", ""));
  h->set_security(args.GetOr("security", ""));
  RAPPORT_RETURN_IF_ERROR(DateFlag(args, "date", h->mutable_date(), true));
  int64_t shares = 0;
  RAPPORT_RETURN_IF_ERROR(Int64Flag(args, "shares", &shares, true));
  h->set_shares(shares);
  RAPPORT_RETURN_IF_ERROR(MoneyFlag(args, "price", h->mutable_price(), true));
  request->set_request_id(args.GetOr("request-id", ""));
  return absl::OkStatus();
}

int Holdings(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::string verb = SubVerb(args);
  if (verb == "record") {
    if (absl::Status s = KnownFlags(args, {"member", "security", "date",
                                           "shares", "price", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::RecordHoldingRequest request;
    if (absl::Status s = RecordHoldingRequestOf(args, &request); !s.ok()) {
      return UsageError(s);
    }
    return CallAndPrint<v1::RecordHoldingResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.RecordHolding(call, request, out);
        },
        [](const auto& r) -> const v1::Holding& { return r.holding(); },
        HoldingTable(), AddHolding);
  }
  if (verb == "history") {
    if (absl::Status s = KnownFlags(
            args, {"member", "security", "page-size", "page-token", "all"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListPositionHistoryRequest request;
    for (absl::Status s :
         {NoMoreWords(args, 3), RequiredFlags(args, {"member"})}) {
      if (!s.ok()) return UsageError(s);
    }
    request.set_member_id(args.GetOr("member", ""));
    request.set_security(args.GetOr("security", ""));
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListPositionHistoryResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListPositionHistory(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = HoldingTable();
    for (const v1::Holding& h : all.holdings()) AddHolding(t, h);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError("want: rapportctl community holdings record|history ...",
                    "");
}

absl::Status LogEngagementRequestOf(const Args& args,
                                    v1::LogEngagementRequest* request) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, 3));
  RAPPORT_RETURN_IF_ERROR(RequiredFlags(args, {"member", "kind", "time"}));
  for (const std::string& m : args.GetAll("member")) {
    request->add_member_ids(m);
  }
  RAPPORT_ASSIGN_OR_RETURN(v1::EngagementKind kind,
                           EnumFlag(args, "kind", kEngagementKinds));
  request->set_kind(kind);
  RAPPORT_RETURN_IF_ERROR(
      TimeFlag(args, "time", request->mutable_time(), true));
  RAPPORT_RETURN_IF_ERROR(
      MoneyFlag(args, "cost", request->mutable_cost(), true));
  request->set_outcome(args.GetOr("outcome", ""));
  request->set_note(args.GetOr("note", ""));
  request->set_request_id(args.GetOr("request-id", ""));
  return absl::OkStatus();
}

int Engagements(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::string verb = SubVerb(args);
  if (verb == "log") {
    if (absl::Status s = KnownFlags(args, {"member", "kind", "time", "cost",
                                           "outcome", "note", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::LogEngagementRequest request;
    if (absl::Status s = LogEngagementRequestOf(args, &request); !s.ok()) {
      return UsageError(s);
    }
    v1::LogEngagementResponse response;
    grpc::Status s =
        stub.LogEngagement(ctx.NewCall().get(), request, &response);
    if (!s.ok()) return ReportError(FromGrpcStatus(s));
    if (ctx.format == Format::kJson) {
      PrintJson(response, std::cout);
      return kExitOk;
    }
    Table t = EngagementTable();
    for (const v1::Engagement& e : response.engagements()) AddEngagement(t, e);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  if (verb == "list") {
    if (absl::Status s =
            KnownFlags(args, {"member", "page-size", "page-token", "all"});
        !s.ok()) {
      return UsageError(s);
    }
    for (absl::Status s :
         {NoMoreWords(args, 3), RequiredFlags(args, {"member"})}) {
      if (!s.ok()) return UsageError(s);
    }
    v1::ListEngagementsRequest request;
    request.set_member_id(args.GetOr("member", ""));
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListEngagementsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListEngagements(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = EngagementTable();
    for (const v1::Engagement& e : all.engagements()) AddEngagement(t, e);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError("want: rapportctl community engagements log|list ...", "");
}

absl::Status RecordCoverageRequestOf(const Args& args,
                                     v1::RecordCoverageRequest* request) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, 3));
  RAPPORT_RETURN_IF_ERROR(
      RequiredFlags(args, {"member", "security", "date", "rating"}));
  v1::Coverage* c = request->mutable_coverage();
  c->set_member_id(args.GetOr("member", ""));
  c->set_security(args.GetOr("security", ""));
  RAPPORT_RETURN_IF_ERROR(DateFlag(args, "date", c->mutable_date(), true));
  // buy, hold or sell is the rating; an analyst's own word ("outperform")
  // goes as the rating's text, for the service to map by its scale.
  const std::string rating = args.GetOr("rating", "");
  if (std::optional<v1::Rating> r =
          ParseEnum<v1::Rating>(rating, kRatings.prefix, kRatings.parse)) {
    c->set_rating(*r);
  } else {
    c->set_rating_text(rating);
  }
  RAPPORT_RETURN_IF_ERROR(
      MoneyFlag(args, "target-price", c->mutable_target_price(), false));
  if (!args.Has("target-price")) c->clear_target_price();  // none given
  request->set_request_id(args.GetOr("request-id", ""));
  return absl::OkStatus();
}

int Coverage(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (SubVerb(args) != "record") {
    return UsageError("want: rapportctl community coverage record ...", "");
  }
  if (absl::Status s = KnownFlags(args, {"member", "security", "date", "rating",
                                         "target-price", "request-id"});
      !s.ok()) {
    return UsageError(s);
  }
  v1::RecordCoverageRequest request;
  if (absl::Status s = RecordCoverageRequestOf(args, &request); !s.ok()) {
    return UsageError(s);
  }
  return CallAndPrint<v1::RecordCoverageResponse>(
      ctx,
      [&](auto* call, auto* out) {
        return stub.RecordCoverage(call, request, out);
      },
      [](const auto& r) -> const v1::Coverage& { return r.coverage(); },
      CoverageTable(), AddCoverage);
}

// ---- the register and the consensus
// ----------------------------------------------------

int Register(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(
          args, {"as-of", "security", "page-size", "page-token", "all"});
      !s.ok()) {
    return UsageError(s);
  }
  v1::GetRegisterRequest request;
  for (absl::Status s :
       {NoMoreWords(args, 2),
        DateFlag(args, "as-of", request.mutable_as_of(), false)}) {
    if (!s.ok()) return UsageError(s);
  }
  if (!args.Has("as-of")) request.clear_as_of();  // the service's today
  request.set_security(args.GetOr("security", ""));
  absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
  if (!size.ok()) return UsageError(size.status());
  request.set_page_size(*size);
  v1::GetRegisterResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](auto* call, const auto& r, auto* out) {
            return stub.GetRegister(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t({"member_id", "display_name", "security", "date", "shares", "price",
           "market_value"});
  for (const v1::Position& p : all.positions()) {
    t.AddRow({p.member_id(), p.display_name(), p.security(), DateText(p.date()),
              absl::StrCat(p.shares()), MoneyOrBlank(p.price()),
              MoneyOrBlank(p.market_value())});
  }
  t.Print(ctx.format, std::cout);
  // The totals are of the whole register, whatever the page: for people
  // only, so that CSV stays one table.
  if (ctx.format == Format::kTable) {
    std::cout << "holders: " << all.holders()
              << "  total market value: " << MoneyText(all.total_market_value())
              << "\n";
  }
  return kExitOk;
}

int Changes(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(
          args, {"from", "to", "security", "page-size", "page-token", "all"});
      !s.ok()) {
    return UsageError(s);
  }
  v1::ListPositionChangesRequest request;
  for (absl::Status s : {NoMoreWords(args, 2),
                         DateFlag(args, "from", request.mutable_from(), true),
                         DateFlag(args, "to", request.mutable_to(), true)}) {
    if (!s.ok()) return UsageError(s);
  }
  request.set_security(args.GetOr("security", ""));
  absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
  if (!size.ok()) return UsageError(size.status());
  request.set_page_size(*size);
  v1::ListPositionChangesResponse all;
  if (std::optional<int> done = FetchForListing(
          ctx, request,
          [&](auto* call, const auto& r, auto* out) {
            return stub.ListPositionChanges(call, r, out);
          },
          &all)) {
    return *done;
  }
  Table t({"member_id", "display_name", "security", "change", "shares_from",
           "shares_to", "value_from", "value_to", "traded_value"});
  for (const v1::PositionChange& c : all.changes()) {
    t.AddRow({c.member_id(), c.display_name(), c.security(), c.change(),
              absl::StrCat(c.shares_from()), absl::StrCat(c.shares_to()),
              MoneyOrBlank(c.value_from()), MoneyOrBlank(c.value_to()),
              MoneyOrBlank(c.traded_value())});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

// The analyst's rating before the current one: the latest of the history
// that is not the current (whether or not the history holds the current).
const v1::Coverage* PreviousRating(const v1::AnalystView& a) {
  for (int i = a.history_size() - 1; i >= 0; --i) {
    if (!google::protobuf::util::MessageDifferencer::Equals(a.history(i),
                                                            a.current())) {
      return &a.history(i);
    }
  }
  return nullptr;
}

// The analysts of a consensus, one row each.
Table AnalystTable(const v1::GetConsensusResponse& r) {
  Table t({"security", "member_id", "display_name", "date", "rating",
           "rating_text", "target_price", "previous_date", "previous_rating",
           "previous_target"});
  for (const v1::AnalystView& a : r.analysts()) {
    const v1::Coverage& c = a.current();
    const v1::Coverage* p = PreviousRating(a);
    t.AddRow({r.security(), a.member_id(), a.display_name(), DateText(c.date()),
              RatingText(c.rating()), c.rating_text(),
              MoneyOrBlank(c.target_price()), p ? DateText(p->date()) : "",
              p ? RatingText(p->rating()) : "",
              p ? MoneyOrBlank(p->target_price()) : ""});
  }
  return t;
}

int Consensus(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(args, {"security", "as-of"}); !s.ok()) {
    return UsageError(s);
  }
  v1::GetConsensusRequest request;
  for (absl::Status s :
       {NoMoreWords(args, 2), RequiredFlags(args, {"security"}),
        DateFlag(args, "as-of", request.mutable_as_of(), false)}) {
    if (!s.ok()) return UsageError(s);
  }
  if (!args.Has("as-of")) request.clear_as_of();  // the service's today
  request.set_security(args.GetOr("security", ""));
  v1::GetConsensusResponse response;
  grpc::Status s = stub.GetConsensus(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  // CSV is the analysts' rows alone (one table); the counts and targets
  // follow from them, and JSON has them as the service said.
  if (ctx.format == Format::kTable) {
    Table summary({"security", "as_of", "buy", "hold", "sell", "mean_target",
                   "median_target"});
    summary.AddRow({response.security(), DateText(response.as_of()),
                    absl::StrCat(response.buy()), absl::StrCat(response.hold()),
                    absl::StrCat(response.sell()),
                    MoneyOrBlank(response.mean_target()),
                    MoneyOrBlank(response.median_target())});
    summary.Print(ctx.format, std::cout);
    std::cout << "\n";
  }
  AnalystTable(response).Print(ctx.format, std::cout);
  return kExitOk;
}

// ---- targeting
// -----------------------------------------------------------------

absl::Status TargetsRequestOf(const Args& args,
                              v1::ListEngagementTargetsRequest* request) {
  RAPPORT_RETURN_IF_ERROR(NoMoreWords(args, 2));
  RAPPORT_RETURN_IF_ERROR(
      TimeFlag(args, "as-of", request->mutable_as_of(), false));
  if (!args.Has("as-of")) request->clear_as_of();  // the service's now
  RAPPORT_ASSIGN_OR_RETURN(int limit, IntFlag(args, "limit", 0));
  request->set_limit(limit);
  for (const std::string& p : args.GetAll("peer")) {
    request->add_peer_securities(p);
  }
  return absl::OkStatus();
}

int Targets(Context& ctx, Stub& stub) {
  if (absl::Status s = KnownFlags(ctx.args, {"as-of", "limit", "peer"});
      !s.ok()) {
    return UsageError(s);
  }
  v1::ListEngagementTargetsRequest request;
  if (absl::Status s = TargetsRequestOf(ctx.args, &request); !s.ok()) {
    return UsageError(s);
  }
  v1::ListEngagementTargetsResponse response;
  grpc::Status s =
      stub.ListEngagementTargets(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  Table t({"member_id", "display_name", "kind", "score", "own_value",
           "peer_value", "days_since_engagement", "shares_last",
           "shares_previous", "recency_factor", "trend_factor", "reason"});
  for (const v1::EngagementTarget& x : response.targets()) {
    t.AddRow({x.member_id(), x.display_name(), KindText(x.kind()),
              MoneyOrBlank(x.score()), MoneyOrBlank(x.own_value()),
              MoneyOrBlank(x.peer_value()),
              x.has_days_since_engagement()
                  ? absl::StrCat(x.days_since_engagement())
                  : "",
              absl::StrCat(x.shares_last()), absl::StrCat(x.shares_previous()),
              FactorText(x.recency_factor()), FactorText(x.trend_factor()),
              x.reason()});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

int AtRisk(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  if (absl::Status s = KnownFlags(args, {"as-of", "limit"}); !s.ok()) {
    return UsageError(s);
  }
  v1::ListAtRiskHoldersRequest request;
  for (absl::Status s :
       {NoMoreWords(args, 2),
        TimeFlag(args, "as-of", request.mutable_as_of(), false)}) {
    if (!s.ok()) return UsageError(s);
  }
  if (!args.Has("as-of")) request.clear_as_of();  // the service's now
  absl::StatusOr<int> limit = IntFlag(args, "limit", 0);
  if (!limit.ok()) return UsageError(limit.status());
  request.set_limit(*limit);
  v1::ListAtRiskHoldersResponse response;
  grpc::Status s =
      stub.ListAtRiskHolders(ctx.NewCall().get(), request, &response);
  if (!s.ok()) return ReportError(FromGrpcStatus(s));
  if (ctx.format == Format::kJson) {
    PrintJson(response, std::cout);
    return kExitOk;
  }
  Table t({"member_id", "display_name", "security", "previous_date",
           "previous_shares", "last_date", "last_shares", "value_at_risk",
           "last_engagement_time", "reason"});
  for (const v1::AtRiskHolder& h : response.holders()) {
    t.AddRow({h.member_id(), h.display_name(), h.security(),
              DateText(h.previous_date()), absl::StrCat(h.previous_shares()),
              DateText(h.last_date()), absl::StrCat(h.last_shares()),
              MoneyOrBlank(h.value_at_risk()),
              TimeText(h.last_engagement_time()), h.reason()});
  }
  t.Print(ctx.format, std::cout);
  return kExitOk;
}

// ---- imports and scores
// --------------------------------------------------------

template <typename R>
struct CommunityImportKind {
  using Stub = v1::FinancialCommunityService::Stub;
  using Response = R;
  static constexpr const char* kCreated = "members";
  static int64_t Created(const Response& r) { return r.created_members(); }
  static void SetCreated(Response& r, int64_t n) { r.set_created_members(n); }
};

struct HoldingImport : CommunityImportKind<v1::ImportHoldingsResponse> {
  using Request = v1::ImportHoldingsRequest;
  static constexpr const char* kName = "holdings";
  static std::vector<Column> Columns() {
    return {{{"member_ref"}}, {{"security"}}, {{"date"}},
            {{"shares"}},     {{"price"}},    {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::HoldingRow* row = request.add_rows();
    row->set_row(line);
    row->set_member_ref(std::string(in.Get(0)));
    row->set_security(std::string(in.Get(1)));
    row->set_date(std::string(in.Get(2)));
    row->set_shares(std::string(in.Get(3)));
    row->set_price(std::string(in.Get(4)));
    if (in.Has(5)) row->set_request_id(std::string(in.Get(5)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportHoldings(call, response);
  }
};

struct EngagementImport : CommunityImportKind<v1::ImportEngagementsResponse> {
  using Request = v1::ImportEngagementsRequest;
  static constexpr const char* kName = "engagements";
  static constexpr size_t kRequestId = 6;
  static std::vector<Column> Columns() {
    return {{{"member_ref"}},
            {{"timestamp"}},
            {{"kind"}},
            {{"cost"}},
            {{"outcome"}, false},
            {{"note"}, false},
            {{"request_id"}, false}};
  }
  // The rows of one engagement with several members (request ids
  // "meet-42/ann", "meet-42/bob", and "meet-42" itself, as the service
  // groups them) travel together, so that the service sees the engagement
  // whole.
  static std::string Group(const CsvInput& in) {
    if (!in.Has(kRequestId)) return "";
    const absl::string_view id = in.Get(kRequestId);
    const size_t slash = id.rfind('/');
    return std::string(slash == absl::string_view::npos ? id
                                                        : id.substr(0, slash));
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::EngagementRow* row = request.add_rows();
    row->set_row(line);
    row->set_member_ref(std::string(in.Get(0)));
    row->set_timestamp(std::string(in.Get(1)));
    row->set_kind(std::string(in.Get(2)));
    row->set_cost(std::string(in.Get(3)));
    if (in.Has(4)) row->set_outcome(std::string(in.Get(4)));
    if (in.Has(5)) row->set_note(std::string(in.Get(5)));
    if (in.Has(kRequestId)) {
      row->set_request_id(std::string(in.Get(kRequestId)));
    }
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportEngagements(call, response);
  }
};

struct CoverageImport : CommunityImportKind<v1::ImportCoverageResponse> {
  using Request = v1::ImportCoverageRequest;
  static constexpr const char* kName = "coverage";
  static std::vector<Column> Columns() {
    return {{{"member_ref"}}, {{"security"}},     {{"date"}},
            {{"rating"}},     {{"target_price"}}, {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::CoverageRow* row = request.add_rows();
    row->set_row(line);
    row->set_member_ref(std::string(in.Get(0)));
    row->set_security(std::string(in.Get(1)));
    row->set_date(std::string(in.Get(2)));
    row->set_rating(std::string(in.Get(3)));
    row->set_target_price(std::string(in.Get(4)));
    if (in.Has(5)) row->set_request_id(std::string(in.Get(5)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportCoverage(call, response);
  }
};

// The channel to the service: --addr, $RAPPORT_COMMUNITY_ADDR or
// localhost:50053; with a `lane`, an import stream's own.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CommunityChannel(
    const Context& ctx, std::optional<int> lane = std::nullopt) {
  return ctx.Channel("RAPPORT_COMMUNITY_ADDR", "localhost:50053", lane);
}

int ImportFile(Context& ctx, Stub&) {
  const std::vector<std::string>& words = ctx.args.positional();
  const std::string kind = words.size() > 2 ? words[2] : "";
  const file_import::LaneChannel lanes = [&ctx](int lane) {
    return CommunityChannel(ctx, lane);
  };
  if (kind == "holdings") {
    return RunFileImport<HoldingImport>(ctx, lanes, kImportUsage);
  }
  if (kind == "engagements") {
    return RunFileImport<EngagementImport>(ctx, lanes, kImportUsage);
  }
  if (kind == "coverage") {
    return RunFileImport<CoverageImport>(ctx, lanes, kImportUsage);
  }
  return UsageError(kImportUsage, "");
}

struct CommunityScores {
  using Stub = v1::FinancialCommunityService::Stub;
  using RefreshScoresRequest = v1::RefreshScoresRequest;
  using RefreshScoresResponse = v1::RefreshScoresResponse;
  using GetRefreshJobRequest = v1::GetRefreshJobRequest;
  using GetRefreshJobResponse = v1::GetRefreshJobResponse;
  using GetValueRequest = v1::GetMemberValueRequest;
  using GetValueResponse = v1::GetMemberValueResponse;
  using SummarizeSegmentsRequest = v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse = v1::SummarizeSegmentsResponse;
  using ExportScoresRequest = v1::ExportScoresRequest;
  using ExportScoresResponse = v1::ExportScoresResponse;
  static constexpr const char* kCommand = "community";
  static constexpr const char* kNoun = "member";
  static constexpr const char* kPlural = "members";
  // A member's monetary fact: the market value of its holdings.
  static constexpr const char* kVolume = "market_value";
  static grpc::Status GetValue(Stub& stub, grpc::ClientContext* call,
                               const GetValueRequest& request,
                               GetValueResponse* response) {
    return stub.GetMemberValue(call, request, response);
  }
};

// `community segments`: another name for `community summarize`, the
// segments and tiers of the members.
int Segments(Context& ctx, Stub& stub) {
  if (absl::Status s = NoMoreWords(ctx.args, 2); !s.ok()) return UsageError(s);
  return scores::Summarize<CommunityScores>(ctx, stub);
}

// ---- dispatch
// ------------------------------------------------------------------

using Command = int (*)(Context&, Stub&);

const std::map<std::string, Command>& Commands() {
  static const auto* const kCommands = new std::map<std::string, Command>{
      {"create", CreateMember},     {"get", GetMember},
      {"update", UpdateMember},     {"delete", DeleteMember},
      {"list", ListMembers},        {"identify", IdentifyMember},
      {"duplicates", Duplicates},   {"holdings", Holdings},
      {"engagements", Engagements}, {"coverage", Coverage},
      {"register", Register},       {"changes", Changes},
      {"consensus", Consensus},     {"targets", Targets},
      {"at-risk", AtRisk},          {"import", ImportFile},
      {"segments", Segments},
  };
  return *kCommands;
}

}  // namespace

int RunCommunity(Context& ctx) {
  const std::vector<std::string>& words = ctx.args.positional();
  if (words.size() < 2) {
    return UsageError("want: rapportctl community COMMAND ... (see help)", "");
  }
  const std::string& verb = words[1];
  auto command = Commands().find(verb);
  if (command == Commands().end() && !IsScoresCommand(verb)) {
    return UsageError(absl::StrCat("community: unknown command \"", verb, "\""),
                      "");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      CommunityChannel(ctx);
  if (!channel.ok()) return UsageError(channel.status());
  std::unique_ptr<Stub> stub = v1::FinancialCommunityService::NewStub(*channel);
  if (command == Commands().end()) {
    return RunScores<CommunityScores>(ctx, *stub);
  }
  return command->second(ctx, *stub);
}

}  // namespace rapport::ctl
