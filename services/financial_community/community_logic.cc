#include "services/financial_community/community_logic.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/best_of.h"
#include "common/base/status_macros.h"
#include "common/identity.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"
#include "services/financial_community/community_rules.h"

namespace rapport::community {
namespace {

namespace cv1 = ::rapport::common::v1;

constexpr int64_t kDayUs = 86'400'000'000;
constexpr int kDefaultTargets = 20;
constexpr int kMaxTargets = 1000;
// The most peer securities one ListEngagementTargets names (each counted
// once).
constexpr size_t kMaxPeerSecurities = 100;

// ---- conversions -----------------------------------------------------------

v1::Member ToProto(const MemberRecord& r) {
  v1::Member m;
  m.set_id(r.id);
  m.set_display_name(r.display_name);
  m.set_kind(static_cast<v1::MemberKind>(r.kind));
  m.set_type(static_cast<v1::MemberType>(r.type));
  m.set_organisation(r.organisation);
  ::rapport::ToProto(EntityChildren{r.contacts, r.external_ids, r.attributes},
                     m.mutable_contacts(), m.mutable_external_ids(),
                     m.mutable_attributes());
  *m.mutable_create_time() = ToTimestamp(r.create_time_us);
  *m.mutable_update_time() = ToTimestamp(r.update_time_us);
  m.set_etag(EtagOf(r.version));
  m.set_created_by(r.created_by);
  return m;
}

v1::Holding ToProto(const HoldingRecord& r, const std::string& currency) {
  v1::Holding h;
  h.set_id(r.id);
  h.set_member_id(r.member_id);
  h.set_security(r.security);
  *h.mutable_date() = DateOf(r.end_time_us);
  h.set_shares(r.shares);
  *h.mutable_price() = MoneyIn(r.price, currency);
  h.set_recorded_by(r.recorded_by);
  return h;
}

v1::Engagement ToProto(const EngagementRecord& r, const std::string& currency) {
  v1::Engagement e;
  e.set_id(r.id);
  e.set_engagement_id(r.engagement_id);
  e.set_member_id(r.member_id);
  e.set_kind(static_cast<v1::EngagementKind>(r.kind));
  *e.mutable_time() = ToTimestamp(r.time_us);
  *e.mutable_cost() = MoneyIn(r.cost, currency);
  e.set_outcome(r.outcome);
  e.set_note(r.note);
  e.set_recorded_by(r.recorded_by);
  return e;
}

v1::Coverage ToProto(const CoverageRecord& r, const std::string& currency) {
  v1::Coverage c;
  c.set_member_id(r.member_id);
  c.set_security(r.security);
  *c.mutable_date() = DateOf(r.end_time_us);
  c.set_rating(static_cast<v1::Rating>(r.rating));
  c.set_rating_text(r.rating_text);
  if (r.target_price)
    *c.mutable_target_price() = MoneyIn(*r.target_price, currency);
  c.set_recorded_by(r.recorded_by);
  return c;
}

v1::Position ToProto(const PositionRecord& p, const std::string& currency) {
  v1::Position out;
  out.set_member_id(p.member_id);
  out.set_display_name(p.display_name);
  out.set_security(p.security);
  *out.mutable_date() = DateOf(p.end_time_us);
  out.set_shares(p.shares);
  *out.mutable_price() = MoneyIn(p.price, currency);
  *out.mutable_market_value() = MoneyIn(p.market_value, currency);
  return out;
}

// ---- fields ----------------------------------------------------------------

// A security's code: 1 to 32 characters of letters, digits, '.', '-' or
// '_' ("ACME", "US0378331005", "BRK.B"), kept in upper case.
absl::StatusOr<std::string> ReadSecurity(absl::string_view text,
                                         absl::string_view field) {
  const absl::string_view s = absl::StripAsciiWhitespace(text);
  if (s.empty()) return InvalidField(field, "is required");
  if (s.size() > 32) return InvalidField(field, "is longer than 32 characters");
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' &&
        c != '-' && c != '_') {
      return InvalidField(field,
                          "may hold only letters, digits, '.', '-' and '_'");
    }
  }
  return absl::AsciiStrToUpper(s);
}

absl::Status CheckShares(int64_t shares, absl::string_view field) {
  if (shares < 0) return InvalidField(field, "must not be negative");
  if (shares > kMaxShares) {
    return InvalidField(field, "is more than 10^15 shares");
  }
  return absl::OkStatus();
}

absl::StatusOr<Decimal> CheckPrice(const Decimal& price,
                                   absl::string_view field) {
  if (price.is_negative()) return InvalidField(field, "must not be negative");
  if (price > Decimal::FromUnits(kMaxPriceUnits)) {
    return InvalidField(field, "is more than 10^12 per share");
  }
  return price;
}

// Sets `out`'s fields named by `wants` from `in`, checking each; every wrong
// field is listed in the error.
absl::Status ReadMemberFields(
    const v1::Member& in, const std::function<bool(absl::string_view)>& wants,
    const std::string& phone_region, MemberRecord& out) {
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    std::vector<FieldViolation> v = FieldViolations(s);
    if (v.empty()) v.push_back({"member", std::string(s.message())});
    violations.insert(violations.end(), v.begin(), v.end());
  };
  if (wants("display_name")) {
    absl::Status s =
        CheckRequiredText(in.display_name(), "member.display_name", 256);
    note(s);
    if (s.ok()) {
      out.display_name =
          std::string(absl::StripAsciiWhitespace(in.display_name()));
      if (FirmNameKey(out.display_name).empty()) {
        violations.push_back(
            {"member.display_name", "needs a letter or a digit"});
      }
    }
  }
  if (wants("kind")) {
    if (in.kind() == v1::MEMBER_KIND_UNSPECIFIED ||
        !v1::MemberKind_IsValid(in.kind())) {
      violations.push_back(
          {"member.kind",
           EnumRefusal(in.kind(), v1::MemberKind_IsValid(in.kind()),
                       "shareholder, investor or analyst")});
    } else {
      out.kind = in.kind();
    }
  }
  if (wants("type")) {
    if (!v1::MemberType_IsValid(in.type())) {
      violations.push_back(
          {"member.type",
           "is not one of institutional, retail, high_net_worth, sell_side, "
           "buy_side"});
    } else {
      out.type = in.type();
    }
  }
  if (wants("organisation")) {
    absl::Status s =
        CheckOptionalText(in.organisation(), "member.organisation", 256);
    note(s);
    if (s.ok()) {
      out.organisation =
          std::string(absl::StripAsciiWhitespace(in.organisation()));
    }
  }
  if (wants("contacts")) {
    ReadContacts(in.contacts(), "member.contacts", phone_region, &out.contacts,
                 &violations);
  }
  if (wants("external_ids")) {
    ReadExternalKeys(in.external_ids(), "member.external_ids",
                     &out.external_ids, &violations);
  }
  if (wants("attributes")) {
    ReadAttributes(in.attributes(), "member.attributes", &out.attributes,
                   &violations);
  }
  if (!violations.empty()) return InvalidFields(violations);
  return absl::OkStatus();
}

