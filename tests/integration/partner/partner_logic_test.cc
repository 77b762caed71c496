// The partner service's rules on its real store (MariaDB): every RPC's
// accepted path, its bad input and its not-found; lifecycles and state moves
// accepted and refused; deal conflicts within the protection window; one
// active agreement per partner and program; fund claims; retries under a
// request id; and each change's audit event.
#include "services/partner/partner_logic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/audit/audit.h"
#include "common/base/timestamp.h"
#include "common/differentiation/mysql_value_store.h"
#include "common/identity.h"
#include "common/import/row_import.h"
#include "common/proto_convert.h"
#include "common/requests.h"
#include "common/status.h"
#include "services/partner/mysql_partner_store.h"
#include "services/partner/partner_import.h"
#include "services/partner/partner_values.h"
#include "tests/support/at_once.h"
#include "tests/support/database.h"
#include "tests/support/names_field.h"
#include "tests/support/rescore_recorder.h"
#include "tests/support/streams.h"

namespace rapport::partner {
namespace {

namespace cv1 = ::rapport::common::v1;

constexpr int64_t kNow = 1'719'792'000'000'000;  // 2024-07-01
constexpr int64_t kDay = 86'400'000'000;

using testing::NamesField;

google::type::Money Usd(const std::string& amount) {
  return *ToMoney(*Decimal::Parse(amount), "USD", "amount");
}

class PartnerLogicTest : public ::testing::Test {
 protected:
  PartnerLogicTest()
      : db_(PartnerSchema()),
        store_(&db_.pool()),
        logic_(
            &store_, &ids_, [this] { return absl::FromUnixMicros(now_); },
            {.currency = "USD"}, nullptr) {}

  // Funds that `partner` asks for (by user:ada).
  absl::StatusOr<v1::FundRequest> RequestFunds(const std::string& partner,
                                               const std::string& activity,
                                               const std::string& amount) {
    v1::RequestFundsRequest r;
    r.mutable_fund_request()->set_partner_id(partner);
    r.mutable_fund_request()->set_activity(activity);
    *r.mutable_fund_request()->mutable_requested_amount() = Usd(amount);
    return logic_.RequestFunds(r, "user:ada");
  }
  // Fund request `id` moved to `to` (by user:ada), with the claimed amount
  // when one is given.
  absl::StatusOr<v1::FundRequest> MoveFunds(const std::string& id,
                                            v1::FundRequestState to,
                                            const std::string& claimed = "") {
    v1::TransitionFundRequestRequest t;
    t.set_id(id);
    t.set_state(to);
    if (!claimed.empty()) *t.mutable_claimed_amount() = Usd(claimed);
    // Requested by ada, claimed by ada, decided by bob (two people).
    return logic_.TransitionFundRequest(
        t, to == v1::FUND_REQUEST_STATE_CLAIMED ? "user:ada" : "user:bob");
  }

  v1::Partner Create(const std::string& name,
                     v1::PartnerKind kind = v1::PARTNER_KIND_CHANNEL,
                     const std::string& request_id = "") {
    v1::CreatePartnerRequest r;
    r.mutable_partner()->set_display_name(name);
    r.mutable_partner()->set_kind(kind);
    r.set_request_id(request_id);
    absl::StatusOr<v1::Partner> p = logic_.CreatePartner(r, "user:ada");
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : v1::Partner();
  }

  absl::StatusOr<v1::Partner> SetLifecycle(const std::string& id,
                                           v1::Lifecycle l) {
    v1::UpdatePartnerRequest r;
    r.mutable_partner()->set_id(id);
    r.mutable_partner()->set_lifecycle(l);
    r.mutable_update_mask()->add_paths("lifecycle");
    return logic_.UpdatePartner(r, "user:ada");
  }

  absl::StatusOr<v1::Deal> Register(const std::string& partner,
                                    const std::string& account,
                                    const std::string& domain, int64_t at_us,
                                    const std::string& request_id = "") {
    v1::RegisterDealRequest r;
    v1::Deal* d = r.mutable_deal();
    d->set_partner_id(partner);
    d->set_account_name(account);
    d->set_account_domain(domain);
    *d->mutable_amount() = Usd("1000");
    *d->mutable_register_time() = ToTimestamp(at_us);
    r.set_request_id(request_id);
    return logic_.RegisterDeal(r, "user:ada");
  }

  absl::StatusOr<v1::Deal> Move(const std::string& id, v1::DealState to,
                                bool force = false,
                                std::optional<int64_t> closed = std::nullopt) {
    v1::TransitionDealRequest r;
    r.set_id(id);
    r.set_state(to);
    r.set_force(force);
    if (closed) *r.mutable_close_time() = ToTimestamp(*closed);
    return logic_.TransitionDeal(r, "user:ada");
  }

  // An import row: a deal of 100 of `partner` with `account`, won.
  static v1::DealRow WonRow(const std::string& partner,
                            const std::string& account, int64_t registered,
                            int64_t closed) {
    v1::DealRow r;
    r.set_partner_ref(partner);
    r.set_account(account);
    r.set_amount("100");
    r.set_registered_at(FormatRfc3339Micros(registered));
    r.set_state("won");
    r.set_closed_at(FormatRfc3339Micros(closed));
    return r;
  }

  // One registration for `account` per partner, in order, each dated a day
  // after the one before and stored a microsecond after it, with the clock
  // first set ten days past kNow.
  std::vector<absl::StatusOr<v1::Deal>> ClaimsInTurn(
      const std::vector<v1::Partner>& partners, const std::string& account,
      const std::string& domain = "") {
    now_ = kNow + 10 * kDay;
    std::vector<absl::StatusOr<v1::Deal>> out;
    for (size_t i = 0; i < partners.size(); ++i) {
      if (i > 0) now_ += 1;
      out.push_back(Register(partners[i].id(), account, domain,
                             kNow + static_cast<int64_t>(i) * kDay));
    }
    return out;
  }
  // The registration deal `id` is in conflict with, as GetDeal shows it.
  std::string ConflictOf(const std::string& id) {
    v1::GetDealRequest get;
    get.set_id(id);
    absl::StatusOr<v1::Deal> deal = logic_.GetDeal(get);
    return deal.ok() ? deal->conflict_with() : deal.status().ToString();
  }

  // `request` with a deal_id on each row that has none, made from what the
  // row says (a row given twice names one deal).
  static v1::ImportDealsRequest WithDealIds(v1::ImportDealsRequest request) {
    for (v1::DealRow& r : *request.mutable_rows()) {
      if (!r.deal_id().empty()) continue;
      r.set_deal_id(absl::StrCat(
          "D", absl::Hash<std::tuple<std::string, std::string, std::string,
                                     std::string, std::string>>()(
                   {r.partner_ref(), r.account(), r.registered_at(), r.state(),
                    r.closed_at()}) %
                   1000000007));
    }
    return request;
  }

  // `request` imported in one message by user:ada, at the test's clock.
  absl::StatusOr<v1::ImportDealsResponse> ImportDealsAsAda(
      const v1::ImportDealsRequest& request) {
    MysqlPartnerImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
    return imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                               "user:ada");
  }

  int64_t AuditCount(const std::string& rpc) {
    return db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = ?", {rpc});
  }

  int64_t now_ = kNow;
  IdGenerator ids_;
  testing::MigratedDatabase db_;
  MysqlPartnerStore store_;
  PartnerLogic logic_;
};

// A contact's email stored before invisible characters at its ends were
// trimmed is trimmed, with its key, so that the address finds the partner;
// the partner's etag changes, and the change is audited.
TEST_F(PartnerLogicTest, StoredContactEmailsWithInvisibleEndsAreTrimmed) {
  v1::CreatePartnerRequest r;
  r.mutable_partner()->set_display_name("Acme");
  r.mutable_partner()->set_kind(v1::PARTNER_KIND_CHANNEL);
  r.mutable_partner()->add_contacts()->set_name("Grace");
  r.mutable_partner()->add_contacts()->set_name("Hal");
  r.mutable_partner()->add_contacts()->set_name("Ivy");
  absl::StatusOr<v1::Partner> made = logic_.CreatePartner(r, "user:ada");
  ASSERT_TRUE(made.ok()) << made.status();
  // As an older version stored them.
  db_.Exec(
      "UPDATE partner_contacts SET email = ELT(position + 1, ?, ?, ?), "
      "email_key = email WHERE partner_id = ?",
      {"Grace@Acme.example\u00a0", "h\u200bal@acme.example",
       "\u200bivy@acme.example", made->id()});
  ASSERT_TRUE(ApplyMigrations(db_.pool(), {TrimmedContactEmailsMigration(
                                              9002, PartnerChildTables())})
                  .ok());
  EXPECT_EQ(db_.Strings("SELECT CONCAT(email, '|', email_key) FROM "
                        "partner_contacts WHERE partner_id = ? ORDER BY "
                        "position",
                        {made->id()}),
            (std::vector<std::string>{
                absl::StrCat("Grace@Acme.example|",
                             EmailMatchKey("Grace@Acme.example")),
                "h\u200bal@acme.example|h\u200bal@acme.example",
                absl::StrCat("ivy@acme.example|",
                             EmailMatchKey("ivy@acme.example"))}));
  // The partner has one new version (its etag changed) and one audit event
  // by the migration, for its two contacts trimmed.
  EXPECT_EQ(
      db_.Count("SELECT version FROM partners WHERE id = ?", {made->id()}), 2);
  v1::GetPartnerRequest get;
  get.set_id(made->id());
  absl::StatusOr<v1::Partner> after = logic_.GetPartner(get);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NE(after->etag(), made->etag());
  EXPECT_EQ(db_.Strings("SELECT CONCAT_WS('|', actor, resource, details) FROM "
                        "audit_events WHERE rpc = 'Migrate'"),
            std::vector<std::string>{
                absl::StrCat("system:migration|partners/", made->id(),
                             "|contact email trimmed (migration 9002)")});
}

TEST_F(PartnerLogicTest, PartnersAreCreatedReadListedUpdatedAndDeleted) {
  v1::CreatePartnerRequest r;
  v1::Partner* in = r.mutable_partner();
  in->set_display_name("  Acme Distribution, Inc. ");
  in->set_kind(v1::PARTNER_KIND_DISTRIBUTOR);
  in->set_region("EMEA");
  cv1::Contact* c = in->add_contacts();
  c->set_name("Grace");
  c->set_email("Grace@Acme.example");
  c->set_phone("+44 20 7946 0958");
  cv1::ExternalId* e = in->add_external_ids();
  e->set_source("erp");
  e->set_id("P-1");
  (*in->mutable_attributes())["segment"] = "smb";
  absl::StatusOr<v1::Partner> made = logic_.CreatePartner(r, "user:ada");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->display_name(), "Acme Distribution, Inc.");
  EXPECT_EQ(made->lifecycle(), v1::LIFECYCLE_PROSPECT);
  EXPECT_EQ(made->contacts(0).phone(), "+442079460958");
  EXPECT_EQ(made->etag(), "1");
  EXPECT_EQ(AuditCount("CreatePartner"), 1);

  v1::GetPartnerRequest get;
  get.set_id(made->id());
  absl::StatusOr<v1::Partner> got = logic_.GetPartner(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->external_ids(0).id(), "P-1");
  EXPECT_EQ(got->attributes().at("segment"), "smb");

  // An external id is the partner's alone.
  v1::CreatePartnerRequest twin = r;
  twin.mutable_partner()->set_display_name("Other");
  absl::StatusOr<v1::Partner> clash = logic_.CreatePartner(twin, "user:ada");
  EXPECT_TRUE(absl::IsAlreadyExists(clash.status())) << clash.status();
  EXPECT_TRUE(absl::StrContains(clash.status().message(), made->id()));

  Create("Beta", v1::PARTNER_KIND_AGENCY);
  v1::ListPartnersRequest list;
  list.set_page_size(1);
  absl::StatusOr<v1::ListPartnersResponse> page = logic_.ListPartners(list);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->partners_size(), 1);
  ASSERT_FALSE(page->next_page_token().empty());
  list.set_page_token(page->next_page_token());
  absl::StatusOr<v1::ListPartnersResponse> rest = logic_.ListPartners(list);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->partners_size(), 1);
  EXPECT_TRUE(rest->next_page_token().empty());
  v1::ListPartnersRequest agencies;
  agencies.set_kind(v1::PARTNER_KIND_AGENCY);
  EXPECT_EQ(logic_.ListPartners(agencies)->partners(0).display_name(), "Beta");
  // A page token is bound to its filter.
  agencies.set_page_token(page->next_page_token());
  EXPECT_TRUE(NamesField(logic_.ListPartners(agencies).status(), "page_token"));

  v1::UpdatePartnerRequest update;
  update.mutable_partner()->set_id(made->id());
  update.mutable_partner()->set_region("APAC");
  update.mutable_partner()->set_etag("1");
  update.mutable_update_mask()->add_paths("region");
  absl::StatusOr<v1::Partner> updated =
      logic_.UpdatePartner(update, "user:ada");
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->region(), "APAC");
  EXPECT_EQ(updated->contacts_size(), 1);  // not in the mask: kept
  EXPECT_EQ(updated->etag(), "2");
  EXPECT_EQ(AuditCount("UpdatePartner"), 1);
  // The audit says what changed.
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'UpdatePartner' AND details = 'fields=region'"),
            1);
  // The same update again (a retry whose answer was lost) finds nothing to
  // change: the first answer, etag included, and nothing written or audited,
  // though its etag is stale now.
  absl::StatusOr<v1::Partner> retried =
      logic_.UpdatePartner(update, "user:ada");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->etag(), "2");
  EXPECT_EQ(retried->region(), "APAC");
  EXPECT_EQ(AuditCount("UpdatePartner"), 1);
  // A stale etag with something to change changes nothing.
  update.mutable_partner()->set_region("LATAM");
  EXPECT_TRUE(
      absl::IsAborted(logic_.UpdatePartner(update, "user:ada").status()));
  EXPECT_EQ(logic_.GetPartner(get)->region(), "APAC");

  v1::DeletePartnerRequest del;
  del.set_id(made->id());
  ASSERT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
  EXPECT_TRUE(absl::IsNotFound(logic_.GetPartner(get).status()));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partner_external_ids"), 0);
  EXPECT_EQ(AuditCount("DeletePartner"), 1);
  // Deleted again: NOT_FOUND, unless allow_missing says a retry finding
  // its work done is fine; either way nothing more is audited.
  EXPECT_TRUE(absl::IsNotFound(logic_.DeletePartner(del, "user:admin")));
  del.set_allow_missing(true);
  EXPECT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
  EXPECT_EQ(AuditCount("DeletePartner"), 1);
}

// A registration closed (rejected) protects nothing: the next one conflicts
// with the earliest claim still open, not with it.
TEST_F(PartnerLogicTest, AClosedRegistrationProtectsNothing) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  now_ = kNow + 10 * kDay;
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Initech", "initech.example", kNow);
  absl::StatusOr<v1::Deal> second =
      Register(b.id(), "Initech", "initech.example", kNow + kDay);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(second->conflict_with(), first->id());
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_REJECTED).ok());
  absl::StatusOr<v1::Deal> third =
      Register(c.id(), "Initech", "initech.example", kNow + 2 * kDay);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->conflict_with(), second->id());
  ASSERT_TRUE(Move(second->id(), v1::DEAL_STATE_REJECTED).ok());
  absl::StatusOr<v1::Deal> fourth =
      Register(a.id(), "Initech", "initech.example", kNow + 3 * kDay);
  ASSERT_TRUE(fourth.ok()) << fourth.status();
  EXPECT_EQ(fourth->conflict_with(), third->id());
}

// A conflict whose earlier claim closes is not thereby free: another claim
// stored before it may still hold the account. The deals waiting on the
// closed one name that claim from then on (ListDealConflicts shows them
// against it), and approving against it needs force too; a deal that still
// names the closed one (stored so before this rule) meets it on approval.
// With every earlier claim closed, no force is needed.
TEST_F(PartnerLogicTest, ApprovingAfterTheNamedClaimClosedMeetsTheNextClaim) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma"), d = Create("Delta");
  auto claims = ClaimsInTurn({a, b, c, d}, "Globex", "globex.example");
  const absl::StatusOr<v1::Deal>&first = claims[0], &second = claims[1],
        &third = claims[2], &fourth = claims[3];
  ASSERT_TRUE(first.ok() && second.ok() && third.ok() && fourth.ok());
  ASSERT_EQ(second->conflict_with(), first->id());
  ASSERT_EQ(third->conflict_with(), first->id());
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_REJECTED).ok());
  // Beta's was the first after Alpha's: nothing holds the account before
  // it, and it still names Alpha's. Gamma's and Delta's name Beta's now.
  EXPECT_EQ(ConflictOf(second->id()), first->id());
  EXPECT_EQ(ConflictOf(third->id()), second->id());
  EXPECT_EQ(ConflictOf(fourth->id()), second->id());
  EXPECT_EQ(db_.Strings("SELECT CONCAT(actor, ' ', details) FROM audit_events "
                        "WHERE resource = ? AND details LIKE 'in conflict%'",
                        {"deals/" + third->id()}),
            std::vector<std::string>{absl::StrCat(
                "user:ada in conflict with ", second->id(),
                " now: the earlier registration ", first->id(), " closed")});
  absl::StatusOr<v1::ListDealConflictsResponse> waiting =
      logic_.ListDealConflicts({});
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  ASSERT_EQ(waiting->conflicts_size(), 2);
  for (const v1::DealConflict& conflict : waiting->conflicts()) {
    EXPECT_EQ(conflict.claims(0).deal().id(), second->id());
  }

  absl::StatusOr<v1::Deal> beta = Move(second->id(), v1::DEAL_STATE_APPROVED);
  ASSERT_TRUE(beta.ok()) << beta.status();
  EXPECT_FALSE(beta->approved_in_conflict());
  // Gamma's, as stored before this rule (still naming Alpha's), meets
  // Beta's, stored before it and open.
  db_.Exec("UPDATE deals SET conflict_with = ? WHERE id = ?",
           {first->id(), third->id()});
  absl::Status refused = Move(third->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(
      refused.message(),
      absl::StrCat("conflicts with the earlier registration ", second->id())))
      << refused;
  absl::StatusOr<v1::Deal> forced =
      Move(third->id(), v1::DEAL_STATE_APPROVED, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_TRUE(forced->approved_in_conflict());
  EXPECT_EQ(forced->conflict_with(), second->id());
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE rpc = "
                        "'TransitionDeal' AND resource = ? AND details LIKE "
                        "'approved%'",
                        {"deals/" + third->id()}),
            std::vector<std::string>{absl::StrCat("approved in conflict with ",
                                                  second->id(), "; force")});

  // Beta's won still holds the account against Delta's; once Beta's (here
  // by hand, as stored before this rule) and Gamma's are lost, Delta's is
  // free.
  ASSERT_TRUE(
      Move(second->id(), v1::DEAL_STATE_WON, false, kNow + 5 * kDay).ok());
  absl::Status held = Move(fourth->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(held)) << held;
  EXPECT_TRUE(absl::StrContains(held.message(), second->id())) << held;
  db_.Exec("UPDATE deals SET state = 5 WHERE id = ?", {second->id()});
  ASSERT_TRUE(
      Move(third->id(), v1::DEAL_STATE_LOST, false, kNow + 5 * kDay).ok());
  absl::StatusOr<v1::Deal> delta = Move(fourth->id(), v1::DEAL_STATE_APPROVED);
  ASSERT_TRUE(delta.ok()) << delta.status();
  EXPECT_FALSE(delta->approved_in_conflict());
  EXPECT_EQ(delta->conflict_with(), second->id());
}

// Two deals never name each other: a claim that names the deal being moved
// on (stored before it by the clock, committed after it, as two
// registrations racing may be) is not its next claim.
TEST_F(PartnerLogicTest, TwoDealsNeverNameEachOther) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  auto claims = ClaimsInTurn({a, b, c}, "Umbrella");
  const absl::StatusOr<v1::Deal>&held = claims[0], &early = claims[1],
        &late = claims[2];
  ASSERT_TRUE(held.ok() && early.ok() && late.ok());
  // Beta's, stored first by the clock, names Gamma's (it read Gamma's as
  // the earliest claim when it committed).
  db_.Exec("UPDATE deals SET conflict_with = ? WHERE id = ?",
           {late->id(), early->id()});
  ASSERT_TRUE(Move(held->id(), v1::DEAL_STATE_REJECTED).ok());
  EXPECT_EQ(ConflictOf(late->id()), held->id());
  EXPECT_EQ(ConflictOf(early->id()), late->id());
}

