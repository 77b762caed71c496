#include "services/partner/partner_logic.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/api_names.h"
#include "common/auth/jwt.h"
#include "common/base/status_macros.h"
#include "common/base/timestamp.h"
#include "common/identity.h"
#include "common/log.h"
#include "common/paging.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "common/validation.h"
#include "services/partner/partner_rules.h"

namespace rapport::partner {
namespace {

namespace cv1 = ::rapport::common::v1;

// Page tokens over ids, bound to the request's filter.
absl::StatusOr<std::string> After(const std::string& token,
                                  const std::string& filter) {
  return DecodePageToken(token, filter);
}

// ---- conversions -----------------------------------------------------------

v1::Partner ToProto(const PartnerRecord& r) {
  v1::Partner p;
  p.set_id(r.id);
  p.set_display_name(r.display_name);
  p.set_kind(static_cast<v1::PartnerKind>(r.kind));
  p.set_lifecycle(static_cast<v1::Lifecycle>(r.lifecycle));
  p.set_region(r.region);
  ::rapport::ToProto(EntityChildren{r.contacts, r.external_ids, r.attributes},
                     p.mutable_contacts(), p.mutable_external_ids(),
                     p.mutable_attributes());
  *p.mutable_create_time() = ToTimestamp(r.create_time_us);
  *p.mutable_update_time() = ToTimestamp(r.update_time_us);
  p.set_etag(PartnerEtag(r.version));
  p.set_created_by(r.created_by);
  return p;
}

v1::Program ToProto(const ProgramRecord& r) {
  v1::Program p;
  p.set_id(r.id);
  p.set_name(r.name);
  p.set_basis(v1::ProgramBasis_IsValid(r.basis)
                  ? static_cast<v1::ProgramBasis>(r.basis)
                  : v1::PROGRAM_BASIS_UNSPECIFIED);
  for (const ProgramTermsRecord& t : r.terms) {
    v1::ProgramTerms* out = p.add_terms();
    out->set_tier(static_cast<cv1::Tier>(t.tier));
    // Percentages keep up to 4 decimals: print them without trailing zeros.
    std::string text = t.commission_percent.ToString();
    if (text.find('.') != std::string::npos) {
      while (!text.empty() && text.back() == '0') text.pop_back();
      if (!text.empty() && text.back() == '.') text.pop_back();
    }
    out->set_commission_percent(text);
  }
  *p.mutable_create_time() = ToTimestamp(r.create_time_us);
  return p;
}

// As it stands at `now_us` (an active agreement past its period reads as
// expired).
v1::Agreement ToProto(const AgreementRecord& r, int64_t now_us) {
  v1::Agreement a;
  a.set_id(r.id);
  a.set_partner_id(r.partner_id);
  a.set_program_id(r.program_id);
  *a.mutable_start_time() = ToTimestamp(r.start_time_us);
  if (r.end_time_us) *a.mutable_end_time() = ToTimestamp(*r.end_time_us);
  a.set_state(AgreementStateAt(r.state, r.end_time_us, now_us));
  *a.mutable_create_time() = ToTimestamp(r.create_time_us);
  *a.mutable_update_time() = ToTimestamp(r.update_time_us);
  a.set_etag(PartnerEtag(r.version));
  return a;
}

v1::Deal ToProto(const DealRecord& r, const std::string& currency) {
  v1::Deal d;
  d.set_id(r.id);
  d.set_partner_id(r.partner_id);
  d.set_reference(r.reference);
  d.set_account_name(r.account_name);
  d.set_account_domain(r.account_domain);
  *d.mutable_amount() = MoneyIn(r.amount, currency);
  *d.mutable_register_time() = ToTimestamp(r.register_time_us);
  if (r.expected_close_time_us) {
    *d.mutable_expected_close_time() = ToTimestamp(*r.expected_close_time_us);
  }
  if (r.close_time_us) *d.mutable_close_time() = ToTimestamp(*r.close_time_us);
  d.set_state(static_cast<v1::DealState>(r.state));
  d.set_conflict_with(r.conflict_with);
  d.set_approved_in_conflict(r.approved_in_conflict);
  *d.mutable_create_time() = ToTimestamp(r.create_time_us);
  *d.mutable_update_time() = ToTimestamp(r.update_time_us);
  d.set_etag(PartnerEtag(r.version));
  return d;
}

v1::Order ToProto(const OrderRecord& r, const std::string& currency) {
  v1::Order o;
  o.set_id(r.id);
  o.set_partner_id(r.partner_id);
  *o.mutable_order_time() = ToTimestamp(r.order_time_us);
  *o.mutable_amount() = MoneyIn(r.amount, currency);
  o.set_description(r.description);
  *o.mutable_create_time() = ToTimestamp(r.create_time_us);
  o.set_recorded_by(r.recorded_by);
  return o;
}

v1::FundRequest ToProto(const FundRecord& r, const std::string& currency) {
  v1::FundRequest f;
  f.set_id(r.id);
  f.set_partner_id(r.partner_id);
  f.set_activity(r.activity);
  *f.mutable_requested_amount() = MoneyIn(r.requested_amount, currency);
  f.set_state(static_cast<v1::FundRequestState>(r.state));
  if (r.claimed_amount) {
    *f.mutable_claimed_amount() = MoneyIn(*r.claimed_amount, currency);
  }
  if (r.claim_time_us) *f.mutable_claim_time() = ToTimestamp(*r.claim_time_us);
  if (r.paid_time_us) *f.mutable_paid_time() = ToTimestamp(*r.paid_time_us);
  *f.mutable_create_time() = ToTimestamp(r.create_time_us);
  *f.mutable_update_time() = ToTimestamp(r.update_time_us);
  f.set_etag(PartnerEtag(r.version));
  f.set_requested_by(r.requested_by);
  f.set_claimed_by(r.claimed_by);
  return f;
}

v1::Interaction ToProto(const InteractionRecord& r,
                        const std::string& currency) {
  v1::Interaction i;
  i.set_id(r.id);
  i.set_partner_id(r.partner_id);
  i.set_channel(static_cast<cv1::Channel>(r.channel));
  i.set_kind(r.kind);
  *i.mutable_interaction_time() = ToTimestamp(r.interaction_time_us);
  *i.mutable_cost() = MoneyIn(r.cost, currency);
  i.set_note(r.note);
  i.set_recorded_by(r.recorded_by);
  return i;
}

// ---- partner fields --------------------------------------------------------

// Sets `out`'s fields named by `wants` from `in`, checking each; every wrong
// field is listed in the error.
absl::Status ReadPartnerFields(
    const v1::Partner& in, const std::function<bool(absl::string_view)>& wants,
    const std::string& phone_region, PartnerRecord& out) {
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    std::vector<FieldViolation> v = FieldViolations(s);
    if (v.empty()) v.push_back({"partner", std::string(s.message())});
    violations.insert(violations.end(), v.begin(), v.end());
  };
  if (wants("display_name")) {
    absl::Status s =
        CheckRequiredText(in.display_name(), "partner.display_name", 256);
    note(s);
    if (s.ok()) {
      out.display_name =
          std::string(absl::StripAsciiWhitespace(in.display_name()));
      if (FirmNameKey(out.display_name).empty()) {
        violations.push_back(
            {"partner.display_name", "needs a letter or a digit"});
      }
    }
  }
  if (wants("kind")) {
    if (in.kind() == v1::PARTNER_KIND_UNSPECIFIED ||
        !v1::PartnerKind_IsValid(in.kind())) {
      violations.push_back(
          {"partner.kind",
           EnumRefusal(in.kind(), v1::PartnerKind_IsValid(in.kind()),
                       "supplier, distributor, channel, agency or "
                       "intermediary")});
    } else {
      out.kind = in.kind();
    }
  }
  if (wants("lifecycle") && !v1::Lifecycle_IsValid(in.lifecycle())) {
    violations.push_back({"partner.lifecycle", "is not a lifecycle"});
  }
  if (wants("region")) {
    absl::Status s = CheckOptionalText(in.region(), "partner.region", 64);
    note(s);
    if (s.ok())
      out.region = std::string(absl::StripAsciiWhitespace(in.region()));
  }
  if (wants("contacts")) {
    ReadContacts(in.contacts(), "partner.contacts", phone_region, &out.contacts,
                 &violations);
  }
  if (wants("external_ids")) {
    ReadExternalKeys(in.external_ids(), "partner.external_ids",
                     &out.external_ids, &violations);
  }
  if (wants("attributes")) {
    ReadAttributes(in.attributes(), "partner.attributes", &out.attributes,
                   &violations);
  }
  if (!violations.empty()) return InvalidFields(violations);
  return absl::OkStatus();
}

}  // namespace