// The last position of a page of a computed list (register, changes) as the
// key of its page token, "VALUE:MEMBER:SECURITY" (none of the three holds
// ':'), and back: the next page starts after it, so that rows recorded
// between pages shift nothing.
std::string PositionKeyText(const Decimal& value, const std::string& member,
                            const std::string& security) {
  return absl::StrCat(value.ToString(), ":", member, ":", security);
}
absl::StatusOr<CommunityStore::PositionKey> ParsePositionKey(
    absl::string_view text) {
  const std::vector<std::string> parts = absl::StrSplit(text, ':');
  absl::StatusOr<Decimal> value =
      parts.size() == 3 ? Decimal::Parse(parts[0])
                        : absl::InvalidArgumentError("not three parts");
  if (!value.ok() || parts[1].empty() || parts[2].empty()) {
    return InvalidField("page_token", "is not a token this service issued");
  }
  return CommunityStore::PositionKey{*value, parts[1], parts[2]};
}

// The mean and median of exact prices, to the billionth (halves away from
// zero).
Decimal MeanOf(const std::vector<Decimal>& v) {
  Int128 sum = 0;
  for (const Decimal& d : v) sum += d.raw_nanos();
  const Int128 n = static_cast<Int128>(v.size());
  return Decimal::FromRawNanos((sum + n / 2) / n);  // prices are >= 0
}

Decimal MedianOf(std::vector<Decimal> v) {
  std::sort(v.begin(), v.end());
  const size_t mid = v.size() / 2;
  if (v.size() % 2 == 1) return v[mid];
  const Int128 two = v[mid - 1].raw_nanos() + v[mid].raw_nanos();
  return Decimal::FromRawNanos((two + 1) / 2);
}

// An amount of a member's answer as money: OUT_OF_RANGE naming the member
// when it does not fit (only rows stored before holdings were limited can
// reach that), rather than an empty amount.
absl::StatusOr<google::type::Money> MemberMoney(const Decimal& d,
                                                const std::string& currency,
                                                const std::string& member) {
  absl::StatusOr<google::type::Money> m = ToMoney(d, currency, "amount");
  if (m.ok()) return m;
  return absl::OutOfRangeError(absl::StrCat("an amount of member ", member,
                                            " is past the largest amount"));
}

}  // namespace

CommunityLogic::CommunityLogic(CommunityStore* store, IdGenerator* ids,
                               Clock clock, CommunityLogicOptions options,
                               differentiation::Differentiation* values)
    : store_(store),
      ids_(ids),
      clock_(std::move(clock)),
      options_(std::move(options)),
      values_(values) {}

int64_t CommunityLogic::NowMicros() const {
  return absl::ToUnixMicros(clock_());
}

audit::Event CommunityLogic::Change(const std::string& actor,
                                    const std::string& rpc,
                                    const std::string& resource,
                                    const std::string& request_id,
                                    const std::string& details) const {
  return {.time_us = NowMicros(),
          .actor = actor,
          .rpc = rpc,
          .resource = resource,
          .request_id = request_id,
          .details = details};
}

v1::Member CommunityLogic::Written(const MemberRecord& r) {
  absl::StatusOr<v1::Member> m = WithValue(r);
  return m.ok() ? *std::move(m) : ToProto(r);
}

absl::StatusOr<v1::Member> CommunityLogic::WithValue(const MemberRecord& r) {
  v1::Member m = ToProto(r);
  if (values_ == nullptr) return m;
  RAPPORT_ASSIGN_OR_RETURN(auto values, values_->ValuesOf({r.id}));
  if (auto it = values.find(r.id); it != values.end()) {
    *m.mutable_value() = std::move(it->second);
  }
  return m;
}

void CommunityLogic::Rescore(const std::vector<std::string>& member_ids) {
  if (values_ != nullptr) values_->RescoreSoon(member_ids);
}

absl::Status CommunityLogic::CheckMemberExists(const std::string& id,
                                               const std::string& field) {
  RAPPORT_RETURN_IF_ERROR(CheckId(id, field));
  RAPPORT_ASSIGN_OR_RETURN(bool exists, store_->MemberExists(id));
  if (!exists) return EntityNotFound("member", id);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> CommunityLogic::DateOrToday(
    const google::type::Date& date, absl::string_view field) const {
  if (date.year() == 0 && date.month() == 0 && date.day() == 0) {
    const int64_t now = NowMicros();
    return (now / kDayUs + 1) * kDayUs - 1;
  }
  return DateEnd(date, field);
}

absl::StatusOr<int64_t> CommunityLogic::TimeOrNow(
    const google::protobuf::Timestamp* t, absl::string_view field) const {
  if (t == nullptr) return NowMicros();
  return FromTimestamp(*t, field);
}

// ---- members ---------------------------------------------------------------

absl::StatusOr<v1::Member> CommunityLogic::CreateMember(
    const v1::CreateMemberRequest& request, const std::string& actor) {
  return Create(request, actor, "", "CreateMember");
}

absl::StatusOr<v1::Member> CommunityLogic::Create(
    const v1::CreateMemberRequest& request, const std::string& actor,
    const std::string& identify_email_key, absl::string_view rpc) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (!request.member().id().empty()) {
    return InvalidField("member.id", "is assigned by the service");
  }
  MemberRecord record;
  RAPPORT_RETURN_IF_ERROR(ReadMemberFields(
      request.member(), [](absl::string_view) { return true; },
      options_.phone_region, record));
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("member", request.request_id());
  record.create_time_us = record.update_time_us = NowMicros();
  record.version = 1;
  record.created_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      MemberRecord stored,
      store_->CreateMember(record, EntityFingerprint(request.member()),
                           Change(actor, std::string(rpc),
                                  "members/" + record.id, request.request_id()),
                           identify_email_key));
  return Written(stored);
}