// Ending a partner expires its open deals; other partners' deals waiting on
// them meet the next claim, each audited.
TEST_F(PartnerLogicTest, DealsWaitingOnAnEndedPartnersMeetTheNextClaim) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  auto claims = ClaimsInTurn({a, b, c}, "Pied Piper");
  const absl::StatusOr<v1::Deal>&first = claims[0], &second = claims[1],
        &third = claims[2];
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  ASSERT_EQ(third->conflict_with(), first->id());
  ASSERT_TRUE(SetLifecycle(a.id(), v1::LIFECYCLE_ENDED).ok());
  v1::GetDealRequest get;
  get.set_id(third->id());
  EXPECT_EQ(logic_.GetDeal(get)->conflict_with(), second->id());
  EXPECT_NE(logic_.GetDeal(get)->etag(), third->etag());
  EXPECT_EQ(db_.Strings("SELECT CONCAT(rpc, ' ', details) FROM audit_events "
                        "WHERE resource = ? AND details LIKE 'in conflict%'",
                        {"deals/" + third->id()}),
            std::vector<std::string>{absl::StrCat(
                "UpdatePartner in conflict with ", second->id(),
                " now: the earlier registration ", first->id(), " closed")});
}

// A deal freed by a forced delete that still waits for its decision names
// the next claim that holds its account (approving it takes force, as
// against the first); with none, it is free.
TEST_F(PartnerLogicTest, ADealFreedByADeleteMeetsTheNextClaim) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  auto claims = ClaimsInTurn({a, b, c}, "Hooli");
  const absl::StatusOr<v1::Deal>&first = claims[0], &second = claims[1],
        &third = claims[2];
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  ASSERT_EQ(third->conflict_with(), first->id());
  v1::DeletePartnerRequest del;
  del.set_id(a.id());
  del.set_force(true);
  ASSERT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
  EXPECT_EQ(ConflictOf(second->id()), "");
  EXPECT_EQ(ConflictOf(third->id()), second->id());
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE rpc = "
                        "'DeletePartner' AND resource = ?",
                        {"deals/" + third->id()}),
            std::vector<std::string>{
                absl::StrCat("no longer in conflict: the earlier registration ",
                             first->id(), " was deleted with partner ", a.id(),
                             "; in conflict with ", second->id(), " now")});
  absl::Status refused = Move(third->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(Move(second->id(), v1::DEAL_STATE_APPROVED).ok());
}

// A forced delete waits for a registration that holds the account of one
// of the partner's open deals (and may have read it as its earlier claim),
// so that the conflict the registration stores is cleared, not left naming
// a deal that is gone.
TEST_F(PartnerLogicTest, AForcedDeleteClearsTheConflictOfARacingRegistration) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  absl::StatusOr<v1::Deal> held =
      Register(a.id(), "Globex", "globex.example", kNow);
  ASSERT_TRUE(held.ok()) << held.status();
  v1::DeletePartnerRequest del;
  del.set_id(a.id());
  del.set_force(true);
  std::thread deleter;
  absl::Status deleted;
  const std::string racing = ids_.Next();
  ASSERT_TRUE(
      db_.pool()
          .Transaction([&](sql::Connection& c) -> absl::Status {
            // b's registration: the account locked, a's deal read as the
            // earlier claim; the delete starts meanwhile.
            LockDealAccounts(c, {"globex.example"}, {"globex"});
            deleter = std::thread(
                [&] { deleted = logic_.DeletePartner(del, "user:admin"); });
            // Until the delete waits for the account this transaction holds.
            db_.AwaitWaitingStatement();
            std::unique_ptr<sql::Statement> st(c.createStatement());
            st->execute(absl::StrCat(
                "INSERT INTO deals (id, partner_id, account_name, "
                "account_domain, domain_key, name_key, amount, "
                "register_time_us, state, conflict_with, create_time_us, "
                "update_time_us) VALUES ('",
                racing, "', '", b.id(),
                "', 'Globex', 'globex.example', 'globex.example', 'globex', "
                "1000, ",
                kNow + 1, ", 1, '", held->id(), "', ", kNow, ", ", kNow, ")"));
            return absl::OkStatus();
          })
          .ok());
  deleter.join();
  ASSERT_TRUE(deleted.ok()) << deleted;
  EXPECT_EQ(
      db_.Strings("SELECT IFNULL(conflict_with, '') FROM deals WHERE id = ?",
                  {racing}),
      std::vector<std::string>{""});
}

// A page token is good for the listing it came from: one of the deals is
// refused by the fund requests (which share its filter's shape), and the
// other way round.
TEST_F(PartnerLogicTest, APageTokenOfOneListingIsRefusedByAnother) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  now_ = kNow + 10 * kDay;
  ASSERT_TRUE(Register(a.id(), "Globex", "", kNow).ok());
  ASSERT_TRUE(Register(b.id(), "Initech", "", kNow).ok());
  v1::ListDealsRequest deals;
  deals.set_page_size(1);
  absl::StatusOr<v1::ListDealsResponse> page = logic_.ListDeals(deals);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_FALSE(page->next_page_token().empty());
  v1::ListFundRequestsRequest funds;
  funds.set_page_token(page->next_page_token());
  EXPECT_TRUE(
      NamesField(logic_.ListFundRequests(funds).status(), "page_token"));
  v1::ListAgreementsRequest agreements;
  agreements.set_page_token(page->next_page_token());
  EXPECT_TRUE(
      NamesField(logic_.ListAgreements(agreements).status(), "page_token"));
  deals.set_page_token(page->next_page_token());
  absl::StatusOr<v1::ListDealsResponse> next = logic_.ListDeals(deals);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->deals_size(), 1);
}

// A partner's orders and interactions list oldest first, page after page,
// whatever their ids (made from request ids, which have no time order).
TEST_F(PartnerLogicTest, OrdersAndInteractionsListOldestFirstAcrossPages) {
  const v1::Partner p = Create("Alpha");
  const std::vector<int64_t> hours_ago = {5, 40, 1, 17, 17};
  for (size_t i = 0; i < hours_ago.size(); ++i) {
    const int64_t t = kNow - hours_ago[i] * 3'600'000'000;
    v1::RecordOrderRequest o;
    o.set_partner_id(p.id());
    *o.mutable_order()->mutable_order_time() = ToTimestamp(t);
    *o.mutable_order()->mutable_amount() = Usd("10");
    o.set_request_id(absl::StrCat("order-", i));
    ASSERT_TRUE(logic_.RecordOrder(o, "u").ok());
    v1::LogInteractionRequest l;
    l.set_partner_id(p.id());
    l.mutable_interaction()->set_channel(cv1::CHANNEL_EMAIL);
    *l.mutable_interaction()->mutable_interaction_time() = ToTimestamp(t);
    *l.mutable_interaction()->mutable_cost() = Usd("1");
    l.set_request_id(absl::StrCat("call-", i));
    ASSERT_TRUE(logic_.LogInteraction(l, "u").ok());
  }
  std::vector<int64_t> want;
  for (int64_t h : hours_ago) want.push_back(kNow - h * 3'600'000'000);
  std::sort(want.begin(), want.end());

  v1::ListOrdersRequest orders;
  orders.set_partner_id(p.id());
  orders.set_page_size(2);
  std::vector<int64_t> seen;
  std::set<std::string> ids;
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<v1::ListOrdersResponse> r = logic_.ListOrders(orders);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const v1::Order& o : r->orders()) {
      seen.push_back(FromTimestamp(o.order_time(), "t").value());
      ids.insert(o.id());
    }
    if (r->next_page_token().empty()) break;
    orders.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, want);
  EXPECT_EQ(ids.size(), 5u);

  v1::ListInteractionsRequest interactions;
  interactions.set_partner_id(p.id());
  interactions.set_page_size(3);
  seen.clear();
  for (int page = 0; page < 5; ++page) {
    absl::StatusOr<v1::ListInteractionsResponse> r =
        logic_.ListInteractions(interactions);
    ASSERT_TRUE(r.ok()) << r.status();
    for (const v1::Interaction& i : r->interactions()) {
      seen.push_back(FromTimestamp(i.interaction_time(), "t").value());
    }
    if (r->next_page_token().empty()) break;
    interactions.set_page_token(r->next_page_token());
  }
  EXPECT_EQ(seen, want);
}

TEST_F(PartnerLogicTest, BadInputNamesTheFieldAndNotFoundNamesTheId) {
  v1::CreatePartnerRequest r;
  absl::Status bad = logic_.CreatePartner(r, "user:ada").status();
  EXPECT_TRUE(NamesField(bad, "partner.display_name")) << bad;
  EXPECT_TRUE(NamesField(bad, "partner.kind")) << bad;
  r.mutable_partner()->set_display_name("X");
  r.mutable_partner()->set_kind(v1::PARTNER_KIND_CHANNEL);
  for (int i = 0; i < 21; ++i) {
    cv1::ExternalId* e = r.mutable_partner()->add_external_ids();
    e->set_source("s");
    e->set_id(absl::StrCat(i));
  }
  EXPECT_TRUE(NamesField(logic_.CreatePartner(r, "u").status(),
                         "partner.external_ids"));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners"), 0);

  const std::string missing = ids_.Next();
  v1::GetPartnerRequest get;
  get.set_id(missing);
  absl::Status nf = logic_.GetPartner(get).status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing));
  get.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.GetPartner(get).status(), "id"));
  // NOT_FOUND naming the id asked for (the partner's, for the calls about
  // a partner).
  auto NotFoundNaming = [&](const absl::Status& s) {
    return absl::IsNotFound(s) && absl::StrContains(s.message(), missing);
  };

  v1::UpdatePartnerRequest update;
  update.mutable_partner()->set_id(missing);
  update.mutable_update_mask()->add_paths("region");
  EXPECT_TRUE(NotFoundNaming(logic_.UpdatePartner(update, "u").status()));
  update.mutable_update_mask()->add_paths("create_time");
  EXPECT_TRUE(
      NamesField(logic_.UpdatePartner(update, "u").status(), "update_mask"));
  v1::DeletePartnerRequest del;
  del.set_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.DeletePartner(del, "u")));

  // Every other RPC's not-found.
  v1::GetDealRequest deal;
  deal.set_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.GetDeal(deal).status()));
  EXPECT_TRUE(NotFoundNaming(Move(missing, v1::DEAL_STATE_APPROVED).status()));
  v1::GetProgramRequest program;
  program.set_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.GetProgram(program).status()));
  v1::GetAgreementRequest agreement;
  agreement.set_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.GetAgreement(agreement).status()));
  v1::TransitionAgreementRequest move;
  move.set_id(missing);
  move.set_state(v1::AGREEMENT_STATE_ACTIVE);
  EXPECT_TRUE(NotFoundNaming(logic_.TransitionAgreement(move, "u").status()));
  v1::GetFundRequestRequest fund;
  fund.set_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.GetFundRequest(fund).status()));
  v1::RecordOrderRequest order;
  order.set_partner_id(missing);
  *order.mutable_order()->mutable_order_time() = ToTimestamp(kNow);
  *order.mutable_order()->mutable_amount() = Usd("5");
  EXPECT_TRUE(NotFoundNaming(logic_.RecordOrder(order, "u").status()));
  v1::ListOrdersRequest orders;
  orders.set_partner_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.ListOrders(orders).status()));
  v1::ListInteractionsRequest interactions;
  interactions.set_partner_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.ListInteractions(interactions).status()));
  // Every list filtered by a partner that does not exist says so alike.
  v1::ListDealsRequest deals;
  deals.set_partner_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.ListDeals(deals).status()));
  v1::ListAgreementsRequest agreements;
  agreements.set_partner_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.ListAgreements(agreements).status()));
  v1::ListFundRequestsRequest fund_requests;
  fund_requests.set_partner_id(missing);
  EXPECT_TRUE(NotFoundNaming(logic_.ListFundRequests(fund_requests).status()));
  EXPECT_TRUE(NotFoundNaming(logic_.Scorecard(missing).status()));
  EXPECT_TRUE(NotFoundNaming(Register(missing, "Acme", "", kNow).status()));

  // What is not an id is refused naming the field, not looked for.
  del.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.DeletePartner(del, "u"), "id"));
  deal.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.GetDeal(deal).status(), "id"));
  program.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.GetProgram(program).status(), "id"));
  agreement.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.GetAgreement(agreement).status(), "id"));
  fund.set_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.GetFundRequest(fund).status(), "id"));
  EXPECT_TRUE(NamesField(logic_.Scorecard("not-an-id").status(), "id"));
  orders.set_partner_id("not-an-id");
  EXPECT_TRUE(NamesField(logic_.ListOrders(orders).status(), "partner_id"));
  interactions.set_partner_id("not-an-id");
  EXPECT_TRUE(
      NamesField(logic_.ListInteractions(interactions).status(), "partner_id"));

  // Bad input of the other RPCs.
  order.mutable_order()->mutable_amount()->set_currency_code("EUR");
  EXPECT_TRUE(
      NamesField(logic_.RecordOrder(order, "u").status(), "order.amount"));
  const v1::Partner p = Create("P");
  absl::Status no_account = Register(p.id(), "", "", kNow).status();
  EXPECT_TRUE(NamesField(no_account, "deal.account_name")) << no_account;
  v1::RequestFundsRequest funds;
  funds.mutable_fund_request()->set_partner_id(p.id());
  absl::Status no_funds = logic_.RequestFunds(funds, "u").status();
  EXPECT_TRUE(NamesField(no_funds, "fund_request.activity")) << no_funds;
  EXPECT_TRUE(NamesField(no_funds, "fund_request.requested_amount"));
  // What only a transition sets is refused, not ignored.
  funds.mutable_fund_request()->set_activity("fair");
  *funds.mutable_fund_request()->mutable_requested_amount() = Usd("10");
  funds.mutable_fund_request()->set_state(v1::FUND_REQUEST_STATE_APPROVED);
  *funds.mutable_fund_request()->mutable_claimed_amount() = Usd("10");
  *funds.mutable_fund_request()->mutable_paid_time() = ToTimestamp(kNow);
  absl::Status output_only = logic_.RequestFunds(funds, "u").status();
  EXPECT_TRUE(NamesField(output_only, "fund_request.state")) << output_only;
  EXPECT_TRUE(NamesField(output_only, "fund_request.claimed_amount"));
  EXPECT_TRUE(NamesField(output_only, "fund_request.paid_time"));
  EXPECT_FALSE(NamesField(output_only, "fund_request.claim_time"));
  funds.mutable_fund_request()->clear_claimed_amount();
  funds.mutable_fund_request()->clear_paid_time();
  // The state it would have anyway is no error.
  funds.mutable_fund_request()->set_state(v1::FUND_REQUEST_STATE_REQUESTED);
  EXPECT_TRUE(logic_.RequestFunds(funds, "u").ok());
  v1::LogInteractionRequest log;
  log.set_partner_id(p.id());
  absl::Status no_log = logic_.LogInteraction(log, "u").status();
  EXPECT_TRUE(NamesField(no_log, "interaction.channel")) << no_log;
  // The partner is the request's: a record naming another is refused.
  log.mutable_interaction()->set_partner_id(missing);
  EXPECT_TRUE(NamesField(logic_.LogInteraction(log, "u").status(),
                         "interaction.partner_id"));
  order.set_partner_id(p.id());
  order.mutable_order()->set_partner_id(missing);
  EXPECT_TRUE(
      NamesField(logic_.RecordOrder(order, "u").status(), "order.partner_id"));
  v1::CreateProgramRequest prog;
  prog.mutable_program()->set_name("Reseller 2027");
  v1::ProgramTerms* t = prog.mutable_program()->add_terms();
  t->set_commission_percent("12.34567");
  EXPECT_TRUE(NamesField(logic_.CreateProgram(prog, "u").status(),
                         "program.terms[0].commission_percent"));
  t->set_commission_percent("101");
  EXPECT_TRUE(NamesField(logic_.CreateProgram(prog, "u").status(),
                         "program.terms[0].commission_percent"));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM programs"), 0);
}

TEST_F(PartnerLogicTest, EveryRpcNamesItsBadFieldAndItsUnknownIds) {
  const std::string missing = ids_.Next();
  const v1::Partner p = Create("P");
  v1::CreateProgramRequest pr;
  pr.mutable_program()->set_name("Reseller 2027");
  pr.mutable_program()->add_terms()->set_commission_percent("10");
  absl::StatusOr<v1::Program> program = logic_.CreateProgram(pr, "u");
  ASSERT_TRUE(program.ok()) << program.status();

  // Not-found: a write naming an unknown partner, program or fund request
  // is refused naming the id, and writes nothing.
  v1::RequestFundsRequest funds;
  funds.mutable_fund_request()->set_partner_id(missing);
  funds.mutable_fund_request()->set_activity("Q3 webinars");
  *funds.mutable_fund_request()->mutable_requested_amount() = Usd("5000");
  absl::Status nf = logic_.RequestFunds(funds, "u").status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing)) << nf;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM fund_requests"), 0);

  v1::LogInteractionRequest log;
  log.set_partner_id(missing);
  log.mutable_interaction()->set_channel(cv1::CHANNEL_VISIT);
  *log.mutable_interaction()->mutable_interaction_time() = ToTimestamp(kNow);
  *log.mutable_interaction()->mutable_cost() = Usd("80");
  nf = logic_.LogInteraction(log, "u").status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing)) << nf;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM interactions"), 0);

  v1::TransitionFundRequestRequest approve;
  approve.set_id(missing);
  approve.set_state(v1::FUND_REQUEST_STATE_APPROVED);
  nf = logic_.TransitionFundRequest(approve, "u").status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing)) << nf;
  EXPECT_EQ(AuditCount("TransitionFundRequest"), 0);

  // An agreement with an unknown partner (of a real program), then with an
  // unknown program (of a real partner).
  v1::CreateAgreementRequest agreement;
  agreement.mutable_agreement()->set_partner_id(missing);
  agreement.mutable_agreement()->set_program_id(program->id());
  *agreement.mutable_agreement()->mutable_start_time() = ToTimestamp(kNow);
  nf = logic_.CreateAgreement(agreement, "u").status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing)) << nf;
  agreement.mutable_agreement()->set_partner_id(p.id());
  agreement.mutable_agreement()->set_program_id(missing);
  nf = logic_.CreateAgreement(agreement, "u").status();
  EXPECT_TRUE(absl::IsNotFound(nf)) << nf;
  EXPECT_TRUE(absl::StrContains(nf.message(), missing)) << nf;
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM agreements"), 0);

  // Bad input: a move to no state (or to one that is not a state) names
  // "state" and leaves the record as it was.
  funds.mutable_fund_request()->set_partner_id(p.id());
  absl::StatusOr<v1::FundRequest> fund = logic_.RequestFunds(funds, "u");
  ASSERT_TRUE(fund.ok()) << fund.status();
  agreement.mutable_agreement()->set_program_id(program->id());
  absl::StatusOr<v1::Agreement> draft = logic_.CreateAgreement(agreement, "u");
  ASSERT_TRUE(draft.ok()) << draft.status();
  for (int state : {0, 99}) {
    v1::TransitionFundRequestRequest move_fund;
    move_fund.set_id(fund->id());
    move_fund.set_state(static_cast<v1::FundRequestState>(state));
    absl::Status bad = logic_.TransitionFundRequest(move_fund, "u").status();
    EXPECT_TRUE(NamesField(bad, "state")) << state << ": " << bad;
    v1::TransitionAgreementRequest move_agreement;
    move_agreement.set_id(draft->id());
    move_agreement.set_state(static_cast<v1::AgreementState>(state));
    bad = logic_.TransitionAgreement(move_agreement, "u").status();
    EXPECT_TRUE(NamesField(bad, "state")) << state << ": " << bad;
  }
  v1::GetFundRequestRequest get_fund;
  get_fund.set_id(fund->id());
  EXPECT_EQ(logic_.GetFundRequest(get_fund)->state(),
            v1::FUND_REQUEST_STATE_REQUESTED);
  EXPECT_EQ(AuditCount("TransitionFundRequest"), 0);
  v1::GetAgreementRequest get_agreement;
  get_agreement.set_id(draft->id());
  EXPECT_EQ(logic_.GetAgreement(get_agreement)->state(),
            v1::AGREEMENT_STATE_DRAFT);
  EXPECT_EQ(AuditCount("TransitionAgreement"), 0);

  // Bad input: an enum filter that is no value of its enum.
  v1::ListPartnersRequest by_kind, by_lifecycle, by_tier;
  by_kind.set_kind(static_cast<v1::PartnerKind>(99));
  by_lifecycle.set_lifecycle(static_cast<v1::Lifecycle>(99));
  by_tier.set_tier(static_cast<cv1::Tier>(99));
  EXPECT_TRUE(NamesField(logic_.ListPartners(by_kind).status(), "kind"));
  EXPECT_TRUE(
      NamesField(logic_.ListPartners(by_lifecycle).status(), "lifecycle"));
  EXPECT_TRUE(NamesField(logic_.ListPartners(by_tier).status(), "tier"));
  v1::ListPartnersRequest by_order;
  by_order.set_order_by("name");
  EXPECT_TRUE(NamesField(logic_.ListPartners(by_order).status(), "order_by"));
  for (const char* order : {"value desc", "value", "id"}) {
    by_order.set_order_by(order);
    EXPECT_TRUE(logic_.ListPartners(by_order).ok()) << order;
  }
  v1::ListPartnersRequest by_segment;
  by_segment.set_segment(std::string(65, 's'));
  EXPECT_TRUE(NamesField(logic_.ListPartners(by_segment).status(), "segment"));
  v1::CreateProgramRequest unnamed;
  EXPECT_TRUE(
      NamesField(logic_.CreateProgram(unnamed, "u").status(), "program.name"));
  v1::ListDealsRequest deals;
  deals.set_state(static_cast<v1::DealState>(99));
  EXPECT_TRUE(NamesField(logic_.ListDeals(deals).status(), "state"));
  v1::ListAgreementsRequest agreements;
  agreements.set_state(static_cast<v1::AgreementState>(99));
  EXPECT_TRUE(NamesField(logic_.ListAgreements(agreements).status(), "state"));
  v1::ListFundRequestsRequest fund_requests;
  fund_requests.set_state(static_cast<v1::FundRequestState>(99));
  EXPECT_TRUE(
      NamesField(logic_.ListFundRequests(fund_requests).status(), "state"));

  // Bad input: a page token the service did not issue.
  const std::string forged = "not a token!";
  v1::ListProgramsRequest programs;
  programs.set_page_token(forged);
  EXPECT_TRUE(NamesField(logic_.ListPrograms(programs).status(), "page_token"));
  v1::ListDealConflictsRequest conflicts;
  conflicts.set_page_token(forged);
  EXPECT_TRUE(
      NamesField(logic_.ListDealConflicts(conflicts).status(), "page_token"));
  v1::FindDuplicatePartnersRequest duplicates;
  duplicates.set_page_token(forged);
  EXPECT_TRUE(
      NamesField(logic_.FindDuplicates(duplicates).status(), "page_token"));

  // Bad input: an identity's email that is no address; nothing is created.
  v1::IdentifyPartnerRequest identify;
  identify.set_display_name("Acme");
  identify.set_contact_email("ann.at.acme.example");
  absl::Status bad_email = logic_.IdentifyPartner(identify, "u").status();
  EXPECT_TRUE(absl::IsInvalidArgument(bad_email)) << bad_email;
  const std::vector<FieldViolation> named = FieldViolations(bad_email);
  ASSERT_EQ(named.size(), 1u) << bad_email;
  EXPECT_EQ(named[0].field, "contact_email");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners"), 1);  // only P
}

