#include "workers/training/stages/common.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/fetch.h"
#include "workers/data/json_fields.h"
#include "workers/data/writers.h"
#include "workers/evaluation/latency.h"
#include "workers/evaluation/predict.h"
#include "workers/models/bert.h"
#include "workers/models/hf_checkpoint.h"
#include "workers/models/student.h"
#include "workers/runtime/torch_compat.h"
#include "workers/training/checkpoint.h"

namespace kdx::training::stages {

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
  // Parameters newer than kdx 0.3 (absent from older run.json files): their old behaviour.
  o.lr_schedule = spec.params.value("lr_schedule", std::string("linear"));
  o.plateau_factor = spec.params.value("plateau_factor", 0.5);
  o.plateau_patience = spec.params.value("plateau_patience", 0);
  o.min_lr = spec.params.value("min_lr", 0.0);
  o.freeze_epochs = spec.params.value("freeze_embedding_epochs", 0);
  o.checkpoint_every = spec.param_int("checkpoint_every");
  o.seed = static_cast<uint64_t>(spec.param_int64("seed"));
  o.checkpoint_dir = spec.run_dir + "/checkpoint";
  o.best_weights = spec.run_dir + "/best.safetensors";
  o.metrics_path = spec.run_dir + "/metrics.jsonl";
  o.progress_path = spec.run_dir + "/progress.json";
  o.stage = spec.stage;
  o.max_steps = so.max_steps;
  o.quiet = so.quiet;
  o.exec = so.exec;
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
    o.dice_weight = l.value("dice_weight", 0.0);
    o.label_smoothing = l.value("label_smoothing", 0.0);
    if (!known_kd_loss(o.kd_loss))
      throw Error(spec.path + ": params.loss.kd_loss: '" + o.kd_loss +
                  "' is not one of: kl, mse, mse_prob, hard");
  }
  return o;
}

decoding::Decoder decoder_of(const RunSpec& spec) {
  if (!spec.params.contains("decoding")) return decoding::Decoder::Greedy;
  try {
    return decoding::parse_decoder(spec.param_string("decoding"));
  } catch (const Error& e) {
    throw Error(spec.path + ": params.decoding: " + e.what());
  }
}

void load_best(torch::nn::Module& model, const RunSpec& spec) {
  if (file_exists(spec.run_dir + "/best.safetensors"))
    load_weights(model, spec.run_dir + "/best.safetensors");
}

void prepare_word_vectors(const RunSpec& spec, Prepared& p) {
  if (!spec.params.contains("vectors")) return;
  const auto& v = spec.params["vectors"];
  std::string file = spec.vectors_file.empty()
                         ? data::resolve_vectors_file(v.value("file", std::string()))
                         : spec.vectors_file;
  if (file.empty()) throw Error(spec.path + ": params.vectors.file: missing");
  auto vectors = data::read_word_vectors(file, v.value("format", std::string("navec")));
  p.words = data::build_word_table(vectors, {&p.train, &p.dev, &p.test});
  p.coverage = data::assign_word_rows(p.train, p.words);
  data::assign_word_rows(p.dev, p.words);
  data::assign_word_rows(p.test, p.words);
  spdlog::info("word vectors {} ({} words x {}): {} rows kept, {:.1f}% of training tokens have one",
               vectors.id, vectors.size(), vectors.dim, p.words.words.size(),
               100 * p.coverage.fraction());
}

void use_model_word_list(const std::string& dir, int rows, Prepared& p) {
  if (rows == 0) return;
  std::string path = dir + "/" + kWordListFile;
  p.words = data::read_word_list(path, 0);
  if (p.words.size() != rows)
    throw Error(path + ": " + std::to_string(p.words.size()) +
                " rows with the unknown word, but the model's table has " + std::to_string(rows));
  p.coverage = data::assign_word_rows(p.train, p.words);
  data::assign_word_rows(p.dev, p.words);
  data::assign_word_rows(p.test, p.words);
}

void write_model_files(models::TaggerImpl& tagger, const std::string& dir,
                       const std::vector<std::string>& types, const data::WordTable& words) {
  if (tagger.word_rows() > 0) data::write_word_list(words, dir + "/" + kWordListFile);
  if (auto* bert = dynamic_cast<models::BertTaggerImpl*>(&tagger)) {
    models::save_hf_checkpoint(*bert, dir);
  } else {
    save_weights(tagger, dir + "/model.safetensors");
  }
  write_file_atomic(dir + "/model.json", tagger.describe().dump(2) + "\n");
  write_file_atomic(dir + "/types.json", nlohmann::json(types).dump() + "\n");
}

nlohmann::json training_metrics(const RunSpec&, const StageOptions& so, const Trainer& trainer,
                                const TrainingState& state, int world) {
  const auto& exec = so.exec;
  nlohmann::json m = {{"train_tokens_per_s", trainer.tokens_per_second()},
                      {"allreduce_ms_per_step", trainer.allreduce_ms_per_step()},
                      {"steps", state.step},
                      {"epochs", state.epoch},
                      {"best_epoch", state.best_epoch},
                      {"train_seconds", state.elapsed_s},
                      {"device", exec.describe()},
                      {"device_type", exec.is_cuda() ? "cuda" : "cpu"},
                      {"amp", runtime::amp_name(exec.amp)},
                      {"ranks", world},
                      {"torch_version", compat::torch_version()}};
  // Device-hours: the GPU time of every rank, which the report's cost table sums where the
  // scheduler's accounting has none (the local executor).
  m["gpu_hours"] = exec.is_cuda() ? state.elapsed_s * world / 3600.0 : 0.0;
  m["peak_device_memory_mb"] = static_cast<double>(runtime::peak_device_bytes(exec)) / (1 << 20);
  if (exec.loss_scaling) {
    m["loss_scale"] = state.scaler.scale;
    m["skipped_steps"] = state.scaler.skipped_steps;
  }
  return m;
}

