#include "orchestrator/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/strings.h"

namespace kdx {
namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// "45.12 ± 1.30" (percent) for several seeds, "45.12" for one, "-" for none.
std::string pct(const Stat& s, const char* pm = " ± ") {
  if (!s.valid()) return "-";
  std::string out = fmt("%.2f", 100 * s.mean);
  if (s.n > 1) out += pm + fmt("%.2f", 100 * s.std);
  return out;
}
std::string num(const Stat& s, const char* f) {
  return s.valid() ? fmt(f, s.mean) : "-";
}
std::string millions(const Stat& s) {
  return s.valid() ? fmt("%.2fM", s.mean / 1e6) : "-";
}
std::string times(double x) {
  return x > 0 ? fmt("%.1fx", x) : "-";
}
std::string key_value(const ConfigRow& r, const char* k) {
  if (!r.key.contains(k)) return "-";
  auto& v = r.key[k];
  return v.is_string() ? v.get<std::string>() : v.dump();
}
std::string loss_text(const ConfigRow& r) {
  return fmt("%g", r.ce_weight) + "/" + fmt("%g", r.kd_weight);
}
std::string pareto(const ConfigRow& r) {
  std::string p = std::string(r.pareto_compression ? "C" : "") + (r.pareto_latency ? "L" : "");
  return p.empty() ? "" : p;
}

struct Column {
  std::string header;
  std::function<std::string(const ConfigRow&, bool teacher)> cell;
};

std::vector<Column> columns(const DatasetReport& d) {
  std::vector<Column> c = {
      {"model",
       [](const ConfigRow& r, bool t) { return t ? std::string("teacher (bert)") : r.arch; }},
      {"hidden", [](const ConfigRow& r,
                    bool t) { return t ? key_value(r, "hidden") : key_value(r, "hidden"); }},
      {"layers", [](const ConfigRow& r, bool) { return key_value(r, "layers"); }},
      {"CE/KD", [](const ConfigRow& r, bool t) { return t ? std::string("-") : loss_text(r); }},
      {"params", [](const ConfigRow& r, bool) { return millions(r.params); }},
      {"size MB", [](const ConfigRow& r, bool) { return num(r.size_mb, "%.1f"); }},
      {"compression",
       [](const ConfigRow& r, bool t) { return t ? std::string("1x") : times(r.compression); }},
      {"latency b=1 ms", [](const ConfigRow& r, bool) { return num(r.latency_b1, "%.2f"); }},
      {"speed-up",
       [](const ConfigRow& r, bool t) { return t ? std::string("1x") : times(r.speedup); }},
      {"Mention F1", [](const ConfigRow& r, bool) { return pct(r.f1); }},
      {"Macro F1", [](const ConfigRow& r, bool) { return pct(r.macro_f1); }},
  };
  if (d.format == "runne")
    c.push_back({"few-shot F1", [](const ConfigRow& r, bool) { return pct(r.few_shot); }});
  c.push_back({"retained %", [](const ConfigRow& r, bool t) {
                 return t ? std::string("100") : (r.has_retained ? fmt("%.1f", r.retained) : "-");
               }});
  c.push_back({"F1 no KD", [](const ConfigRow& r, bool t) {
                 return t || !r.has_scratch ? std::string("-") : pct(r.scratch_f1);
               }});
  c.push_back({"KD gain", [](const ConfigRow& r, bool t) {
                 return t || !r.has_scratch ? std::string("-") : fmt("%+.2f", r.kd_gain_points);
               }});
  c.push_back({"n", [](const ConfigRow& r, bool) { return std::to_string(r.f1.n); }});
  c.push_back({"Pareto", [](const ConfigRow& r, bool t) { return t ? std::string() : pareto(r); }});
  return c;
}

std::string html_escape(const std::string& s) {
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

std::string latex_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '_' || c == '%' || c == '&' || c == '#' || c == '$')
      o += std::string("\\") + c;
    else
      o += c;
  }
  for (size_t p; (p = o.find("±")) != std::string::npos;)
    o.replace(p, std::string("±").size(), "$\\pm$");
  return o;
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

}  // namespace

