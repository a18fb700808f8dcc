// The training objective: cross-entropy on gold tags plus a distillation term against the
// teacher's logits. Both are averages over *tag cells* (one token x one tag column), so a
// weight means the same at any window length, batch size and number of entity types; and
// both skip [CLS]/[SEP], padding and cells whose gold is ignored (unlabelled windows have
// no gold: their cells count for distillation only).
#pragma once

#include <torch/torch.h>

#include <string>

namespace kdx::training {

struct Objective {
  double ce_weight = 1.0, kd_weight = 0.0;
  // mse:      the paper's squared error of the cell's logits (mean over its classes);
  // mse_prob: squared error of the cell's tag probabilities at `temperature` (times T^2);
  // kl:       KL(teacher || student) of the cell's tag distribution at `temperature`, times T^2.
  std::string kd_loss = "kl";
  double temperature = 1.0;
};

struct LossTerms {
  torch::Tensor ce;  // sum over this rank's labelled cells / ce_cells
  torch::Tensor kd;  // sum over this rank's distillation cells / kd_cells; undefined: no KD
  torch::Tensor total;
};

// logits and teacher [B, T, columns * classes]; tags [B, T, columns] int64 with -100 for
// ignored cells; kd_cells_mask [B, T, columns] (1 = a cell the teacher is matched on).
// ce_cells / kd_cells are the global normalisers (all ranks' cells), so that gradients
// summed over ranks equal one process's gradient on the whole batch.
LossTerms compute_objective(const Objective& o, const torch::Tensor& logits,
                            const torch::Tensor& teacher, const torch::Tensor& tags,
                            const torch::Tensor& kd_cells_mask, int classes, double ce_cells,
                            double kd_cells);

// Names accepted for kd_loss, for validation messages.
bool known_kd_loss(const std::string& name);

}  // namespace kdx::training
