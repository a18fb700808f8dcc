#include "orchestrator/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/params.h"
#include "common/strings.h"
#include "orchestrator/run_state.h"

namespace kdx {

Stat stat_of(const std::vector<double>& v) {
  Stat s;
  s.n = static_cast<int>(v.size());
  if (!s.n) return s;
  for (double x : v) s.mean += x;
  s.mean /= s.n;
  if (s.n > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / (s.n - 1));  // sample standard deviation over seeds
  }
  return s;
}

namespace {

// Parameters that do not make a different configuration.
const std::set<std::string> kNotConfig = {"seed", "threads", "ranks", "checkpoint_every",
                                          "max_test_docs"};

void flatten(const nlohmann::json& j, const std::string& prefix, nlohmann::json& out) {
  for (auto& [k, v] : j.items()) {
    std::string key = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object())
      flatten(v, key, out);
    else
      out[key] = v;
  }
}

double metric(const std::map<std::string, nlohmann::json>& m, const std::string& k, bool& ok) {
  auto it = m.find(k);
  ok = it != m.end() && it->second.is_number();
  return ok ? it->second.get<double>() : 0;
}

struct Acc {
  ConfigRow row;
  std::map<std::string, std::vector<double>> values;
};

std::string kd_label_of(const std::string& stage, const nlohmann::json& params_flat) {
  double w = params_flat.value("loss.kd_weight", 0.0);
  // Two-phase distillation: phase 1 learns from the teacher alone on the transfer corpus;
  // phase 2 fine-tunes that student on the gold tags.
  if (stage == "student_kd")
    return "phase 1: KD " + params_flat.value("loss.kd_loss", std::string("mse")) + " only";
  if (stage == "student_finetune") return "phase 2: KD, then fine-tuned";
  if (w == 0) return params_flat.value("loss.dice_weight", 0.0) != 0 ? "CE+Dice" : "CE only";
  char buf[64];
  std::snprintf(buf, sizeof buf, "KD %s w=%g",
                params_flat.value("loss.kd_loss", std::string("kl")).c_str(), w);
  std::string label = buf;
  double t = params_flat.value("loss.temperature", 1.0);
  if (t != 1 && params_flat.value("loss.kd_loss", std::string("kl")) != "mse") {
    std::snprintf(buf, sizeof buf, " T=%g", t);
    label += buf;
  }
  // A teacher ensemble's combination rule (mean_logits, mean_probs).
  if (params_flat.contains("loss.combine") && params_flat["loss.combine"].is_string())
    label += " " + params_flat["loss.combine"].get<std::string>();
  return label;
}

// Per-epoch curves from a run's metrics.jsonl; missing or unreadable files give none.
Curve read_curve(const RunRecord& r, const nlohmann::json& params_flat) {
  Curve c;
  c.run = r.id;
  c.dataset = r.dataset;
  c.stage = r.stage;
  c.arch = params_flat.value("arch", std::string(r.stage == "teacher" ? "bert" : ""));
  c.kd_label = r.stage == "teacher" ? "teacher" : kd_label_of(r.stage, params_flat);
  std::ifstream in;
  if (is_regular_file(r.run_dir + "/metrics.jsonl")) in.open(r.run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto m = parse_json(line);
    if (!m.is_object() || !m.contains("epoch") || !m["epoch"].is_number()) continue;
    auto num = [&](const char* k) {
      return m.contains(k) && m[k].is_number() ? m[k].get<double>() : std::nan("");
    };
    c.epoch.push_back(num("epoch"));
    c.dev_f1.push_back(num("dev_f1"));
    c.ce.push_back(num("ce"));
    c.kd.push_back(num("kd"));
  }
  return c;
}

int phase_rank(const std::string& stage) {
  return stage == "student" ? 0 : stage == "student_kd" ? 1 : 2;
}

void finish_row(Acc& a, const std::string& headline) {
  auto s = [&](const char* k) { return stat_of(a.values[k]); };
  a.row.headline = s(headline.c_str());
  a.row.f1 = s("f1");
  a.row.macro_f1 = s("macro_f1");
  a.row.few_shot = s("macro_f1_few_shot");
  a.row.params = s("params");
  a.row.params_no_embedding = s("params_no_embedding");
  a.row.params_trainable = s("params_trainable");
  a.row.size_mb = s("size_mb");
  a.row.latency_b1 = s("latency_b1_ms");
  a.row.latency_b32 = s("latency_b32_ms");
}

}  // namespace

