// `kdx report`: the paper's tables from the registry. ReportData is plain data built from
// the runs (aggregated over seeds, KD paired with its no-KD twin, Pareto fronts marked);
// report_render turns it into Markdown, CSV, LaTeX, JSON or a self-contained HTML page.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "orchestrator/registry.h"

namespace kdx {

struct Stat {
  double mean = 0, std = 0;
  int n = 0;
  bool valid() const { return n > 0; }
};
Stat stat_of(const std::vector<double>& values);

// One student configuration (all its seeds), or the teacher.
struct ConfigRow {
  std::string stage;  // teacher | student
  std::string arch;
  nlohmann::json key;  // the grouping values (arch, hidden, layers, ..., loss weights)
  double kd_weight = 0, ce_weight = 1;
  std::vector<std::string> runs;
  Stat f1, macro_f1, few_shot, params, size_mb, latency_b1, latency_b32;
  // The dataset's headline metric (DatasetReport::headline): what retained %, the KD gain,
  // its interval and the Pareto fronts are computed from.
  Stat headline;
  Stat params_no_embedding;  // without the word-embedding table; not in registries before it
  double compression = 0, speedup = 0, retained = 0;  // against the teacher
  // The paper's compression: teacher / student parameters, both without word embeddings;
  // 0 when either lacks params_no_embedding.
  double compression_paper = 0;
  // Trainable parameters only (a frozen word-vector table counts in `params`, not here);
  // 0 when either lacks params_trainable.
  Stat params_trainable;
  double compression_trainable = 0;
  bool has_retained = false;
  Stat scratch_f1;            // the headline of the same configuration with kd_weight 0
  double kd_gain_points = 0;  // (headline - scratch headline) * 100
  bool has_scratch = false;
  // The gain over paired seeds (the same seed with and without KD): its 95% t-interval in
  // points; valid with two pairs or more.
  int gain_pairs = 0;
  double gain_ci_lo = 0, gain_ci_hi = 0;
  std::map<int64_t, double> f1_by_seed;  // the headline metric per seed
  std::string kd_label;                  // "CE only", "KD kl w=1", ...
  bool pareto_compression = false, pareto_latency = false;
  int warnings = 0;  // runs of this row whose result.json carries a warning
};

struct DatasetReport {
  std::string dataset, format;
  // The shared task's own metric: RuNNE ranks by macro F1 over its 29 types, RuREBus (and
  // CoNLL) by micro (mention) F1. A result.json metric name.
  std::string headline = "f1";
  ConfigRow teacher;
  bool has_teacher = false;
  // Teacher ensembles as their students see them (a logits run that scored the combined
  // members on the test documents), one row per combination rule, after the teacher's.
  std::vector<ConfigRow> ensembles;
  std::vector<ConfigRow> students;
};

// One run's per-epoch curve from its metrics.jsonl (held-out score and loss terms).
struct Curve {
  std::string run, dataset, stage, arch, kd_label;
  std::vector<double> epoch, dev_f1, ce, kd;
};

struct CostRow {
  std::string run, stage, executor;
  double elapsed_s = 0, cpu_hours = 0, gpu_hours = 0;
  int attempts = 0;
};

struct ReportData {
  std::string experiment;  // empty = all
  std::vector<DatasetReport> datasets;
  std::vector<RunRecord> unfinished;  // not COMPLETED, with state and reason
  std::vector<std::pair<std::string, std::string>> warnings;  // run id, the worker's warning
  std::vector<CostRow> cost;
  double cpu_hours = 0, gpu_hours = 0;
  std::vector<nlohmann::json> run_rows;  // one per completed run, flattened config + metrics (CSV)
  std::vector<Curve> curves;             // teacher and student runs with a metrics.jsonl
};

// Throws kdx::Error for an unknown experiment or an empty registry. `group_by` empty =
// every parameter except the seed (and bookkeeping such as threads).
ReportData build_report(Registry& reg, const std::string& experiment,
                        const std::vector<std::string>& group_by);

// The two-sided 95% quantile of Student's t with `df` degrees of freedom.
double t_quantile_975(int df);

// Marks rows on the (F1 up, compression up) and (F1 up, latency down) fronts.
void mark_pareto(std::vector<ConfigRow>& rows);

}  // namespace kdx