absl::StatusOr<v1::Member> CommunityLogic::GetMember(
    const v1::GetMemberRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<MemberRecord> r = store_->GetMember(request.id());
  if (absl::IsNotFound(r.status())) {
    return EntityNotFound("member", request.id());
  }
  if (!r.ok()) return r.status();
  return WithValue(*r);
}

absl::StatusOr<v1::ListMembersResponse> CommunityLogic::ListMembers(
    const v1::ListMembersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  std::vector<FieldViolation> violations;
  if (!v1::MemberKind_IsValid(request.kind())) {
    violations.push_back({"kind", "is not a member kind"});
  }
  if (!cv1::Tier_IsValid(request.tier())) {
    violations.push_back({"tier", "is not a tier"});
  }
  absl::StatusOr<bool> ordered = OrderByValue(request.order_by());
  AddViolations(ordered.status(), &violations);
  AddViolations(CheckOptionalText(request.segment(), "segment", 64),
                &violations);
  if (!violations.empty()) return InvalidFields(violations);
  const bool by_value = *ordered;
  // As before order_by took "value desc": tokens of either form still serve.
  const std::string filter =
      absl::StrCat(request.kind(), "/", request.tier(), "/", request.segment(),
                   "/", by_value ? "value" : "");
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           DecodePageToken(request.page_token(), filter));
  RAPPORT_ASSIGN_OR_RETURN(const ListCursor cursor,
                           ReadListCursor(after, by_value));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<MemberRecord> records,
      store_->ListMembers(request.kind(), request.tier(), request.segment(),
                          by_value, cursor.id, cursor.value_hundredths,
                          size + 1));
  v1::ListMembersResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  std::vector<std::string> ids;
  for (const MemberRecord& r : records) ids.push_back(r.id);
  absl::flat_hash_map<std::string, cv1::EntityValue> values;
  if (values_ != nullptr && !ids.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(values, values_->ValuesOf(ids));
  }
  for (const MemberRecord& r : records) {
    v1::Member* m = response.add_members();
    *m = ToProto(r);
    if (auto it = values.find(r.id); it != values.end()) {
      *m->mutable_value() = it->second;
    }
  }
  if (more) {
    // The value the page was sorted by, not the one read after it (a
    // refresh may have published new values in between).
    const MemberRecord& last = records.back();
    response.set_next_page_token(EncodePageToken(
        ListCursorKey(by_value, last.listed_value_hundredths, last.id),
        filter));
  }
  return response;
}

absl::StatusOr<v1::Member> CommunityLogic::UpdateMember(
    const v1::UpdateMemberRequest& request, const std::string& actor) {
  const v1::Member& in = request.member();
  RAPPORT_RETURN_IF_ERROR(CheckId(in.id(), "member.id"));
  RAPPORT_RETURN_IF_ERROR(CheckUpdateMask(
      request.update_mask(), {"display_name", "kind", "type", "organisation",
                              "contacts", "external_ids", "attributes"}));
  auto wants = [&](absl::string_view field) {
    for (const std::string& p : request.update_mask().paths()) {
      if (p == field) return true;
    }
    return false;
  };
  // Checked before the store is touched, so that bad input changes nothing.
  MemberRecord fields;
  RAPPORT_RETURN_IF_ERROR(
      ReadMemberFields(in, wants, options_.phone_region, fields));
  absl::StatusOr<MemberRecord> updated = store_->UpdateMember(
      in.id(),
      [&](MemberRecord& row) -> absl::Status {
        MemberRecord wanted = row;
        if (wants("display_name")) wanted.display_name = fields.display_name;
        if (wants("kind")) wanted.kind = fields.kind;
        if (wants("type")) wanted.type = fields.type;
        if (wants("organisation")) wanted.organisation = fields.organisation;
        if (wants("contacts")) wanted.contacts = fields.contacts;
        if (wants("external_ids")) wanted.external_ids = fields.external_ids;
        if (wants("attributes")) wanted.attributes = fields.attributes;
        KeepStoredOrder(wanted.external_ids, row.external_ids);
        // Nothing to change (a retry whose answer was lost, or values it
        // has already): the store writes and audits nothing, and no etag can
        // be stale for it.
        if (wanted == row) return absl::OkStatus();
        RAPPORT_RETURN_IF_ERROR(
            CheckEtag(in.etag(), row.version, "member", row.id, "member.etag"));
        row = std::move(wanted);
        row.update_time_us = NowMicros();
        ++row.version;
        return absl::OkStatus();
      },
      Change(actor, "UpdateMember", "members/" + in.id(), "",
             absl::StrJoin(request.update_mask().paths(), ",")));
  if (absl::IsNotFound(updated.status())) {
    return EntityNotFound("member", in.id());
  }
  if (!updated.ok()) return updated.status();
  return Written(*updated);
}

absl::Status CommunityLogic::DeleteMember(
    const v1::DeleteMemberRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::Status s = store_->DeleteMember(
      request.id(), request.force(),
      [&](const MemberRecord& stored) {
        return CheckEtag(request.etag(), stored.version, "member", stored.id);
      },
      Change(actor, "DeleteMember", "members/" + request.id(), "",
             request.force() ? "force" : ""));
  if (absl::IsNotFound(s)) {
    // Nothing to delete: with allow_missing, a retry that finds its work
    // done (nothing is written or audited).
    if (request.allow_missing()) return absl::OkStatus();
    return EntityNotFound("member", request.id());
  }
  return s;
}