TEST_F(PartnerLogicTest, TheLifecycleMovesOnlyAlongItsPath) {
  const v1::Partner p = Create("Acme");
  EXPECT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ONBOARDING).ok());
  absl::Status skip = SetLifecycle(p.id(), v1::LIFECYCLE_SUSPENDED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(skip)) << skip;
  EXPECT_TRUE(absl::StrContains(skip.message(), "onboarding")) << skip;
  EXPECT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ACTIVE).ok());
  EXPECT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_SUSPENDED).ok());
  EXPECT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ACTIVE).ok());
  EXPECT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ENDED).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      SetLifecycle(p.id(), v1::LIFECYCLE_ACTIVE).status()));
  v1::GetPartnerRequest get;
  get.set_id(p.id());
  EXPECT_EQ(logic_.GetPartner(get)->lifecycle(), v1::LIFECYCLE_ENDED);
  // Each move is audited with what it was.
  EXPECT_EQ(
      db_.Count(
          "SELECT COUNT(*) FROM audit_events WHERE rpc = "
          "'UpdatePartner' AND details LIKE 'fields=lifecycle; lifecycle %'"),
      5);
}

TEST_F(PartnerLogicTest, ACreateRetriedUnderItsRequestIdReturnsTheFirstAnswer) {
  const v1::Partner first = Create("Acme", v1::PARTNER_KIND_CHANNEL, "req-1");
  const v1::Partner again = Create("Acme", v1::PARTNER_KIND_CHANNEL, "req-1");
  EXPECT_EQ(again.id(), first.id());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners"), 1);
  EXPECT_EQ(AuditCount("CreatePartner"), 1);
  v1::CreatePartnerRequest other;
  other.mutable_partner()->set_display_name("Someone else");
  other.mutable_partner()->set_kind(v1::PARTNER_KIND_CHANNEL);
  other.set_request_id("req-1");
  absl::Status reused = logic_.CreatePartner(other, "user:ada").status();
  EXPECT_TRUE(NamesField(reused, "request_id")) << reused;
  // A retry that also carries the fields a create ignores (times, etag,
  // created by, as a record read back has them) says the same as the first.
  v1::CreatePartnerRequest read_back;
  read_back.mutable_partner()->set_display_name("Acme");
  read_back.mutable_partner()->set_kind(v1::PARTNER_KIND_CHANNEL);
  *read_back.mutable_partner()->mutable_create_time() = first.create_time();
  *read_back.mutable_partner()->mutable_update_time() = first.update_time();
  read_back.mutable_partner()->set_etag(first.etag());
  read_back.mutable_partner()->set_created_by(first.created_by());
  read_back.set_request_id("req-1");
  absl::StatusOr<v1::Partner> same =
      logic_.CreatePartner(read_back, "user:ada");
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(same->id(), first.id());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners"), 1);
}

// A partner made again under its deleted predecessor's request id has the
// same id, and none of the predecessor's value: not even one that a re-score
// under way at the delete wrote after it.
TEST_F(PartnerLogicTest, APartnerMadeAgainUnderItsIdHasNoneOfTheOldValue) {
  const v1::Partner first = Create("Acme", v1::PARTNER_KIND_CHANNEL, "req-9");
  v1::DeletePartnerRequest del;
  del.set_id(first.id());
  ASSERT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
  differentiation::MysqlValueStore values(&db_.pool(), PartnerValueTables());
  differentiation::StoredValue late;
  late.entity_id = first.id();
  late.model_id = "job-1";
  late.frequency = 3;
  late.segment = "Champions";
  late.value_hundredths = 9000;
  late.tier = 4;
  late.score_time_us = kNow;
  ASSERT_TRUE(values.UpsertValues({late}).ok());
  ASSERT_EQ(db_.Count("SELECT COUNT(*) FROM partner_scores"), 1);

  const v1::Partner again = Create("Acme", v1::PARTNER_KIND_CHANNEL, "req-9");
  EXPECT_EQ(again.id(), first.id());
  EXPECT_FALSE(again.has_value()) << again.value().DebugString();
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partner_scores"), 0);

  // An identify retried under the request id that made a partner deleted
  // since identifies anew: the partner is made again, without the value.
  v1::IdentifyPartnerRequest identify;
  identify.set_display_name("Globex");
  identify.set_kind(v1::PARTNER_KIND_AGENCY);
  identify.add_external_ids()->set_source("crm");
  identify.mutable_external_ids(0)->set_id("42");
  identify.set_request_id("identify-9");
  absl::StatusOr<v1::IdentifyPartnerResponse> made =
      logic_.IdentifyPartner(identify, "user:ada");
  ASSERT_TRUE(made.ok()) << made.status();
  del.set_id(made->partner().id());
  ASSERT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
  late.entity_id = made->partner().id();
  ASSERT_TRUE(values.UpsertValues({late}).ok());
  absl::StatusOr<v1::IdentifyPartnerResponse> remade =
      logic_.IdentifyPartner(identify, "user:ada");
  ASSERT_TRUE(remade.ok()) << remade.status();
  EXPECT_TRUE(remade->created());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners WHERE id = ?",
                      {remade->partner().id()}),
            1);
  EXPECT_FALSE(remade->partner().has_value());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partner_scores"), 0);
}

// One account spelt in capitals by one partner and in lower case by another
// is one account, past ASCII too.
TEST_F(PartnerLogicTest, AnAccountNamePastAsciiConflictsWhateverItsCase) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  now_ = kNow + kDay;
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Soci\u00e9t\u00e9 G\u00e9n\u00e9rale", "", kNow);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::Deal> second = Register(
      b.id(), "SOCI\u00c9T\u00c9 G\u00c9N\u00c9RALE S.A.", "", kNow + 1);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->conflict_with(), first->id());
}

// Migration 2001 makes the keys stored before it again: a name past ASCII
// stored with the old key (ASCII letters lowered only) gets today's.
TEST(PartnerUpgrade, FirmNameKeysAreMadeAgain) {
  std::vector<Migration> before;
  for (const Migration& m : PartnerSchema()) {
    if (m.version < 2001) before.push_back(m);
  }
  testing::MigratedDatabase db(before);
  for (const auto& [id, name, key] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"p1", "SOCI\u00c9T\u00c9 G\u00c9N\u00c9RALE",
            "soci\u00c9t\u00c9 g\u00c9n\u00c9rale"},
           {"p2", "Acme", "acme"}}) {
    db.Exec(
        "INSERT INTO partners (id, display_name, name_key, kind, lifecycle, "
        "create_time_us, update_time_us) VALUES (?, ?, ?, 1, 1, 1, 1)",
        {id, name, key});
  }
  absl::StatusOr<int> applied = ApplyMigrations(db.pool(), PartnerSchema());
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(*applied, 2);  // and 2002, which finds no email to trim
  EXPECT_EQ(db.Strings("SELECT name_key FROM partners ORDER BY id"),
            (std::vector<std::string>{"soci\u00e9t\u00e9 g\u00e9n\u00e9rale",
                                      "acme"}));
}

// An admin's forced approval decides the account: the claim it was approved
// over is not approved without force while the forced one is approved or
// won; once that one is lost, it is.
TEST_F(PartnerLogicTest, AClaimAnAdminApprovedAnotherOverTakesForceToApprove) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  now_ = kNow + 10 * kDay;
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Acme", "acme.example", kNow);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::Deal> second =
      Register(b.id(), "Acme", "acme.example", kNow + kDay);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->conflict_with(), first->id());
  ASSERT_TRUE(Move(second->id(), v1::DEAL_STATE_APPROVED, /*force=*/true).ok());

  absl::Status refused = Move(first->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), second->id())) << refused;
  v1::GetDealRequest get;
  get.set_id(first->id());
  absl::StatusOr<v1::Deal> stored = logic_.GetDeal(get);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->state(), v1::DEAL_STATE_SUBMITTED);

  // The forced claim lost: the account is free, and no force is needed.
  ASSERT_TRUE(
      Move(second->id(), v1::DEAL_STATE_LOST, false, kNow + 2 * kDay).ok());
  absl::StatusOr<v1::Deal> approved =
      Move(first->id(), v1::DEAL_STATE_APPROVED);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_FALSE(approved->approved_in_conflict());
}

// With force, an admin may approve it too, and that is audited.
TEST_F(PartnerLogicTest, AClaimApprovedOverIsApprovedAgainOnlyWithForce) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  now_ = kNow + 10 * kDay;
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Acme", "acme.example", kNow);
  absl::StatusOr<v1::Deal> second =
      Register(b.id(), "Acme", "acme.example", kNow + kDay);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(Move(second->id(), v1::DEAL_STATE_APPROVED, /*force=*/true).ok());
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_APPROVED, /*force=*/true).ok());
  EXPECT_EQ(
      db_.Strings("SELECT details FROM audit_events WHERE resource = ? "
                  "AND rpc = 'TransitionDeal'",
                  {"deals/" + first->id()}),
      std::vector<std::string>{absl::StrCat("approved though ", second->id(),
                                            " was approved with force; "
                                            "force")});
}

// A deal won before a registration was filed was no open claim then (the
// registration named the open one): when that one closes, the won deal does
// not take its place, and the registration is approved without force.
TEST_F(PartnerLogicTest,
       ADealWonBeforeARegistrationDoesNotHoldItsAccountLater) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  now_ = kNow + 10 * kDay;
  absl::StatusOr<v1::Deal> won = Register(a.id(), "Acme", "acme.example", kNow);
  ASSERT_TRUE(won.ok()) << won.status();
  ASSERT_TRUE(Move(won->id(), v1::DEAL_STATE_APPROVED).ok());
  ASSERT_TRUE(Move(won->id(), v1::DEAL_STATE_WON, false, kNow + 5 * kDay).ok());
  now_ = kNow + 11 * kDay;
  absl::StatusOr<v1::Deal> open =
      Register(b.id(), "Acme", "acme.example", kNow + kDay);
  ASSERT_TRUE(open.ok()) << open.status();
  EXPECT_TRUE(open->conflict_with().empty());  // a won deal claims nothing
  now_ = kNow + 12 * kDay;
  absl::StatusOr<v1::Deal> later =
      Register(c.id(), "Acme", "acme.example", kNow + 2 * kDay);
  ASSERT_TRUE(later.ok()) << later.status();
  ASSERT_EQ(later->conflict_with(), open->id());
  now_ = kNow + 13 * kDay;
  ASSERT_TRUE(Move(open->id(), v1::DEAL_STATE_REJECTED).ok());
  absl::StatusOr<v1::Deal> approved =
      Move(later->id(), v1::DEAL_STATE_APPROVED);
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_FALSE(approved->approved_in_conflict());
}

// A forced approval decides the account against every claim that waited on
// the claim it was approved over: one of them, once that claim is rejected,
// is not approved without force either.
TEST_F(PartnerLogicTest, AClaimWaitingOnTheSameClaimAsAForcedOneTakesForce) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  now_ = kNow + 10 * kDay;
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Acme", "acme.example", kNow);
  absl::StatusOr<v1::Deal> second =
      Register(b.id(), "Acme", "acme.example", kNow + kDay);
  absl::StatusOr<v1::Deal> third =
      Register(c.id(), "Acme", "acme.example", kNow + 2 * kDay);
  ASSERT_TRUE(first.ok() && second.ok() && third.ok());
  ASSERT_EQ(second->conflict_with(), first->id());
  ASSERT_EQ(third->conflict_with(), first->id());
  ASSERT_TRUE(Move(third->id(), v1::DEAL_STATE_APPROVED, /*force=*/true).ok());
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_REJECTED).ok());

  // It now waits on the forced one, and the reviewer sees the two.
  v1::GetDealRequest get;
  get.set_id(second->id());
  absl::StatusOr<v1::Deal> waiting = logic_.GetDeal(get);
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  EXPECT_EQ(waiting->conflict_with(), third->id());
  absl::Status refused = Move(second->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), third->id())) << refused;
  absl::StatusOr<v1::Deal> forced =
      Move(second->id(), v1::DEAL_STATE_APPROVED, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->state(), v1::DEAL_STATE_APPROVED);
}

TEST_F(PartnerLogicTest,
       ARegistrationForAnAccountAnotherPartnerHoldsIsAConflict) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta"),
                    c = Create("Gamma");
  now_ = kNow + 100 * kDay;  // the registrations below are all in the past
  absl::StatusOr<v1::Deal> first =
      Register(a.id(), "Globex Corp.", "https://www.globex.example/", kNow);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->conflict_with().empty());
  // The same partner again is no conflict (a moment later, so that the
  // first stays the earliest claim: ids made in one millisecond are not
  // ordered).
  absl::StatusOr<v1::Deal> again = Register(a.id(), "Globex", "", kNow + 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->conflict_with().empty());
  // Same domain, another spelling: a conflict naming the first.
  absl::StatusOr<v1::Deal> by_domain =
      Register(b.id(), "GLOBEX", "globex.example", kNow + kDay);
  ASSERT_TRUE(by_domain.ok()) << by_domain.status();
  EXPECT_EQ(by_domain->conflict_with(), first->id());
  EXPECT_EQ(by_domain->state(), v1::DEAL_STATE_SUBMITTED);
  // Same name without a domain: a conflict too.
  absl::StatusOr<v1::Deal> by_name =
      Register(c.id(), "Globex Corporation", "", kNow + 2 * kDay);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->conflict_with(), first->id());
  // Nor is one after the window (90 days after the last open registration).
  EXPECT_TRUE(Register(b.id(), "Globex", "globex.example", kNow + 93 * kDay)
                  ->conflict_with()
                  .empty());
  // Approving the conflicting one needs force while the earlier claim is
  // open, and is audited as such.
  absl::Status refused =
      Move(by_domain->id(), v1::DEAL_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), first->id()));
  absl::StatusOr<v1::Deal> forced =
      Move(by_domain->id(), v1::DEAL_STATE_APPROVED, /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_TRUE(forced->approved_in_conflict());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'TransitionDeal' AND details LIKE '%force'"),
            1);

  // Conflicts are listed with both claimants, earlier first: by default
  // those that wait for a decision (Beta's was just approved, Gamma's is
  // still submitted), with include_decided those decided too.
  absl::StatusOr<v1::ListDealConflictsResponse> waiting =
      logic_.ListDealConflicts({});
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  ASSERT_EQ(waiting->conflicts_size(), 1);
  EXPECT_EQ(waiting->conflicts(0).claims(1).deal().id(), by_name->id());
  v1::ListDealConflictsRequest with_decided;
  with_decided.set_include_decided(true);
  absl::StatusOr<v1::ListDealConflictsResponse> conflicts =
      logic_.ListDealConflicts(with_decided);
  ASSERT_TRUE(conflicts.ok()) << conflicts.status();
  ASSERT_EQ(conflicts->conflicts_size(), 2);
  // The conflicts come in the order of the later deal's id (stable for
  // paging; two ids of one millisecond sort either way): find Beta's.
  const int beta =
      conflicts->conflicts(0).claims(1).deal().id() == by_domain->id() ? 0 : 1;
  EXPECT_EQ(conflicts->conflicts(beta).claims(1).deal().id(), by_domain->id());
  EXPECT_EQ(conflicts->conflicts(beta).claims(0).deal().id(), first->id());
  EXPECT_EQ(conflicts->conflicts(beta).claims(0).scorecard().partner_id(),
            a.id());
  EXPECT_EQ(conflicts->conflicts(beta).claims(1).scorecard().display_name(),
            "Beta");
  EXPECT_EQ(conflicts->conflicts(1 - beta).claims(1).deal().id(),
            by_name->id());
  EXPECT_EQ(conflicts->conflicts(1 - beta).claims(0).deal().id(), first->id());
  // Page by page, the same two.
  with_decided.set_page_size(1);
  absl::StatusOr<v1::ListDealConflictsResponse> page1 =
      logic_.ListDealConflicts(with_decided);
  ASSERT_TRUE(page1.ok()) << page1.status();
  ASSERT_EQ(page1->conflicts_size(), 1);
  ASSERT_FALSE(page1->next_page_token().empty());
  with_decided.set_page_token(page1->next_page_token());
  absl::StatusOr<v1::ListDealConflictsResponse> page2 =
      logic_.ListDealConflicts(with_decided);
  ASSERT_TRUE(page2.ok()) << page2.status();
  ASSERT_EQ(page2->conflicts_size(), 1);
  EXPECT_EQ(page2->conflicts(0).claims(1).deal().id(),
            conflicts->conflicts(1).claims(1).deal().id());
  // A token of that listing is not one of the undecided conflicts'.
  v1::ListDealConflictsRequest undecided_only;
  undecided_only.set_page_token(page1->next_page_token());
  EXPECT_TRUE(NamesField(logic_.ListDealConflicts(undecided_only).status(),
                         "page_token"));

  // A closed registration protects nothing: once Alpha's is rejected,
  // Gamma's waits for no decision on it. But an admin gave Beta the account
  // over Alpha's claim, which Gamma's waited on too: Gamma's now waits on
  // Beta's, and approving it takes force as well.
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_REJECTED).ok());
  waiting = logic_.ListDealConflicts({});
  ASSERT_TRUE(waiting.ok()) << waiting.status();
  ASSERT_EQ(waiting->conflicts_size(), 1);
  EXPECT_EQ(waiting->conflicts(0).claims(0).deal().id(), by_domain->id());
  EXPECT_EQ(waiting->conflicts(0).claims(1).deal().id(), by_name->id());
  absl::Status held =
      Move(by_name->id(), v1::DEAL_STATE_APPROVED, /*force=*/false).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(held)) << held;
  EXPECT_TRUE(absl::StrContains(held.message(), by_domain->id())) << held;
  absl::StatusOr<v1::Deal> unopposed =
      Move(by_name->id(), v1::DEAL_STATE_APPROVED, /*force=*/true);
  ASSERT_TRUE(unopposed.ok()) << unopposed.status();
  EXPECT_TRUE(unopposed->approved_in_conflict());

  // A registration that says it came first does not jump the stored claims:
  // dated 10 days before Alpha's open claim on the name (its second, the
  // first was rejected) and 11 before Beta's on the domain, it is still a
  // conflict naming the earliest of them, Alpha's. One dated in the future
  // is refused.
  const v1::Partner d = Create("Delta");
  absl::StatusOr<v1::Deal> backdated =
      Register(d.id(), "Globex", "globex.example", kNow - 10 * kDay);
  ASSERT_TRUE(backdated.ok()) << backdated.status();
  EXPECT_EQ(backdated->conflict_with(), again->id());
  EXPECT_TRUE(NamesField(Register(d.id(), "Hooli", "", now_ + kDay).status(),
                         "deal.register_time"));

  // Dated back past the window of a claim open when it is filed, it still
  // conflicts with that claim.
  absl::StatusOr<v1::Deal> open_now = Register(a.id(), "Soylent", "", now_);
  ASSERT_TRUE(open_now.ok()) << open_now.status();
  absl::StatusOr<v1::Deal> dated_back = Register(d.id(), "Soylent", "", kNow);
  ASSERT_TRUE(dated_back.ok()) << dated_back.status();
  EXPECT_EQ(dated_back->conflict_with(), open_now->id());
  // A claim outside both windows (this one's, and that of when it is filed)
  // is no conflict: here 100 days after the date given and 100 days before
  // the filing.
  ASSERT_TRUE(Register(a.id(), "Gapco", "", kNow).ok());
  absl::StatusOr<v1::Deal> around =
      Register(d.id(), "Gapco", "", kNow - 100 * kDay);
  ASSERT_TRUE(around.ok()) << around.status();
  EXPECT_TRUE(around->conflict_with().empty()) << around->conflict_with();

  // A claim by name earlier than one by domain: the conflict names the
  // earliest of the two.
  absl::StatusOr<v1::Deal> by_name_first =
      Register(a.id(), "Wayne", "", kNow + 1 * kDay);
  absl::StatusOr<v1::Deal> by_domain_later =
      Register(b.id(), "Wayne Labs", "wayne.example", kNow + 5 * kDay);
  ASSERT_TRUE(by_name_first.ok() && by_domain_later.ok());
  absl::StatusOr<v1::Deal> both =
      Register(c.id(), "Wayne", "wayne.example", kNow + 6 * kDay);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->conflict_with(), by_name_first->id());
}