std::string PartnerEtag(int64_t version) { return absl::StrCat(version); }

PartnerLogic::PartnerLogic(PartnerStore* store, IdGenerator* ids, Clock clock,
                           PartnerLogicOptions options,
                           differentiation::Differentiation* values)
    : store_(store),
      ids_(ids),
      clock_(std::move(clock)),
      options_(std::move(options)),
      values_(values) {}

int64_t PartnerLogic::NowMicros() const { return absl::ToUnixMicros(clock_()); }

audit::Event PartnerLogic::Change(const std::string& actor,
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

v1::Partner PartnerLogic::Written(const PartnerRecord& r) {
  absl::StatusOr<v1::Partner> p = WithValue(r);
  return p.ok() ? *std::move(p) : ToProto(r);
}

absl::StatusOr<v1::Partner> PartnerLogic::WithValue(const PartnerRecord& r) {
  v1::Partner p = ToProto(r);
  if (values_ == nullptr) return p;
  absl::StatusOr<absl::flat_hash_map<std::string, cv1::EntityValue>> values =
      values_->ValuesOf({r.id});
  if (!values.ok()) return values.status();
  if (auto it = values->find(r.id); it != values->end()) {
    *p.mutable_value() = std::move(it->second);
  }
  return p;
}

void PartnerLogic::Rescore(const std::string& partner_id) {
  if (values_ != nullptr) values_->RescoreSoon({partner_id});
}

absl::Status PartnerLogic::CheckPartnerExists(const std::string& id,
                                              const std::string& field) {
  RAPPORT_RETURN_IF_ERROR(CheckId(id, field));
  RAPPORT_ASSIGN_OR_RETURN(bool exists, store_->PartnerExists(id));
  if (!exists) return EntityNotFound("partner", id);
  return absl::OkStatus();
}

// ---- partners --------------------------------------------------------------

absl::StatusOr<v1::Partner> PartnerLogic::CreatePartner(
    const v1::CreatePartnerRequest& request, const std::string& actor) {
  return Create(request, actor, "", "CreatePartner");
}

absl::StatusOr<v1::Partner> PartnerLogic::Create(
    const v1::CreatePartnerRequest& request, const std::string& actor,
    const std::string& identify_email_key, absl::string_view rpc) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (!request.partner().id().empty()) {
    return InvalidField("partner.id", "is assigned by the service");
  }
  PartnerRecord record;
  RAPPORT_RETURN_IF_ERROR(ReadPartnerFields(
      request.partner(), [](absl::string_view) { return true; },
      options_.phone_region, record));
  record.lifecycle = request.partner().lifecycle() == v1::LIFECYCLE_UNSPECIFIED
                         ? v1::LIFECYCLE_PROSPECT
                         : request.partner().lifecycle();
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("partner", request.request_id());
  record.create_time_us = record.update_time_us = NowMicros();
  record.version = 1;
  record.created_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      PartnerRecord stored,
      store_->CreatePartner(
          record, EntityFingerprint(request.partner()),
          Change(actor, std::string(rpc), "partners/" + record.id,
                 request.request_id()),
          identify_email_key));
  return Written(stored);
}

absl::StatusOr<v1::Partner> PartnerLogic::GetPartner(
    const v1::GetPartnerRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<PartnerRecord> r = store_->GetPartner(request.id());
  if (absl::IsNotFound(r.status()))
    return EntityNotFound("partner", request.id());
  if (!r.ok()) return r.status();
  return WithValue(*r);
}

absl::StatusOr<v1::ListPartnersResponse> PartnerLogic::ListPartners(
    const v1::ListPartnersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  PartnerFilter filter;
  std::vector<FieldViolation> violations;
  if (!v1::PartnerKind_IsValid(request.kind())) {
    violations.push_back({"kind", "is not a partner kind"});
  }
  if (!v1::Lifecycle_IsValid(request.lifecycle())) {
    violations.push_back({"lifecycle", "is not a lifecycle"});
  }
  if (!cv1::Tier_IsValid(request.tier())) {
    violations.push_back({"tier", "is not a tier"});
  }
  absl::StatusOr<bool> by_value = OrderByValue(request.order_by());
  AddViolations(by_value.status(), &violations);
  AddViolations(CheckOptionalText(request.segment(), "segment", 64),
                &violations);
  if (!violations.empty()) return InvalidFields(violations);
  filter.kind = request.kind();
  filter.lifecycle = request.lifecycle();
  filter.tier = request.tier();
  filter.segment = request.segment();
  filter.by_value = *by_value;
  // Each listing's tokens name it: a token of one is no token of another.
  const std::string filter_text = absl::StrCat(
      "partners/", filter.kind, "/", filter.lifecycle, "/", filter.tier, "/",
      filter.segment, "/", filter.by_value ? "value" : "");
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), filter_text));
  RAPPORT_ASSIGN_OR_RETURN(const ListCursor cursor,
                           ReadListCursor(after, filter.by_value));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<PartnerRecord> records,
                           store_->ListPartners(filter, cursor, size + 1));
  v1::ListPartnersResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  std::vector<std::string> ids;
  for (const PartnerRecord& r : records) ids.push_back(r.id);
  absl::flat_hash_map<std::string, cv1::EntityValue> values;
  if (values_ != nullptr && !ids.empty()) {
    RAPPORT_ASSIGN_OR_RETURN(values, values_->ValuesOf(ids));
  }
  for (const PartnerRecord& r : records) {
    v1::Partner* p = response.add_partners();
    *p = ToProto(r);
    if (auto it = values.find(r.id); it != values.end()) {
      *p->mutable_value() = it->second;
    }
  }
  if (more) {
    // The value the page was sorted by, not the one read after it (a
    // refresh may have published new values in between).
    const PartnerRecord& last = records.back();
    response.set_next_page_token(EncodePageToken(
        ListCursorKey(filter.by_value, last.listed_value_hundredths, last.id),
        filter_text));
  }
  return response;
}