std::string render_markdown(const ReportData& r) {
  std::string out =
      "# kdx report" + (r.experiment.empty() ? std::string() : ": " + r.experiment) + "\n";
  for (auto& d : r.datasets) {
    out += "\n## " + d.dataset + " (" + d.format + ")\n\n";
    auto cols = columns(d);
    std::vector<std::string> head;
    for (auto& c : cols) head.push_back(c.header);
    out += "| " + join(head, " | ") + " |\n|" + std::string();
    for (size_t i = 0; i < cols.size(); ++i) out += i < 4 ? "---|" : "---:|";
    out += "\n";
    auto row = [&](const ConfigRow& x, bool t) {
      std::vector<std::string> cells;
      for (auto& c : cols) cells.push_back(c.cell(x, t));
      out += "| " + join(cells, " | ") + " |\n";
    };
    if (d.has_teacher) row(d.teacher, true);
    for (auto& s : d.students) row(s, false);
    out +=
        "\nF1 in %, mean ± sample std over n seeds. Compression and speed-up against the teacher "
        "(parameters; CPU latency at batch 1 x 128 tokens). KD gain: F1 points over the same "
        "student "
        "without distillation. Pareto: C = on the F1/compression front, L = on the F1/latency "
        "front.\n";
  }
  if (!r.unfinished.empty()) {
    out +=
        "\n## Unfinished runs\n\n| run | stage | dataset | state | reason "
        "|\n|---|---|---|---|---|\n";
    for (auto& u : r.unfinished)
      out += "| " + u.id + " | " + u.stage + " | " + u.dataset + " | " + u.state + " | " +
             u.reason + " |\n";
  }
  out +=
      "\n## Cost\n\n| stage | runs | attempts | CPU-hours | GPU-hours "
      "|\n|---|---:|---:|---:|---:|\n";
  for (auto stage : {"teacher", "logits", "student"}) {
    int n = 0, a = 0;
    double cpu = 0, gpu = 0;
    for (auto& c : r.cost)
      if (c.stage == stage) ++n, a += c.attempts, cpu += c.cpu_hours, gpu += c.gpu_hours;
    if (n)
      out += std::string("| ") + stage + " | " + std::to_string(n) + " | " + std::to_string(a) +
             " | " + fmt("%.3f", cpu) + " | " + fmt("%.3f", gpu) + " |\n";
  }
  out += "| total | " + std::to_string(r.cost.size()) + " | | " + fmt("%.3f", r.cpu_hours) + " | " +
         fmt("%.3f", r.gpu_hours) + " |\n";
  return out;
}

std::string render_csv(const ReportData& r) {
  std::vector<std::string> keys = {"run", "experiment", "stage", "dataset"};
  std::set<std::string> rest;
  for (auto& row : r.run_rows)
    for (auto& [k, v] : row.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) rest.insert(k);
  keys.insert(keys.end(), rest.begin(), rest.end());
  std::vector<std::string> quoted;
  for (auto& k : keys) quoted.push_back(csv_cell(k));
  std::string out = join(quoted, ",") + "\n";
  for (auto& row : r.run_rows) {
    std::vector<std::string> cells;
    for (auto& k : keys) {
      if (!row.contains(k) || row[k].is_null())
        cells.push_back("");
      else
        cells.push_back(csv_cell(row[k].is_string() ? row[k].get<std::string>() : row[k].dump()));
    }
    out += join(cells, ",") + "\n";
  }
  return out;
}

