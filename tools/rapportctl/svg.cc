// The report's charts as SVG text (see svg.h). Geometry is computed in
// doubles and printed with at most one decimal, so that the output is the
// same on every run; every division is by a span that is never zero.
#include "tools/rapportctl/svg.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rapport::ctl::report {
namespace {

// Series colours, distinguishable by people with the common colour
// deficiencies: blue, orange, green, purple.
constexpr const char* kPalette[] = {"#2f6db5", "#e08a1e", "#3a9a6a", "#8a5cb8"};
constexpr const char* kInk = "#1d2433";
constexpr const char* kMuted = "#5b6475";
constexpr const char* kGrid = "#e3e7ee";
constexpr const char* kAxis = "#9aa3b2";

const char* SeriesColour(size_t i) {
  return kPalette[i % (sizeof(kPalette) / sizeof(kPalette[0]))];
}

// A coordinate: one decimal, none when whole, never "nan", "inf" or "-0".
std::string Num(double v) {
  if (!std::isfinite(v)) v = 0;
  std::string s = absl::StrFormat("%.1f", v);
  if (s == "-0.0") s = "0.0";
  if (absl::EndsWith(s, ".0")) s.resize(s.size() - 2);
  return s;
}

// About how wide `text` is drawn at `font_px` (DejaVu Sans and the usual
// sans-serif faces average 0.6 em a character).
double TextWidth(absl::string_view text, int font_px) {
  int characters = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++characters;  // not a UTF-8 continuation byte
  }
  return characters * font_px * 0.6;
}

// An axis from `lo` (<= 0) to `hi` (>= 0) in steps of `step`, both ends
// multiples of the step, with hi > lo.
struct Scale {
  int64_t lo = 0;
  int64_t hi = 1;
  std::vector<int64_t> ticks = {0};

  // Where `v` falls on an axis `length` long.
  double At(int64_t v, double length) const {
    return static_cast<double>(v - lo) * length / static_cast<double>(hi - lo);
  }
};

// 1, 2 or 5 times a power of ten, at least a quarter of `span`.
int64_t NiceStep(int64_t span) {
  const int64_t target = std::max<int64_t>(1, (span + 3) / 4);
  int64_t power = 1;
  while (power <= target / 10) power *= 10;
  for (int64_t m : {1, 2, 5}) {
    if (m * power >= target) return m * power;
  }
  return 10 * power;
}

Scale ScaleOf(int64_t min, int64_t max) {
  Scale s;
  const int64_t lo = std::min<int64_t>(0, min);
  const int64_t hi = std::max<int64_t>(0, max);
  if (lo == hi) return s;  // all zero: 0..1, one tick at 0
  const int64_t step = NiceStep(hi - lo);
  s.hi = (hi + step - 1) / step * step;
  s.lo = -((-lo + step - 1) / step * step);
  s.ticks.clear();
  for (int64_t t = s.lo; t <= s.hi; t += step) s.ticks.push_back(t);
  return s;
}

Scale ScaleOf(const BarChart& chart) {
  int64_t min = 0, max = 0;
  for (const BarGroup& g : chart.groups) {
    for (const Bar& b : g.bars) {
      min = std::min(min, b.value);
      max = std::max(max, b.value);
    }
  }
  return ScaleOf(min, max);
}

std::string TickText(const BarChart& chart, int64_t v) {
  return chart.tick_label ? chart.tick_label(v) : absl::StrCat(v);
}

std::string SeriesName(const BarChart& chart, size_t i) {
  return i < chart.series.size() ? chart.series[i] : "";
}

// <svg ...> with its title, for a drawing `width` by `height`.
std::string Open(absl::string_view title, double width, double height) {
  const std::string t = Escape(title);
  return absl::StrCat("<svg class=\"chart\" role=\"img\" aria-label=\"", t,
                      "\" width=\"", Num(width), "\" height=\"", Num(height),
                      "\" viewBox=\"0 0 ", Num(width), " ", Num(height),
                      "\">\n<title>", t, "</title>\n");
}

