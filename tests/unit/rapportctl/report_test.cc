// The HTML report without services: the page's sections and their order,
// escaping of every text from the services, unavailable parts, all-zero data,
// chart geometry, and how exported values are added up into a Detail.
#include "tools/rapportctl/report.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tools/rapportctl/svg.h"

namespace rapport::ctl::report {
namespace {

using overview::Counterpart;
using overview::Group;

Group TierGroup(const std::string& name, int64_t entities, int64_t monetary,
                int64_t cost) {
  Group g;
  g.name = name;
  g.entities = entities;
  g.monetary = Decimal::FromUnits(monetary);
  g.cost_to_serve = Decimal::FromUnits(cost);
  g.profit = Decimal::FromUnits(monetary - cost);
  g.average_value_hundredths = entities == 0 ? 0 : 4250;
  // Value points in step with the money, so that both shares agree.
  g.value_hundredths_sum = monetary * 10;
  return g;
}

Counterpart Available(const std::string& key, const std::string& title,
                      const std::string& service) {
  Counterpart c;
  c.key = key;
  c.title = title;
  c.service = service;
  c.available = true;
  c.entities = 12;
  c.model_id = "model-1";
  c.as_of = "2024-06-30T00:00:00Z";
  c.tiers = {TierGroup("Platinum", 1, 600, 100), TierGroup("Gold", 3, 300, 100),
             TierGroup("Iron", 4, 100, 100), TierGroup("Lead", 2, 0, 100)};
  c.total = TierGroup("", 10, 1000, 400);
  return c;
}

Detail DetailFor(const std::string& key) {
  Detail d;
  d.key = key;
  d.available = true;
  d.bins = 5;
  AddToDetail(5, 5, 9000, &d);
  AddToDetail(1, 2, 1500, &d);
  AddToDetail(0, 0, 0, &d);
  return d;
}

ReportData Sample() {
  ReportData data;
  data.generated_at = "2024-05-01T12:00:00Z";
  std::vector<Counterpart> counterparts = {
      Available("customers", "Customers", "customer"),
      Available("partners", "Partners", "partner"),
      Available("community", "Financial community", "financial-community")};
  data.overview = overview::Balance(counterparts);
  for (const Counterpart& c : counterparts)
    data.details.push_back(DetailFor(c.key));
  data.targets_available = true;
  data.targets = {{"m-1", "Ada Investor", "investor", "1234.50", "holds 5%"}};
  data.conflicts_available = true;
  data.conflicts = {{"example.com",
                     {{"d-1", "p-1", "Acme", "Example (example.com)", "1000.00",
                       "submitted", "2024-04-01T10:00:00Z", "Gold", "42.50"},
                      {"d-2", "p-2", "Bolt", "Example", "900.00", "conflict",
                       "2024-04-02T10:00:00Z", "", ""}}}};
  return data;
}

// From the <h2> `heading` to the next <h2> (or the end).
std::string SectionOf(const std::string& html, const std::string& heading) {
  const std::string open = "<h2>" + heading + "</h2>";
  const size_t start = html.find(open);
  if (start == std::string::npos) return "";
  const size_t end = html.find("<h2>", start + open.size());
  return html.substr(
      start, end == std::string::npos ? std::string::npos : end - start);
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos;
       at = text.find(what, at + what.size())) {
    ++n;
  }
  return n;
}

// The width attributes of the bars of `svg`, in order.
std::vector<double> BarWidths(const std::string& svg) {
  std::vector<double> widths;
  static const std::regex kBar(
      R"re(<rect class="bar" x="[^"]*" y="[^"]*" width="([^"]*)")re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), kBar), end; it != end;
       ++it) {
    widths.push_back(std::stod((*it)[1]));
  }
  return widths;
}

