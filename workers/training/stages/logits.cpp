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
#include "workers/evaluation/predict.h"
#include "workers/models/ensemble.h"
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
  // An ensemble is scored on its members' test documents, decoded as they were.
  keyed.params["max_test_docs"] = tp.integer("max_test_docs", 0);
  if (run.has("params") && teacher_run["params"].contains("decoding"))
    keyed.params["decoding"] = tp.string("decoding", "greedy");
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
  // The members of an ensemble (the teacher alone otherwise): same tokenizer, types and head
  // as the first; each with its own word rows when it reads word vectors.
  std::vector<std::string> member_dirs =
      spec.teacher_dirs.empty() ? std::vector<std::string>{spec.teacher_dir} : spec.teacher_dirs;
  std::vector<models::Tagger> members;
  std::vector<std::vector<std::vector<int>>> member_words;
  // Whether every member reads the same word list (seeds of one configuration do): then the
  // ensemble is one tagger over the test windows' word rows.
  bool same_words = true;
  for (auto& dir : member_dirs) {
    models::Tagger m = teacher;
    if (dir != spec.teacher_dir) {
      check_finished_teacher(dir);
      if (read_input(dir + "/vocab.txt", InputKind::Data) !=
          read_input(spec.teacher_dir + "/vocab.txt", InputKind::Data))
        throw Error(dir + "/vocab.txt: an ensemble member with another vocabulary than " +
                    spec.teacher_dir + " (its logits would not align token by token)");
      if (read_types(dir) != p.types)
        throw Error(dir + "/types.json: an ensemble member with other entity types than " +
                    spec.teacher_dir);
      m = load_teacher(dir);
      if (m->columns != teacher->columns || m->classes != teacher->classes)
        throw Error(dir + "/model.json: an ensemble member with another output layout than " +
                    spec.teacher_dir);
    }
    if (dir != spec.teacher_dir && m->word_rows() > 0)
      same_words =
          same_words && read_input(dir + "/" + kWordListFile, InputKind::Data) ==
                            read_input(spec.teacher_dir + "/" + kWordListFile, InputKind::Data);
    use_model_word_list(dir, m->word_rows(), p);
    std::vector<std::vector<int>> rows;
    // A lone teacher keeps the rows just assigned; an ensemble swaps each member's in per batch.
    if (m->word_rows() > 0 && member_dirs.size() > 1)
      for (auto& ex : p.train.examples) rows.push_back(ex.words);
    member_words.push_back(std::move(rows));
    members.push_back(m);
  }
  const std::string combine = spec.params.value("combine", std::string("mean_logits"));
  const models::Combine rule = models::combine_of(combine, spec.path + ": params.combine");
  if (reducer.rank != 0) return;
  const auto& exec = so.exec;
  for (auto& m : members) {
    m->to(exec.device);
    m->eval();
  }
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
    std::vector<torch::Tensor> outs;
    data::Batch b;
    for (size_t k = 0; k < members.size(); ++k) {
      if (!member_words[k].empty())
        for (int e : idx)
          p.train.examples[static_cast<size_t>(e)].words = member_words[k][static_cast<size_t>(e)];
      b = data::make_batch(p.train, idx, pad);
      auto ids =
          runtime::to_device(torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64), exec);
      auto mask =
          runtime::to_device(torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64), exec);
      torch::Tensor out;
      {
        runtime::AutocastGuard amp(exec);
        out = members[k]->infer(ids, mask, evaluation::batch_word_rows(b, exec.device));
      }
      // Combined in fp32 on the host, whatever the autocast dtype was.
      outs.push_back(out.to(torch::kCPU, torch::kFloat32));
    }
    torch::Tensor logits = models::combine_outputs(outs, rule, teacher->columns, teacher->classes);
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
      {"ensemble", members.size()},
      {"combine", members.size() > 1 ? nlohmann::json(combine) : nlohmann::json()},
      {"dtype", fp16 ? "fp16" : "fp32"},
      {"device", exec.describe()},
      {"amp", runtime::amp_name(exec.amp)},
      {"infer_seconds", seconds},
      {"gpu_hours", exec.is_cuda() ? seconds / 3600.0 : 0.0},
      {"peak_device_memory_mb", static_cast<double>(runtime::peak_device_bytes(exec)) / (1 << 20)}};
  nlohmann::json files = {{"logits", spec.run_dir + "/logits.bin"}};
  nlohmann::json warnings = nlohmann::json::array();
  // The ensemble as its students' teacher: scored on the test documents like a teacher run.
  if (source == "teacher" && members.size() > 1 && !p.test_docs.empty()) {
    if (!same_words) {
      warnings.push_back(
          "the ensemble's members read different word lists, so the ensemble "
          "itself was not scored on the test documents");
    } else {
      // Encoded only here: a lone teacher's cache never reads the test documents.
      p.test = data::encode_dataset(p.test_docs, *p.tokenizer, p.scheme, window);
      if (!p.words.words.empty()) data::assign_word_rows(p.test, p.words);
      models::EnsembleTaggerImpl ensemble(members, rule);
      files["predictions"] = score_on_test(ensemble, p, spec.format, spec.run_dir,
                                           decoder_of(keyed), exec.device, metrics);
      auto counts = models::count_parameters(ensemble);
      metrics["params"] = counts.total;
      metrics["params_trainable"] = counts.trainable;
      metrics["params_no_embedding"] = counts.no_embedding();
    }
  }
  write_result(spec, metrics, warnings, files);
}

}  // namespace kdx::training