namespace {
int trainer_patience(const RunSpec& spec) {
  return spec.params.value("patience", 0);
}
}  // namespace

void write_result(const RunSpec& spec, const nlohmann::json& metrics,
                  const nlohmann::json& warnings, const nlohmann::json& files) {
  nlohmann::json result = {{"status", "ok"},     {"stage", spec.stage},  {"run", spec.id},
                           {"metrics", metrics}, {"warnings", warnings}, {"files", files}};
  write_file_atomic(spec.run_dir + "/result.json", result.dump(2) + "\n");
}

std::string score_on_test(models::TaggerImpl& tagger, const Prepared& p, const std::string& format,
                          const std::string& run_dir, decoding::Decoder decoder,
                          torch::Device device, nlohmann::json& metrics) {
  int pad = p.tokenizer->vocab().pad();
  auto pred = evaluation::predict(tagger, p.test, pad, 32, device, decoder);
  for (size_t i = 0; i < pred.size(); ++i) pred[i].text = p.test_docs[i].text;
  auto scores = evaluation::score(format, p.test_docs, pred, p.types);
  metrics["f1"] = scores.mention.f1;
  metrics["precision"] = scores.mention.precision;
  metrics["recall"] = scores.mention.recall;
  metrics["macro_f1"] = scores.macro_f1;
  if (format == "runne") metrics["macro_f1_few_shot"] = scores.macro_f1_few_shot;
  metrics["test_docs"] = p.test_docs.size();
  std::string pred_path = run_dir + (format == "rurebus" ? "/predictions" : "/predictions.jsonl");
  data::write_predictions(format, pred, pred_path);
  write_file_atomic(run_dir + "/scores.json", scores.to_json().dump(2) + "\n");
  return pred_path;
}

void finish(const RunSpec& spec, models::TaggerImpl& tagger, Prepared& p, const StageOptions& so,
            nlohmann::json metrics, const Trainer& trainer, const TrainingState& state, int world) {
  const auto& exec = so.exec;
  nlohmann::json files = {{"model", spec.run_dir + "/model.safetensors"}};
  metrics.update(training_metrics(spec, so, trainer, state, world));
  if (!p.test_docs.empty())
    files["predictions"] =
        score_on_test(tagger, p, spec.format, spec.run_dir, decoder_of(spec), exec.device, metrics);
  // Teacher and student counted alike. params_trainable: requires_grad as training left it (an
  // embedding frozen to the end is not trainable); params_no_embedding: without the
  // word-embedding table, the paper's comparison.
  auto counts = models::count_parameters(tagger);
  metrics["params"] = counts.total;
  metrics["params_trainable"] = counts.trainable;
  metrics["params_no_embedding"] = counts.no_embedding();
  if (counts.vectors > 0) {
    metrics["params_vectors"] = counts.vectors;
    metrics["word_vector_coverage"] = p.coverage.fraction();
  }
  metrics["size_mb"] = file_mb(spec.run_dir + "/model.safetensors");
  if (so.measure_latency) {
    int vocab = static_cast<int>(p.tokenizer->vocab().size());
    // The paper reports both: latency on the run's GPU, and on a CPU (the deployment target).
    if (exec.is_cuda()) {
      auto g1 = evaluation::measure_latency(tagger, vocab, 1, 128, so.latency_runs, 3, exec);
      auto g32 = evaluation::measure_latency(tagger, vocab, 32, 128, so.latency_runs, 3, exec);
      metrics["gpu_latency_b1_ms"] = g1.median_ms;
      metrics["gpu_latency_b32_ms"] = g32.median_ms;
      tagger.to(torch::kCPU);
    }
    runtime::Execution cpu;
    auto l1 = evaluation::measure_latency(tagger, vocab, 1, 128, so.latency_runs, 3, cpu);
    auto l32 = evaluation::measure_latency(tagger, vocab, 32, 128, std::max(3, so.latency_runs / 4),
                                           1, cpu);
    metrics["latency_b1_ms"] = l1.median_ms;
    metrics["latency_b32_ms"] = l32.median_ms;
    metrics["latency_threads"] = l1.threads;
  }
  metrics["best_dev_f1"] = state.best_score;
  nlohmann::json warnings = nlohmann::json::array();
  if (state.stalled)
    warnings.push_back("dev F1 stayed 0 for " +
                       std::to_string(std::max(6, 2 * trainer_patience(spec))) +
                       " epochs, so training stopped after epoch " + std::to_string(state.epoch) +
                       ": the model never found a dev entity; try a lower lr");
  else if (state.best_score == 0)
    warnings.push_back("dev F1 was 0 in every epoch (" + std::to_string(state.epoch) +
                       "): the model never found a dev entity; try another lr or more epochs");
  if (state.scaler.skipped_steps > 0)
    warnings.push_back(std::to_string(state.scaler.skipped_steps) +
                       " fp16 steps were skipped for an inf/NaN gradient (final loss scale " +
                       std::to_string(state.scaler.scale) + ")");
  write_result(spec, metrics, warnings, files);
}

std::vector<std::string> read_types(const std::string& dir) {
  std::string path = dir + "/types.json";
  return data::string_list(read_json_file(path), path);
}

nlohmann::json read_model_json(const std::string& dir) {
  std::string path = dir + "/model.json";
  auto desc = read_json_file(path);
  data::JsonFields(desc, path);  // an object, or "<path>: expected a JSON object, got ..."
  return desc;
}

models::Tagger load_teacher(const std::string& dir) {
  auto tagger = models::make_tagger(read_model_json(dir), dir + "/model.json");
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

}  // namespace kdx::training::stages
