// Phase 2 of the two-phase distillation: the phase-1 (student_kd) student, its weights and
// its vocabulary whole, fine-tuned on the labelled data with the supervised loss only.
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/input_file.h"
#include "common/json_io.h"
#include "common/strings.h"
#include "workers/models/student.h"
#include "workers/training/checkpoint.h"
#include "workers/training/stages/common.h"

namespace kdx::training {

void run_student_finetune(const RunSpec& spec, distributed::Reducer& reducer,
                          const StageOptions& so) {
  if (spec.student_dir.empty())
    throw Error(spec.path + ": a student_finetune run needs \"student_dir\" (its student_kd run)");
  for (auto f : {"model.json", "model.safetensors", "result.json"})
    if (!file_exists(spec.student_dir + "/" + f))
      throw Error(spec.student_dir + ": not a finished student_kd run (no " + std::string(f) + ")");
  Prepared p;
  stages::prepare_student_data(spec, p);
  Objective objective = stages::objective_of(spec);
  if (objective.kd_weight != 0)
    throw Error(spec.path +
                ": params.loss.kd_weight: a student_finetune run is supervised "
                "only (the teacher was learned from in its student_kd run); set it "
                "to 0");
  auto config = models::student_config_from_json(stages::read_model_json(spec.student_dir),
                                                 spec.student_dir + "/model.json");
  if (config.arch != spec.param_string("arch") || config.hidden != spec.param_int("hidden") ||
      config.layers != spec.param_int("layers") || config.emb != spec.param_int("emb") ||
      config.proj != spec.param_int("proj"))
    throw Error(spec.student_dir + "/model.json: the student_kd model (" + config.arch + ", " +
                std::to_string(config.layers) + " x " + std::to_string(config.hidden) + ", emb " +
                std::to_string(config.emb) + ", proj " + std::to_string(config.proj) +
                ") is not the architecture of " + spec.path);
  config.dropout = spec.param_double("dropout");
  // The phase-1 model's word rows: its table, read with the words of its own texts.
  stages::use_model_word_list(spec.student_dir, config.vectors.rows, p);
  auto student = std::make_shared<models::StudentTaggerImpl>(config);
  load_weights(*student, spec.student_dir + "/model.safetensors");
  stages::train_student(spec, reducer, so, p, student, objective, stages::training_order(spec, p),
                        {{"phase", "finetune"}});
}

}  // namespace kdx::training
