// The partner service's rules that need no storage: which state moves the
// lifecycles allow, how deal accounts are matched, and the names of the
// API's enums in files and on the command line.
#ifndef RAPPORT_SERVICES_PARTNER_PARTNER_RULES_H_
#define RAPPORT_SERVICES_PARTNER_PARTNER_RULES_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "rapport/partner/v1/partner_service.pb.h"

namespace rapport::partner {

// Partner lifecycle: prospect -> onboarding -> active <-> suspended; any but
// ended -> ended. Staying put is no move.
bool LifecycleMayMove(v1::Lifecycle from, v1::Lifecycle to);
// Agreements: draft -> active | terminated; active -> expired | terminated.
bool AgreementMayMove(v1::AgreementState from, v1::AgreementState to);
// The state an agreement stored in `state` is in at `now_us`: an active one
// whose period ended at or before then is expired, whether or not anyone
// said so.
v1::AgreementState AgreementStateAt(int state,
                                    std::optional<int64_t> end_time_us,
                                    int64_t now_us);
// Deals: submitted -> approved | rejected | expired; approved -> won | lost
// | expired.
bool DealMayMove(v1::DealState from, v1::DealState to);
// Fund requests: requested -> approved | rejected; approved -> claimed;
// claimed -> paid | claim_rejected.
bool FundMayMove(v1::FundRequestState from, v1::FundRequestState to);
// The state a request in `from` asked to become `to` becomes: `to`, except
// that "rejected" rejects the claim of a claimed request (claim_rejected,
// also for a retry on one already so), since one verb rejects whatever
// waits for a decision.
v1::FundRequestState FundTarget(v1::FundRequestState from,
                                v1::FundRequestState to);
// True while a registration protects its account: submitted or approved.
bool DealIsOpen(v1::DealState state);

// The key deal accounts are matched on by domain: lower case, without a
// scheme, "www.", a path, a port or a final dot ("https://WWW.Example.com/x"
// -> "example.com"); "" when nothing is left.
std::string AccountDomainKey(absl::string_view domain);
// AccountDomainKey(domain), refused naming `field` when the key is not
// printable ASCII, as a domain name is (an international one in its "xn--"
// form).
absl::StatusOr<std::string> CheckedAccountDomainKey(absl::string_view domain,
                                                    absl::string_view field);

// A commission percentage as decimal text: 0 to 100 with at most 4
// decimals. Errors name `field`.
absl::StatusOr<Decimal> ParsePercent(absl::string_view text,
                                     absl::string_view field);

// Names in files and on the command line: "supplier", "onboarding",
// "submitted", "claim_rejected"... and back (nullopt for an unknown name).
std::string KindName(int kind);
std::optional<v1::PartnerKind> ParseKind(absl::string_view name);
std::string LifecycleName(int lifecycle);
std::optional<v1::Lifecycle> ParseLifecycle(absl::string_view name);
std::string AgreementStateName(int state);
std::optional<v1::AgreementState> ParseAgreementState(absl::string_view name);
std::string DealStateName(int state);
std::optional<v1::DealState> ParseDealState(absl::string_view name);
std::string FundStateName(int state);
std::optional<v1::FundRequestState> ParseFundState(absl::string_view name);

}  // namespace rapport::partner

#endif  // RAPPORT_SERVICES_PARTNER_PARTNER_RULES_H_
