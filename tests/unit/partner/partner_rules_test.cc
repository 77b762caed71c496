// The partner service's rules without storage: state moves, account keys
// for deal conflicts, commission percentages, and the enums' names.
#include "services/partner/partner_rules.h"

#include <gtest/gtest.h>

#include "common/identity.h"

namespace rapport::partner {
namespace {

TEST(PartnerRules, LifecycleMovesAlongItsPathOnly) {
  EXPECT_TRUE(
      LifecycleMayMove(v1::LIFECYCLE_PROSPECT, v1::LIFECYCLE_ONBOARDING));
  EXPECT_TRUE(LifecycleMayMove(v1::LIFECYCLE_ONBOARDING, v1::LIFECYCLE_ACTIVE));
  EXPECT_TRUE(LifecycleMayMove(v1::LIFECYCLE_ACTIVE, v1::LIFECYCLE_SUSPENDED));
  EXPECT_TRUE(LifecycleMayMove(v1::LIFECYCLE_SUSPENDED, v1::LIFECYCLE_ACTIVE));
  EXPECT_TRUE(LifecycleMayMove(v1::LIFECYCLE_PROSPECT, v1::LIFECYCLE_ENDED));
  EXPECT_FALSE(LifecycleMayMove(v1::LIFECYCLE_PROSPECT, v1::LIFECYCLE_ACTIVE));
  EXPECT_FALSE(LifecycleMayMove(v1::LIFECYCLE_ENDED, v1::LIFECYCLE_ACTIVE));
  EXPECT_FALSE(LifecycleMayMove(v1::LIFECYCLE_ACTIVE, v1::LIFECYCLE_ACTIVE));
  EXPECT_FALSE(
      LifecycleMayMove(v1::LIFECYCLE_ACTIVE, v1::LIFECYCLE_UNSPECIFIED));
}

TEST(PartnerRules, DealsAgreementsAndFundsMoveAlongTheirStates) {
  EXPECT_TRUE(DealMayMove(v1::DEAL_STATE_SUBMITTED, v1::DEAL_STATE_APPROVED));
  EXPECT_TRUE(DealMayMove(v1::DEAL_STATE_APPROVED, v1::DEAL_STATE_WON));
  EXPECT_FALSE(DealMayMove(v1::DEAL_STATE_SUBMITTED, v1::DEAL_STATE_WON));
  EXPECT_FALSE(DealMayMove(v1::DEAL_STATE_WON, v1::DEAL_STATE_LOST));
  EXPECT_TRUE(DealIsOpen(v1::DEAL_STATE_APPROVED));
  EXPECT_FALSE(DealIsOpen(v1::DEAL_STATE_REJECTED));
  EXPECT_TRUE(
      AgreementMayMove(v1::AGREEMENT_STATE_DRAFT, v1::AGREEMENT_STATE_ACTIVE));
  EXPECT_FALSE(AgreementMayMove(v1::AGREEMENT_STATE_EXPIRED,
                                v1::AGREEMENT_STATE_ACTIVE));
  EXPECT_TRUE(
      FundMayMove(v1::FUND_REQUEST_STATE_CLAIMED, v1::FUND_REQUEST_STATE_PAID));
  EXPECT_FALSE(FundMayMove(v1::FUND_REQUEST_STATE_REQUESTED,
                           v1::FUND_REQUEST_STATE_PAID));
}

TEST(PartnerRules, AccountsMatchOnNormalisedDomainsAndNames) {
  EXPECT_EQ(AccountDomainKey("https://WWW.Example.com/path?q=1"),
            "example.com");
  EXPECT_EQ(AccountDomainKey("example.com."), "example.com");
  EXPECT_EQ(AccountDomainKey("sales@example.com"), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com:8443"), "example.com");
  EXPECT_EQ(AccountDomainKey("   "), "");
  // Taken as far as it goes, so that the key of a key is itself (found by
  // tests/fuzz/fields_fuzz.cc).
  EXPECT_EQ(AccountDomainKey("www.www.example.com"), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com.."), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com ?q"), "example.com");
  EXPECT_EQ(FirmNameKey("ACME, Inc."), "acme");
  EXPECT_EQ(FirmNameKey("Acme Corporation"), "acme");
  EXPECT_EQ(FirmNameKey("Müller GmbH & Co. KG"), "müller");
  EXPECT_EQ(FirmNameKey("O'Neil Trading"), "oneil trading");
  EXPECT_EQ(FirmNameKey("Co"), "co");  // a name that is only a form stays
  EXPECT_EQ(FirmNameKey("!!!"), "");
}

TEST(PartnerRules, PercentagesAreExactWithFourDecimalsAtMost) {
  EXPECT_EQ(ParsePercent("12.5", "f")->ToString(),
            Decimal::Parse("12.5")->ToString());
  EXPECT_TRUE(ParsePercent("0", "f").ok());
  EXPECT_TRUE(ParsePercent("100", "f").ok());
  EXPECT_TRUE(ParsePercent("99.9999", "f").ok());
  EXPECT_FALSE(ParsePercent("99.99999", "f").ok());
  EXPECT_FALSE(ParsePercent("100.01", "f").ok());
  EXPECT_FALSE(ParsePercent("-1", "f").ok());
  EXPECT_FALSE(ParsePercent("ten", "f").ok());
}

TEST(PartnerRules, EnumNamesRoundTrip) {
  EXPECT_EQ(KindName(v1::PARTNER_KIND_INTERMEDIARY), "intermediary");
  EXPECT_EQ(ParseKind("distributor"), v1::PARTNER_KIND_DISTRIBUTOR);
  EXPECT_FALSE(ParseKind("unspecified").has_value());
  EXPECT_FALSE(ParseKind("").has_value());
  EXPECT_EQ(ParseDealState("won"), v1::DEAL_STATE_WON);
  EXPECT_EQ(FundStateName(v1::FUND_REQUEST_STATE_CLAIM_REJECTED),
            "claim_rejected");
  EXPECT_EQ(ParseFundState("claim_rejected"),
            v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_EQ(LifecycleName(v1::LIFECYCLE_ONBOARDING), "onboarding");
  EXPECT_EQ(ParseAgreementState("terminated"), v1::AGREEMENT_STATE_TERMINATED);
}

}  // namespace
}  // namespace rapport::partner