std::string Text(double x, double y, absl::string_view anchor, int font_px,
                 absl::string_view fill, absl::string_view text,
                 absl::string_view extra = "") {
  return absl::StrCat("<text x=\"", Num(x), "\" y=\"", Num(y),
                      "\" text-anchor=\"", anchor, "\" font-size=\"", font_px,
                      "\" fill=\"", fill, "\"", extra, ">", Escape(text),
                      "</text>\n");
}

std::string Rect(double x, double y, double w, double h, absl::string_view fill,
                 absl::string_view css_class, absl::string_view tooltip) {
  return absl::StrCat("<rect class=\"", css_class, "\" x=\"", Num(x), "\" y=\"",
                      Num(y), "\" width=\"", Num(w), "\" height=\"", Num(h),
                      "\" fill=\"", fill, "\"><title>", Escape(tooltip),
                      "</title></rect>\n");
}

std::string Line(double x1, double y1, double x2, double y2,
                 absl::string_view stroke) {
  return absl::StrCat("<line x1=\"", Num(x1), "\" y1=\"", Num(y1), "\" x2=\"",
                      Num(x2), "\" y2=\"", Num(y2), "\" stroke=\"", stroke,
                      "\" stroke-width=\"1\"/>\n");
}

// The legend of a chart with two or more series, on one line from (x, y);
// returns the height it takes (0 without a legend).
double Legend(const BarChart& chart, double x, double y, std::string* out) {
  if (chart.series.size() < 2) return 0;
  for (size_t i = 0; i < chart.series.size(); ++i) {
    absl::StrAppend(out, "<rect x=\"", Num(x), "\" y=\"", Num(y + 2),
                    "\" width=\"12\" height=\"12\" rx=\"2\" fill=\"",
                    SeriesColour(i), "\"/>\n");
    absl::StrAppend(out,
                    Text(x + 18, y + 12, "start", 13, kInk, chart.series[i]));
    x += 18 + TextWidth(chart.series[i], 13) + 24;
  }
  return 26;
}

}  // namespace