absl::StatusOr<v1::Partner> PartnerLogic::UpdatePartner(
    const v1::UpdatePartnerRequest& request, const std::string& actor) {
  const v1::Partner& in = request.partner();
  RAPPORT_RETURN_IF_ERROR(CheckId(in.id(), "partner.id"));
  RAPPORT_RETURN_IF_ERROR(CheckUpdateMask(
      request.update_mask(), {"display_name", "kind", "lifecycle", "region",
                              "contacts", "external_ids", "attributes"}));
  auto wants = [&](absl::string_view field) {
    for (const std::string& p : request.update_mask().paths()) {
      if (p == field) return true;
    }
    return false;
  };
  // Checked before the store is touched, so that bad input changes nothing.
  PartnerRecord fields;
  RAPPORT_RETURN_IF_ERROR(
      ReadPartnerFields(in, wants, options_.phone_region, fields));
  if (wants("lifecycle") && in.lifecycle() == v1::LIFECYCLE_UNSPECIFIED) {
    return InvalidField("partner.lifecycle", "is required when updated");
  }
  // The event is written after the mutation, which says what changed.
  audit::Event event =
      Change(actor, "UpdatePartner", "partners/" + in.id(), "");
  absl::StatusOr<PartnerRecord> updated = store_->UpdatePartner(
      in.id(),
      [&](PartnerRecord& row) -> absl::Status {
        PartnerRecord wanted = row;
        if (wants("lifecycle")) wanted.lifecycle = in.lifecycle();
        if (wants("display_name")) wanted.display_name = fields.display_name;
        if (wants("kind")) wanted.kind = fields.kind;
        if (wants("region")) wanted.region = fields.region;
        if (wants("contacts")) wanted.contacts = fields.contacts;
        if (wants("external_ids")) wanted.external_ids = fields.external_ids;
        if (wants("attributes")) wanted.attributes = fields.attributes;
        KeepStoredOrder(wanted.external_ids, row.external_ids);
        // Nothing to change (a retry whose answer was lost, or values it
        // has already): the store writes and audits nothing, and no etag can
        // be stale for it.
        if (wanted == row) return absl::OkStatus();
        RAPPORT_RETURN_IF_ERROR(CheckEtag(in.etag(), row.version, "partner",
                                          row.id, "partner.etag"));
        // The fields that changed ("fields=...", as the customer service
        // names those of its mask), then the lifecycle's move (a transaction
        // run again says it anew).
        std::vector<absl::string_view> changed;
        if (wanted.display_name != row.display_name)
          changed.push_back("display_name");
        if (wanted.kind != row.kind) changed.push_back("kind");
        if (wanted.lifecycle != row.lifecycle) changed.push_back("lifecycle");
        if (wanted.region != row.region) changed.push_back("region");
        if (wanted.contacts != row.contacts) changed.push_back("contacts");
        if (wanted.external_ids != row.external_ids)
          changed.push_back("external_ids");
        if (wanted.attributes != row.attributes)
          changed.push_back("attributes");
        event.details = absl::StrCat("fields=", absl::StrJoin(changed, ","));
        if (wanted.lifecycle != row.lifecycle) {
          const auto from = static_cast<v1::Lifecycle>(row.lifecycle);
          if (!LifecycleMayMove(from, in.lifecycle())) {
            return absl::FailedPreconditionError(absl::StrCat(
                "partner ", row.id, " is ", LifecycleName(from),
                "; it cannot become ", LifecycleName(in.lifecycle()),
                " (prospect -> onboarding -> active <-> suspended; any -> "
                "ended)"));
          }
          absl::StrAppend(&event.details, "; lifecycle ", LifecycleName(from),
                          " -> ", LifecycleName(in.lifecycle()));
        }
        row = std::move(wanted);
        row.update_time_us = NowMicros();
        ++row.version;
        return absl::OkStatus();
      },
      event, absl::ToInt64Microseconds(options_.protection_window));
  if (absl::IsNotFound(updated.status()))
    return EntityNotFound("partner", in.id());
  if (!updated.ok()) return updated.status();
  return Written(*updated);
}

absl::Status PartnerLogic::DeletePartner(
    const v1::DeletePartnerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::Status s = store_->DeletePartner(
      request.id(), request.force(),
      absl::ToInt64Microseconds(options_.protection_window),
      [&](const PartnerRecord& stored) {
        return CheckEtag(request.etag(), stored.version, "partner", stored.id);
      },
      Change(actor, "DeletePartner", "partners/" + request.id(), "",
             request.force() ? "force" : ""));
  if (absl::IsNotFound(s)) {
    // Nothing to delete: with allow_missing, a retry that finds its work
    // done (nothing is written or audited).
    if (request.allow_missing()) return absl::OkStatus();
    return EntityNotFound("partner", request.id());
  }
  return s;
}

absl::StatusOr<v1::IdentifyPartnerResponse> PartnerLogic::IdentifyPartner(
    const v1::IdentifyPartnerRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  if (request.external_ids_size() == 0 && request.contact_email().empty()) {
    return InvalidField("external_ids",
                        "at least one identity is required: external_ids or "
                        "contact_email");
  }
  if (!v1::PartnerKind_IsValid(request.kind())) {
    return InvalidField("kind", "is not a partner kind");
  }
  // The identities, checked as a partner's fields are.
  v1::Partner shape;
  *shape.mutable_external_ids() = request.external_ids();
  PartnerRecord ids;
  // Errors name the request's own fields ("external_ids[0].id").
  RAPPORT_RETURN_IF_ERROR(WithoutFieldPrefix(
      ReadPartnerFields(
          shape, [](absl::string_view f) { return f == "external_ids"; },
          options_.phone_region, ids),
      "partner."));
  std::string email;
  if (!request.contact_email().empty()) {
    RAPPORT_ASSIGN_OR_RETURN(
        email, NormalizeEmail(request.contact_email(), "contact_email"));
  }
  // The partner a create under this request id makes (its retry says
  // created again).
  const std::string made_here = request.request_id().empty()
                                    ? ""
                                    : KeyedId("partner", request.request_id());
  const v1::CreatePartnerRequest create = IdentifiedCreate(request, email);
  RAPPORT_ASSIGN_OR_RETURN(
      Identified<v1::Partner> identified,
      FindOrCreate<v1::Partner>({
          .find =
              [&] {
                return store_->FindPartners(
                    ids.external_ids,
                    email.empty() ? "" : EmailMatchKey(email));
              },
          .get =
              [&](const std::string& id) {
                v1::GetPartnerRequest get;
                get.set_id(id);
                return GetPartner(get);
              },
          .create = [&] { return CreateIdentified(create, email, actor); },
          .made_here = made_here,
          .fingerprint = EntityFingerprint(create.partner()),
          .made_before = [&] { return store_->PartnerFingerprint(made_here); },
          .nouns = "partners",
          .what = "a partner",
          .advice = "identify with fewer identities",
      }));
  v1::IdentifyPartnerResponse response;
  *response.mutable_partner() = std::move(identified.entity);
  response.set_created(identified.created);
  return response;
}

v1::CreatePartnerRequest PartnerLogic::IdentifiedCreate(
    const v1::IdentifyPartnerRequest& request, const std::string& email) {
  v1::CreatePartnerRequest create;
  v1::Partner* p = create.mutable_partner();
  p->set_display_name(request.display_name());
  p->set_kind(request.kind() == v1::PARTNER_KIND_UNSPECIFIED
                  ? v1::PARTNER_KIND_CHANNEL
                  : request.kind());
  *p->mutable_external_ids() = request.external_ids();
  if (!email.empty()) {
    cv1::Contact* c = p->add_contacts();
    c->set_name(request.display_name());
    c->set_email(email);
  }
  create.set_request_id(request.request_id());
  return create;
}

absl::StatusOr<v1::Partner> PartnerLogic::CreateIdentified(
    const v1::CreatePartnerRequest& create, const std::string& email,
    const std::string& actor) {
  const std::string& name = create.partner().display_name();
  if (name.empty()) {
    return InvalidField("display_name",
                        "is required to create the partner that the "
                        "identities do not name yet");
  }
  // Checked here, so that a bad name is not reported a second time as the
  // contact's, a field the request does not have.
  RAPPORT_RETURN_IF_ERROR(CheckRequiredText(name, "display_name", 256));
  absl::StatusOr<v1::Partner> created =
      Create(create, actor, email.empty() ? "" : EmailMatchKey(email),
             "IdentifyPartner");
  if (!created.ok()) return WithoutFieldPrefix(created.status(), "partner.");
  return created;
}

absl::StatusOr<v1::FindDuplicatePartnersResponse> PartnerLogic::FindDuplicates(
    const v1::FindDuplicatePartnersRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), "partners/duplicates"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<DuplicateGroupRecord> groups,
                           store_->FindDuplicates(after, size + 1));
  v1::FindDuplicatePartnersResponse response;
  const bool more = static_cast<int>(groups.size()) > size;
  if (more) groups.resize(size);
  for (DuplicateGroupRecord& g : groups) {
    v1::DuplicatePartnerGroup* out = response.add_groups();
    out->set_reason(g.reason);
    out->set_key(g.key);
    for (std::string& id : g.partner_ids) out->add_partner_ids(std::move(id));
  }
  if (more) {
    const DuplicateGroupRecord& last = groups.back();
    response.set_next_page_token(EncodePageToken(
        absl::StrCat(last.reason, "\n", last.key), "partners/duplicates"));
  }
  return response;
}

// ---- programs and agreements -----------------------------------------------

