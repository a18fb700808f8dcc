#include "orchestrator/report_render.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/svg_plot.h"

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
// "1/0" for CE only, "1/1 kl" with distillation (the objective named), "0.2+0.8 dice/0" with
// the Dice loss; the phases of two-phase distillation by name.
std::string loss_text(const ConfigRow& r) {
  if (r.stage == "student_kd" || r.stage == "student_finetune" || r.stage == "logits")
    return r.kd_label;
  std::string t = fmt("%g", r.ce_weight);
  if (r.key.contains("loss.dice_weight") && r.key["loss.dice_weight"].is_number() &&
      r.key["loss.dice_weight"].get<double>() != 0)
    t += "+" + fmt("%g", r.key["loss.dice_weight"].get<double>()) + " dice";
  t += "/" + fmt("%g", r.kd_weight);
  if (r.kd_weight != 0 && r.key.contains("loss.kd_loss") && r.key["loss.kd_loss"].is_string())
    t += " " + r.key["loss.kd_loss"].get<std::string>();
  if (r.kd_weight != 0 && r.key.contains("loss.combine") && r.key["loss.combine"].is_string())
    t += " " + r.key["loss.combine"].get<std::string>();
  return t;
}
// What else feeds a student's recurrent layers, so that rows of one architecture and size
// read apart: " conv 1/3/5" (its conv front-end's kernels), " + vectors" (word vectors),
// " residual", " forget bias 1" (an LSTM's).
std::string front_end_text(const ConfigRow& r) {
  std::string t;
  auto channels = r.key.find("conv.channels");
  if (channels != r.key.end() && channels->is_array() && !channels->empty()) {
    t += " conv";
    auto kernels = r.key.find("conv.kernels");
    if (kernels != r.key.end() && kernels->is_array()) {
      std::string k;
      for (auto& v : *kernels) k += (k.empty() ? "" : "/") + v.dump();
      t += " " + k;
    }
  }
  if (r.key.contains("vectors.file")) t += " + vectors";
  // An LSTM's residual connections and forget-gate bias: deep-LSTM rows of one size read apart.
  // (The LSTM default: named only where it does something, on more than one layer.)
  if (r.key.value("residual", false) && r.key.value("layers", 1) > 1) t += " residual";
  if (auto fb = r.key.find("forget_bias"); fb != r.key.end() && fb->is_number()) {
    char v[32];
    std::snprintf(v, sizeof v, "%g", fb->get<double>());
    t += std::string(" forget bias ") + v;
  }
  return t;
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
       [](const ConfigRow& r, bool t) {
         std::string name = t ? "teacher (" + (r.arch.empty() ? std::string("bert") : r.arch) + ")"
                              : r.arch + (r.stage == "logits" ? "" : front_end_text(r));
         return r.warnings ? name + " (!)" : name;
       }},
      {"hidden", [](const ConfigRow& r,
                    bool t) { return t ? key_value(r, "hidden") : key_value(r, "hidden"); }},
      {"layers", [](const ConfigRow& r, bool) { return key_value(r, "layers"); }},
      {"CE/KD", [](const ConfigRow& r, bool t) { return t ? std::string("-") : loss_text(r); }},
      {"params", [](const ConfigRow& r, bool) { return millions(r.params); }},
      {"size MB", [](const ConfigRow& r, bool) { return num(r.size_mb, "%.1f"); }},
      {"compression",
       [](const ConfigRow& r, bool t) { return t ? std::string("1x") : times(r.compression); }},
      {"compression (paper)",
       [](const ConfigRow& r, bool t) {
         if (t) return r.params_no_embedding.valid() ? std::string("1x") : std::string("-");
         return times(r.compression_paper);
       }},
      {"compression (trainable)",
       [](const ConfigRow& r, bool t) {
         if (t) return r.params_trainable.valid() ? std::string("1x") : std::string("-");
         return times(r.compression_trainable);
       }},
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
  c.push_back({"95% CI", [](const ConfigRow& r, bool t) {
                 return t || r.gain_pairs < 2 ? std::string("-")
                                              : "[" + fmt("%+.2f", r.gain_ci_lo) + ", " +
                                                    fmt("%+.2f", r.gain_ci_hi) + "]";
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
    for (auto& e : d.ensembles) row(e, false);
    for (auto& s : d.students) row(s, false);
    out += "\nHeadline: " + std::string(d.headline == "macro_f1" ? "Macro F1" : "Mention F1") +
           " (the shared task's metric): retained %, F1 no KD, KD gain, its CI and Pareto use it. "
           "F1 in %, mean ± sample std over n seeds. Compression and speed-up against the teacher "
           "(parameters; CPU latency at batch 1 x 128 tokens); compression (paper): parameters "
           "without the word-embedding tables, as Malakhov (2022) counts. KD gain: F1 points over "
           "the same "
           "student without distillation; 95% CI: Student's t interval of that gain over seeds "
           "paired with and without KD (shown from 2 pairs). Pareto: C = on the F1/compression "
           "front, L = on the F1/latency front.\n";
  }
  if (!r.warnings.empty()) {
    out += "\n## Warnings\n\n(!) in a table: a run of that row finished with a warning.\n\n";
    for (auto& [run, w] : r.warnings) out += "- " + run + ": " + w + "\n";
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
  for (auto& stage : stage_names()) {
    int n = 0, a = 0;
    double cpu = 0, gpu = 0;
    for (auto& c : r.cost)
      if (c.stage == stage) ++n, a += c.attempts, cpu += c.cpu_hours, gpu += c.gpu_hours;
    if (n)
      out += "| " + stage + " | " + std::to_string(n) + " | " + std::to_string(a) + " | " +
             fmt("%.3f", cpu) + " | " + fmt("%.3f", gpu) + " |\n";
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
    if (d.has_teacher) row(d.teacher, true);
    for (auto& e : d.ensembles) row(e, false);
    if (d.has_teacher || !d.ensembles.empty()) out += "\\midrule\n";
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
        {"kd_label", x.kd_label},
        {"config", x.key},
        {"headline", stat(x.headline)},
        {"runs", x.runs},
        {"f1", stat(x.f1)},
        {"macro_f1", stat(x.macro_f1)},
        {"macro_f1_few_shot", stat(x.few_shot)},
        {"params", stat(x.params)},
        {"size_mb", stat(x.size_mb)},
        {"latency_b1_ms", stat(x.latency_b1)},
        {"compression", x.compression},
        {"params_no_embedding", stat(x.params_no_embedding)},
        {"compression_paper", x.compression_paper},
        {"params_trainable", stat(x.params_trainable)},
        {"compression_trainable", x.compression_trainable},
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
                         {"ensembles", nlohmann::json::array()},
                         {"students", nlohmann::json::array()}};
    for (auto& e : d.ensembles) dj["ensembles"].push_back(row(e));
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

namespace {

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                          "#ff7f0e", "#8c564b", "#e377c2", "#17becf"};

std::string arch_shape(const std::string& arch) {
  return arch == "sru"     ? "square"
         : arch == "srupp" ? "triangle"
         : arch == "bert"  ? "diamond"
                           : "circle";
}

// One colour per distillation setting (CE only is grey), stable across a dataset's plots.
// Assigned in sorted order, so every plot of a report gives a setting the same colour.
std::map<std::string, std::string> kd_colors(std::vector<std::string> labels) {
  std::sort(labels.begin(), labels.end());
  std::map<std::string, std::string> out;
  size_t next = 0;
  for (auto& l : labels) {
    if (out.count(l)) continue;
    out[l] = l == "CE only" ? "#777777" : l == "teacher" ? "#444444" : kPalette[next++ % 8];
  }
  return out;
}

Plot f1_plot(const DatasetReport& d, bool latency) {
  Plot p;
  p.title = d.dataset + (latency ? ": F1 vs CPU latency" : ": F1 vs compression");
  p.x.log = true;
  p.x.label = latency ? "latency at batch 1 x 128 tokens (ms, log scale)"
                      : "compression: teacher params / student params (log scale)";
  p.x.suffix = latency ? "" : "x";
  p.y.label = d.headline == "macro_f1" ? "Macro F1 (%)" : "Mention F1 (%)";
  p.y.scale = 100;
  std::vector<std::string> labels;
  for (auto& s : d.students) labels.push_back(s.kd_label);
  auto colors = kd_colors(labels);
  double xlo = 1e18, xhi = 0, ylo = 1, yhi = 0;
  std::set<std::string> archs;
  for (auto& s : d.students) {
    double x = latency ? s.latency_b1.mean : s.compression;
    if (!s.headline.valid() || x <= 0 || (latency && !s.latency_b1.valid())) continue;
    PlotMarker m;
    m.x = x;
    m.y = s.headline.mean;
    m.y_err = s.headline.n > 1 ? s.headline.std : 0;
    m.shape = arch_shape(s.arch);
    m.color = colors[s.kd_label];
    m.filled = s.kd_weight != 0;
    m.title = s.arch + " " + s.kd_label + " " + s.key.dump() + " F1 " +
              fmt("%.2f", 100 * s.headline.mean) +
              (s.headline.n > 1 ? " +/- " + fmt("%.2f", 100 * s.headline.std) : "") +
              " (n=" + std::to_string(s.headline.n) + ")";
    p.markers.push_back(m);
    xlo = std::min(xlo, x);
    xhi = std::max(xhi, x);
    ylo = std::min(ylo, s.headline.mean - m.y_err);
    yhi = std::max(yhi, s.headline.mean + m.y_err);
    archs.insert(s.arch);
  }
  if (d.has_teacher && d.teacher.headline.valid()) {
    p.references.push_back(
        {d.teacher.headline.mean, "teacher " + fmt("%.1f", 100 * d.teacher.headline.mean)});
    ylo = std::min(ylo, d.teacher.headline.mean);
    yhi = std::max(yhi, d.teacher.headline.mean);
  }
  if (xhi <= 0) xlo = 1, xhi = 10;
  p.x.lo = xlo;
  p.x.hi = xhi;
  p.y.lo = std::max(0.0, ylo - 0.02);
  p.y.hi = std::min(1.0, yhi + 0.02);
  for (auto& a : archs) p.legend.push_back({a, arch_shape(a), "#333333", true, ""});
  for (auto& [label, color] : colors)
    p.legend.push_back({label, "circle", color, label != "CE only", ""});
  return p;
}

}  // namespace

std::string render_svg(const DatasetReport& d) {
  auto a = f1_plot(d, false), b = f1_plot(d, true);
  a.width = b.width = 560;
  return render_panels({a, b});
}

std::vector<std::string> curve_groups(const ReportData& r, const std::string& dataset) {
  std::vector<std::string> out;
  for (auto& c : r.curves) {
    if (c.dataset != dataset || c.epoch.empty()) continue;
    std::string g = c.stage == "teacher" ? "teacher" : c.arch;
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  }
  return out;
}

std::string render_curves_svg(const ReportData& r, const std::string& dataset,
                              const std::string& group) {
  Plot dev, loss;
  dev.title = dataset + " " + group + ": dev F1 per epoch";
  dev.x.label = loss.x.label = "epoch";
  dev.y.label = "dev Mention F1 (%)";
  dev.y.scale = 100;
  loss.title = dataset + " " + group + ": loss terms per epoch";
  loss.y.label = "per-cell loss (log scale; CE solid, KD dashed)";
  loss.y.log = true;
  std::vector<std::string> labels;
  for (auto& c : r.curves)
    if (c.dataset == dataset) labels.push_back(c.kd_label);
  auto colors = kd_colors(labels);
  double emax = 1, fmax = 0.01, lmin = 1e9, lmax = 0;
  std::set<std::string> used;
  for (auto& c : r.curves) {
    std::string g = c.stage == "teacher" ? "teacher" : c.arch;
    if (c.dataset != dataset || g != group || c.epoch.empty()) continue;
    PlotLine f1, ce, kd;
    f1.color = ce.color = kd.color = colors[c.kd_label];
    f1.title = ce.title = kd.title = c.run + " " + c.kd_label;
    f1.width = ce.width = kd.width = 1.2;
    kd.dash = "5,3";
    for (size_t i = 0; i < c.epoch.size(); ++i) {
      emax = std::max(emax, c.epoch[i]);
      if (std::isfinite(c.dev_f1[i])) {
        f1.xy.emplace_back(c.epoch[i], c.dev_f1[i]);
        fmax = std::max(fmax, c.dev_f1[i]);
      }
      for (auto [v, line] : {std::pair{c.ce[i], &ce}, {c.kd[i], &kd}})
        if (std::isfinite(v) && v > 0) {
          line->xy.emplace_back(c.epoch[i], v);
          lmin = std::min(lmin, v);
          lmax = std::max(lmax, v);
        }
    }
    dev.lines.push_back(f1);
    loss.lines.push_back(ce);
    if (!kd.xy.empty()) loss.lines.push_back(kd);
    used.insert(c.kd_label);
  }
  dev.x.lo = loss.x.lo = 1;
  dev.x.hi = loss.x.hi = emax;
  dev.y.lo = 0;
  dev.y.hi = std::min(1.0, fmax + 0.02);
  loss.y.lo = lmax > 0 ? lmin : 1e-3;
  loss.y.hi = lmax > 0 ? lmax : 1;
  for (auto& l : used) loss.legend.push_back({l, "line", colors[l], true, ""});
  if (!used.empty()) loss.legend.push_back({"KD term", "line", "#333333", true, "5,3"});
  dev.width = 460;
  loss.width = 560;
  return render_panels({dev, loss});
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
    for (auto& e : d.ensembles) row(e, false);
    for (auto& s : d.students) row(s, false);
    out += "</table>\n" + render_svg(d);
    auto groups = curve_groups(r, d.dataset);
    if (!groups.empty()) out += "<h3>Learning curves</h3>\n";
    for (auto& g : groups) out += render_curves_svg(r, d.dataset, g);
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
