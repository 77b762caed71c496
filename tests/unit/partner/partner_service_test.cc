// The partner service's table of who may call what names every RPC of the
// service (a new RPC cannot be added unguarded) with the least role the
// issue gives it.
#include "services/partner/partner_service.h"

#include <gtest/gtest.h>

namespace rapport::partner {
namespace {

TEST(PartnerMethodRoles, NamesEveryRpcOfTheServiceAndNothingElse) {
  absl::Status check = PartnerMethodRoles().Check();
  EXPECT_TRUE(check.ok()) << check;
}

TEST(PartnerMethodRoles, ReadersReadWritersWriteAdminsDeleteAndAudit) {
  const MethodRoles& roles = PartnerMethodRoles();
  for (const char* m : {"GetPartner", "ListPartners", "ListDealConflicts",
                        "GetPartnerScorecard", "ExportScores",
                        "SummarizeSegments", "ListOrders"}) {
    EXPECT_EQ(roles.Of(m), auth::Role::kReader) << m;
  }
  for (const char* m : {"CreatePartner", "RegisterDeal", "TransitionDeal",
                        "ImportDeals", "RecordOrder", "RequestFunds",
                        "LogInteraction", "RefreshScores", "IdentifyPartner"}) {
    EXPECT_EQ(roles.Of(m), auth::Role::kWriter) << m;
  }
  EXPECT_EQ(roles.Of("DeletePartner"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("ListAuditEvents"), auth::Role::kAdmin);
}

}  // namespace
}  // namespace rapport::partner
