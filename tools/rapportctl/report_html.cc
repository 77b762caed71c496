// The page of `rapportctl report` (see report.h): one HTML5 file with its
// style inline, no script and no external resource, readable on screen and
// printable (each counterpart starts a printed page). Every chart (svg.h) is
// followed by a table with its numbers, and every text that comes from a
// service goes through Escape.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "tools/rapportctl/report.h"
#include "tools/rapportctl/svg.h"

namespace rapport::ctl::report {
namespace {

using overview::BalanceRow;
using overview::Counterpart;
using overview::Group;
using overview::PercentText;

// The largest grid drawn; a refresh has far fewer bins.
constexpr int kMaxBins = 20;
constexpr int kHistogramBins = 10;
// The width of a chart that has the page's width to itself.
constexpr double kWideChart = 960;
// The header of the difference of the two shares ("value minus cost").
constexpr char kValueMinusCost[] = "Value \xE2\x88\x92 cost";

constexpr char kStyle[] = R"css(
:root { --ink: #1d2433; --muted: #5b6475; --line: #dfe3ea; --soft: #f4f6fa;
  --accent: #2f6db5; --warn: #b3261e; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.5 "DejaVu Sans", system-ui, -apple-system, "Segoe UI", Roboto,
    "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 36px 40px 56px; }
header.page { border-bottom: 3px solid var(--accent); padding-bottom: 14px; }
h1 { font-size: 28px; line-height: 1.2; margin: 0 0 6px; }
h2 { font-size: 22px; margin: 48px 0 14px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 28px 0 10px; color: var(--ink); }
p { margin: 0 0 10px; max-width: 80ch; }
.meta, .note { color: var(--muted); }
.note { font-size: 13px; }
.meta code { font-size: 13px; }
nav.contents { margin: 14px 0 0; font-size: 13px; }
nav.contents a { color: var(--accent); text-decoration: none; margin-right: 18px; }
dl.figures { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr));
  gap: 10px; margin: 14px 0 8px; }
dl.figures div { background: var(--soft); border-radius: 6px; padding: 10px 14px; }
dl.figures dt { font-size: 12px; color: var(--muted); }
dl.figures dd { margin: 2px 0 0; font-size: 19px; font-weight: bold;
  font-variant-numeric: tabular-nums; white-space: nowrap; }
.negative { color: var(--warn); }
td.positive { color: #1e7a46; }
.pair { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr);
  gap: 28px; align-items: start; }
figure { margin: 0 0 14px; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart text { font-family: inherit; }
table { border-collapse: collapse; width: 100%; font-size: 13px;
  font-variant-numeric: tabular-nums; margin: 0 0 14px; }
caption { caption-side: top; text-align: left; color: var(--muted);
  font-size: 12px; padding: 0 0 6px; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line);
  text-align: left; vertical-align: top; }
thead th { background: var(--soft); font-weight: bold; border-bottom-color: #c9cfd9; }
tbody th { font-weight: normal; }
.num { text-align: right; white-space: nowrap; }
th.num { white-space: normal; }
.scroll { overflow-x: auto; }
table.grid td, table.grid thead th + th { text-align: center; }
table.grid td small { display: block; color: var(--muted); font-size: 11px; }
table.grid tbody th { white-space: nowrap; }
table.conflict { margin-bottom: 22px; }
.status { padding: 12px 16px; border-radius: 6px; background: var(--soft);
  border-left: 4px solid #9aa3b2; }
.status.unavailable { background: #fbefee; border-left-color: var(--warn); }
.status code { word-break: break-word; }
footer { margin-top: 48px; padding-top: 10px; border-top: 1px solid var(--line);
  color: var(--muted); font-size: 12px; }
@media (max-width: 900px) {
  .pair { grid-template-columns: minmax(0, 1fr); }
  dl.figures { grid-template-columns: repeat(3, minmax(0, 1fr)); }
}
@page { margin: 14mm; }
@media print {
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav.contents { display: none; }
  section.counterpart, section.targets { break-before: page; }
  .pair { grid-template-columns: minmax(0, 1fr); gap: 0; }
  h2, h3 { break-after: avoid; }
  figure, tr, dl.figures, .status { break-inside: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 8.5pt; }
  th, td { padding: 3px 5px; }
}
)css";

using overview::HundredthsText;

// A difference of two shares in percentage points: "+12.50 pts" for 1250.
std::string PointsText(int64_t basis_points) {
  return absl::StrCat(basis_points > 0 ? "+" : "", HundredthsText(basis_points),
                      " pts");
}

// An axis tick in percent: "20%" for 2000, "12.50%" for 1250.
std::string PercentTick(int64_t basis_points) {
  return basis_points % 100 == 0 ? absl::StrCat(basis_points / 100, "%")
                                 : PercentText(basis_points);
}

std::string OrDash(const std::string& text) {
  return text.empty() ? "\xE2\x80\x94" : text;  // an em dash
}

// A fragment identifier made of the key's letters, digits and '-'.
std::string AnchorOf(absl::string_view key) {
  std::string id = "cp-";
  for (char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                       (c >= '0' && c <= '9') || c == '-';
    id += plain ? c : '-';
  }
  return id;
}

std::string TitleOf(const overview::Overview& o, const std::string& key) {
  for (const Counterpart& c : o.counterparts) {
    if (c.key == key) return c.title;
  }
  return key;
}

const Detail* DetailOf(const ReportData& data, const std::string& key) {
  for (const Detail& d : data.details) {
    if (d.key == key) return &d;
  }
  return nullptr;
}

struct Column {
  std::string header;
  bool numeric = false;
  bool signed_tone = false;  // cells "+..." shown as gains, "-..." as losses
};

// A table of text cells (escaped here), with a caption saying what it holds.
std::string TableHtml(absl::string_view caption,
                      const std::vector<Column>& columns,
                      const std::vector<std::vector<std::string>>& rows,
                      absl::string_view css_class = "") {
  std::string out = "<div class=\"scroll\"><table";
  if (!css_class.empty()) absl::StrAppend(&out, " class=\"", css_class, "\"");
  absl::StrAppend(&out, ">\n<caption>", Escape(caption),
                  "</caption>\n<thead><tr>");
  for (const Column& c : columns) {
    absl::StrAppend(&out, "<th scope=\"col\"",
                    c.numeric ? " class=\"num\"" : "", ">", Escape(c.header),
                    "</th>");
  }
  absl::StrAppend(&out, "</tr></thead>\n<tbody>\n");
  for (const std::vector<std::string>& row : rows) {
    absl::StrAppend(&out, "<tr>");
    for (size_t i = 0; i < row.size(); ++i) {
      const Column* c = i < columns.size() ? &columns[i] : nullptr;
      std::string css = c != nullptr && c->numeric ? "num" : "";
      if (c != nullptr && c->signed_tone && !row[i].empty()) {
        if (row[i][0] == '+') absl::StrAppend(&css, " positive");
        if (row[i][0] == '-') absl::StrAppend(&css, " negative");
      }
      absl::StrAppend(&out, "<td", css.empty() ? "" : " class=\"" + css + "\"",
                      ">", Escape(row[i]), "</td>");
    }
    absl::StrAppend(&out, "</tr>\n");
  }
  absl::StrAppend(&out, "</tbody>\n</table></div>\n");
  return out;
}

std::string Figure(const std::string& svg) {
  return absl::StrCat("<figure>\n", svg, "</figure>\n");
}

// A chart and its table side by side (stacked when narrow or printed).
std::string Pair(const std::string& svg, const std::string& table) {
  return absl::StrCat("<div class=\"pair\">\n", Figure(svg), "<div>\n", table,
                      "</div>\n</div>\n");
}

// --- the balance ---

// The bars of a balance row: share of value, of cost to serve, of monetary.
std::vector<Bar> BalanceBars(const BalanceRow& r) {
  return {{r.value_share_bp, PercentText(r.value_share_bp)},
          {r.cost_share_bp, PercentText(r.cost_share_bp)},
          {r.monetary_share_bp, PercentText(r.monetary_share_bp)}};
}

// The cells of a balance row after its names.
std::vector<std::string> BalanceCells(const BalanceRow& r) {
  return {absl::StrCat(r.entities),
          HundredthsText(r.value_hundredths_sum),
          r.monetary.ToString(),
          r.cost_to_serve.ToString(),
          PercentText(r.value_share_bp),
          PercentText(r.monetary_share_bp),
          PercentText(r.cost_share_bp),
          PointsText(r.value_share_bp - r.cost_share_bp)};
}

BarChart BalanceChart(std::string title) {
  BarChart chart;
  chart.title = std::move(title);
  chart.width = kWideChart;
  chart.series = {"Share of value", "Share of cost to serve",
                  "Share of monetary"};
  chart.tick_label = PercentTick;
  return chart;
}

void AppendBalance(const overview::Overview& o, std::string* out) {
  absl::StrAppend(out,
                  "<section id=\"balance\" class=\"balance\">\n"
                  "<h2>Balance across counterparts</h2>\n"
                  "<p>For each counterpart, and for each tier within it, the "
                  "share of the value (the sum of the differentiation values) "
                  "next to the share of the cost of serving it, and the share "
                  "of its monetary value (what customers and partners spent "
                  "with the company; for the financial community, the market "
                  "value of the shares its members hold, as SCORING.md "
                  "section 10 defines it). Where the second bar is "
                  "longer than the first, the company spends more attention "
                  "than the value it gets back: the last column of the tables "
                  "is then negative.</p>\n");
  if (o.across.empty()) {
    absl::StrAppend(out,
                    "<p class=\"status unavailable\">The balance is "
                    "unavailable. ",
                    Escape(o.across_note), ".</p>\n</section>\n");
    return;
  }

  BarChart across = BalanceChart(
      "Each counterpart's share of all value and of all cost to serve");
  std::vector<std::vector<std::string>> across_rows;
  for (const BalanceRow& r : o.across) {
    const std::string title = TitleOf(o, r.counterpart);
    across.groups.push_back({"", title, BalanceBars(r)});
    std::vector<std::string> row = {title};
    for (std::string& cell : BalanceCells(r)) row.push_back(std::move(cell));
    across_rows.push_back(std::move(row));
  }
  absl::StrAppend(
      out, "<h3>Across counterparts</h3>\n", Figure(HorizontalBars(across)),
      TableHtml("Each counterpart's share of all counterparts together",
                {{"Counterpart"},
                 {"Scored", true},
                 {"Value", true},
                 {"Monetary", true},
                 {"Cost to serve", true},
                 {"Share of value", true},
                 {"Share of monetary", true},
                 {"Share of cost", true},
                 {kValueMinusCost, true, true}},
                across_rows));
  if (!o.across_note.empty()) {
    absl::StrAppend(out, "<p class=\"note\">", Escape(o.across_note),
                    ".</p>\n");
  }

  BarChart tiers = BalanceChart(
      "Share of value and share of cost to serve of each tier, within each "
      "counterpart");
  std::vector<std::vector<std::string>> tier_rows;
  for (const BalanceRow& r : o.balance) {
    const std::string title = TitleOf(o, r.counterpart);
    tiers.groups.push_back({title, OrDash(r.tier), BalanceBars(r)});
    std::vector<std::string> row = {title, OrDash(r.tier)};
    for (std::string& cell : BalanceCells(r)) row.push_back(std::move(cell));
    tier_rows.push_back(std::move(row));
  }
  absl::StrAppend(
      out, "<h3>Within each counterpart, by tier</h3>\n",
      Figure(HorizontalBars(tiers)),
      TableHtml("Each tier's share of its counterpart's value and cost to "
                "serve",
                {{"Counterpart"},
                 {"Tier"},
                 {"Entities", true},
                 {"Value", true},
                 {"Monetary", true},
                 {"Cost to serve", true},
                 {"Share of value", true},
                 {"Share of monetary", true},
                 {"Share of cost", true},
                 {kValueMinusCost, true, true}},
                tier_rows),
      "</section>\n");
}

// --- one counterpart ---

void AppendFigures(const Counterpart& c, std::string* out) {
  struct Stat {
    const char* name;
    std::string value;
    bool negative;
  };
  const std::vector<Stat> figures = {
      {"Entities", absl::StrCat(c.entities), false},
      {"Scored", absl::StrCat(c.total.entities), false},
      {"Monetary", c.total.monetary.ToString(), c.total.monetary.is_negative()},
      {"Cost to serve", c.total.cost_to_serve.ToString(), false},
      {"Profit", c.total.profit.ToString(), c.total.profit.is_negative()},
      {"Average value", HundredthsText(c.total.average_value_hundredths),
       false},
  };
  absl::StrAppend(out, "<dl class=\"figures\">\n");
  for (const Stat& f : figures) {
    absl::StrAppend(out, "<div><dt>", f.name, "</dt><dd",
                    f.negative ? " class=\"negative\"" : "", ">",
                    Escape(f.value), "</dd></div>\n");
  }
  absl::StrAppend(out, "</dl>\n");
}

void AppendTiers(const Counterpart& c, std::string* out) {
  absl::StrAppend(out, "<h3>Tiers</h3>\n");
  if (c.tiers.empty()) {
    absl::StrAppend(out, "<p class=\"status\">Tiers: none.</p>\n");
    return;
  }
  std::vector<Decimal> entities;
  for (const Group& g : c.tiers)
    entities.push_back(Decimal::FromUnits(g.entities));
  const std::vector<int64_t> shares = overview::Shares(entities);

  BarChart chart;
  chart.title = absl::StrCat(c.title, ": scored entities by tier");
  chart.width = kWideChart;
  chart.series = {"Entities"};
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < c.tiers.size(); ++i) {
    const Group& g = c.tiers[i];
    chart.groups.push_back(
        {"",
         OrDash(g.name),
         {{g.entities,
           absl::StrCat(g.entities, " (", PercentText(shares[i]), ")")}}});
    rows.push_back({OrDash(g.name), absl::StrCat(g.entities),
                    PercentText(shares[i]), g.monetary.ToString(),
                    g.cost_to_serve.ToString(), g.profit.ToString(),
                    HundredthsText(g.average_value_hundredths)});
  }
  absl::StrAppend(out, Figure(HorizontalBars(chart)),
                  TableHtml(absl::StrCat(c.title, " by tier, best first"),
                            {{"Tier"},
                             {"Entities", true},
                             {"Share", true},
                             {"Monetary", true},
                             {"Cost to serve", true},
                             {"Profit", true, true},
                             {"Average value", true}},
                            rows));
}

void AppendSegments(const Counterpart& c, std::string* out) {
  if (c.segments.empty()) return;
  std::vector<std::vector<std::string>> rows;
  for (const Group& g : c.segments) {
    rows.push_back({OrDash(g.name), absl::StrCat(g.entities),
                    g.monetary.ToString(), g.cost_to_serve.ToString(),
                    g.profit.ToString(),
                    HundredthsText(g.average_value_hundredths)});
  }
  absl::StrAppend(out, "<h3>Segments</h3>\n",
                  TableHtml(absl::StrCat(c.title, " by RFM segment"),
                            {{"Segment"},
                             {"Entities", true},
                             {"Monetary", true},
                             {"Cost to serve", true},
                             {"Profit", true, true},
                             {"Average value", true}},
                            rows));
}

// The count and value sum of cell (r, f), 1-based; zero outside the grid.
int64_t CellOf(const std::vector<std::vector<int64_t>>& grid, int r, int f) {
  if (r < 1 || f < 1 || static_cast<size_t>(r) > grid.size()) return 0;
  const std::vector<int64_t>& row = grid[r - 1];
  return static_cast<size_t>(f) > row.size() ? 0 : row[f - 1];
}

void AppendGrid(const Counterpart& c, const Detail& d, std::string* out) {
  absl::StrAppend(out, "<h3>Recency by frequency</h3>\n");
  const int bins = std::min(
      kMaxBins, std::max(d.bins, static_cast<int>(d.grid_counts.size())));
  if (bins < 1) {
    absl::StrAppend(out, "<p class=\"status\">Scored values: none.</p>\n");
    return;
  }
  HeatMap map;
  map.title = absl::StrCat(c.title,
                           ": scored entities by recency score R "
                           "(rows, ",
                           bins,
                           " at the top) and frequency score "
                           "F (columns)");
  map.row_axis = "Recency score (R)";
  map.column_axis = "Frequency score (F)";
  for (int f = 1; f <= bins; ++f)
    map.column_labels.push_back(absl::StrCat("F ", f));
  std::string rows_html;
  for (int r = bins; r >= 1; --r) {
    map.row_labels.push_back(absl::StrCat("R ", r));
    std::vector<int64_t>& counts = map.counts.emplace_back();
    absl::StrAppend(&rows_html, "<tr><th scope=\"row\">R ", r, "</th>");
    for (int f = 1; f <= bins; ++f) {
      const int64_t n = CellOf(d.grid_counts, r, f);
      const int64_t sum = CellOf(d.grid_value_hundredths, r, f);
      counts.push_back(n);
      // The average rounded half away from zero, as the services round.
      const int64_t average =
          n <= 0 ? 0 : (sum >= 0 ? (sum + n / 2) / n : (sum - n / 2) / n);
      absl::StrAppend(&rows_html, "<td>", n, "<small>",
                      n > 0 ? HundredthsText(average) : "\xE2\x80\x94",
                      "</small></td>");
    }
    absl::StrAppend(&rows_html, "</tr>\n");
  }
  std::string table = absl::StrCat(
      "<div class=\"scroll\"><table class=\"grid\">\n<caption>Entities in each "
      "cell and, below, "
      "their average value</caption>\n<thead><tr><th scope=\"col\">R \\ "
      "F</th>");
  for (int f = 1; f <= bins; ++f) {
    absl::StrAppend(&table, "<th scope=\"col\">F ", f, "</th>");
  }
  absl::StrAppend(
      &table, "</tr></thead>\n<tbody>\n", rows_html,
      "</tbody>\n</table></div>\n<p class=\"note\">Prospects (no purchase "
      "yet, R = F = 0, not in the grid): ",
      d.prospects, ".</p>\n");
  absl::StrAppend(out, Pair(HeatMapChart(map), table));
}

void AppendHistogram(const Counterpart& c, const Detail& d, std::string* out) {
  absl::StrAppend(out, "<h3>Distribution of value</h3>\n");
  std::vector<int64_t> counts(kHistogramBins, 0);
  std::vector<Decimal> parts;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (i < d.value_histogram.size()) counts[i] = d.value_histogram[i];
    parts.push_back(Decimal::FromUnits(counts[i]));
  }
  const std::vector<int64_t> shares = overview::Shares(parts);
  BarChart chart;
  chart.title = absl::StrCat(c.title, ": entities by value, in bins of 10");
  chart.series = {"Entities"};
  std::vector<std::vector<std::string>> rows;
  for (int i = 0; i < kHistogramBins; ++i) {
    const int64_t n = counts[i];
    const std::string range =
        absl::StrCat(10 * i, "\xE2\x80\x93", 10 * i + 10);  // an en dash
    chart.groups.push_back({"", range, {{n, absl::StrCat(n)}}});
    rows.push_back(
        {i + 1 < kHistogramBins
             ? absl::StrCat("from ", 10 * i, " to under ", 10 * i + 10)
             : absl::StrCat("from ", 10 * i, " to 100"),
         absl::StrCat(n), PercentText(shares[i])});
  }
  absl::StrAppend(
      out,
      Pair(Columns(chart),
           TableHtml(absl::StrCat(c.title,
                                  " by value (0 to 100; prospects "
                                  "in the first bin)"),
                     {{"Value"}, {"Entities", true}, {"Share", true}}, rows)));
}

void AppendCounterpart(const ReportData& data, const Counterpart& c,
                       std::string* out) {
  absl::StrAppend(out, "<section id=\"", AnchorOf(c.key),
                  "\" class=\"counterpart\">\n<h2>", Escape(c.title),
                  "</h2>\n");
  if (!c.available) {
    // Only the status code: the message may name addresses or internals,
    // and the page is meant to be passed around (rapportctl prints the
    // whole message on stderr).
    const std::string code = c.error.substr(0, c.error.find(':'));
    absl::StrAppend(out, "<p class=\"status unavailable\">The ",
                    Escape(c.service), " service is unavailable: <code>",
                    Escape(OrDash(code)), "</code></p>\n</section>\n");
    return;
  }
  absl::StrAppend(out, "<p class=\"meta\">From the ", Escape(c.service),
                  " service; ");
  if (c.model_id.empty()) {
    absl::StrAppend(out, "no values stored yet.</p>\n");
  } else {
    absl::StrAppend(
        out, "values of the refresh <code>", Escape(c.model_id), "</code>",
        c.as_of.empty() ? "" : absl::StrCat(" as of ", Escape(c.as_of)),
        ".</p>\n");
  }
  AppendFigures(c, out);
  AppendTiers(c, out);
  AppendSegments(c, out);
  const Detail* d = DetailOf(data, c.key);
  if (d == nullptr || !d->available) {
    absl::StrAppend(out,
                    "<p class=\"status unavailable\">The exported values are "
                    "unavailable, so the grid and the distribution of value "
                    "are not shown.</p>\n</section>\n");
    return;
  }
  AppendGrid(c, *d, out);
  AppendHistogram(c, *d, out);
  absl::StrAppend(out, "</section>\n");
}

// --- targets and conflicts ---

void AppendTargets(const ReportData& data, std::string* out) {
  absl::StrAppend(out,
                  "<section id=\"targets\" class=\"targets\">\n"
                  "<h2>Whom to meet next</h2>\n");
  if (!data.targets_available) {
    absl::StrAppend(out,
                    "<p class=\"status unavailable\">Targets: unavailable "
                    "(the financial-community service did not answer).</p>\n"
                    "</section>\n");
    return;
  }
  if (data.targets.empty()) {
    absl::StrAppend(out,
                    "<p class=\"status\">Targets: none.</p>\n</section>\n");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < data.targets.size(); ++i) {
    const Target& t = data.targets[i];
    rows.push_back({absl::StrCat(i + 1), OrDash(t.display_name), OrDash(t.kind),
                    OrDash(t.score), OrDash(t.reason), t.member_id});
  }
  absl::StrAppend(
      out,
      TableHtml("The financial community's members to meet next, best first",
                {{"#", true},
                 {"Name"},
                 {"Kind"},
                 {"Score", true},
                 {"Why"},
                 {"Member id"}},
                rows),
      "</section>\n");
}

void AppendConflicts(const ReportData& data, std::string* out) {
  absl::StrAppend(out,
                  "<section id=\"conflicts\" class=\"conflicts\">\n"
                  "<h2>Deal conflicts to review</h2>\n");
  if (!data.conflicts_available) {
    absl::StrAppend(out,
                    "<p class=\"status unavailable\">Deal conflicts: "
                    "unavailable (the partner service did not answer).</p>\n"
                    "</section>\n");
    return;
  }
  if (data.conflicts.empty()) {
    absl::StrAppend(
        out, "<p class=\"status\">Deal conflicts: none.</p>\n</section>\n");
    return;
  }
  absl::StrAppend(out,
                  "<p>Deals that more than one partner registered for the "
                  "same account. In each, the earlier registration comes "
                  "first.</p>\n");
  if (data.more_conflicts) {
    absl::StrAppend(out, "<p class=\"note\">The first ", data.conflicts.size(),
                    " conflicts; more are waiting (rapportctl partners deals "
                    "conflicts --all lists them all).</p>\n");
  }
  for (const Conflict& conflict : data.conflicts) {
    std::vector<std::vector<std::string>> rows;
    for (size_t i = 0; i < conflict.claims.size(); ++i) {
      const Claim& c = conflict.claims[i];
      const std::string partner =
          c.partner_name.empty()
              ? c.partner_id
              : absl::StrCat(c.partner_name, " (", c.partner_id, ")");
      rows.push_back({absl::StrCat(i + 1), c.deal_id, partner,
                      OrDash(c.account), OrDash(c.amount), OrDash(c.state),
                      OrDash(c.registered_at), OrDash(c.tier),
                      OrDash(c.value)});
    }
    absl::StrAppend(
        out, TableHtml(absl::StrCat("Account ", conflict.account_key, ": ",
                                    conflict.claims.size(), " claims"),
                       {{"#", true},
                        {"Deal"},
                        {"Partner"},
                        {"Account"},
                        {"Amount", true},
                        {"State"},
                        {"Registered at"},
                        {"Partner tier"},
                        {"Partner value", true}},
                       rows, "conflict"));
  }
  absl::StrAppend(out, "</section>\n");
}

}  // namespace

