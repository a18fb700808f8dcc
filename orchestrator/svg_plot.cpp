#include "orchestrator/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace kdx {
namespace {

std::string f(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<')
      o += "&lt;";
    else if (c == '>')
      o += "&gt;";
    else if (c == '&')
      o += "&amp;";
    else if (c == '"')
      o += "&quot;";
    else
      o += c;
  }
  return o;
}

std::string tick_label(double v, const PlotAxis& a) {
  double s = v * a.scale;
  char buf[32];
  double mag = std::fabs(s);
  if (mag >= 100 || std::fabs(s - std::round(s)) < 1e-9)
    std::snprintf(buf, sizeof buf, "%.0f", s);
  else if (mag >= 1)
    std::snprintf(buf, sizeof buf, std::fabs(s * 10 - std::round(s * 10)) < 1e-6 ? "%.1f" : "%.2f",
                  s);
  else
    std::snprintf(buf, sizeof buf, "%.2g", s);
  return buf + a.suffix;
}

std::string shape_svg(const std::string& shape, double x, double y, const std::string& color,
                      bool filled, double r = 5) {
  std::string st = " fill=\"" + (filled ? color : std::string("white")) + "\" stroke=\"" + color +
                   "\" stroke-width=\"2\"";
  if (shape == "square")
    return "<rect x=\"" + f(x - r) + "\" y=\"" + f(y - r) + "\" width=\"" + f(2 * r) +
           "\" height=\"" + f(2 * r) + "\"" + st + "/>";
  if (shape == "triangle")
    return "<polygon points=\"" + f(x) + "," + f(y - r - 1) + " " + f(x - r - 1) + "," + f(y + r) +
           " " + f(x + r + 1) + "," + f(y + r) + "\"" + st + "/>";
  if (shape == "diamond")
    return "<polygon points=\"" + f(x) + "," + f(y - r - 1) + " " + f(x + r + 1) + "," + f(y) +
           " " + f(x) + "," + f(y + r + 1) + " " + f(x - r - 1) + "," + f(y) + "\"" + st + "/>";
  return "<circle cx=\"" + f(x) + "\" cy=\"" + f(y) + "\" r=\"" + f(r) + "\"" + st + "/>";
}

}  // namespace

std::vector<double> ticks(double lo, double hi, bool log) {
  std::vector<double> out;
  if (!(hi > lo)) return {lo};
  if (log && lo > 0) {
    for (double decade = std::pow(10, std::floor(std::log10(lo))); decade <= hi; decade *= 10)
      for (double m : {1.0, 2.0, 5.0})
        if (decade * m >= lo * (1 - 1e-9) && decade * m <= hi * (1 + 1e-9))
          out.push_back(decade * m);
    if (out.size() >= 3) return out;
    out.clear();
  }
  double raw = (hi - lo) / 5, p = std::pow(10, std::floor(std::log10(raw))), step = p;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * p) {
      step = m * p;
      break;
    }
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    out.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return out;
}

