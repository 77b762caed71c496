#include "services/financial_community/community_service.h"

#include <utility>

#include "common/differentiation/rpcs.h"
#include "common/reply.h"
#include "common/status.h"

namespace rapport::community {

using auth::Role;

const MethodRoles& CommunityMethodRoles() {
  static const MethodRoles* const kRoles =
      new MethodRoles(v1::FinancialCommunityService::service_full_name(),
                      {
                          // Readers get, list, summarise, target and export.
                          {"GetMember", Role::kReader},
                          {"ListMembers", Role::kReader},
                          {"FindDuplicateMembers", Role::kReader},
                          {"GetRegister", Role::kReader},
                          {"ListPositionHistory", Role::kReader},
                          {"ListPositionChanges", Role::kReader},
                          {"ListEngagements", Role::kReader},
                          {"GetConsensus", Role::kReader},
                          {"GetRefreshJob", Role::kReader},
                          {"GetMemberValue", Role::kReader},
                          {"SummarizeSegments", Role::kReader},
                          {"ExportScores", Role::kReader},
                          {"ListEngagementTargets", Role::kReader},
                          {"ListAtRiskHolders", Role::kReader},
                          // Writers also create, update, record, log, import,
                          // identify and refresh.
                          {"CreateMember", Role::kWriter},
                          {"UpdateMember", Role::kWriter},
                          {"IdentifyMember", Role::kWriter},
                          {"RecordHolding", Role::kWriter},
                          {"ImportHoldings", Role::kWriter},
                          {"LogEngagement", Role::kWriter},
                          {"ImportEngagements", Role::kWriter},
                          {"RecordCoverage", Role::kWriter},
                          {"ImportCoverage", Role::kWriter},
                          {"RefreshScores", Role::kWriter},
                          // Admins also delete (with force: with the member's
                          // history) and read the audit log.
                          {"DeleteMember", Role::kAdmin},
                          {"ListAuditEvents", Role::kAdmin},
                      });
  return *kRoles;
}

grpc::Status CommunityServiceImpl::CreateMember(
    grpc::ServerContext* context, const v1::CreateMemberRequest* request,
    v1::CreateMemberResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "CreateMember");
  return Reply(logic_->CreateMember(*request, caller.subject),
               [&](auto r) { *response->mutable_member() = std::move(r); });
}

grpc::Status CommunityServiceImpl::GetMember(
    grpc::ServerContext* context, const v1::GetMemberRequest* request,
    v1::GetMemberResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetMember");
  (void)caller;
  return Reply(logic_->GetMember(*request),
               [&](auto r) { *response->mutable_member() = std::move(r); });
}

grpc::Status CommunityServiceImpl::ListMembers(
    grpc::ServerContext* context, const v1::ListMembersRequest* request,
    v1::ListMembersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListMembers");
  (void)caller;
  return ReplyWith(logic_->ListMembers(*request), response);
}

grpc::Status CommunityServiceImpl::UpdateMember(
    grpc::ServerContext* context, const v1::UpdateMemberRequest* request,
    v1::UpdateMemberResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "UpdateMember");
  return Reply(logic_->UpdateMember(*request, caller.subject),
               [&](auto r) { *response->mutable_member() = std::move(r); });
}

grpc::Status CommunityServiceImpl::DeleteMember(
    grpc::ServerContext* context, const v1::DeleteMemberRequest* request,
    v1::DeleteMemberResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "DeleteMember",
                    request->force());
  (void)response;
  return ToGrpcStatus(logic_->DeleteMember(*request, caller.subject));
}

grpc::Status CommunityServiceImpl::IdentifyMember(
    grpc::ServerContext* context, const v1::IdentifyMemberRequest* request,
    v1::IdentifyMemberResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "IdentifyMember");
  return ReplyWith(logic_->IdentifyMember(*request, caller.subject), response);
}

grpc::Status CommunityServiceImpl::FindDuplicateMembers(
    grpc::ServerContext* context,
    const v1::FindDuplicateMembersRequest* request,
    v1::FindDuplicateMembersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "FindDuplicateMembers");
  (void)caller;
  return ReplyWith(logic_->FindDuplicates(*request), response);
}

grpc::Status CommunityServiceImpl::RecordHolding(
    grpc::ServerContext* context, const v1::RecordHoldingRequest* request,
    v1::RecordHoldingResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RecordHolding");
  return Reply(logic_->RecordHolding(*request, caller.subject),
               [&](auto r) { *response->mutable_holding() = std::move(r); });
}

grpc::Status CommunityServiceImpl::ImportHoldings(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportHoldingsRequest>* reader,
    v1::ImportHoldingsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportHoldings");
  return ReplyWith(imports_->ImportHoldings(MessagesOf(reader), caller.subject,
                                            CancelledOf(context)),
                   response);
}

grpc::Status CommunityServiceImpl::GetRegister(
    grpc::ServerContext* context, const v1::GetRegisterRequest* request,
    v1::GetRegisterResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetRegister");
  (void)caller;
  return ReplyWith(logic_->GetRegister(*request), response);
}