absl::StatusOr<v1::Program> PartnerLogic::CreateProgram(
    const v1::CreateProgramRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::Program& in = request.program();
  std::vector<FieldViolation> violations;
  ProgramRecord record;
  AddViolations(CheckRequiredText(in.name(), "program.name", 256), &violations);
  record.name = std::string(absl::StripAsciiWhitespace(in.name()));
  if (!v1::ProgramBasis_IsValid(in.basis())) {
    violations.push_back({"program.basis", "is not commission or margin"});
  }
  record.basis = in.basis() == v1::PROGRAM_BASIS_MARGIN
                     ? v1::PROGRAM_BASIS_MARGIN
                     : v1::PROGRAM_BASIS_COMMISSION;
  std::set<int> tiers;
  for (int i = 0; i < in.terms_size(); ++i) {
    const v1::ProgramTerms& t = in.terms(i);
    const std::string field = absl::StrCat("program.terms[", i, "]");
    if (!cv1::Tier_IsValid(t.tier())) {
      violations.push_back({field + ".tier", "is not a tier"});
      continue;
    }
    if (!tiers.insert(t.tier()).second) {
      violations.push_back({field + ".tier", "has terms already"});
      continue;
    }
    absl::StatusOr<Decimal> percent =
        ParsePercent(t.commission_percent(), field + ".commission_percent");
    if (!percent.ok()) {
      std::vector<FieldViolation> v = FieldViolations(percent.status());
      violations.insert(violations.end(), v.begin(), v.end());
      continue;
    }
    record.terms.push_back({t.tier(), *percent});
  }
  if (!tiers.contains(cv1::TIER_UNSPECIFIED) && violations.empty()) {
    violations.push_back(
        {"program.terms", "needs the default terms (with no tier)"});
  }
  if (!violations.empty()) return InvalidFields(violations);
  std::sort(record.terms.begin(), record.terms.end(),
            [](const auto& a, const auto& b) { return a.tier < b.tier; });
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("program", request.request_id());
  record.create_time_us = NowMicros();
  // Commission spelled out is commission left unset: the same request (and
  // one made before programs had a basis).
  v1::Program fingerprinted = in;
  if (fingerprinted.basis() == v1::PROGRAM_BASIS_COMMISSION) {
    fingerprinted.clear_basis();
  }
  RAPPORT_ASSIGN_OR_RETURN(
      ProgramRecord stored,
      store_->CreateProgram(
          record, RequestFingerprintIn(options_.currency, fingerprinted),
          Change(actor, "CreateProgram", "programs/" + record.id,
                 request.request_id())));
  return ToProto(stored);
}

absl::StatusOr<v1::Program> PartnerLogic::GetProgram(
    const v1::GetProgramRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<ProgramRecord> r = store_->GetProgram(request.id());
  if (absl::IsNotFound(r.status()))
    return EntityNotFound("program", request.id());
  if (!r.ok()) return r.status();
  return ToProto(*r);
}

absl::StatusOr<v1::ListProgramsResponse> PartnerLogic::ListPrograms(
    const v1::ListProgramsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), "programs"));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<ProgramRecord> records,
                           store_->ListPrograms(after, size + 1));
  v1::ListProgramsResponse response;
  AddPage(records, size, "programs", &response, [&](const ProgramRecord& r) {
    *response.add_programs() = ToProto(r);
  });
  return response;
}

absl::StatusOr<v1::Agreement> PartnerLogic::CreateAgreement(
    const v1::CreateAgreementRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::Agreement& in = request.agreement();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  note(CheckId(in.partner_id(), "agreement.partner_id"));
  note(CheckId(in.program_id(), "agreement.program_id"));
  AgreementRecord record;
  if (!in.has_start_time()) {
    violations.push_back({"agreement.start_time", "is required"});
  } else {
    absl::StatusOr<int64_t> start =
        FromTimestamp(in.start_time(), "agreement.start_time");
    note(start.status());
    if (start.ok()) record.start_time_us = *start;
  }
  if (in.has_end_time()) {
    absl::StatusOr<int64_t> end =
        FromTimestamp(in.end_time(), "agreement.end_time");
    note(end.status());
    if (end.ok()) {
      if (*end <= record.start_time_us) {
        violations.push_back(
            {"agreement.end_time", "must be after start_time"});
      }
      record.end_time_us = *end;
    }
  }
  if (in.state() != v1::AGREEMENT_STATE_UNSPECIFIED &&
      in.state() != v1::AGREEMENT_STATE_DRAFT) {
    violations.push_back(
        {"agreement.state",
         "is set by TransitionAgreement; an agreement is created a draft"});
  }
  if (!violations.empty()) return InvalidFields(violations);
  // The store refuses a partner that may not (ended), once it knows the
  // request is no retry.
  RAPPORT_RETURN_IF_ERROR(CheckPartnerExists(in.partner_id(), "partner_id"));
  {
    absl::StatusOr<ProgramRecord> program = store_->GetProgram(in.program_id());
    if (absl::IsNotFound(program.status())) {
      return EntityNotFound("program", in.program_id());
    }
    RAPPORT_RETURN_IF_ERROR(program.status());
  }
  record.partner_id = in.partner_id();
  record.program_id = in.program_id();
  record.state = v1::AGREEMENT_STATE_DRAFT;
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("agreement", request.request_id());
  record.create_time_us = record.update_time_us = NowMicros();
  record.version = 1;
  RAPPORT_ASSIGN_OR_RETURN(
      AgreementRecord stored,
      store_->CreateAgreement(
          record, RequestFingerprintIn(options_.currency, in),
          Change(actor, "CreateAgreement", "agreements/" + record.id,
                 request.request_id())));
  return ToProto(stored, NowMicros());
}

absl::StatusOr<v1::Agreement> PartnerLogic::GetAgreement(
    const v1::GetAgreementRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<AgreementRecord> r = store_->GetAgreement(request.id());
  if (absl::IsNotFound(r.status())) {
    return EntityNotFound("agreement", request.id());
  }
  if (!r.ok()) return r.status();
  return ToProto(*r, NowMicros());
}

absl::StatusOr<v1::ListAgreementsResponse> PartnerLogic::ListAgreements(
    const v1::ListAgreementsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  if (!request.partner_id().empty()) {
    RAPPORT_RETURN_IF_ERROR(
        CheckPartnerExists(request.partner_id(), "partner_id"));
  }
  if (!request.program_id().empty()) {
    RAPPORT_RETURN_IF_ERROR(CheckId(request.program_id(), "program_id"));
  }
  if (!v1::AgreementState_IsValid(request.state())) {
    return InvalidField("state", "is not an agreement state");
  }
  const std::string filter =
      absl::StrCat("agreements/", request.partner_id(), "/",
                   request.program_id(), "/", request.state());
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), filter));
  const int64_t now = NowMicros();
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<AgreementRecord> records,
      store_->ListAgreements(request.partner_id(), request.program_id(),
                             request.state(), after, size + 1, now));
  v1::ListAgreementsResponse response;
  AddPage(records, size, filter, &response, [&](const AgreementRecord& r) {
    *response.add_agreements() = ToProto(r, now);
  });
  return response;
}

absl::StatusOr<v1::Agreement> PartnerLogic::TransitionAgreement(
    const v1::TransitionAgreementRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  if (request.state() == v1::AGREEMENT_STATE_UNSPECIFIED ||
      request.state() == v1::AGREEMENT_STATE_DRAFT ||
      !v1::AgreementState_IsValid(request.state())) {
    return InvalidField("state",
                        EnumRefusal(request.state(),
                                    v1::AgreementState_IsValid(request.state()),
                                    "active, expired or terminated"));
  }
  audit::Event event =
      Change(actor, "TransitionAgreement", "agreements/" + request.id(), "");
  // The time the move is judged at, and the answer read at.
  int64_t now = NowMicros();
  absl::StatusOr<AgreementRecord> updated = store_->UpdateAgreement(
      request.id(),
      [&](AgreementRecord& row) -> absl::Status {
        now = NowMicros();
        // There already (a retry whose answer was lost, or an agreement
        // whose period ended: expired by itself): nothing to change, so
        // nothing is written or audited, whatever the etag.
        const v1::AgreementState from =
            AgreementStateAt(row.state, row.end_time_us, now);
        if (from == request.state()) return absl::OkStatus();
        RAPPORT_RETURN_IF_ERROR(
            CheckEtag(request.etag(), row.version, "agreement", row.id));
        if (from == v1::AGREEMENT_STATE_ACTIVE &&
            request.state() == v1::AGREEMENT_STATE_EXPIRED) {
          return absl::FailedPreconditionError(absl::StrCat(
              "agreement ", row.id,
              row.end_time_us.has_value()
                  ? absl::StrCat(" runs until ",
                                 FormatRfc3339Micros(*row.end_time_us))
                  : " has no end",
              "; it expires by itself at the end of its period: terminate "
              "it to end it now"));
        }
        if (!AgreementMayMove(from, request.state())) {
          return absl::FailedPreconditionError(absl::StrCat(
              "agreement ", row.id, " is ", AgreementStateName(from),
              "; it cannot become ", AgreementStateName(request.state()),
              " (draft -> active or terminated; active -> expired or "
              "terminated)"));
        }
        event.details = absl::StrCat(AgreementStateName(from), " -> ",
                                     AgreementStateName(request.state()));
        row.state = request.state();
        row.update_time_us = now;
        ++row.version;
        return absl::OkStatus();
      },
      event);
  if (absl::IsNotFound(updated.status())) {
    return EntityNotFound("agreement", request.id());
  }
  if (!updated.ok()) return updated.status();
  return ToProto(*updated, now);
}

