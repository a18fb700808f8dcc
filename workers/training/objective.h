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
  // Dice (the paper's supervised loss with CE): per labelled window and tag column, 1 - the
  // mean over classes of (2 sum p*y + 1) / (sum p^2 + y^2 + 1) over the window's labelled
  // cells, where the O class (id 0) weighs 0 but stays in the mean's divisor; averaged over
  // the labelled windows x columns of the global batch.
  double dice_weight = 0.0;
  // CE against (1 - e) one-hot + e / classes (PyTorch's label_smoothing).
  double label_smoothing = 0.0;
  // mse:      the paper's squared error of the cell's logits (mean over its classes);
  // mse_prob: squared error of the cell's tag probabilities at `temperature` (times T^2);
  // kl:       KL(teacher || student) of the cell's tag distribution at `temperature`, times T^2;
  // hard:     CE against the teacher's argmax tag (self-training on its hard labels: the
  //           control that sees the same text as KD without the soft targets).
  std::string kd_loss = "kl";
  double temperature = 1.0;
};

struct LossTerms {
  torch::Tensor ce;    // sum over this rank's labelled cells / ce_cells
  torch::Tensor kd;    // sum over this rank's distillation cells / kd_cells; undefined: no KD
  torch::Tensor dice;  // sum over this rank's labelled window-columns / dice_units; or undefined
  torch::Tensor total;
};

// logits and teacher [B, T, columns * classes]; tags [B, T, columns] int64 with -100 for
// ignored cells; kd_cells_mask [B, T, columns] (1 = a cell the teacher is matched on).
// ce_cells / kd_cells / dice_units (labelled windows x columns) are the global normalisers
// (all ranks' cells), so that gradients summed over ranks equal one process's gradient on
// the whole batch.
LossTerms compute_objective(const Objective& o, const torch::Tensor& logits,
                            const torch::Tensor& teacher, const torch::Tensor& tags,
                            const torch::Tensor& kd_cells_mask, int classes, double ce_cells,
                            double kd_cells, double dice_units = 0);

// Names accepted for kd_loss, for validation messages.
bool known_kd_loss(const std::string& name);

}  // namespace kdx::training