// Imported registrations are checked against the stored ones and against
// those before them in the same import, as RegisterDeal checks one.
TEST_F(PartnerLogicTest,
       ImportedRegistrationsConflictWithStoredAndEarlierRows) {
  const v1::Partner a = Create("Acme");
  const v1::Partner b = Create("Bolt");
  absl::StatusOr<v1::Deal> stored =
      Register(a.id(), "Initech", "", kNow - 10 * kDay);
  ASSERT_TRUE(stored.ok()) << stored.status();

  auto row = [](const std::string& partner, const std::string& account,
                const std::string& domain, int64_t at_us,
                const std::string& state) {
    v1::DealRow r;
    r.set_partner_ref(partner);
    r.set_account(account);
    r.set_account_domain(domain);
    r.set_amount("100");
    r.set_registered_at(FormatRfc3339Micros(at_us));
    r.set_state(state);
    if (state == "won") r.set_closed_at(FormatRfc3339Micros(at_us + kDay));
    return r;
  };
  v1::ImportDealsRequest request;
  request.set_import_id("deals-1");
  int64_t number = 0;
  for (v1::DealRow r : {
           row(b.id(), "Initech", "", kNow, "submitted"),  // stored a's
           row(b.id(), "Hooli", "hooli.com", kNow - 5 * kDay, "submitted"),
           row(a.id(), "Hooli Holdings", "HOOLI.com", kNow, "submitted"),
           row(b.id(), "Hooli", "hooli.com", kNow + 1, "submitted"),
           row(a.id(), "Initech", "", kNow, "won"),  // a holds Initech
           row(b.id(), "Initech", "", kNow + 100 * kDay, "submitted"),
           // Approving over b's claim takes a forced TransitionDeal.
           row(a.id(), "Hooli", "hooli.com", kNow + 2, "approved"),
           row(a.id(), "Umbrella", "", kNow, "approved"),  // no conflict
       }) {
    r.set_row(++number);
    *request.add_rows() = r;
  }
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  now_ = kNow + 200 * kDay;  // every row above is in the past
  absl::StatusOr<v1::ImportDealsResponse> imported = imports.ImportDeals(
      testing::OneMessage(WithDealIds(request)), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_EQ(imported->accepted(), 7);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 7);
  EXPECT_EQ(imported->rejected(0).field(), "state");

  const std::vector<std::string> conflicts = db_.Strings(
      "SELECT COALESCE(conflict_with, '-') FROM deals WHERE id <> ? ORDER BY "
      "register_time_us, partner_id = ?, account_name",
      {stored->id(), a.id()});
  const std::vector<std::string> ids = db_.Strings(
      "SELECT id FROM deals WHERE id <> ? ORDER BY register_time_us, "
      "partner_id = ?, account_name",
      {stored->id(), a.id()});
  ASSERT_EQ(conflicts.size(), 7u);
  // By time: Hooli (b, -5d), Initech (b, now), Hooli Holdings (a, now),
  // Initech won (a, now), Umbrella (a, now), Hooli (b, now + 1us), Initech
  // (b, +100d).
  EXPECT_EQ(conflicts[0], "-");
  EXPECT_EQ(conflicts[1], stored->id());  // by name, stored
  EXPECT_EQ(conflicts[2], ids[0]);        // by domain, earlier in the file
  EXPECT_EQ(conflicts[3], "-");           // won: a claim of none
  EXPECT_EQ(conflicts[4], "-");           // approved, in conflict with none
  // b holds Hooli (its -5d claim): a's Hooli Holdings yields to it and
  // protects nothing, so b's second claim is in conflict with none.
  EXPECT_EQ(conflicts[5], "-");
  EXPECT_EQ(conflicts[6], "-");  // past the 90-day window
  // The refused approval names the claim it would have overridden.
  EXPECT_NE(imported->rejected(0).message().find(ids[0]), std::string::npos)
      << imported->rejected(0).message();

  // A row dated before a stored claim does not jump it: Beta's Initech 20
  // days ago conflicts with Alpha's stored one of 10 days ago.
  request.Clear();
  request.set_import_id("deals-2");
  *request.add_rows() =
      row(b.id(), "Initech", "", kNow - 20 * kDay, "submitted");
  request.mutable_rows(0)->set_row(1);
  imported = imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                                 "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  EXPECT_EQ(db_.Strings("SELECT conflict_with FROM deals WHERE "
                        "register_time_us = ?",
                        {std::to_string(kNow - 20 * kDay)}),
            std::vector<std::string>{stored->id()});

  // A won deal for an account another partner holds (the earliest claim
  // registered before it, not in conflict itself, and protecting the
  // account still: made within the window before the import) is stored
  // naming that claim, for review: through the RPCs it would have taken a
  // forced approval. Over its own partner's claim, past another's that is in
  // conflict, or won before that window (history), it names none.
  absl::StatusOr<v1::Deal> held =
      Register(a.id(), "Wayne", "wayne.example", now_ - 30 * kDay);
  ASSERT_TRUE(held.ok()) << held.status();
  absl::StatusOr<v1::Deal> late =
      Register(b.id(), "Wayne", "", now_ - 20 * kDay);
  ASSERT_TRUE(late.ok()) << late.status();
  ASSERT_EQ(late->conflict_with(), held->id());
  // Oscorp: Alpha's claim is older than the window before the import (it
  // protects nothing now), Beta's is in conflict with it: neither holds.
  absl::StatusOr<v1::Deal> old_claim =
      Register(a.id(), "Oscorp", "", now_ - 100 * kDay);
  ASSERT_TRUE(old_claim.ok()) << old_claim.status();
  absl::StatusOr<v1::Deal> in_conflict =
      Register(b.id(), "Oscorp", "", now_ - 80 * kDay);
  ASSERT_TRUE(in_conflict.ok()) << in_conflict.status();
  ASSERT_EQ(in_conflict->conflict_with(), old_claim->id());
  request.Clear();
  request.set_import_id("deals-won");
  *request.add_rows() = row(a.id(), "Oscorp", "", now_ - 5 * kDay, "won");
  *request.add_rows() =
      row(b.id(), "Wayne", "wayne.example", now_ - 5 * kDay, "won");
  *request.add_rows() =
      row(a.id(), "Wayne", "wayne.example", now_ - 5 * kDay, "won");
  *request.add_rows() = row(b.id(), "Initech", "", kNow - 5 * kDay, "won");
  // A registration earlier in the same file (here the same batch) holds too.
  *request.add_rows() =
      row(b.id(), "Gotham", "gotham.example", now_ - 10 * kDay, "submitted");
  *request.add_rows() =
      row(a.id(), "Gotham", "gotham.example", now_ - 5 * kDay, "won");
  // But not one the batch refuses (Metropolis: an approval over Alpha's
  // claim), nor one it stores in conflict (Star Labs); Alpha's own claims
  // are older than the window before the import.
  *request.add_rows() =
      row(a.id(), "Metropolis", "", now_ - 95 * kDay, "submitted");
  *request.add_rows() =
      row(b.id(), "Metropolis", "", now_ - 10 * kDay, "approved");
  *request.add_rows() = row(a.id(), "Metropolis", "", now_ - 5 * kDay, "won");
  *request.add_rows() =
      row(a.id(), "Star Labs", "", now_ - 95 * kDay, "submitted");
  *request.add_rows() =
      row(b.id(), "Star Labs", "", now_ - 10 * kDay, "submitted");
  *request.add_rows() = row(a.id(), "Star Labs", "", now_ - 5 * kDay, "won");
  for (int i = 0; i < request.rows_size(); ++i) {
    request.mutable_rows(i)->set_row(i + 1);
  }
  imported = imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                                 "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 11);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 8);
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals WHERE "
                        "account_name IN ('Metropolis', 'Star Labs') AND "
                        "state = 4"),
            (std::vector<std::string>{"-", "-"}));
  EXPECT_EQ(db_.Strings("SELECT COUNT(*) FROM deals WHERE account_name = "
                        "'Star Labs' AND conflict_with IS NOT NULL"),
            std::vector<std::string>{"1"});
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals WHERE "
                        "account_name = 'Oscorp' AND state = 4"),
            std::vector<std::string>{"-"});
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals WHERE "
                        "account_name = 'Gotham' AND state = 4"),
            db_.Strings("SELECT id FROM deals WHERE account_name = 'Gotham' "
                        "AND state = 1"));
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals WHERE "
                        "state = 4 AND account_name = 'Wayne' ORDER BY "
                        "partner_id = ?",
                        {a.id()}),
            (std::vector<std::string>{held->id(), "-"}));
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals WHERE "
                        "state = 4 AND register_time_us = ?",
                        {std::to_string(kNow - 5 * kDay)}),
            std::vector<std::string>{"-"});
  v1::ListDealConflictsRequest conflicts_request;
  conflicts_request.set_page_size(100);
  conflicts_request.set_include_decided(true);
  absl::StatusOr<v1::ListDealConflictsResponse> listed =
      logic_.ListDealConflicts(conflicts_request);
  ASSERT_TRUE(listed.ok()) << listed.status();
  int won_in_conflict = 0;
  for (const v1::DealConflict& conflict : listed->conflicts()) {
    ASSERT_EQ(conflict.claims_size(), 2);
    if (conflict.claims(1).deal().state() != v1::DEAL_STATE_WON) continue;
    ++won_in_conflict;
    const bool wayne = conflict.claims(1).deal().account_name() == "Wayne";
    EXPECT_EQ(conflict.claims(1).deal().partner_id(), wayne ? b.id() : a.id());
    if (wayne) {
      EXPECT_EQ(conflict.claims(0).deal().id(), held->id());
    }
  }
  EXPECT_EQ(won_in_conflict, 2);
  // Each counts for its partner over another's claim, as a forced approval
  // would: audited, under the deal, by the importer.
  EXPECT_EQ(
      db_.Strings("SELECT CONCAT_WS('|', e.actor, d.account_name, e.details) "
                  "FROM audit_events e JOIN deals d ON e.resource = "
                  "CONCAT('deals/', d.id) WHERE e.rpc = 'ImportDeals' AND "
                  "e.details LIKE 'won over%' ORDER BY d.account_name"),
      (std::vector<std::string>{
          absl::StrCat("user:ada|Gotham|won over registration ",
                       db_.Strings("SELECT id FROM deals WHERE account_name = "
                                   "'Gotham' AND state = 1")
                           .front(),
                       " of another partner, which held the account first"),
          absl::StrCat("user:ada|Wayne|won over registration ", held->id(),
                       " of another partner, which held the account first")}));

  // Rows out of the order of registration: the later claim is the
  // conflicting one, wherever it stands in the file; a registration dated
  // after the import is refused.
  request.Clear();
  request.set_import_id("deals-3");
  *request.add_rows() =
      row(a.id(), "Stark", "stark.example", kNow, "submitted");
  *request.add_rows() =
      row(b.id(), "Stark", "stark.example", kNow - 3 * kDay, "submitted");
  *request.add_rows() = row(b.id(), "Tyrell", "", now_ + kDay, "submitted");
  *request.add_rows() =
      row("ext:crm:later", "Tyrell", "", now_ + kDay, "submitted");
  // Refused on what is stored (b's open Hooli claim), so its new partner
  // is not kept either.
  *request.add_rows() =
      row("ext:crm:pushy", "Hooli", "hooli.com", kNow + 3, "approved");
  for (int i = 0; i < request.rows_size(); ++i) {
    request.mutable_rows(i)->set_row(i + 2);
  }
  imported = imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                                 "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 2);
  ASSERT_EQ(imported->rejected_size(), 3);
  EXPECT_EQ(imported->rejected(0).row(), 4);
  EXPECT_EQ(imported->rejected(0).field(), "registered_at");
  EXPECT_EQ(imported->rejected(1).row(), 5);
  EXPECT_EQ(imported->rejected(2).row(), 6);
  EXPECT_EQ(imported->rejected(2).field(), "state");
  // The refused rows' unknown external ids created no partner.
  EXPECT_EQ(imported->created_partners(), 0);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partner_external_ids WHERE "
                      "external_id IN ('later', 'pushy')"),
            0);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners WHERE display_name IN "
                      "('crm:later', 'crm:pushy')"),
            0);

  // The same external id on a row that is kept creates its partner, once.
  request.Clear();
  request.set_import_id("deals-4");
  *request.add_rows() =
      row("ext:crm:pushy", "Hooli", "hooli.com", kNow + 3, "approved");
  *request.add_rows() =
      row("ext:crm:pushy", "Soylent", "", kNow + 3, "approved");
  for (int i = 0; i < request.rows_size(); ++i) {
    request.mutable_rows(i)->set_row(i + 1);
  }
  imported = imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                                 "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 1);
  EXPECT_EQ(imported->created_partners(), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners p JOIN "
                      "partner_external_ids e ON e.partner_id = p.id JOIN "
                      "deals d ON d.partner_id = p.id WHERE e.external_id = "
                      "'pushy' AND d.account_name = 'Soylent'"),
            1);

  // Rows dated back further than the window before a claim filed near the
  // import do not step around it, as RegisterDeal's would not: the
  // approved one is refused, the submitted one names the claim.
  absl::StatusOr<v1::Deal> recent =
      Register(a.id(), "Cyberdyne", "cyberdyne.example", now_ - 10 * kDay);
  ASSERT_TRUE(recent.ok()) << recent.status();
  request.Clear();
  request.set_import_id("deals-5");
  *request.add_rows() = row(b.id(), "Cyberdyne", "cyberdyne.example",
                            now_ - 150 * kDay, "approved");
  *request.add_rows() =
      row(b.id(), "Cyberdyne, Inc.", "", now_ - 150 * kDay, "submitted");
  for (int i = 0; i < request.rows_size(); ++i) {
    request.mutable_rows(i)->set_row(i + 1);
  }
  imported = imports.ImportDeals(testing::OneMessage(WithDealIds(request)),
                                 "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 1);
  EXPECT_NE(imported->rejected(0).message().find(recent->id()),
            std::string::npos)
      << imported->rejected(0).message();
  EXPECT_EQ(db_.Strings("SELECT conflict_with FROM deals WHERE account_name "
                        "= 'Cyberdyne, Inc.'"),
            std::vector<std::string>{recent->id()});
  const std::vector<std::string> stark = db_.Strings(
      "SELECT COALESCE(conflict_with, '-') FROM deals WHERE account_name = "
      "'Stark' ORDER BY register_time_us");
  const std::vector<std::string> stark_ids = db_.Strings(
      "SELECT id FROM deals WHERE account_name = 'Stark' ORDER BY "
      "register_time_us");
  ASSERT_EQ(stark.size(), 2u);
  EXPECT_EQ(stark[0], "-");
  EXPECT_EQ(stark[1], stark_ids[0]);
}

// A won deal dated back does not step around a claim stored before it was
// won: a claim stored first keeps its place, as RegisterDeal has it. A deal
// won before the claim was made, or a claim of the same file registered
// after the deal, names none.
TEST_F(PartnerLogicTest, AWonDealDatedBackMeetsTheClaimsStoredBeforeItsWin) {
  const v1::Partner a = Create("Acme"), b = Create("Bolt");
  // Bolt's claims, filed 30 days before the import.
  now_ = kNow + 370 * kDay;
  std::map<std::string, std::string> claims;
  for (const char* account : {"Wayne", "Oscorp", "Gotham"}) {
    absl::StatusOr<v1::Deal> claim = Register(b.id(), account, "", now_);
    ASSERT_TRUE(claim.ok()) << claim.status();
    claims[account] = claim->id();
  }
  now_ = kNow + 400 * kDay;
  auto won = [&](const std::string& account, int64_t registered,
                 int64_t closed) {
    return WonRow(a.id(), account, registered, closed);
  };
  v1::ImportDealsRequest request;
  request.set_import_id("won-dated-back");
  // Registered long before Bolt's claim, won since it was stored.
  *request.add_rows() = won("Wayne", now_ - 200 * kDay, now_ - kDay);
  // Won before Bolt's claim was stored.
  *request.add_rows() = won("Oscorp", now_ - 200 * kDay, now_ - 40 * kDay);
  // Registered after Bolt's claim (as before).
  *request.add_rows() = won("Gotham", now_ - 10 * kDay, now_ - kDay);
  // Bolt's registration in the same file, made after Acme's, which was won
  // a minute ahead (within the clocks' difference): stored during the
  // import, it was not there first.
  v1::DealRow stark;
  stark.set_partner_ref(b.id());
  stark.set_account("Stark");
  stark.set_amount("100");
  stark.set_registered_at(FormatRfc3339Micros(now_ - 5 * kDay));
  stark.set_state("submitted");
  *request.add_rows() = stark;
  *request.add_rows() = won("Stark", now_ - 10 * kDay,
                            now_ + absl::ToInt64Microseconds(absl::Minutes(1)));
  for (int i = 0; i < request.rows_size(); ++i) {
    request.mutable_rows(i)->set_row(i + 1);
  }
  absl::StatusOr<v1::ImportDealsResponse> imported = ImportDealsAsAda(request);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 5);
  EXPECT_EQ(imported->rejected_size(), 0);
  EXPECT_EQ(db_.Strings("SELECT CONCAT(account_name, ' ', COALESCE("
                        "conflict_with, '-')) FROM deals WHERE partner_id = ? "
                        "ORDER BY account_name",
                        {a.id()}),
            (std::vector<std::string>{"Gotham " + claims["Gotham"], "Oscorp -",
                                      "Stark -", "Wayne " + claims["Wayne"]}));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'ImportDeals' AND details LIKE 'won over%'"),
            2);
}

// A claim in conflict with one that has closed since holds the account: an
// imported won deal over it names it.
TEST_F(PartnerLogicTest, AWonRowMeetsAClaimWhoseOwnRivalClosed) {
  const v1::Partner a = Create("Acme"), b = Create("Bolt"), c = Create("Core");
  now_ = kNow + 370 * kDay;
  absl::StatusOr<v1::Deal> first = Register(c.id(), "Wayne", "", now_);
  now_ += 1;
  absl::StatusOr<v1::Deal> second = Register(b.id(), "Wayne", "", now_);
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ(second->conflict_with(), first->id());
  ASSERT_TRUE(Move(first->id(), v1::DEAL_STATE_REJECTED).ok());
  now_ = kNow + 400 * kDay;
  v1::ImportDealsRequest request;
  request.set_import_id("won-over-a-freed-claim");
  *request.add_rows() = WonRow(a.id(), "Wayne", now_ - 10 * kDay, now_ - kDay);
  request.mutable_rows(0)->set_row(1);
  absl::StatusOr<v1::ImportDealsResponse> imported = ImportDealsAsAda(request);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals "
                        "WHERE partner_id = ?",
                        {a.id()}),
            std::vector<std::string>{second->id()});
}