absl::StatusOr<v1::IdentifyMemberResponse> CommunityLogic::IdentifyMember(
    const v1::IdentifyMemberRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (request.external_ids_size() == 0 && request.contact_email().empty()) {
    return InvalidField("external_ids",
                        "at least one identity is required: external_ids or "
                        "contact_email");
  }
  if (!v1::MemberKind_IsValid(request.kind())) {
    return InvalidField("kind", "is not a member kind");
  }
  v1::Member shape;
  *shape.mutable_external_ids() = request.external_ids();
  MemberRecord ids;
  // Errors name the request's own fields ("external_ids[0].id").
  RAPPORT_RETURN_IF_ERROR(WithoutFieldPrefix(
      ReadMemberFields(
          shape, [](absl::string_view f) { return f == "external_ids"; },
          options_.phone_region, ids),
      "member."));
  std::string email;
  if (!request.contact_email().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(
        email, NormalizeEmail(request.contact_email(), "contact_email"));
  }
  // The member a create under this request id makes (its retry says
  // created again).
  const std::string made_here = request.request_id().empty()
                                    ? ""
                                    : KeyedId("member", request.request_id());
  const v1::CreateMemberRequest create = IdentifiedCreate(request, email);
  RAPPORT_ASSIGN_OR_RETURN(
      Identified<v1::Member> identified,
      FindOrCreate<v1::Member>({
          .find =
              [&] {
                return store_->FindMembers(
                    ids.external_ids,
                    email.empty() ? "" : EmailMatchKey(email));
              },
          .get =
              [&](const std::string& id) {
                v1::GetMemberRequest get;
                get.set_id(id);
                return GetMember(get);
              },
          .create = [&] { return CreateIdentified(create, email, actor); },
          .made_here = made_here,
          .fingerprint = EntityFingerprint(create.member()),
          .made_before = [&] { return store_->MemberFingerprint(made_here); },
          .nouns = "members",
          .what = "a member",
          .advice = "identify with fewer identities",
      }));
  v1::IdentifyMemberResponse response;
  *response.mutable_member() = std::move(identified.entity);
  response.set_created(identified.created);
  return response;
}

v1::CreateMemberRequest CommunityLogic::IdentifiedCreate(
    const v1::IdentifyMemberRequest& request, const std::string& email) {
  v1::CreateMemberRequest create;
  v1::Member* m = create.mutable_member();
  m->set_display_name(request.display_name());
  m->set_kind(request.kind() == v1::MEMBER_KIND_UNSPECIFIED
                  ? v1::MEMBER_KIND_INVESTOR
                  : request.kind());
  *m->mutable_external_ids() = request.external_ids();
  if (!email.empty()) {
    cv1::Contact* c = m->add_contacts();
    c->set_name(request.display_name());
    c->set_email(email);
  }
  create.set_request_id(request.request_id());
  return create;
}

absl::StatusOr<v1::Member> CommunityLogic::CreateIdentified(
    const v1::CreateMemberRequest& create, const std::string& email,
    const std::string& actor) {
  const std::string& name = create.member().display_name();
  if (name.empty()) {
    return InvalidField("display_name",
                        "is required to create the member that the "
                        "identities do not name yet");
  }
  // Checked here, so that a bad name is not reported a second time as the
  // contact's, a field the request does not have.
  RAPPORT_RETURN_IF_ERROR(CheckRequiredText(name, "display_name", 256));
  absl::StatusOr<v1::Member> created =
      Create(create, actor, email.empty() ? "" : EmailMatchKey(email),
             "IdentifyMember");
  if (!created.ok()) return WithoutFieldPrefix(created.status(), "member.");
  return created;
}

absl::StatusOr<v1::FindDuplicateMembersResponse> CommunityLogic::FindDuplicates(
    const v1::FindDuplicateMembersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(
      std::string after,
      DecodePageToken(request.page_token(), "members/duplicates"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<DuplicateMemberGroupRecord> groups,
                           store_->FindDuplicates(after, size + 1));
  v1::FindDuplicateMembersResponse response;
  const bool more = static_cast<int>(groups.size()) > size;
  if (more) groups.resize(size);
  for (DuplicateMemberGroupRecord& g : groups) {
    v1::DuplicateMemberGroup* out = response.add_groups();
    out->set_reason(g.reason);
    out->set_key(g.key);
    for (std::string& id : g.member_ids) out->add_member_ids(std::move(id));
  }
  if (more) {
    const DuplicateMemberGroupRecord& last = groups.back();
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(last.reason, "\n", last.key), "members/duplicates"));
  }
  return response;
}

// ---- register --------------------------------------------------------------