grpc::Status CommunityServiceImpl::ListPositionHistory(
    grpc::ServerContext* context, const v1::ListPositionHistoryRequest* request,
    v1::ListPositionHistoryResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListPositionHistory");
  (void)caller;
  return ReplyWith(logic_->ListPositionHistory(*request), response);
}

grpc::Status CommunityServiceImpl::ListPositionChanges(
    grpc::ServerContext* context, const v1::ListPositionChangesRequest* request,
    v1::ListPositionChangesResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListPositionChanges");
  (void)caller;
  return ReplyWith(logic_->ListPositionChanges(*request), response);
}

grpc::Status CommunityServiceImpl::LogEngagement(
    grpc::ServerContext* context, const v1::LogEngagementRequest* request,
    v1::LogEngagementResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "LogEngagement");
  return ReplyWith(logic_->LogEngagement(*request, caller.subject), response);
}

grpc::Status CommunityServiceImpl::ListEngagements(
    grpc::ServerContext* context, const v1::ListEngagementsRequest* request,
    v1::ListEngagementsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListEngagements");
  (void)caller;
  return ReplyWith(logic_->ListEngagements(*request), response);
}

grpc::Status CommunityServiceImpl::ImportEngagements(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportEngagementsRequest>* reader,
    v1::ImportEngagementsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportEngagements");
  return ReplyWith(
      imports_->ImportEngagements(MessagesOf(reader), caller.subject,
                                  CancelledOf(context)),
      response);
}

grpc::Status CommunityServiceImpl::RecordCoverage(
    grpc::ServerContext* context, const v1::RecordCoverageRequest* request,
    v1::RecordCoverageResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RecordCoverage");
  return Reply(logic_->RecordCoverage(*request, caller.subject),
               [&](auto r) { *response->mutable_coverage() = std::move(r); });
}

grpc::Status CommunityServiceImpl::ImportCoverage(
    grpc::ServerContext* context,
    grpc::ServerReader<v1::ImportCoverageRequest>* reader,
    v1::ImportCoverageResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ImportCoverage");
  return ReplyWith(imports_->ImportCoverage(MessagesOf(reader), caller.subject,
                                            CancelledOf(context)),
                   response);
}

grpc::Status CommunityServiceImpl::GetConsensus(
    grpc::ServerContext* context, const v1::GetConsensusRequest* request,
    v1::GetConsensusResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetConsensus");
  (void)caller;
  return ReplyWith(logic_->GetConsensus(*request), response);
}

grpc::Status CommunityServiceImpl::RefreshScores(
    grpc::ServerContext* context, const v1::RefreshScoresRequest* request,
    v1::RefreshScoresResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "RefreshScores");
  return differentiation::rpcs::RefreshScores(*values_, *request,
                                              caller.subject, response);
}

grpc::Status CommunityServiceImpl::GetRefreshJob(
    grpc::ServerContext* context, const v1::GetRefreshJobRequest* request,
    v1::GetRefreshJobResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetRefreshJob");
  (void)caller;
  return differentiation::rpcs::GetRefreshJob(*values_, request->id(),
                                              response);
}

grpc::Status CommunityServiceImpl::GetMemberValue(
    grpc::ServerContext* context, const v1::GetMemberValueRequest* request,
    v1::GetMemberValueResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "GetMemberValue");
  (void)caller;
  return differentiation::rpcs::GetValue(*values_, request->id(), response);
}

grpc::Status CommunityServiceImpl::SummarizeSegments(
    grpc::ServerContext* context, const v1::SummarizeSegmentsRequest* request,
    v1::SummarizeSegmentsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "SummarizeSegments");
  (void)caller;
  return differentiation::rpcs::SummarizeSegments(*values_, response);
}

grpc::Status CommunityServiceImpl::ExportScores(
    grpc::ServerContext* context, const v1::ExportScoresRequest* request,
    grpc::ServerWriter<v1::ExportScoresResponse>* writer) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ExportScores");
  return differentiation::rpcs::ExportScores(
      *values_, request->external_id_source(), context, writer);
}

grpc::Status CommunityServiceImpl::ListEngagementTargets(
    grpc::ServerContext* context,
    const v1::ListEngagementTargetsRequest* request,
    v1::ListEngagementTargetsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListEngagementTargets");
  (void)caller;
  return ReplyWith(logic_->ListEngagementTargets(*request), response);
}

grpc::Status CommunityServiceImpl::ListAtRiskHolders(
    grpc::ServerContext* context, const v1::ListAtRiskHoldersRequest* request,
    v1::ListAtRiskHoldersResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListAtRiskHolders");
  (void)caller;
  return ReplyWith(logic_->ListAtRiskHolders(*request), response);
}

grpc::Status CommunityServiceImpl::ListAuditEvents(
    grpc::ServerContext* context, const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  RAPPORT_AUTHORIZE(caller, *guard_, *context, "ListAuditEvents");
  (void)caller;
  return ReplyWith(
      audit::ListEvents<v1::ListAuditEventsResponse>(*request, audit_),
      response);
}

}  // namespace rapport::community