TEST_F(PartnerLogicTest, DealsMoveOnlyAlongTheirStatesAndCloseWithATime) {
  const v1::Partner p = Create("Alpha");
  absl::StatusOr<v1::Deal> d = Register(p.id(), "Globex", "", kNow - kDay);
  ASSERT_TRUE(d.ok()) << d.status();
  absl::Status early = Move(d->id(), v1::DEAL_STATE_WON, false, kNow).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(early)) << early;
  ASSERT_TRUE(Move(d->id(), v1::DEAL_STATE_APPROVED).ok());
  EXPECT_TRUE(
      NamesField(Move(d->id(), v1::DEAL_STATE_WON).status(), "close_time"));
  EXPECT_TRUE(NamesField(
      Move(d->id(), v1::DEAL_STATE_WON, false, kNow - 2 * kDay).status(),
      "close_time"));
  absl::StatusOr<v1::Deal> won = Move(d->id(), v1::DEAL_STATE_WON, false, kNow);
  ASSERT_TRUE(won.ok()) << won.status();
  EXPECT_EQ(won->state(), v1::DEAL_STATE_WON);
  EXPECT_EQ(won->close_time().seconds(), kNow / 1'000'000);
  // The same move again (a retry whose answer was lost) answers as the
  // first did, and nothing is written or audited again; won at another
  // time is another move, and refused.
  const int64_t audited = AuditCount("TransitionDeal");
  absl::StatusOr<v1::Deal> again =
      Move(d->id(), v1::DEAL_STATE_WON, false, kNow);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->etag(), won->etag());
  EXPECT_EQ(AuditCount("TransitionDeal"), audited);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      Move(d->id(), v1::DEAL_STATE_WON, false, kNow - 1'000'000).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      Move(d->id(), v1::DEAL_STATE_LOST, false, kNow).status()));
  v1::ListDealsRequest list;
  list.set_state(v1::DEAL_STATE_WON);
  EXPECT_EQ(logic_.ListDeals(list)->deals_size(), 1);
}

// What the keys cannot hold and what has not happened yet are refused
// naming the field (the row, in an import), before anything is stored: a
// domain that is not ASCII (its key is), a close or payment in the future,
// a name that is only white space, a kind that is none.
TEST_F(PartnerLogicTest, BadDomainsFutureClosesAndBlankNamesNameTheirField) {
  const v1::Partner p = Create("Alpha");
  for (const char* domain : {"münchen.de", "example.com\u00a0"}) {
    absl::Status s = Register(p.id(), "Globex", domain, kNow - kDay).status();
    EXPECT_TRUE(NamesField(s, "deal.account_domain")) << domain << ": " << s;
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM deals"), 0);
  absl::StatusOr<v1::Deal> d =
      Register(p.id(), "Globex", "https://xn--mnchen-3ya.de/", kNow - kDay);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(db_.Strings("SELECT domain_key FROM deals"),
            std::vector<std::string>{"xn--mnchen-3ya.de"});

  v1::RegisterDealRequest closed;
  closed.mutable_deal()->set_partner_id(p.id());
  closed.mutable_deal()->set_account_name("Initech");
  *closed.mutable_deal()->mutable_amount() = Usd("10");
  *closed.mutable_deal()->mutable_close_time() = ToTimestamp(kNow);
  absl::Status s = logic_.RegisterDeal(closed, "user:ada").status();
  EXPECT_TRUE(NamesField(s, "deal.close_time")) << s;
  EXPECT_FALSE(NamesField(s, "deal.state")) << s;
  // Expected to close before it was registered; a domain that names none.
  v1::RegisterDealRequest early;
  early.mutable_deal()->set_partner_id(p.id());
  early.mutable_deal()->set_account_name("Initech");
  early.mutable_deal()->set_account_domain("http://");
  *early.mutable_deal()->mutable_amount() = Usd("10");
  *early.mutable_deal()->mutable_register_time() = ToTimestamp(kNow - kDay);
  *early.mutable_deal()->mutable_expected_close_time() =
      ToTimestamp(kNow - 2 * kDay);
  s = logic_.RegisterDeal(early, "user:ada").status();
  EXPECT_TRUE(NamesField(s, "deal.expected_close_time")) << s;
  EXPECT_TRUE(NamesField(s, "deal.account_domain")) << s;

  ASSERT_TRUE(Move(d->id(), v1::DEAL_STATE_APPROVED).ok());
  s = Move(d->id(), v1::DEAL_STATE_WON, false, kNow + kClockSkewUs + 1)
          .status();
  EXPECT_TRUE(NamesField(s, "close_time")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "future")) << s;

  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  v1::ImportDealsRequest file;
  file.set_import_id("deals");
  auto row = [&](const char* domain, const char* state, int64_t closed_us) {
    v1::DealRow* r = file.add_rows();
    r->set_row(file.rows_size());
    r->set_partner_ref(p.id());
    r->set_account("Hooli");
    r->set_account_domain(domain);
    r->set_amount("100");
    r->set_registered_at(FormatRfc3339Micros(kNow - kDay));
    r->set_state(state);
    if (closed_us != 0) r->set_closed_at(FormatRfc3339Micros(closed_us));
  };
  row("hooli.com", "won", kNow);
  row("hööli.com", "submitted", 0);
  row("hooli.com", "won", kNow + kClockSkewUs + 1);
  // When a rejected or expired deal closed is kept; an open one has none.
  row("hooli.com", "expired", kNow - 1);
  row("hooli.com", "approved", kNow - 1);
  absl::StatusOr<v1::ImportDealsResponse> imported =
      imports.ImportDeals(testing::OneMessage(WithDealIds(file)), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 2);
  ASSERT_EQ(imported->rejected_size(), 3);
  EXPECT_EQ(imported->rejected(0).row(), 2);
  EXPECT_EQ(imported->rejected(0).field(), "account_domain");
  EXPECT_EQ(imported->rejected(1).row(), 3);
  EXPECT_EQ(imported->rejected(1).field(), "closed_at");
  EXPECT_EQ(imported->rejected(2).row(), 5);
  EXPECT_EQ(imported->rejected(2).field(), "closed_at");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM deals"), 3);
  EXPECT_EQ(db_.Count("SELECT close_time_us FROM deals WHERE state = 6"),
            kNow - 1);
  // Expiring it by call is a retry of what is stored: it answers with it.
  const std::vector<std::string> expired =
      db_.Strings("SELECT id FROM deals WHERE state = 6");
  ASSERT_EQ(expired.size(), 1u);
  absl::StatusOr<v1::Deal> expire_again =
      Move(expired[0], v1::DEAL_STATE_EXPIRED);
  ASSERT_TRUE(expire_again.ok()) << expire_again.status();
  EXPECT_EQ(expire_again->close_time().seconds(), (kNow - 1) / 1'000'000);

  // Orders dated ahead (more than a clock's difference), by call or row.
  v1::RecordOrderRequest order;
  order.set_partner_id(p.id());
  *order.mutable_order()->mutable_order_time() =
      ToTimestamp(now_ + kClockSkewUs + 1);
  *order.mutable_order()->mutable_amount() = Usd("10");
  EXPECT_TRUE(NamesField(logic_.RecordOrder(order, "user:ada").status(),
                         "order.order_time"));
  v1::ImportOrdersRequest orders;
  orders.set_import_id("orders-ahead");
  v1::OrderRow* ahead = orders.add_rows();
  ahead->set_row(1);
  ahead->set_partner_ref(p.id());
  ahead->set_timestamp(FormatRfc3339Micros(now_ + kClockSkewUs + 1));
  ahead->set_amount("10");
  absl::StatusOr<v1::ImportOrdersResponse> ordered =
      imports.ImportOrders(testing::OneMessage(orders), "user:ada");
  ASSERT_TRUE(ordered.ok()) << ordered.status();
  ASSERT_EQ(ordered->rejected_size(), 1);
  EXPECT_EQ(ordered->rejected(0).field(), "timestamp");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM orders"), 0);

  v1::CreateProgramRequest blank;
  blank.mutable_program()->set_name("   ");
  EXPECT_TRUE(NamesField(logic_.CreateProgram(blank, "user:ada").status(),
                         "program.name"));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM programs"), 0);

  // A kind that is none is refused even when the identities find the
  // partner (no partner would be created with it).
  v1::IdentifyPartnerRequest who;
  who.set_display_name("Beta");
  cv1::ExternalId* id = who.add_external_ids();
  id->set_source("crm");
  id->set_id("7");
  ASSERT_TRUE(logic_.IdentifyPartner(who, "user:ada").ok());
  who.set_kind(static_cast<v1::PartnerKind>(42));
  EXPECT_TRUE(
      NamesField(logic_.IdentifyPartner(who, "user:ada").status(), "kind"));
}

TEST_F(PartnerLogicTest, OneActiveAgreementPerPartnerAndProgram) {
  const v1::Partner p = Create("Alpha");
  v1::CreateProgramRequest pr;
  pr.mutable_program()->set_name("Reseller 2027");
  v1::ProgramTerms* base = pr.mutable_program()->add_terms();
  base->set_commission_percent("12.5");
  v1::ProgramTerms* gold = pr.mutable_program()->add_terms();
  gold->set_tier(cv1::TIER_GOLD);
  gold->set_commission_percent("15.25");
  absl::StatusOr<v1::Program> program = logic_.CreateProgram(pr, "user:ada");
  ASSERT_TRUE(program.ok()) << program.status();
  EXPECT_EQ(program->terms(0).commission_percent(), "12.5");
  EXPECT_EQ(program->terms(1).commission_percent(), "15.25");
  // A second program of the same name is refused.
  EXPECT_TRUE(absl::IsAlreadyExists(logic_.CreateProgram(pr, "u").status()));
  // A program pays commission unless it says its partners keep a margin;
  // a basis that is neither is refused.
  EXPECT_EQ(program->basis(), v1::PROGRAM_BASIS_COMMISSION);
  v1::CreateProgramRequest resale = pr;
  resale.mutable_program()->set_name("Distribution 2027");
  resale.mutable_program()->set_basis(v1::PROGRAM_BASIS_MARGIN);
  absl::StatusOr<v1::Program> margin = logic_.CreateProgram(resale, "u");
  ASSERT_TRUE(margin.ok()) << margin.status();
  v1::GetProgramRequest get;
  get.set_id(margin->id());
  absl::StatusOr<v1::Program> read = logic_.GetProgram(get);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->basis(), v1::PROGRAM_BASIS_MARGIN);
  EXPECT_EQ(read->terms(1).commission_percent(), "15.25");
  resale.mutable_program()->set_name("Other");
  resale.mutable_program()->set_basis(static_cast<v1::ProgramBasis>(7));
  EXPECT_TRUE(
      NamesField(logic_.CreateProgram(resale, "u").status(), "program.basis"));
  // Commission spelled out is the request that left it unset; a margin is
  // another request.
  v1::CreateProgramRequest keyed = pr;
  keyed.mutable_program()->set_name("Referral 2027");
  keyed.set_request_id("program-1");
  absl::StatusOr<v1::Program> referral = logic_.CreateProgram(keyed, "u");
  ASSERT_TRUE(referral.ok()) << referral.status();
  keyed.mutable_program()->set_basis(v1::PROGRAM_BASIS_COMMISSION);
  absl::StatusOr<v1::Program> again = logic_.CreateProgram(keyed, "u");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->id(), referral->id());
  keyed.mutable_program()->set_basis(v1::PROGRAM_BASIS_MARGIN);
  EXPECT_TRUE(
      NamesField(logic_.CreateProgram(keyed, "u").status(), "request_id"));

  auto agreement = [&]() {
    v1::CreateAgreementRequest r;
    r.mutable_agreement()->set_partner_id(p.id());
    r.mutable_agreement()->set_program_id(program->id());
    *r.mutable_agreement()->mutable_start_time() = ToTimestamp(kNow);
    return logic_.CreateAgreement(r, "user:ada");
  };
  absl::StatusOr<v1::Agreement> first = agreement(), second = agreement();
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->state(), v1::AGREEMENT_STATE_DRAFT);
  {
    // Created active, it would skip the one-active rule: refused.
    v1::CreateAgreementRequest r;
    r.mutable_agreement()->set_partner_id(p.id());
    r.mutable_agreement()->set_program_id(program->id());
    *r.mutable_agreement()->mutable_start_time() = ToTimestamp(kNow);
    r.mutable_agreement()->set_state(v1::AGREEMENT_STATE_ACTIVE);
    EXPECT_TRUE(NamesField(logic_.CreateAgreement(r, "user:ada").status(),
                           "agreement.state"));
  }
  auto move = [&](const std::string& id, v1::AgreementState to) {
    v1::TransitionAgreementRequest r;
    r.set_id(id);
    r.set_state(to);
    return logic_.TransitionAgreement(r, "user:ada");
  };
  ASSERT_TRUE(move(first->id(), v1::AGREEMENT_STATE_ACTIVE).ok());
  // Again (a retry whose answer was lost): the same answer, audited once.
  const int64_t audited = AuditCount("TransitionAgreement");
  ASSERT_TRUE(move(first->id(), v1::AGREEMENT_STATE_ACTIVE).ok());
  EXPECT_EQ(AuditCount("TransitionAgreement"), audited);
  absl::Status clash = move(second->id(), v1::AGREEMENT_STATE_ACTIVE).status();
  EXPECT_TRUE(absl::IsAlreadyExists(clash)) << clash;
  EXPECT_TRUE(absl::StrContains(clash.message(), first->id()));
  // Nothing moves back to draft (nor is a draft "moved" to draft).
  EXPECT_TRUE(NamesField(move(first->id(), v1::AGREEMENT_STATE_DRAFT).status(),
                         "state"));
  EXPECT_TRUE(NamesField(move(second->id(), v1::AGREEMENT_STATE_DRAFT).status(),
                         "state"));
  ASSERT_TRUE(move(first->id(), v1::AGREEMENT_STATE_TERMINATED).ok());
  EXPECT_TRUE(move(second->id(), v1::AGREEMENT_STATE_ACTIVE).ok());
  // Two drafts activated at once: one wins, the other is told which.
  ASSERT_TRUE(move(second->id(), v1::AGREEMENT_STATE_TERMINATED).ok());
  absl::StatusOr<v1::Agreement> third = agreement(), fourth = agreement();
  ASSERT_TRUE(third.ok() && fourth.ok());
  const std::string racing[] = {third->id(), fourth->id()};
  std::vector<absl::StatusOr<v1::Agreement>> raced = testing::AtOnce(
      2, [&](size_t i) { return move(racing[i], v1::AGREEMENT_STATE_ACTIVE); });
  ASSERT_EQ(raced[0].ok() + raced[1].ok(), 1)
      << raced[0].status() << " / " << raced[1].status();
  const size_t won = raced[0].ok() ? 0 : 1;
  const absl::Status lost = raced[1 - won].status();
  EXPECT_TRUE(absl::IsAlreadyExists(lost)) << lost;
  EXPECT_TRUE(absl::StrContains(lost.message(), racing[won])) << lost;
  // Bad input.
  v1::CreateAgreementRequest bad;
  bad.mutable_agreement()->set_partner_id(p.id());
  absl::Status no_program = logic_.CreateAgreement(bad, "u").status();
  EXPECT_TRUE(NamesField(no_program, "agreement.program_id")) << no_program;
  EXPECT_TRUE(NamesField(no_program, "agreement.start_time")) << no_program;
}

// The lifecycle has effects: a suspended partner registers no deal, asks
// for no funds and activates no agreement; ending a partner expires its open
// registrations (another partner's claim on the account is then no
// conflict) and terminates its active agreements, each audited; an
// ended one enters no agreement. An agreement past its end is not activated.
TEST_F(PartnerLogicTest, TheLifecycleDecidesWhatAPartnerMayStillDo) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  now_ = kNow + 10 * kDay;
  v1::CreateProgramRequest pr;
  pr.mutable_program()->set_name("Reseller 2027");
  pr.mutable_program()->add_terms()->set_commission_percent("10");
  absl::StatusOr<v1::Program> program = logic_.CreateProgram(pr, "user:ada");
  ASSERT_TRUE(program.ok()) << program.status();
  auto agreement = [&](const std::string& partner, int64_t start,
                       std::optional<int64_t> end = std::nullopt) {
    v1::CreateAgreementRequest r;
    r.mutable_agreement()->set_partner_id(partner);
    r.mutable_agreement()->set_program_id(program->id());
    *r.mutable_agreement()->mutable_start_time() = ToTimestamp(start);
    if (end) *r.mutable_agreement()->mutable_end_time() = ToTimestamp(*end);
    return logic_.CreateAgreement(r, "user:ada");
  };
  auto activate = [&](const std::string& id) {
    v1::TransitionAgreementRequest r;
    r.set_id(id);
    r.set_state(v1::AGREEMENT_STATE_ACTIVE);
    return logic_.TransitionAgreement(r, "user:ada");
  };
  auto funds = [&](const std::string& partner) {
    return RequestFunds(partner, "Q3 webinars", "5000");
  };
  absl::StatusOr<v1::Agreement> active = agreement(a.id(), kNow);
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_TRUE(activate(active->id()).ok());
  absl::StatusOr<v1::Deal> open =
      Register(a.id(), "Initech", "initech.example", kNow);
  ASSERT_TRUE(open.ok()) << open.status();
  absl::StatusOr<v1::Deal> keyed =
      Register(a.id(), "Umbrella", "umbrella.example", kNow, "reg-1");
  ASSERT_TRUE(keyed.ok()) << keyed.status();

  for (v1::Lifecycle l : {v1::LIFECYCLE_ONBOARDING, v1::LIFECYCLE_ACTIVE,
                          v1::LIFECYCLE_SUSPENDED}) {
    ASSERT_TRUE(SetLifecycle(a.id(), l).ok());
  }
  absl::Status refused =
      Register(a.id(), "Globex", "globex.example", kNow + kDay).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_TRUE(absl::StrContains(refused.message(), "suspended")) << refused;
  EXPECT_TRUE(absl::IsFailedPrecondition(funds(a.id()).status()));
  absl::StatusOr<v1::Agreement> drafted = agreement(a.id(), kNow);
  ASSERT_TRUE(drafted.ok()) << drafted.status();  // a draft, for later
  EXPECT_TRUE(absl::IsFailedPrecondition(activate(drafted->id()).status()));
  EXPECT_TRUE(funds(b.id()).ok());
  // Imported, its open registration is refused naming partner_ref; a closed
  // one (history) goes in.
  {
    MysqlPartnerImports imports(&db_.pool(), &ids_,
                                [this] { return absl::FromUnixMicros(now_); },
                                {.currency = "USD"});
    v1::ImportDealsRequest file;
    file.set_import_id("suspended");
    for (const char* state : {"submitted", "lost"}) {
      v1::DealRow* r = file.add_rows();
      r->set_row(file.rows_size());
      r->set_partner_ref(a.id());
      r->set_account(absl::StrCat("Hooli ", state));
      r->set_amount("100");
      r->set_registered_at(FormatRfc3339Micros(kNow));
      r->set_state(state);
      if (std::string(state) == "lost") {
        r->set_closed_at(FormatRfc3339Micros(kNow + kDay));
      }
    }
    absl::StatusOr<v1::ImportDealsResponse> imported =
        imports.ImportDeals(testing::OneMessage(WithDealIds(file)), "user:ada");
    ASSERT_TRUE(imported.ok()) << imported.status();
    EXPECT_EQ(imported->accepted(), 1);
    ASSERT_EQ(imported->rejected_size(), 1);
    EXPECT_EQ(imported->rejected(0).row(), 1);
    EXPECT_EQ(imported->rejected(0).field(), "partner_ref");
    EXPECT_TRUE(
        absl::StrContains(imported->rejected(0).message(), "suspended"));
  }

  ASSERT_TRUE(SetLifecycle(a.id(), v1::LIFECYCLE_ENDED).ok());
  v1::GetDealRequest get;
  get.set_id(open->id());
  EXPECT_EQ(logic_.GetDeal(get)->state(), v1::DEAL_STATE_EXPIRED);
  EXPECT_FALSE(logic_.GetDeal(get)->has_close_time());  // as if by hand
  // Expiring it again is a retry: nothing to do, nothing refused.
  absl::StatusOr<v1::Deal> again = Move(open->id(), v1::DEAL_STATE_EXPIRED);
  EXPECT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(db_.Strings("SELECT state FROM agreements WHERE partner_id = ? "
                        "ORDER BY state",
                        {a.id()}),
            (std::vector<std::string>{"1", "4"}));  // the draft, terminated
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'UpdatePartner' AND details = 'fields=lifecycle; "
                      "lifecycle suspended -> "
                      "ended; 2 open deals expired, 1 active agreement "
                      "terminated'"),
            1);
  // Each deal and agreement ended with it has its own event.
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE rpc = "
                        "'UpdatePartner' AND resource = ?",
                        {"deals/" + open->id()}),
            std::vector<std::string>{
                absl::StrCat("expired: partner ", a.id(), " ended")});
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'UpdatePartner' AND resource LIKE 'deals/%'"),
            2);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'UpdatePartner' AND resource LIKE 'agreements/%' AND "
                      "details = CONCAT('terminated: partner ', ?, ' ended')",
                      {a.id()}),
            1);
  // A registration retried after the ending is answered as first stored.
  absl::StatusOr<v1::Deal> retried =
      Register(a.id(), "Umbrella", "umbrella.example", kNow, "reg-1");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->id(), keyed->id());
  absl::StatusOr<v1::Deal> unopposed =
      Register(b.id(), "Initech", "initech.example", kNow + kDay);
  ASSERT_TRUE(unopposed.ok()) << unopposed.status();
  EXPECT_TRUE(unopposed->conflict_with().empty());
  EXPECT_TRUE(absl::IsFailedPrecondition(agreement(a.id(), kNow).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(activate(drafted->id()).status()));

  absl::StatusOr<v1::Agreement> lapsed =
      agreement(b.id(), kNow - 400 * kDay, kNow - 30 * kDay);
  ASSERT_TRUE(lapsed.ok()) << lapsed.status();
  absl::Status late = activate(lapsed->id()).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(late)) << late;
  EXPECT_TRUE(absl::StrContains(late.message(), "ended at")) << late;
}

