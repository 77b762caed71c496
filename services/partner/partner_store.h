// What the partner service keeps, and the storage interface its logic uses
// (MysqlPartnerStore implements it). Every change is written with its audit
// event in one transaction, but for orders and interactions, whose rows name
// who recorded them (recorded_by); a write under a request id keeps the
// fingerprint of what it said, so that a retry returns the first answer.
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_STORE_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/audit/audit.h"
#include "common/base/decimal.h"
#include "common/paging.h"
#include "common/records/records.h"
#include "common/requests.h"

namespace rapport::partner {

using ExternalKey = ::rapport::ExternalKey;
using ContactRecord = ::rapport::ContactInfo;

struct PartnerRecord {
  std::string id;
  std::string display_name;
  int kind = 0;       // rapport.partner.v1.PartnerKind
  int lifecycle = 0;  // rapport.partner.v1.Lifecycle
  std::string region;
  std::vector<ContactRecord> contacts;
  std::vector<ExternalKey> external_ids;
  std::map<std::string, std::string> attributes;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 0;
  std::string created_by;  // the subject of the token that created it
  // In a listing by value: the stored value it was sorted by (the next
  // page's cursor).
  int listed_value_hundredths = 0;
  friend bool operator==(const PartnerRecord&, const PartnerRecord&) = default;
};

struct ProgramTermsRecord {
  int tier = 0;  // rapport.common.v1.Tier; 0: the default terms
  Decimal commission_percent;
};

struct ProgramRecord {
  std::string id;
  std::string name;
  std::vector<ProgramTermsRecord> terms;  // by tier
  int64_t create_time_us = 0;
  int basis = 1;  // v1::ProgramBasis: commission
};

struct AgreementRecord {
  std::string id;
  std::string partner_id;
  std::string program_id;
  int64_t start_time_us = 0;
  std::optional<int64_t> end_time_us;
  int state = 0;  // rapport.partner.v1.AgreementState
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 0;
  friend bool operator==(const AgreementRecord&,
                         const AgreementRecord&) = default;
};

struct DealRecord {
  std::string id;
  std::string partner_id;
  std::string reference;
  std::string account_name;
  std::string account_domain;
  std::string domain_key;  // AccountDomainKey of the domain; "" when unknown
  std::string name_key;    // FirmNameKey of the name
  Decimal amount;
  int64_t register_time_us = 0;
  std::optional<int64_t> expected_close_time_us;
  std::optional<int64_t> close_time_us;
  int state = 0;  // rapport.partner.v1.DealState
  std::string conflict_with;
  bool approved_in_conflict = false;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 0;
  std::string recorded_by;
  // Read by UpdateDeal only (for a submitted deal), not stored: a claim of
  // another partner that an admin approved over this one with force, still
  // approved or won ("" when none).
  std::string approved_over_by;
  friend bool operator==(const DealRecord&, const DealRecord&) = default;
};

struct OrderRecord {
  std::string id;
  std::string partner_id;
  int64_t order_time_us = 0;
  Decimal amount;
  std::string description;
  int64_t create_time_us = 0;
  std::string recorded_by;
};

struct FundRecord {
  std::string id;
  std::string partner_id;
  std::string activity;
  Decimal requested_amount;
  int state = 0;  // rapport.partner.v1.FundRequestState
  std::optional<Decimal> claimed_amount;
  std::optional<int64_t> claim_time_us;
  std::optional<int64_t> paid_time_us;
  int64_t create_time_us = 0;
  int64_t update_time_us = 0;
  int64_t version = 0;
  std::string requested_by;  // the token subjects of RequestFunds and of the
  std::string claimed_by;    // claim; '' when stored before they were kept
  friend bool operator==(const FundRecord&, const FundRecord&) = default;
};

struct InteractionRecord {
  std::string id;
  std::string partner_id;
  int channel = 0;  // rapport.common.v1.Channel
  std::string kind;
  int64_t interaction_time_us = 0;
  Decimal cost;
  std::string note;
  std::string recorded_by;
};

// A deal in conflict with the earlier registration it names.
struct DealConflictRecord {
  DealRecord earlier;
  DealRecord later;
};

// What a scorecard counts besides the stored values, over all time.
struct PartnerTotals {
  int64_t deals_won = 0;
  int64_t deals_lost = 0;
  Decimal volume;      // won deals and orders
  Decimal funds_paid;  // paid fund claims
};

struct PartnerFilter {
  int kind = 0;       // 0: any
  int lifecycle = 0;  // 0: any
  int tier = 0;       // 0: any (stored values)
  std::string segment;
  bool by_value = false;  // order by stored value, highest first
};

// Where a list page starts: after the row with this key (empty: from the
// start); by value, after (value, id).
using PageCursor = ListCursor;  // common/requests.h

struct DuplicateGroupRecord {
  std::string reason;  // "name_region" or "contact_email"
  std::string key;
  std::vector<std::string> partner_ids;
};

// A check a change must pass, given the stored row; its error is the call's.
template <typename Record>
using Check = std::function<absl::Status(const Record& stored)>;
// A change to a stored row (it may refuse with an error).
template <typename Record>
using Mutation = std::function<absl::Status(Record& row)>;

class PartnerStore {
 public:
  virtual ~PartnerStore() = default;