std::string render_latex(const ReportData& r) {
  std::string out = "% kdx report; needs \\usepackage{booktabs}\n";
  for (auto& d : r.datasets) {
    auto cols = columns(d);
    cols.pop_back();  // Pareto marks stay in the Markdown/HTML views
    out += "\\begin{table}[t]\n\\centering\n\\small\n\\begin{tabular}{llll" +
           std::string(cols.size() - 4, 'r') + "}\n\\toprule\n";
    std::vector<std::string> head;
    for (auto& c : cols) head.push_back(latex_escape(c.header));
    out += join(head, " & ") + " \\\\\n\\midrule\n";
    auto row = [&](const ConfigRow& x, bool t) {
      std::vector<std::string> cells;
      for (auto& c : cols) cells.push_back(latex_escape(c.cell(x, t)));
      out += join(cells, " & ") + " \\\\\n";
    };
    if (d.has_teacher) {
      row(d.teacher, true);
      out += "\\midrule\n";
    }
    for (auto& s : d.students) row(s, false);
    out += "\\bottomrule\n\\end{tabular}\n\\caption{" + latex_escape(d.dataset) +
           ": students distilled from the teacher. F1 in \\%, mean $\\pm$ std over "
           "seeds.}\n\\label{tab:kdx-" +
           latex_escape(d.dataset) + "}\n\\end{table}\n";
  }
  return out;
}

std::string render_json(const ReportData& r) {
  auto stat = [](const Stat& s) {
    return nlohmann::json{{"mean", s.mean}, {"std", s.std}, {"n", s.n}};
  };
  auto row = [&](const ConfigRow& x) {
    return nlohmann::json{
        {"stage", x.stage},
        {"arch", x.arch},
        {"config", x.key},
        {"runs", x.runs},
        {"f1", stat(x.f1)},
        {"macro_f1", stat(x.macro_f1)},
        {"macro_f1_few_shot", stat(x.few_shot)},
        {"params", stat(x.params)},
        {"size_mb", stat(x.size_mb)},
        {"latency_b1_ms", stat(x.latency_b1)},
        {"compression", x.compression},
        {"speedup", x.speedup},
        {"retained_pct", x.retained},
        {"scratch_f1", x.has_scratch ? stat(x.scratch_f1) : nlohmann::json()},
        {"kd_gain_points", x.has_scratch ? nlohmann::json(x.kd_gain_points) : nlohmann::json()},
        {"pareto_compression", x.pareto_compression},
        {"pareto_latency", x.pareto_latency}};
  };
  nlohmann::json out = {{"experiment", r.experiment},
                        {"datasets", nlohmann::json::array()},
                        {"unfinished", nlohmann::json::array()},
                        {"cpu_hours", r.cpu_hours},
                        {"gpu_hours", r.gpu_hours},
                        {"cost", nlohmann::json::array()}};
  for (auto& d : r.datasets) {
    nlohmann::json dj = {{"dataset", d.dataset},
                         {"format", d.format},
                         {"teacher", d.has_teacher ? row(d.teacher) : nlohmann::json()},
                         {"students", nlohmann::json::array()}};
    for (auto& s : d.students) dj["students"].push_back(row(s));
    out["datasets"].push_back(dj);
  }
  for (auto& u : r.unfinished)
    out["unfinished"].push_back({{"run", u.id},
                                 {"stage", u.stage},
                                 {"dataset", u.dataset},
                                 {"state", u.state},
                                 {"reason", u.reason}});
  for (auto& c : r.cost)
    out["cost"].push_back({{"run", c.run},
                           {"stage", c.stage},
                           {"executor", c.executor},
                           {"attempts", c.attempts},
                           {"elapsed_s", c.elapsed_s},
                           {"cpu_hours", c.cpu_hours},
                           {"gpu_hours", c.gpu_hours}});
  return out.dump(2) + "\n";
}

