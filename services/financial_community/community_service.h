// The gRPC adapter of the financial-community service: checks each call's
// caller (CallGuard, with the roles table below), hands the request to the
// logic, and converts the answer. The differentiation RPCs are the kit's
// (common/differentiation/rpcs.h).
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_SERVICE_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_SERVICE_H_

#include "common/audit/audit_rpcs.h"
#include "common/call_guard.h"
#include "common/differentiation/differentiation.h"
#include "rapport/financial_community/v1/financial_community_service.grpc.pb.h"
#include "services/financial_community/community_import.h"
#include "services/financial_community/community_logic.h"

namespace rapport::community {

// The least role of every RPC (readers read, writers change, admins delete
// and read the audit log); a test checks that it names them all.
const MethodRoles& CommunityMethodRoles();

class CommunityServiceImpl final
    : public v1::FinancialCommunityService::Service {
 public:
  // None is owned; `audit` lists the service's audit log.
  CommunityServiceImpl(const CallGuard* guard, CommunityLogic* logic,
                       MysqlCommunityImports* imports,
                       differentiation::Differentiation* values,
                       audit::Lister audit)
      : guard_(guard),
        logic_(logic),
        imports_(imports),
        values_(values),
        audit_(std::move(audit)) {}

  grpc::Status CreateMember(grpc::ServerContext* context,
                            const v1::CreateMemberRequest* request,
                            v1::CreateMemberResponse* response) override;
  grpc::Status GetMember(grpc::ServerContext* context,
                         const v1::GetMemberRequest* request,
                         v1::GetMemberResponse* response) override;
  grpc::Status ListMembers(grpc::ServerContext* context,
                           const v1::ListMembersRequest* request,
                           v1::ListMembersResponse* response) override;
  grpc::Status UpdateMember(grpc::ServerContext* context,
                            const v1::UpdateMemberRequest* request,
                            v1::UpdateMemberResponse* response) override;
  grpc::Status DeleteMember(grpc::ServerContext* context,
                            const v1::DeleteMemberRequest* request,
                            v1::DeleteMemberResponse* response) override;
  grpc::Status IdentifyMember(grpc::ServerContext* context,
                              const v1::IdentifyMemberRequest* request,
                              v1::IdentifyMemberResponse* response) override;
  grpc::Status FindDuplicateMembers(
      grpc::ServerContext* context,
      const v1::FindDuplicateMembersRequest* request,
      v1::FindDuplicateMembersResponse* response) override;
  grpc::Status RecordHolding(grpc::ServerContext* context,
                             const v1::RecordHoldingRequest* request,
                             v1::RecordHoldingResponse* response) override;
  grpc::Status ImportHoldings(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportHoldingsRequest>* reader,
      v1::ImportHoldingsResponse* response) override;
  grpc::Status GetRegister(grpc::ServerContext* context,
                           const v1::GetRegisterRequest* request,
                           v1::GetRegisterResponse* response) override;
  grpc::Status ListPositionHistory(
      grpc::ServerContext* context,
      const v1::ListPositionHistoryRequest* request,
      v1::ListPositionHistoryResponse* response) override;
  grpc::Status ListPositionChanges(
      grpc::ServerContext* context,
      const v1::ListPositionChangesRequest* request,
      v1::ListPositionChangesResponse* response) override;
  grpc::Status LogEngagement(grpc::ServerContext* context,
                             const v1::LogEngagementRequest* request,
                             v1::LogEngagementResponse* response) override;
  grpc::Status ListEngagements(grpc::ServerContext* context,
                               const v1::ListEngagementsRequest* request,
                               v1::ListEngagementsResponse* response) override;
  grpc::Status ImportEngagements(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportEngagementsRequest>* reader,
      v1::ImportEngagementsResponse* response) override;
  grpc::Status RecordCoverage(grpc::ServerContext* context,
                              const v1::RecordCoverageRequest* request,
                              v1::RecordCoverageResponse* response) override;
  grpc::Status ImportCoverage(
      grpc::ServerContext* context,
      grpc::ServerReader<v1::ImportCoverageRequest>* reader,
      v1::ImportCoverageResponse* response) override;
  grpc::Status GetConsensus(grpc::ServerContext* context,
                            const v1::GetConsensusRequest* request,
                            v1::GetConsensusResponse* response) override;
  grpc::Status RefreshScores(grpc::ServerContext* context,
                             const v1::RefreshScoresRequest* request,
                             v1::RefreshScoresResponse* response) override;
  grpc::Status GetRefreshJob(grpc::ServerContext* context,
                             const v1::GetRefreshJobRequest* request,
                             v1::GetRefreshJobResponse* response) override;
  grpc::Status GetMemberValue(grpc::ServerContext* context,
                              const v1::GetMemberValueRequest* request,
                              v1::GetMemberValueResponse* response) override;
  grpc::Status SummarizeSegments(
      grpc::ServerContext* context, const v1::SummarizeSegmentsRequest* request,
      v1::SummarizeSegmentsResponse* response) override;
  grpc::Status ExportScores(
      grpc::ServerContext* context, const v1::ExportScoresRequest* request,
      grpc::ServerWriter<v1::ExportScoresResponse>* writer) override;
  grpc::Status ListEngagementTargets(
      grpc::ServerContext* context,
      const v1::ListEngagementTargetsRequest* request,
      v1::ListEngagementTargetsResponse* response) override;
  grpc::Status ListAtRiskHolders(
      grpc::ServerContext* context, const v1::ListAtRiskHoldersRequest* request,
      v1::ListAtRiskHoldersResponse* response) override;
  grpc::Status ListAuditEvents(grpc::ServerContext* context,
                               const v1::ListAuditEventsRequest* request,
                               v1::ListAuditEventsResponse* response) override;

 private:
  const CallGuard* const guard_;
  CommunityLogic* const logic_;
  MysqlCommunityImports* const imports_;
  differentiation::Differentiation* const values_;
  const audit::Lister audit_;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_SERVICE_H_
