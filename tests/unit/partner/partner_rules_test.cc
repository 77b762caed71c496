// The partner service's rules without storage: state moves, account keys
// for deal conflicts, commission percentages, and the enums' names.
#include "services/partner/partner_rules.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/identity.h"
#include "tests/support/names_field.h"

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
  // "rejected" rejects what waits for a decision: the request, or its claim.
  EXPECT_EQ(FundTarget(v1::FUND_REQUEST_STATE_REQUESTED,
                       v1::FUND_REQUEST_STATE_REJECTED),
            v1::FUND_REQUEST_STATE_REJECTED);
  EXPECT_EQ(FundTarget(v1::FUND_REQUEST_STATE_CLAIMED,
                       v1::FUND_REQUEST_STATE_REJECTED),
            v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_EQ(FundTarget(v1::FUND_REQUEST_STATE_CLAIM_REJECTED,
                       v1::FUND_REQUEST_STATE_REJECTED),
            v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_EQ(FundTarget(v1::FUND_REQUEST_STATE_APPROVED,
                       v1::FUND_REQUEST_STATE_REJECTED),
            v1::FUND_REQUEST_STATE_REJECTED);  // refused by FundMayMove
  EXPECT_EQ(
      FundTarget(v1::FUND_REQUEST_STATE_CLAIMED, v1::FUND_REQUEST_STATE_PAID),
      v1::FUND_REQUEST_STATE_PAID);
}

TEST(PartnerRules, AccountsMatchOnNormalisedDomainsAndNames) {
  EXPECT_EQ(AccountDomainKey("https://WWW.Example.com/path?q=1"),
            "example.com");
  EXPECT_EQ(AccountDomainKey("example.com."), "example.com");
  EXPECT_EQ(AccountDomainKey("sales@example.com"), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com:8443"), "example.com");
  EXPECT_EQ(AccountDomainKey("https://ann:secret@example.com:8443/x"),
            "example.com");
  EXPECT_EQ(AccountDomainKey("   "), "");
  // An '@' after the host belongs to the path or query, not to the account.
  EXPECT_EQ(AccountDomainKey("https://example.com/contact?to=sales@other.org"),
            "example.com");
  EXPECT_EQ(AccountDomainKey("blog.example/@globex"), "blog.example");
  EXPECT_EQ(AccountDomainKey("example.com#a@b"), "example.com");
  // Taken as far as it goes, so that the key of a key is itself (found by
  // tests/fuzz/fields_fuzz.cc).
  EXPECT_EQ(AccountDomainKey("www.www.example.com"), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com.."), "example.com");
  EXPECT_EQ(AccountDomainKey("example.com ?q"), "example.com");
  // A domain given that names none is refused (it could never match); none
  // given is no domain.
  EXPECT_EQ(*CheckedAccountDomainKey("Example.com", "d"), "example.com");
  EXPECT_EQ(*CheckedAccountDomainKey("", "d"), "");
  for (const char* nothing : {"http://", "www.", "https://www./", "@"}) {
    absl::Status s = CheckedAccountDomainKey(nothing, "d").status();
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << nothing;
    EXPECT_TRUE(absl::StrContains(s.message(), "names no domain")) << s;
  }
  EXPECT_EQ(FirmNameKey("ACME, Inc."), "acme");
  EXPECT_EQ(FirmNameKey("Acme Corporation"), "acme");
  EXPECT_EQ(FirmNameKey("Müller GmbH & Co. KG"), "müller");
  EXPECT_EQ(FirmNameKey("O'Neil Trading"), "oneil trading");
  EXPECT_EQ(FirmNameKey("Co"), "co");  // a name that is only a form stays
  EXPECT_EQ(FirmNameKey("!!!"), "");
}

// Past ASCII, names are case-folded and normalised, so that one firm spelt
// in capitals, with decomposed accents, with full-width letters or with a
// typographic apostrophe has the key of its plain spelling.
TEST(FirmNameKey, NamesPastAsciiFoldCaseAndNormalise) {
  const std::string societe =
      FirmNameKey("Soci\u00e9t\u00e9 G\u00e9n\u00e9rale SA");
  EXPECT_EQ(societe, "soci\u00e9t\u00e9 g\u00e9n\u00e9rale");
  EXPECT_EQ(FirmNameKey("SOCI\u00c9T\u00c9 G\u00c9N\u00c9RALE"), societe);
  EXPECT_EQ(FirmNameKey("Socie\u0301te\u0301 Ge\u0301ne\u0301rale"), societe);
  EXPECT_EQ(FirmNameKey("M\u00dcLLER GMBH"), "m\u00fcller");
  EXPECT_EQ(FirmNameKey("Stra\u00dfe AG"), FirmNameKey("STRASSE"));
  EXPECT_EQ(FirmNameKey("\uff21\uff23\uff2d\uff25 \uff29\uff4e\uff43"), "acme");
  EXPECT_EQ(FirmNameKey("O\u2019Neil \u2013 Trading"), "oneil trading");
  EXPECT_EQ(
      FirmNameKey(
          "\u039a\u0391\u03a1\u0391\u039c\u0391\u039d\u039b\u0389\u03a3"),
      FirmNameKey(
          "\u03ba\u03b1\u03c1\u03b1\u03bc\u03b1\u03bd\u03bb\u03ae\u03c2"));
  // At most 256 characters, whole words first; its own key.
  std::string long_name;
  for (int i = 0; i < 100; ++i) long_name += "\u00e9t\u00e9 ";
  const std::string cut = FirmNameKey(long_name);
  EXPECT_EQ(cut.size(), 64u * 6 - 1);  // 64 words of 3 characters (5 bytes)
  EXPECT_EQ(FirmNameKey(cut), cut);
  EXPECT_EQ(FirmNameKey(std::string(300, 'a')), std::string(256, 'a'));
}

TEST(PartnerRules, PercentagesAreExactWithFourDecimalsAtMost) {
  EXPECT_EQ(ParsePercent("12.5", "f")->ToString(), "12.50");
  EXPECT_EQ(ParsePercent("0", "f")->ToString(), "0.00");
  EXPECT_EQ(ParsePercent("100", "f")->ToString(), "100.00");
  EXPECT_EQ(ParsePercent("99.9999", "f")->ToString(), "99.9999");
  // Each refusal names the field given, and says why.
  for (const auto& [text, why] :
       std::vector<std::pair<const char*, const char*>>{
           {"99.99999", "more than 4 decimals"},
           // Past a decimal's digits, still a number: said as for others.
           {"10.1234567891", "more than 4 decimals"},
           {"1000000000000000000000", "from 0 to 100"},
           {"100.01", "from 0 to 100"},
           {"-1", "from 0 to 100"},
           {"ten", "decimal number"},
           // Words that a number's errors use are no number.
           {"out of range", "decimal number"},
           {"fractional digits", "decimal number"}}) {
    absl::Status s = ParsePercent(text, "terms.commission_percent").status();
    EXPECT_TRUE(testing::NamesField(s, "terms.commission_percent"))
        << text << ": " << s;
    EXPECT_TRUE(absl::StrContains(s.message(), why)) << text << ": " << s;
  }
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
  // Spelled as rapportctl's flags take it, in CSV files too.
  EXPECT_EQ(ParseFundState("Claim-Rejected"),
            v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_EQ(ParseFundState("claim rejected"),
            v1::FUND_REQUEST_STATE_CLAIM_REJECTED);
  EXPECT_FALSE(ParseFundState("claim.rejected").has_value());
  EXPECT_EQ(LifecycleName(v1::LIFECYCLE_ONBOARDING), "onboarding");
  EXPECT_EQ(ParseAgreementState("terminated"), v1::AGREEMENT_STATE_TERMINATED);
}

}  // namespace
}  // namespace rapport::partner
