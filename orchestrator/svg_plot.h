// A small SVG plotting layer for the report: axes (linear or log, with readable ticks even
// when the data spans less than a decade), markers with error bars, lines, reference lines
// and a legend. Plain data in, one self-contained <svg> out; no scripting, so the files
// open in any browser and embed in HTML and Markdown viewers.
#pragma once

#include <string>
#include <vector>

namespace kdx {

struct PlotAxis {
  std::string label;
  bool log = false;
  double lo = 0, hi = 1;  // the data range; the plot pads it
  double scale = 1;       // tick labels show value * scale (F1 0..1 as %)
  std::string suffix;     // "x", " ms"
};

struct PlotMarker {
  double x = 0, y = 0, y_err = 0;  // y_err > 0: a vertical bar of +/- y_err
  std::string shape = "circle";    // circle | square | triangle | diamond
  std::string color = "#1f77b4";
  bool filled = true;
  std::string title;  // hover text
};

struct PlotLine {
  std::vector<std::pair<double, double>> xy;
  std::string color = "#1f77b4";
  std::string dash;  // "" solid, "6,4" dashed
  double width = 1.5;
  std::string title;
};

struct PlotReference {  // a horizontal line across the plot, labelled
  double y = 0;
  std::string label, color = "#444";
};

struct LegendItem {
  std::string label, shape, color;  // shape "line" draws a line sample
  bool filled = true;
  std::string dash;
};

struct Plot {
  std::string title;
  PlotAxis x, y;
  std::vector<PlotMarker> markers;
  std::vector<PlotLine> lines;
  std::vector<PlotReference> references;
  std::vector<LegendItem> legend;
  double width = 480, height = 360;
};

// Tick positions inside [lo, hi]: 1-2-5 per decade on a log axis when that gives at least
// three, else evenly spaced round values (so 2.2x..2.5x still gets 2.2, 2.3, 2.4, 2.5).
std::vector<double> ticks(double lo, double hi, bool log);

// The <svg> element; `x`, `y` place it when it is one panel of a larger picture.
std::string render_plot(const Plot& plot, double x = 0, double y = 0, bool standalone = true);

// Several panels side by side in one <svg>.
std::string render_panels(const std::vector<Plot>& panels);

}  // namespace kdx