double t_quantile_975(int df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) return std::nan("");
  return df <= 30 ? table[df - 1] : 1.96;
}

void mark_pareto(std::vector<ConfigRow>& rows) {
  for (auto& a : rows) {
    a.pareto_compression = a.pareto_latency = a.headline.valid();
    for (auto& b : rows) {
      if (&a == &b || !b.headline.valid() || !a.headline.valid()) continue;
      bool f1_ge = b.headline.mean >= a.headline.mean, f1_gt = b.headline.mean > a.headline.mean;
      if (f1_ge && b.compression >= a.compression && (f1_gt || b.compression > a.compression))
        a.pareto_compression = false;
      if (a.latency_b1.valid() && b.latency_b1.valid() && f1_ge &&
          b.latency_b1.mean <= a.latency_b1.mean &&
          (f1_gt || b.latency_b1.mean < a.latency_b1.mean))
        a.pareto_latency = false;
    }
  }
}

ReportData build_report(Registry& reg, const std::string& experiment,
                        const std::vector<std::string>& group_by) {
  if (!experiment.empty() && !reg.has_experiment(experiment))
    throw Error("no experiment '" + experiment + "' in " + reg.path() +
                " (known: " + join(reg.experiments(), ", ") + ")");
  auto runs = reg.runs(experiment);
  if (runs.empty())
    throw Error("no runs in " + reg.path() +
                " (submit one with: kdx submit experiments/smoke.yaml)");
  // A grouping key that no run has would silently merge every configuration into one row.
  if (!group_by.empty()) {
    std::set<std::string> keys;
    for (auto& r : runs) {
      nlohmann::json f;
      if (r.config.is_object() && r.config.contains("params")) flatten(r.config["params"], "", f);
      for (auto& [k, v] : f.items()) keys.insert(k);
    }
    for (auto& g : group_by)
      if (!keys.count(g) && !find_param(student_params(), g) && !find_param(teacher_params(), g))
        throw Error("--group-by: unknown key '" + g + "' (the runs' keys: " +
                    join(std::vector<std::string>(keys.begin(), keys.end()), ", ") + ")");
  }
  ReportData rep;
  rep.experiment = experiment;
  std::map<std::string, DatasetReport> by_ds;
  std::map<std::string, std::map<std::string, Acc>> students;  // dataset -> key -> acc
  std::map<std::string, Acc> teachers;
  std::map<std::string, std::map<std::string, Acc>> ensembles;  // dataset -> rule -> acc

  for (auto& r : runs) {
    // Cost from every attempt, finished or not.
    CostRow c;
    c.run = r.id;
    c.stage = r.stage;
    for (auto& a : reg.attempts(r.id)) {
      double el = a.elapsed_s > 0 ? a.elapsed_s : (a.end_time > 0 ? a.end_time - a.start_time : 0);
      c.elapsed_s += el;
      c.cpu_hours += el * std::max(1, a.alloc_cpus) / 3600.0;
      c.gpu_hours += el * a.alloc_gpus / 3600.0;
      c.executor = a.executor;
      ++c.attempts;
    }
    std::map<std::string, nlohmann::json> m;
    if (r.state == state::kCompleted) m = reg.metrics(r.id);
    // No GPU allocation in the accounting (the local executor, a GPU that Slurm did not
    // count): the device-hours the worker measured (result.json's gpu_hours).
    if (c.gpu_hours == 0 && m.count("gpu_hours") && m["gpu_hours"].is_number())
      c.gpu_hours = m["gpu_hours"].get<double>();
    rep.cpu_hours += c.cpu_hours;
    rep.gpu_hours += c.gpu_hours;
    rep.cost.push_back(c);

    if (r.state != state::kCompleted) {
      rep.unfinished.push_back(r);
      continue;
    }
    nlohmann::json flat = {
        {"run", r.id}, {"experiment", r.experiment}, {"stage", r.stage}, {"dataset", r.dataset}};
    flatten(r.config["params"], "", flat);
    for (auto& [k, v] : m) flat["metric." + k] = v;
    rep.run_rows.push_back(flat);
    if (r.stage == "pretrain") continue;  // belongs to no dataset: its cost row is enough
    auto& ds = by_ds[r.dataset];
    ds.dataset = r.dataset;
    ds.format = r.config["dataset"].value("format", "");
    ds.headline = ds.format == "runne" ? "macro_f1" : "f1";
    if (r.stage == "logits") {
      // An ensemble's cache carries the ensemble's own test scores.
      const int members =
          m.count("ensemble") && m["ensemble"].is_number() ? m["ensemble"].get<int>() : 1;
      if (m.count("f1") && members > 1) {
        const std::string rule = m.count("combine") && m["combine"].is_string()
                                     ? m["combine"].get<std::string>()
                                     : std::string("mean_logits");
        Acc& acc = ensembles[r.dataset][rule];
        acc.row.stage = r.stage;
        acc.row.arch = "teacher ensemble";
        acc.row.kd_label = rule + " of " + std::to_string(members);
        acc.row.runs.push_back(r.id);
        for (auto k : {"f1", "macro_f1", "macro_f1_few_shot", "params", "params_no_embedding",
                       "params_trainable"}) {
          bool ok;
          double v = metric(m, k, ok);
          if (ok) acc.values[k].push_back(v);
        }
      }
      continue;
    }

    nlohmann::json key = nlohmann::json::object();
    nlohmann::json params_flat;
    flatten(r.config["params"], "", params_flat);
    for (auto& [k, v] : params_flat.items()) {
      bool keep = group_by.empty()
                      ? !kNotConfig.count(k)
                      : std::find(group_by.begin(), group_by.end(), k) != group_by.end();
      if (keep) key[k] = v;
    }
    if (r.stage == "student" && group_by.empty())
      key["loss.kd_weight"] = params_flat.value("loss.kd_weight", 0.0);
    // The phases of two-phase distillation are rows of their own, beside their CE-only twin.
    if (r.stage != "student" && r.stage != "teacher") key["phase"] = r.stage;
    // Fine-tuned students of different phase-1 settings are different configurations (the
    // phase-1 run's settings but its seed, which pairs with the fine-tuning seed).
    if (r.config.contains("student_kd") && r.config["student_kd"].is_string() && group_by.empty())
      if (auto kd_run = reg.run(r.config["student_kd"].get<std::string>())) {
        nlohmann::json kd_flat;
        flatten(kd_run->config["params"], "", kd_flat);
        for (auto& [k, v] : kd_flat.items())
          if (!kNotConfig.count(k)) key["phase1." + k] = v;
      }
    Acc& acc = r.stage == "teacher" ? teachers[r.dataset] : students[r.dataset][key.dump()];
    acc.row.stage = r.stage;
    acc.row.arch = params_flat.value("arch", std::string(r.stage == "teacher" ? "bert" : ""));
    acc.row.key = key;
    acc.row.kd_weight = params_flat.value("loss.kd_weight", 0.0);
    acc.row.ce_weight = params_flat.value("loss.ce_weight", 1.0);
    acc.row.runs.push_back(r.id);
    acc.row.kd_label = r.stage == "teacher" ? "teacher" : kd_label_of(r.stage, params_flat);
    {
      bool ok;
      double f1 = metric(m, ds.headline.c_str(), ok);
      if (ok) acc.row.f1_by_seed[params_flat.value("seed", int64_t{0})] = f1;
    }
    rep.curves.push_back(read_curve(r, params_flat));
    if (r.result.contains("warnings") && r.result["warnings"].is_array())
      for (auto& w : r.result["warnings"])
        if (w.is_string()) {
          rep.warnings.emplace_back(r.id, w.get<std::string>());
          ++acc.row.warnings;
        }
    for (auto k : {"f1", "macro_f1", "macro_f1_few_shot", "params", "params_no_embedding",
                   "params_trainable", "size_mb", "latency_b1_ms", "latency_b32_ms"}) {
      bool ok;
      double v = metric(m, k, ok);
      if (ok) acc.values[k].push_back(v);
    }
  }

  for (auto& [name, ds] : by_ds) {
    if (teachers.count(name)) {
      finish_row(teachers[name], ds.headline);
      ds.teacher = teachers[name].row;
      ds.has_teacher = true;
    }
    for (auto& [k, acc] : students[name]) {
      finish_row(acc, ds.headline);
      ds.students.push_back(acc.row);
    }
    for (auto& [rule, acc] : ensembles[name]) {
      finish_row(acc, ds.headline);
      if (ds.has_teacher) {
        acc.row.key = ds.teacher.key;  // the members' shape
        acc.row.arch = "teacher ensemble (" +
                       (ds.teacher.arch.empty() ? std::string("bert") : ds.teacher.arch) + ")";
      }
      ds.ensembles.push_back(acc.row);
    }
    // The no-KD twin: the same key with loss.kd_weight 0 (its kd_loss and temperature are
    // unused, so they do not have to agree).
    auto without_kd = [](nlohmann::json k) {
      k["loss.kd_weight"] = 0;
      k.erase("loss.kd_loss");
      k.erase("loss.temperature");
      k.erase("loss.combine");
      return normalize_numbers(k);
    };
    for (auto& s : ds.students) {
      // A fine-tuned two-phase student's twin: the one-phase student of the same settings
      // trained without the teacher (its key without the phase).
      const bool finetuned = s.stage == "student_finetune";
      if (s.kd_weight == 0 && !finetuned) continue;
      if (s.stage == "student_kd") continue;  // settings of its own: no CE-only twin
      nlohmann::json twin = without_kd(s.key);
      twin.erase("phase");
      for (auto it = twin.begin(); it != twin.end();)
        it = it.key().rfind("phase1.", 0) == 0 ? twin.erase(it) : std::next(it);
      for (auto& o : ds.students) {
        if (o.kd_weight != 0 || o.stage != "student" || without_kd(o.key) != twin) continue;
        s.scratch_f1 = o.headline;
        s.has_scratch = o.headline.valid();
        if (s.has_scratch && s.headline.valid())
          s.kd_gain_points = (s.headline.mean - o.headline.mean) * 100;
        std::vector<double> diffs;
        for (auto& [seed, f1] : s.f1_by_seed)
          if (o.f1_by_seed.count(seed)) diffs.push_back((f1 - o.f1_by_seed.at(seed)) * 100);
        s.gain_pairs = static_cast<int>(diffs.size());
        if (diffs.size() >= 2) {
          auto st = stat_of(diffs);
          double half = t_quantile_975(st.n - 1) * st.std / std::sqrt(static_cast<double>(st.n));
          s.gain_ci_lo = st.mean - half;
          s.gain_ci_hi = st.mean + half;
        }
      }
    }
    // (A structured binding cannot be captured before C++20: a named reference can.)
    const DatasetReport& dsr = ds;
    auto against_teacher = [&dsr](ConfigRow& s) {
      if (dsr.has_teacher && s.params.valid() && dsr.teacher.params.valid() && s.params.mean > 0)
        s.compression = dsr.teacher.params.mean / s.params.mean;
      if (dsr.has_teacher && s.params_no_embedding.valid() &&
          dsr.teacher.params_no_embedding.valid() && s.params_no_embedding.mean > 0)
        s.compression_paper = dsr.teacher.params_no_embedding.mean / s.params_no_embedding.mean;
      if (dsr.has_teacher && s.params_trainable.valid() && dsr.teacher.params_trainable.valid() &&
          s.params_trainable.mean > 0)
        s.compression_trainable = dsr.teacher.params_trainable.mean / s.params_trainable.mean;
      if (dsr.has_teacher && s.latency_b1.valid() && dsr.teacher.latency_b1.valid() &&
          s.latency_b1.mean > 0)
        s.speedup = dsr.teacher.latency_b1.mean / s.latency_b1.mean;
      if (dsr.has_teacher && dsr.teacher.headline.valid() && dsr.teacher.headline.mean > 0 &&
          s.headline.valid()) {
        s.retained = 100 * s.headline.mean / dsr.teacher.headline.mean;
        s.has_retained = true;
      }
    };
    for (auto& s : ds.students) against_teacher(s);
    for (auto& e : ds.ensembles) against_teacher(e);
    mark_pareto(ds.students);
    // Paper order: architecture, then size, KD after its scratch twin.
    std::stable_sort(ds.students.begin(), ds.students.end(),
                     [](const ConfigRow& a, const ConfigRow& b) {
                       if (a.arch != b.arch) return a.arch < b.arch;
                       if (a.params.mean != b.params.mean) return a.params.mean < b.params.mean;
                       if (a.kd_weight != b.kd_weight) return a.kd_weight < b.kd_weight;
                       return phase_rank(a.stage) < phase_rank(b.stage);
                     });
    rep.datasets.push_back(ds);
  }
  return rep;
}

}  // namespace kdx
