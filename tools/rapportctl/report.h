// `rapportctl report --out report.html`: one self-contained HTML page (no
// script, no network) with, for each counterpart, its tier split, the R-by-F
// grid of counts and value, the distribution of value; the top of the
// financial community's target list; the partner deal conflicts waiting for
// review; and the balance across the three. Charts are inline SVG, and every
// number of a chart is also in a table next to it.
//
// The data is gathered (report.cc) into a ReportData; RenderHtml is pure, so
// that it is tested without services (tests/unit/rapportctl/report_test.cc).
#ifndef RAPPORT_TOOLS_RAPPORTCTL_REPORT_H_
#define RAPPORT_TOOLS_RAPPORTCTL_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tools/rapportctl/overview.h"

namespace rapport::ctl::report {

// What a counterpart's exported values add up to, beyond its summary.
struct Detail {
  std::string key;  // overview::Counterpart::key
  bool available = false;
  int bins = 5;  // k of the refresh (R and F run 1..bins)
  // cells[r-1][f-1]: how many entities scored R=r, F=f, and the sum of their
  // values times 100. Prospects (R = F = 0) are not in the grid.
  std::vector<std::vector<int64_t>> grid_counts;
  std::vector<std::vector<int64_t>> grid_value_hundredths;
  int64_t prospects = 0;
  // How many entities have a value in [10i, 10i+10), i = 0..9 (100.00 in the
  // last); prospects included in the first.
  std::vector<int64_t> value_histogram = std::vector<int64_t>(10, 0);
};

// One entry of the financial community's target list, as text.
struct Target {
  std::string member_id;
  std::string display_name;
  std::string kind;   // "investor", ...
  std::string score;  // money, "1234.50"
  std::string reason;
};

// One claimant of a deal conflict, as text.
struct Claim {
  std::string deal_id;
  std::string partner_id;
  std::string partner_name;
  std::string account;
  std::string amount;
  std::string state;          // "submitted", "conflict", ...
  std::string registered_at;  // RFC 3339
  std::string tier;           // the partner's tier, "" if not scored
  std::string value;          // the partner's value, "42.50", "" if none
};

struct Conflict {
  std::string account_key;
  std::vector<Claim> claims;  // the earlier registration first
};

struct ReportData {
  std::string generated_at;  // RFC 3339
  overview::Overview overview;
  std::vector<Detail> details;  // one per overview counterpart, same order
  bool targets_available = false;
  std::vector<Target> targets;
  bool conflicts_available = false;
  std::vector<Conflict> conflicts;
  // More conflicts wait than the page lists (it shows the first ones).
  bool more_conflicts = false;
};

// The whole page. Text from the services is escaped.
std::string RenderHtml(const ReportData& data);

// Adds one exported value (r, f, value) to `detail`.
void AddToDetail(int r, int f, int32_t value_hundredths, Detail* detail);

}  // namespace rapport::ctl::report

#endif  // RAPPORT_TOOLS_RAPPORTCTL_REPORT_H_
