// Writes the HTML report of a fixed, realistic sample (three counterparts,
// their tiers, grids and distributions of value, a few targets and a deal
// conflict) without any service, for the headless Chromium check
// (tests/support/render-check) and for looking at the page.
//
//   write_sample_report OUT.html [--degraded]
//
// --degraded: the partner service did not answer, the financial community's
// values could not be exported, the targets are unavailable and there is no
// deal conflict; the page must still read well.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "tools/rapportctl/report.h"

namespace rapport::ctl::report {
namespace {

using overview::Counterpart;
using overview::Group;

Group GroupOf(std::string name, int64_t entities, int64_t monetary_cents,
              int64_t cost_cents, int32_t average_value_hundredths) {
  Group g;
  g.name = std::move(name);
  g.entities = entities;
  g.monetary = Decimal::FromCents(monetary_cents);
  g.cost_to_serve = Decimal::FromCents(cost_cents);
  g.profit = g.monetary - g.cost_to_serve;
  g.average_value_hundredths = average_value_hundredths;
  g.value_hundredths_sum = entities * average_value_hundredths;
  return g;
}

// Adds up the tiers into the counterpart's total.
Counterpart CounterpartOf(std::string key, std::string title,
                          std::string service, int64_t entities,
                          std::vector<Group> tiers,
                          std::vector<Group> segments) {
  Counterpart c;
  c.key = std::move(key);
  c.title = std::move(title);
  c.service = std::move(service);
  c.available = true;
  c.entities = entities;
  c.model_id = "rfm-2024-05-01";
  for (const Group& t : tiers) {
    c.total.entities += t.entities;
    c.total.monetary += t.monetary;
    c.total.cost_to_serve += t.cost_to_serve;
    c.total.profit += t.profit;
    c.total.value_hundredths_sum += t.value_hundredths_sum;
  }
  if (c.total.entities > 0) {
    c.total.average_value_hundredths =
        static_cast<int32_t>(c.total.value_hundredths_sum / c.total.entities);
  }
  c.tiers = std::move(tiers);
  c.segments = std::move(segments);
  return c;
}

// A fixed pseudo-random sequence (the same on every platform).
class Sequence {
 public:
  explicit Sequence(uint32_t seed) : state_(seed) {}
  // In [0, n).
  int Next(int n) {
    state_ = state_ * 1664525u + 1013904223u;
    return static_cast<int>((state_ >> 8) % static_cast<uint32_t>(n));
  }