// ---- deals -----------------------------------------------------------------

absl::StatusOr<v1::Deal> PartnerLogic::RegisterDeal(
    const v1::RegisterDealRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::Deal& in = request.deal();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  DealRecord record;
  note(CheckId(in.partner_id(), "deal.partner_id"));
  note(CheckOptionalText(in.reference(), "deal.reference", 128));
  const absl::Status name_given =
      CheckRequiredText(in.account_name(), "deal.account_name", 256);
  note(name_given);
  note(CheckOptionalText(in.account_domain(), "deal.account_domain", 253));
  record.account_name =
      std::string(absl::StripAsciiWhitespace(in.account_name()));
  record.account_domain =
      std::string(absl::StripAsciiWhitespace(in.account_domain()));
  record.name_key = FirmNameKey(record.account_name);
  absl::StatusOr<std::string> domain_key =
      CheckedAccountDomainKey(record.account_domain, "deal.account_domain");
  note(domain_key.status());
  if (domain_key.ok()) record.domain_key = *std::move(domain_key);
  if (name_given.ok() && record.name_key.empty()) {
    violations.push_back({"deal.account_name", "needs a letter or a digit"});
  }
  if (!in.has_amount()) {
    violations.push_back({"deal.amount", "is required"});
  } else {
    absl::StatusOr<Decimal> amount =
        ReadAmount(in.amount(), "deal.amount", options_.currency, false);
    note(amount.status());
    if (amount.ok()) record.amount = *amount;
  }
  record.register_time_us = NowMicros();
  if (in.has_register_time()) {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.register_time(), "deal.register_time");
    note(t.status());
    // A registration filed for later would claim the account ahead of its
    // time.
    if (t.ok()) {
      note(CheckNotFuture(*t, record.register_time_us, "deal.register_time"));
      record.register_time_us = *t;
    }
  }
  if (in.has_expected_close_time()) {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.expected_close_time(), "deal.expected_close_time");
    note(t.status());
    // (Within the clocks' difference of a registration time the server
    // took: a client's "now" is not refused.)
    if (t.ok() && *t < record.register_time_us -
                           (in.has_register_time() ? 0 : kClockSkewUs)) {
      violations.push_back(
          {"deal.expected_close_time", "is before the registration"});
    }
    if (t.ok()) record.expected_close_time_us = *t;
  }
  if (in.state() != v1::DEAL_STATE_UNSPECIFIED) {
    violations.push_back(
        {"deal.state",
         "is set by TransitionDeal; a registration is submitted"});
  }
  if (in.has_close_time()) {
    violations.push_back(
        {"deal.close_time", "is set by TransitionDeal when the deal closes"});
  }
  if (!violations.empty()) return InvalidFields(violations);
  // As for agreements, the store checks the lifecycle.
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(in.partner_id(), "deal.partner_id"));
  record.partner_id = in.partner_id();
  record.reference = in.reference();
  record.state = v1::DEAL_STATE_SUBMITTED;
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("deal", request.request_id());
  record.create_time_us = record.update_time_us = NowMicros();
  record.version = 1;
  record.recorded_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      DealRecord stored,
      store_->RegisterDeal(
          record, RequestFingerprintIn(options_.currency, in),
          absl::ToInt64Microseconds(options_.protection_window),
          Change(actor, "RegisterDeal", "deals/" + record.id,
                 request.request_id())));
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::Deal> PartnerLogic::GetDeal(
    const v1::GetDealRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<DealRecord> r = store_->GetDeal(request.id());
  if (absl::IsNotFound(r.status())) return EntityNotFound("deal", request.id());
  if (!r.ok()) return r.status();
  return ToProto(*r, options_.currency);
}

absl::StatusOr<v1::ListDealsResponse> PartnerLogic::ListDeals(
    const v1::ListDealsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  if (!request.partner_id().empty()) {
    RAPPORT_RETURN_IF_ERROR(
        CheckPartnerExists(request.partner_id(), "partner_id"));
  }
  if (!v1::DealState_IsValid(request.state())) {
    return InvalidField("state", "is not a deal state");
  }
  const std::string filter =
      absl::StrCat("deals/", request.partner_id(), "/", request.state());
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), filter));
  RAPPORT_ASSIGN_OR_RETURN(std::vector<DealRecord> records,
                           store_->ListDeals(request.partner_id(),
                                             request.state(), after, size + 1));
  v1::ListDealsResponse response;
  AddPage(records, size, filter, &response, [&](const DealRecord& r) {
    *response.add_deals() = ToProto(r, options_.currency);
  });
  return response;
}

