// The financial-community service's rules: requests checked field by field
// (errors name every wrong field), ids made (from request ids for retries),
// the register, its changes and the consensus worked out from stored rows,
// targets and at-risk holders ranked by docs/TARGETING.md, and answers built
// with each member's stored values. No gRPC here: the adapter
// (community_service) calls it with the caller's subject as the actor.
//
//   CommunityLogic logic(&store, &ids, [] { return absl::Now(); },
//                        {.currency = "USD"}, &values);
//   absl::StatusOr<v1::Member> m = logic.CreateMember(request, "user:ada");
#ifndef RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_LOGIC_H_
#define RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_LOGIC_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/differentiation/differentiation.h"
#include "common/ids.h"
#include "rapport/financial_community/v1/financial_community_service.pb.h"
#include "services/financial_community/community_store.h"

namespace rapport::community {

namespace v1 = ::rapport::financial_community::v1;

struct CommunityLogicOptions {
  // ISO 4217 code of the deployment's reporting currency; every amount and
  // price is in it.
  std::string currency = "USD";
  // Region assumed for contacts' phone numbers given without "+".
  std::string phone_region = "US";
};

class CommunityLogic {
 public:
  using Clock = std::function<absl::Time()>;

  // `values` may be null (no differentiation: no values with members, no
  // re-scores).
  CommunityLogic(CommunityStore* store, IdGenerator* ids, Clock clock,
                 CommunityLogicOptions options,
                 differentiation::Differentiation* values);

  // Members.
  absl::StatusOr<v1::Member> CreateMember(
      const v1::CreateMemberRequest& request, const std::string& actor);
  absl::StatusOr<v1::Member> GetMember(const v1::GetMemberRequest& request);
  absl::StatusOr<v1::ListMembersResponse> ListMembers(
      const v1::ListMembersRequest& request);
  absl::StatusOr<v1::Member> UpdateMember(
      const v1::UpdateMemberRequest& request, const std::string& actor);
  absl::Status DeleteMember(const v1::DeleteMemberRequest& request,
                            const std::string& actor);
  absl::StatusOr<v1::IdentifyMemberResponse> IdentifyMember(
      const v1::IdentifyMemberRequest& request, const std::string& actor);
  absl::StatusOr<v1::FindDuplicateMembersResponse> FindDuplicates(
      const v1::FindDuplicateMembersRequest& request);

  // Register.
  absl::StatusOr<v1::Holding> RecordHolding(
      const v1::RecordHoldingRequest& request, const std::string& actor);
  absl::StatusOr<v1::GetRegisterResponse> GetRegister(
      const v1::GetRegisterRequest& request);
  absl::StatusOr<v1::ListPositionHistoryResponse> ListPositionHistory(
      const v1::ListPositionHistoryRequest& request);
  absl::StatusOr<v1::ListPositionChangesResponse> ListPositionChanges(
      const v1::ListPositionChangesRequest& request);

  // Engagements and coverage.
  absl::StatusOr<v1::LogEngagementResponse> LogEngagement(
      const v1::LogEngagementRequest& request, const std::string& actor);
  absl::StatusOr<v1::ListEngagementsResponse> ListEngagements(
      const v1::ListEngagementsRequest& request);
  absl::StatusOr<v1::Coverage> RecordCoverage(
      const v1::RecordCoverageRequest& request, const std::string& actor);
  absl::StatusOr<v1::GetConsensusResponse> GetConsensus(
      const v1::GetConsensusRequest& request);

  // Targeting and early warning (docs/TARGETING.md).
  absl::StatusOr<v1::ListEngagementTargetsResponse> ListEngagementTargets(
      const v1::ListEngagementTargetsRequest& request);
  absl::StatusOr<v1::ListAtRiskHoldersResponse> ListAtRiskHolders(
      const v1::ListAtRiskHoldersRequest& request);

 private:
  // CreateMember (audited as `rpc`, CreateMember or IdentifyMember); with
  // `identify_email_key`, unless a member has a contact
  // with that key (ALREADY_EXISTS), see CommunityStore::CreateMember.
  absl::StatusOr<v1::Member> Create(const v1::CreateMemberRequest& request,
                                    const std::string& actor,
                                    const std::string& identify_email_key,
                                    absl::string_view rpc);
  // The create IdentifyMember makes when its identities name none, and
  // making it (display_name required then).
  static v1::CreateMemberRequest IdentifiedCreate(
      const v1::IdentifyMemberRequest& request, const std::string& email);
  absl::StatusOr<v1::Member> CreateIdentified(
      const v1::CreateMemberRequest& create, const std::string& email,
      const std::string& actor);
  int64_t NowMicros() const;
  audit::Event Change(const std::string& actor, const std::string& rpc,
                      const std::string& resource,
                      const std::string& request_id,
                      const std::string& details = "") const;
  // The proto of a member with its stored values.
  absl::StatusOr<v1::Member> WithValue(const MemberRecord& r);
  // The answer to a write that is stored already: with its stored values
  // when they can be read, without them otherwise (a failed read must not
  // turn a write that succeeded into an error).
  v1::Member Written(const MemberRecord& r);
  absl::Status CheckMemberExists(const std::string& id,
                                 const std::string& field);
  void Rescore(const std::vector<std::string>& member_ids);
  // A date given, else today (UTC), as the last microsecond of its day.
  absl::StatusOr<int64_t> DateOrToday(const google::type::Date& date,
                                      absl::string_view field) const;
  // The time `t` points to, else (null: the field is not set) now.
  absl::StatusOr<int64_t> TimeOrNow(const google::protobuf::Timestamp* t,
                                    absl::string_view field) const;

  CommunityStore* const store_;
  IdGenerator* const ids_;
  const Clock clock_;
  const CommunityLogicOptions options_;
  differentiation::Differentiation* const values_;
};

}  // namespace rapport::community

#endif  // RAPPORT_SERVICES_FINANCIAL_COMMUNITY_COMMUNITY_LOGIC_H_
