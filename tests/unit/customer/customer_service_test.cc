// The customer service's table of who may call what names every RPC of the
// service, so that a new RPC cannot be added unguarded (the e2e test
// tests/e2e/platform/auth_e2e_test.cc checks that each method enforces it).
#include "services/customer/customer_service.h"

#include <gtest/gtest.h>

namespace rapport::customer {
namespace {

TEST(CustomerMethodRoles, NamesEveryRpcOfTheServiceAndNothingElse) {
  absl::Status check = CustomerMethodRoles().Check();
  EXPECT_TRUE(check.ok()) << check;
}

TEST(CustomerMethodRoles, ReadersReadWritersWriteAdminsEraseMergeAndDelete) {
  const MethodRoles& roles = CustomerMethodRoles();
  EXPECT_EQ(roles.Of("GetCustomer"), auth::Role::kReader);
  EXPECT_EQ(roles.Of("ExportScores"), auth::Role::kReader);
  EXPECT_EQ(roles.Of("RecordPurchase"), auth::Role::kWriter);
  EXPECT_EQ(roles.Of("RefreshScores"), auth::Role::kWriter);
  EXPECT_EQ(roles.Of("EraseCustomer"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("MergeCustomers"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("DeleteCustomer"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("ListAuditEvents"), auth::Role::kAdmin);
  EXPECT_EQ(roles.Of("NoSuchMethod"), auth::Role::kNone);
  // A table that misses a method, or names one that does not exist, fails
  // the check.
  MethodRoles partial(v1::CustomerService::service_full_name(),
                      {{"GetCustomer", auth::Role::kReader},
                       {"Teleport", auth::Role::kReader}});
  absl::Status check = partial.Check();
  EXPECT_TRUE(absl::IsFailedPrecondition(check));
  EXPECT_NE(check.message().find("EraseCustomer"), std::string::npos) << check;
  EXPECT_NE(check.message().find("Teleport"), std::string::npos) << check;
}

}  // namespace
}  // namespace rapport::customer
