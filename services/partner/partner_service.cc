#include "services/partner/partner_service.h"

#include <utility>

#include "common/differentiation/rpcs.h"
#include "common/reply.h"
#include "common/status.h"

namespace rapport::partner {

using auth::Role;

const MethodRoles& PartnerMethodRoles() {
  static const MethodRoles* const kRoles = new MethodRoles(
      v1::PartnerService::service_full_name(),
      {
          // Readers get, list, summarise and export.
          {"GetPartner", Role::kReader},
          {"ListPartners", Role::kReader},
          {"FindDuplicatePartners", Role::kReader},
          {"GetProgram", Role::kReader},
          {"ListPrograms", Role::kReader},
          {"GetAgreement", Role::kReader},
          {"ListAgreements", Role::kReader},
          {"GetDeal", Role::kReader},
          {"ListDeals", Role::kReader},
          {"ListDealConflicts", Role::kReader},
          {"ListOrders", Role::kReader},
          {"GetFundRequest", Role::kReader},
          {"ListFundRequests", Role::kReader},
          {"ListInteractions", Role::kReader},
          {"GetRefreshJob", Role::kReader},
          {"GetPartnerValue", Role::kReader},
          {"GetPartnerScorecard", Role::kReader},
          {"SummarizeSegments", Role::kReader},
          {"ExportScores", Role::kReader},
          // Writers also create, update, register, record, import, log,
          // identify and refresh.
          {"CreatePartner", Role::kWriter},
          {"UpdatePartner", Role::kWriter},
          {"IdentifyPartner", Role::kWriter},
          {"CreateProgram", Role::kWriter},
          {"CreateAgreement", Role::kWriter},
          {"TransitionAgreement", Role::kWriter},
          {"RegisterDeal", Role::kWriter},
          {"TransitionDeal", Role::kWriter},  // with force: admin
          {"ImportDeals", Role::kWriter},
          {"RecordOrder", Role::kWriter},
          {"ImportOrders", Role::kWriter},
          {"RequestFunds", Role::kWriter},
          {"TransitionFundRequest", Role::kWriter},  // with force: admin
          {"LogInteraction", Role::kWriter},         // with force: admin
          {"ImportInteractions", Role::kWriter},     // with force: admin
          {"RefreshScores", Role::kWriter},
          // Admins also delete, read the audit log, and use force.
          {"DeletePartner", Role::kAdmin},
          {"ListAuditEvents", Role::kAdmin},
      });
  return *kRoles;
}

grpc::Status PartnerServiceImpl::CreatePartner(
    grpc::ServerContext* context, const v1::CreatePartnerRequest* request,
    v1::CreatePartnerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "CreatePartner");
  return Reply(logic_->CreatePartner(*request, caller.subject),
               [&](auto r) { *response->mutable_partner() = std::move(r); });
}

grpc::Status PartnerServiceImpl::GetPartner(
    grpc::ServerContext* context, const v1::GetPartnerRequest* request,
    v1::GetPartnerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetPartner");
  (void)caller;
  return Reply(logic_->GetPartner(*request),
               [&](auto r) { *response->mutable_partner() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListPartners(
    grpc::ServerContext* context, const v1::ListPartnersRequest* request,
    v1::ListPartnersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListPartners");
  (void)caller;
  return ReplyWith(logic_->ListPartners(*request), response);
}

grpc::Status PartnerServiceImpl::UpdatePartner(
    grpc::ServerContext* context, const v1::UpdatePartnerRequest* request,
    v1::UpdatePartnerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "UpdatePartner");
  return Reply(logic_->UpdatePartner(*request, caller.subject),
               [&](auto r) { *response->mutable_partner() = std::move(r); });
}

grpc::Status PartnerServiceImpl::DeletePartner(
    grpc::ServerContext* context, const v1::DeletePartnerRequest* request,
    v1::DeletePartnerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "DeletePartner",
                    request->force());
  return ToGrpcStatus(logic_->DeletePartner(*request, caller.subject));
}

grpc::Status PartnerServiceImpl::IdentifyPartner(
    grpc::ServerContext* context, const v1::IdentifyPartnerRequest* request,
    v1::IdentifyPartnerResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "IdentifyPartner");
  return ReplyWith(logic_->IdentifyPartner(*request, caller.subject), response);
}

grpc::Status PartnerServiceImpl::FindDuplicatePartners(
    grpc::ServerContext* context,
    const v1::FindDuplicatePartnersRequest* request,
    v1::FindDuplicatePartnersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "FindDuplicatePartners");
  (void)caller;
  return ReplyWith(logic_->FindDuplicates(*request), response);
}