// An active agreement expires by itself at its end time: it reads and lists
// as expired from then on, is not expired by hand before (terminated
// instead), and a new agreement in its program takes its place, the old one
// then stored as expired with an audit event of its own.
TEST_F(PartnerLogicTest, AnActiveAgreementExpiresByItselfAtItsEnd) {
  const v1::Partner a = Create("Alpha");
  v1::CreateProgramRequest pr;
  pr.mutable_program()->set_name("Reseller 2027");
  pr.mutable_program()->add_terms()->set_commission_percent("10");
  absl::StatusOr<v1::Program> program = logic_.CreateProgram(pr, "user:ada");
  ASSERT_TRUE(program.ok()) << program.status();
  auto create = [&](int64_t start, std::optional<int64_t> end) {
    v1::CreateAgreementRequest r;
    r.mutable_agreement()->set_partner_id(a.id());
    r.mutable_agreement()->set_program_id(program->id());
    *r.mutable_agreement()->mutable_start_time() = ToTimestamp(start);
    if (end) *r.mutable_agreement()->mutable_end_time() = ToTimestamp(*end);
    return logic_.CreateAgreement(r, "user:ada");
  };
  auto move = [&](const std::string& id, v1::AgreementState to) {
    v1::TransitionAgreementRequest r;
    r.set_id(id);
    r.set_state(to);
    return logic_.TransitionAgreement(r, "user:ada");
  };
  auto listed = [&](v1::AgreementState state) {
    v1::ListAgreementsRequest r;
    r.set_partner_id(a.id());
    r.set_state(state);
    std::vector<std::string> ids;
    absl::StatusOr<v1::ListAgreementsResponse> page = logic_.ListAgreements(r);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const v1::Agreement& g : page->agreements()) ids.push_back(g.id());
    }
    return ids;
  };
  now_ = kNow;
  absl::StatusOr<v1::Agreement> first = create(kNow - kDay, kNow + 10 * kDay);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(move(first->id(), v1::AGREEMENT_STATE_ACTIVE).ok());
  absl::Status early = move(first->id(), v1::AGREEMENT_STATE_EXPIRED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(early)) << early;
  EXPECT_TRUE(absl::StrContains(early.message(), "terminate")) << early;
  EXPECT_EQ(listed(v1::AGREEMENT_STATE_ACTIVE),
            std::vector<std::string>{first->id()});

  now_ = kNow + 10 * kDay;  // its end: expired from this microsecond on
  v1::GetAgreementRequest get;
  get.set_id(first->id());
  EXPECT_EQ(logic_.GetAgreement(get)->state(), v1::AGREEMENT_STATE_EXPIRED);
  EXPECT_TRUE(listed(v1::AGREEMENT_STATE_ACTIVE).empty());
  EXPECT_EQ(listed(v1::AGREEMENT_STATE_EXPIRED),
            std::vector<std::string>{first->id()});
  // Expiring it is a retry (nothing written); terminating an expired one is
  // refused.
  const int64_t events = AuditCount("TransitionAgreement");
  absl::StatusOr<v1::Agreement> again =
      move(first->id(), v1::AGREEMENT_STATE_EXPIRED);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->state(), v1::AGREEMENT_STATE_EXPIRED);
  EXPECT_EQ(AuditCount("TransitionAgreement"), events);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      move(first->id(), v1::AGREEMENT_STATE_TERMINATED).status()));

  // The next period's agreement becomes active in its place.
  absl::StatusOr<v1::Agreement> next = create(now_, std::nullopt);
  ASSERT_TRUE(next.ok()) << next.status();
  absl::StatusOr<v1::Agreement> activated =
      move(next->id(), v1::AGREEMENT_STATE_ACTIVE);
  ASSERT_TRUE(activated.ok()) << activated.status();
  EXPECT_EQ(listed(v1::AGREEMENT_STATE_ACTIVE),
            std::vector<std::string>{next->id()});
  EXPECT_EQ(
      db_.Strings("SELECT state FROM agreements WHERE id = ?", {first->id()}),
      std::vector<std::string>{"3"});
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE resource = ? "
                        "ORDER BY id DESC LIMIT 1",
                        {"agreements/" + first->id()}),
            std::vector<std::string>{
                absl::StrCat("expired: its period ended, and agreement ",
                             next->id(), " became active")});

  // Ending the partner terminates the agreement still in its period, and
  // stores the one whose period ended as expired (as it reads), each audited.
  pr.mutable_program()->set_name("Distribution 2027");
  absl::StatusOr<v1::Program> other = logic_.CreateProgram(pr, "user:ada");
  ASSERT_TRUE(other.ok()) << other.status();
  v1::CreateAgreementRequest short_one;
  short_one.mutable_agreement()->set_partner_id(a.id());
  short_one.mutable_agreement()->set_program_id(other->id());
  *short_one.mutable_agreement()->mutable_start_time() = ToTimestamp(now_);
  *short_one.mutable_agreement()->mutable_end_time() = ToTimestamp(now_ + kDay);
  absl::StatusOr<v1::Agreement> lapsing =
      logic_.CreateAgreement(short_one, "user:ada");
  ASSERT_TRUE(lapsing.ok()) << lapsing.status();
  ASSERT_TRUE(move(lapsing->id(), v1::AGREEMENT_STATE_ACTIVE).ok());
  now_ += 2 * kDay;
  ASSERT_TRUE(SetLifecycle(a.id(), v1::LIFECYCLE_ENDED).ok());
  EXPECT_EQ(
      db_.Strings("SELECT CONCAT(id, ' ', state) FROM agreements WHERE "
                  "id IN (?, ?) ORDER BY id = ?",
                  {next->id(), lapsing->id(), lapsing->id()}),
      (std::vector<std::string>{next->id() + " 4", lapsing->id() + " 3"}));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM agreements WHERE active_key IS "
                      "NOT NULL AND partner_id = ?",
                      {a.id()}),
            0);
  EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE resource = ? "
                        "AND rpc = 'UpdatePartner'",
                        {"agreements/" + lapsing->id()}),
            std::vector<std::string>{
                absl::StrCat("expired: partner ", a.id(), " ended")});
}

TEST_F(PartnerLogicTest, FundsAreRequestedApprovedClaimedAndPaidOrRefused) {
  const v1::Partner p = Create("Alpha");
  absl::StatusOr<v1::FundRequest> f =
      RequestFunds(p.id(), "Q3 webinars", "5000");
  ASSERT_TRUE(f.ok()) << f.status();
  auto move = [&](v1::FundRequestState to, const std::string& claimed = "") {
    return MoveFunds(f->id(), to, claimed);
  };
  // A claim before approval is refused; so is one above the amount, and
  // one dated in the future.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      move(v1::FUND_REQUEST_STATE_CLAIMED, "100").status()));
  ASSERT_TRUE(move(v1::FUND_REQUEST_STATE_APPROVED).ok());
  EXPECT_TRUE(NamesField(move(v1::FUND_REQUEST_STATE_CLAIMED).status(),
                         "claimed_amount"));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      move(v1::FUND_REQUEST_STATE_CLAIMED, "5000.01").status()));
  {
    v1::TransitionFundRequestRequest ahead;
    ahead.set_id(f->id());
    ahead.set_state(v1::FUND_REQUEST_STATE_CLAIMED);
    *ahead.mutable_claimed_amount() = Usd("4200.50");
    *ahead.mutable_time() = ToTimestamp(now_ + kClockSkewUs + 1);
    EXPECT_TRUE(NamesField(
        logic_.TransitionFundRequest(ahead, "user:ada").status(), "time"));
    // Dated a minute ahead (within the clocks' difference) it is taken,
    // and a payment made now, without a time, is paid when claimed.
    *ahead.mutable_time() = ToTimestamp(now_ + 60'000'000);
    ASSERT_TRUE(logic_.TransitionFundRequest(ahead, "user:ada").ok());
  }
  // The same claim again (a retry whose answer was lost) is the first one;
  // a claim of another amount is refused.
  ASSERT_TRUE(move(v1::FUND_REQUEST_STATE_CLAIMED, "4200.50").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      move(v1::FUND_REQUEST_STATE_CLAIMED, "4200").status()));
  absl::StatusOr<v1::FundRequest> paid = move(v1::FUND_REQUEST_STATE_PAID);
  ASSERT_TRUE(paid.ok()) << paid.status();
  absl::StatusOr<v1::FundRequest> paid_again =
      move(v1::FUND_REQUEST_STATE_PAID);
  ASSERT_TRUE(paid_again.ok()) << paid_again.status();
  EXPECT_EQ(paid_again->etag(), paid->etag());
  EXPECT_EQ(paid_again->paid_time().seconds(), paid->paid_time().seconds());
  EXPECT_EQ(paid->state(), v1::FUND_REQUEST_STATE_PAID);
  EXPECT_EQ(paid->claimed_amount().units(), 4200);
  EXPECT_TRUE(paid->has_paid_time());
  EXPECT_EQ(paid->paid_time().seconds(), (now_ + 60'000'000) / 1'000'000);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      move(v1::FUND_REQUEST_STATE_CLAIM_REJECTED).status()));
  // Paid claims are a cost of the partner, and its scorecard shows them.
  absl::StatusOr<v1::PartnerScorecard> card = logic_.Scorecard(p.id());
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_EQ(card->funds_paid().units(), 4200);
  EXPECT_EQ(card->funds_paid().nanos(), 500'000'000);
  ASSERT_TRUE(card->has_fund_return());  // no volume yet: 0 per unit
  EXPECT_EQ(card->fund_return(), 0);
  EXPECT_EQ(AuditCount("TransitionFundRequest"), 3);
}

// Funds are approved and claimed only for a partner that may ask for them:
// suspended, its requests wait (and are approved once it is active again);
// ended, nothing more is approved or claimed, and a claim made before is
// still paid.
TEST_F(PartnerLogicTest, FundsAreNotApprovedOrClaimedForASuspendedOrEndedOne) {
  const v1::Partner p = Create("Alpha");
  ASSERT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ONBOARDING).ok());
  ASSERT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ACTIVE).ok());
  absl::StatusOr<v1::FundRequest> waits = RequestFunds(p.id(), "fair", "500");
  absl::StatusOr<v1::FundRequest> claims = RequestFunds(p.id(), "ads", "900");
  ASSERT_TRUE(waits.ok() && claims.ok());
  ASSERT_TRUE(MoveFunds(claims->id(), v1::FUND_REQUEST_STATE_APPROVED).ok());
  ASSERT_TRUE(
      MoveFunds(claims->id(), v1::FUND_REQUEST_STATE_CLAIMED, "800").ok());
  ASSERT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_SUSPENDED).ok());
  const int64_t audited = AuditCount("TransitionFundRequest");
  absl::Status refused =
      MoveFunds(waits->id(), v1::FUND_REQUEST_STATE_APPROVED).status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_EQ(refused.message(), absl::StrCat("partner ", p.id(),
                                            " is suspended; it cannot have "
                                            "funds approved"));
  EXPECT_EQ(AuditCount("TransitionFundRequest"), audited);
  ASSERT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ACTIVE).ok());
  ASSERT_TRUE(MoveFunds(waits->id(), v1::FUND_REQUEST_STATE_APPROVED).ok());

  absl::StatusOr<v1::FundRequest> asked = RequestFunds(p.id(), "mail", "50");
  ASSERT_TRUE(asked.ok()) << asked.status();

  // Ending it rejects what it can no longer claim (approved or only
  // requested), each audited; the claim made before stays to be paid.
  ASSERT_TRUE(SetLifecycle(p.id(), v1::LIFECYCLE_ENDED).ok());
  for (const v1::FundRequest* f : {&*waits, &*asked}) {
    v1::GetFundRequestRequest get;
    get.set_id(f->id());
    absl::StatusOr<v1::FundRequest> now = logic_.GetFundRequest(get);
    ASSERT_TRUE(now.ok()) << now.status();
    EXPECT_EQ(now->state(), v1::FUND_REQUEST_STATE_REJECTED) << f->id();
    EXPECT_NE(now->etag(), f->etag());
    EXPECT_EQ(db_.Strings("SELECT details FROM audit_events WHERE rpc = "
                          "'UpdatePartner' AND resource = ?",
                          {"fundRequests/" + f->id()}),
              std::vector<std::string>{
                  absl::StrCat("rejected: partner ", p.id(), " ended")});
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'UpdatePartner' AND details = 'fields=lifecycle; "
                      "lifecycle active -> "
                      "ended; 0 open deals expired, 0 active agreements "
                      "terminated, 2 fund requests not yet claimed "
                      "rejected'"),
            1);
  refused =
      MoveFunds(waits->id(), v1::FUND_REQUEST_STATE_CLAIMED, "100").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  absl::StatusOr<v1::FundRequest> paid =
      MoveFunds(claims->id(), v1::FUND_REQUEST_STATE_PAID);
  ASSERT_TRUE(paid.ok()) << paid.status();
  EXPECT_EQ(paid->state(), v1::FUND_REQUEST_STATE_PAID);
}

// Who requested funds does not approve them, and who claimed them does not
// pay the claim: another person does, or an admin's force, audited as such.
// Rejecting one's own request withdraws it.
TEST_F(PartnerLogicTest, FundsAreDecidedBySomeoneElseOrWithForce) {
  const v1::Partner p = Create("Alpha");
  absl::StatusOr<v1::FundRequest> f = RequestFunds(p.id(), "Roadshow", "800");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->requested_by(), "user:ada");
  EXPECT_EQ(f->claimed_by(), "");
  v1::TransitionFundRequestRequest t;
  t.set_id(f->id());
  t.set_state(v1::FUND_REQUEST_STATE_APPROVED);
  absl::Status own = logic_.TransitionFundRequest(t, "user:ada").status();
  EXPECT_TRUE(absl::IsPermissionDenied(own)) << own;
  EXPECT_TRUE(absl::StrContains(own.message(), "requested by user:ada")) << own;
  // Nor under the same name in capitals or look-alike letters (an identity
  // provider that keeps the case a name was typed in).
  for (const char* same : {"User:ADA", "user:\u0430da" /* Cyrillic a */}) {
    own = logic_.TransitionFundRequest(t, same).status();
    EXPECT_TRUE(absl::IsPermissionDenied(own)) << same << ": " << own;
    EXPECT_TRUE(absl::StrContains(
        own.message(),
        absl::StrCat("requested by user:ada, which reads as ", same)))
        << own;
  }
  EXPECT_EQ(AuditCount("TransitionFundRequest"), 0);
  t.set_force(true);
  // Forced under the other spelling, the audit names whose request it was.
  absl::StatusOr<v1::FundRequest> approved =
      logic_.TransitionFundRequest(t, "User:ADA");
  ASSERT_TRUE(approved.ok()) << approved.status();
  EXPECT_EQ(approved->state(), v1::FUND_REQUEST_STATE_APPROVED);
  // Its retry without force (an answer lost) is the first answer.
  t.set_force(false);
  absl::StatusOr<v1::FundRequest> retried =
      logic_.TransitionFundRequest(t, "user:ada");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->etag(), approved->etag());

  t.set_state(v1::FUND_REQUEST_STATE_CLAIMED);
  *t.mutable_claimed_amount() = Usd("700");
  absl::StatusOr<v1::FundRequest> claimed =
      logic_.TransitionFundRequest(t, "user:bob");
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(claimed->claimed_by(), "user:bob");
  EXPECT_EQ(claimed->requested_by(), "user:ada");
  // The same claim retried by someone else changes nothing: still bob's.
  EXPECT_EQ(logic_.TransitionFundRequest(t, "user:cy")->claimed_by(),
            "user:bob");
  t.clear_claimed_amount();
  t.set_state(v1::FUND_REQUEST_STATE_PAID);
  own = logic_.TransitionFundRequest(t, "user:bob").status();
  EXPECT_TRUE(absl::IsPermissionDenied(own)) << own;
  EXPECT_TRUE(absl::StrContains(own.message(), "claimed by user:bob")) << own;
  absl::StatusOr<v1::FundRequest> paid =
      logic_.TransitionFundRequest(t, "user:ada");
  ASSERT_TRUE(paid.ok()) << paid.status();
  EXPECT_EQ(paid->state(), v1::FUND_REQUEST_STATE_PAID);
  const std::vector<std::string> events = db_.Strings(
      "SELECT CONCAT(actor, ' ', details) FROM audit_events WHERE "
      "rpc = 'TransitionFundRequest' ORDER BY id");
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0], "User:ADA approved; own request (user:ada), force");
  EXPECT_TRUE(absl::StartsWith(events[1], "user:bob claimed 700")) << events[1];
  EXPECT_EQ(events[2], "user:ada paid");

  absl::StatusOr<v1::FundRequest> withdrawn =
      RequestFunds(p.id(), "Webinar", "100");
  ASSERT_TRUE(withdrawn.ok()) << withdrawn.status();
  v1::TransitionFundRequestRequest reject;
  reject.set_id(withdrawn->id());
  reject.set_state(v1::FUND_REQUEST_STATE_REJECTED);
  absl::StatusOr<v1::FundRequest> rejected =
      logic_.TransitionFundRequest(reject, "user:ada");
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state(), v1::FUND_REQUEST_STATE_REJECTED);

  // A request stored before requesters were kept is decided as before, by
  // anyone.
  absl::StatusOr<v1::FundRequest> older =
      RequestFunds(p.id(), "Trade show", "300");
  ASSERT_TRUE(older.ok()) << older.status();
  db_.Exec("UPDATE fund_requests SET requested_by = '' WHERE id = ?",
           {older->id()});
  v1::TransitionFundRequestRequest approve_older;
  approve_older.set_id(older->id());
  approve_older.set_state(v1::FUND_REQUEST_STATE_APPROVED);
  EXPECT_TRUE(logic_.TransitionFundRequest(approve_older, "user:ada").ok());
}

TEST_F(PartnerLogicTest, RejectingAClaimedRequestRejectsItsClaim) {
  const v1::Partner p = Create("Alpha");
  absl::StatusOr<v1::FundRequest> f =
      RequestFunds(p.id(), "Joint event", "900");
  ASSERT_TRUE(f.ok()) << f.status();
  auto move = [&](v1::FundRequestState to, const std::string& claimed = "") {
    return MoveFunds(f->id(), to, claimed);
  };
  ASSERT_TRUE(move(v1::FUND_REQUEST_STATE_APPROVED).ok());
  ASSERT_TRUE(move(v1::FUND_REQUEST_STATE_CLAIMED, "850").ok());
  absl::StatusOr<v1::FundRequest> rejected =
      move(v1::FUND_REQUEST_STATE_REJECTED);
  ASSERT_TRUE(rejected.ok()) << rejected.status();
  EXPECT_EQ(rejected->state(), v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_EQ(rejected->claimed_amount().units(), 850);
  // Asked again (a retry), it is answered as it is and nothing is written.
  absl::StatusOr<v1::FundRequest> again = move(v1::FUND_REQUEST_STATE_REJECTED);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->etag(), rejected->etag());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'TransitionFundRequest' AND details = "
                      "'claim_rejected'"),
            1);
  EXPECT_EQ(AuditCount("TransitionFundRequest"), 3);
  // A rejected claim is not paid.
  EXPECT_TRUE(
      absl::IsFailedPrecondition(move(v1::FUND_REQUEST_STATE_PAID).status()));
}

