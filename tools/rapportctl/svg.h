// The charts of `rapportctl report`: plain inline SVG text for an HTML5 page
// (no script, no external reference), written from the data alone so that
// the same data always gives the same bytes.
//
//   BarChart chart;
//   chart.title = "Entities by tier";
//   chart.series = {"Entities"};
//   chart.groups = {{"", "Platinum", {{12, "12"}}},
//                   {"", "Gold", {{30, "30"}}}};
//   std::string svg = HorizontalBars(chart);  // <svg class="chart" ...
//
// Every chart is an <svg class="chart" role="img" aria-label="..."> whose
// label is the chart's title. Bars are <rect class="bar"> whose length is
// proportional to their value on an axis that starts at zero and ends at a
// round number; all-zero data draws empty bars on an axis from 0, never a
// division by zero. The page puts a table with the same numbers next to each
// chart: the charts carry no number that the table does not.
#ifndef RAPPORT_TOOLS_RAPPORTCTL_SVG_H_
#define RAPPORT_TOOLS_RAPPORTCTL_SVG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace rapport::ctl::report {

// `text` with & < > " ' replaced by entities: safe inside HTML and SVG text
// and inside quoted attribute values.
std::string Escape(absl::string_view text);

// One bar: its length and the text written at its end ("25.00%", "120").
struct Bar {
  int64_t value = 0;
  std::string label;
};

// The bars of one label, one per series of the chart. When `section` is not
// empty and differs from the previous group's, a band titled `section` starts
// before the group (horizontal bars only).
struct BarGroup {
  std::string section;
  std::string label;
  std::vector<Bar> bars;
};

struct BarChart {
  std::string title;                // the aria-label and the <title>
  std::vector<std::string> series;  // a legend is drawn for two or more
  std::vector<BarGroup> groups;
  double width = 720;  // of the drawing; the page scales it down to fit
  // The text of an axis tick, in the unit of Bar::value; the number itself
  // when not set.
  std::function<std::string(int64_t)> tick_label;
};

// Bars from left to right, groups from top to bottom.
std::string HorizontalBars(const BarChart& chart);

// Columns from bottom to top, groups from left to right (a histogram).
std::string Columns(const BarChart& chart);

// A grid of counts as coloured cells, darker for more, each cell labelled
// with its count.
struct HeatMap {
  std::string title;
  std::string row_axis;                      // "Recency (R)"
  std::string column_axis;                   // "Frequency (F)"
  std::vector<std::string> row_labels;       // top to bottom
  std::vector<std::string> column_labels;    // left to right
  std::vector<std::vector<int64_t>> counts;  // [row][column]; missing: 0
};

std::string HeatMapChart(const HeatMap& map);

}  // namespace rapport::ctl::report

#endif  // RAPPORT_TOOLS_RAPPORTCTL_SVG_H_
