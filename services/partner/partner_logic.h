// The partner service's rules: requests checked field by field (errors name
// every wrong field), ids made (from request ids for retries), lifecycles
// enforced, deal conflicts found, and answers built with each partner's
// stored values. No gRPC here: the adapter (partner_service) calls it with
// the caller's subject as the actor of every change.
//
//   PartnerLogic logic(&store, &ids, [] { return absl::Now(); },
//                      {.currency = "USD"}, &values);
//   absl::StatusOr<v1::Partner> p = logic.CreatePartner(request, "user:ada");
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_LOGIC_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_LOGIC_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/differentiation/contact_policy.h"
#include "common/differentiation/differentiation.h"
#include "common/ids.h"
#include "rapport/partner/v1/partner_service.pb.h"
#include "services/partner/partner_store.h"

namespace rapport::partner {

struct PartnerLogicOptions {
  // ISO 4217 code of the deployment's reporting currency; every amount is in
  // it.
  std::string currency = "USD";
  // Region assumed for contacts' phone numbers given without "+".
  std::string phone_region = "US";
  // How long an open registration protects its account from other
  // partners' registrations.
  absl::Duration protection_window = absl::Hours(24 * 90);
};

class PartnerLogic {
 public:
  using Clock = std::function<absl::Time()>;

  // `values` may be null (no differentiation: no values with partners, no
  // re-scores, no policy checks, no scorecards).
  PartnerLogic(PartnerStore* store, IdGenerator* ids, Clock clock,
               PartnerLogicOptions options,
               differentiation::Differentiation* values);

  // Partners.
  absl::StatusOr<v1::Partner> CreatePartner(
      const v1::CreatePartnerRequest& request, const std::string& actor);
  absl::StatusOr<v1::Partner> GetPartner(const v1::GetPartnerRequest& request);
  absl::StatusOr<v1::ListPartnersResponse> ListPartners(
      const v1::ListPartnersRequest& request);
  absl::StatusOr<v1::Partner> UpdatePartner(
      const v1::UpdatePartnerRequest& request, const std::string& actor);
  absl::Status DeletePartner(const v1::DeletePartnerRequest& request,
                             const std::string& actor);
  absl::StatusOr<v1::IdentifyPartnerResponse> IdentifyPartner(
      const v1::IdentifyPartnerRequest& request, const std::string& actor);
  absl::StatusOr<v1::FindDuplicatePartnersResponse> FindDuplicates(
      const v1::FindDuplicatePartnersRequest& request);

  // Programs and agreements.
  absl::StatusOr<v1::Program> CreateProgram(
      const v1::CreateProgramRequest& request, const std::string& actor);
  absl::StatusOr<v1::Program> GetProgram(const v1::GetProgramRequest& request);
  absl::StatusOr<v1::ListProgramsResponse> ListPrograms(
      const v1::ListProgramsRequest& request);
  absl::StatusOr<v1::Agreement> CreateAgreement(
      const v1::CreateAgreementRequest& request, const std::string& actor);
  absl::StatusOr<v1::Agreement> GetAgreement(
      const v1::GetAgreementRequest& request);
  absl::StatusOr<v1::ListAgreementsResponse> ListAgreements(
      const v1::ListAgreementsRequest& request);
  absl::StatusOr<v1::Agreement> TransitionAgreement(
      const v1::TransitionAgreementRequest& request, const std::string& actor);

  // Deals. Approving a deal in conflict needs `force`, which the adapter
  // lets only admins use.
  absl::StatusOr<v1::Deal> RegisterDeal(const v1::RegisterDealRequest& request,
                                        const std::string& actor);
  absl::StatusOr<v1::Deal> GetDeal(const v1::GetDealRequest& request);
  absl::StatusOr<v1::ListDealsResponse> ListDeals(
      const v1::ListDealsRequest& request);
  absl::StatusOr<v1::Deal> TransitionDeal(
      const v1::TransitionDealRequest& request, const std::string& actor);
  absl::StatusOr<v1::ListDealConflictsResponse> ListDealConflicts(
      const v1::ListDealConflictsRequest& request);

  // Orders, funds, interactions.
  absl::StatusOr<v1::Order> RecordOrder(const v1::RecordOrderRequest& request,
                                        const std::string& actor);
  absl::StatusOr<v1::ListOrdersResponse> ListOrders(
      const v1::ListOrdersRequest& request);
  absl::StatusOr<v1::FundRequest> RequestFunds(
      const v1::RequestFundsRequest& request, const std::string& actor);
  absl::StatusOr<v1::FundRequest> GetFundRequest(
      const v1::GetFundRequestRequest& request);
  absl::StatusOr<v1::ListFundRequestsResponse> ListFundRequests(
      const v1::ListFundRequestsRequest& request);
  absl::StatusOr<v1::FundRequest> TransitionFundRequest(
      const v1::TransitionFundRequestRequest& request,
      const std::string& actor);
  absl::StatusOr<v1::Interaction> LogInteraction(
      const v1::LogInteractionRequest& request, const std::string& actor);
  absl::StatusOr<v1::ListInteractionsResponse> ListInteractions(
      const v1::ListInteractionsRequest& request);

  // Differentiation beyond the kit's RPCs.
  absl::StatusOr<v1::PartnerScorecard> Scorecard(const std::string& id);

  const PartnerLogicOptions& options() const { return options_; }

 private:
  int64_t NowMicros() const;
  // CreatePartner (audited as `rpc`, CreatePartner or IdentifyPartner); with
  // `identify_email_key`, unless a partner has a contact
  // with that key (ALREADY_EXISTS), see PartnerStore::CreatePartner.
  absl::StatusOr<v1::Partner> Create(const v1::CreatePartnerRequest& request,
                                     const std::string& actor,
                                     const std::string& identify_email_key,
                                     absl::string_view rpc);
  // The create IdentifyPartner makes when its identities name none, and
  // making it (display_name required then).
  static v1::CreatePartnerRequest IdentifiedCreate(
      const v1::IdentifyPartnerRequest& request, const std::string& email);
  absl::StatusOr<v1::Partner> CreateIdentified(
      const v1::CreatePartnerRequest& create, const std::string& email,
      const std::string& actor);
  audit::Event Change(const std::string& actor, const std::string& rpc,
                      const std::string& resource,
                      const std::string& request_id,
                      const std::string& details = "") const;
  // The proto of a partner with its stored values.
  absl::StatusOr<v1::Partner> WithValue(const PartnerRecord& record);
  // The answer to a write that is stored already: with its stored values
  // when they can be read, without them otherwise (a failed read must not
  // turn a write that succeeded into an error).
  v1::Partner Written(const PartnerRecord& record);
  // Scores the partner again after activity, in the background (never the
  // call's error: the activity stands).
  void Rescore(const std::string& partner_id);
  absl::Status CheckPartnerExists(const std::string& id,
                                  const std::string& field);

  PartnerStore* const store_;
  IdGenerator* const ids_;
  const Clock clock_;
  const PartnerLogicOptions options_;
  differentiation::Differentiation* const values_;
};

// A partner's etag: its version, as text.
std::string PartnerEtag(int64_t version);

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_LOGIC_H_