TEST_F(PartnerLogicTest,
       OrdersAndInteractionsAreRecordedOnceUnderTheirRequestIds) {
  const v1::Partner p = Create("Alpha");
  v1::RecordOrderRequest o;
  o.set_partner_id(p.id());
  *o.mutable_order()->mutable_order_time() = ToTimestamp(kNow);
  *o.mutable_order()->mutable_amount() = Usd("250.75");
  o.set_request_id("order-1");
  absl::StatusOr<v1::Order> first = logic_.RecordOrder(o, "user:ada");
  absl::StatusOr<v1::Order> again = logic_.RecordOrder(o, "user:ada");
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(first->id(), again->id());
  EXPECT_EQ(first->recorded_by(), "user:ada");
  // An amount without its currency is in the deployment's: the same order.
  o.mutable_order()->mutable_amount()->clear_currency_code();
  absl::StatusOr<v1::Order> unspelled = logic_.RecordOrder(o, "user:ada");
  ASSERT_TRUE(unspelled.ok()) << unspelled.status();
  EXPECT_EQ(unspelled->id(), first->id());
  *o.mutable_order()->mutable_amount() = Usd("999");
  EXPECT_TRUE(
      NamesField(logic_.RecordOrder(o, "user:ada").status(), "request_id"));
  v1::ListOrdersRequest list;
  list.set_partner_id(p.id());
  EXPECT_EQ(logic_.ListOrders(list)->orders_size(), 1);
  // An import row under the request id of a recorded order is refused (a
  // request id names one write, and the call's was the order), not stored
  // as a second one; a row under a request id of its own is stored once,
  // however often it is sent.
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  int run = 0;
  for (const char* import_id : {"orders-1", "orders-2"}) {
    v1::ImportOrdersRequest file;
    file.set_import_id(import_id);
    for (const char* request_id : {"order-1", "order-2"}) {
      v1::OrderRow* row = file.add_rows();
      row->set_row(file.rows_size());
      row->set_partner_ref(p.id());
      row->set_timestamp(FormatRfc3339Micros(kNow));
      row->set_amount("250.75");
      row->set_request_id(request_id);
    }
    absl::StatusOr<v1::ImportOrdersResponse> imported =
        imports.ImportOrders(testing::OneMessage(file), "user:ada");
    ASSERT_TRUE(imported.ok()) << imported.status();
    EXPECT_EQ(imported->accepted(), run == 0 ? 1 : 0) << import_id;
    EXPECT_EQ(imported->duplicates(), run == 0 ? 0 : 1) << import_id;
    ASSERT_EQ(imported->rejected_size(), 1) << import_id;
    EXPECT_EQ(imported->rejected(0).row(), 1);
    EXPECT_EQ(imported->rejected(0).field(), "request_id");
    ++run;
  }
  EXPECT_EQ(logic_.ListOrders(list)->orders_size(), 2);

  v1::LogInteractionRequest i;
  i.set_partner_id(p.id());
  i.mutable_interaction()->set_channel(cv1::CHANNEL_VISIT);
  i.mutable_interaction()->set_kind("business review");
  *i.mutable_interaction()->mutable_interaction_time() = ToTimestamp(kNow);
  *i.mutable_interaction()->mutable_cost() = Usd("80");
  ASSERT_TRUE(logic_.LogInteraction(i, "user:ada").ok());
  v1::ListInteractionsRequest li;
  li.set_partner_id(p.id());
  absl::StatusOr<v1::ListInteractionsResponse> logged =
      logic_.ListInteractions(li);
  ASSERT_TRUE(logged.ok()) << logged.status();
  ASSERT_EQ(logged->interactions_size(), 1);
  EXPECT_EQ(logged->interactions(0).cost().units(), 80);
  EXPECT_EQ(AuditCount("LogInteraction"), 0);
  // One forced past the contact policy is audited, once however often it
  // is retried.
  i.set_force(true);
  i.set_request_id("visit-1");
  absl::StatusOr<v1::Interaction> forced = logic_.LogInteraction(i, "user:ada");
  absl::StatusOr<v1::Interaction> forced_again =
      logic_.LogInteraction(i, "user:ada");
  ASSERT_TRUE(forced.ok() && forced_again.ok());
  EXPECT_EQ(forced_again->id(), forced->id());
  EXPECT_EQ(logic_.ListInteractions(li)->interactions_size(), 2);
  EXPECT_EQ(AuditCount("LogInteraction"), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'LogInteraction' AND actor = 'user:ada' AND details "
                      "LIKE 'force interaction=%'"),
            1);

  // The tier's contact policy (the store's `admit`) is asked for a new
  // interaction only: a retry gets the stored one even when the first
  // re-scored the partner into a tier whose policy refuses it now.
  int asked = 0;
  absl::Status answer = absl::OkStatus();
  auto admit = [&]() {
    ++asked;
    return answer;
  };
  InteractionRecord call;
  call.id = KeyedId("interaction", "call-1");
  call.partner_id = p.id();
  call.channel = cv1::CHANNEL_PHONE;
  call.interaction_time_us = kNow;
  call.cost = *Decimal::Parse("5");
  ASSERT_TRUE(store_.LogInteraction(call, "fp-1", std::nullopt, admit).ok());
  answer = absl::FailedPreconditionError("the tier's policy refuses it now");
  absl::StatusOr<InteractionRecord> replay =
      store_.LogInteraction(call, "fp-1", std::nullopt, admit);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->id, call.id);
  EXPECT_EQ(asked, 1);
  call.id = KeyedId("interaction", "call-2");
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_.LogInteraction(call, "fp-2", std::nullopt, admit).status()));
  EXPECT_EQ(asked, 2);
  EXPECT_EQ(
      db_.Count("SELECT COUNT(*) FROM interactions WHERE id = ?", {call.id}),
      0);

  // The scorecard counts the volume (orders) per unit of paid funds.
  absl::StatusOr<v1::PartnerScorecard> card = logic_.Scorecard(p.id());
  ASSERT_TRUE(card.ok()) << card.status();
  EXPECT_FALSE(card->has_win_rate());
  EXPECT_FALSE(card->has_value());  // not scored: no values service here
}

// A retry sent twice at once: both calls answer with the one stored order
// (the loser of the race on the key runs its checks again), never with the
// database's duplicate-key error.
TEST_F(PartnerLogicTest, TwinRetriesSentAtOnceBothGetTheStoredOrder) {
  const v1::Partner p = Create("Alpha");
  for (int round = 0; round < 20; ++round) {
    v1::RecordOrderRequest o;
    o.set_partner_id(p.id());
    *o.mutable_order()->mutable_order_time() = ToTimestamp(kNow);
    *o.mutable_order()->mutable_amount() = Usd("10");
    o.set_request_id(absl::StrCat("twin-", round));
    absl::StatusOr<v1::Order> answers[2] = {absl::UnknownError("not run"),
                                            absl::UnknownError("not run")};
    std::thread other([&] { answers[1] = logic_.RecordOrder(o, "user:ada"); });
    answers[0] = logic_.RecordOrder(o, "user:ada");
    other.join();
    for (const absl::StatusOr<v1::Order>& a : answers) {
      ASSERT_TRUE(a.ok()) << "round " << round << ": " << a.status();
    }
    EXPECT_EQ(answers[0]->id(), answers[1]->id());
  }
  v1::ListOrdersRequest list;
  list.set_partner_id(p.id());
  list.set_page_size(100);
  EXPECT_EQ(logic_.ListOrders(list)->orders_size(), 20);

  // The same for a registration, whose locking read of the account's claims
  // can make the twins deadlock first.
  for (int round = 0; round < 20; ++round) {
    v1::RegisterDealRequest r;
    r.mutable_deal()->set_partner_id(p.id());
    r.mutable_deal()->set_account_name(absl::StrCat("Account ", round));
    r.mutable_deal()->set_account_domain(
        absl::StrCat("account", round, ".example"));
    *r.mutable_deal()->mutable_amount() = Usd("1000");
    *r.mutable_deal()->mutable_register_time() = ToTimestamp(kNow);
    r.set_request_id(absl::StrCat("deal-", round));
    std::vector<absl::StatusOr<v1::Deal>> got = testing::AtOnce(
        2, [&](size_t) { return logic_.RegisterDeal(r, "user:ada"); });
    for (const auto& d : got) {
      ASSERT_TRUE(d.ok()) << "round " << round << ": " << d.status();
    }
    EXPECT_EQ(got[0]->id(), got[1]->id());
  }
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM deals"), 20);
}

// A registration and an import racing for one account, or two imports (the
// streams of one file, or two files) doing so, see each other: of the two
// registrations exactly one is the earlier claim and the other names it.
// Each import also carries a closed deal of the account, stored before the
// account is locked, which a registration's read must not wait for.
TEST_F(PartnerLogicTest, RegistrationsRacingForOneAccountSeeEachOther) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  MysqlPartnerImports imports(
      &db_.pool(), &ids_, [this] { return absl::FromUnixMicros(now_); },
      {.currency = "USD"}, nullptr);
  auto import_one = [&](const std::string& partner, const std::string& account,
                        const std::string& import_id) {
    v1::ImportDealsRequest deals;
    deals.set_import_id(import_id);
    v1::DealRow* r = deals.add_rows();
    r->set_row(1);
    r->set_partner_ref(partner);
    r->set_account(account);
    r->set_account_domain(absl::StrCat(account, ".example"));
    r->set_amount("100");
    r->set_registered_at(FormatRfc3339Micros(kNow - kDay));
    r->set_state("submitted");
    v1::DealRow* lost = deals.add_rows();
    *lost = *r;
    lost->set_row(2);
    lost->set_registered_at(FormatRfc3339Micros(kNow - 3 * kDay));
    lost->set_state("lost");
    lost->set_closed_at(FormatRfc3339Micros(kNow - 2 * kDay));
    absl::StatusOr<v1::ImportDealsResponse> d = imports.ImportDeals(
        testing::OneMessage(WithDealIds(deals)), "user:ada");
    return d.ok() && d->accepted() == 2
               ? absl::OkStatus()
               : absl::InternalError(d.ok() ? "not accepted"
                                            : d.status().ToString());
  };
  for (int round = 0; round < 40; ++round) {
    // Even rounds race an import with RegisterDeal, odd ones two imports.
    const std::string account = absl::StrCat("race", round);
    std::vector<absl::Status> got = testing::AtOnce(2, [&](size_t i) {
      if (i == 0) return import_one(a.id(), account, account + "-a");
      if (round % 2 == 1) return import_one(b.id(), account, account + "-b");
      return Register(b.id(), account, account + ".example", kNow - kDay)
          .status();
    });
    for (const absl::Status& s : got) ASSERT_TRUE(s.ok()) << s;
    const std::vector<std::string> flagged = db_.Strings(
        "SELECT IFNULL(d.conflict_with, '') FROM deals d WHERE d.account_name "
        "= ? AND d.state IN (1, 2) ORDER BY d.conflict_with IS NULL, d.id",
        {account});
    ASSERT_EQ(flagged.size(), 2u) << "round " << round;
    EXPECT_NE(flagged[0], "") << "round " << round << ": neither was flagged";
    EXPECT_EQ(flagged[1], "") << "round " << round << ": both were flagged";
    // And the flagged one names the other.
    const std::vector<std::string> ids = db_.Strings(
        "SELECT d.id FROM deals d WHERE d.account_name = ? AND d.state IN (1, "
        "2) ORDER BY d.conflict_with IS NULL, d.id",
        {account});
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(flagged[0], ids[1]) << "round " << round;
  }
}

// Imported won deals, orders and interactions change partners' values:
// their partners are re-scored once the rows are stored; open deals and
// refused rows change nothing.
TEST_F(PartnerLogicTest, ImportsRescoreThePartnersWhoseValuesTheyChange) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  testing::RescoreRecorder values;
  MysqlPartnerImports imports(
      &db_.pool(), &ids_, [this] { return absl::FromUnixMicros(now_); },
      {.currency = "USD"}, &values);
  v1::ImportDealsRequest deals;
  deals.set_import_id("deals");
  for (const auto& [partner, account, state] :
       {std::tuple(a.id(), "Initech", "won"),
        std::tuple(b.id(), "Globex", "submitted"),
        std::tuple(b.id(), "Initech", "nonsense")}) {
    v1::DealRow* r = deals.add_rows();
    r->set_row(deals.rows_size());
    r->set_partner_ref(partner);
    r->set_account(account);
    r->set_amount("100");
    r->set_registered_at(FormatRfc3339Micros(kNow - 10 * kDay));
    r->set_state(state);
    if (std::string(state) == "won") {
      r->set_closed_at(FormatRfc3339Micros(kNow - kDay));
    }
  }
  absl::StatusOr<v1::ImportDealsResponse> d =
      imports.ImportDeals(testing::OneMessage(WithDealIds(deals)), "user:ada");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->accepted(), 2);
  EXPECT_EQ(values.soon, std::vector<std::string>{a.id()});

  v1::ImportOrdersRequest orders;
  orders.set_import_id("orders");
  v1::OrderRow* o = orders.add_rows();
  o->set_row(1);
  o->set_partner_ref(b.id());
  o->set_timestamp(FormatRfc3339Micros(kNow));
  o->set_amount("50");
  ASSERT_TRUE(
      imports.ImportOrders(testing::OneMessage(orders), "user:ada").ok());
  EXPECT_EQ(values.soon, (std::vector<std::string>{a.id(), b.id()}));

  // An interaction of a partner the import creates re-scores it too.
  v1::ImportInteractionsRequest logged;
  logged.set_import_id("visits");
  v1::InteractionRow* i = logged.add_rows();
  i->set_row(1);
  i->set_partner_ref("ext:crm:9");
  i->set_timestamp(FormatRfc3339Micros(kNow));
  i->set_channel("visit");
  i->set_cost("80");
  ASSERT_TRUE(
      imports.ImportInteractions(testing::OneMessage(logged), "user:ada").ok());
  const std::vector<std::string> created = db_.Strings(
      "SELECT partner_id FROM partner_external_ids WHERE external_id = '9'");
  ASSERT_EQ(created.size(), 1u);
  // The partner an import makes names who made it, as one made by a call.
  v1::GetPartnerRequest get;
  get.set_id(created[0]);
  EXPECT_EQ(logic_.GetPartner(get)->created_by(), "user:ada");
  EXPECT_EQ(a.created_by(), "user:ada");
  EXPECT_EQ(values.soon,
            (std::vector<std::string>{a.id(), b.id(), created[0]}));
}

// Imported interactions dated within the last 24 hours keep to their
// partner's contact policy, as LogInteraction's do without force; older
// rows are history, and a partner without a tier (or one the import
// creates) has no policy yet. Each partner's policy is read once an import.
TEST_F(PartnerLogicTest, RecentImportedInteractionsKeepToThePartnersPolicy) {
  const v1::Partner a = Create("Alpha"), b = Create("Beta");
  testing::RescoreRecorder values;
  cv1::ContactPolicy lead;
  lead.set_tier(cv1::TIER_LEAD);
  lead.add_channels(cv1::CHANNEL_EMAIL);
  lead.mutable_cost_ceiling()->set_units(20);
  values.policies[a.id()] = lead;
  MysqlPartnerImports imports(
      &db_.pool(), &ids_, [this] { return absl::FromUnixMicros(now_); },
      {.currency = "USD"}, &values);
  constexpr int64_t kHour = kDay / 24;
  v1::ImportInteractionsRequest logged;
  logged.set_import_id("recent");
  for (const auto& [partner, age, channel, cost] :
       std::vector<std::tuple<std::string, int64_t, const char*, const char*>>{
           {a.id(), kHour, "visit", "10"},         // 1: channel
           {a.id(), 2 * kHour, "email", "20.01"},  // 2: cost
           {a.id(), 3 * kDay, "visit", "10"},      // 3: history
           {a.id(), kHour, "email", "20"},         // 4: within the policy
           {b.id(), kHour, "visit", "500"},        // 5: no tier
           {"ext:crm:77", 0, "visit", "500"},      // 6: made by the import
           {a.id(), kHour / 2, "phone", "1"}}) {   // 7: channel
    v1::InteractionRow* i = logged.add_rows();
    i->set_row(logged.rows_size());
    i->set_partner_ref(partner);
    i->set_timestamp(FormatRfc3339Micros(now_ - age));
    i->set_channel(channel);
    i->set_cost(cost);
  }
  absl::StatusOr<v1::ImportInteractionsResponse> r =
      imports.ImportInteractions(testing::OneMessage(logged), "user:ada");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->accepted(), 4);
  EXPECT_EQ(r->created_partners(), 1);
  ASSERT_EQ(r->rejected_size(), 3);
  EXPECT_EQ(r->rejected(0).row(), 1);
  EXPECT_EQ(r->rejected(0).field(), "channel");
  EXPECT_EQ(r->rejected(0).message(),
            absl::StrCat("the Lead tier's contact policy does not allow the "
                         "visit channel for partner ",
                         a.id(),
                         " (allowed: email); a row dated within the last 24 "
                         "hours is held to it (an admin's import with force "
                         "records it anyway)"));
  EXPECT_EQ(r->rejected(1).row(), 2);
  EXPECT_EQ(r->rejected(1).field(), "cost");
  EXPECT_NE(r->rejected(1).message().find("20.01 is more than the 20.00"),
            std::string::npos)
      << r->rejected(1).message();
  EXPECT_EQ(r->rejected(2).row(), 7);
  EXPECT_EQ(r->rejected(2).field(), "channel");
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM interactions"), 4);
  EXPECT_EQ(values.policy_reads, 2);  // Alpha's and Beta's

  // A retry stores nothing twice and refuses the same rows. Beta has a tier
  // now whose policy refuses its row: stored already, it is a duplicate.
  values.policies[b.id()] = lead;
  absl::StatusOr<v1::ImportInteractionsResponse> again =
      imports.ImportInteractions(testing::OneMessage(logged), "user:ada");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->duplicates(), 4);
  EXPECT_EQ(again->rejected_size(), 3);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM interactions"), 4);

  // An admin's import with force records what the policy refuses, and its
  // audit events (start and end) say so.
  absl::StatusOr<v1::ImportInteractionsResponse> forced =
      imports.ImportInteractions(testing::OneMessage(logged), "user:root", {},
                                 /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status();
  EXPECT_EQ(forced->accepted(), 3);
  EXPECT_EQ(forced->duplicates(), 4);
  EXPECT_EQ(forced->rejected_size(), 0);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM interactions"), 7);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM audit_events WHERE rpc = "
                      "'ImportInteractions' AND actor = 'user:root' AND "
                      "details LIKE '%force'"),
            2);
}

// Two rows under one request id that say different things are never taken
// for one row sent twice, wherever a '|' stands in their text.
TEST_F(PartnerLogicTest, RowsThatDifferOnlyWhereABarStandsAreNotRetries) {
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  v1::ImportInteractionsRequest logged;
  logged.set_import_id("visits");
  for (const auto& [row, kind, note] :
       std::vector<std::tuple<int, const char*, const char*>>{
           {2, "a|b", "c"}, {3, "a", "b|c"}}) {
    v1::InteractionRow* i = logged.add_rows();
    i->set_row(row);
    i->set_partner_ref("ext:crm:bar");
    i->set_timestamp(FormatRfc3339Micros(kNow));
    i->set_channel("visit");
    i->set_cost("80");
    i->set_kind(kind);
    i->set_note(note);
    i->set_request_id("visit-1");
  }
  absl::StatusOr<v1::ImportInteractionsResponse> imported =
      imports.ImportInteractions(testing::OneMessage(logged), "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  EXPECT_EQ(imported->duplicates(), 0);
  ASSERT_EQ(imported->rejected_size(), 1);
  EXPECT_EQ(imported->rejected(0).row(), 3);
  EXPECT_EQ(imported->rejected(0).field(), "request_id");
}

// An import made a partner for an external id that an update took away
// since: a later import naming that id refuses the row, saying why, instead
// of failing on the made partner's key at every attempt.
TEST_F(PartnerLogicTest, AnIdTakenFromThePartnerAnImportMadeIsARowReject) {
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  auto import = [&](const std::string& import_id) {
    v1::ImportOrdersRequest file;
    file.set_import_id(import_id);
    v1::OrderRow* row = file.add_rows();
    row->set_row(2);
    row->set_partner_ref("ext:crm:gone");
    row->set_timestamp(FormatRfc3339Micros(kNow));
    row->set_amount("10");
    return imports.ImportOrders(testing::OneMessage(file), "user:ada");
  };
  absl::StatusOr<v1::ImportOrdersResponse> first = import("first");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->created_partners(), 1);
  v1::ListPartnersRequest list;
  const std::string made = logic_.ListPartners(list)->partners(0).id();
  v1::UpdatePartnerRequest update;
  update.mutable_partner()->set_id(made);
  update.mutable_update_mask()->add_paths("external_ids");
  ASSERT_TRUE(logic_.UpdatePartner(update, "user:ada").ok());

  absl::StatusOr<v1::ImportOrdersResponse> second = import("second");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->accepted(), 0);
  ASSERT_EQ(second->rejected_size(), 1);
  EXPECT_EQ(second->rejected(0).field(), "partner_ref");
  EXPECT_TRUE(absl::StrContains(second->rejected(0).message(), made))
      << second->rejected(0).message();
}

