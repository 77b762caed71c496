// The balance across stakeholders: the three counterparts side by side, as
// their services' summaries give them, and for each counterpart and tier its
// share of the value (the sum of its differentiation values, SCORING.md
// section 5) and of the money it brings (monetary) against its share of the
// attention spent on it (cost to serve). `rapportctl overview` prints it,
// `rapportctl report` draws it, `rapportctl demo load` ends with it.
//
// Everything here but Gather (overview_command.cc, which does the calls) is
// pure: the figures come in as the services answered them, the shares are
// computed exactly, and each share column adds up to exactly 100.00% (largest
// remainder, in hundredths of a percent), so that a reader can add them up.
#ifndef RAPPORT_TOOLS_RAPPORTCTL_OVERVIEW_H_
#define RAPPORT_TOOLS_RAPPORTCTL_OVERVIEW_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "common/base/decimal.h"
#include "rapport/common/v1/differentiation.pb.h"
#include "tools/rapportctl/output.h"

namespace rapport::ctl {

struct Context;

namespace overview {

// The tiers in the order every table shows them, best first.
inline const std::vector<std::string>& TierOrder() {
  static const std::vector<std::string> kTiers = {"Platinum", "Gold", "Iron",
                                                  "Lead"};
  return kTiers;
}

// One group (a tier, a segment or all) of a counterpart's stored values.
struct Group {
  std::string name;  // "Platinum", "Champions", ... ; "" for all
  int64_t entities = 0;
  Decimal monetary;
  Decimal cost_to_serve;
  Decimal profit;
  int64_t value_hundredths_sum = 0;      // sum of values times 100
  int32_t average_value_hundredths = 0;  // as the service rounded it
};

// One counterpart as its service summarised it.
struct Counterpart {
  std::string key;      // "customers", "partners", "community"
  std::string title;    // "Customers", "Partners", "Financial community"
  std::string service;  // "customer", "partner", "financial-community"
  // False when the service did not answer; `error` says what it said
  // ("UNAVAILABLE: ..."), and every figure below is empty.
  bool available = false;
  std::string error;
  int64_t entities = 0;  // all the service holds
  std::string model_id;  // the refresh whose values are stored; "" if none
  // That refresh's as_of (RFC 3339) and bins, when its service told them
  // (counterparts refreshed as of different times are not side by side in
  // time: the overview and the report say each one's).
  std::string as_of;
  int bins = 0;
  std::string currency;  // of its money figures, "USD"; "" if none given
  Group total;           // the scored ones; total.entities is the scored count
  std::vector<Group> tiers;     // in TierOrder(), absent tiers as zero rows
  std::vector<Group> segments;  // as the service ordered them
};

// One line of the balance: a tier of a counterpart (tier "" : the whole
// counterpart, in the across-counterparts table).
struct BalanceRow {
  std::string counterpart;  // Counterpart::key
  std::string tier;
  int64_t entities = 0;
  int64_t value_hundredths_sum = 0;
  Decimal monetary;
  Decimal cost_to_serve;
  // Hundredths of a percent (2500 is 25.00%) of the value, the monetary and
  // the cost to serve; within each column of one table they add up to
  // 10000, unless the column's total is zero (all 0).
  int64_t value_share_bp = 0;
  int64_t monetary_share_bp = 0;
  int64_t cost_share_bp = 0;
};

struct Overview {
  std::vector<Counterpart> counterparts;  // customers, partners, community
  // For each available counterpart, its tiers (TierOrder()): the shares are
  // of that counterpart's total, so each counterpart's rows add up to 100%.
  std::vector<BalanceRow> balance;
  // One row per available counterpart: the shares are of all counterparts'
  // totals together (where the company's attention goes). Money in another
  // currency than the first counterpart's cannot be added up: such a
  // counterpart is left out, and `across_note` says so.
  std::vector<BalanceRow> across;
  std::string across_note;
};

// Hundredths of a percent of each part in the sum of all parts, by largest
// remainder: the results add up to exactly 10000 when the sum is not zero;
// all zeros when it is. Parts may be negative (a net refund); the shares are
// then signed, and still add up to 10000.
std::vector<int64_t> Shares(const std::vector<Decimal>& parts);

// Hundredths as a number with two decimals: 4250 is "42.50" (values, and
// shares in percent).
std::string HundredthsText(int64_t hundredths);

// "12.34%" for 1234.
std::string PercentText(int64_t basis_points);

// Turns a service's summary into a Counterpart (available).
Counterpart FromSummary(
    std::string key, std::string title, std::string service, int64_t entities,
    const std::string& model_id,
    const ::rapport::common::v1::GroupSummary& total,
    const std::vector<::rapport::common::v1::GroupSummary>& tiers,
    const std::vector<::rapport::common::v1::GroupSummary>& segments);

// The balance and across tables of `counterparts`.
Overview Balance(std::vector<Counterpart> counterparts);

// Asks the three services for their summaries, all three at once
// (overview_command.cc; addresses: --customer-addr, --partner-addr,
// --community-addr, else $RAPPORT_CUSTOMER_ADDR, $RAPPORT_PARTNER_ADDR,
// $RAPPORT_COMMUNITY_ADDR, else localhost:50051..3); a service that does not
// answer is shown as unavailable.
Overview Gather(const Context& ctx);

// Whether `c`'s service answered, if only with a refusal: not when its
// summary ended UNAVAILABLE or DEADLINE_EXCEEDED (asking it more would
// wait out another timeout).
bool Answered(const Counterpart& c);

// Prints `o` as tables, JSON or CSV.
void Print(Format format, const Overview& o, std::ostream& out);

}  // namespace overview
}  // namespace rapport::ctl

#endif  // RAPPORT_TOOLS_RAPPORTCTL_OVERVIEW_H_