  // Partners. A create under a request id that is stored already returns the
  // stored partner when `fingerprint` matches, else ALREADY_EXISTS naming
  // the request id; an external id held by another partner is
  // ALREADY_EXISTS naming it. With `identify_email_key` (an identify by
  // contact email creating the partner), a partner with a contact of that
  // key is ALREADY_EXISTS, checked and created under a lock on the key (see
  // CreateClaimingEmail).
  virtual absl::StatusOr<PartnerRecord> CreatePartner(
      const PartnerRecord& partner, const std::string& fingerprint,
      const audit::Event& event, const std::string& identify_email_key) = 0;
  // The partner with its children, read in one snapshot.
  virtual absl::StatusOr<PartnerRecord> GetPartner(const std::string& id) = 0;
  // Whether partner `id` exists (one statement, for checks).
  virtual absl::StatusOr<bool> PartnerExists(const std::string& id) = 0;
  // The fingerprint the create of partner `id` stored, if it exists.
  virtual absl::StatusOr<std::optional<std::string>> PartnerFingerprint(
      const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<PartnerRecord>> ListPartners(
      const PartnerFilter& filter, const PageCursor& after, int limit) = 0;
  // Applies `mutate` to the stored partner (locked) and stores the result;
  // when `mutate` changes nothing, nothing is written or audited. Ending it
  // expires its open deals, and other partners' submitted deals in conflict
  // with them meet the next claim within `window_us` (as UpdateDeal's).
  virtual absl::StatusOr<PartnerRecord> UpdatePartner(
      const std::string& id, const Mutation<PartnerRecord>& mutate,
      const audit::Event& event, int64_t window_us) = 0;
  // Without `force`, a partner with deals, orders, fund requests or
  // interactions is FAILED_PRECONDITION; with it they go too, and the deals
  // of other partners in conflict with its registrations are freed, or,
  // while submitted, name the next claim that holds their account (as
  // OpenClaimBefore finds it, within `window_us`).
  virtual absl::Status DeletePartner(const std::string& id, bool force,
                                     int64_t window_us,
                                     const Check<PartnerRecord>& check,
                                     const audit::Event& event) = 0;
  // The ids of the partners holding any of the external ids, or a contact
  // with the email key.
  virtual absl::StatusOr<std::vector<std::string>> FindPartners(
      const std::vector<ExternalKey>& external_ids,
      const std::string& email_key) = 0;
  // Groups of likely duplicates, after the group with key `after`.
  virtual absl::StatusOr<std::vector<DuplicateGroupRecord>> FindDuplicates(
      const std::string& after, int limit) = 0;

  // Programs and agreements.
  virtual absl::StatusOr<ProgramRecord> CreateProgram(
      const ProgramRecord& program, const std::string& fingerprint,
      const audit::Event& event) = 0;
  virtual absl::StatusOr<ProgramRecord> GetProgram(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<ProgramRecord>> ListPrograms(
      const std::string& after, int limit) = 0;
  virtual absl::StatusOr<AgreementRecord> CreateAgreement(
      const AgreementRecord& agreement, const std::string& fingerprint,
      const audit::Event& event) = 0;
  virtual absl::StatusOr<AgreementRecord> GetAgreement(
      const std::string& id) = 0;
  // `state`, when given, is the state at `now_us` (an active agreement whose
  // period ended by then is expired).
  virtual absl::StatusOr<std::vector<AgreementRecord>> ListAgreements(
      const std::string& partner_id, const std::string& program_id, int state,
      const std::string& after, int limit, int64_t now_us) = 0;
  // A second active agreement of a partner in a program is ALREADY_EXISTS
  // naming the active one; one whose period ended is expired (audited under
  // its own name), and the new one becomes active.
  virtual absl::StatusOr<AgreementRecord> UpdateAgreement(
      const std::string& id, const Mutation<AgreementRecord>& mutate,
      const audit::Event& event) = 0;

  // Deals. A registration is stored with `conflict_with` set to the earliest
  // open registration (submitted or approved) of another partner with the
  // same domain key (when it has one) or name key, registered within
  // `window_us` before it.
  virtual absl::StatusOr<DealRecord> RegisterDeal(
      const DealRecord& deal, const std::string& fingerprint, int64_t window_us,
      const audit::Event& event) = 0;
  virtual absl::StatusOr<DealRecord> GetDeal(const std::string& id) = 0;
  // The claim `deal` would be in conflict with now: the earliest open
  // registration of another partner that RegisterDeal would have named, of
  // those stored before `deal` (won since included); "" when there is none.
  virtual absl::StatusOr<std::string> OpenClaimBefore(const DealRecord& deal,
                                                      int64_t window_us) = 0;
  virtual absl::StatusOr<std::vector<DealRecord>> ListDeals(
      const std::string& partner_id, int state, const std::string& after,
      int limit) = 0;
  // A deal rejected, lost or expired protects nothing: other partners'
  // submitted deals in conflict with it name the next claim that holds their
  // account (OpenClaimBefore's, within `window_us`), each audited. The row
  // handed to `mutate` carries approved_over_by (committed claims only).
  virtual absl::StatusOr<DealRecord> UpdateDeal(
      const std::string& id, const Mutation<DealRecord>& mutate,
      const audit::Event& event, int64_t window_us) = 0;
  // Deals in conflict (later id order), after the later deal `after`; with
  // `undecided_only`, those whose later deal is still submitted.
  virtual absl::StatusOr<std::vector<DealConflictRecord>> ListConflicts(
      const std::string& after, int limit, bool undecided_only) = 0;

  // Orders, fund requests, interactions.
  virtual absl::StatusOr<OrderRecord> RecordOrder(
      const OrderRecord& order, const std::string& fingerprint) = 0;
  // A partner's orders in time order (then id), after `after`.
  virtual absl::StatusOr<std::vector<OrderRecord>> ListOrders(
      const std::string& partner_id, const TimeCursor& after, int limit) = 0;
  virtual absl::StatusOr<FundRecord> RequestFunds(
      const FundRecord& fund, const std::string& fingerprint,
      const audit::Event& event) = 0;
  virtual absl::StatusOr<FundRecord> GetFundRequest(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<FundRecord>> ListFundRequests(
      const std::string& partner_id, int state, const std::string& after,
      int limit) = 0;
  virtual absl::StatusOr<FundRecord> UpdateFundRequest(
      const std::string& id, const Mutation<FundRecord>& mutate,
      const audit::Event& event) = 0;
  // Stores the interaction and, when it was forced past the tier's contact
  // policy, `forced` with it (not again for a replay). `admit` says whether
  // a new interaction may be stored (the tier's contact policy); a replay
  // of a stored one is answered without asking it.
  virtual absl::StatusOr<InteractionRecord> LogInteraction(
      const InteractionRecord& interaction, const std::string& fingerprint,
      const std::optional<audit::Event>& forced,
      const std::function<absl::Status()>& admit) = 0;
  // A partner's interactions in time order (then id), after `after`.
  virtual absl::StatusOr<std::vector<InteractionRecord>> ListInteractions(
      const std::string& partner_id, const TimeCursor& after, int limit) = 0;

  // For scorecards.
  virtual absl::StatusOr<PartnerTotals> TotalsOf(const std::string& id) = 0;
};

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_STORE_H_