// An import remembers the partner each reference named for its later
// batches. An update that moves the external id to another partner
// meanwhile sends the later rows to that partner: the batch finds the id
// moved when it writes, and resolves its references again.
TEST_F(PartnerLogicTest, RowsFollowAnExternalIdMovedDuringTheImport) {
  constexpr size_t kBatch = rapport::imports::kDefaultBatchRows;
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  const v1::Partner old_holder = Create("Old"), new_holder = Create("New");
  const auto give_id = [&](const std::string& partner, bool held) {
    v1::UpdatePartnerRequest update;
    update.mutable_partner()->set_id(partner);
    update.mutable_update_mask()->add_paths("external_ids");
    if (held) {
      cv1::ExternalId* e = update.mutable_partner()->add_external_ids();
      e->set_source("crm");
      e->set_id("1");
    }
    absl::StatusOr<v1::Partner> updated = logic_.UpdatePartner(update, "u");
    ASSERT_TRUE(updated.ok()) << updated.status();
  };
  give_id(old_holder.id(), true);
  const auto message = [&](int64_t first_row, size_t rows) {
    v1::ImportOrdersRequest m;
    m.set_import_id("moving");
    for (size_t i = 0; i < rows; ++i) {
      v1::OrderRow* row = m.add_rows();
      row->set_row(first_row + static_cast<int64_t>(i));
      row->set_partner_ref("ext:crm:1");
      row->set_timestamp(FormatRfc3339Micros(kNow));
      row->set_amount("1");
    }
    return m;
  };
  int sent = 0;
  // The first message fills a batch, which is stored before the second
  // comes; between the two, the id moves.
  auto next = [&](v1::ImportOrdersRequest* out) {
    if (sent == 0) {
      *out = message(2, kBatch);
    } else if (sent == 1) {
      give_id(old_holder.id(), false);
      give_id(new_holder.id(), true);
      *out = message(2 + kBatch, 3);
    } else {
      return false;
    }
    ++sent;
    return true;
  };
  absl::StatusOr<v1::ImportOrdersResponse> imported =
      imports.ImportOrders(next, "user:ada");
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), static_cast<int64_t>(kBatch) + 3);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM orders WHERE partner_id = ?",
                      {old_holder.id()}),
            static_cast<int64_t>(kBatch));
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM orders WHERE partner_id = ?",
                      {new_holder.id()}),
            3);
}

// A move of the external id still in flight when a batch is written: the
// batch waits for it (the update holds the partner), then sees the id moved
// and resolves its rows again.
TEST_F(PartnerLogicTest, ABatchWaitsForAMoveOfItsExternalIdInFlight) {
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  const v1::Partner old_holder = Create("Old"), new_holder = Create("New");
  db_.Exec(
      "INSERT INTO partner_external_ids (source, external_id, partner_id) "
      "VALUES ('crm', '9', ?)",
      {old_holder.id()});
  v1::ImportOrdersRequest file;
  file.set_import_id("in-flight");
  v1::OrderRow* row = file.add_rows();
  row->set_row(2);
  row->set_partner_ref("ext:crm:9");
  row->set_timestamp(FormatRfc3339Micros(kNow));
  row->set_amount("5");
  std::thread importer;
  absl::StatusOr<v1::ImportOrdersResponse> imported;
  ASSERT_TRUE(
      db_.pool()
          .Transaction([&](sql::Connection& c) -> absl::Status {
            // What UpdatePartner does: the partner locked, then its ids.
            std::unique_ptr<sql::Statement> st(c.createStatement());
            std::unique_ptr<sql::ResultSet> locked(st->executeQuery(
                absl::StrCat("SELECT id FROM partners WHERE id = '",
                             old_holder.id(), "' FOR UPDATE")));
            st->execute(
                "DELETE FROM partner_external_ids WHERE source = 'crm' AND "
                "external_id = '9'");
            st->execute(absl::StrCat(
                "INSERT INTO partner_external_ids (source, external_id, "
                "partner_id) VALUES ('crm', '9', '",
                new_holder.id(), "')"));
            importer = std::thread([&] {
              imported =
                  imports.ImportOrders(testing::OneMessage(file), "user:ada");
            });
            // Until the batch waits for the partner this transaction holds.
            db_.AwaitWaitingStatement();
            return absl::OkStatus();
          })
          .ok());
  importer.join();
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM orders WHERE partner_id = ?",
                      {new_holder.id()}),
            1);
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM orders WHERE partner_id = ?",
                      {old_holder.id()}),
            0);
}

TEST_F(PartnerLogicTest, IdentifyFindsThePartnerOrCreatesItOnce) {
  v1::IdentifyPartnerRequest r;
  cv1::ExternalId* e = r.add_external_ids();
  e->set_source("crm");
  e->set_id("42");
  EXPECT_TRUE(
      NamesField(logic_.IdentifyPartner(r, "u").status(), "display_name"));
  r.set_display_name("Acme");
  r.set_request_id("ident-1");
  absl::StatusOr<v1::IdentifyPartnerResponse> made =
      logic_.IdentifyPartner(r, "user:ada");
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(made->created());
  EXPECT_EQ(made->partner().kind(), v1::PARTNER_KIND_CHANNEL);
  EXPECT_EQ(made->partner().created_by(), "user:ada");
  EXPECT_EQ(db_.Strings("SELECT rpc FROM audit_events WHERE resource = ?",
                        {"partners/" + made->partner().id()}),
            std::vector<std::string>{"IdentifyPartner"});
  // A retry of that request gets the first answer again; another request
  // finds the partner.
  absl::StatusOr<v1::IdentifyPartnerResponse> retried =
      logic_.IdentifyPartner(r, "user:ada");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_TRUE(retried->created());
  EXPECT_EQ(retried->partner().id(), made->partner().id());
  // Even once its identities name another partner (the external id moved
  // to it): the retry is the same request, answered as it was first.
  {
    v1::UpdatePartnerRequest away;
    away.mutable_partner()->set_id(made->partner().id());
    away.mutable_update_mask()->add_paths("external_ids");
    ASSERT_TRUE(logic_.UpdatePartner(away, "user:ada").ok());
    const v1::Partner other = Create("Other");
    v1::UpdatePartnerRequest to_other = away;
    to_other.mutable_partner()->set_id(other.id());
    *to_other.mutable_partner()->mutable_external_ids() = r.external_ids();
    ASSERT_TRUE(logic_.UpdatePartner(to_other, "user:ada").ok());
    absl::StatusOr<v1::IdentifyPartnerResponse> again =
        logic_.IdentifyPartner(r, "user:ada");
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->created());
    EXPECT_EQ(again->partner().id(), made->partner().id());
    // Put back as it was, for what follows.
    to_other.mutable_partner()->clear_external_ids();
    ASSERT_TRUE(logic_.UpdatePartner(to_other, "user:ada").ok());
    v1::DeletePartnerRequest del;
    del.set_id(other.id());
    ASSERT_TRUE(logic_.DeletePartner(del, "user:admin").ok());
    *away.mutable_partner()->mutable_external_ids() = r.external_ids();
    ASSERT_TRUE(logic_.UpdatePartner(away, "user:ada").ok());
  }
  // The same request id with other content is refused, though its
  // identities find the partner, or find another one.
  {
    v1::IdentifyPartnerRequest changed = r;
    changed.set_display_name("Someone else");
    EXPECT_TRUE(NamesField(logic_.IdentifyPartner(changed, "user:ada").status(),
                           "request_id"));
    changed = r;
    changed.mutable_external_ids(0)->set_id("43");
    EXPECT_TRUE(NamesField(logic_.IdentifyPartner(changed, "user:ada").status(),
                           "request_id"));
    // A bad name is reported once, as the request's own field.
    v1::IdentifyPartnerRequest long_name;
    long_name.set_display_name(std::string(300, 'n'));
    long_name.set_contact_email("long@name.example");
    std::vector<FieldViolation> v =
        FieldViolations(logic_.IdentifyPartner(long_name, "u").status());
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].field, "display_name");
  }
  r.set_request_id("ident-2");
  absl::StatusOr<v1::IdentifyPartnerResponse> found =
      logic_.IdentifyPartner(r, "user:ada");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_FALSE(found->created());
  EXPECT_EQ(found->partner().id(), made->partner().id());
  EXPECT_EQ(db_.Count("SELECT COUNT(*) FROM partners"), 1);
  EXPECT_TRUE(
      NamesField(logic_.IdentifyPartner({}, "u").status(), "external_ids"));
  // Errors name the request's fields, not a partner's.
  v1::IdentifyPartnerRequest bad;
  bad.add_external_ids()->set_source("crm");
  std::vector<FieldViolation> named =
      FieldViolations(logic_.IdentifyPartner(bad, "u").status());
  ASSERT_EQ(named.size(), 1u);
  EXPECT_EQ(named[0].field, "external_ids[0].id");

  // Calls racing to identify one new partner make it once, and each gets it.
  // Returns how many said they created it, and how many partners bear its
  // name.
  auto race = [&](const v1::IdentifyPartnerRequest& r) {
    const std::vector<absl::StatusOr<v1::IdentifyPartnerResponse>> answers =
        testing::AtOnce(4,
                        [&](size_t) { return logic_.IdentifyPartner(r, "u"); });
    int created = 0;
    for (const auto& a : answers) {
      EXPECT_TRUE(a.ok()) << a.status();
      if (!a.ok() || !answers[0].ok()) continue;
      EXPECT_EQ(a->partner().id(), answers[0]->partner().id());
      created += a->created() ? 1 : 0;
    }
    return std::make_pair(
        created, db_.Count(absl::StrCat(
                     "SELECT COUNT(*) FROM partners WHERE display_name = '",
                     r.display_name(), "'")));
  };
  v1::IdentifyPartnerRequest racing;
  racing.set_display_name("Racer");
  racing.add_external_ids()->set_source("crm");
  racing.mutable_external_ids(0)->set_id("race");
  EXPECT_EQ(race(racing), std::make_pair(1, int64_t{1}));

  // The same by a contact email alone, which no key of the database holds
  // unique: a lock on the email does. Several rounds, as one may not race.
  for (int round = 0; round < 10; ++round) {
    v1::IdentifyPartnerRequest by_email;
    by_email.set_display_name(absl::StrCat("Mailer ", round));
    by_email.set_contact_email(absl::StrCat("desk", round, "@mail.example"));
    EXPECT_EQ(race(by_email), std::make_pair(1, int64_t{1}))
        << "round " << round;
  }
  // A plain create is not an identify: it may share a contact email.
  {
    v1::CreatePartnerRequest twin;
    twin.mutable_partner()->set_display_name("Mailer twin");
    twin.mutable_partner()->set_kind(v1::PARTNER_KIND_AGENCY);
    cv1::Contact* desk = twin.mutable_partner()->add_contacts();
    desk->set_name("Desk");
    desk->set_email("desk0@mail.example");
    absl::StatusOr<v1::Partner> shared = logic_.CreatePartner(twin, "u");
    EXPECT_TRUE(shared.ok()) << shared.status();
  }

  // Two partners named: refused, listing both.
  v1::CreatePartnerRequest other;
  other.mutable_partner()->set_display_name("Other");
  other.mutable_partner()->set_kind(v1::PARTNER_KIND_SUPPLIER);
  cv1::Contact* c = other.mutable_partner()->add_contacts();
  c->set_name("Ann");
  c->set_email("ann+deals@other.example");
  absl::StatusOr<v1::Partner> o = logic_.CreatePartner(other, "u");
  ASSERT_TRUE(o.ok()) << o.status();
  r.set_contact_email("ann@other.example");
  absl::Status two = logic_.IdentifyPartner(r, "u").status();
  EXPECT_TRUE(absl::IsFailedPrecondition(two)) << two;
  EXPECT_TRUE(absl::StrContains(two.message(), o->id())) << two;
  EXPECT_TRUE(absl::StrContains(two.message(), made->partner().id())) << two;
}

TEST_F(PartnerLogicTest, DuplicatesShareANameInARegionOrAContactEmail) {
  auto make = [&](const std::string& name, const std::string& region,
                  const std::string& email) {
    v1::CreatePartnerRequest r;
    r.mutable_partner()->set_display_name(name);
    r.mutable_partner()->set_kind(v1::PARTNER_KIND_CHANNEL);
    r.mutable_partner()->set_region(region);
    if (!email.empty()) {
      cv1::Contact* c = r.mutable_partner()->add_contacts();
      c->set_name("x");
      c->set_email(email);
    }
    return logic_.CreatePartner(r, "u")->id();
  };
  const std::string a = make("Acme, Inc.", "EU", "");
  const std::string b = make("ACME", "EU", "");
  make("Acme", "US", "");
  const std::string d = make("Delta", "US", "bob@delta.example");
  const std::string e = make("Delta Two", "EU", "Bob+x@Delta.example");
  absl::StatusOr<v1::FindDuplicatePartnersResponse> groups =
      logic_.FindDuplicates({});
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->groups_size(), 2);
  EXPECT_EQ(groups->groups(0).reason(), "contact_email");
  EXPECT_EQ(std::set<std::string>(groups->groups(0).partner_ids().begin(),
                                  groups->groups(0).partner_ids().end()),
            (std::set<std::string>{d, e}));
  EXPECT_EQ(groups->groups(1).reason(), "name_region");
  EXPECT_EQ(std::set<std::string>(groups->groups(1).partner_ids().begin(),
                                  groups->groups(1).partner_ids().end()),
            (std::set<std::string>{a, b}));
}

// A deal_id names one deal of its partner: a file imported twice (under
// another import id) stores each deal once; a row that says otherwise about
// a stored deal is refused naming deal_id; a registration under a taken
// reference is ALREADY_EXISTS.
TEST_F(PartnerLogicTest, ADealIdNamesOneDealOfItsPartner) {
  const v1::Partner a = Create("Acme");
  const v1::Partner b = Create("Bolt");
  auto row = [&](v1::ImportDealsRequest& file, const std::string& partner,
                 const std::string& deal_id, const std::string& amount) {
    v1::DealRow* r = file.add_rows();
    r->set_row(file.rows_size() + 1);
    r->set_partner_ref(partner);
    r->set_deal_id(deal_id);
    r->set_account("Globex");
    r->set_amount(amount);
    r->set_registered_at(FormatRfc3339Micros(kNow - 30 * kDay));
    r->set_state("won");
    r->set_closed_at(FormatRfc3339Micros(kNow - 20 * kDay));
  };
  // Imported as they are (ImportDealsAsAda would fill in the empty deal_id).
  MysqlPartnerImports imports(&db_.pool(), &ids_,
                              [this] { return absl::FromUnixMicros(now_); },
                              {.currency = "USD"});
  auto import = [&](const v1::ImportDealsRequest& file) {
    return imports.ImportDeals(testing::OneMessage(file), "user:ada");
  };
  v1::ImportDealsRequest first;
  first.set_import_id("first");
  row(first, a.id(), "X-1", "700");
  row(first, b.id(), "X-1", "700");  // another partner's X-1
  absl::StatusOr<v1::ImportDealsResponse> imported = import(first);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 2);

  v1::ImportDealsRequest again = first;
  again.set_import_id("again");
  row(again, a.id(), "X-2", "50");
  row(again, a.id(), "X-2", "50");   // the row before, once more
  row(again, a.id(), "X-1", "701");  // says otherwise about a stored deal
  row(again, a.id(), "X-2", "51");   // ... and about the row before
  row(again, a.id(), "", "5");
  imported = import(again);
  ASSERT_TRUE(imported.ok()) << imported.status();
  EXPECT_EQ(imported->accepted(), 1);    // X-2
  EXPECT_EQ(imported->duplicates(), 3);  // the two of "first", X-2 again
  ASSERT_EQ(imported->rejected_size(), 3);
  std::map<int64_t, std::pair<std::string, std::string>> rejected;
  for (const cv1::RowError& e : imported->rejected()) {
    rejected[e.row()] = {e.field(), e.message()};
  }
  EXPECT_EQ(rejected[6].first, "deal_id");
  EXPECT_TRUE(absl::StrContains(rejected[6].second, "won for 700"))
      << rejected[6].second;
  EXPECT_EQ(rejected[7].first, "deal_id");
  EXPECT_TRUE(absl::StrContains(rejected[7].second, "row 4 of this import"))
      << rejected[7].second;
  EXPECT_EQ(rejected[8].first, "deal_id");
  EXPECT_EQ(
      db_.Count("SELECT COUNT(*) FROM deals WHERE partner_id = ?", {a.id()}),
      2);
  EXPECT_EQ(
      db_.Count("SELECT COUNT(*) FROM deals WHERE partner_id = ?", {b.id()}),
      1);
  // A row that gives the deal of an earlier row refused is refused too, not
  // a duplicate of what was never stored (a suspended partner registers
  // nothing).
  {
    const v1::Partner held = Create("Held");
    for (v1::Lifecycle l : {v1::LIFECYCLE_ONBOARDING, v1::LIFECYCLE_ACTIVE,
                            v1::LIFECYCLE_SUSPENDED}) {
      ASSERT_TRUE(SetLifecycle(held.id(), l).ok());
    }
    v1::ImportDealsRequest twice;
    twice.set_import_id("held");
    for (int i = 0; i < 2; ++i) {
      v1::DealRow* r = twice.add_rows();
      r->set_row(2 + i);
      r->set_partner_ref(held.id());
      r->set_deal_id("H-1");
      r->set_account("Hooli");
      r->set_amount("5");
      r->set_registered_at(FormatRfc3339Micros(kNow - kDay));
      r->set_state("submitted");
    }
    absl::StatusOr<v1::ImportDealsResponse> refused = import(twice);
    ASSERT_TRUE(refused.ok()) << refused.status();
    EXPECT_EQ(refused->accepted(), 0);
    EXPECT_EQ(refused->duplicates(), 0);
    ASSERT_EQ(refused->rejected_size(), 2);
    EXPECT_EQ(refused->rejected(0).field(), "partner_ref");
    EXPECT_EQ(refused->rejected(1).field(), "deal_id");
    EXPECT_TRUE(absl::StrContains(refused->rejected(1).message(),
                                  "row 2 of this import, which was refused"))
        << refused->rejected(1).message();
  }

  // Registered under a reference its partner has: ALREADY_EXISTS naming the
  // deal; another partner's reference, or none, is free.
  v1::RegisterDealRequest r;
  r.mutable_deal()->set_partner_id(a.id());
  r.mutable_deal()->set_reference("X-1");
  r.mutable_deal()->set_account_name("Initech");
  *r.mutable_deal()->mutable_amount() = Usd("10");
  absl::StatusOr<v1::Deal> taken = logic_.RegisterDeal(r, "user:ada");
  EXPECT_TRUE(absl::IsAlreadyExists(taken.status())) << taken.status();
  const std::string stored_x1 = db_.Strings(
      "SELECT id FROM deals WHERE partner_id = ? AND reference = 'X-1'",
      {a.id()})[0];
  EXPECT_TRUE(absl::StrContains(taken.status().message(), stored_x1))
      << taken.status();
  r.mutable_deal()->set_reference("X-3");
  EXPECT_TRUE(logic_.RegisterDeal(r, "user:ada").ok());
  r.mutable_deal()->set_reference("");
  EXPECT_TRUE(logic_.RegisterDeal(r, "user:ada").ok());
  EXPECT_TRUE(logic_.RegisterDeal(r, "user:ada").ok());
}

// A registration that yields to another's claim protects nothing by
// itself: the partner it yields to registers the account again without a
// conflict, and a third partner meets the claim that holds. Approved over
// that claim with force, it holds too.
TEST_F(PartnerLogicTest, OnlyAClaimThatHoldsItsAccountIsMet) {
  const v1::Partner apex = Create("Apex");
  const v1::Partner summit = Create("Summit");
  const v1::Partner sierra = Create("Sierra");
  absl::StatusOr<v1::Deal> first =
      Register(apex.id(), "Initech", "", kNow - 3 * kDay);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<v1::Deal> yields =
      Register(summit.id(), "initech", "", kNow - 2 * kDay);
  ASSERT_TRUE(yields.ok()) << yields.status();
  EXPECT_EQ(yields->conflict_with(), first->id());
  absl::StatusOr<v1::Deal> again =
      Register(apex.id(), "Initech", "", kNow - kDay);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->conflict_with(), "");
  // Approved without force: no other partner's claim holds the account.
  EXPECT_TRUE(Move(again->id(), v1::DEAL_STATE_APPROVED).ok());
  absl::StatusOr<v1::Deal> third = Register(sierra.id(), "Initech", "", kNow);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->conflict_with(), first->id());
  // Imported, a row meets the same claims.
  {
    v1::ImportDealsRequest file;
    file.set_import_id("again");
    v1::DealRow* r = file.add_rows();
    r->set_row(2);
    r->set_partner_ref(apex.id());
    r->set_deal_id("A-3");
    r->set_account("INITECH");
    r->set_amount("5");
    r->set_registered_at(FormatRfc3339Micros(kNow));
    r->set_state("submitted");
    absl::StatusOr<v1::ImportDealsResponse> imported = ImportDealsAsAda(file);
    ASSERT_TRUE(imported.ok()) << imported.status();
    ASSERT_EQ(imported->accepted(), 1);
    EXPECT_EQ(db_.Strings("SELECT COALESCE(conflict_with, '-') FROM deals "
                          "WHERE reference = 'A-3'"),
              std::vector<std::string>{"-"});
  }
  // Summit's approved over Apex's claim with force: it holds as well, and
  // Apex's next registration meets it.
  ASSERT_TRUE(Move(yields->id(), v1::DEAL_STATE_APPROVED, /*force=*/true).ok());
  absl::StatusOr<v1::Deal> after = Register(apex.id(), "Initech", "", kNow);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->conflict_with(), yields->id());
}

}  // namespace
}  // namespace rapport::partner
