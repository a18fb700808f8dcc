#include "workers/training/stages.h"

#include <sys/stat.h>

#include <cstdio>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "workers/data/readers.h"
#include "workers/data/test_leak.h"
#include "workers/data/vocab_builder.h"
#include "workers/data/writers.h"
#include "workers/evaluation/latency.h"
#include "workers/evaluation/predict.h"
#include "workers/models/bert.h"
#include "workers/models/bert_mlm.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/models/safetensors.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/logits_cache.h"
#include "workers/training/mlm_task.h"
#include "workers/training/oracle.h"
#include "workers/training/prepare.h"
#include "workers/training/student_init.h"
#include "workers/training/tagging_task.h"
#include "workers/training/trainer.h"

namespace kdx::training {
namespace {

double file_mb(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? static_cast<double>(st.st_size) / 1e6 : 0;
}

TrainerOptions trainer_options(const RunSpec& spec, const StageOptions& so) {
  TrainerOptions o;
  o.epochs = spec.param_int("epochs");
  o.batch_size = spec.param_int("batch_size");
  o.lr = spec.param_double("lr");
  o.weight_decay = spec.param_double("weight_decay");
  o.grad_clip = spec.param_double("grad_clip");
  o.warmup_steps = spec.param_int("warmup_steps");
  o.patience = spec.param_int("patience");
  o.checkpoint_every = spec.param_int("checkpoint_every");
  o.seed = static_cast<uint64_t>(spec.param_int64("seed"));
  o.checkpoint_dir = spec.run_dir + "/checkpoint";
  o.best_weights = spec.run_dir + "/best.safetensors";
  o.metrics_path = spec.run_dir + "/metrics.jsonl";
  o.progress_path = spec.run_dir + "/progress.json";
  o.stage = spec.stage;
  o.max_steps = so.max_steps;
  o.quiet = so.quiet;
  return o;
}

Objective objective_of(const RunSpec& spec) {
  Objective o;
  if (spec.params.contains("loss")) {
    auto& l = spec.params["loss"];
    o.ce_weight = l.value("ce_weight", 1.0);
    o.kd_weight = l.value("kd_weight", 0.0);
    o.kd_loss = l.value("kd_loss", std::string("kl"));
    o.temperature = l.value("temperature", 1.0);
    if (!known_kd_loss(o.kd_loss))
      throw Error(spec.path + ": params.loss.kd_loss: '" + o.kd_loss +
                  "' is not one of: kl, mse, mse_prob");
  }
  return o;
}

void write_model_files(models::TaggerImpl& tagger, const std::string& dir,
                       const std::vector<std::string>& types) {
  if (auto* bert = dynamic_cast<models::BertTaggerImpl*>(&tagger)) {
    models::save_hf_checkpoint(*bert, dir);
  } else {
    save_weights(tagger, dir + "/model.safetensors");
  }
  write_file_atomic(dir + "/model.json", tagger.describe().dump(2) + "\n");
  write_file_atomic(dir + "/types.json", nlohmann::json(types).dump() + "\n");
}

// Test-set evaluation, predictions file, size, latency, then result.json (rank 0).
void finish(const RunSpec& spec, models::TaggerImpl& tagger, Prepared& p, const StageOptions& so,
            nlohmann::json metrics, const Trainer& trainer, const TrainingState& state) {
  int pad = p.tokenizer->vocab().pad();
  nlohmann::json files = {{"model", spec.run_dir + "/model.safetensors"}};
  if (!p.test_docs.empty()) {
    auto pred = evaluation::predict(tagger, p.test, pad);
    for (size_t i = 0; i < pred.size(); ++i) pred[i].text = p.test_docs[i].text;
    auto scores = evaluation::score(spec.format, p.test_docs, pred, p.types);
    metrics["f1"] = scores.mention.f1;
    metrics["precision"] = scores.mention.precision;
    metrics["recall"] = scores.mention.recall;
    metrics["macro_f1"] = scores.macro_f1;
    if (spec.format == "runne") metrics["macro_f1_few_shot"] = scores.macro_f1_few_shot;
    metrics["test_docs"] = p.test_docs.size();
    std::string pred_path =
        spec.run_dir + (spec.format == "rurebus" ? "/predictions" : "/predictions.jsonl");
    data::write_predictions(spec.format, pred, pred_path);
    files["predictions"] = pred_path;
    write_file_atomic(spec.run_dir + "/scores.json", scores.to_json().dump(2) + "\n");
  }
  metrics["params"] = models::parameter_count(tagger);
  metrics["size_mb"] = file_mb(spec.run_dir + "/model.safetensors");
  if (so.measure_latency) {
    int vocab = static_cast<int>(p.tokenizer->vocab().size());
    auto l1 = evaluation::measure_latency(tagger, vocab, 1, 128, so.latency_runs);
    auto l32 =
        evaluation::measure_latency(tagger, vocab, 32, 128, std::max(3, so.latency_runs / 4), 1);
    metrics["latency_b1_ms"] = l1.median_ms;
    metrics["latency_b32_ms"] = l32.median_ms;
    metrics["latency_threads"] = l1.threads;
  }
  metrics["train_tokens_per_s"] = trainer.tokens_per_second();
  metrics["allreduce_ms_per_step"] = trainer.allreduce_ms_per_step();
  metrics["steps"] = state.step;
  metrics["epochs"] = state.epoch;
  metrics["best_dev_f1"] = state.best_score;
  metrics["best_epoch"] = state.best_epoch;
  metrics["train_seconds"] = state.elapsed_s;
  nlohmann::json warnings = nlohmann::json::array();
  if (state.best_score == 0)
    warnings.push_back("dev F1 was 0 in every epoch (" + std::to_string(state.epoch) +
                       "): the model never found a dev entity; try another lr or more epochs");
  nlohmann::json result = {{"status", "ok"},     {"stage", spec.stage},  {"run", spec.id},
                           {"metrics", metrics}, {"warnings", warnings}, {"files", files}};
  write_file_atomic(spec.run_dir + "/result.json", result.dump(2) + "\n");
}

std::vector<std::string> read_types(const std::string& dir) {
  auto j = parse_json(read_file(dir + "/types.json"));
  if (!j.is_array()) throw Error(dir + "/types.json: not a JSON list");
  return j.get<std::vector<std::string>>();
}

// The finished teacher of a teacher_dir: its tagger, with weights.
models::Tagger load_teacher(const std::string& dir) {
  auto desc = parse_json(read_file(dir + "/model.json"));
  if (!desc.is_object()) throw Error(dir + "/model.json: not valid JSON");
  auto tagger = models::make_tagger(desc);
  load_weights(*tagger, dir + "/model.safetensors");
  return tagger;
}

void check_finished_teacher(const std::string& dir) {
  for (auto f : {"model.json", "model.safetensors", "vocab.txt", "types.json"}) {
    struct stat st;
    if (::stat((dir + "/" + f).c_str(), &st) != 0)
      throw Error(dir + ": not a finished kdx teacher (no " + std::string(f) + ")");
  }
}

}  // namespace

void run_teacher(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  Prepared p;
  read_documents(spec, p);
  p.types = dataset_types(spec, p.train_docs);
  models::Tagger tagger;
  p.scheme = data::make_scheme(spec.param_string("tagging"), p.types);
  torch::manual_seed(static_cast<uint64_t>(spec.param_int64("seed")));
  std::string init =
      spec.pretrain_dir.empty() ? spec.params.value("init_from", std::string()) : spec.pretrain_dir;
  if (!init.empty()) {
    auto ck = models::read_hf_checkpoint(init);
    p.tokenizer = load_tokenizer(init);
    auto bert =
        std::make_shared<models::BertTaggerImpl>(ck.config, p.scheme.columns(), p.scheme.classes());
    models::load_hf_weights(*bert, ck, init);
    tagger = bert;
  } else {
    data::TokenizerOptions to;
    to.lowercase = spec.param_bool("lowercase");
    p.tokenizer = std::make_unique<data::Tokenizer>(
        data::build_vocab(p.train_docs, static_cast<size_t>(spec.param_int("vocab_size")), to), to);
    models::BertConfig c;
    c.vocab_size = static_cast<int>(p.tokenizer->vocab().size());
    c.hidden = spec.param_int("hidden");
    c.layers = spec.param_int("layers");
    c.heads = spec.param_int("heads");
    c.intermediate = spec.param_int("ffn");
    c.dropout = c.attention_dropout = spec.param_double("dropout");
    c.max_position = std::max(512, spec.param_int("window"));
    c.initializer_range = spec.params.value("init_range", 0.02);
    if (c.hidden % c.heads != 0)
      throw Error(spec.path + ": params.hidden must be a multiple of params.heads");
    tagger = std::make_shared<models::BertTaggerImpl>(c, p.scheme.columns(), p.scheme.classes());
  }
  if (reducer.rank == 0) save_tokenizer(*p.tokenizer, spec.run_dir);
  encode_all(spec, p);
  TrainData td{&p.train,    &p.dev, &p.dev_docs, nullptr, p.tokenizer->vocab().pad(),
               spec.format, p.types};
  TaggingTask task(tagger, td, Objective{});
  Trainer trainer(tagger, task, trainer_options(spec, so), reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  struct stat st;
  if (::stat((spec.run_dir + "/best.safetensors").c_str(), &st) == 0)
    load_weights(*tagger, spec.run_dir + "/best.safetensors");
  write_model_files(*tagger, spec.run_dir, p.types);
  finish(spec, *tagger, p, so, {{"vocab_size", p.tokenizer->vocab().size()}}, trainer, state);
}

void run_logits(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions&) {
  check_finished_teacher(spec.teacher_dir);
  // The teacher's own window, tagging and training subset: the logits must align with
  // the examples its students (which share these settings) will see.
  RunSpec keyed = spec;
  auto teacher_run = parse_json(read_file(spec.teacher_dir + "/run.json"));
  nlohmann::json tp = teacher_run.is_object() && teacher_run.contains("params")
                          ? teacher_run["params"]
                          : nlohmann::json::object();
  keyed.params["window"] = tp.value("window", 128);
  keyed.params["max_train_docs"] = tp.value("max_train_docs", 0);
  Prepared p;
  read_documents(keyed, p);
  p.types = read_types(spec.teacher_dir);
  p.tokenizer = load_tokenizer(spec.teacher_dir);
  auto teacher = load_teacher(spec.teacher_dir);
  auto desc = teacher->describe();
  std::string tagging =
      tp.value("tagging", desc.value("columns", 1) == 1 ? "flat_bio" : "per_type_bio");
  p.scheme = data::make_scheme(tagging, p.types);
  keyed.params["tagging"] = tagging;
  int window = keyed.params["window"];
  p.train = data::encode_dataset(p.train_docs, *p.tokenizer, p.scheme, window);
  data::append_unlabelled(p.train, p.unlabeled_docs, *p.tokenizer, window);
  if (reducer.rank != 0) return;
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
  for (size_t start = 0; source == "teacher" && start < p.train.examples.size(); start += 32) {
    std::vector<int> idx;
    for (size_t i = start; i < std::min(p.train.examples.size(), start + 32); ++i)
      idx.push_back(static_cast<int>(i));
    auto b = data::make_batch(p.train, idx, pad);
    auto ids = torch::from_blob(b.ids.data(), {b.size, b.len}, torch::kInt64);
    auto mask = torch::from_blob(b.mask.data(), {b.size, b.len}, torch::kInt64);
    auto logits = teacher->infer(ids, mask);
    for (int r = 0; r < b.size; ++r) {
      auto& ex = p.train.examples[static_cast<size_t>(idx[static_cast<size_t>(r)])];
      w.add(ex.ids, logits[r].narrow(0, 0, static_cast<int64_t>(ex.ids.size())));
      rows += static_cast<long>(ex.ids.size());
    }
  }
  w.commit();
  nlohmann::json metrics = {{"examples", p.train.examples.size()},
                            {"unlabeled_docs", p.unlabeled_docs.size()},
                            {"rows", rows},
                            {"size_mb", file_mb(spec.run_dir + "/logits.bin")},
                            {"key", key},
                            {"source", source},
                            {"dtype", fp16 ? "fp16" : "fp32"}};
  nlohmann::json result = {{"status", "ok"},
                           {"stage", "logits"},
                           {"run", spec.id},
                           {"metrics", metrics},
                           {"files", {{"logits", spec.run_dir + "/logits.bin"}}}};
  write_file_atomic(spec.run_dir + "/result.json", result.dump(2) + "\n");
}

void run_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  std::string arch = spec.param_string("arch");
  if (arch != "lstm" && arch != "sru" && arch != "srupp")
    throw Error(spec.path + ": params.arch: unknown student architecture '" + arch +
                "' (expected lstm, sru, srupp)");
  check_finished_teacher(spec.teacher_dir);
  Prepared p;
  read_documents(spec, p);
  p.types = read_types(spec.teacher_dir);
  p.tokenizer = load_tokenizer(spec.teacher_dir);
  p.scheme = data::make_scheme(spec.param_string("tagging"), p.types);
  encode_all(spec, p);
  auto teacher_desc = parse_json(read_file(spec.teacher_dir + "/model.json"));
  if (teacher_desc.value("columns", 0) != p.scheme.columns() ||
      teacher_desc.value("classes", 0) != p.scheme.classes())
    throw Error(spec.path + ": params.tagging '" + spec.param_string("tagging") +
                "' does not match the teacher's output layout");

  auto student = make_student(spec, p, spec.teacher_dir);
  const auto& c = student->config;
  TrainerOptions opt = trainer_options(spec, so);
  Objective objective = objective_of(spec);
  std::unique_ptr<LogitsCache> cache;
  if (objective.kd_weight != 0) {
    if (spec.logits_dir.empty())
      throw Error(spec.path + ": loss.kd_weight is not 0 but the run has no logits_dir");
    cache = std::make_unique<LogitsCache>(spec.logits_dir + "/logits.bin",
                                          logits_key(spec, spec.teacher_dir));
    if (cache->size() != p.train.examples.size())
      throw Error(spec.logits_dir +
                  "/logits.bin: stale teacher logits cache: " + std::to_string(cache->size()) +
                  " examples, this run has " + std::to_string(p.train.examples.size()));
  }
  TrainData td{&p.train,    &p.dev, &p.dev_docs, cache.get(), p.tokenizer->vocab().pad(),
               spec.format, p.types};
  TaggingTask task(student, td, objective);
  Trainer trainer(student, task, opt, reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  struct stat st;
  if (::stat((spec.run_dir + "/best.safetensors").c_str(), &st) == 0)
    load_weights(*student, spec.run_dir + "/best.safetensors");
  write_model_files(*student, spec.run_dir, p.types);
  save_tokenizer(*p.tokenizer, spec.run_dir);
  finish(spec, *student, p, so, {{"arch", c.arch}, {"kd_weight", objective.kd_weight}}, trainer,
         state);
}

void run_pretrain(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  std::vector<data::Document> corpus;
  for (auto& f : spec.corpus)
    for (auto& d : data::read_texts(f)) corpus.push_back(std::move(d));
  if (corpus.empty()) throw Error(spec.path + ": the pretraining corpus has no documents");
  std::vector<data::TestSplit> tests;
  for (auto& t : spec.test_splits) tests.push_back({t.dataset, t.format, t.files});
  if (auto leak = data::find_test_leak(spec.corpus, tests))
    throw Error(spec.path + ": corpus: " + leak->message());

  std::string init = spec.params.value("init_from", std::string());
  std::unique_ptr<data::Tokenizer> tokenizer;
  models::BertConfig c;
  std::optional<models::HfCheckpoint> ck;
  if (!init.empty()) {
    ck = models::read_hf_checkpoint(init);
    c = ck->config;
    tokenizer = load_tokenizer(init);
  } else {
    data::TokenizerOptions to;
    to.lowercase = spec.param_bool("lowercase");
    tokenizer = std::make_unique<data::Tokenizer>(
        data::build_vocab(corpus, static_cast<size_t>(spec.param_int("vocab_size")), to), to);
    c.vocab_size = static_cast<int>(tokenizer->vocab().size());
    c.hidden = spec.param_int("hidden");
    c.layers = spec.param_int("layers");
    c.heads = spec.param_int("heads");
    c.intermediate = spec.param_int("ffn");
    c.max_position = std::max(512, spec.param_int("window"));
    c.initializer_range = spec.params.value("init_range", 0.02);
    if (c.hidden % c.heads != 0)
      throw Error(spec.path + ": params.hidden must be a multiple of params.heads");
  }
  c.dropout = c.attention_dropout = spec.param_double("dropout");
  if (tokenizer->vocab().id("[MASK]") < 0)
    throw Error((init.empty() ? spec.path : init + "/vocab.txt") +
                ": the vocabulary has no [MASK] token, which masked-language pretraining needs");
  torch::manual_seed(static_cast<uint64_t>(spec.param_int64("seed")));
  auto model = models::BertMlm(c);
  if (ck) models::load_hf_weights(*model, *ck, init, "cls.");
  if (reducer.rank == 0) save_tokenizer(*tokenizer, spec.run_dir);

  auto data =
      make_mlm_data(corpus, *tokenizer, spec.param_int("window"), spec.param_int("heldout_every"));
  MlmOptions mo;
  mo.mask_prob = spec.param_double("mask_prob");
  mo.whole_word = spec.param_bool("whole_word_mask");
  mo.seed = static_cast<uint64_t>(spec.param_int64("seed"));
  MlmTask task(model, data, mo);
  Trainer trainer(model.ptr(), task, trainer_options(spec, so), reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  if (file_exists(spec.run_dir + "/best.safetensors"))
    load_weights(*model, spec.run_dir + "/best.safetensors");
  models::save_mlm_checkpoint(*model, spec.run_dir);
  nlohmann::json metrics = {{"mlm_accuracy", state.best_score},
                            {"corpus_docs", corpus.size()},
                            {"train_windows", data.train.size()},
                            {"heldout_windows", data.heldout.size()},
                            {"train_tokens_per_epoch", data.train_tokens()},
                            {"vocab_size", c.vocab_size},
                            {"params", models::parameter_count(*model->bert)},
                            {"train_tokens_per_s", trainer.tokens_per_second()},
                            {"allreduce_ms_per_step", trainer.allreduce_ms_per_step()},
                            {"steps", state.step},
                            {"epochs", state.epoch},
                            {"best_epoch", state.best_epoch},
                            {"train_seconds", state.elapsed_s}};
  nlohmann::json result = {{"status", "ok"},
                           {"stage", "pretrain"},
                           {"run", spec.id},
                           {"metrics", metrics},
                           {"warnings", nlohmann::json::array()},
                           {"files", {{"model", spec.run_dir + "/model.safetensors"}}}};
  write_file_atomic(spec.run_dir + "/result.json", result.dump(2) + "\n");
}

void run_stage(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  ::mkdir(spec.run_dir.c_str(), 0755);
  if (spec.stage == "pretrain") return run_pretrain(spec, reducer, so);
  if (spec.stage == "teacher") return run_teacher(spec, reducer, so);
  if (spec.stage == "logits") return run_logits(spec, reducer, so);
  return run_student(spec, reducer, so);
}

}  // namespace kdx::training