absl::StatusOr<v1::Holding> CommunityLogic::RecordHolding(
    const v1::RecordHoldingRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::Holding& in = request.holding();
  if (!in.id().empty()) {
    return InvalidField("holding.id", "is assigned by the service");
  }
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (const FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  HoldingRecord h;
  note(CheckId(in.member_id(), "holding.member_id"));
  h.member_id = in.member_id();
  absl::StatusOr<std::string> security =
      ReadSecurity(in.security(), "holding.security");
  note(security.status());
  if (security.ok()) h.security = *security;
  if (!in.has_date()) {
    violations.push_back({"holding.date", "is required"});
  } else {
    absl::StatusOr<int64_t> end = DateEnd(in.date(), "holding.date");
    note(end.status());
    if (end.ok()) {
      note(CheckDateNotFuture(*end, NowMicros(), "holding.date"));
      h.end_time_us = *end;
    }
  }
  note(CheckShares(in.shares(), "holding.shares"));
  h.shares = in.shares();
  if (!in.has_price()) {
    violations.push_back({"holding.price", "is required"});
  } else {
    absl::StatusOr<Decimal> price =
        ReadAmount(in.price(), "holding.price", options_.currency, false);
    if (price.ok()) price = CheckPrice(*price, "holding.price");
    note(price.status());
    if (price.ok()) h.price = *price;
  }
  if (violations.empty()) {
    note(CheckPositionValue(h.shares, h.price, "holding.shares"));
  }
  if (!violations.empty()) return InvalidFields(violations);
  RAPPORT_RETURN_IF_ERROR(CheckMemberExists(h.member_id, "holding.member_id"));
  h.id = request.request_id().empty()
             ? ids_->Next()
             : KeyedId("holding", request.request_id());
  h.recorded_by = actor;
  h.create_time_us = NowMicros();
  RAPPORT_ASSIGN_OR_RETURN(
      HoldingRecord stored,
      store_->RecordHolding(
          h,
          Fingerprint(HoldingContent(h.member_id, h.security, h.end_time_us,
                                     h.shares, h.price)),
          !request.request_id().empty(),
          Change(actor, "RecordHolding", "members/" + h.member_id,
                 request.request_id(), "")));
  Rescore({stored.member_id});
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::GetRegisterResponse> CommunityLogic::GetRegister(
    const v1::GetRegisterRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(int64_t as_of,
                           DateOrToday(request.as_of(), "as_of"));
  std::string security;
  if (!request.security().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(security,
                             ReadSecurity(request.security(), "security"));
  }
  // A page's token names the last position it showed, and the day
  // ("VALUE:MEMBER:SECURITY@AS_OF"). Without as_of, the first page fixes the
  // day, so that paging across midnight stays on one register.
  const google::type::Date& d = request.as_of();
  const bool today = d.year() == 0 && d.month() == 0 && d.day() == 0;
  const std::string filter = absl::StrCat(
      "register/", today ? "today" : absl::StrCat(as_of), "/", security);
  RAPPORT_ASSIGN_OR_RETURN(std::string key,
                           DecodePageToken(request.page_token(), filter));
  std::optional<CommunityStore::PositionKey> after;
  if (!key.empty()) {
    const std::pair<std::string, std::string> parts =
        absl::StrSplit(key, absl::MaxSplits('@', 1));
    // The day the first page fixed: the end of a day (as DateOrToday gives
    // it) not after today's, and the request's own when it names one.
    // Tokens are not signed: anything else was not issued here.
    int64_t token_as_of = 0;
    // (A replica whose clock is ahead may have issued it for its today.)
    if (!absl::SimpleAtoi(parts.second, &token_as_of) ||
        (token_as_of + 1) % kDayUs != 0 || token_as_of > as_of + kDayUs ||
        (!today && token_as_of != as_of)) {
      return InvalidField("page_token", "is not a token this service issued");
    }
    RAPPORT_ASSIGN_OR_RETURN(after, ParsePositionKey(parts.first));
    as_of = token_as_of;
  }
  RAPPORT_ASSIGN_OR_RETURN(CommunityStore::RegisterPage page,
                           store_->Register(as_of, security, after, size + 1));
  v1::GetRegisterResponse response;
  const bool more = static_cast<int>(page.positions.size()) > size;
  if (more) page.positions.resize(size);
  for (const PositionRecord& p : page.positions) {
    v1::Position* out = response.add_positions();
    *out = ToProto(p, options_.currency);
    RAPPORT_ASSIGN_OR_RETURN(
        *out->mutable_market_value(),
        MemberMoney(p.market_value, options_.currency, p.member_id));
  }
  // A sum over the whole register: past what an amount can carry, an error
  // (never a silent zero).
  absl::StatusOr<google::type::Money> total =
      ToMoney(page.total, options_.currency, "total_market_value");
  if (!total.ok()) {
    return absl::OutOfRangeError(absl::StrCat(
        "the register's total market value is past the largest amount",
        security.empty() ? "; ask for one security at a time (security)" : ""));
  }
  *response.mutable_total_market_value() = *std::move(total);
  response.set_holders(page.holders);
  if (more) {
    const PositionRecord& last = page.positions.back();
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(
            PositionKeyText(last.market_value, last.member_id, last.security),
            "@", as_of),
        filter));
  }
  return response;
}

absl::StatusOr<v1::ListPositionHistoryResponse>
CommunityLogic::ListPositionHistory(
    const v1::ListPositionHistoryRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_RETURN_IF_ERROR(CheckMemberExists(request.member_id(), "member_id"));
  std::string security;
  if (!request.security().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(security,
                             ReadSecurity(request.security(), "security"));
  }
  const std::string filter =
      absl::StrCat("history/", request.member_id(), "/", security);
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           DecodePageToken(request.page_token(), filter));
  // The token holds the last row's key: "SECURITY:TIME".
  std::string after_security;
  int64_t after_time_us = 0;
  if (!after.empty()) {
    const size_t colon = after.rfind(':');
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(after.substr(colon + 1), &after_time_us)) {
      return InvalidField("page_token", "is not a token of this listing");
    }
    after_security = after.substr(0, colon);
  }
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<HoldingRecord> rows,
      store_->PositionHistory(request.member_id(), security, after_security,
                              after_time_us, size + 1));
  v1::ListPositionHistoryResponse response;
  const bool more = static_cast<int>(rows.size()) > size;
  if (more) rows.resize(size);
  for (const HoldingRecord& h : rows) {
    *response.add_holdings() = ToProto(h, options_.currency);
  }
  if (more) {
    const HoldingRecord& last = rows.back();
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(last.security, ":", last.end_time_us), filter));
  }
  return response;
}

absl::StatusOr<v1::ListPositionChangesResponse>
CommunityLogic::ListPositionChanges(
    const v1::ListPositionChangesRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  std::vector<FieldViolation> violations;
  int64_t from = 0, to = 0;
  for (const auto& [date, field, out] :
       {std::tuple(&request.from(), "from", &from),
        std::tuple(&request.to(), "to", &to)}) {
    if (date->year() == 0) {
      violations.push_back({field, "is required"});
      continue;
    }
    absl::StatusOr<int64_t> end = DateEnd(*date, field);
    if (!end.ok()) {
      for (const FieldViolation& v : FieldViolations(end.status())) {
        violations.push_back(v);
      }
    } else {
      *out = *end;
    }
  }
  if (violations.empty() && from >= to) {
    violations.push_back({"to", "must be after from"});
  }
  std::string security;
  if (!request.security().empty()) {
    absl::StatusOr<std::string> s =
        ReadSecurity(request.security(), "security");
    if (!s.ok()) {
      AddViolations(s.status(), &violations);
    } else {
      security = *s;
    }
  }
  if (!violations.empty()) return InvalidFields(violations);
  const std::string filter =
      absl::StrCat("changes/", from, "/", to, "/", security);
  RAPPORT_ASSIGN_OR_RETURN(std::string key,
                           DecodePageToken(request.page_token(), filter));
  std::optional<CommunityStore::PositionKey> after;
  if (!key.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(after, ParsePositionKey(key));
  }
  RAPPORT_ASSIGN_OR_RETURN(
      auto pairs, store_->PositionChanges(from, to, security, after, size + 1));
  v1::ListPositionChangesResponse response;
  const bool more = static_cast<int>(pairs.size()) > size;
  if (more) pairs.resize(size);
  for (const PositionChangeRecord& change : pairs) {
    const PositionRecord& before = change.from;
    const PositionRecord& after = change.to;
    v1::PositionChange* p = response.add_changes();
    p->set_member_id(after.member_id);
    p->set_display_name(after.display_name);
    p->set_security(after.security);
    p->set_change(before.shares == 0             ? "new"
                  : after.shares == 0            ? "exited"
                  : after.shares > before.shares ? "bought"
                                                 : "sold");
    p->set_shares_from(before.shares);
    p->set_shares_to(after.shares);
    RAPPORT_ASSIGN_OR_RETURN(
        *p->mutable_value_from(),
        MemberMoney(before.market_value, options_.currency, after.member_id));
    RAPPORT_ASSIGN_OR_RETURN(
        *p->mutable_value_to(),
        MemberMoney(after.market_value, options_.currency, after.member_id));
    RAPPORT_ASSIGN_OR_RETURN(
        *p->mutable_traded_value(),
        MemberMoney(change.traded_value, options_.currency, after.member_id));
  }
  if (more) {
    const PositionChangeRecord& last = pairs.back();
    response.set_next_page_token(EncodePageToken(
        PositionKeyText(last.traded_value, last.to.member_id, last.to.security),
        filter));
  }
  return response;
}

