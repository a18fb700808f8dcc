// Phase 1 of the paper's two-phase distillation: the student learns only from the teacher,
// on the transfer corpus (the dataset's unlabeled text, whose teacher logits the logits
// stage cached), by the KD term alone (MSE on raw logits or KL); no gold tag is read. The
// labelled windows are not trained on; their dev split still picks the best epoch.
#include "common/error.h"
#include "workers/training/sampler.h"
#include "workers/training/stages/common.h"
#include "workers/training/student_init.h"

namespace kdx::training {

void run_student_kd(const RunSpec& spec, distributed::Reducer& reducer, const StageOptions& so) {
  Prepared p;
  stages::prepare_student_data(spec, p);
  if (spec.unlabeled.empty())
    throw Error(spec.path + ": a student_kd run needs \"unlabeled\" (the transfer corpus)");
  std::vector<int> transfer;
  for (size_t i = 0; i < p.train.examples.size(); ++i)
    if (!p.train.examples[i].labelled) transfer.push_back(static_cast<int>(i));
  if (transfer.empty())
    throw Error(spec.path + ": the transfer corpus (" + spec.unlabeled.front() +
                ") has no text to distil on");
  Objective objective = stages::objective_of(spec);
  if (objective.kd_weight == 0)
    throw Error(spec.path +
                ": params.loss.kd_weight: a student_kd run learns from the teacher "
                "alone; it must not be 0");
  // Only the teacher: the gold-side weights are ignored here (the fine-tuning phase has them).
  objective.ce_weight = 0;
  objective.dice_weight = 0;
  stages::prepare_word_vectors(spec, p);
  auto student = make_student(spec, p, spec.teacher_dir);
  const uint64_t seed = static_cast<uint64_t>(spec.param_int64("seed"));
  auto order = [transfer, seed](int epoch) { return shuffled_subset(transfer, seed, epoch); };
  stages::train_student(spec, reducer, so, p, student, objective, order,
                        {{"phase", "kd"}, {"transfer_windows", transfer.size()}});
}

}  // namespace kdx::training