std::string RenderHtml(const ReportData& data) {
  const overview::Overview& o = data.overview;
  std::string out = absl::StrCat(
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, "
      "initial-scale=1\">\n<title>Rapport: the balance across "
      "stakeholders</title>\n<style>",
      kStyle,
      "</style>\n</head>\n<body>\n<main>\n<header class=\"page\">\n"
      "<h1>Rapport: the balance across stakeholders</h1>\n"
      "<p class=\"meta\">Generated at <time datetime=\"",
      Escape(data.generated_at), "\">", Escape(data.generated_at),
      "</time></p>\n<nav class=\"contents\"><a href=\"#balance\">Balance</a>");
  for (const Counterpart& c : o.counterparts) {
    absl::StrAppend(&out, "<a href=\"#", AnchorOf(c.key), "\">",
                    Escape(c.title), "</a>");
  }
  absl::StrAppend(&out,
                  "<a href=\"#targets\">Whom to meet next</a>"
                  "<a href=\"#conflicts\">Deal conflicts</a></nav>\n"
                  "</header>\n");
  AppendBalance(o, &out);
  for (const Counterpart& c : o.counterparts) AppendCounterpart(data, c, &out);
  AppendTargets(data, &out);
  AppendConflicts(data, &out);
  absl::StrAppend(
      &out,
      "<footer>Written by <code>rapportctl report</code>. Every "
      "chart has a table with the same numbers next to it.</footer>\n"
      "</main>\n</body>\n</html>\n");
  return out;
}

void AddToDetail(int r, int f, int32_t value_hundredths, Detail* detail) {
  if (r == 0 || f == 0) {
    ++detail->prospects;
  } else if (r >= 1 && f >= 1 && r <= detail->bins && f <= detail->bins) {
    // Allocated on the first value, and grown if `bins` grew since.
    const size_t bins = static_cast<size_t>(detail->bins);
    for (auto* grid : {&detail->grid_counts, &detail->grid_value_hundredths}) {
      if (grid->size() < bins) grid->resize(bins);
      for (std::vector<int64_t>& row : *grid) {
        if (row.size() < bins) row.resize(bins, 0);
      }
    }
    detail->grid_counts[r - 1][f - 1] += 1;
    detail->grid_value_hundredths[r - 1][f - 1] += value_hundredths;
  }
  if (detail->value_histogram.size() < kHistogramBins) {
    detail->value_histogram.resize(kHistogramBins, 0);
  }
  const int32_t bin = std::min(kHistogramBins - 1,
                               std::max<int32_t>(0, value_hundredths) / 1000);
  detail->value_histogram[bin] += 1;
}

}  // namespace rapport::ctl::report