// ---- engagements -----------------------------------------------------------

absl::StatusOr<v1::LogEngagementResponse> CommunityLogic::LogEngagement(
    const v1::LogEngagementRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (const FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  if (request.member_ids_size() == 0) {
    violations.push_back({"member_ids", "names no member"});
  } else if (request.member_ids_size() > kMaxEngagementMembers) {
    violations.push_back({"member_ids", "names more than 100 members"});
  }
  std::set<std::string> seen;
  for (int i = 0; i < request.member_ids_size(); ++i) {
    const std::string field = absl::StrCat("member_ids[", i, "]");
    note(CheckId(request.member_ids(i), field));
    if (!seen.insert(request.member_ids(i)).second) {
      violations.push_back({field, "names a member twice"});
    }
  }
  if (request.kind() == v1::ENGAGEMENT_KIND_UNSPECIFIED ||
      !v1::EngagementKind_IsValid(request.kind())) {
    violations.push_back(
        {"kind",
         EnumRefusal(request.kind(), v1::EngagementKind_IsValid(request.kind()),
                     "meeting, call, roadshow, conference, "
                     "earnings_call or report_sent")});
  }
  int64_t time = 0;
  if (!request.has_time()) {
    violations.push_back({"time", "is required"});
  } else {
    absl::StatusOr<int64_t> t = FromTimestamp(request.time(), "time");
    note(t.status());
    if (t.ok()) {
      note(CheckNotFuture(*t, NowMicros(), "time"));
      time = *t;
    }
  }
  Decimal cost;
  if (!request.has_cost()) {
    violations.push_back({"cost", "is required"});
  } else {
    absl::StatusOr<Decimal> c =
        ReadAmount(request.cost(), "cost", options_.currency, false);
    note(c.status());
    if (c.ok()) cost = *c;
  }
  note(CheckOptionalText(request.outcome(), "outcome", 256));
  note(CheckNoteText(request.note(), "note", 1024));
  if (!violations.empty()) return InvalidFields(violations);
  for (int i = 0; i < request.member_ids_size(); ++i) {
    RAPPORT_RETURN_IF_ERROR(CheckMemberExists(
        request.member_ids(i), absl::StrCat("member_ids[", i, "]")));
  }
  const std::string engagement_id =
      request.request_id().empty()
          ? ids_->Next()
          : KeyedId("engagement", request.request_id());
  const std::vector<Decimal> shares =
      ShareEqually(cost, request.member_ids_size());
  std::vector<EngagementRecord> rows;
  for (int i = 0; i < request.member_ids_size(); ++i) {
    EngagementRecord e;
    e.engagement_id = engagement_id;
    e.member_id = request.member_ids(i);
    e.id = LoggedEngagementRowId(engagement_id, e.member_id);
    e.kind = request.kind();
    e.time_us = time;
    e.cost = shares[i];
    e.outcome = std::string(absl::StripAsciiWhitespace(request.outcome()));
    e.note = request.note();
    e.recorded_by = actor;
    rows.push_back(std::move(e));
  }
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<EngagementRecord> stored,
      store_->LogEngagement(rows,
                            RequestFingerprintIn(options_.currency, request)));
  v1::LogEngagementResponse response;
  std::vector<std::string> members;
  for (const EngagementRecord& e : stored) {
    *response.add_engagements() = ToProto(e, options_.currency);
    members.push_back(e.member_id);
  }
  Rescore(members);
  return response;
}

absl::StatusOr<v1::ListEngagementsResponse> CommunityLogic::ListEngagements(
    const v1::ListEngagementsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_RETURN_IF_ERROR(CheckMemberExists(request.member_id(), "member_id"));
  // "by-time": the tokens of the id order before are refused, not misread.
  const std::string filter =
      absl::StrCat("engagements-by-time/", request.member_id());
  RAPPORT_ASSIGN_OR_RETURN(TimeCursor after,
                           DecodeTimeCursor(request.page_token(), filter));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<EngagementRecord> rows,
      store_->ListEngagements(request.member_id(), after, size + 1));
  v1::ListEngagementsResponse response;
  AddTimePage(
      rows, size, filter, &response,
      [](const EngagementRecord& e) { return e.time_us; },
      [&](const EngagementRecord& e) {
        *response.add_engagements() = ToProto(e, options_.currency);
      });
  return response;
}

// ---- coverage --------------------------------------------------------------

