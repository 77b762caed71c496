// The gRPC adapter of the partner service: checks each call's caller
// (CallGuard, with the roles table below), hands the request to the logic,
// and converts the answer. The differentiation RPCs are the kit's
// (common/differentiation/rpcs.h).
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_SERVICE_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_SERVICE_H_

#include "common/audit/audit_rpcs.h"
#include "common/call_guard.h"
#include "common/differentiation/differentiation.h"
#include "rapport/partner/v1/partner_service.grpc.pb.h"
#include "services/partner/partner_import.h"
#include "services/partner/partner_logic.h"

namespace rapport::partner {

// The least role of every RPC (readers read, writers change, admins delete,
// force and read the audit log); a test checks that it names them all.
const MethodRoles& PartnerMethodRoles();

class PartnerServiceImpl final : public v1::PartnerService::Service {
 public:
  // None is owned; `audit` lists the service's audit log.
  PartnerServiceImpl(const CallGuard* guard, PartnerLogic* logic,
                     MysqlPartnerImports* imports,
                     differentiation::Differentiation* values,
                     audit::Lister audit)
      : guard_(guard),
        logic_(logic),
        imports_(imports),
        values_(values),
        audit_(std::move(audit)) {}

  grpc::Status CreatePartner(grpc::ServerContext* context,
                             const v1::CreatePartnerRequest* request,
                             v1::CreatePartnerResponse* response) override;
  grpc::Status GetPartner(grpc::ServerContext* context,
                          const v1::GetPartnerRequest* request,
                          v1::GetPartnerResponse* response) override;
  grpc::Status ListPartners(grpc::ServerContext* context,
                            const v1::ListPartnersRequest* request,
                            v1::ListPartnersResponse* response) override;
  grpc::Status UpdatePartner(grpc::ServerContext* context,
                             const v1::UpdatePartnerRequest* request,
                             v1::UpdatePartnerResponse* response) override;
  grpc::Status DeletePartner(grpc::ServerContext* context,
                             const v1::DeletePartnerRequest* request,
                             v1::DeletePartnerResponse* response) override;
  grpc::Status IdentifyPartner(grpc::ServerContext* context,
                               const v1::IdentifyPartnerRequest* request,
                               v1::IdentifyPartnerResponse* response) override;
  grpc::Status FindDuplicatePartners(
      grpc::ServerContext* context,
      const v1::FindDuplicatePartnersRequest* request,
      v1::FindDuplicatePartnersResponse* response) override;
  grpc::Status CreateProgram(grpc::ServerContext* context,
                             const v1::CreateProgramRequest* request,
                             v1::CreateProgramResponse* response) override;
  grpc::Status GetProgram(grpc::ServerContext* context,
                          const v1::GetProgramRequest* request,
                          v1::GetProgramResponse* response) override;
  grpc::Status ListPrograms(grpc::ServerContext* context,
                            const v1::ListProgramsRequest* request,
                            v1::ListProgramsResponse* response) override;
  grpc::Status CreateAgreement(grpc::ServerContext* context,
                               const v1::CreateAgreementRequest* request,
                               v1::CreateAgreementResponse* response) override;
  grpc::Status GetAgreement(grpc::ServerContext* context,
                            const v1::GetAgreementRequest* request,
                            v1::GetAgreementResponse* response) override;
  grpc::Status ListAgreements(grpc::ServerContext* context,
                              const v1::ListAgreementsRequest* request,
                              v1::ListAgreementsResponse* response) override;
  grpc::Status TransitionAgreement(
      grpc::ServerContext* context,
      const v1::TransitionAgreementRequest* request,
      v1::TransitionAgreementResponse* response) override;
  grpc::Status RegisterDeal(grpc::ServerContext* context,
                            const v1::RegisterDealRequest* request,
                            v1::RegisterDealResponse* response) override;
  grpc::Status GetDeal(grpc::ServerContext* context,
                       const v1::GetDealRequest* request,
                       v1::GetDealResponse* response) override;
  grpc::Status ListDeals(grpc::ServerContext* context,
                         const v1::ListDealsRequest* request,
                         v1::ListDealsResponse* response) override;
  grpc::Status TransitionDeal(grpc::ServerContext* context,
                              const v1::TransitionDealRequest* request,
                              v1::TransitionDealResponse* response) override;
  grpc::Status ListDealConflicts(
      grpc::ServerContext* context, const v1::ListDealConflictsRequest* request,
      v1::ListDealConflictsResponse* response) override;
  grpc::Status ImportDeals(grpc::ServerContext* context,
                           grpc::ServerReader<v1::ImportDealsRequest>* reader,
                           v1::ImportDealsResponse* response) override;
  grpc::Status RecordOrder(grpc::ServerContext* context,
                           const v1::RecordOrderRequest* request,
                           v1::RecordOrderResponse* response) override;
  grpc::Status ListOrders(grpc::ServerContext* context,
                          const v1::ListOrdersRequest* request,
                          v1::ListOrdersResponse* response) override;
  grpc::Status ImportOrders(grpc::ServerContext* context,
                            grpc::ServerReader<v1::ImportOrdersRequest>* reader,
                            v1::ImportOrdersResponse* response) override;
  grpc::Status RequestFunds(grpc::ServerContext* context,
                            const v1::RequestFundsRequest* request,
                            v1::RequestFundsResponse* response) override;
  grpc::Status GetFundRequest(grpc::ServerContext* context,
                              const v1::GetFundRequestRequest* request,
                              v1::GetFundRequestResponse* response) override;
  grpc::Status ListFundRequests(
      grpc::ServerContext* context, const v1::ListFundRequestsRequest* request,
      v1::ListFundRequestsResponse* response) override;
  grpc::Status TransitionFundRequest(
      grpc::ServerContext* context,
      const v1::TransitionFundRequestRequest* request,
      v1::TransitionFundRequestResponse* response) override;
  grpc::Status LogInteraction(grpc::ServerContext* context,
                              const v1::LogInteractionRequest* request,
                              v1::LogInteractionResponse* response) override;
  grpc::Status ListInteractions(
      grpc::ServerContext* context, const v1::ListInteractionsRequest* request,
      v1::ListInteractionsResponse* response) override;
  grpc::Status ImportInteractions(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportInteractionsRequest>* reader,
      v1::ImportInteractionsResponse* response) override;
  grpc::Status RefreshScores(grpc::ServerContext* context,
                             const v1::RefreshScoresRequest* request,
                             v1::RefreshScoresResponse* response) override;
  grpc::Status GetRefreshJob(grpc::ServerContext* context,
                             const v1::GetRefreshJobRequest* request,
                             v1::GetRefreshJobResponse* response) override;
  grpc::Status GetPartnerValue(grpc::ServerContext* context,
                               const v1::GetPartnerValueRequest* request,
                               v1::GetPartnerValueResponse* response) override;
  grpc::Status GetPartnerScorecard(
      grpc::ServerContext* context,
      const v1::GetPartnerScorecardRequest* request,
      v1::GetPartnerScorecardResponse* response) override;
  grpc::Status SummarizeSegments(
      grpc::ServerContext* context, const v1::SummarizeSegmentsRequest* request,
      v1::SummarizeSegmentsResponse* response) override;
  grpc::Status ExportScores(
      grpc::ServerContext* context, const v1::ExportScoresRequest* request,
      grpc::ServerWriter<v1::ExportScoresResponse>* writer) override;
  grpc::Status ListAuditEvents(grpc::ServerContext* context,
                               const v1::ListAuditEventsRequest* request,
                               v1::ListAuditEventsResponse* response) override;

 private:
  const CallGuard* guard_;
  PartnerLogic* logic_;
  MysqlPartnerImports* imports_;
  differentiation::Differentiation* values_;
  audit::Lister audit_;
};

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_SERVICE_H_
