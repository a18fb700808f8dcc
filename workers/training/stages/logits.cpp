// The teacher-logits cache: the finished teacher's raw logits over every training window
// (and the unlabeled text), or oracle logits made from the gold tags, for its students.
#include <chrono>
#include <random>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/json_fields.h"
#include "workers/training/logits_cache.h"
#include "workers/training/oracle.h"
#include "workers/training/stages/common.h"

namespace kdx::training {

void run_logits(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  using namespace stages;
  check_finished_teacher(spec.teacher_dir);
  // The teacher's own window, tagging and training subset: the logits must align with
  // the examples its students (which share these settings) will see.
  RunSpec keyed = spec;
  // A teacher run.json that does not parse is an error: its defaults would key the cache to
  // another window or subset than the teacher was trained on.
  const std::string run_path = spec.teacher_dir + "/run.json";
  auto teacher_run = read_json_file(run_path);
  data::JsonFields run(teacher_run, run_path);
  const nlohmann::json no_params = nlohmann::json::object();
  data::JsonFields tp(run.has("params") ? teacher_run["params"] : no_params, run_path, "params");
  keyed.params["window"] = tp.integer("window", 128);
  keyed.params["max_train_docs"] = tp.integer("max_train_docs", 0);
  Prepared p;
  p.types = read_types(spec.teacher_dir);  // the classes: every entity read is checked against them
  read_documents(keyed, p);
  p.tokenizer = load_tokenizer(spec.teacher_dir);
  auto teacher = load_teacher(spec.teacher_dir);
  // A teacher run.json without params.tagging: its head's shape tells the per-type schemes
  // apart (3 classes BIO, 5 BILOU).
  std::string tagging =
      tp.string("tagging", teacher->columns == 1
                               ? "flat_bio"
                               : (teacher->classes == 5 ? "per_type_bilou" : "per_type_bio"));
  p.scheme = data::make_scheme(tagging, p.types);
  keyed.params["tagging"] = tagging;
  int window = keyed.params["window"];
  p.train = data::encode_dataset(p.train_docs, *p.tokenizer, p.scheme, window);
  data::append_unlabelled(p.train, p.unlabeled_docs, *p.tokenizer, window);
  if (reducer.rank != 0) return;
  const auto& exec = so.exec;
  teacher->to(exec.device);
  teacher->eval();
  bool fp16 = spec.params.value("precision", std::string("fp16")) == "fp16";
  std::string key = logits_key(keyed, spec.teacher_dir);
  LogitsWriter w(spec.run_dir + "/logits.bin", key, teacher->columns * teacher->classes, fp16);
  int pad = p.tokenizer->vocab().pad();
  long rows = 0;
  std::string source = spec.params.value("source", std::string("teacher"));
  if (source != "teacher" && source != "oracle")
    throw Error(spec.path + ": params.source: '" + source + "' is not teacher or oracle");
  if (source == "oracle" && !p.unlabeled_docs.empty())
    throw Error(spec.path +
                ": an oracle cache is made from gold tags, and unlabeled text has "
                "none: drop the dataset's unlabeled files or use source: teacher");
  if (source == "oracle") {
    std::mt19937_64 rng(static_cast<uint64_t>(spec.params.value("seed", int64_t{1})));
    double margin = spec.params.value("oracle_margin", 4.0);
    double noise = spec.params.value("oracle_noise", 0.0);
    for (auto& ex : p.train.examples) {
      w.add(ex.ids, oracle_logits(ex, p.scheme.columns(), p.scheme.classes(), margin, noise, rng));
      rows += static_cast<long>(ex.ids.size());
    }
  }
  auto started = std::chrono::steady_clock::now();
  for (size_t start = 0; source == "teacher" && start < p.train.examples.size(); start += 32) {
    std::vector<int> idx;
    for (size_t i = start; i < std::min(p.train.examples.size(), start + 32); ++i)
      idx.push_back(static_cast<int>(i));
    auto b = data::make_batch(p.train, idx, pad);
    auto ids =
        runtime::to_device(torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64), exec);
    auto mask =
        runtime::to_device(torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64), exec);
    torch::Tensor logits;
    {
      runtime::AutocastGuard amp(exec);
      logits = teacher->infer(ids, mask);
    }
    // The cache stores fp32 or fp16 rows from the host, whatever the autocast dtype was.
    logits = logits.to(torch::kCPU, torch::kFloat32);
    for (int r = 0; r < b.size; ++r) {
      auto& ex = p.train.examples[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      w.add(ex.ids, logits[r].narrow(0, 0, static_cast<int64_t>(ex.ids.size())));
      rows += static_cast<long>(ex.ids.size());
    }
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  w.commit();
  nlohmann::json metrics = {
      {"examples", p.train.examples.size()},
      {"unlabeled_docs", p.unlabeled_docs.size()},
      {"rows", rows},
      {"size_mb", file_mb(spec.run_dir + "/logits.bin")},
      {"key", key},
      {"source", source},
      {"dtype", fp16 ? "fp16" : "fp32"},
      {"device", exec.describe()},
      {"amp", runtime::amp_name(exec.amp)},
      {"infer_seconds", seconds},
      {"gpu_hours", exec.is_cuda() ? seconds / 3600.0 : 0.0},
      {"peak_device_memory_mb", static_cast<double>(runtime::peak_device_bytes(exec)) / (1 << 20)}};
  write_result(spec, metrics, nlohmann::json::array(), {{"logits", spec.run_dir + "/logits.bin"}});
}

}  // namespace kdx::training