absl::StatusOr<v1::Coverage> CommunityLogic::RecordCoverage(
    const v1::RecordCoverageRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::Coverage& in = request.coverage();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (const FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  CoverageRecord r;
  note(CheckId(in.member_id(), "coverage.member_id"));
  r.member_id = in.member_id();
  absl::StatusOr<std::string> security =
      ReadSecurity(in.security(), "coverage.security");
  note(security.status());
  if (security.ok()) r.security = *security;
  if (!in.has_date()) {
    violations.push_back({"coverage.date", "is required"});
  } else {
    absl::StatusOr<int64_t> end = DateEnd(in.date(), "coverage.date");
    note(end.status());
    if (end.ok()) {
      note(CheckDateNotFuture(*end, NowMicros(), "coverage.date"));
      r.end_time_us = *end;
    }
  }
  // The rating, or the analyst's own words mapped to one.
  note(CheckOptionalText(in.rating_text(), "coverage.rating_text", 64));
  std::optional<v1::Rating> from_text = ParseRating(in.rating_text());
  if (in.rating() != v1::RATING_UNSPECIFIED) {
    if (!v1::Rating_IsValid(in.rating())) {
      violations.push_back(
          {"coverage.rating", "is not buy, hold, sell or dropped"});
    } else if (from_text.has_value() && *from_text != in.rating()) {
      violations.push_back(
          {"coverage.rating_text", "maps to another rating than rating"});
    }
    r.rating = in.rating();
  } else if (from_text.has_value()) {
    r.rating = *from_text;
  } else {
    violations.push_back(
        {in.rating_text().empty() ? "coverage.rating" : "coverage.rating_text",
         "is required: buy, hold, sell or dropped, or an analyst's scale "
         "such as outperform or underweight"});
  }
  r.rating_text = std::string(absl::StripAsciiWhitespace(in.rating_text()));
  if (in.has_target_price()) {
    absl::StatusOr<Decimal> price = ReadAmount(
        in.target_price(), "coverage.target_price", options_.currency, false);
    if (price.ok()) price = CheckPrice(*price, "coverage.target_price");
    note(price.status());
    if (price.ok()) r.target_price = *price;
  }
  if (r.rating == v1::RATING_DROPPED && r.target_price.has_value()) {
    violations.push_back(
        {"coverage.target_price", "must be unset when the rating is dropped"});
  }
  if (!violations.empty()) return InvalidFields(violations);
  // Coverage is an analyst's: a shareholder's or an investor's "rating"
  // would count in the consensus. The store checks the kind, once it knows
  // the request is no retry (a rating stored before the analyst became an
  // investor is still its answer).
  absl::StatusOr<MemberRecord> member = store_->GetMember(r.member_id);
  if (absl::IsNotFound(member.status())) {
    return EntityNotFound("member", r.member_id);
  }
  if (!member.ok()) return member.status();
  r.id = request.request_id().empty()
             ? ids_->Next()
             : KeyedId("coverage", request.request_id());
  r.create_time_us = NowMicros();
  r.recorded_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      CoverageRecord stored,
      store_->RecordCoverage(r, RequestFingerprintIn(options_.currency, in)));
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::GetConsensusResponse> CommunityLogic::GetConsensus(
    const v1::GetConsensusRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(std::string security,
                           ReadSecurity(request.security(), "security"));
  RAPPORT_ASSIGN_OR_RETURN(int64_t as_of,
                           DateOrToday(request.as_of(), "as_of"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<CoverageRecord> rows,
                           store_->CoverageOf(security, as_of));
  v1::GetConsensusResponse response;
  response.set_security(security);
  *response.mutable_as_of() = DateOf(as_of);
  // By analyst, oldest first: the last is the current rating.
  std::map<std::string, std::vector<const CoverageRecord*>> by_analyst;
  for (const CoverageRecord& r : rows) by_analyst[r.member_id].push_back(&r);
  std::vector<std::string> ids;
  for (const auto& [id, unused] : by_analyst) ids.push_back(id);
  RAPPORT_ASSIGN_OR_RETURN(auto names, store_->NamesOf(ids));
  std::vector<Decimal> targets;
  for (const auto& [id, history] : by_analyst) {
    const CoverageRecord& current = *history.back();
    // Coverage dropped: in the history only, in none of the figures.
    const bool counts = current.rating != v1::RATING_DROPPED;
    switch (current.rating) {
      case v1::RATING_BUY:
        response.set_buy(response.buy() + 1);
        break;
      case v1::RATING_HOLD:
        response.set_hold(response.hold() + 1);
        break;
      case v1::RATING_SELL:
        response.set_sell(response.sell() + 1);
        break;
      default:
        break;
    }
    if (counts && current.target_price) {
      targets.push_back(*current.target_price);
    }
    v1::AnalystView* view = response.add_analysts();
    view->set_member_id(id);
    view->set_display_name(names[id]);
    *view->mutable_current() = ToProto(current, options_.currency);
    for (const CoverageRecord* r : history) {
      *view->add_history() = ToProto(*r, options_.currency);
    }
  }
  if (!targets.empty()) {
    *response.mutable_mean_target() =
        MoneyIn(MeanOf(targets), options_.currency);
    *response.mutable_median_target() =
        MoneyIn(MedianOf(targets), options_.currency);
  }
  return response;
}

// ---- targeting and early warning --------------------------------------------

absl::StatusOr<v1::ListEngagementTargetsResponse>
CommunityLogic::ListEngagementTargets(
    const v1::ListEngagementTargetsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(
      int64_t as_of,
      TimeOrNow(request.has_as_of() ? &request.as_of() : nullptr, "as_of"));
  if (request.limit() < 0 || request.limit() > kMaxTargets) {
    return InvalidField("limit", "must be 1 to 1000 (0 or left out: 20)");
  }
  const int limit = request.limit() == 0 ? kDefaultTargets : request.limit();
  // Repeats count once, up to ten times the limit in all.
  if (static_cast<size_t>(request.peer_securities_size()) >
      10 * kMaxPeerSecurities) {
    return InvalidField("peer_securities",
                        absl::StrCat("names ", request.peer_securities_size(),
                                     " securities; at most ",
                                     kMaxPeerSecurities, " different ones"));
  }
  std::set<std::string> peers;
  for (int i = 0; i < request.peer_securities_size(); ++i) {
    RAPPORT_ASSIGN_OR_RETURN(
        std::string s, ReadSecurity(request.peer_securities(i),
                                    absl::StrCat("peer_securities[", i, "]")));
    peers.insert(std::move(s));
    if (peers.size() > kMaxPeerSecurities) {
      return InvalidField(
          "peer_securities",
          absl::StrCat("names more than ", kMaxPeerSecurities,
                       " different securities; at most ", kMaxPeerSecurities));
    }
  }
  struct Ranked {
    TargetScore score;
    TargetFacts facts;
    std::string member_id;
    std::string display_name;
    int kind = 0;
  };
  const auto better = [](const Ranked& a, const Ranked& b) {
    if (a.score.score != b.score.score) return a.score.score > b.score.score;
    return a.member_id < b.member_id;
  };
  BestOf<Ranked, decltype(better)> best(limit, better);
  RAPPORT_RETURN_IF_ERROR(store_->VisitHoldingsViews(
      as_of, [&](const MemberHoldingsView& v) -> absl::Status {
        TargetFacts f;
        // Sums over any number of positions: past the counts' range is an
        // error, never a wrap.
        const auto too_large = [&] {
          return absl::OutOfRangeError(
              absl::StrCat("the positions of member ", v.member_id,
                           " add up past the largest amount"));
        };
        for (const MemberHoldingsView::Security& s : v.securities) {
          RAPPORT_ASSIGN_OR_RETURN(
              Decimal value, StoredPositionValue(v.member_id, s.security,
                                                 s.last.shares, s.last.price));
          Decimal& sum =
              peers.contains(s.security) ? f.peer_value : f.own_value;
          absl::StatusOr<Decimal> added = sum.CheckedAdd(value);
          if (!added.ok()) return too_large();
          sum = *added;
          if (peers.contains(s.security)) continue;
          const int64_t previous =
              s.previous ? s.previous->shares : s.last.shares;
          if (__builtin_add_overflow(f.shares_last, s.last.shares,
                                     &f.shares_last) ||
              __builtin_add_overflow(f.shares_previous, previous,
                                     &f.shares_previous)) {
            return too_large();
          }
        }
        if (v.last_engagement_us.has_value()) {
          f.days_since_engagement = (as_of - *v.last_engagement_us) / kDayUs;
        }
        std::optional<TargetScore> score = ScoreTarget(f, options_.currency);
        if (!score.has_value()) return absl::OkStatus();
        best.Add({std::move(*score), f, v.member_id, v.display_name, v.kind});
        return absl::OkStatus();
      }));
  const std::vector<Ranked> ranked = std::move(best).Take();
  v1::ListEngagementTargetsResponse response;
  for (const Ranked& r : ranked) {
    v1::EngagementTarget* t = response.add_targets();
    t->set_member_id(r.member_id);
    t->set_display_name(r.display_name);
    t->set_kind(static_cast<v1::MemberKind>(r.kind));
    RAPPORT_ASSIGN_OR_RETURN(
        *t->mutable_score(),
        MemberMoney(r.score.score, options_.currency, r.member_id));
    t->set_reason(r.score.reason);
    RAPPORT_ASSIGN_OR_RETURN(
        *t->mutable_own_value(),
        MemberMoney(r.facts.own_value, options_.currency, r.member_id));
    RAPPORT_ASSIGN_OR_RETURN(
        *t->mutable_peer_value(),
        MemberMoney(r.facts.peer_value, options_.currency, r.member_id));
    if (r.facts.days_since_engagement.has_value()) {
      t->set_days_since_engagement(*r.facts.days_since_engagement);
    }
    t->set_shares_last(r.facts.shares_last);
    t->set_shares_previous(r.facts.shares_previous);
    t->set_recency_factor(r.score.recency_factor);
    t->set_trend_factor(r.score.trend_factor);
  }
  return response;
}

absl::StatusOr<v1::ListAtRiskHoldersResponse> CommunityLogic::ListAtRiskHolders(
    const v1::ListAtRiskHoldersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(
      int64_t as_of,
      TimeOrNow(request.has_as_of() ? &request.as_of() : nullptr, "as_of"));
  if (request.limit() < 0 || request.limit() > kMaxTargets) {
    return InvalidField("limit", "must be 1 to 1000 (0 or left out: 20)");
  }
  const int limit = request.limit() == 0 ? kDefaultTargets : request.limit();
  struct Risk {
    Decimal value;
    v1::AtRiskHolder holder;
  };
  const auto larger = [](const Risk& a, const Risk& b) {
    if (a.value != b.value) return a.value > b.value;
    return std::tie(a.holder.member_id(), a.holder.security()) <
           std::tie(b.holder.member_id(), b.holder.security());
  };
  BestOf<Risk, decltype(larger)> largest(limit, larger);
  auto visit = [&](const MemberHoldingsView& v) -> absl::Status {
    for (const MemberHoldingsView::Security& s : v.securities) {
      if (!s.previous || s.last.shares >= s.previous->shares) continue;
      // Engaged after the shrinking was seen: someone is on it.
      if (v.last_engagement_us && *v.last_engagement_us > s.last.end_time_us) {
        continue;
      }
      Risk r;
      // A sell-out row may carry no price: the previous row's then prices
      // the shares sold.
      const bool unpriced_exit = s.last.shares == 0 && s.last.price.is_zero();
      RAPPORT_ASSIGN_OR_RETURN(
          r.value,
          StoredPositionValue(
              v.member_id, s.security, s.previous->shares - s.last.shares,
              unpriced_exit ? s.previous->price : s.last.price));
      v1::AtRiskHolder& h = r.holder;
      h.set_member_id(v.member_id);
      h.set_security(s.security);
      // The rest only for those that make the list so far.
      if (!largest.WouldKeep(r)) continue;
      h.set_display_name(v.display_name);
      *h.mutable_previous_date() = DateOf(s.previous->end_time_us);
      h.set_previous_shares(s.previous->shares);
      *h.mutable_last_date() = DateOf(s.last.end_time_us);
      h.set_last_shares(s.last.shares);
      RAPPORT_ASSIGN_OR_RETURN(
          *h.mutable_value_at_risk(),
          MemberMoney(r.value, options_.currency, v.member_id));
      if (v.last_engagement_us) {
        *h.mutable_last_engagement_time() = ToTimestamp(*v.last_engagement_us);
      }
      h.set_reason(absl::StrCat(
          s.last.shares == 0 ? "sold out of " : "sold part of ", s.security,
          " (", s.previous->shares, " -> ", s.last.shares, " shares from ",
          DateText(s.previous->end_time_us), " to ",
          DateText(s.last.end_time_us), "); ",
          v.last_engagement_us ? absl::StrCat("not engaged since ",
                                              DateText(*v.last_engagement_us))
                               : std::string("never engaged")));
      largest.Add(std::move(r));
    }
    return absl::OkStatus();
  };
  RAPPORT_RETURN_IF_ERROR(store_->VisitHoldingsViews(as_of, visit));
  v1::ListAtRiskHoldersResponse response;
  for (Risk& r : std::move(largest).Take()) {
    *response.add_holders() = std::move(r.holder);
  }
  return response;
}

}  // namespace rapport::community
