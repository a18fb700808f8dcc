#include "workers/training/stages.h"

#include <sys/stat.h>

#include "common/error.h"

namespace kdx::training {

const std::vector<std::pair<std::string, StageFn>>& stage_table() {
  static const std::vector<std::pair<std::string, StageFn>> table = {
      {"pretrain", run_pretrain},
      {"teacher", run_teacher},
      {"logits", run_logits},
      {"student_kd", run_student_kd},
      {"student_finetune", run_student_finetune},
      {"student", run_student},
  };
  return table;
}

void run_stage(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  ::mkdir(spec.run_dir.c_str(), 0755);
  std::string known;
  for (auto& [name, fn] : stage_table()) {
    if (name == spec.stage) return fn(spec, reducer, so);
    known += (known.empty() ? "" : ", ") + name;
  }
  throw Error(spec.path + ": stage: '" + spec.stage + "' is not one of: " + known);
}

}  // namespace kdx::training