absl::StatusOr<v1::Deal> PartnerLogic::TransitionDeal(
    const v1::TransitionDealRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  const v1::DealState to = request.state();
  if (to == v1::DEAL_STATE_UNSPECIFIED || !v1::DealState_IsValid(to) ||
      to == v1::DEAL_STATE_SUBMITTED) {
    return InvalidField(
        "state", EnumRefusal(to, v1::DealState_IsValid(to),
                             "approved, rejected, won, lost or expired"));
  }
  std::optional<int64_t> close_us;
  const bool closes = to == v1::DEAL_STATE_WON || to == v1::DEAL_STATE_LOST;
  if (closes) {
    if (!request.has_close_time()) {
      return InvalidField("close_time", "is required for won and lost");
    }
    RAPPORT_ASSIGN_OR_RETURN(close_us,
                             FromTimestamp(request.close_time(), "close_time"));
    RAPPORT_RETURN_IF_ERROR(
        CheckNotFuture(*close_us, NowMicros(), "close_time"));
  } else if (request.has_close_time()) {
    return InvalidField("close_time", "is only for won and lost");
  }
  // A conflict holds while the earlier claim is open or won: one rejected,
  // lost or expired since protects nothing. (Those states are final: seen so
  // here, it stays so.) The account may still be held by another claim that
  // was there first, though, which the deal names instead: approving against
  // it needs force, as against the first. Without one, no force is needed.
  std::string closed_rival, next_rival;
  if (to == v1::DEAL_STATE_APPROVED) {
    absl::StatusOr<DealRecord> deal = store_->GetDeal(request.id());
    if (!deal.ok() && !absl::IsNotFound(deal.status())) return deal.status();
    if (deal.ok() && !deal->conflict_with.empty()) {
      absl::StatusOr<DealRecord> earlier = store_->GetDeal(deal->conflict_with);
      if (!earlier.ok() && !absl::IsNotFound(earlier.status())) {
        return earlier.status();
      }
      if (earlier.ok() && (earlier->state == v1::DEAL_STATE_REJECTED ||
                           earlier->state == v1::DEAL_STATE_LOST ||
                           earlier->state == v1::DEAL_STATE_EXPIRED)) {
        closed_rival = earlier->id;
        RAPPORT_ASSIGN_OR_RETURN(
            next_rival,
            store_->OpenClaimBefore(
                *deal, absl::ToInt64Microseconds(options_.protection_window)));
      }
    }
  }
  audit::Event event =
      Change(actor, "TransitionDeal", "deals/" + request.id(), "");
  absl::StatusOr<DealRecord> updated = store_->UpdateDeal(
      request.id(),
      [&](DealRecord& row) -> absl::Status {
        event.details.clear();  // a transaction run again says it anew
        // There already, closed at the same time (a retry whose answer was
        // lost): nothing to change, so nothing is written or audited,
        // whatever the etag. Rejected and expired take no close time (an
        // imported one may carry one).
        if (row.state == to && (!closes || row.close_time_us == close_us)) {
          return absl::OkStatus();
        }
        RAPPORT_RETURN_IF_ERROR(
            CheckEtag(request.etag(), row.version, "deal", row.id));
        const auto from = static_cast<v1::DealState>(row.state);
        if (!DealMayMove(from, to)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "deal ", row.id, " is ", DealStateName(from),
              "; it cannot become ", DealStateName(to),
              " (submitted -> approved, rejected or expired; approved -> won, "
              "lost or expired)"));
        }
        if (to == v1::DEAL_STATE_APPROVED && !row.conflict_with.empty() &&
            row.conflict_with == closed_rival && !next_rival.empty()) {
          row.conflict_with = next_rival;
        }
        if (to == v1::DEAL_STATE_APPROVED && !row.conflict_with.empty() &&
            row.conflict_with != closed_rival) {
          if (!request.force()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "deal ", row.id, " conflicts with the earlier registration ",
                row.conflict_with,
                " of another partner; compare them (ListDealConflicts) and "
                "approve with force (admin) if this one should win"));
          }
          row.approved_in_conflict = true;
          event.details = absl::StrCat("approved in conflict with ",
                                       row.conflict_with, "; force");
        } else if (to == v1::DEAL_STATE_APPROVED &&
                   !row.approved_over_by.empty()) {
          // An admin approved another partner's claim over this one (or
          // over the claim this one waits on): the account is that
          // partner's unless an admin decides again.
          if (!request.force()) {
            return absl::FailedPreconditionError(absl::StrCat(
                "deal ", row.id, ": an admin approved deal ",
                row.approved_over_by,
                " of another partner for this account with force; approve "
                "with force (admin) if this one should win too"));
          }
          event.details = absl::StrCat("approved though ", row.approved_over_by,
                                       " was approved with force; force");
        }
        if (closes && *close_us < row.register_time_us) {
          return InvalidField("close_time",
                              "must not be before the deal's register_time");
        }
        if (event.details.empty()) {
          event.details =
              absl::StrCat(DealStateName(from), " -> ", DealStateName(to));
        }
        row.state = to;
        row.close_time_us = close_us;
        row.update_time_us = NowMicros();
        ++row.version;
        return absl::OkStatus();
      },
      event, absl::ToInt64Microseconds(options_.protection_window));
  if (absl::IsNotFound(updated.status()))
    return EntityNotFound("deal", request.id());
  if (!updated.ok()) return updated.status();
  if (to == v1::DEAL_STATE_WON) Rescore(updated->partner_id);
  return ToProto(*updated, options_.currency);
}

absl::StatusOr<v1::ListDealConflictsResponse> PartnerLogic::ListDealConflicts(
    const v1::ListDealConflictsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  // A page token is good for the listing it came from only.
  const std::string listing =
      request.include_decided() ? "conflicts decided too" : "conflicts";
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), listing));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<DealConflictRecord> records,
      store_->ListConflicts(after, size + 1, !request.include_decided()));
  v1::ListDealConflictsResponse response;
  const bool more = static_cast<int>(records.size()) > size;
  if (more) records.resize(size);
  // Every claimant's scorecard, once per partner.
  absl::flat_hash_map<std::string, v1::PartnerScorecard> cards;
  for (const DealConflictRecord& c : records) {
    for (const DealRecord* d : {&c.earlier, &c.later}) {
      if (cards.contains(d->partner_id)) continue;
      absl::StatusOr<v1::PartnerScorecard> card = Scorecard(d->partner_id);
      if (!card.ok() && !absl::IsNotFound(card.status())) return card.status();
      if (card.ok()) cards[d->partner_id] = *std::move(card);
    }
  }
  for (const DealConflictRecord& c : records) {
    v1::DealConflict* out = response.add_conflicts();
    out->set_account_key(c.later.domain_key.empty() ||
                                 c.later.domain_key != c.earlier.domain_key
                             ? c.later.name_key
                             : c.later.domain_key);
    for (const DealRecord* d : {&c.earlier, &c.later}) {
      v1::DealClaim* claim = out->add_claims();
      *claim->mutable_deal() = ToProto(*d, options_.currency);
      if (auto it = cards.find(d->partner_id); it != cards.end()) {
        *claim->mutable_scorecard() = it->second;
      }
    }
  }
  if (more) {
    response.set_next_page_token(
        EncodePageToken(records.back().later.id, listing));
  }
  return response;
}

// ---- orders, funds, interactions ------------------------------------------

absl::StatusOr<v1::Order> PartnerLogic::RecordOrder(
    const v1::RecordOrderRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  const v1::Order& in = request.order();
  OrderRecord record;
  note(CheckId(request.partner_id(), "partner_id"));
  // Output only: the request's partner_id names the partner. One that names
  // another is a mistake to point out, not to drop.
  if (!in.partner_id().empty() && in.partner_id() != request.partner_id()) {
    violations.push_back(
        {"order.partner_id",
         "names another partner than partner_id; leave it empty"});
  }
  if (!in.has_order_time()) {
    violations.push_back({"order.order_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.order_time(), "order.order_time");
    note(t.status());
    if (t.ok()) {
      note(CheckNotFuture(*t, NowMicros(), "order.order_time"));
      record.order_time_us = *t;
    }
  }
  if (!in.has_amount()) {
    violations.push_back({"order.amount", "is required"});
  } else {
    absl::StatusOr<Decimal> amount =
        ReadAmount(in.amount(), "order.amount", options_.currency, true);
    note(amount.status());
    if (amount.ok()) record.amount = *amount;
  }
  note(CheckOptionalText(in.description(), "order.description", 1024));
  if (!violations.empty()) return InvalidFields(violations);
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(request.partner_id(), "partner_id"));
  record.partner_id = request.partner_id();
  record.description = in.description();
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("order", request.request_id());
  record.create_time_us = NowMicros();
  record.recorded_by = actor;
  RAPPORT_ASSIGN_OR_RETURN(
      OrderRecord stored,
      store_->RecordOrder(record, RequestFingerprintIn(options_.currency, in,
                                                       request.partner_id())));
  Rescore(stored.partner_id);
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::ListOrdersResponse> PartnerLogic::ListOrders(
    const v1::ListOrdersRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.partner_id(), "partner_id"));
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  // A token of one partner's orders is no token for anything else.
  const std::string filter = absl::StrCat("orders/", request.partner_id());
  RAPPORT_ASSIGN_OR_RETURN(TimeCursor after,
                           DecodeTimeCursor(request.page_token(), filter));
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(request.partner_id(), "partner_id"));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<OrderRecord> records,
      store_->ListOrders(request.partner_id(), after, size + 1));
  v1::ListOrdersResponse response;
  AddTimePage(
      records, size, filter, &response,
      [](const OrderRecord& r) { return r.order_time_us; },
      [&](const OrderRecord& r) {
        *response.add_orders() = ToProto(r, options_.currency);
      });
  return response;
}