std::string Escape(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string HorizontalBars(const BarChart& chart) {
  constexpr double kBar = 16, kBarGap = 3, kGroupGap = 11, kSection = 30;
  const double width = std::max(chart.width, 320.0);
  const Scale scale = ScaleOf(chart);

  double label_width = 0, value_width = 0;
  for (const BarGroup& g : chart.groups) {
    label_width = std::max(label_width, TextWidth(g.label, 13));
    for (const Bar& b : g.bars) {
      value_width = std::max(value_width, TextWidth(b.label, 12));
    }
  }
  const double plot_x = std::clamp(label_width + 18, 64.0, 240.0);
  const double plot_width =
      width - plot_x - std::clamp(value_width + 14, 40.0, 180.0);

  std::string head, bars;
  double y = 4;
  y += Legend(chart, plot_x, y, &head);
  // The grid lines run down each band of bars, not across section titles.
  std::vector<std::pair<double, double>> bands = {{y, y}};
  bool band_has_bars = false;
  y += 6;
  const double zero_x = plot_x + scale.At(0, plot_width);
  const std::string* section = nullptr;
  for (const BarGroup& g : chart.groups) {
    if (!g.section.empty() && (section == nullptr || *section != g.section)) {
      if (section != nullptr) y += 4;
      if (band_has_bars) {
        bands.back().second = y;
      } else {
        bands.pop_back();  // a band with no bar (above the first section)
      }
      absl::StrAppend(&bars, Text(0, y + 18, "start", 14, kInk, g.section,
                                  " font-weight=\"bold\""));
      y += kSection;
      bands.push_back({y - 4, y - 4});
      band_has_bars = false;
      section = &g.section;
    }
    band_has_bars = true;
    const double group_height =
        g.bars.empty() ? kBar
                       : g.bars.size() * kBar + (g.bars.size() - 1) * kBarGap;
    absl::StrAppend(&bars, Text(plot_x - 10, y + group_height / 2 + 4.5, "end",
                                13, kInk, g.label));
    for (size_t i = 0; i < g.bars.size(); ++i) {
      const Bar& b = g.bars[i];
      const double end_x = plot_x + scale.At(b.value, plot_width);
      const double x = std::min(zero_x, end_x);
      const double w = std::abs(end_x - zero_x);
      const std::string series = SeriesName(chart, i);
      absl::StrAppend(
          &bars, Rect(x, y, w, kBar, SeriesColour(i), "bar",
                      absl::StrCat(g.section.empty() ? "" : g.section + ", ",
                                   g.label, series.empty() ? "" : ", " + series,
                                   ": ", b.label)));
      absl::StrAppend(&bars, Text(std::max(zero_x, end_x) + 5, y + kBar - 4,
                                  "start", 12, kInk, b.label));
      y += kBar + kBarGap;
    }
    if (!g.bars.empty()) y -= kBarGap;
    y += kGroupGap;
  }
  const double plot_bottom = y;
  if (band_has_bars) {
    bands.back().second = plot_bottom;
  } else {
    bands.pop_back();
  }

  std::string grid;
  for (int64_t t : scale.ticks) {
    const double x = plot_x + scale.At(t, plot_width);
    for (const auto& [top, bottom] : bands) {
      if (bottom > top) {
        absl::StrAppend(&grid, Line(x, top, x, bottom, t == 0 ? kAxis : kGrid));
      }
    }
    absl::StrAppend(&grid, Text(x, plot_bottom + 15, "middle", 12, kMuted,
                                TickText(chart, t)));
  }
  return absl::StrCat(Open(chart.title, width, plot_bottom + 24), head, grid,
                      bars, "</svg>\n");
}

std::string Columns(const BarChart& chart) {
  constexpr double kPlotHeight = 190, kHeadroom = 20;
  const double width = std::max(chart.width, 320.0);
  const Scale scale = ScaleOf(chart);

  double tick_width = 0;
  for (int64_t t : scale.ticks) {
    tick_width = std::max(tick_width, TextWidth(TickText(chart, t), 12));
  }
  const double plot_x = std::clamp(tick_width + 14, 32.0, 120.0);
  const double plot_width = width - plot_x - 8;

  std::string head, body;
  double top = 4;
  top += Legend(chart, plot_x, top, &head);
  top += kHeadroom;
  const double plot_bottom = top + kPlotHeight;
  const double zero_y = plot_bottom - scale.At(0, kPlotHeight);

  for (int64_t t : scale.ticks) {
    const double y = plot_bottom - scale.At(t, kPlotHeight);
    absl::StrAppend(
        &body, Line(plot_x, y, plot_x + plot_width, y, t == 0 ? kAxis : kGrid));
    absl::StrAppend(
        &body, Text(plot_x - 6, y + 4, "end", 12, kMuted, TickText(chart, t)));
  }
  const size_t n = std::max<size_t>(1, chart.groups.size());
  const double band = plot_width / static_cast<double>(n);
  for (size_t gi = 0; gi < chart.groups.size(); ++gi) {
    const BarGroup& g = chart.groups[gi];
    const double band_x = plot_x + band * static_cast<double>(gi);
    const double inner = band * 0.72;
    const double column =
        inner / static_cast<double>(std::max<size_t>(1, g.bars.size()));
    for (size_t i = 0; i < g.bars.size(); ++i) {
      const Bar& b = g.bars[i];
      const double end_y = plot_bottom - scale.At(b.value, kPlotHeight);
      const double x = band_x + (band - inner) / 2 + column * i;
      const std::string series = SeriesName(chart, i);
      absl::StrAppend(
          &body, Rect(x, std::min(zero_y, end_y), column,
                      std::abs(zero_y - end_y), SeriesColour(i), "bar",
                      absl::StrCat(g.label, series.empty() ? "" : ", " + series,
                                   ": ", b.label)));
      absl::StrAppend(&body, Text(x + column / 2, std::min(zero_y, end_y) - 5,
                                  "middle", 12, kInk, b.label));
    }
    absl::StrAppend(&body, Text(band_x + band / 2, plot_bottom + 17, "middle",
                                12, kMuted, g.label));
  }
  return absl::StrCat(Open(chart.title, width, plot_bottom + 26), head, body,
                      "</svg>\n");
}

std::string HeatMapChart(const HeatMap& map) {
  constexpr double kCell = 64, kTop = 6, kBottom = 46;
  const size_t rows = map.row_labels.size();
  const size_t columns = map.column_labels.size();
  double label_width = 0;
  for (const std::string& l : map.row_labels) {
    label_width = std::max(label_width, TextWidth(l, 12));
  }
  const double grid_x = 30 + label_width + 10;
  const double width = grid_x + kCell * static_cast<double>(columns) + 6;
  const double height = kTop + kCell * static_cast<double>(rows) + kBottom;

  auto count = [&](size_t r, size_t c) -> int64_t {
    if (r >= map.counts.size() || c >= map.counts[r].size()) return 0;
    return map.counts[r][c];
  };
  int64_t max = 0;
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns; ++c) max = std::max(max, count(r, c));
  }

  std::string out = Open(map.title, width, height);
  for (size_t r = 0; r < rows; ++r) {
    const double y = kTop + kCell * static_cast<double>(r);
    absl::StrAppend(&out, Text(grid_x - 8, y + kCell / 2 + 4, "end", 12, kInk,
                               map.row_labels[r]));
    for (size_t c = 0; c < columns; ++c) {
      const double x = grid_x + kCell * static_cast<double>(c);
      const int64_t n = count(r, c);
      // Shade in thousandths: empty cells nearly white, any count at least
      // a light tint, the largest count the darkest.
      const int64_t shade =
          n <= 0 || max <= 0 ? 0 : 180 + (820 * n + max / 2) / max;
      auto channel = [shade](int from, int to) {
        return from + static_cast<int>((to - from) * shade / 1000);
      };
      const std::string fill =
          absl::StrFormat("#%02x%02x%02x", channel(0xf2, 0x1d),
                          channel(0xf5, 0x4e), channel(0xfa, 0x89));
      absl::StrAppend(&out, "<rect class=\"cell\" x=\"", Num(x + 1), "\" y=\"",
                      Num(y + 1), "\" width=\"", Num(kCell - 2), "\" height=\"",
                      Num(kCell - 2), "\" rx=\"3\" fill=\"", fill, "\"><title>",
                      Escape(absl::StrCat(map.row_labels[r], ", ",
                                          map.column_labels[c], ": ", n)),
                      "</title></rect>\n");
      absl::StrAppend(&out,
                      Text(x + kCell / 2, y + kCell / 2 + 5, "middle", 14,
                           shade > 560 ? "#ffffff" : kInk, absl::StrCat(n)));
    }
  }
  const double grid_bottom = kTop + kCell * static_cast<double>(rows);
  for (size_t c = 0; c < columns; ++c) {
    absl::StrAppend(
        &out, Text(grid_x + kCell * (static_cast<double>(c) + 0.5),
                   grid_bottom + 16, "middle", 12, kInk, map.column_labels[c]));
  }
  absl::StrAppend(
      &out, Text(grid_x + kCell * static_cast<double>(columns) / 2,
                 grid_bottom + 38, "middle", 12, kMuted, map.column_axis));
  const double middle = kTop + kCell * static_cast<double>(rows) / 2;
  absl::StrAppend(&out, Text(0, 0, "middle", 12, kMuted, map.row_axis,
                             absl::StrCat(" transform=\"translate(14 ",
                                          Num(middle), ") rotate(-90)\"")));
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace rapport::ctl::report
