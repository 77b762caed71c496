// The demo population of `rapportctl demo load`, made without any service:
// customers (from the public CDNOW log, or generated), marketing partners
// with their programs, deals, orders, interactions and funds, and a financial
// community with its holdings, engagements and coverage. The same seed and
// the same `now` give the same population, row for row.
//
// What the demo creates through RPCs (customers, partners, members, ...) is
// returned as plain structs; what it imports is returned as the rows of the
// CSV files that `rapportctl ... import KIND` reads, so that the demo sends
// them through the same import path a person would.
//
//   absl::StatusOr<std::vector<demo::CdnowPurchase>> log =
//       demo::ParseCdnow(text, "CDNOW_master.txt");
//   demo::CustomerPopulation customers = demo::CustomersFromCdnow(*log, 1, 0);
//   demo::PartnerPopulation partners = demo::GeneratePartners(1, now_us);
//   WriteCsv(partners.deals, "deals.csv");  // then: partners import deals
#ifndef RAPPORT_TOOLS_RAPPORTCTL_DEMO_DATA_H_
#define RAPPORT_TOOLS_RAPPORTCTL_DEMO_DATA_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/decimal.h"
#include "rapport/common/v1/common.pb.h"
#include "rapport/financial_community/v1/financial_community_service.pb.h"
#include "rapport/partner/v1/partner_service.pb.h"

namespace rapport::ctl::demo {

// The external-id source of generated customers, partners and members.
inline constexpr char kDemoSource[] = "demo";
// The external-id source of CDNOW customers.
inline constexpr char kCdnowSource[] = "cdnow";

// A seeded stream of numbers (SplitMix64): the same seed gives the same
// numbers on every platform, unlike the standard library's distributions.
//
//   Random random(42);
//   int64_t die = random.Between(1, 6);
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n); n must be positive.
  int64_t Below(int64_t n);
  // Uniform in [lo, hi].
  int64_t Between(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double Fraction();
  // True with probability p.
  bool Chance(double p) { return Fraction() < p; }
  template <typename T>
  const T& Pick(const std::vector<T>& from) {
    return from[static_cast<size_t>(Below(static_cast<int64_t>(from.size())))];
  }

 private:
  uint64_t state_;
};

// The rows of one CSV file, as an import reads it: a header and its rows.
struct CsvRows {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};

// ---- customers --------------------------------------------------------------

// One row of the CDNOW master log (see ../shared/data/cdnow/README.md).
struct CdnowPurchase {
  std::string customer_id;  // "00001"
  int64_t day_us = 0;       // the date's midnight, UTC
  int cds = 0;
  Decimal amount;
};

// The rows of a CDNOW master log: whitespace-separated customer id, date
// YYYYMMDD, number of CDs and dollar amount; a first line of column names
// and blank lines are skipped. A bad line is INVALID_ARGUMENT naming `name`
// and the line: `CDNOW_master.txt:12: date: want YYYYMMDD, not "1997011"`.
absl::StatusOr<std::vector<CdnowPurchase>> ParseCdnow(absl::string_view text,
                                                      absl::string_view name);

// The public log at ../shared/data/cdnow/CDNOW_master.txt beside the
// checkout (the directory with deploy/local/run) that holds the first of
// `dirs` that is in one and has the log beside it: its path, or nothing.
std::optional<std::string> FindCdnowLog(
    const std::vector<std::filesystem::path>& dirs);

struct Customer {
  // kCdnowSource and the log's id ("00001"), or kDemoSource and "C-00001".
  std::string external_source;
  std::string external_id;
  std::string display_name;
  std::string email;
};

struct CustomerPopulation {
  std::vector<Customer> customers;
  // customer_ref,timestamp,amount: `customers import purchases`.
  CsvRows purchases;
  // customer_ref,timestamp,channel,cost,kind: `customers import
  // interactions`, what it cost to keep them (welcome emails, catalogs,
  // service calls, win-back offers).
  CsvRows interactions;
  // Where the customers' scores are taken: the day after the last purchase
  // of a CDNOW log (1998-07-01 for the whole log), else `now`.
  int64_t as_of_us = 0;
};