absl::StatusOr<v1::FundRequest> PartnerLogic::RequestFunds(
    const v1::RequestFundsRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  const v1::FundRequest& in = request.fund_request();
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  FundRecord record;
  note(CheckId(in.partner_id(), "fund_request.partner_id"));
  note(CheckRequiredText(in.activity(), "fund_request.activity", 512));
  if (!in.has_requested_amount()) {
    violations.push_back({"fund_request.requested_amount", "is required"});
  } else {
    absl::StatusOr<Decimal> amount =
        ReadAmount(in.requested_amount(), "fund_request.requested_amount",
                   options_.currency, false);
    note(amount.status());
    if (amount.ok()) {
      if (amount->is_zero()) {
        violations.push_back(
            {"fund_request.requested_amount", "must be positive"});
      }
      record.requested_amount = *amount;
    }
  }
  if (in.state() != v1::FUND_REQUEST_STATE_UNSPECIFIED &&
      in.state() != v1::FUND_REQUEST_STATE_REQUESTED) {
    violations.push_back({"fund_request.state",
                          "is set by TransitionFundRequest; funds are "
                          "requested first"});
  }
  for (auto [set, field] :
       {std::pair{in.has_claimed_amount(), "fund_request.claimed_amount"},
        std::pair{in.has_claim_time(), "fund_request.claim_time"},
        std::pair{in.has_paid_time(), "fund_request.paid_time"}}) {
    if (set) {
      violations.push_back(
          {field, "is set by TransitionFundRequest, as the funds move on"});
    }
  }
  if (!violations.empty()) return InvalidFields(violations);
  // As for agreements, the store checks the lifecycle.
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(in.partner_id(), "fund_request.partner_id"));
  record.partner_id = in.partner_id();
  record.activity = in.activity();
  record.state = v1::FUND_REQUEST_STATE_REQUESTED;
  record.requested_by = actor;
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("fund", request.request_id());
  record.create_time_us = record.update_time_us = NowMicros();
  record.version = 1;
  RAPPORT_ASSIGN_OR_RETURN(
      FundRecord stored,
      store_->RequestFunds(
          record, RequestFingerprintIn(options_.currency, in),
          Change(actor, "RequestFunds", "fundRequests/" + record.id,
                 request.request_id())));
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::FundRequest> PartnerLogic::GetFundRequest(
    const v1::GetFundRequestRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  absl::StatusOr<FundRecord> r = store_->GetFundRequest(request.id());
  if (absl::IsNotFound(r.status())) {
    return EntityNotFound("fund request", request.id());
  }
  if (!r.ok()) return r.status();
  return ToProto(*r, options_.currency);
}

absl::StatusOr<v1::ListFundRequestsResponse> PartnerLogic::ListFundRequests(
    const v1::ListFundRequestsRequest& request) {
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  if (!request.partner_id().empty()) {
    RAPPORT_RETURN_IF_ERROR(
        CheckPartnerExists(request.partner_id(), "partner_id"));
  }
  if (!v1::FundRequestState_IsValid(request.state())) {
    return InvalidField("state", "is not a fund request state");
  }
  const std::string filter =
      absl::StrCat("funds/", request.partner_id(), "/", request.state());
  RAPPORT_ASSIGN_OR_RETURN(std::string after,
                           After(request.page_token(), filter));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<FundRecord> records,
      store_->ListFundRequests(request.partner_id(), request.state(), after,
                               size + 1));
  v1::ListFundRequestsResponse response;
  AddPage(records, size, filter, &response, [&](const FundRecord& r) {
    *response.add_fund_requests() = ToProto(r, options_.currency);
  });
  return response;
}

absl::StatusOr<v1::FundRequest> PartnerLogic::TransitionFundRequest(
    const v1::TransitionFundRequestRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.id(), "id"));
  // What the request becomes; "rejected" may turn out "claim_rejected".
  v1::FundRequestState to = request.state();
  if (to == v1::FUND_REQUEST_STATE_UNSPECIFIED ||
      to == v1::FUND_REQUEST_STATE_REQUESTED ||
      !v1::FundRequestState_IsValid(to)) {
    return InvalidField(
        "state",
        EnumRefusal(to, v1::FundRequestState_IsValid(to),
                    "approved, rejected, claimed, paid or claim_rejected"));
  }
  std::optional<Decimal> claimed;
  if (to == v1::FUND_REQUEST_STATE_CLAIMED) {
    if (!request.has_claimed_amount()) {
      return InvalidField("claimed_amount", "is required to claim");
    }
    RAPPORT_ASSIGN_OR_RETURN(
        claimed, ReadAmount(request.claimed_amount(), "claimed_amount",
                            options_.currency, false));
    if (claimed->is_zero()) {
      return InvalidField("claimed_amount", "must be positive");
    }
  } else if (request.has_claimed_amount()) {
    return InvalidField("claimed_amount", "is only for claims");
  }
  int64_t when = NowMicros();
  if (request.has_time()) {
    if (to != v1::FUND_REQUEST_STATE_CLAIMED &&
        to != v1::FUND_REQUEST_STATE_PAID) {
      return InvalidField("time", "is only for claims and payments");
    }
    RAPPORT_ASSIGN_OR_RETURN(when, FromTimestamp(request.time(), "time"));
    RAPPORT_RETURN_IF_ERROR(CheckNotFuture(when, NowMicros(), "time"));
  }
  // The audit event's details name the state reached, which for "rejected"
  // depends on the stored state: the store writes the event after `mutate`.
  audit::Event event = Change(actor, "TransitionFundRequest",
                              "fundRequests/" + request.id(), "", "");
  absl::StatusOr<FundRecord> updated = store_->UpdateFundRequest(
      request.id(),
      [&](FundRecord& row) -> absl::Status {
        // Rejecting a request whose claim is pending rejects the claim: one
        // verb rejects what waits for a decision.
        to = FundTarget(static_cast<v1::FundRequestState>(row.state),
                        request.state());
        event.details =
            absl::StrCat(FundStateName(to),
                         claimed ? absl::StrCat(" ", claimed->ToString()) : "");
        // There already, with the same claim and time (a retry whose answer
        // was lost; a time left out is the one recorded): nothing to change,
        // so nothing is written or audited, whatever the etag.
        const std::optional<int64_t>& recorded =
            to == v1::FUND_REQUEST_STATE_PAID ? row.paid_time_us
                                              : row.claim_time_us;
        if (row.state == to &&
            (!claimed.has_value() || row.claimed_amount == claimed) &&
            (!request.has_time() || recorded == when)) {
          return absl::OkStatus();
        }
        RAPPORT_RETURN_IF_ERROR(
            CheckEtag(request.etag(), row.version, "fund request", row.id));
        const auto from = static_cast<v1::FundRequestState>(row.state);
        if (!FundMayMove(from, to)) {
          return absl::FailedPreconditionError(absl::StrCat(
              "fund request ", row.id, " is ", FundStateName(from),
              "; it cannot become ", FundStateName(to),
              " (requested -> approved or rejected; approved -> claimed; "
              "claimed -> paid or claim_rejected)"));
        }
        // Who asked for the funds does not approve them, and who claimed
        // them does not pay the claim: another person decides, or an admin
        // with force (audited). Rejecting one's own is withdrawing it.
        const bool approving = to == v1::FUND_REQUEST_STATE_APPROVED;
        const std::string& own =
            approving ? row.requested_by
                      : (to == v1::FUND_REQUEST_STATE_PAID ? row.claimed_by
                                                           : std::string());
        // (The same name in other case, full-width forms or another
        // script's look-alike letters is the same person's.)
        if (!own.empty() && auth::SubjectsLookAlike(own, actor)) {
          if (!request.force()) {
            return absl::PermissionDeniedError(absl::StrCat(
                "fund request ", row.id, " was ",
                approving ? "requested" : "claimed", " by ", own,
                own == actor ? "" : absl::StrCat(", which reads as ", actor),
                "; another person ",
                approving ? "approves it" : "pays the claim",
                ", or an admin with force"));
          }
          absl::StrAppend(
              &event.details, approving ? "; own request" : "; own claim",
              own == actor ? "" : absl::StrCat(" (", own, ")"), ", force");
        }
        if (to == v1::FUND_REQUEST_STATE_CLAIMED) row.claimed_by = actor;
        if (claimed.has_value()) {
          if (*claimed > row.requested_amount) {
            return absl::FailedPreconditionError(
                absl::StrCat("fund request ", row.id, ": the claim of ",
                             claimed->ToString(), " is more than the ",
                             row.requested_amount.ToString(), " approved"));
          }
          row.claimed_amount = claimed;
          row.claim_time_us = when;
        }
        if (to == v1::FUND_REQUEST_STATE_PAID) {
          int64_t paid = when;
          if (row.claim_time_us && paid < *row.claim_time_us) {
            // Paid now, after a claim dated a little ahead (within the
            // clocks' difference): paid when claimed.
            if (!request.has_time()) {
              paid = *row.claim_time_us;
            } else {
              return InvalidField("time", "must not be before the claim");
            }
          }
          row.paid_time_us = paid;
        }
        row.state = to;
        row.update_time_us = NowMicros();
        ++row.version;
        return absl::OkStatus();
      },
      event);
  if (absl::IsNotFound(updated.status())) {
    return EntityNotFound("fund request", request.id());
  }
  if (!updated.ok()) return updated.status();
  if (to == v1::FUND_REQUEST_STATE_PAID) Rescore(updated->partner_id);
  return ToProto(*updated, options_.currency);
}