std::string render_svg(const DatasetReport& d) {
  const double W = 640, H = 420, L = 70, R = 170, T = 40, B = 60;
  std::vector<const ConfigRow*> pts;
  for (auto& s : d.students)
    if (s.f1.valid() && s.compression > 0) pts.push_back(&s);
  double xmin = 1, xmax = 2, ymax = 0.1;
  for (auto* p : pts) {
    xmax = std::max(xmax, p->compression);
    ymax = std::max(ymax, p->f1.mean);
  }
  if (d.has_teacher && d.teacher.f1.valid()) ymax = std::max(ymax, d.teacher.f1.mean);
  xmax *= 1.5;
  ymax = std::min(1.0, std::ceil(ymax * 11) / 10);
  auto X = [&](double c) {
    return L +
           (std::log10(c) - std::log10(xmin)) / (std::log10(xmax) - std::log10(xmin)) * (W - L - R);
  };
  auto Y = [&](double f) { return H - B - f / ymax * (H - T - B); };
  std::string s =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"420\" viewBox=\"0 0 640 "
      "420\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s += "<rect width=\"640\" height=\"420\" fill=\"white\"/>\n";
  s += "<text x=\"" + fmt("%.0f", L) + "\" y=\"24\" font-size=\"15\">" + html_escape(d.dataset) +
       ": F1 vs compression</text>\n";
  s += "<line x1=\"" + fmt("%.1f", L) + "\" y1=\"" + fmt("%.1f", H - B) + "\" x2=\"" +
       fmt("%.1f", W - R) + "\" y2=\"" + fmt("%.1f", H - B) + "\" stroke=\"black\"/>\n";
  s += "<line x1=\"" + fmt("%.1f", L) + "\" y1=\"" + fmt("%.1f", T) + "\" x2=\"" + fmt("%.1f", L) +
       "\" y2=\"" + fmt("%.1f", H - B) + "\" stroke=\"black\"/>\n";
  for (double decade = 1; decade <= xmax; decade *= 10)
    for (double m : {1.0, 2.0, 5.0}) {
      double v = decade * m;
      if (v < xmin || v > xmax) continue;
      s += "<line x1=\"" + fmt("%.1f", X(v)) + "\" y1=\"" + fmt("%.1f", H - B) + "\" x2=\"" +
           fmt("%.1f", X(v)) + "\" y2=\"" + fmt("%.1f", H - B + 5) + "\" stroke=\"black\"/>";
      s += "<text x=\"" + fmt("%.1f", X(v)) + "\" y=\"" + fmt("%.1f", H - B + 18) +
           "\" text-anchor=\"middle\">" + fmt("%g", v) + "x</text>\n";
    }
  for (int i = 0; i <= 5; ++i) {
    double v = ymax * i / 5;
    s += "<line x1=\"" + fmt("%.1f", L - 5) + "\" y1=\"" + fmt("%.1f", Y(v)) + "\" x2=\"" +
         fmt("%.1f", W - R) + "\" y2=\"" + fmt("%.1f", Y(v)) + "\" stroke=\"#ddd\"/>";
    s += "<text x=\"" + fmt("%.1f", L - 8) + "\" y=\"" + fmt("%.1f", Y(v) + 4) +
         "\" text-anchor=\"end\">" + fmt("%.0f", v * 100) + "</text>\n";
  }
  s +=
      "<text x=\"" + fmt("%.1f", (L + W - R) / 2) + "\" y=\"" + fmt("%.1f", H - 15) +
      "\" text-anchor=\"middle\">compression (teacher params / student params, log scale)</text>\n";
  s += "<text transform=\"translate(18," + fmt("%.1f", (T + H - B) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">Mention F1 (%)</text>\n";
  if (d.has_teacher && d.teacher.f1.valid()) {
    s += "<line x1=\"" + fmt("%.1f", L) + "\" y1=\"" + fmt("%.1f", Y(d.teacher.f1.mean)) +
         "\" x2=\"" + fmt("%.1f", W - R) + "\" y2=\"" + fmt("%.1f", Y(d.teacher.f1.mean)) +
         "\" stroke=\"#444\" stroke-dasharray=\"6,4\"/>\n";
    s += "<text x=\"" + fmt("%.1f", W - R - 4) + "\" y=\"" + fmt("%.1f", Y(d.teacher.f1.mean) - 6) +
         "\" text-anchor=\"end\" fill=\"#444\">teacher " + fmt("%.1f", d.teacher.f1.mean * 100) +
         "</text>\n";
  }
  auto color = [](const std::string& a) {
    return a == "lstm" ? "#1f77b4" : a == "sru" ? "#d62728" : a == "srupp" ? "#2ca02c" : "#9467bd";
  };
  auto marker = [&](const std::string& arch, double x, double y, bool filled) {
    std::string fill = filled ? color(arch) : "white";
    std::string st = " fill=\"" + fill + "\" stroke=\"" + color(arch) + "\" stroke-width=\"2\"";
    if (arch == "sru")
      return "<rect x=\"" + fmt("%.1f", x - 5) + "\" y=\"" + fmt("%.1f", y - 5) +
             "\" width=\"10\" height=\"10\"" + st + "/>";
    if (arch == "srupp")
      return "<polygon points=\"" + fmt("%.1f", x) + "," + fmt("%.1f", y - 6) + " " +
             fmt("%.1f", x - 6) + "," + fmt("%.1f", y + 5) + " " + fmt("%.1f", x + 6) + "," +
             fmt("%.1f", y + 5) + "\"" + st + "/>";
    return "<circle cx=\"" + fmt("%.1f", x) + "\" cy=\"" + fmt("%.1f", y) + "\" r=\"5\"" + st +
           "/>";
  };
  for (auto* p : pts) {
    s += marker(p->arch, X(p->compression), Y(p->f1.mean), p->kd_weight != 0);
    s += "<title>" + html_escape(p->arch + " " + p->key.dump()) + "</title>\n";
  }
  double ly = T + 10;
  for (auto arch : {"lstm", "sru", "srupp"}) {
    s += marker(arch, W - R + 20, ly, true) + "<text x=\"" + fmt("%.1f", W - R + 32) + "\" y=\"" +
         fmt("%.1f", ly + 4) + "\">" + arch + "</text>\n";
    ly += 20;
  }
  s += marker("lstm", W - R + 20, ly + 10, true) + "<text x=\"" + fmt("%.1f", W - R + 32) +
       "\" y=\"" + fmt("%.1f", ly + 14) + "\">with KD</text>\n";
  s += marker("lstm", W - R + 20, ly + 30, false) + "<text x=\"" + fmt("%.1f", W - R + 32) +
       "\" y=\"" + fmt("%.1f", ly + 34) + "\">without KD</text>\n";
  s += "</svg>\n";
  return s;
}

std::string render_html(const ReportData& r) {
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>kdx report" +
      html_escape(r.experiment.empty() ? "" : ": " + r.experiment) +
      "</title>\n<style>\n"
      "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em "
      "0}"
      "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
      "td:first-child,th:first-child{text-align:left}tr.teacher{background:#fafae6}\n</style>\n</"
      "head>\n<body>\n";
  out +=
      "<h1>kdx report" + html_escape(r.experiment.empty() ? "" : ": " + r.experiment) + "</h1>\n";
  for (auto& d : r.datasets) {
    out += "<h2>" + html_escape(d.dataset) + " (" + html_escape(d.format) + ")</h2>\n<table>\n<tr>";
    auto cols = columns(d);
    for (auto& c : cols) out += "<th>" + html_escape(c.header) + "</th>";
    out += "</tr>\n";
    auto row = [&](const ConfigRow& x, bool t) {
      out += t ? "<tr class=\"teacher\">" : "<tr>";
      for (auto& c : cols) out += "<td>" + html_escape(c.cell(x, t)) + "</td>";
      out += "</tr>\n";
    };
    if (d.has_teacher) row(d.teacher, true);
    for (auto& s : d.students) row(s, false);
    out += "</table>\n" + render_svg(d);
  }
  if (!r.unfinished.empty()) {
    out +=
        "<h2>Unfinished "
        "runs</h2>\n<table>\n<tr><th>run</th><th>stage</th><th>dataset</th><th>state</"
        "th><th>reason</th></tr>\n";
    for (auto& u : r.unfinished)
      out += "<tr><td>" + html_escape(u.id) + "</td><td>" + html_escape(u.stage) + "</td><td>" +
             html_escape(u.dataset) + "</td><td>" + html_escape(u.state) + "</td><td>" +
             html_escape(u.reason) + "</td></tr>\n";
    out += "</table>\n";
  }
  out += "<h2>Cost</h2>\n<p>" + fmt("%.3f", r.cpu_hours) + " CPU-hours, " +
         fmt("%.3f", r.gpu_hours) + " GPU-hours over " + std::to_string(r.cost.size()) +
         " runs.</p>\n</body>\n</html>\n";
  return out;
}

}  // namespace kdx
