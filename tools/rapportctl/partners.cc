// rapportctl partners ...: partners, programs and agreements, deals and their
// conflicts, orders, funds, interactions, imports, scores and scorecards, on
// the partner service ($RAPPORT_PARTNER_ADDR, default localhost:50052).
#include <iostream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/api_names.h"
#include "common/base/timestamp.h"
#include "common/proto_convert.h"
#include "common/status.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"
#include "tools/rapportctl/command.h"
#include "tools/rapportctl/counterpart_commands.h"
#include "tools/rapportctl/counterpart_scores.h"
#include "tools/rapportctl/csv_input.h"
#include "tools/rapportctl/file_import.h"
#include "tools/rapportctl/score_format.h"

namespace rapport::ctl {
namespace {

namespace v1 = ::rapport::partner::v1;
namespace cv1 = ::rapport::common::v1;
using Stub = v1::PartnerService::Stub;

constexpr char kImportUsage[] =
    "want: rapportctl partners import deals|orders|interactions FILE.csv "
    "[--import-id ID] [--batch-rows N] [--streams N] [--force: interactions]";

// ---- names and formats
// --------------------------------------------------------

std::string KindText(v1::PartnerKind k) {
  return EnumText(v1::PartnerKind_Name(k), "PARTNER_KIND_");
}
std::string LifecycleText(v1::Lifecycle l) {
  return EnumText(v1::Lifecycle_Name(l), "LIFECYCLE_");
}
std::string DealStateText(v1::DealState s) {
  return EnumText(v1::DealState_Name(s), "DEAL_STATE_");
}
std::string AgreementStateText(v1::AgreementState s) {
  return EnumText(v1::AgreementState_Name(s), "AGREEMENT_STATE_");
}
std::string FundStateText(v1::FundRequestState s) {
  return EnumText(v1::FundRequestState_Name(s), "FUND_REQUEST_STATE_");
}

// ---- printing
// ------------------------------------------------------------------

Table PartnerTable() {
  return Table({"id", "display_name", "kind", "lifecycle", "region",
                "external_ids", "etag", "segment", "value", "tier"});
}

void AddPartner(Table& t, const v1::Partner& p) {
  std::string ids;
  for (const cv1::ExternalId& e : p.external_ids()) {
    absl::StrAppend(&ids, ids.empty() ? "" : " ", e.source(), ":", e.id());
  }
  t.AddRow({p.id(), p.display_name(), KindText(p.kind()),
            LifecycleText(p.lifecycle()), p.region(), ids, p.etag(),
            p.has_value() ? p.value().segment() : "",
            p.has_value() ? ValueText(p.value().value_hundredths()) : "",
            p.has_value() ? TierText(p.value().tier()) : ""});
}

Table DealTable() {
  return Table({"id", "partner_id", "reference", "account", "domain", "amount",
                "register_time", "close_time", "state", "conflict_with",
                "etag"});
}

void AddDeal(Table& t, const v1::Deal& d) {
  t.AddRow({d.id(), d.partner_id(), d.reference(), d.account_name(),
            d.account_domain(), MoneyOrBlank(d.amount()),
            TimeText(d.register_time()), TimeText(d.close_time()),
            DealStateText(d.state()), d.conflict_with(), d.etag()});
}

Table FundTable() {
  return Table({"id", "partner_id", "activity", "requested", "state", "claimed",
                "claim_time", "paid_time", "etag"});
}

void AddFund(Table& t, const v1::FundRequest& f) {
  t.AddRow({f.id(), f.partner_id(), f.activity(),
            MoneyOrBlank(f.requested_amount()), FundStateText(f.state()),
            MoneyOrBlank(f.claimed_amount()), TimeText(f.claim_time()),
            TimeText(f.paid_time()), f.etag()});
}

Table AgreementTable() {
  return Table({"id", "partner_id", "program_id", "start_time", "end_time",
                "state", "etag"});
}

void AddAgreement(Table& t, const v1::Agreement& a) {
  t.AddRow({a.id(), a.partner_id(), a.program_id(), TimeText(a.start_time()),
            TimeText(a.end_time()), AgreementStateText(a.state()), a.etag()});
}

Table ProgramTable() {
  return Table({"id", "name", "basis", "terms", "create_time"});
}

void AddProgram(Table& t, const v1::Program& p) {
  std::string terms;
  for (const v1::ProgramTerms& x : p.terms()) {
    absl::StrAppend(
        &terms, terms.empty() ? "" : " ",
        x.tier() == cv1::TIER_UNSPECIFIED ? "default" : TierText(x.tier()), "=",
        x.commission_percent(), "%");
  }
  t.AddRow({p.id(), p.name(),
            p.basis() == v1::PROGRAM_BASIS_MARGIN ? "margin" : "commission",
            terms, TimeText(p.create_time())});
}
// ---- partners
// ------------------------------------------------------------------

int PartnerFields(const Args& args, v1::Partner* p,
                  std::vector<std::string>* paths) {
  if (auto v = args.Get("display-name")) {
    p->set_display_name(*v);
    paths->push_back("display_name");
  }
  if (auto v = args.Get("kind")) {
    auto k =
        ParseEnum<v1::PartnerKind>(*v, "PARTNER_KIND_", v1::PartnerKind_Parse);
    if (!k) {
      return UsageError(
          absl::StrCat("--kind: want supplier, distributor, channel, agency "
                       "or intermediary, not \"",
                       *v, "\""),
          "");
    }
    p->set_kind(*k);
    paths->push_back("kind");
  }
  if (auto v = args.Get("lifecycle")) {
    auto l = ParseEnum<v1::Lifecycle>(*v, "LIFECYCLE_", v1::Lifecycle_Parse);
    if (!l) {
      return UsageError(absl::StrCat("--lifecycle: want prospect, onboarding, "
                                     "active, suspended or ended, not \"",
                                     *v, "\""),
                        "");
    }
    p->set_lifecycle(*l);
    paths->push_back("lifecycle");
  }
  if (auto v = args.Get("region")) {
    p->set_region(*v);
    paths->push_back("region");
  }
  if (args.Has("external-id")) {
    if (absl::Status s = ExternalIdFlags(args, p->mutable_external_ids());
        !s.ok()) {
      return UsageError(s);
    }
    paths->push_back("external_ids");
  }
  if (args.Has("contact")) {
    if (absl::Status s = ContactFlags(args, p->mutable_contacts()); !s.ok()) {
      return UsageError(s);
    }
    paths->push_back("contacts");
  }
  if (args.Has("attribute")) {
    if (absl::Status s = AttributeFlags(args, p->mutable_attributes());
        !s.ok()) {
      return UsageError(s);
    }
    paths->push_back("attributes");
  }
  return -1;
}

int Partners(Context& ctx, Stub& stub, const std::string& verb) {
  const Args& args = ctx.args;
  auto partner = [](const auto& r) -> const v1::Partner& {
    return r.partner();
  };
  if (verb == "create") {
    if (absl::Status s = KnownFlags(
            args, {"display-name", "kind", "lifecycle", "region", "external-id",
                   "contact", "attribute", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::CreatePartnerRequest request;
    std::vector<std::string> paths;
    if (int rc = PartnerFields(args, request.mutable_partner(), &paths);
        rc >= 0) {
      return rc;
    }
    if (absl::Status s = NoMoreWords(args, 2); !s.ok()) return UsageError(s);
    if (!args.Has("display-name") || !args.Has("kind")) {
      return UsageError(
          "want: rapportctl partners create --display-name N --kind "
          "supplier|distributor|channel|agency|intermediary [--external-id "
          "SOURCE:ID]... [--region R] [--request-id R]",
          "");
    }
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::CreatePartnerResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.CreatePartner(call, request, out);
        },
        partner, PartnerTable(), AddPartner);
  }
  if (verb == "get") {
    if (absl::Status s = KnownFlags(args, {}); !s.ok()) return UsageError(s);
    absl::StatusOr<std::string> id = IdArgument(args, 2, "partners get ID");
    if (!id.ok()) return UsageError(id.status());
    v1::GetPartnerRequest request;
    request.set_id(*id);
    return CallAndPrint<v1::GetPartnerResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.GetPartner(call, request, out);
        },
        partner, PartnerTable(), AddPartner);
  }
  if (verb == "update") {
    if (absl::Status s =
            KnownFlags(args, {"display-name", "kind", "lifecycle", "region",
                              "external-id", "contact", "attribute", "etag"});
        !s.ok()) {
      return UsageError(s);
    }
    absl::StatusOr<std::string> id =
        IdArgument(args, 2, "partners update ID [--display-name N] ...");
    if (!id.ok()) return UsageError(id.status());
    v1::UpdatePartnerRequest request;
    std::vector<std::string> paths;
    if (int rc = PartnerFields(args, request.mutable_partner(), &paths);
        rc >= 0) {
      return rc;
    }
    request.mutable_partner()->set_id(*id);
    request.mutable_partner()->set_etag(args.GetOr("etag", ""));
    for (const std::string& p : paths)
      request.mutable_update_mask()->add_paths(p);
    return CallAndPrint<v1::UpdatePartnerResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.UpdatePartner(call, request, out);
        },
        partner, PartnerTable(), AddPartner);
  }
  if (verb == "delete") {
    if (absl::Status s = KnownFlags(args, {"etag", "force", "allow-missing"});
        !s.ok()) {
      return UsageError(s);
    }
    absl::StatusOr<std::string> id = IdArgument(
        args, 2, "partners delete ID [--etag E] [--force] [--allow-missing]");
    if (!id.ok()) return UsageError(id.status());
    v1::DeletePartnerRequest request;
    request.set_id(*id);
    request.set_etag(args.GetOr("etag", ""));
    request.set_force(args.Has("force"));
    request.set_allow_missing(args.Has("allow-missing"));
    v1::DeletePartnerResponse response;
    grpc::Status s =
        stub.DeletePartner(ctx.NewCall().get(), request, &response);
    if (!s.ok()) return ReportError(FromGrpcStatus(s));
    PrintDeleted(ctx.format, "partner", *id, args.Has("allow-missing"),
                 std::cout);
    return kExitOk;
  }
  if (verb == "list") {
    if (absl::Status s =
            KnownFlags(args, {"kind", "lifecycle", "tier", "segment",
                              "order-by", "page-size", "page-token", "all"});
        !s.ok()) {
      return UsageError(s);
    }
    if (absl::Status s = NoMoreWords(args, 2); !s.ok()) return UsageError(s);
    v1::ListPartnersRequest request;
    std::vector<std::string> paths;
    v1::Partner filter;
    if (int rc = PartnerFields(args, &filter, &paths); rc >= 0) return rc;
    request.set_kind(filter.kind());
    request.set_lifecycle(filter.lifecycle());
    if (auto t = args.Get("tier")) {
      std::optional<cv1::Tier> tier = ParseTier(*t);
      if (!tier) {
        return UsageError("--tier: want lead, iron, gold or platinum", "");
      }
      request.set_tier(*tier);
    }
    request.set_segment(args.GetOr("segment", ""));
    const std::string order = args.GetOr("order-by", "");
    if (order != "" && order != "value" && order != "id") {
      return UsageError("--order-by: want value or id", "");
    }
    request.set_order_by(order == "value" ? "value" : "");
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListPartnersResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListPartners(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = PartnerTable();
    for (const v1::Partner& p : all.partners()) AddPartner(t, p);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  if (verb == "identify") {
    if (absl::Status s = KnownFlags(args, 2,
                                    {"external-id", "contact-email",
                                     "display-name", "kind", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::IdentifyPartnerRequest request;
    if (absl::Status s = ExternalIdFlags(args, request.mutable_external_ids());
        !s.ok()) {
      return UsageError(s);
    }
    request.set_contact_email(args.GetOr("contact-email", ""));
    if (request.external_ids().empty() && request.contact_email().empty()) {
      return UsageError("give --external-id SOURCE:ID or --contact-email", "");
    }
    request.set_display_name(args.GetOr("display-name", ""));
    if (auto v = args.Get("kind")) {
      auto k = ParseEnum<v1::PartnerKind>(*v, "PARTNER_KIND_",
                                          v1::PartnerKind_Parse);
      if (!k) {
        return UsageError(
            absl::StrCat("--kind: want supplier, distributor, channel, agency "
                         "or intermediary, not \"",
                         *v, "\""),
            "");
      }
      request.set_kind(*k);
    }
    request.set_request_id(args.GetOr("request-id", ""));
    v1::IdentifyPartnerResponse response;
    grpc::Status s =
        stub.IdentifyPartner(ctx.NewCall().get(), request, &response);
    if (!s.ok()) return ReportError(FromGrpcStatus(s));
    if (ctx.format == Format::kJson) {
      PrintJson(response,
                std::cout);  // "created" with the partner, for scripts
      return kExitOk;
    }
    if (response.created()) std::cerr << "rapportctl: created the partner\n";
    return PrintOne(ctx, response.partner(), PartnerTable(), AddPartner);
  }
  if (verb == "duplicates") {
    if (absl::Status s =
            KnownFlags(args, 2, {"page-size", "page-token", "all"});
        !s.ok())
      return UsageError(s);
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    v1::FindDuplicatePartnersRequest request;
    request.set_page_size(*size);
    v1::FindDuplicatePartnersResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.FindDuplicatePartners(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t({"reason", "key", "partner_ids"});
    for (const v1::DuplicatePartnerGroup& g : all.groups()) {
      t.AddRow({g.reason(), g.key(), absl::StrJoin(g.partner_ids(), " ")});
    }
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  if (verb == "scorecard") {
    if (absl::Status s = KnownFlags(args, {}); !s.ok()) return UsageError(s);
    absl::StatusOr<std::string> id =
        IdArgument(args, 2, "partners scorecard ID");
    if (!id.ok()) return UsageError(id.status());
    v1::GetPartnerScorecardRequest request;
    request.set_id(*id);
    v1::GetPartnerScorecardResponse response;
    grpc::Status s =
        stub.GetPartnerScorecard(ctx.NewCall().get(), request, &response);
    if (!s.ok()) return ReportError(FromGrpcStatus(s));
    const v1::PartnerScorecard& c = response.scorecard();
    if (ctx.format == Format::kJson) {
      PrintJson(c, std::cout);
      return kExitOk;
    }
    const cv1::EntityValue& v = c.value();
    Table t({"partner_id",
             "display_name",
             "recency_days",
             "frequency",
             "volume",
             "r",
             "f",
             "m",
             "segment",
             "value",
             "tier",
             "cost_to_serve",
             "profit",
             "win_rate",
             "deals_won",
             "deals_lost",
             "funds_paid",
             "fund_return",
             "previous_value",
             "value_change",
             "next_tier",
             "profit_to_next_tier",
             "profit_must_exceed",
             "channels",
             "service_level",
             "cost_ceiling"});
    auto number = [](bool has, double x, const char* f) {
      return has ? absl::StrFormat(f, x) : std::string();
    };
    std::string channels;
    for (int channel : v.contact_policy().channels()) {
      absl::StrAppend(&channels, channels.empty() ? "" : " ",
                      ChannelName(channel));
    }
    t.AddRow(
        {c.partner_id(),
         c.display_name(),
         v.has_recency_days() ? absl::StrCat(v.recency_days()) : "",
         c.has_value() ? absl::StrCat(v.frequency()) : "",
         c.has_value() ? MoneyText(v.monetary()) : "",
         c.has_value() ? absl::StrCat(v.r()) : "",
         c.has_value() ? absl::StrCat(v.f()) : "",
         c.has_value() ? absl::StrCat(v.m()) : "",
         v.segment(),
         c.has_value() ? ValueText(v.value_hundredths()) : "",
         c.has_value() ? TierText(v.tier()) : "",
         c.has_value() ? MoneyText(v.cost_to_serve()) : "",
         c.has_value() ? MoneyText(v.profit()) : "",
         number(c.has_win_rate(), c.win_rate(), "%.4f"),
         absl::StrCat(c.deals_won()),
         absl::StrCat(c.deals_lost()),
         MoneyText(c.funds_paid()),
         number(c.has_fund_return(), c.fund_return(), "%.4f"),
         c.has_previous() ? ValueText(c.previous().value_hundredths()) : "",
         c.has_value_change_hundredths()
             ? absl::StrFormat("%+.2f", c.value_change_hundredths() / 100.0)
             : "",
         c.next_tier() == cv1::TIER_UNSPECIFIED ? "" : TierText(c.next_tier()),
         c.has_profit_to_next_tier() ? MoneyText(c.profit_to_next_tier()) : "",
         c.has_profit_to_next_tier()
             ? (c.profit_must_exceed() ? "true" : "false")
             : "",
         channels,
         v.contact_policy().service_level(),
         v.has_contact_policy() ? MoneyText(v.contact_policy().cost_ceiling())
                                : ""});
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return -1;
}

// ---- deals
// ---------------------------------------------------------------------

int Deals(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  auto deal = [](const auto& r) -> const v1::Deal& { return r.deal(); };
  if (verb == "register") {
    if (absl::Status s = KnownFlags(
            args, 3,
            {"partner", "account", "domain", "amount", "registered-at",
             "expected-close", "reference", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::RegisterDealRequest request;
    v1::Deal* d = request.mutable_deal();
    d->set_partner_id(args.GetOr("partner", ""));
    d->set_account_name(args.GetOr("account", ""));
    d->set_account_domain(args.GetOr("domain", ""));
    d->set_reference(args.GetOr("reference", ""));
    for (absl::Status s :
         {MoneyFlag(args, "amount", d->mutable_amount(), true),
          TimeFlag(args, "registered-at", d->mutable_register_time(), false),
          TimeFlag(args, "expected-close", d->mutable_expected_close_time(),
                   false)}) {
      if (!s.ok()) return UsageError(s);
    }
    if (!args.Has("registered-at")) d->clear_register_time();
    if (!args.Has("expected-close")) d->clear_expected_close_time();
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::RegisterDealResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.RegisterDeal(call, request, out);
        },
        deal, DealTable(), AddDeal);
  }
  static const auto* const kMoves = new std::map<std::string, v1::DealState>{
      {"approve", v1::DEAL_STATE_APPROVED},
      {"reject", v1::DEAL_STATE_REJECTED},
      {"win", v1::DEAL_STATE_WON},
      {"lose", v1::DEAL_STATE_LOST},
      {"expire", v1::DEAL_STATE_EXPIRED}};
  if (auto move = kMoves->find(verb); move != kMoves->end()) {
    if (absl::Status s = KnownFlags(args, {"closed-at", "force", "etag"});
        !s.ok()) {
      return UsageError(s);
    }
    const bool closes = verb == "win" || verb == "lose";
    absl::StatusOr<std::string> id = IdArgument(
        args, 3,
        absl::StrCat("partners deals ", verb, " ID",
                     closes ? " --closed-at RFC3339" : "",
                     verb == "approve" ? " [--force]" : "", " [--etag E]"));
    if (!id.ok()) return UsageError(id.status());
    v1::TransitionDealRequest request;
    request.set_id(*id);
    request.set_state(move->second);
    request.set_force(args.Has("force"));
    request.set_etag(args.GetOr("etag", ""));
    if (absl::Status s =
            TimeFlag(args, "closed-at", request.mutable_close_time(), closes);
        !s.ok()) {
      return UsageError(s);
    }
    if (!args.Has("closed-at")) request.clear_close_time();
    return CallAndPrint<v1::TransitionDealResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.TransitionDeal(call, request, out);
        },
        deal, DealTable(), AddDeal);
  }
  if (verb == "get") {
    if (absl::Status s = KnownFlags(args, {}); !s.ok()) return UsageError(s);
    absl::StatusOr<std::string> id =
        IdArgument(args, 3, "partners deals get ID");
    if (!id.ok()) return UsageError(id.status());
    v1::GetDealRequest request;
    request.set_id(*id);
    return CallAndPrint<v1::GetDealResponse>(
        ctx,
        [&](auto* call, auto* out) { return stub.GetDeal(call, request, out); },
        deal, DealTable(), AddDeal);
  }
  if (verb == "list") {
    if (absl::Status s = KnownFlags(
            args, 3, {"partner", "state", "page-size", "page-token", "all"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListDealsRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    if (auto v = args.Get("state")) {
      auto st =
          ParseEnum<v1::DealState>(*v, "DEAL_STATE_", v1::DealState_Parse);
      if (!st) return UsageError("--state: not a deal state", "");
      request.set_state(*st);
    }
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListDealsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListDeals(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = DealTable();
    for (const v1::Deal& d : all.deals()) AddDeal(t, d);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  if (verb == "conflicts") {
    if (absl::Status s =
            KnownFlags(args, 3, {"page-size", "page-token", "all", "decided"});
        !s.ok())
      return UsageError(s);
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    v1::ListDealConflictsRequest request;
    request.set_page_size(*size);
    request.set_include_decided(args.Has("decided"));
    v1::ListDealConflictsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListDealConflicts(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t({"account", "deal_id", "partner_id", "display_name", "state",
             "register_time", "amount", "conflict_with", "value", "tier",
             "win_rate"});
    for (const v1::DealConflict& c : all.conflicts()) {
      for (const v1::DealClaim& claim : c.claims()) {
        const v1::PartnerScorecard& card = claim.scorecard();
        t.AddRow(
            {c.account_key(), claim.deal().id(), claim.deal().partner_id(),
             card.display_name(), DealStateText(claim.deal().state()),
             TimeText(claim.deal().register_time()),
             MoneyOrBlank(claim.deal().amount()), claim.deal().conflict_with(),
             card.has_value() ? ValueText(card.value().value_hundredths()) : "",
             card.has_value() ? TierText(card.value().tier()) : "",
             card.has_win_rate() ? absl::StrFormat("%.4f", card.win_rate())
                                 : ""});
      }
    }
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError(
      "want: rapportctl partners deals "
      "register|approve|reject|win|lose|expire|get|list|conflicts ...",
      "");
}

// ---- funds
// ---------------------------------------------------------------------

int Funds(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  auto fund = [](const auto& r) -> const v1::FundRequest& {
    return r.fund_request();
  };
  if (verb == "request") {
    if (absl::Status s = KnownFlags(
            args, 3, {"partner", "activity", "amount", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::RequestFundsRequest request;
    v1::FundRequest* f = request.mutable_fund_request();
    f->set_partner_id(args.GetOr("partner", ""));
    f->set_activity(args.GetOr("activity", ""));
    if (absl::Status s =
            MoneyFlag(args, "amount", f->mutable_requested_amount(), true);
        !s.ok()) {
      return UsageError(s);
    }
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::RequestFundsResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.RequestFunds(call, request, out);
        },
        fund, FundTable(), AddFund);
  }
  static const auto* const kMoves =
      new std::map<std::string, v1::FundRequestState>{
          {"approve", v1::FUND_REQUEST_STATE_APPROVED},
          {"reject", v1::FUND_REQUEST_STATE_REJECTED},
          {"claim", v1::FUND_REQUEST_STATE_CLAIMED},
          {"pay", v1::FUND_REQUEST_STATE_PAID},
          {"reject-claim", v1::FUND_REQUEST_STATE_CLAIM_REJECTED}};
  if (auto move = kMoves->find(verb); move != kMoves->end()) {
    // Approving one's own request, or paying one's own claim, takes force.
    const bool forcible = verb == "approve" || verb == "pay";
    std::set<std::string> known = {"amount", "time", "etag"};
    if (forcible) known.insert("force");
    if (absl::Status s = KnownFlags(args, known); !s.ok()) {
      return UsageError(s);
    }
    absl::StatusOr<std::string> id =
        IdArgument(args, 3,
                   absl::StrCat("partners funds ", verb, " ID",
                                verb == "claim" ? " --amount X" : "",
                                forcible ? " [--force]" : ""));
    if (!id.ok()) return UsageError(id.status());
    v1::TransitionFundRequestRequest request;
    request.set_id(*id);
    request.set_state(move->second);
    request.set_etag(args.GetOr("etag", ""));
    request.set_force(args.Has("force"));
    for (absl::Status s :
         {MoneyFlag(args, "amount", request.mutable_claimed_amount(),
                    verb == "claim"),
          TimeFlag(args, "time", request.mutable_time(), false)}) {
      if (!s.ok()) return UsageError(s);
    }
    if (!args.Has("amount")) request.clear_claimed_amount();
    if (!args.Has("time")) request.clear_time();
    return CallAndPrint<v1::TransitionFundRequestResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.TransitionFundRequest(call, request, out);
        },
        fund, FundTable(), AddFund);
  }
  if (verb == "get") {
    if (absl::Status s = KnownFlags(args, {}); !s.ok()) return UsageError(s);
    absl::StatusOr<std::string> id =
        IdArgument(args, 3, "partners funds get ID");
    if (!id.ok()) return UsageError(id.status());
    v1::GetFundRequestRequest request;
    request.set_id(*id);
    return CallAndPrint<v1::GetFundRequestResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.GetFundRequest(call, request, out);
        },
        fund, FundTable(), AddFund);
  }
  if (verb == "list") {
    if (absl::Status s = KnownFlags(
            args, 3, {"partner", "state", "page-size", "page-token", "all"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListFundRequestsRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    if (auto v = args.Get("state")) {
      auto st = ParseEnum<v1::FundRequestState>(*v, "FUND_REQUEST_STATE_",
                                                v1::FundRequestState_Parse);
      if (!st) return UsageError("--state: not a fund request state", "");
      request.set_state(*st);
    }
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListFundRequestsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListFundRequests(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = FundTable();
    for (const v1::FundRequest& f : all.fund_requests()) AddFund(t, f);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError(
      "want: rapportctl partners funds "
      "request|approve|reject|claim|pay|reject-claim|get|list ...",
      "");
}

// ---- programs and agreements
// ---------------------------------------------------

int Programs(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  auto program = [](const auto& r) -> const v1::Program& {
    return r.program();
  };
  if (verb == "create") {
    if (absl::Status s = KnownFlags(args, 3,
                                    {"name", "commission", "tier-commission",
                                     "margin", "tier-margin", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    // A commission program's percentages, or a margin program's.
    const bool margin = args.Has("margin") || args.Has("tier-margin");
    if (margin && (args.Has("commission") || args.Has("tier-commission"))) {
      return UsageError(
          "--margin: a program pays commission or leaves a margin, not both",
          "");
    }
    const std::string kind = margin ? "margin" : "commission";
    v1::CreateProgramRequest request;
    request.mutable_program()->set_name(args.GetOr("name", ""));
    request.mutable_program()->set_basis(margin ? v1::PROGRAM_BASIS_MARGIN
                                                : v1::PROGRAM_BASIS_COMMISSION);
    v1::ProgramTerms* base = request.mutable_program()->add_terms();
    base->set_commission_percent(args.GetOr(kind, ""));
    for (const std::string& t : args.GetAll("tier-" + kind)) {
      std::pair<std::string, std::string> kv =
          absl::StrSplit(t, absl::MaxSplits('=', 1));
      std::optional<cv1::Tier> tier = ParseTier(kv.first);
      if (!tier) {
        return UsageError(absl::StrCat("--tier-", kind,
                                       ": want TIER=PERCENT, not \"", t, "\""),
                          "");
      }
      v1::ProgramTerms* x = request.mutable_program()->add_terms();
      x->set_tier(*tier);
      x->set_commission_percent(kv.second);
    }
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::CreateProgramResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.CreateProgram(call, request, out);
        },
        program, ProgramTable(), AddProgram);
  }
  if (verb == "get") {
    if (absl::Status s = KnownFlags(args, {}); !s.ok()) return UsageError(s);
    absl::StatusOr<std::string> id =
        IdArgument(args, 3, "partners programs get ID");
    if (!id.ok()) return UsageError(id.status());
    v1::GetProgramRequest request;
    request.set_id(*id);
    return CallAndPrint<v1::GetProgramResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.GetProgram(call, request, out);
        },
        program, ProgramTable(), AddProgram);
  }
  if (verb == "list") {
    if (absl::Status s =
            KnownFlags(args, 3, {"page-size", "page-token", "all"});
        !s.ok())
      return UsageError(s);
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    v1::ListProgramsRequest request;
    request.set_page_size(*size);
    v1::ListProgramsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListPrograms(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = ProgramTable();
    for (const v1::Program& p : all.programs()) AddProgram(t, p);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError("want: rapportctl partners programs create|get|list ...",
                    "");
}

int Agreements(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  auto agreement = [](const auto& r) -> const v1::Agreement& {
    return r.agreement();
  };
  if (verb == "create") {
    if (absl::Status s = KnownFlags(
            args, 3, {"partner", "program", "start", "end", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::CreateAgreementRequest request;
    v1::Agreement* a = request.mutable_agreement();
    a->set_partner_id(args.GetOr("partner", ""));
    a->set_program_id(args.GetOr("program", ""));
    for (absl::Status s :
         {TimeFlag(args, "start", a->mutable_start_time(), true),
          TimeFlag(args, "end", a->mutable_end_time(), false)}) {
      if (!s.ok()) return UsageError(s);
    }
    if (!args.Has("end")) a->clear_end_time();
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::CreateAgreementResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.CreateAgreement(call, request, out);
        },
        agreement, AgreementTable(), AddAgreement);
  }
  static const auto* const kMoves =
      new std::map<std::string, v1::AgreementState>{
          {"activate", v1::AGREEMENT_STATE_ACTIVE},
          {"expire", v1::AGREEMENT_STATE_EXPIRED},
          {"terminate", v1::AGREEMENT_STATE_TERMINATED}};
  if (auto move = kMoves->find(verb); move != kMoves->end()) {
    if (absl::Status s = KnownFlags(args, {"etag"}); !s.ok())
      return UsageError(s);
    absl::StatusOr<std::string> id =
        IdArgument(args, 3, absl::StrCat("partners agreements ", verb, " ID"));
    if (!id.ok()) return UsageError(id.status());
    v1::TransitionAgreementRequest request;
    request.set_id(*id);
    request.set_state(move->second);
    request.set_etag(args.GetOr("etag", ""));
    return CallAndPrint<v1::TransitionAgreementResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.TransitionAgreement(call, request, out);
        },
        agreement, AgreementTable(), AddAgreement);
  }
  if (verb == "list") {
    if (absl::Status s = KnownFlags(
            args, 3,
            {"partner", "program", "state", "all", "page-size", "page-token"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListAgreementsRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    request.set_program_id(args.GetOr("program", ""));
    if (auto v = args.Get("state")) {
      auto st = ParseEnum<v1::AgreementState>(*v, "AGREEMENT_STATE_",
                                              v1::AgreementState_Parse);
      if (!st) return UsageError("--state: not an agreement state", "");
      request.set_state(*st);
    }
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListAgreementsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListAgreements(call, r, out);
            },
            &all)) {
      return *done;
    }
    Table t = AgreementTable();
    for (const v1::Agreement& a : all.agreements()) AddAgreement(t, a);
    t.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError(
      "want: rapportctl partners agreements "
      "create|activate|expire|terminate|list ...",
      "");
}

// ---- orders and interactions
// ---------------------------------------------------

int Orders(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  Table table({"id", "partner_id", "order_time", "amount", "description",
               "recorded_by"});
  auto add = [](Table& t, const v1::Order& o) {
    t.AddRow({o.id(), o.partner_id(), TimeText(o.order_time()),
              MoneyOrBlank(o.amount()), o.description(), o.recorded_by()});
  };
  if (verb == "record") {
    if (absl::Status s = KnownFlags(
            args, 3,
            {"partner", "amount", "time", "description", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::RecordOrderRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    v1::Order* o = request.mutable_order();
    for (absl::Status s :
         {MoneyFlag(args, "amount", o->mutable_amount(), true),
          TimeFlag(args, "time", o->mutable_order_time(), true)}) {
      if (!s.ok()) return UsageError(s);
    }
    o->set_description(args.GetOr("description", ""));
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::RecordOrderResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.RecordOrder(call, request, out);
        },
        [](const auto& r) -> const v1::Order& { return r.order(); },
        std::move(table), add);
  }
  if (verb == "list") {
    if (absl::Status s =
            KnownFlags(args, 3, {"partner", "all", "page-size", "page-token"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListOrdersRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListOrdersResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListOrders(call, r, out);
            },
            &all)) {
      return *done;
    }
    for (const v1::Order& o : all.orders()) add(table, o);
    table.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError("want: rapportctl partners orders record|list ...", "");
}

int Interactions(Context& ctx, Stub& stub) {
  const Args& args = ctx.args;
  const std::vector<std::string>& w = args.positional();
  const std::string verb = w.size() > 2 ? w[2] : "";
  Table table({"id", "partner_id", "interaction_time", "channel", "kind",
               "cost", "note", "recorded_by"});
  auto add = [](Table& t, const v1::Interaction& i) {
    t.AddRow({i.id(), i.partner_id(), TimeText(i.interaction_time()),
              ChannelName(i.channel()), i.kind(), MoneyOrBlank(i.cost()),
              i.note(), i.recorded_by()});
  };
  if (verb == "log") {
    if (absl::Status s = KnownFlags(args, 3,
                                    {"partner", "channel", "cost", "time",
                                     "kind", "note", "force", "request-id"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::LogInteractionRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    v1::Interaction* i = request.mutable_interaction();
    std::optional<cv1::Channel> channel =
        ParseChannel(args.GetOr("channel", ""));
    if (!channel) {
      return UsageError(
          "--channel: want email, phone, sms, visit, web, mail or event", "");
    }
    i->set_channel(*channel);
    for (absl::Status s :
         {MoneyFlag(args, "cost", i->mutable_cost(), true),
          TimeFlag(args, "time", i->mutable_interaction_time(), false)}) {
      if (!s.ok()) return UsageError(s);
    }
    if (!args.Has("time")) {
      if (args.Has("request-id")) {
        return UsageError(absl::InvalidArgumentError(
            "--time: is required with --request-id (the time is part of "
            "what the request says, so that its retry says the same)"));
      }
      *i->mutable_interaction_time() =
          ToTimestamp(absl::ToUnixMicros(absl::Now()));
    }
    i->set_kind(args.GetOr("kind", ""));
    i->set_note(args.GetOr("note", ""));
    request.set_force(args.Has("force"));
    request.set_request_id(args.GetOr("request-id", ""));
    return CallAndPrint<v1::LogInteractionResponse>(
        ctx,
        [&](auto* call, auto* out) {
          return stub.LogInteraction(call, request, out);
        },
        [](const auto& r) -> const v1::Interaction& { return r.interaction(); },
        std::move(table), add);
  }
  if (verb == "list") {
    if (absl::Status s =
            KnownFlags(args, 3, {"partner", "all", "page-size", "page-token"});
        !s.ok()) {
      return UsageError(s);
    }
    v1::ListInteractionsRequest request;
    request.set_partner_id(args.GetOr("partner", ""));
    absl::StatusOr<int> size = IntFlag(args, "page-size", 0);
    if (!size.ok()) return UsageError(size.status());
    request.set_page_size(*size);
    v1::ListInteractionsResponse all;
    if (std::optional<int> done = FetchForListing(
            ctx, request,
            [&](auto* call, const auto& r, auto* out) {
              return stub.ListInteractions(call, r, out);
            },
            &all)) {
      return *done;
    }
    for (const v1::Interaction& i : all.interactions()) add(table, i);
    table.Print(ctx.format, std::cout);
    return kExitOk;
  }
  return UsageError("want: rapportctl partners interactions log|list ...", "");
}

// ---- imports and scores
// --------------------------------------------------------

template <typename R>
struct PartnerImportKind {
  using Stub = v1::PartnerService::Stub;
  using Response = R;
  static constexpr const char* kCreated = "partners";
  static int64_t Created(const Response& r) { return r.created_partners(); }
  static void SetCreated(Response& r, int64_t n) { r.set_created_partners(n); }
};

struct DealKind : PartnerImportKind<v1::ImportDealsResponse> {
  using Request = v1::ImportDealsRequest;
  static constexpr const char* kName = "deals";
  // One stream unless --streams says otherwise, so that a file's
  // registrations claim accounts in the file's order (on several streams
  // they still see each other, but the batch stored first wins).
  static constexpr int kStreams = 1;
  static std::vector<Column> Columns() {
    return {{{"partner_ref"}},      {{"deal_id"}},
            {{"account"}},          {{"amount"}},
            {{"registered_at"}},    {{"state"}},
            {{"closed_at"}, false}, {{"account_domain"}, false},
            {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::DealRow* row = request.add_rows();
    row->set_row(line);
    row->set_partner_ref(std::string(in.Get(0)));
    row->set_deal_id(std::string(in.Get(1)));
    row->set_account(std::string(in.Get(2)));
    row->set_amount(std::string(in.Get(3)));
    row->set_registered_at(std::string(in.Get(4)));
    row->set_state(std::string(in.Get(5)));
    if (in.Has(6)) row->set_closed_at(std::string(in.Get(6)));
    if (in.Has(7)) row->set_account_domain(std::string(in.Get(7)));
    if (in.Has(8)) row->set_request_id(std::string(in.Get(8)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportDeals(call, response);
  }
};

struct OrderKind : PartnerImportKind<v1::ImportOrdersResponse> {
  using Request = v1::ImportOrdersRequest;
  static constexpr const char* kName = "orders";
  static std::vector<Column> Columns() {
    return {{{"partner_ref"}},
            {{"timestamp"}},
            {{"amount"}},
            {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::OrderRow* row = request.add_rows();
    row->set_row(line);
    row->set_partner_ref(std::string(in.Get(0)));
    row->set_timestamp(std::string(in.Get(1)));
    row->set_amount(std::string(in.Get(2)));
    if (in.Has(3)) row->set_request_id(std::string(in.Get(3)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportOrders(call, response);
  }
};

struct InteractionKind : PartnerImportKind<v1::ImportInteractionsResponse> {
  using Request = v1::ImportInteractionsRequest;
  static constexpr const char* kName = "interactions";
  static std::vector<Column> Columns() {
    return {{{"partner_ref"}},      {{"timestamp"}},
            {{"channel"}},          {{"cost"}},
            {{"kind"}, false},      {{"note"}, false},
            {{"request_id"}, false}};
  }
  static void AddRow(const CsvInput& in, int64_t line, Request& request) {
    v1::InteractionRow* row = request.add_rows();
    row->set_row(line);
    row->set_partner_ref(std::string(in.Get(0)));
    row->set_timestamp(std::string(in.Get(1)));
    row->set_channel(std::string(in.Get(2)));
    row->set_cost(std::string(in.Get(3)));
    if (in.Has(4)) row->set_kind(std::string(in.Get(4)));
    if (in.Has(5)) row->set_note(std::string(in.Get(5)));
    if (in.Has(6)) row->set_request_id(std::string(in.Get(6)));
  }
  static std::unique_ptr<grpc::ClientWriter<Request>> Start(
      Stub& stub, grpc::ClientContext* call, Response* response) {
    return stub.ImportInteractions(call, response);
  }
};

struct PartnerScores {
  using Stub = v1::PartnerService::Stub;
  using RefreshScoresRequest = v1::RefreshScoresRequest;
  using RefreshScoresResponse = v1::RefreshScoresResponse;
  using GetRefreshJobRequest = v1::GetRefreshJobRequest;
  using GetRefreshJobResponse = v1::GetRefreshJobResponse;
  using GetValueRequest = v1::GetPartnerValueRequest;
  using GetValueResponse = v1::GetPartnerValueResponse;
  using SummarizeSegmentsRequest = v1::SummarizeSegmentsRequest;
  using SummarizeSegmentsResponse = v1::SummarizeSegmentsResponse;
  using ExportScoresRequest = v1::ExportScoresRequest;
  using ExportScoresResponse = v1::ExportScoresResponse;
  static constexpr const char* kCommand = "partners";
  static constexpr const char* kNoun = "partner";
  static constexpr const char* kPlural = "partners";
  static constexpr const char* kVolume = "volume";
  static grpc::Status GetValue(Stub& stub, grpc::ClientContext* call,
                               const GetValueRequest& request,
                               GetValueResponse* response) {
    return stub.GetPartnerValue(call, request, response);
  }
};

}  // namespace

int RunPartners(Context& ctx) {
  const std::vector<std::string>& words = ctx.args.positional();
  if (words.size() < 2) {
    return UsageError("want: rapportctl partners COMMAND ... (see help)", "");
  }
  // --addr, $RAPPORT_PARTNER_ADDR or localhost:50052; with a lane, an
  // import stream's own.
  const auto channel_of = [&ctx](std::optional<int> lane) {
    return ctx.Channel("RAPPORT_PARTNER_ADDR", "localhost:50052", lane);
  };
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      channel_of(std::nullopt);
  if (!channel.ok()) return UsageError(channel.status());
  std::unique_ptr<Stub> stub = v1::PartnerService::NewStub(*channel);
  const std::string& verb = words[1];
  if (verb == "import") {
    const std::string kind = words.size() > 2 ? words[2] : "";
    const file_import::LaneChannel lanes = channel_of;
    if (kind == "deals")
      return RunFileImport<DealKind>(ctx, lanes, kImportUsage);
    if (kind == "orders") {
      return RunFileImport<OrderKind>(ctx, lanes, kImportUsage);
    }
    if (kind == "interactions") {
      return RunFileImport<InteractionKind>(ctx, lanes, kImportUsage);
    }
    return UsageError(kImportUsage, "");
  }
  if (IsScoresCommand(verb)) return RunScores<PartnerScores>(ctx, *stub);
  if (verb == "deals") return Deals(ctx, *stub);
  if (verb == "funds") return Funds(ctx, *stub);
  if (verb == "programs") return Programs(ctx, *stub);
  if (verb == "agreements") return Agreements(ctx, *stub);
  if (verb == "orders") return Orders(ctx, *stub);
  if (verb == "interactions") return Interactions(ctx, *stub);
  if (int rc = Partners(ctx, *stub, verb); rc >= 0) return rc;
  return UsageError(absl::StrCat("partners: unknown command \"", verb, "\""),
                    "");
}

}  // namespace rapport::ctl