grpc::Status PartnerServiceImpl::CreateProgram(
    grpc::ServerContext* context, const v1::CreateProgramRequest* request,
    v1::CreateProgramResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "CreateProgram");
  return Reply(logic_->CreateProgram(*request, caller.subject),
               [&](auto r) { *response->mutable_program() = std::move(r); });
}

grpc::Status PartnerServiceImpl::GetProgram(
    grpc::ServerContext* context, const v1::GetProgramRequest* request,
    v1::GetProgramResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetProgram");
  (void)caller;
  return Reply(logic_->GetProgram(*request),
               [&](auto r) { *response->mutable_program() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListPrograms(
    grpc::ServerContext* context, const v1::ListProgramsRequest* request,
    v1::ListProgramsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListPrograms");
  (void)caller;
  return ReplyWith(logic_->ListPrograms(*request), response);
}

grpc::Status PartnerServiceImpl::CreateAgreement(
    grpc::ServerContext* context, const v1::CreateAgreementRequest* request,
    v1::CreateAgreementResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "CreateAgreement");
  return Reply(logic_->CreateAgreement(*request, caller.subject),
               [&](auto r) { *response->mutable_agreement() = std::move(r); });
}

grpc::Status PartnerServiceImpl::GetAgreement(
    grpc::ServerContext* context, const v1::GetAgreementRequest* request,
    v1::GetAgreementResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetAgreement");
  (void)caller;
  return Reply(logic_->GetAgreement(*request),
               [&](auto r) { *response->mutable_agreement() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListAgreements(
    grpc::ServerContext* context, const v1::ListAgreementsRequest* request,
    v1::ListAgreementsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListAgreements");
  (void)caller;
  return ReplyWith(logic_->ListAgreements(*request), response);
}

grpc::Status PartnerServiceImpl::TransitionAgreement(
    grpc::ServerContext* context, const v1::TransitionAgreementRequest* request,
    v1::TransitionAgreementResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "TransitionAgreement");
  return Reply(logic_->TransitionAgreement(*request, caller.subject),
               [&](auto r) { *response->mutable_agreement() = std::move(r); });
}

grpc::Status PartnerServiceImpl::RegisterDeal(
    grpc::ServerContext* context, const v1::RegisterDealRequest* request,
    v1::RegisterDealResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RegisterDeal");
  return Reply(logic_->RegisterDeal(*request, caller.subject),
               [&](auto r) { *response->mutable_deal() = std::move(r); });
}

grpc::Status PartnerServiceImpl::GetDeal(grpc::ServerContext* context,
                                         const v1::GetDealRequest* request,
                                         v1::GetDealResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetDeal");
  (void)caller;
  return Reply(logic_->GetDeal(*request),
               [&](auto r) { *response->mutable_deal() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListDeals(grpc::ServerContext* context,
                                           const v1::ListDealsRequest* request,
                                           v1::ListDealsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListDeals");
  (void)caller;
  return ReplyWith(logic_->ListDeals(*request), response);
}

grpc::Status PartnerServiceImpl::TransitionDeal(
    grpc::ServerContext* context, const v1::TransitionDealRequest* request,
    v1::TransitionDealResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "TransitionDeal",
                    request->force());
  return Reply(logic_->TransitionDeal(*request, caller.subject),
               [&](auto r) { *response->mutable_deal() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListDealConflicts(
    grpc::ServerContext* context, const v1::ListDealConflictsRequest* request,
    v1::ListDealConflictsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListDealConflicts");
  (void)caller;
  return ReplyWith(logic_->ListDealConflicts(*request), response);
}

grpc::Status PartnerServiceImpl::ImportDeals(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportDealsRequest>* reader,
    v1::ImportDealsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportDeals");
  return ReplyWith(imports_->ImportDeals(MessagesOf(reader), caller.subject,
                                         CancelledOf(context)),
                   response);
}

grpc::Status PartnerServiceImpl::RecordOrder(
    grpc::ServerContext* context, const v1::RecordOrderRequest* request,
    v1::RecordOrderResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RecordOrder");
  return Reply(logic_->RecordOrder(*request, caller.subject),
               [&](auto r) { *response->mutable_order() = std::move(r); });
}

grpc::Status PartnerServiceImpl::ListOrders(
    grpc::ServerContext* context, const v1::ListOrdersRequest* request,
    v1::ListOrdersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListOrders");
  (void)caller;
  return ReplyWith(logic_->ListOrders(*request), response);
}

grpc::Status PartnerServiceImpl::ImportOrders(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportOrdersRequest>* reader,
    v1::ImportOrdersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportOrders");
  return ReplyWith(imports_->ImportOrders(MessagesOf(reader), caller.subject,
                                          CancelledOf(context)),
                   response);
}

grpc::Status PartnerServiceImpl::RequestFunds(
    grpc::ServerContext* context, const v1::RequestFundsRequest* request,
    v1::RequestFundsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RequestFunds");
  return Reply(logic_->RequestFunds(*request, caller.subject), [&](auto r) {
    *response->mutable_fund_request() = std::move(r);
  });
}

grpc::Status PartnerServiceImpl::GetFundRequest(
    grpc::ServerContext* context, const v1::GetFundRequestRequest* request,
    v1::GetFundRequestResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetFundRequest");
  (void)caller;
  return Reply(logic_->GetFundRequest(*request), [&](auto r) {
    *response->mutable_fund_request() = std::move(r);
  });
}

grpc::Status PartnerServiceImpl::ListFundRequests(
    grpc::ServerContext* context, const v1::ListFundRequestsRequest* request,
    v1::ListFundRequestsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListFundRequests");
  (void)caller;
  return ReplyWith(logic_->ListFundRequests(*request), response);
}

grpc::Status PartnerServiceImpl::TransitionFundRequest(
    grpc::ServerContext* context,
    const v1::TransitionFundRequestRequest* request,
    v1::TransitionFundRequestResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "TransitionFundRequest",
                    request->force());
  return Reply(
      logic_->TransitionFundRequest(*request, caller.subject),
      [&](auto r) { *response->mutable_fund_request() = std::move(r); });
}

grpc::Status PartnerServiceImpl::LogInteraction(
    grpc::ServerContext* context, const v1::LogInteractionRequest* request,
    v1::LogInteractionResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "LogInteraction",
                    request->force());
  return Reply(logic_->LogInteraction(*request, caller.subject), [&](auto r) {
    *response->mutable_interaction() = std::move(r);
  });
}

grpc::Status PartnerServiceImpl::ListInteractions(
    grpc::ServerContext* context, const v1::ListInteractionsRequest* request,
    v1::ListInteractionsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListInteractions");
  (void)caller;
  return ReplyWith(logic_->ListInteractions(*request), response);
}

grpc::Status PartnerServiceImpl::ImportInteractions(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportInteractionsRequest>* reader,
    v1::ImportInteractionsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportInteractions");
  bool force = false;
  absl::StatusOr<std::function<bool(v1::ImportInteractionsRequest*)>> messages =
      ForceableMessages(*guard_, *context, "ImportInteractions", reader,
                        &force);
  if (!messages.ok()) return ToGrpcStatus(messages.status());
  return ReplyWith(imports_->ImportInteractions(*messages, caller.subject,
                                                CancelledOf(context), force),
                   response);
}

grpc::Status PartnerServiceImpl::RefreshScores(
    grpc::ServerContext* context, const v1::RefreshScoresRequest* request,
    v1::RefreshScoresResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RefreshScores");
  return differentiation::rpcs::RefreshScores(*values_, *request,
                                              caller.subject, response);
}

grpc::Status PartnerServiceImpl::GetRefreshJob(
    grpc::ServerContext* context, const v1::GetRefreshJobRequest* request,
    v1::GetRefreshJobResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetRefreshJob");
  (void)caller;
  return differentiation::rpcs::GetRefreshJob(*values_, request->id(),
                                              response);
}

grpc::Status PartnerServiceImpl::GetPartnerValue(
    grpc::ServerContext* context, const v1::GetPartnerValueRequest* request,
    v1::GetPartnerValueResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetPartnerValue");
  (void)caller;
  return differentiation::rpcs::GetValue(*values_, request->id(), response);
}

grpc::Status PartnerServiceImpl::GetPartnerScorecard(
    grpc::ServerContext* context, const v1::GetPartnerScorecardRequest* request,
    v1::GetPartnerScorecardResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetPartnerScorecard");
  (void)caller;
  return Reply(logic_->Scorecard(request->id()),
               [&](auto r) { *response->mutable_scorecard() = std::move(r); });
}

grpc::Status PartnerServiceImpl::SummarizeSegments(
    grpc::ServerContext* context, const v1::SummarizeSegmentsRequest* request,
    v1::SummarizeSegmentsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "SummarizeSegments");
  (void)caller;
  return differentiation::rpcs::SummarizeSegments(*values_, response);
}

grpc::Status PartnerServiceImpl::ExportScores(
    grpc::ServerContext* context, const v1::ExportScoresRequest* request,
    grpc::ServerWriter<v1::ExportScoresResponse>* writer) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ExportScores");
  return differentiation::rpcs::ExportScores(
      *values_, request->external_id_source(), context, writer);
}

grpc::Status PartnerServiceImpl::ListAuditEvents(
    grpc::ServerContext* context, const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListAuditEvents");
  (void)caller;
  return ReplyWith(
      audit::ListEvents<v1::ListAuditEventsResponse>(*request, audit_),
      response);
}

}  // namespace rapport::partner
