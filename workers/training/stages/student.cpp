// A recurrent student (LSTM, SRU, SRU++) on the teacher's vocabulary and tags, trained on its
// supervised loss (CE, Dice) and, when loss.kd_weight is set, on the cached teacher logits in
// the same loss: one-phase distillation. The two-phase recipe is student_kd then
// student_finetune; all three share train_student() below.
#include "workers/models/student.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/data/json_fields.h"
#include "workers/training/logits_cache.h"
#include "workers/training/sampler.h"
#include "workers/training/stages/common.h"
#include "workers/training/student_init.h"
#include "workers/training/tagging_task.h"

namespace kdx::training::stages {

void prepare_student_data(const RunSpec& spec, Prepared& p) {
  const std::string arch = spec.param_string("arch");
  if (arch != "lstm" && arch != "sru" && arch != "srupp")
    throw Error(spec.path + ": params.arch: unknown student architecture '" + arch +
                "' (expected lstm, sru, srupp)");
  check_finished_teacher(spec.teacher_dir);
  p.types = read_types(spec.teacher_dir);  // the classes: every entity read is checked against them
  read_documents(spec, p);
  p.tokenizer = load_tokenizer(spec.teacher_dir);
  p.scheme = data::make_scheme(spec.param_string("tagging"), p.types);
  encode_all(spec, p);
  auto teacher_desc = read_model_json(spec.teacher_dir);
  data::JsonFields desc(teacher_desc, spec.teacher_dir + "/model.json");
  if (desc.integer("columns", 0) != p.scheme.columns() ||
      desc.integer("classes", 0) != p.scheme.classes())
    throw Error(spec.path + ": params.tagging '" + spec.param_string("tagging") +
                "' does not match the teacher's output layout");
}

std::function<std::vector<int>(int)> training_order(const RunSpec& spec, const Prepared& p) {
  const std::string sampler = spec.params.value("sampler", std::string("shuffle"));
  const uint64_t seed = static_cast<uint64_t>(spec.param_int64("seed"));
  if (sampler == "shuffle") return {};
  if (sampler != "entity_balanced")
    throw Error(spec.path + ": params.sampler: '" + sampler +
                "' is not one of: shuffle, entity_balanced");
  bool unlabelled = false;
  for (auto& ex : p.train.examples) unlabelled = unlabelled || !ex.labelled;
  if (unlabelled && spec.params.contains("loss") &&
      spec.params["loss"].value("kd_weight", 0.0) != 0)
    throw Error(spec.path +
                ": params.sampler: entity_balanced draws only windows with gold "
                "entities, so this distilling student would never see its unlabeled "
                "text; use sampler: shuffle (or two_phase)");
  auto counts = entity_counts(p.train);
  long draws = spec.params.value("sampler_draws", 0L);
  if (draws <= 0) {
    draws = 0;
    for (auto& ex : p.train.examples) draws += ex.labelled ? 1 : 0;
  }
  // Checked here, where the run.json path can be named, rather than in the first epoch.
  bool any = false;
  for (auto& row : counts)
    for (int c : row) any = any || c > 0;
  if (!any)
    throw Error(spec.path +
                ": params.sampler: entity_balanced, but no training window holds "
                "an entity");
  return [counts = std::move(counts), draws, seed](int epoch) {
    return entity_balanced_order(counts, draws, seed, epoch);
  };
}

void train_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so,
                   Prepared& p, std::shared_ptr<models::StudentTaggerImpl> student,
                   Objective objective, std::function<std::vector<int>(int)> order,
                   nlohmann::json extra_metrics) {
  const auto& c = student->config;
  TrainerOptions opt = trainer_options(spec, so);
  opt.order = std::move(order);
  if (opt.freeze_epochs > 0) opt.frozen = {student->word_embeddings()};
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
  td.decoder = decoder_of(spec);
  TaggingTask task(student, td, objective, so.exec);
  Trainer trainer(student, task, opt, reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  load_best(*student, spec);
  write_model_files(*student, spec.run_dir, p.types, p.words);
  save_tokenizer(*p.tokenizer, spec.run_dir);
  nlohmann::json metrics = {{"arch", c.arch}, {"kd_weight", objective.kd_weight}};
  if (extra_metrics.is_object()) metrics.update(extra_metrics);
  finish(spec, *student, p, so, metrics, trainer, state, reducer.world);
}

}  // namespace kdx::training::stages

namespace kdx::training {

void run_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  Prepared p;
  stages::prepare_student_data(spec, p);
  stages::prepare_word_vectors(spec, p);
  auto student = make_student(spec, p, spec.teacher_dir);
  auto order = stages::training_order(spec, p);
  stages::train_student(spec, reducer, so, p, student, stages::objective_of(spec), order,
                        nlohmann::json::object());
}

}  // namespace kdx::training