TEST(RenderHtml, HeadingsComeInOrder) {
  const std::string html = RenderHtml(Sample());
  const std::vector<std::string> headings = {
      "<h1>Rapport: the balance across stakeholders</h1>",
      "<h2>Balance across counterparts</h2>",
      "<h2>Customers</h2>",
      "<h2>Partners</h2>",
      "<h2>Financial community</h2>",
      "<h2>Whom to meet next</h2>",
      "<h2>Deal conflicts to review</h2>"};
  size_t previous = 0;
  for (const std::string& h : headings) {
    const size_t at = html.find(h);
    ASSERT_NE(at, std::string::npos) << h;
    EXPECT_GT(at, previous) << h << " is out of order";
    previous = at;
  }
  EXPECT_EQ(html.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(html.find("2024-05-01T12:00:00Z"), std::string::npos);
  EXPECT_NE(html.find("Ada Investor"), std::string::npos);
  EXPECT_NE(html.find("example.com"), std::string::npos);
}

TEST(RenderHtml, EscapesEveryTextFromTheServices) {
  ReportData data = Sample();
  data.targets[0].display_name = "<script>alert(1)</script>";
  data.targets[0].reason = "says \"hi\" & 'bye'";
  data.overview.counterparts[1].available = false;
  data.overview.counterparts[1].error = "<b>UNAVAILABLE</b>: down";
  data.conflicts[0].account_key = "a<b>.com";
  data.generated_at = "<i>now</i>";
  const std::string html = RenderHtml(data);
  EXPECT_EQ(html.find("<script>alert(1)"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(1)&lt;/script&gt;"),
            std::string::npos);
  EXPECT_NE(html.find("says &quot;hi&quot; &amp; &#39;bye&#39;"),
            std::string::npos);
  EXPECT_EQ(html.find("<b>UNAVAILABLE</b>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;UNAVAILABLE&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(html.find("a<b>.com"), std::string::npos);
  EXPECT_EQ(html.find("<i>now</i>"), std::string::npos);
  EXPECT_EQ(Escape("&<>\"'x"), "&amp;&lt;&gt;&quot;&#39;x");
}

// Names that reach the charts (a counterpart's title, its tiers, its model
// id) are escaped in the SVG's text, tooltips and aria labels as in the
// tables: nothing raw, the escaped form inside an <svg>.
TEST(RenderHtml, EscapesTheNamesThatReachTheCharts) {
  ReportData data;
  data.generated_at = "2024-05-01T12:00:00Z";
  Counterpart hostile = Available("customers", "Cust<y>\"omers", "customer");
  hostile.model_id = "m<z>";
  hostile.tiers[0].name = "Plat<x>\"'&";
  data.overview = overview::Balance(
      {hostile, Available("partners", "Partners", "partner")});
  data.details = {DetailFor("customers"), DetailFor("partners")};
  const std::string html = RenderHtml(data);
  for (const char* raw :
       {"<x>", "<y>", "<z>", "Plat<", "Cust<", "\"omers", "\"'&"}) {
    EXPECT_EQ(html.find(raw), std::string::npos) << raw;
  }
  // The charts alone: every <svg>...</svg> of the page, not its tables.
  std::string charts;
  for (size_t at = html.find("<svg"); at != std::string::npos;
       at = html.find("<svg", at + 1)) {
    const size_t end = html.find("</svg>", at);
    ASSERT_NE(end, std::string::npos);
    charts += html.substr(at, end - at);
  }
  ASSERT_FALSE(charts.empty());
  EXPECT_NE(charts.find("Plat&lt;x&gt;&quot;&#39;&amp;"), std::string::npos);
  EXPECT_NE(charts.find("Cust&lt;y&gt;&quot;omers"), std::string::npos);
}

TEST(RenderHtml, HasNoScriptAndNoNetworkReference) {
  ReportData data = Sample();
  data.targets[0].display_name = "<script>alert(1)</script>";
  const std::string html = RenderHtml(data);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
}

TEST(RenderHtml, UnavailableCounterpartSaysSoAndDrawsNoChart) {
  ReportData data = Sample();
  Counterpart& partners = data.overview.counterparts[1];
  partners = Counterpart();
  partners.key = "partners";
  partners.title = "Partners";
  partners.service = "partner";
  partners.error = "UNAVAILABLE: failed to connect to all addresses";
  data.overview = overview::Balance(data.overview.counterparts);
  data.details[1] = Detail();
  data.details[1].key = "partners";
  const std::string html = RenderHtml(data);

  const std::string section = SectionOf(html, "Partners");
  ASSERT_FALSE(section.empty());
  EXPECT_NE(section.find("unavailable"), std::string::npos);
  // The status code, not the message, which may name addresses.
  EXPECT_NE(section.find("<code>UNAVAILABLE</code>"), std::string::npos);
  EXPECT_EQ(section.find("failed to connect"), std::string::npos);
  EXPECT_EQ(section.find("<svg"), std::string::npos);
  EXPECT_EQ(section.find("<table"), std::string::npos);
  // The others still have theirs.
  EXPECT_NE(SectionOf(html, "Customers").find("<svg"), std::string::npos);
  EXPECT_NE(SectionOf(html, "Balance across counterparts").find("Partners"),
            std::string::npos);
}

TEST(RenderHtml, TargetsAndConflictsSayUnavailableOrNone) {
  ReportData data = Sample();
  data.targets_available = false;
  data.conflicts.clear();
  std::string html = RenderHtml(data);
  EXPECT_NE(SectionOf(html, "Whom to meet next").find("unavailable"),
            std::string::npos);
  EXPECT_NE(SectionOf(html, "Deal conflicts to review").find("none"),
            std::string::npos);

  data.targets_available = true;
  data.targets.clear();
  data.conflicts_available = false;
  html = RenderHtml(data);
  EXPECT_NE(SectionOf(html, "Whom to meet next").find("none"),
            std::string::npos);
  EXPECT_NE(SectionOf(html, "Deal conflicts to review").find("unavailable"),
            std::string::npos);
}

TEST(RenderHtml, AllZeroDataHasOnlyFiniteCoordinates) {
  ReportData data;
  data.generated_at = "2024-05-01T12:00:00Z";
  std::vector<Counterpart> counterparts;
  for (const char* key : {"customers", "partners", "community"}) {
    Counterpart c;
    c.key = key;
    c.title = key;
    c.service = key;
    c.available = true;
    c.model_id = "job";  // refreshed, with nothing to count
    for (const std::string& tier : overview::TierOrder()) {
      c.tiers.push_back(TierGroup(tier, 0, 0, 0));
    }
    counterparts.push_back(c);
    Detail d;
    d.key = key;
    d.available = true;
    data.details.push_back(d);
  }
  data.overview = overview::Balance(counterparts);
  data.targets_available = true;
  data.conflicts_available = true;
  const std::string html = RenderHtml(data);

  // Three counterparts: tiers, grid and histogram each; two balance charts.
  EXPECT_EQ(Count(html, "<svg class=\"chart\""), 3 * 3 + 2);
  static const std::regex kNumber(
      R"re( (x|y|x1|x2|y1|y2|width|height)="([^"]*)")re");
  static const std::regex kFinite(R"re(-?[0-9]+(\.[0-9])?)re");
  int numbers = 0;
  for (std::sregex_iterator it(html.begin(), html.end(), kNumber), end;
       it != end; ++it, ++numbers) {
    EXPECT_TRUE(std::regex_match((*it)[2].str(), kFinite)) << (*it)[0];
  }
  EXPECT_GT(numbers, 100);
  // Every bar is empty: no length along its axis.
  static const std::regex kBar(
      R"re(<rect class="bar" [^>]* width="([^"]*)" height="([^"]*)")re");
  int bars = 0;
  for (std::sregex_iterator it(html.begin(), html.end(), kBar), end; it != end;
       ++it, ++bars) {
    EXPECT_TRUE((*it)[1] == "0" || (*it)[2] == "0") << (*it)[0];
  }
  // Per counterpart 4 tier bars and 10 histogram columns; the balance has
  // 3 bars (value, cost, monetary) per counterpart and per tier.
  EXPECT_EQ(bars, 3 * (4 + 10) + 3 * 3 + 3 * 4 * 3);
  EXPECT_EQ(html.find("0 0 nan"), std::string::npos);
}

TEST(RenderHtml, EveryChartIsLabelledAndHasItsTable) {
  const std::string html = RenderHtml(Sample());
  // Each counterpart says which refresh its figures are of, and as of when.
  EXPECT_NE(html.find("values of the refresh <code>model-1</code> as of "
                      "2024-06-30T00:00:00Z."),
            std::string::npos);
  const int charts = Count(html, "<svg");
  EXPECT_EQ(charts, 3 * 3 + 2);
  EXPECT_EQ(Count(html, "<svg class=\"chart\" role=\"img\" aria-label=\""),
            charts);
  // Each chart's table follows it, before the next chart.
  for (size_t at = html.find("</svg>"); at != std::string::npos;
       at = html.find("</svg>", at + 1)) {
    const size_t table = html.find("<table", at);
    ASSERT_NE(table, std::string::npos);
    EXPECT_LT(table, html.find("<svg", at));
  }
}

TEST(HorizontalBars, BarWidthsAreProportionalToValues) {
  BarChart chart;
  chart.title = "t";
  chart.series = {"value", "cost"};
  chart.groups = {{"", "A", {{4000, "40.00%"}, {2000, "20.00%"}}},
                  {"", "B", {{0, "0.00%"}, {6000, "60.00%"}}}};
  const std::vector<double> widths = BarWidths(HorizontalBars(chart));
  ASSERT_EQ(widths.size(), 4u);
  // The axis runs from 0 to 6000 (60.00%, a multiple of its step of 20%)
  // over 720 - 64 (labels) - 57.2 (value labels) = 598.8 units.
  EXPECT_EQ(widths[0], 399.2);  // 4000 / 6000 * 598.8
  EXPECT_NEAR(widths[0] / widths[1], 2.0, 0.01);
  EXPECT_EQ(widths[2], 0);
  EXPECT_NEAR(widths[3] / widths[1], 3.0, 0.01);
}

TEST(HorizontalBars, BalanceBarsOfThePageFollowTheShares) {
  ReportData data = Sample();
  // Customers 60/30/10/0 of value, 25 each of cost (Sample's tiers).
  const std::string section =
      SectionOf(RenderHtml(data), "Balance across counterparts");
  const size_t tiers = section.find("Within each counterpart");
  ASSERT_NE(tiers, std::string::npos);
  const std::vector<double> w = BarWidths(section.substr(tiers));
  // Three bars a tier: value, cost, monetary.
  ASSERT_GE(w.size(), 12u);
  EXPECT_NEAR(w[0] / w[1], 60.0 / 25.0, 0.01);  // Platinum: value, cost
  EXPECT_EQ(w[2], w[0]);                        // Platinum monetary
  EXPECT_NEAR(w[3] / w[1], 30.0 / 25.0, 0.01);  // Gold value
  EXPECT_NEAR(w[6] / w[1], 10.0 / 25.0, 0.01);  // Iron value
  EXPECT_EQ(w[9], 0);                           // Lead brings nothing
}

TEST(Columns, HistogramHeightsAreProportional) {
  BarChart chart;
  chart.title = "t";
  chart.groups = {{"", "0-10", {{3, "3"}}}, {"", "10-20", {{6, "6"}}}};
  const std::string svg = Columns(chart);
  static const std::regex kHeight(
      R"re(<rect class="bar" x="[^"]*" y="[^"]*" width="[^"]*" height="([^"]*)")re");
  std::vector<double> heights;
  for (std::sregex_iterator it(svg.begin(), svg.end(), kHeight), end; it != end;
       ++it) {
    heights.push_back(std::stod((*it)[1]));
  }
  ASSERT_EQ(heights.size(), 2u);
  EXPECT_NEAR(heights[1] / heights[0], 2.0, 0.01);
}

TEST(AddToDetail, PutsValuesInTheirCellsAndBins) {
  Detail d;
  d.bins = 5;
  AddToDetail(5, 1, 4250, &d);
  AddToDetail(5, 1, 3750, &d);
  AddToDetail(2, 4, 10000, &d);
  ASSERT_EQ(d.grid_counts.size(), 5u);
  ASSERT_EQ(d.grid_value_hundredths.size(), 5u);
  for (const auto& row : d.grid_counts) ASSERT_EQ(row.size(), 5u);
  EXPECT_EQ(d.grid_counts[4][0], 2);
  EXPECT_EQ(d.grid_value_hundredths[4][0], 8000);
  EXPECT_EQ(d.grid_counts[1][3], 1);
  EXPECT_EQ(d.grid_value_hundredths[1][3], 10000);
  EXPECT_EQ(d.grid_counts[0][0], 0);
  EXPECT_EQ(d.prospects, 0);
  EXPECT_EQ(d.value_histogram,
            (std::vector<int64_t>{0, 0, 0, 1, 1, 0, 0, 0, 0, 1}));
}

TEST(AddToDetail, CountsProspectsOutsideTheGrid) {
  Detail d;
  AddToDetail(0, 0, 0, &d);
  AddToDetail(0, 3, 0, &d);
  EXPECT_EQ(d.prospects, 2);
  EXPECT_TRUE(d.grid_counts.empty());
  EXPECT_EQ(d.value_histogram[0], 2);
}

TEST(AddToDetail, BinsValuesByTensAndClampsTheEnds) {
  Detail d;
  for (int32_t v : {-50, 0, 999, 1000, 1999, 9000, 9999, 10000, 12000}) {
    AddToDetail(1, 1, v, &d);
  }
  EXPECT_EQ(d.value_histogram,
            (std::vector<int64_t>{3, 2, 0, 0, 0, 0, 0, 0, 0, 4}));
  EXPECT_EQ(d.grid_counts[0][0], 9);
}

TEST(AddToDetail, GrowsTheGridWhenBinsGrow) {
  Detail d;
  d.bins = 3;
  AddToDetail(3, 3, 100, &d);
  d.bins = 4;
  AddToDetail(4, 2, 200, &d);
  ASSERT_EQ(d.grid_counts.size(), 4u);
  EXPECT_EQ(d.grid_counts[2][2], 1);
  EXPECT_EQ(d.grid_counts[3][1], 1);
  EXPECT_EQ(d.grid_value_hundredths[3][1], 200);
  for (const auto& row : d.grid_value_hundredths) EXPECT_EQ(row.size(), 4u);
}

}  // namespace
}  // namespace rapport::ctl::report
