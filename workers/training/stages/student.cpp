// A recurrent student (LSTM, SRU, SRU++) on the teacher's vocabulary and tags, trained on
// cross-entropy and, when loss.kd_weight is set, on the cached teacher logits.
#include "workers/models/student.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/training/logits_cache.h"
#include "workers/training/stages/common.h"
#include "workers/training/student_init.h"
#include "workers/training/tagging_task.h"

namespace kdx::training {

void run_student(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  using namespace stages;
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
  TaggingTask task(student, td, objective, so.exec);
  Trainer trainer(student, task, opt, reducer);
  auto state = trainer.run();
  if (reducer.rank != 0) return;
  load_best(*student, spec);
  write_model_files(*student, spec.run_dir, p.types);
  save_tokenizer(*p.tokenizer, spec.run_dir);
  finish(spec, *student, p, so, {{"arch", c.arch}, {"kd_weight", objective.kd_weight}}, trainer,
         state, reducer.world);
}

}  // namespace kdx::training