 private:
  uint32_t state_;
};

// `scored` entities whose R and F lean together and whose value follows
// them, plus `prospects`.
Detail DetailOf(const std::string& key, int scored, int prospects,
                uint32_t seed) {
  Detail d;
  d.key = key;
  d.available = true;
  d.bins = 5;
  Sequence s(seed);
  for (int i = 0; i < scored; ++i) {
    const int r = 1 + s.Next(5);
    const int f = std::max(1, std::min(5, r + s.Next(3) - 1 + s.Next(2)));
    const int32_t value = (r + f) * 850 + s.Next(1800) - 600;
    AddToDetail(r, f, value, &d);
  }
  for (int i = 0; i < prospects; ++i) AddToDetail(0, 0, 0, &d);
  return d;
}

ReportData Sample() {
  ReportData data;
  data.generated_at = "2024-05-01T09:30:00Z";
  std::vector<Counterpart> counterparts;
  counterparts.push_back(
      CounterpartOf("customers", "Customers", "customer", 1240,
                    {GroupOf("Platinum", 59, 18234000, 940000, 8870),
                     GroupOf("Gold", 177, 14280050, 1420000, 6610),
                     GroupOf("Iron", 413, 9641025, 2890000, 4150),
                     GroupOf("Lead", 531, 2118000, 3165075, 1720)},
                    {GroupOf("Champions", 142, 21450000, 1610000, 8320),
                     GroupOf("Loyal", 236, 13900075, 1985000, 6240),
                     GroupOf("At risk", 301, 5230000, 2140000, 3870),
                     GroupOf("Hibernating", 388, 2650000, 2255075, 1910),
                     GroupOf("New", 113, 1043000, 425000, 2480)}));
  counterparts.push_back(
      CounterpartOf("partners", "Partners", "partner", 86,
                    {GroupOf("Platinum", 6, 41200000, 1850000, 9120),
                     GroupOf("Gold", 14, 27650000, 2400000, 7050),
                     GroupOf("Iron", 27, 9820000, 3010000, 4380),
                     GroupOf("Lead", 33, 1890000, 3720000, 1530)},
                    {}));
  counterparts.push_back(CounterpartOf(
      "community", "Financial community", "financial-community", 212,
      {GroupOf("Platinum", 11, 9600000, 720000, 9350),
       GroupOf("Gold", 29, 6100000, 1180000, 6890),
       GroupOf("Iron", 64, 2400000, 1460000, 4020),
       GroupOf("Lead", 86, 350000, 1690000, 1260)},
      {}));
  data.overview = overview::Balance(counterparts);
  data.details = {DetailOf("customers", 1180, 60, 7),
                  DetailOf("partners", 80, 6, 11),
                  DetailOf("community", 190, 22, 13)};

  data.targets_available = true;
  data.targets = {{"fc-0012", "Northwind Capital", "investor", "48250.00",
                   "holds 4.1% and has not been met for 7 months"},
                  {"fc-0048", "Helena Marsh", "analyst", "31900.50",
                   "covers the sector; last report was neutral"},
                  {"fc-0007", "Orchard Pension Fund", "shareholder", "27410.00",
                   "third-largest holder, stake up 0.6% this quarter"},
                  {"fc-0101", "Tomas Berg & Partners", "investor", "12030.75",
                   "asked for a meeting after the earnings call"},
                  {"fc-0033", "Lin Zhao", "analyst", "9880.00",
                   "new coverage, initiated at \"buy\""}};

  data.conflicts_available = true;
  data.conflicts = {
      {"globex.example",
       {{"deal-7f3a", "ptn-0021", "Acme Resellers", "Globex (globex.example)",
         "84000.00", "submitted", "2024-04-12T08:14:00Z", "Gold", "71.20"},
        {"deal-81c9", "ptn-0044", "Initech Channel", "Globex Corp.", "79500.00",
         "conflict", "2024-04-19T15:02:00Z", "Iron", "44.85"}}}};
  return data;
}

ReportData Degraded() {
  ReportData data = Sample();
  std::vector<Counterpart> counterparts = data.overview.counterparts;
  Counterpart& partners = counterparts[1];
  partners = Counterpart();
  partners.key = "partners";
  partners.title = "Partners";
  partners.service = "partner";
  partners.error =
      "UNAVAILABLE: failed to connect to all addresses; last error: "
      "ipv4:127.0.0.1:50052: Connection refused";
  data.overview = overview::Balance(counterparts);
  data.details[1] = Detail();
  data.details[1].key = "partners";
  data.details[2].available = false;
  data.targets_available = false;
  data.targets.clear();
  data.conflicts.clear();
  return data;
}

}  // namespace
}  // namespace rapport::ctl::report

int main(int argc, char** argv) {
  const bool degraded = argc == 3 && std::string(argv[2]) == "--degraded";
  if (argc != 2 && !degraded) {
    std::cerr << "usage: write_sample_report OUT.html [--degraded]\n";
    return 2;
  }
  namespace report = rapport::ctl::report;
  std::ofstream out(argv[1], std::ios::binary | std::ios::trunc);
  out << report::RenderHtml(degraded ? report::Degraded() : report::Sample());
  out.close();
  if (!out) {
    std::cerr << "write_sample_report: cannot write " << argv[1] << "\n";
    return 1;
  }
  return 0;
}