std::string render_plot(const Plot& p, double ox, double oy, bool standalone) {
  const double W = p.width, H = p.height, L = 58, T = 34, B = 48;
  const double R = p.legend.empty() ? 16 : 150;
  // Data range, padded: a log axis by a factor, a linear one by 5%.
  auto padded = [](const PlotAxis& a) {
    double lo = a.lo, hi = a.hi;
    if (a.log) {
      if (hi <= lo) hi = lo * 2;
      double k = std::pow(hi / lo, 0.06);
      return std::pair{lo / k, hi * k};
    }
    if (hi <= lo) hi = lo + 1;
    double d = (hi - lo) * 0.05;
    return std::pair{lo - d, hi + d};
  };
  // Plain variables, not structured bindings: C++17 lambdas cannot capture bindings (clang).
  const auto xr = padded(p.x), yr = padded(p.y);
  const double x0 = xr.first, x1 = xr.second, y0 = yr.first, y1 = yr.second;
  auto X = [&](double v) {
    double t = p.x.log ? (std::log(v) - std::log(x0)) / (std::log(x1) - std::log(x0))
                       : (v - x0) / (x1 - x0);
    return ox + L + t * (W - L - R);
  };
  auto Y = [&](double v) {
    double t = p.y.log ? (std::log(v) - std::log(y0)) / (std::log(y1) - std::log(y0))
                       : (v - y0) / (y1 - y0);
    return oy + H - B - t * (H - T - B);
  };
  std::string s;
  if (standalone)
    s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + f(W) + "\" height=\"" + f(H) +
         "\" viewBox=\"0 0 " + f(W) + " " + f(H) +
         "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"" + f(W) + "\" height=\"" +
         f(H) + "\" fill=\"white\"/>\n";
  s += "<text x=\"" + f(ox + L) + "\" y=\"" + f(oy + 20) + "\" font-size=\"14\">" + esc(p.title) +
       "</text>\n";
  // Grid and ticks.
  for (double v : ticks(p.x.lo, p.x.hi, p.x.log)) {
    if (v < x0 || v > x1) continue;
    s += "<line x1=\"" + f(X(v)) + "\" y1=\"" + f(oy + T) + "\" x2=\"" + f(X(v)) + "\" y2=\"" +
         f(oy + H - B + 4) + "\" stroke=\"#e4e4e4\"/><text x=\"" + f(X(v)) + "\" y=\"" +
         f(oy + H - B + 16) + "\" text-anchor=\"middle\">" + esc(tick_label(v, p.x)) + "</text>\n";
  }
  for (double v : ticks(p.y.lo, p.y.hi, p.y.log)) {
    if (v < y0 || v > y1) continue;
    s += "<line x1=\"" + f(ox + L - 4) + "\" y1=\"" + f(Y(v)) + "\" x2=\"" + f(ox + W - R) +
         "\" y2=\"" + f(Y(v)) + "\" stroke=\"#e4e4e4\"/><text x=\"" + f(ox + L - 7) + "\" y=\"" +
         f(Y(v) + 4) + "\" text-anchor=\"end\">" + esc(tick_label(v, p.y)) + "</text>\n";
  }
  s += "<rect x=\"" + f(ox + L) + "\" y=\"" + f(oy + T) + "\" width=\"" + f(W - L - R) +
       "\" height=\"" + f(H - T - B) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  s += "<text x=\"" + f(ox + L + (W - L - R) / 2) + "\" y=\"" + f(oy + H - 12) +
       "\" text-anchor=\"middle\">" + esc(p.x.label) + "</text>\n";
  s += "<text transform=\"translate(" + f(ox + 14) + "," + f(oy + T + (H - T - B) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + esc(p.y.label) + "</text>\n";
  for (auto& r : p.references) {
    if (r.y < y0 || r.y > y1) continue;
    s += "<line x1=\"" + f(ox + L) + "\" y1=\"" + f(Y(r.y)) + "\" x2=\"" + f(ox + W - R) +
         "\" y2=\"" + f(Y(r.y)) + "\" stroke=\"" + r.color +
         "\" stroke-dasharray=\"6,4\"/><text x=\"" + f(ox + W - R - 4) + "\" y=\"" + f(Y(r.y) - 5) +
         "\" text-anchor=\"end\" fill=\"" + r.color + "\">" + esc(r.label) + "</text>\n";
  }
  for (auto& l : p.lines) {
    if (l.xy.empty()) continue;
    std::string pts;
    for (auto& [x, y] : l.xy) pts += f(X(x)) + "," + f(Y(y)) + " ";
    s += "<polyline fill=\"none\" stroke=\"" + l.color + "\" stroke-width=\"" + f(l.width) + "\"" +
         (l.dash.empty() ? "" : " stroke-dasharray=\"" + l.dash + "\"") + " points=\"" + pts +
         "\">" + (l.title.empty() ? "" : "<title>" + esc(l.title) + "</title>") + "</polyline>\n";
  }
  for (auto& m : p.markers) {
    if (m.y_err > 0)
      s += "<line x1=\"" + f(X(m.x)) + "\" y1=\"" + f(Y(m.y - m.y_err)) + "\" x2=\"" + f(X(m.x)) +
           "\" y2=\"" + f(Y(m.y + m.y_err)) + "\" stroke=\"" + m.color + "\"/>";
    s += "<g>" + shape_svg(m.shape, X(m.x), Y(m.y), m.color, m.filled) +
         (m.title.empty() ? "" : "<title>" + esc(m.title) + "</title>") + "</g>\n";
  }
  double ly = oy + T + 8;
  for (auto& item : p.legend) {
    double lx = ox + W - R + 14;
    if (item.shape == "line")
      s += "<line x1=\"" + f(lx - 8) + "\" y1=\"" + f(ly) + "\" x2=\"" + f(lx + 8) + "\" y2=\"" +
           f(ly) + "\" stroke=\"" + item.color + "\" stroke-width=\"2\"" +
           (item.dash.empty() ? "" : " stroke-dasharray=\"" + item.dash + "\"") + "/>";
    else if (!item.shape.empty())
      s += shape_svg(item.shape, lx, ly, item.color, item.filled, 4.5);
    s += "<text x=\"" + f(lx + 13) + "\" y=\"" + f(ly + 4) + "\">" + esc(item.label) + "</text>\n";
    ly += 17;
  }
  if (standalone) s += "</svg>\n";
  return s;
}

std::string render_panels(const std::vector<Plot>& panels) {
  double W = 0, H = 0;
  for (auto& p : panels) {
    W += p.width;
    H = std::max(H, p.height);
  }
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + f(W) + "\" height=\"" +
                  f(H) + "\" viewBox=\"0 0 " + f(W) + " " + f(H) +
                  "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"" + f(W) +
                  "\" height=\"" + f(H) + "\" fill=\"white\"/>\n";
  double x = 0;
  for (auto& p : panels) {
    s += render_plot(p, x, 0, false);
    x += p.width;
  }
  return s + "</svg>\n";
}

}  // namespace kdx