absl::StatusOr<v1::Interaction> PartnerLogic::LogInteraction(
    const v1::LogInteractionRequest& request, const std::string& actor) {
  RAPPORT_RETURN_IF_ERROR(CheckRequestId(request.request_id()));
  std::vector<FieldViolation> violations;
  auto note = [&](const absl::Status& s) {
    if (s.ok()) return;
    for (FieldViolation& v : FieldViolations(s)) violations.push_back(v);
  };
  const v1::Interaction& in = request.interaction();
  InteractionRecord record;
  note(CheckId(request.partner_id(), "partner_id"));
  // Output only: the request's partner_id names the partner. One that names
  // another is a mistake to point out, not to drop.
  if (!in.partner_id().empty() && in.partner_id() != request.partner_id()) {
    violations.push_back(
        {"interaction.partner_id",
         "names another partner than partner_id; leave it empty"});
  }
  if (in.channel() == cv1::CHANNEL_UNSPECIFIED ||
      !cv1::Channel_IsValid(in.channel())) {
    violations.push_back(
        {"interaction.channel",
         EnumRefusal(in.channel(), cv1::Channel_IsValid(in.channel()),
                     "email, phone, sms, visit, web, mail or event")});
  }
  if (!in.has_interaction_time()) {
    violations.push_back({"interaction.interaction_time", "is required"});
  } else {
    absl::StatusOr<int64_t> t =
        FromTimestamp(in.interaction_time(), "interaction.interaction_time");
    note(t.status());
    if (t.ok()) {
      note(CheckNotFuture(*t, NowMicros(), "interaction.interaction_time"));
      record.interaction_time_us = *t;
    }
  }
  if (!in.has_cost()) {
    violations.push_back({"interaction.cost", "is required"});
  } else {
    absl::StatusOr<Decimal> cost =
        ReadAmount(in.cost(), "interaction.cost", options_.currency, false);
    note(cost.status());
    if (cost.ok()) record.cost = *cost;
  }
  note(CheckOptionalText(in.kind(), "interaction.kind", 64));
  note(CheckNoteText(in.note(), "interaction.note", 1024));
  if (!violations.empty()) return InvalidFields(violations);
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(request.partner_id(), "partner_id"));
  // The tier's contact policy, read before the store's transaction (which
  // holds a connection of the pool) and applied to a new interaction only:
  // a retry gets the stored one even if the first re-scored the partner into
  // another tier.
  auto policy_allows = [&]() -> absl::Status {
    if (values_ == nullptr || request.force()) return absl::OkStatus();
    RAPPORT_ASSIGN_OR_RETURN(std::optional<cv1::ContactPolicy> policy,
                             values_->ContactPolicyOf(request.partner_id()));
    // The channels the policy names are the ones that may be used (the
    // scoring service never sends a policy without any).
    if (!policy.has_value()) return absl::OkStatus();
    if (std::optional<differentiation::PolicyRefusal> no =
            differentiation::RefusedByPolicy(
                *policy, in.channel(), record.cost,
                absl::StrCat("partner ", request.partner_id()))) {
      return absl::FailedPreconditionError(absl::StrCat(
          no->field == "cost" ? "interaction.cost: " : "", no->message,
          "; log it with force (admin) to record it anyway"));
    }
    return absl::OkStatus();
  };
  const absl::Status allowed = policy_allows();
  if (!allowed.ok() && !absl::IsFailedPrecondition(allowed)) return allowed;
  auto admit = [&allowed] { return allowed; };
  record.partner_id = request.partner_id();
  record.channel = in.channel();
  record.kind = in.kind();
  record.note = in.note();
  record.id = request.request_id().empty()
                  ? ids_->Next()
                  : KeyedId("interaction", request.request_id());
  record.recorded_by = actor;
  // An interaction forced past the tier's policy is audited.
  std::optional<audit::Event> forced;
  if (request.force()) {
    forced = Change(actor, "LogInteraction", "partners/" + request.partner_id(),
                    request.request_id(),
                    absl::StrCat("force interaction=", record.id));
  }
  RAPPORT_ASSIGN_OR_RETURN(
      InteractionRecord stored,
      store_->LogInteraction(
          record,
          RequestFingerprintIn(options_.currency, in, request.partner_id()),
          forced, admit));
  Rescore(stored.partner_id);
  return ToProto(stored, options_.currency);
}

absl::StatusOr<v1::ListInteractionsResponse> PartnerLogic::ListInteractions(
    const v1::ListInteractionsRequest& request) {
  RAPPORT_RETURN_IF_ERROR(CheckId(request.partner_id(), "partner_id"));
  RAPPORT_ASSIGN_OR_RETURN(int size, PageSize(request.page_size()));
  // A token of one partner's interactions is no token for anything else.
  const std::string filter =
      absl::StrCat("interactions/", request.partner_id());
  RAPPORT_ASSIGN_OR_RETURN(TimeCursor after,
                           DecodeTimeCursor(request.page_token(), filter));
  RAPPORT_RETURN_IF_ERROR(
      CheckPartnerExists(request.partner_id(), "partner_id"));
  RAPPORT_ASSIGN_OR_RETURN(
      std::vector<InteractionRecord> records,
      store_->ListInteractions(request.partner_id(), after, size + 1));
  v1::ListInteractionsResponse response;
  AddTimePage(
      records, size, filter, &response,
      [](const InteractionRecord& r) { return r.interaction_time_us; },
      [&](const InteractionRecord& r) {
        *response.add_interactions() = ToProto(r, options_.currency);
      });
  return response;
}

// ---- scorecard -------------------------------------------------------------

absl::StatusOr<v1::PartnerScorecard> PartnerLogic::Scorecard(
    const std::string& id) {
  RAPPORT_RETURN_IF_ERROR(CheckId(id, "id"));
  absl::StatusOr<PartnerRecord> partner = store_->GetPartner(id);
  if (absl::IsNotFound(partner.status())) return EntityNotFound("partner", id);
  RAPPORT_RETURN_IF_ERROR(partner.status());
  RAPPORT_ASSIGN_OR_RETURN(PartnerTotals totals, store_->TotalsOf(id));
  v1::PartnerScorecard card;
  card.set_partner_id(id);
  card.set_display_name(partner->display_name);
  card.set_deals_won(totals.deals_won);
  card.set_deals_lost(totals.deals_lost);
  if (totals.deals_won + totals.deals_lost > 0) {
    card.set_win_rate(
        static_cast<double>(totals.deals_won) /
        static_cast<double>(totals.deals_won + totals.deals_lost));
  }
  *card.mutable_funds_paid() = MoneyIn(totals.funds_paid, options_.currency);
  if (!totals.funds_paid.is_zero()) {
    card.set_fund_return(totals.volume.ToDouble() /
                         totals.funds_paid.ToDouble());
  }
  if (values_ == nullptr) return card;
  RAPPORT_ASSIGN_OR_RETURN(differentiation::Differentiation::Trend trend,
                           values_->TrendOf(id));
  if (!trend.now.has_value()) return card;  // not scored yet
  *card.mutable_value() = *trend.now;
  if (trend.previous.has_value()) {
    *card.mutable_previous() = *trend.previous;
    card.set_value_change_hundredths(trend.now->value_hundredths() -
                                     trend.previous->value_hundredths());
  }
  RAPPORT_ASSIGN_OR_RETURN(
      std::optional<differentiation::Differentiation::NextTier> next,
      values_->NextTierOf(*trend.now));
  if (next.has_value()) {
    card.set_next_tier(next->tier);
    *card.mutable_profit_to_next_tier() =
        MoneyIn(next->lacking, options_.currency);
    card.set_profit_must_exceed(next->more_than);
  }
  return card;
}

}  // namespace rapport::partner