// Each customer of the log (the first `max_customers` of it; 0: all) with a
// generated name and email, its purchases, and contacts made after them.
CustomerPopulation CustomersFromCdnow(const std::vector<CdnowPurchase>& log,
                                      uint64_t seed, size_t max_customers);

// `count` customers and about five purchases each over the two years before
// `now_us` (many buy once, a few buy often and much), and contacts made
// after them.
CustomerPopulation GenerateCustomers(uint64_t seed, int count, int64_t now_us);

// ---- partners ---------------------------------------------------------------

struct Partner {
  std::string external_id;  // P-001, of source kDemoSource
  std::string display_name;
  ::rapport::partner::v1::PartnerKind kind;
  ::rapport::partner::v1::Lifecycle lifecycle;
  std::string region;
  ::rapport::common::v1::Contact contact;
};

struct ProgramTerm {
  ::rapport::common::v1::Tier tier;  // TIER_UNSPECIFIED: the default terms
  std::string commission_percent;
};

struct Program {
  std::string name;
  std::vector<ProgramTerm> terms;
};

struct Agreement {
  size_t partner = 0;  // index in PartnerPopulation::partners
  size_t program = 0;  // index in PartnerPopulation::programs
  int64_t start_us = 0;
  // Where it ends up: draft (as created), active, or terminated.
  ::rapport::partner::v1::AgreementState state;
};

// Market development funds: requested, then moved on to `state` through the
// states between (approved, claimed, ...).
struct Fund {
  size_t partner = 0;
  std::string activity;
  Decimal requested;
  ::rapport::partner::v1::FundRequestState state;
  Decimal claimed;       // for claimed and beyond
  int64_t claim_us = 0;  // for claimed and beyond
  int64_t paid_us = 0;   // for paid
};

struct PartnerPopulation {
  std::vector<Partner> partners;
  std::vector<Program> programs;
  std::vector<Agreement> agreements;
  // partner_ref,deal_id,account,amount,registered_at,state,closed_at,
  // account_domain, in order of registration, so that a registration is read
  // after the earlier ones it conflicts with.
  CsvRows deals;
  // The deals registered on purpose for an account that another partner's
  // open deal claimed within the protection window.
  int conflicts = 0;
  CsvRows orders;        // partner_ref,timestamp,amount
  CsvRows interactions;  // partner_ref,timestamp,channel,cost,kind,note
  std::vector<Fund> funds;
  int64_t as_of_us = 0;
};

// About 150 partners of the five kinds in four regions, two programs, deals
// over the 18 months before `now_us`, orders, interactions, and funds for
// about 20 partners.
PartnerPopulation GeneratePartners(uint64_t seed, int64_t now_us);

// ---- financial community ----------------------------------------------------

struct Member {
  std::string external_id;  // M-001, of source kDemoSource
  std::string display_name;
  ::rapport::financial_community::v1::MemberKind kind;
  ::rapport::financial_community::v1::MemberType type;
  std::string organisation;
  ::rapport::common::v1::Contact contact;
};

struct CommunityPopulation {
  std::vector<Member> members;
  std::string our_security;        // "RAPP"
  std::vector<std::string> peers;  // the peers' securities
  CsvRows holdings;                // member_ref,security,date,shares,price
  // member_ref,timestamp,kind,cost,outcome,note,request_id; the rows of an
  // engagement with several members follow each other and share the
  // request id's prefix ("demo-1-earnings-3/M-007"), each with its share of
  // the cost.
  CsvRows engagements;
  CsvRows coverage;  // member_ref,security,date,rating,target_price
  int64_t as_of_us = 0;
};

// About 120 shareholders, investors and analysts; their holdings of our
// security and two peers at the ends of the 8 quarters before `now_us`
// (growing, shrinking, sold out, new; some investors hold only peers);
// meetings, calls, roadshows, conferences, earnings calls and reports sent
// over those two years; and the analysts' ratings and target prices.
CommunityPopulation GenerateCommunity(uint64_t seed, int64_t now_us);

}  // namespace rapport::ctl::demo

#endif  // RAPPORT_TOOLS_RAPPORTCTL_DEMO_DATA_H_
